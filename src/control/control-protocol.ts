/**
 * The control protocol between the `hookswitch` CLI and the running daemon: one JSON object per
 * line over a unix socket, a request and then its reply. Pure: parsing and dispatch only.
 * `trace` is the one streaming request: its reply line is followed by one {@link TraceLine} per
 * SIP message until the client disconnects (the server handles it, not {@link ControlCommands}).
 */
import type { TransportTraceEvent } from '../sip/transport/transport-layer.ts';
import type { TransportName } from '../sip/transport/transport.ts';

/** A request from the CLI. */
export type ControlRequest =
  | { cmd: 'call'; number: string }
  | { cmd: 'answer' }
  | { cmd: 'hangup' }
  | { cmd: 'dtmf'; digits: string }
  | { cmd: 'status' }
  | { cmd: 'reload' }
  | { cmd: 'peers' }
  | { cmd: 'trace' };

/** The daemon's reply: `ok` with fields to show, or an error line for the user. */
export type ControlReply = { ok: true; [field: string]: unknown } | { ok: false; error: string };

/** What the daemon does for each command (the device endpoint and the gateway provide it). */
export interface ControlCommands {
  call(number: string): Promise<ControlReply>;
  answer(): ControlReply;
  hangup(): ControlReply;
  dtmf(digits: string): ControlReply;
  status(): ControlReply;
  /** Re-reads the configuration and applies what can change without dropping calls. */
  reload(): Promise<ControlReply>;
  /** The SIP services and hookswitch boxes seen on the LAN (mDNS). */
  peers(): ControlReply;
}

/** Longest request line accepted (bytes); longer input closes the connection. */
export const MAX_REQUEST_LINE = 4096;

