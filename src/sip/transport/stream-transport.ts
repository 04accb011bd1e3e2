import net from 'node:net';
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import { StreamFramer, type StreamFramerOptions } from './stream-framer.ts';
import {
  formatHostPort,
  listenError,
  normalizeSocketAddress,
  remoteKey,
  TransportError,
  type ConnectionId,
  type Endpoint,
  type SendOptions,
  type Transport,
  type TransportErrorCode,
  type TransportListener,
} from './transport.ts';

/** Options shared by the TCP and TLS transports. */
export interface StreamTransportOptions {
  /** Local address to listen on (`0.0.0.0`, `::`, `127.0.0.1`, `::1`). `::` is dual-stack. */
  address: string;
  /** Local port; 0 picks a free one. */
  port: number;
  listener: TransportListener;
  logger: Logger;
  /** Drives idle and connect timers. */
  clock: Clock;
  /** A connection with no traffic in either direction for this long is closed (default 32 s). */
  idleTimeoutMs?: number;
  /** Incoming connections beyond this are refused, outgoing ones fail (default 512). */
  maxConnections?: number;
  /** An outgoing connection not established after this long fails (default 10 s). */
  connectTimeoutMs?: number;
  /** Bounds of one framed message. */
  framer?: StreamFramerOptions;
}

interface Connection {
  id: ConnectionId;
  socket: net.Socket;
  remote: Endpoint;
  keys: string[];
  framer: StreamFramer;
  lastActivity: number;
  idleTimer?: TimerHandle;
}

const CRLF = Buffer.from('\r\n', 'latin1');

/**
 * SIP over a byte stream (RFC 3261 §18): the listening server plus the connection table shared
 * by TCP and TLS. Every connection, incoming or outgoing, is framed by a {@link StreamFramer}
 * and may carry requests and responses in both directions. Subclasses only say how to create
 * the server and how to open a socket.
 */
export abstract class StreamTransport implements Transport {
  abstract readonly name: 'tcp' | 'tls';
  private server: net.Server | undefined;
  private readonly connections = new Map<ConnectionId, Connection>();
  private readonly byRemote = new Map<string, ConnectionId>();
  private readonly pending = new Map<string, Promise<Connection>>();
  private readonly connecting = new Set<net.Socket>();
  private seq = 0;
  private closed = false;
  protected readonly idleTimeoutMs: number;
  protected readonly maxConnections: number;
  protected readonly connectTimeoutMs: number;

  constructor(protected readonly opts: StreamTransportOptions) {
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 32_000;
    this.maxConnections = opts.maxConnections ?? 512;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  }

  /** Creates the listening server; `onSocket` receives each accepted (for TLS: secured) socket. */
  protected abstract createServer(onSocket: (socket: net.Socket) => void): net.Server;
  /** Starts an outgoing connection to `dest`. */
  protected abstract openSocket(dest: Endpoint, opts: SendOptions): net.Socket;
  /** The socket event that means the connection is ready to carry SIP. */
  protected abstract readonly readyEvent: 'connect' | 'secureConnect';
  /** The error code of a failed outgoing connection; `tcpUp` tells whether TCP itself connected. */
  protected connectErrorCode(_err: Error, _tcpUp: boolean): TransportErrorCode {
    return 'TRANSPORT_CONNECT_FAILED';
  }

