/**
 * The HTTP edge of the metrics (`metrics.enabled`): `GET /metrics` answers the exposition text
 * that `render` returns; any other path is 404 and any other method on `/metrics` 405. Bounded:
 * few connections, small headers, short timeouts, no request body read, so a scraper that
 * misbehaves (or anything else on the network) costs the gateway next to nothing.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../runtime/logger.ts';
import { EXPOSITION_CONTENT_TYPE } from './metrics.ts';

/** What {@link MetricsServer} needs. */
export interface MetricsServerOptions {
  /** Address to listen on (`metrics.bind`, loopback by default). */
  bind: string;
  /** TCP port (`metrics.port`); 0 takes a free one, see {@link MetricsServer.port}. */
  port: number;
  /** The exposition text, built at each scrape (`MetricsRegistry.render`). */
  render: () => string;
  logger: Logger;
}

/** Connections open at once; a Prometheus server scrapes with one. */
const MAX_CONNECTIONS = 8;
/** Request header bytes accepted (node's default is 16 KiB; a scrape sends a few hundred). */
const MAX_HEADER_BYTES = 4096;
/** A request must be complete within this time; idle keep-alive connections close sooner. */
const REQUEST_TIMEOUT_MS = 5000;
const KEEP_ALIVE_MS = 2000;

/**
 * Serves `GET /metrics` on `bind:port`. `start()` resolves once listening (rejecting with a
 * one-line message when the port is taken); `stop()` closes the listener and every connection.
 */
export class MetricsServer {
  private server: Server | undefined;
  private boundPort = 0;

  constructor(private readonly opts: MetricsServerOptions) {}

  /** The port listened on (the actual one when 0 was asked for); 0 before start. */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    const server = createServer(
      { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_MS },
      (req, res) => this.handle(req, res),
    );
    server.maxConnections = MAX_CONNECTIONS;
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const why = err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EADDRNOTAVAIL' ? 'the address is not on this box' : err.message;
        reject(new Error(`metrics endpoint cannot listen on ${this.opts.bind}:${this.opts.port}: ${why}`));
      };
      server.once('error', onError);
      server.listen(this.opts.port, this.opts.bind, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.opts.logger.warn('metrics endpoint error', { reason: err.message }));
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.opts.logger.info('metrics endpoint listening', { address: this.opts.bind, port: this.boundPort, path: '/metrics' });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      this.reply(res, 404, 'not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      this.reply(res, 405, 'method not allowed: use GET\n');
      return;
    }
    let body: string;
    try {
      body = this.opts.render();
    } catch (err) {
      this.opts.logger.error('metrics could not be rendered', { reason: err instanceof Error ? err.message : String(err) });
      this.reply(res, 500, 'metrics could not be rendered\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': EXPOSITION_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(body);
  }

  /** A short plain-text answer; the connection closes since the request body (if any) is not read. */
  private reply(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), Connection: 'close' });
    res.end(text);
  }
}
