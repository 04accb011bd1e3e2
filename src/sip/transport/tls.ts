import net from 'node:net';
import tls from 'node:tls';
import { StreamTransport, type StreamTransportOptions } from './stream-transport.ts';
import type { Endpoint, SendOptions, TransportErrorCode } from './transport.ts';

/** Options of {@link TlsTransport}: the stream options plus certificate material (PEM). */
export interface TlsTransportOptions extends StreamTransportOptions {
  /** Server certificate chain (PEM). */
  cert: Buffer;
  /** Private key of `cert` (PEM). */
  key: Buffer;
  /** Trusted CA certificates for verifying servers we connect to; default: Node's root store. */
  ca?: Buffer | Buffer[];
  /**
   * Verify the server certificate of outgoing connections (default true). Turning it off makes
   * TLS an encrypted but unauthenticated transport; only for lab setups.
   */
  rejectUnauthorized?: boolean;
}

/**
 * SIP over TLS (RFC 3261 §18, §26.3.1). Serves `cert`/`key`; as a client verifies the server
 * certificate against `ca` (or the system roots) and the host name or IP address dialled.
 */
export class TlsTransport extends StreamTransport {
  readonly name = 'tls' as const;
  protected readonly readyEvent = 'secureConnect' as const;

  constructor(private readonly tlsOpts: TlsTransportOptions) {
    super(tlsOpts);
  }

  protected createServer(onSocket: (socket: net.Socket) => void): net.Server {
    const server = tls.createServer({ cert: this.tlsOpts.cert, key: this.tlsOpts.key, noDelay: true }, onSocket);
    server.on('tlsClientError', (err, socket) =>
      this.opts.logger.debug('tls handshake failed', {
        peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
        error: err.message,
      }),
    );
    return server;
  }

  protected openSocket(dest: Endpoint, opts: SendOptions): net.Socket {
    // SNI carries host names only (RFC 6066 §3); an IP address is verified against IP SANs.
    const servername = opts.serverName ?? (net.isIP(dest.address) ? undefined : dest.address);
    const options: tls.ConnectionOptions = {
      host: dest.address,
      port: dest.port,
      rejectUnauthorized: this.tlsOpts.rejectUnauthorized ?? true,
    };
    if (servername !== undefined) options.servername = servername;
    if (this.tlsOpts.ca !== undefined) options.ca = this.tlsOpts.ca;
    return tls.connect(options);
  }

  protected override connectErrorCode(_err: Error, tcpUp: boolean): TransportErrorCode {
    return tcpUp ? 'TRANSPORT_TLS_FAILED' : 'TRANSPORT_CONNECT_FAILED';
  }
}