/** DTMF digits a user may send: RFC 4733 events 0-15. */
export const DTMF_DIGITS = /^[0-9*#A-Da-d]{1,64}$/;
/**
 * What `call` takes: a dialable number (digits, *, #, +; a dial plan may take more, keep the CLI
 * strict) or a LAN peer's name, starting with a letter or written `@name` (src/calls/peer-route.ts).
 */
const NUMBER = /^(?:[0-9*#+]{1,32}|@[^\x00-\x1f\x7f]{1,63}|\p{L}[\p{L}\p{N} _-]{0,62})$/u;

/** Parses one request line; a string is the reason it is refused. */
export function parseControlRequest(line: string): ControlRequest | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'request is not JSON';
  }
  if (typeof value !== 'object' || value === null) return 'request is not an object';
  const r = value as Record<string, unknown>;
  switch (r.cmd) {
    case 'call':
      if (typeof r.number !== 'string' || !NUMBER.test(r.number)) return 'call needs a number of digits, *, # or + (up to 32), or a peer name (kitchen, @kitchen)';
      return { cmd: 'call', number: r.number };
    case 'dtmf':
      if (typeof r.digits !== 'string' || !DTMF_DIGITS.test(r.digits)) return 'dtmf needs 1 to 64 of 0-9 * # A-D';
      return { cmd: 'dtmf', digits: r.digits.toUpperCase() };
    case 'answer':
    case 'hangup':
    case 'status':
    case 'reload':
    case 'peers':
    case 'trace':
      return { cmd: r.cmd };
    default:
      return `unknown command ${JSON.stringify(r.cmd)}`;
  }
}

/** Runs one request line against `commands`; never throws. */
export async function handleControlLine(line: string, commands: ControlCommands): Promise<ControlReply> {
  const req = parseControlRequest(line);
  if (typeof req === 'string') return { ok: false, error: req };
  try {
    switch (req.cmd) {
      case 'call':
        return await commands.call(req.number);
      case 'answer':
        return commands.answer();
      case 'hangup':
        return commands.hangup();
      case 'dtmf':
        return commands.dtmf(req.digits);
      case 'status':
        return commands.status();
      case 'reload':
        return await commands.reload();
      case 'peers':
        return commands.peers();
      case 'trace':
        return { ok: false, error: 'trace is not available on this connection' };
    }
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** One line of a trace stream after its `{ok:true}` reply. */
export type TraceLine =
  | { type: 'sip'; event: TransportTraceEvent }
  | {
      /** The daemon dropped this many messages because the client read too slowly. */
      type: 'dropped';
      count: number;
    };

/** The JSON line (with its newline) carrying one traced message; the bytes go as base64. */
export function encodeTraceEvent(e: TransportTraceEvent): string {
  return `${JSON.stringify({
    type: 'sip',
    time: e.time,
    direction: e.direction,
    transport: e.transport,
    local: { address: e.local.address, port: e.local.port },
    remote: { address: e.remote.address, port: e.remote.port },
    ...(e.connection !== undefined ? { connection: e.connection } : {}),
    bytes: e.bytes.toString('base64'),
  })}\n`;
}

/** The JSON line saying that `count` messages were dropped. */
export function encodeTraceDropped(count: number): string {
  return `${JSON.stringify({ type: 'dropped', count })}\n`;
}

const TRANSPORTS: readonly string[] = ['udp', 'tcp', 'tls'] satisfies TransportName[];

/** Parses one line of a trace stream; a string is the reason it is refused. */
export function parseTraceLine(line: string): TraceLine | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'trace line is not JSON';
  }
  if (typeof v !== 'object' || v === null) return 'trace line is not an object';
  const r = v as Record<string, unknown>;
  if (r.type === 'dropped') {
    return Number.isSafeInteger(r.count) && (r.count as number) >= 0 ? { type: 'dropped', count: r.count as number } : 'dropped needs a count';
  }
  if (r.type !== 'sip') return `unknown trace line type ${JSON.stringify(r.type)}`;
  const transport = r.transport;
  if (typeof transport !== 'string' || !TRANSPORTS.includes(transport)) return 'trace event needs a transport udp, tcp or tls';
  if (r.direction !== 'in' && r.direction !== 'out') return 'trace event needs a direction in or out';
  if (typeof r.time !== 'number' || !Number.isFinite(r.time)) return 'trace event needs a time';
  if (typeof r.bytes !== 'string') return 'trace event needs bytes';
  const local = endpoint(r.local, transport as TransportName);
  const remote = endpoint(r.remote, transport as TransportName);
  if (!local || !remote) return 'trace event needs local and remote endpoints';
  const event: TransportTraceEvent = {
    time: r.time,
    direction: r.direction,
    transport: transport as TransportName,
    local,
    remote,
    bytes: Buffer.from(r.bytes, 'base64'),
  };
  if (typeof r.connection === 'string') event.connection = r.connection;
  return { type: 'sip', event };
}

function endpoint(v: unknown, transport: TransportName): TransportTraceEvent['local'] | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { address, port } = v as Record<string, unknown>;
  if (typeof address !== 'string' || !Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) return undefined;
  return { transport, address, port: port as number };
}

/**
 * The per-subscriber flow control of a trace stream: the gateway never waits for a trace client.
 * While more than `maxBufferedBytes` are still unsent to the client, new messages are dropped
 * and counted; the next message that fits is preceded by a `dropped` line with the count.
 */
export class TraceStreamQueue {
  private pendingDrops = 0;
  private totalDrops = 0;

  constructor(readonly maxBufferedBytes: number) {}

  /** Messages dropped so far. */
  get dropped(): number {
    return this.totalDrops;
  }

  /** The text to write for `event` given `buffered` bytes not yet sent; '' when it is dropped. */
  offer(event: TransportTraceEvent, buffered: number): string {
    if (buffered > this.maxBufferedBytes) {
      this.pendingDrops++;
      this.totalDrops++;
      return '';
    }
    const notice = this.pendingDrops > 0 ? encodeTraceDropped(this.pendingDrops) : '';
    this.pendingDrops = 0;
    return notice + encodeTraceEvent(event);
  }
}