  listen(): Promise<void> {
    const { address, port } = this.opts;
    return new Promise((resolve, reject) => {
      const server = this.createServer((socket) => this.accept(socket));
      const onError = (err: Error): void => {
        server.close();
        reject(listenError(this.name, address, port, err));
      };
      server.once('error', onError);
      server.listen({ host: address, port, exclusive: true }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.opts.logger.warn('server error', { transport: this.name, error: err.message }));
        this.server = server;
        this.opts.logger.info('listening', { transport: this.name, local: formatHostPort(address, this.localEndpoint().port) });
        resolve();
      });
    });
  }

  localEndpoint(): Endpoint {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new Error(`${this.name} transport localEndpoint() before listen()`);
    return { transport: this.name, address: a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
  }

  /** Number of open connections (incoming and outgoing). */
  connectionCount(): number {
    return this.connections.size;
  }

  /** The remote endpoint of an open connection, or undefined once it closed. */
  connection(id: ConnectionId): Endpoint | undefined {
    return this.connections.get(id)?.remote;
  }

  async send(bytes: Buffer, dest: Endpoint, opts: SendOptions = {}): Promise<void> {
    if (this.closed) throw new TransportError('TRANSPORT_CLOSED', `${this.name} transport is closed`);
    // RFC 3261 §18.2.2: a response uses the connection its request came on while that is open;
    // otherwise any open connection to the destination, otherwise a new one.
    let conn = opts.connectionId !== undefined ? this.connections.get(opts.connectionId) : undefined;
    if (!usable(conn)) conn = this.findByRemote(dest);
    if (!usable(conn)) conn = await this.connect(dest, opts);
    return this.write(conn, bytes, dest);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const socket of this.connecting) socket.destroy();
    for (const conn of this.connections.values()) conn.socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private findByRemote(dest: Endpoint): Connection | undefined {
    const id = this.byRemote.get(remoteKey(dest.address, dest.port));
    return id !== undefined ? this.connections.get(id) : undefined;
  }

  private accept(socket: net.Socket): void {
    if (this.closed || this.connections.size >= this.maxConnections) {
      this.opts.logger.warn('connection refused: limit reached', {
        transport: this.name,
        peer: formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0),
        limit: this.maxConnections,
      });
      socket.destroy();
      return;
    }
    this.register(socket);
  }

  private connect(dest: Endpoint, opts: SendOptions): Promise<Connection> {
    const key = remoteKey(dest.address, dest.port);
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const target = formatHostPort(dest.address, dest.port);
    if (this.connections.size + this.pending.size >= this.maxConnections) {
      return Promise.reject(
        new TransportError('TRANSPORT_TOO_MANY_CONNECTIONS', `${this.name} connection limit of ${this.maxConnections} reached`),
      );
    }
    const promise = new Promise<Connection>((resolve, reject) => {
      const socket = this.openSocket(dest, opts);
      this.connecting.add(socket);
      let tcpUp = false;
      let settled = false;
      const settle = (err?: TransportError): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        this.connecting.delete(socket);
        this.pending.delete(key);
        if (err) {
          socket.destroy();
          reject(err);
        } else if (this.closed) {
          socket.destroy();
          reject(new TransportError('TRANSPORT_CLOSED', `${this.name} transport is closed`));
        } else {
          resolve(this.register(socket, dest));
        }
      };
      const timer = this.opts.clock.setTimer(
        this.connectTimeoutMs,
        () => settle(new TransportError('TRANSPORT_CONNECT_TIMEOUT', `${this.name} connect to ${target} timed out`)),
        `sip.transport.${this.name}.connect`,
      );
      socket.once('connect', () => (tcpUp = true));
      socket.once('error', (err) =>
        settle(
          new TransportError(this.connectErrorCode(err, tcpUp), `${this.name} connect to ${target} failed: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      socket.once('close', () =>
        settle(new TransportError('TRANSPORT_CONNECT_FAILED', `${this.name} connect to ${target} failed: connection closed`)),
      );
      socket.once(this.readyEvent, () => settle());
    });
    this.pending.set(key, promise);
    return promise;
  }

  private register(socket: net.Socket, dialled?: Endpoint): Connection {
    const { address, family } = normalizeSocketAddress(socket.remoteAddress ?? dialled?.address ?? '');
    const port = socket.remotePort ?? dialled?.port ?? 0;
    const id = `${this.name}-${++this.seq}`;
    const remote: Endpoint = { transport: this.name, address, port, family };
    const keys = [remoteKey(address, port)];
    if (dialled) {
      const dialledKey = remoteKey(dialled.address, dialled.port);
      if (dialledKey !== keys[0]) keys.push(dialledKey);
    }
    const conn: Connection = {
      id,
      socket,
      remote,
      keys,
      framer: new StreamFramer(this.opts.framer),
      lastActivity: this.opts.clock.now(),
    };
    this.connections.set(id, conn);
    for (const k of keys) this.byRemote.set(k, id);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(conn, chunk));
    socket.on('error', (err) =>
      this.opts.logger.debug('connection error', { transport: this.name, connection: id, error: err.message }),
    );
    socket.on('close', () => this.forget(conn));
    this.armIdle(conn, this.idleTimeoutMs);
    this.opts.logger.debug('connection open', {
      transport: this.name,
      connection: id,
      peer: formatHostPort(address, port),
      direction: dialled ? 'out' : 'in',
    });
    return conn;
  }

  private receive(conn: Connection, chunk: Buffer): void {
    conn.lastActivity = this.opts.clock.now();
    for (const event of conn.framer.push(chunk)) {
      if (event.type === 'message') {
        try {
          this.opts.listener.onMessage(event.bytes, conn.remote, conn.id);
        } catch (err) {
          this.opts.logger.error('message handler threw', {
            connection: conn.id,
            error: err instanceof Error ? err.message : String(err),
          });
        }
      } else if (event.type === 'keepalive') {
        // RFC 5626 §4.4.1: "the server ... MUST respond with a single CRLF" to a double-CRLF ping.
        conn.socket.write(CRLF);
      } else {
        // RFC 3261 §18.3: without a usable Content-Length the stream cannot be delimited any more.
        this.opts.logger.warn('framing error, closing connection', {
          transport: this.name,
          connection: conn.id,
          peer: formatHostPort(conn.remote.address, conn.remote.port),
          code: event.error.code,
          reason: event.error.message,
        });
        try {
          this.opts.listener.onStreamError?.(conn.remote, event.error, conn.id);
        } finally {
          conn.socket.destroy();
        }
      }
    }
  }

  private write(conn: Connection, bytes: Buffer, dest: Endpoint): Promise<void> {
    conn.lastActivity = this.opts.clock.now();
    return new Promise((resolve, reject) => {
      conn.socket.write(bytes, (err) => {
        if (!err) return resolve();
        reject(
          new TransportError(
            'TRANSPORT_SEND_FAILED',
            `${this.name} send to ${formatHostPort(dest.address, dest.port)} failed: ${err.message}`,
            { cause: err },
          ),
        );
      });
    });
  }

  private armIdle(conn: Connection, ms: number): void {
    conn.idleTimer = this.opts.clock.setTimer(ms, () => this.checkIdle(conn), `sip.transport.${this.name}.idle`);
  }

  private checkIdle(conn: Connection): void {
    if (!this.connections.has(conn.id)) return;
    const idleFor = this.opts.clock.now() - conn.lastActivity;
    if (idleFor < this.idleTimeoutMs) {
      this.armIdle(conn, this.idleTimeoutMs - idleFor);
      return;
    }
    this.opts.logger.debug('closing idle connection', { transport: this.name, connection: conn.id, idleMs: idleFor });
    conn.socket.destroy();
  }

  private forget(conn: Connection): void {
    conn.idleTimer?.cancel();
    if (this.connections.get(conn.id) !== conn) return;
    this.connections.delete(conn.id);
    for (const k of conn.keys) if (this.byRemote.get(k) === conn.id) this.byRemote.delete(k);
    this.opts.logger.debug('connection closed', { transport: this.name, connection: conn.id });
  }
}

function usable(conn: Connection | undefined): conn is Connection {
  return conn !== undefined && !conn.socket.destroyed && conn.socket.writable;
}
