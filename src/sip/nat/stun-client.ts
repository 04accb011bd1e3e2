/**
 * Asks a STUN server which address and port the gateway's datagrams appear to come from
 * (RFC 5389 Binding, §7.2.1 retransmissions). An I/O adapter: the socket and timers live here,
 * the message format in ./stun.ts.
 */
import * as dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { SystemClock, type Clock, type TimerHandle } from '../../runtime/clock.ts';
import type { Random } from '../../runtime/random.ts';
import { parseIpAddress } from '../../security/cidr.ts';
import { decodeMessage, encodeBindingRequest, isStun, StunType, type StunAddress } from './stun.ts';

/** RFC 5389 §7.2.1: the default initial retransmission timeout, Rc and Rm. */
export const STUN_RTO_MS = 500;
export const STUN_RC = 7;
export const STUN_RM = 16;
/** RFC 5389 §9: the default port of STUN over UDP. */
export const STUN_DEFAULT_PORT = 3478;

/** Options of {@link queryPublicAddress}. */
export interface StunQueryOptions {
  /** `host`, `host:port`, `[v6]:port` or a bare IPv6 address; port 3478 by default. */
  server: string;
  /**
   * Socket to ask from (the SIP or RTP socket whose mapping is wanted). It is not closed, and
   * only a message listener is added for the query's duration: its other users see the STUN
   * response too and should drop it with `isStun`. Without one a temporary socket is used.
   */
  socket?: dgram.Socket;
  /** Overall limit in milliseconds (default 3000); never beyond RFC 5389's full 39.5 s schedule. */
  timeoutMs?: number;
  /** Initial retransmission timeout (default 500 ms, RFC 5389 §7.2.1). */
  rtoMs?: number;
  /** Source of the 96-bit transaction ID (RFC 5389 §6: "cryptographically random"). */
  random: Random;
  /** Timers; defaults to the system clock. */
  clock?: Clock;
}

/** Why a query failed: `STUN_ERR_TIMEOUT`, `STUN_ERR_RESPONSE` (error response), `STUN_ERR_SERVER` (bad server text or DNS). */
export class StunQueryError extends Error {
  constructor(
    readonly code: 'STUN_ERR_TIMEOUT' | 'STUN_ERR_RESPONSE' | 'STUN_ERR_SERVER',
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'StunQueryError';
  }
}

/**
 * RFC 5389 §7.2.1 send times, in ms from the first send: requests at 0, RTO, 3·RTO, 7·RTO, ...
 * (the interval doubling), at most `rc` of them, and only those before `timeoutMs`. With the
 * defaults and no cap: 0, 500, 1500, 3500, 7500, 15500, 31500, then give up at 39 500
 * (Rm·RTO after the last).
 */
export function retransmitSchedule(opts: { rtoMs?: number; rc?: number; timeoutMs: number }): number[] {
  const rto = opts.rtoMs ?? STUN_RTO_MS;
  const rc = opts.rc ?? STUN_RC;
  const out: number[] = [];
  let at = 0;
  let interval = rto;
  for (let i = 0; i < rc && at < opts.timeoutMs; i++) {
    out.push(at);
    at += interval;
    interval *= 2;
  }
  return out;
}

/** RFC 5389 §7.2.1: the client gives up Rm·RTO after the last of the Rc requests (39.5 s by default). */
export function transactionTimeout(rtoMs = STUN_RTO_MS): number {
  return rtoMs * (2 ** (STUN_RC - 1) - 1) + STUN_RM * rtoMs;
}

/** Splits `host[:port]`, `[v6]:port` or a bare IPv6 address. Throws {@link StunQueryError}. */
export function parseStunServer(server: string): { host: string; port: number } {
  let host = server;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(server);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2];
  } else if ((server.match(/:/g) ?? []).length === 1) {
    [host, portText] = server.split(':') as [string, string];
  }
  const port = portText === undefined ? STUN_DEFAULT_PORT : Number(portText);
  if (host === '' || !/^\d{1,5}$/.test(portText ?? '1') || port < 1 || port > 0xffff) {
    throw new StunQueryError('STUN_ERR_SERVER', `bad STUN server ${JSON.stringify(server)}: expected host[:port]`);
  }
  return { host, port };
}

/**
 * Sends a Binding request to `server` and resolves with the XOR-MAPPED-ADDRESS (or
 * MAPPED-ADDRESS) of the first matching success response. Responses are matched on the
 * transaction ID (RFC 5389 §7.3); non-STUN datagrams and other transactions are ignored.
 * Rejects with {@link StunQueryError}: on an error response, or when `timeoutMs` passes.
 */
export async function queryPublicAddress(opts: StunQueryOptions): Promise<StunAddress> {
  const { host, port } = parseStunServer(opts.server);
  const rtoMs = opts.rtoMs ?? STUN_RTO_MS;
  const timeoutMs = Math.min(opts.timeoutMs ?? 3000, transactionTimeout(rtoMs));
  const clock = opts.clock ?? new SystemClock();
  let address = host;
  let family = parseIpAddress(host)?.family;
  if (family === undefined) {
    try {
      const found = await lookup(host);
      address = found.address;
      family = found.family === 6 ? 6 : 4;
    } catch (err) {
      throw new StunQueryError('STUN_ERR_SERVER', `cannot resolve STUN server ${host}: ${(err as Error).message}`);
    }
  }
  const socket = opts.socket ?? dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  const transactionId = opts.random.bytes(12);
  const request = encodeBindingRequest(transactionId);
  const timers: TimerHandle[] = [];

  return new Promise<StunAddress>((resolve, reject) => {
    const finish = (fn: () => void) => {
      for (const t of timers) t.cancel();
      socket.off('message', onMessage);
      socket.off('error', onError);
      if (!opts.socket) socket.close();
      fn();
    };
    const onMessage = (msg: Buffer) => {
      if (!isStun(msg)) return;
      let decoded;
      try {
        decoded = decodeMessage(msg);
      } catch {
        return;
      }
      if (!decoded.transactionId.equals(transactionId)) return;
      if (decoded.type === StunType.BindingError) {
        const e = decoded.error;
        finish(() => reject(new StunQueryError('STUN_ERR_RESPONSE', `STUN server answered ${e ? `${e.code} ${e.reason}` : 'an error without ERROR-CODE'}`, e?.code)));
        return;
      }
      // §7.3.3: a success response with unknown comprehension-required attributes is discarded.
      if (decoded.type !== StunType.BindingSuccess || decoded.unknownRequired.length > 0) return;
      const mapped = decoded.mappedAddress;
      if (!mapped) {
        finish(() => reject(new StunQueryError('STUN_ERR_RESPONSE', 'STUN success response without a mapped address')));
        return;
      }
      finish(() => resolve(mapped));
    };
    const onError = (err: Error) => finish(() => reject(new StunQueryError('STUN_ERR_SERVER', `STUN socket error: ${err.message}`)));
    socket.on('message', onMessage);
    socket.on('error', onError);
    const send = () => socket.send(request, port, address, () => {});
    for (const at of retransmitSchedule({ rtoMs, timeoutMs })) {
      timers.push(clock.setTimer(at, send, 'stun-retransmit'));
    }
    timers.push(
      clock.setTimer(
        timeoutMs,
        () => finish(() => reject(new StunQueryError('STUN_ERR_TIMEOUT', `no STUN response from ${opts.server} within ${timeoutMs} ms`))),
        'stun-timeout',
      ),
    );
  });
}
