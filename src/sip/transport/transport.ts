/**
 * Shared types of the SIP transport layer (RFC 3261 §18). Transports deal in bytes and addresses
 * only: they never parse SIP. A stream transport delivers whole messages cut by the
 * {@link StreamFramer}; a datagram transport delivers each datagram as one message.
 */

/** The transports this stack speaks. */
export type TransportName = 'udp' | 'tcp' | 'tls';

/**
 * A transport address. `address` is a numeric IP address (IPv6 without brackets) when the
 * endpoint came from a socket; a destination computed from a Via may carry a domain name,
 * which the caller resolves (RFC 3263) before sending.
 */
export interface Endpoint {
  transport: TransportName;
  address: string;
  port: number;
  family?: 4 | 6;
}

/** Identifies one TCP or TLS connection for the lifetime of that connection (e.g. `tcp-3`). */
export type ConnectionId = string;

/** Options of {@link Transport.send}. */
export interface SendOptions {
  /**
   * Send over this connection when it is still open (RFC 3261 §18.2.2: a response goes back over
   * the connection the request arrived on). When it is closed, the transport falls back to any
   * open connection to `dest`, then to a new one.
   */
  connectionId?: ConnectionId;
  /** TLS only: the name to send as SNI and to verify the server certificate against. */
  serverName?: string;
}

/**
 * Receives inbound traffic from a transport. Called from socket event handlers: implementations
 * must not throw (a throw is caught and logged by the transport).
 */
export interface TransportListener {
  /** One whole SIP message (datagram, or a message cut from a stream by Content-Length). */
  onMessage(bytes: Buffer, source: Endpoint, connection?: ConnectionId): void;
  /**
   * A stream could not be framed (missing or bad Content-Length, oversized message). The
   * transport has already closed the connection; the layer above logs and counts.
   */
  onStreamError?(source: Endpoint, reason: TransportError, connection?: ConnectionId): void;
}

/**
 * One transport adapter (UDP, TCP or TLS). The owner (the {@link TransportLayer}) calls
 * `listen()` once, `send()` any number of times, and `close()` once; after `close()` resolves no
 * listener callback fires again and `send()` rejects with `TRANSPORT_CLOSED`.
 */
export interface Transport {
  readonly name: TransportName;
  /** Binds the listening socket; rejects with a {@link TransportError} whose message is user-facing. */
  listen(): Promise<void>;
  /** Sends `bytes` to `dest`. Rejects with a {@link TransportError} (RFC 3261 §17.1.4 transport error). */
  send(bytes: Buffer, dest: Endpoint, opts?: SendOptions): Promise<void>;
  /** The bound local endpoint (actual port when bound to port 0). Only valid after `listen()`. */
  localEndpoint(): Endpoint;
  /** Closes the listening socket and every connection. */
  close(): Promise<void>;
}

/** Stable codes of {@link TransportError}. */
export type TransportErrorCode =
  | 'TRANSPORT_ADDRESS_IN_USE'
  | 'TRANSPORT_PERMISSION_DENIED'
  | 'TRANSPORT_ADDRESS_NOT_AVAILABLE'
  | 'TRANSPORT_LISTEN_FAILED'
  | 'TRANSPORT_NOT_AVAILABLE'
  | 'TRANSPORT_CLOSED'
  | 'TRANSPORT_SEND_FAILED'
  | 'TRANSPORT_MESSAGE_TOO_LARGE'
  | 'TRANSPORT_CONNECT_FAILED'
  | 'TRANSPORT_CONNECT_TIMEOUT'
  | 'TRANSPORT_TLS_FAILED'
  | 'TRANSPORT_TOO_MANY_CONNECTIONS'
  | 'TRANSPORT_FAMILY_MISMATCH'
  | FramingErrorCode;

/** Stable codes of stream framing errors (see `stream-framer.ts`). */
export type FramingErrorCode =
  | 'FRAMING_MISSING_CONTENT_LENGTH'
  | 'FRAMING_INVALID_CONTENT_LENGTH'
  | 'FRAMING_CONFLICTING_CONTENT_LENGTH'
  | 'FRAMING_HEADER_TOO_LARGE'
  | 'FRAMING_BODY_TOO_LARGE';

/** A transport failure with a stable `code`; `message` is one line suitable for the user. */
export class TransportError extends Error {
  constructor(
    public readonly code: TransportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransportError';
  }
}

/** Default port of a transport when a URI or Via gives none (RFC 3261 §18.2.2, §19.1.2). */
export function defaultPort(transport: TransportName): number {
  return transport === 'tls' ? 5061 : 5060;
}

/** `127.0.0.1:5060` or `[::1]:5060`. */
export function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Human form of an endpoint for logs: `udp 127.0.0.1:5060`. */
export function formatEndpoint(e: Endpoint): string {
  return `${e.transport} ${formatHostPort(e.address, e.port)}`;
}

/**
 * The one-line error the CLI prints when a listening socket cannot be bound, e.g.
 * `cannot listen on udp 0.0.0.0:5060: address in use (is another SIP server running? try: ss -lunp | grep 5060)`.
 * `err` is the Node system error (`code` EADDRINUSE, EACCES, ...).
 */
export function listenError(transport: TransportName, address: string, port: number, err: unknown): TransportError {
  const where = `cannot listen on ${transport} ${formatHostPort(address, port)}`;
  const errno = (err as { code?: unknown } | null)?.code;
  const ssFlags = transport === 'udp' ? '-lunp' : '-ltnp';
  switch (errno) {
    case 'EADDRINUSE':
      return new TransportError(
        'TRANSPORT_ADDRESS_IN_USE',
        `${where}: address in use (is another SIP server running? try: ss ${ssFlags} | grep ${port})`,
        { cause: err },
      );
    case 'EACCES':
    case 'EPERM':
      return new TransportError(
        'TRANSPORT_PERMISSION_DENIED',
        `${where}: permission denied (use a port >= 1024, or grant CAP_NET_BIND_SERVICE)`,
        { cause: err },
      );
    case 'EADDRNOTAVAIL':
      return new TransportError(
        'TRANSPORT_ADDRESS_NOT_AVAILABLE',
        `${where}: address not available (is ${address} configured on this host?)`,
        { cause: err },
      );
    default: {
      const detail = err instanceof Error ? err.message : String(err);
      return new TransportError('TRANSPORT_LISTEN_FAILED', `${where}: ${detail}`, { cause: err });
    }
  }
}

/**
 * Normalizes an address reported by a socket: an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`,
 * seen on dual-stack sockets) becomes plain IPv4. Returns the address and its family.
 */
export function normalizeSocketAddress(address: string): { address: string; family: 4 | 6 } {
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && /^\d+\.\d+\.\d+\.\d+$/.test(lower.slice(7))) {
    return { address: lower.slice(7), family: 4 };
  }
  return { address, family: address.includes(':') ? 6 : 4 };
}

/** The connection-table key of a remote address. */
export function remoteKey(address: string, port: number): string {
  return `${normalizeSocketAddress(address).address}|${port}`;
}
