/**
 * Keep-alives towards an upstream server while registered: a CRLFCRLF ping on TCP/TLS (RFC 5626
 * §4.4.1) and an OPTIONS request on UDP (any response proves the server and the NAT binding are
 * alive). A failed ping means the server or the path is gone; the owner (the registration
 * client) then re-registers. Also the builder of that OPTIONS request.
 *
 * Pure: pings go out through callbacks, time comes from the injected Clock.
 */
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Random } from '../../runtime/random.ts';
import { buildRequest } from '../dialog/request-builder.ts';
import type { SipRequest } from '../message/message.ts';
import { formatHostPort } from '../message/uri.ts';
import type { ClientTransactionHandlers, Destination } from '../transaction/types.ts';

/** Options of {@link KeepAlive}. */
export interface KeepAliveOptions {
  /** Seconds between pings; each wait is drawn from 80–100 % of it (RFC 5626 §4.4.1). Must be > 0. */
  intervalSeconds: number;
  /** UDP pings with `sendOptions`, TCP and TLS with `sendCrlf`. */
  transport: Destination['transport'];
  /** Where the pings go (for logs; the callbacks know it too). */
  destination: Destination;
  clock: Clock;
  random: Random;
  logger: Logger;
  /** UDP: sends an OPTIONS transaction; resolves true on any response, false on timeout or transport error. */
  sendOptions(): Promise<boolean>;
  /** TCP/TLS: writes CRLFCRLF; resolves true once written (a pong is optional, RFC 5626 §4.4.1). */
  sendCrlf(): Promise<boolean>;
  /** A ping failed or was not answered in time. The keep-alive has stopped itself; `start()` again after recovery. */
  onFailure(reason: string): void;
  /** How long a ping may take (default 5000 ms, well under Timer F's 32 s). */
  timeoutMs?: number;
}

/** Default own timeout of one ping. */
const DEFAULT_TIMEOUT_MS = 5_000;
/** The CRLFCRLF ping of RFC 5626 §4.4.1. */
export const CRLF_PING = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Pings one destination periodically. `start()` (re)arms the first ping one interval from now;
 * `stop()` cancels the timer and ignores any ping still outstanding. After a failure it stops
 * itself and calls `onFailure` once.
 */
export class KeepAlive {
  private readonly opts: KeepAliveOptions;
  private timer: TimerHandle | undefined;
  /** Bumped by start/stop/failure so that outcomes of older pings are ignored. */
  private generation = 0;
  private active = false;

  constructor(opts: KeepAliveOptions) {
    if (!(opts.intervalSeconds > 0)) throw new Error(`keep-alive interval must be positive (got ${opts.intervalSeconds})`);
    this.opts = opts;
  }

  /** Whether pings are scheduled or outstanding. */
  get running(): boolean {
    return this.active;
  }

  /** Starts pinging, or restarts the interval when already running. */
  start(): void {
    this.stop();
    this.active = true;
    this.schedule(this.generation);
  }

