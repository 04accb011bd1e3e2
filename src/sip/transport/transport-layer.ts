import type { Clock } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { StreamTransport, StreamTransportOptions } from './stream-transport.ts';
import { TcpTransport } from './tcp.ts';
import { TlsTransport } from './tls.ts';
import {
  TransportError,
  type ConnectionId,
  type Endpoint,
  type SendOptions,
  type Transport,
  type TransportListener,
  type TransportName,
} from './transport.ts';
import { UdpTransport } from './udp.ts';

/** TLS material and settings. */
export interface TlsSettings {
  cert: Buffer;
  key: Buffer;
  /** TLS listening port; default 0 when `port` is 0, else `port + 1` (5061 for 5060). */
  port?: number;
  /** CAs trusted when connecting out; default the system roots. */
  ca?: Buffer | Buffer[];
  /** Verify servers' certificates (default true). */
  rejectUnauthorized?: boolean;
}

/** TCP/TLS settings passed through to each stream transport (documented there). */
type StreamSettings = Pick<StreamTransportOptions, 'idleTimeoutMs' | 'maxConnections' | 'connectTimeoutMs' | 'framer'>;

export interface TransportLayerOptions extends StreamSettings {
  /** Local address for every listening socket (`0.0.0.0`, `::`, `127.0.0.1`, `::1`). */
  bind: string;
  /** Port shared by UDP and TCP; 0 picks a free port (UDP binds first, TCP reuses its number). */
  port: number;
  /** Which transports to open. `tls` opens only when listed here, and then requires `tls` settings. */
  transports: TransportName[];
  tls?: TlsSettings;
  logger: Logger;
  clock: Clock;
  onMessage?: TransportListener['onMessage'];
  onStreamError?: TransportListener['onStreamError'];
}

/**
 * One SIP message as the transport layer saw it, for `hookswitch trace`. `local` is the
 * listening endpoint of the transport (its address may be a wildcard such as `0.0.0.0`; for an
 * outgoing TCP/TLS connection the port is the listening port, not the ephemeral one). TLS
 * messages are the decrypted bytes.
 */
export interface TransportTraceEvent {
  /** Wall-clock time in milliseconds since the epoch (`Clock.wallNow()`). */
  time: number;
  /** `in`: received from `remote`; `out`: handed to the socket for `remote`. */
  direction: 'in' | 'out';
  transport: TransportName;
  local: Endpoint;
  remote: Endpoint;
  /** The TCP/TLS connection, when known. */
  connection?: ConnectionId;
  /** The whole message; listeners must not modify it. */
  bytes: Buffer;
}

/** Attempts at finding a port free for both UDP and TCP when `port` is 0. */
const EPHEMERAL_ATTEMPTS = 8;

/**
 * Owns the listening sockets of every configured transport and their connection tables, and
 * routes outgoing bytes by `dest.transport`. Inbound messages go to `onMessage` (set it before
 * `listen()` or pass it in the options); it never parses SIP.
 */
export class TransportLayer {
  /** Inbound whole messages. Replace before `listen()`; the default drops them. */
  onMessage: (bytes: Buffer, source: Endpoint, connection?: ConnectionId) => void;
  /** Stream framing errors (connection already closed). The default ignores them. */
  onStreamError: (source: Endpoint, reason: TransportError, connection?: ConnectionId) => void;
  /**
   * The trace tap: when set, called synchronously with every whole message received (before
   * `onMessage`) and every message sent (when `send()` is called, so before the bytes leave;
   * a send that then fails is still traced). Unset (the default) it costs one property check.
   * It must not throw or keep the buffer beyond the call without copying.
   */
  onTrace: ((event: TransportTraceEvent) => void) | undefined;
  private readonly transports = new Map<TransportName, Transport>();
  private readonly log: Logger;

  constructor(private readonly opts: TransportLayerOptions) {
    this.onMessage = opts.onMessage ?? (() => {});
    this.onStreamError = opts.onStreamError ?? (() => {});
    this.log = opts.logger;
    if (opts.transports.includes('tls') && !opts.tls) {
      throw new TransportError('TRANSPORT_NOT_AVAILABLE', 'tls transport enabled without a certificate and key');
    }
  }

