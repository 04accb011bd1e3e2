import dgram from 'node:dgram';
import type { Logger } from '../../runtime/logger.ts';
import {
  formatHostPort,
  listenError,
  normalizeSocketAddress,
  TransportError,
  type Endpoint,
  type Transport,
  type TransportListener,
} from './transport.ts';

/** Largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP); IPv6 allows 65527 without jumbograms. */
const MAX_DATAGRAM_V4 = 65507;
const MAX_DATAGRAM_V6 = 65527;

/**
 * Receive buffer asked of the kernel. Linux's default (net.core.rmem_default, ~208 KiB) holds
 * only about a hundred datagrams, as each costs its full skb truesize (~2 KiB for a 500-byte
 * REGISTER on loopback); a burst arriving while the event loop runs a timer or a GC pause
 * overflows it and every dropped request costs its sender a 500 ms retransmission (RFC 3261
 * Timer A/E). The kernel caps the request at net.core.rmem_max, so on a board with a small
 * limit this just takes the limit. Measured with scripts/bench-sip.ts: every SIPp
 * retransmission against the gateway was a kernel drop on this socket (/proc/net/udp "drops").
 */
export const UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

export interface UdpTransportOptions {
  /** Local address to bind (`0.0.0.0`, `::`, `127.0.0.1`, `::1`). `::` is dual-stack. */
  address: string;
  /** Local port; 0 picks a free one (see {@link UdpTransport.localEndpoint}). */
  port: number;
  listener: TransportListener;
  logger: Logger;
}

function isIPv6(address: string): boolean {
  return address.includes(':');
}

/** True when every byte is CR or LF (a CRLF / CRLFCRLF keep-alive datagram, RFC 5626 §4.4.1). */
function isKeepAlive(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0x0d && b !== 0x0a) return false;
  }
  return true;
}

/**
 * SIP over UDP (RFC 3261 §18): one datagram is one message. Empty datagrams and CRLF keep-alives
 * are dropped. Sending never blocks on the peer; a failure to hand the datagram to the kernel
 * rejects with `TRANSPORT_SEND_FAILED`.
 */
export class UdpTransport implements Transport {
  readonly name = 'udp' as const;
  private socket: dgram.Socket | undefined;
  private closed = false;
  private readonly v6: boolean;

  constructor(private readonly opts: UdpTransportOptions) {
    this.v6 = isIPv6(opts.address);
  }

  listen(): Promise<void> {
    const { address, port } = this.opts;
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type: this.v6 ? 'udp6' : 'udp4', reuseAddr: false });
      const onError = (err: Error): void => {
        socket.close();
        reject(listenError('udp', address, port, err));
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        try {
          socket.setRecvBufferSize(UDP_RECEIVE_BUFFER_BYTES);
        } catch (err) {
          this.opts.logger.debug('udp receive buffer not enlarged', { error: err instanceof Error ? err.message : String(err) });
        }
        socket.on('error', (err) => this.opts.logger.warn('udp socket error', { error: err.message }));
        socket.on('message', (msg, rinfo) => this.receive(msg, rinfo));
        this.socket = socket;
        this.opts.logger.info('listening', { transport: 'udp', local: formatHostPort(address, socket.address().port) });
        resolve();
      });
    });
  }

  localEndpoint(): Endpoint {
    if (!this.socket) throw new Error('UdpTransport.localEndpoint() before listen()');
    const a = this.socket.address();
    return { transport: 'udp', address: a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
  }

  send(bytes: Buffer, dest: Endpoint): Promise<void> {
    const socket = this.socket;
    if (!socket || this.closed) {
      return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'udp transport is not listening'));
    }
    const destV6 = isIPv6(dest.address);
    let address = dest.address;
    if (this.v6 && !destV6) {
      // A dual-stack IPv6 socket reaches IPv4 peers through IPv4-mapped addresses.
      address = `::ffff:${dest.address}`;
    } else if (!this.v6 && destV6) {
      return Promise.reject(
        new TransportError(
          'TRANSPORT_FAMILY_MISMATCH',
          `cannot send to ${formatHostPort(dest.address, dest.port)} from an IPv4 udp socket`,
        ),
      );
    }
    const max = destV6 ? MAX_DATAGRAM_V6 : MAX_DATAGRAM_V4;
    if (bytes.length > max) {
      // RFC 3261 §18.1.1: larger requests must go over a congestion-controlled transport.
      return Promise.reject(
        new TransportError('TRANSPORT_MESSAGE_TOO_LARGE', `message of ${bytes.length} bytes exceeds the udp limit of ${max}`),
      );
    }
    return new Promise((resolve, reject) => {
      socket.send(bytes, dest.port, address, (err) => {
        if (err) {
          reject(
            new TransportError('TRANSPORT_SEND_FAILED', `udp send to ${formatHostPort(dest.address, dest.port)} failed: ${err.message}`, {
              cause: err,
            }),
          );
        } else {
          resolve();
        }
      });
    });
  }

  close(): Promise<void> {
    this.closed = true;
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }

  private receive(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed || msg.length === 0 || isKeepAlive(msg)) return;
    const { address, family } = normalizeSocketAddress(rinfo.address);
    const source: Endpoint = { transport: 'udp', address, port: rinfo.port, family };
    try {
      this.opts.listener.onMessage(msg, source);
    } catch (err) {
      this.opts.logger.error('message handler threw', {
        peer: formatHostPort(address, rinfo.port),
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
