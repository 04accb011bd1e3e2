/**
 * The daemon's end of the control socket (edge adapter): a unix socket (mode 0600, or 0660 for a
 * service whose group may use the CLI), that takes
 * one JSON request per line and answers each with one JSON line (control-protocol.ts). A `trace`
 * request turns the connection into a stream of trace lines until the client disconnects.
 */
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../runtime/logger.ts';
import type { TraceSource } from '../trace/trace-hub.ts';
import { handleControlLine, MAX_REQUEST_LINE, parseControlRequest, TraceStreamQueue, type ControlCommands } from './control-protocol.ts';

/** Bytes a trace client may leave unread before messages are dropped for it (per client). */
export const TRACE_MAX_BUFFERED_BYTES = 1 << 20;

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
    /** Where `trace` subscribers attach; without it `trace` is refused. */
    private readonly trace?: TraceSource,
    private readonly mode = 0o600,
  ) {}

  /** Listens; a stale socket file from a killed daemon is replaced, a live one is an error. */
  async start(): Promise<void> {
    if (await inUse(this.path)) throw new Error(`control socket ${this.path} is in use (is another hookswitch running?)`);
    await mkdir(dirname(this.path), { recursive: true, mode: this.mode & 0o070 ? 0o750 : 0o700 });
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
    await chmod(this.path, this.mode);
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
    let streaming = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      if (streaming) return;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const request = parseControlRequest(line);
        if (this.trace && typeof request !== 'string' && request.cmd === 'trace') {
          streaming = true;
          pending = '';
          const trace = this.trace;
          queue = queue.then(() => this.stream(socket, trace));
          return;
        }
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

  /** Writes `{ok:true,trace:true}`, then one line per trace event until the socket closes. */
  private stream(socket: Socket, trace: TraceSource): void {
    if (socket.destroyed) return;
    const queue = new TraceStreamQueue(TRACE_MAX_BUFFERED_BYTES);
    socket.write(`${JSON.stringify({ ok: true, trace: true })}\n`);
    const unsubscribe = trace.subscribe((event) => {
      if (!socket.writable) return;
      const text = queue.offer(event, socket.writableLength);
      if (text) socket.write(text);
    });
    this.logger.info('trace client attached');
    socket.once('close', () => {
      unsubscribe();
      this.logger.info('trace client detached', { dropped: queue.dropped });
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