  /** Binds every transport. On failure closes what was opened and rejects with the first error. */
  async listen(): Promise<void> {
    const { port } = this.opts;
    const attempts = port === 0 ? EPHEMERAL_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.listenOnce();
        return;
      } catch (err) {
        await this.close();
        // With port 0, TCP may find UDP's port taken by someone else: pick another.
        const retry = attempt < attempts && err instanceof TransportError && err.code === 'TRANSPORT_ADDRESS_IN_USE';
        if (!retry) throw err;
      }
    }
  }

  private async listenOnce(): Promise<void> {
    const { bind, transports } = this.opts;
    let port = this.opts.port;
    const listener: TransportListener = {
      onMessage: (bytes, source, connection) => {
        if (this.onTrace) this.trace('in', bytes, source, connection);
        this.onMessage(bytes, source, connection);
      },
      onStreamError: (source, reason, connection) => this.onStreamError(source, reason, connection),
    };
    const common = {
      address: bind,
      listener,
      clock: this.opts.clock,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      maxConnections: this.opts.maxConnections,
      connectTimeoutMs: this.opts.connectTimeoutMs,
      framer: this.opts.framer,
    };
    if (transports.includes('udp')) {
      const udp = new UdpTransport({ address: bind, port, listener, logger: this.log.child('udp') });
      this.transports.set('udp', udp);
      await udp.listen();
      port = udp.localEndpoint().port;
    }
    if (transports.includes('tcp')) {
      const tcp = new TcpTransport({ ...common, port, logger: this.log.child('tcp') });
      this.transports.set('tcp', tcp);
      await tcp.listen();
      port = tcp.localEndpoint().port;
    }
    const tlsSettings = this.opts.tls;
    if (tlsSettings && transports.includes('tls')) {
      const tlsPort = tlsSettings.port ?? (this.opts.port === 0 ? 0 : this.opts.port + 1);
      const tlsTransport = new TlsTransport({
        ...common,
        port: tlsPort,
        logger: this.log.child('tls'),
        cert: tlsSettings.cert,
        key: tlsSettings.key,
        ca: tlsSettings.ca,
        rejectUnauthorized: tlsSettings.rejectUnauthorized,
      });
      this.transports.set('tls', tlsTransport);
      await tlsTransport.listen();
    }
  }

  /** Closes every listening socket and connection. */
  async close(): Promise<void> {
    const all = [...this.transports.values()];
    this.transports.clear();
    await Promise.all(all.map((t) => t.close()));
  }

  /**
   * Sends `bytes` over `dest.transport`. For TCP/TLS, `opts.connectionId` (or a
   * `connectionId` carried on `dest`, as returned by `responseDestination`) picks the connection.
   * Rejects with a {@link TransportError}; `TRANSPORT_NOT_AVAILABLE` when that transport is off.
   */
  send(bytes: Buffer, dest: Endpoint & { connectionId?: ConnectionId }, opts: SendOptions = {}): Promise<void> {
    const transport = this.transports.get(dest.transport);
    if (!transport) {
      return Promise.reject(new TransportError('TRANSPORT_NOT_AVAILABLE', `transport ${dest.transport} is not enabled`));
    }
    const connectionId = opts.connectionId ?? dest.connectionId;
    if (this.onTrace) {
      const remote: Endpoint = { transport: dest.transport, address: dest.address, port: dest.port };
      if (dest.family) remote.family = dest.family;
      this.trace('out', bytes, remote, connectionId);
    }
    return transport.send(bytes, dest, connectionId !== undefined ? { ...opts, connectionId } : opts);
  }

  private trace(direction: 'in' | 'out', bytes: Buffer, remote: Endpoint, connection: ConnectionId | undefined): void {
    const transport = this.transports.get(remote.transport);
    if (!transport || !this.onTrace) return;
    try {
      const event: TransportTraceEvent = {
        time: this.opts.clock.wallNow(),
        direction,
        transport: remote.transport,
        local: transport.localEndpoint(),
        remote,
        bytes,
      };
      if (connection !== undefined) event.connection = connection;
      this.onTrace(event);
    } catch (err) {
      this.log.warn('trace listener threw', { reason: err instanceof Error ? err.message : String(err) });
    }
  }

  /** True when `transport` is listening. */
  has(transport: TransportName): boolean {
    return this.transports.has(transport);
  }

  /** The bound endpoint of `transport` (the actual port when bound to 0). Throws if it is off. */
  localEndpoint(transport: TransportName): Endpoint {
    const t = this.transports.get(transport);
    if (!t) throw new Error(`transport ${transport} is not enabled`);
    return t.localEndpoint();
  }

  /** Open connections of a stream transport (0 for UDP or a disabled transport). */
  connectionCount(transport: TransportName): number {
    const t = this.transports.get(transport);
    return t && t.name !== 'udp' ? (t as StreamTransport).connectionCount() : 0;
  }
}
