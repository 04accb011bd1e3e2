/**
 * The daemon's end of the control socket (edge adapter): a unix socket, mode 0600, that takes
 * one JSON request per line and answers each with one JSON line (control-protocol.ts).
 */
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../runtime/logger.ts';
import { handleControlLine, MAX_REQUEST_LINE, type ControlCommands } from './control-protocol.ts';

/** Whether something answers on the socket path (a live daemon) rather than a stale file. */
function inUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly commands: ControlCommands,
    private readonly logger: Logger,
  ) {}

  /** Listens; a stale socket file from a killed daemon is replaced, a live one is an error. */
  async start(): Promise<void> {
    if (await inUse(this.path)) throw new Error(`control socket ${this.path} is in use (is another hookswitch running?)`);
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await unlink(this.path).catch(() => undefined);
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.warn('control socket error', { reason: err.message }));
    await chmod(this.path, 0o600);
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(this.path).catch(() => undefined);
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = '';
    let queue = Promise.resolve();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        queue = queue.then(async () => {
          const reply = await handleControlLine(line, this.commands);
          if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
        });
      }
      if (pending.length > MAX_REQUEST_LINE) {
        socket.end(`${JSON.stringify({ ok: false, error: 'request line too long' })}\n`);
        pending = '';
      }
    });
  }
}

/** The CLI's end: sends one request, resolves with the reply (rejects when nobody listens). */
export function controlRequest(path: string, request: object, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      data += chunk;
      const nl = data.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(data.slice(0, nl)));
      } catch {
        reject(new Error('the daemon sent something that is not JSON'));
      }
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? `hookswitch is not running (no daemon on ${path})` : err.message));
    });
  });
}