  /** Stops pinging. Does nothing when already stopped. */
  stop(): void {
    this.generation++;
    this.active = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private schedule(gen: number): void {
    const r = this.opts.random.bytes(2).readUInt16BE(0) / 0xffff;
    const ms = Math.round(this.opts.intervalSeconds * 1000 * (0.8 + 0.2 * r));
    this.timer = this.opts.clock.setTimer(ms, () => this.ping(gen), 'keep-alive');
  }

  private ping(gen: number): void {
    this.timer = undefined;
    if (gen !== this.generation) return;
    const { transport } = this.opts;
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let settled = false;
    const finish = (ok: boolean, reason: string): void => {
      if (settled || gen !== this.generation) return;
      settled = true;
      this.timer?.cancel();
      this.timer = undefined;
      if (ok) {
        this.schedule(gen);
        return;
      }
      this.generation++;
      this.active = false;
      const dest = this.opts.destination;
      this.opts.logger.warn('keep-alive failed', { transport, peer: formatHostPort(dest.address, dest.port), reason });
      this.opts.onFailure(reason);
    };
    this.timer = this.opts.clock.setTimer(timeoutMs, () => finish(false, `no answer within ${timeoutMs} ms`), 'keep-alive-timeout');
    // RFC 5626 §3.5.1: CRLF keep-alives on connection-oriented transports; on UDP this client
    // uses an OPTIONS request, which also proves the server is alive (not only the NAT binding).
    const kind = transport === 'udp' ? 'OPTIONS' : 'CRLF';
    let sent: Promise<boolean>;
    try {
      sent = transport === 'udp' ? this.opts.sendOptions() : this.opts.sendCrlf();
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then(
      (ok) => finish(ok, ok ? '' : `${kind} ping got no answer`),
      (e: unknown) => finish(false, `${kind} ping failed: ${e instanceof Error ? e.message : String(e)}`),
    );
  }
}

/** What {@link buildOptionsPing} needs. */
export interface OptionsPingParams {
  /** Request-URI (the registrar's URI, as in REGISTER). */
  requestUri: string;
  /** Our address of record, without tag: the From URI. */
  aor: string;
  /** The trunk's domain: the To URI is `sip:<domain>`. */
  domain: string;
  /** Our address as sent in Via. */
  local: { address: string; port: number };
  transport: Destination['transport'];
  /** A fresh branch from the transaction layer. */
  branch: string;
  random: Random;
  userAgent?: string;
}

/**
 * An out-of-dialog OPTIONS (RFC 3261 §11) used as a ping: fresh Call-ID and From tag, CSeq 1,
 * Max-Forwards 70, Via with `rport` (RFC 3581) so the answer follows the NAT binding back.
 */
export function buildOptionsPing(p: OptionsPingParams): SipRequest {
  const extra: [string, string][] = [['Accept', 'application/sdp']];
  if (p.userAgent) extra.push(['User-Agent', p.userAgent]);
  return buildRequest({
    method: 'OPTIONS',
    requestUri: p.requestUri,
    from: `<${p.aor}>`,
    to: `<sip:${formatHostPort(p.domain)}>`,
    cseq: 1,
    random: p.random,
    via: `SIP/2.0/${p.transport.toUpperCase()} ${formatHostPort(p.local.address, p.local.port)};branch=${p.branch};rport`,
    extraHeaders: extra,
  }).request;
}

/**
 * One OPTIONS ping as a non-INVITE client transaction: resolves true on any response, even a
 * 4xx or 5xx (the server answered, RFC 3261 §11), false on timeout or transport error.
 */
export function sendOptionsPing(
  transactions: { newBranch(): string; sendRequest(request: SipRequest, dest: Destination, handlers: ClientTransactionHandlers): unknown },
  dest: Destination,
  params: Omit<OptionsPingParams, 'branch' | 'transport'>,
): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const request = buildOptionsPing({ ...params, transport: dest.transport, branch: transactions.newBranch() });
    transactions.sendRequest(request, dest, {
      onResponse: () => resolve(true),
      onTimeout: () => resolve(false),
      onTransportError: () => resolve(false),
    });
  });
}

/**
 * A CRLF pinger for `dest` over a stream transport. With `connectionTo`, it remembers the
 * connection open now (the one that carried the registration) and fails, without sending,
 * once that connection has gone: a new connection is a new flow, and a restarted server
 * knows no binding for it (RFC 5626 §4.4).
 */
export function crlfPinger(
  sendRaw: (bytes: Buffer, dest: Destination) => Promise<void>,
  dest: Destination,
  connectionTo?: (dest: Destination) => string | undefined,
): () => Promise<boolean> {
  const flow = connectionTo?.(dest);
  return () => {
    if (flow !== undefined && connectionTo?.(dest) !== flow) {
      return Promise.reject(new Error('the connection that carried the registration closed'));
    }
    return sendRaw(CRLF_PING, dest).then(() => true);
  };
}
