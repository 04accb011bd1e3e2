import { trimWs } from '../message/headers.ts';
import { TransportError } from './transport.ts';

/**
 * Cuts a SIP byte stream (TCP, TLS) into whole messages (RFC 3261 §18.3). Pure: no sockets.
 *
 * Feed it any split of the stream with {@link StreamFramer.push}; it returns what the chunk
 * completed. The header section ends at the first CRLFCRLF; its Content-Length (or compact `l`)
 * says how many body bytes follow. Between messages, a CRLFCRLF is a keep-alive ping (RFC 5626
 * §4.4.1) that the owner answers with a single CRLF; a lone CRLF is ignored.
 *
 * After an `error` event the framer is dead (every later push returns nothing): the owner closes
 * the connection, since the stream can no longer be delimited.
 */
export type FramerEvent =
  | { type: 'message'; bytes: Buffer }
  | { type: 'keepalive' }
  | { type: 'error'; error: TransportError };

/** Bounds of one message; exceeding either is a framing error, never unbounded buffering. */
export interface StreamFramerOptions {
  /** Longest header section, start line and final CRLFCRLF included (default 64 KiB). */
  maxHeaderBytes?: number;
  /** Largest Content-Length accepted (default 1 MiB). */
  maxBodyBytes?: number;
}

const CR = 0x0d;
const LF = 0x0a;
const END_OF_HEADERS = Buffer.from('\r\n\r\n', 'latin1');
const INITIAL_CAPACITY = 4096;
/** A buffer grown past this is released once it drains, so idle connections stay small. */
const RETAIN_LIMIT = 64 * 1024;

/** Framer states. Idle: between messages, skipping CRLFs, watching for a CRLFCRLF ping. */
const State = {
  Idle: 0,
  /** Inside a header section, looking for CRLFCRLF. */
  Header: 1,
  /** Header section parsed; waiting for the body bytes. */
  Body: 2,
  Failed: 3,
} as const;
type State = (typeof State)[keyof typeof State];

export class StreamFramer {
  private readonly maxHeaderBytes: number;
  private readonly maxBodyBytes: number;
  private buf: Buffer = Buffer.allocUnsafe(INITIAL_CAPACITY);
  private start = 0;
  private end = 0;
  private state: State = State.Idle;
  /** Progress through `\r\n\r\n` while idle (0..3). */
  private pingPos = 0;
  /** Bytes of the current header section already searched for CRLFCRLF. */
  private scanned = 0;
  /** Total length (headers + body) of the message being read, in the Body state. */
  private messageLength = 0;

  constructor(opts: StreamFramerOptions = {}) {
    this.maxHeaderBytes = opts.maxHeaderBytes ?? 64 * 1024;
    this.maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024;
  }

  /** True after a framing error. */
  get failed(): boolean {
    return this.state === State.Failed;
  }

  /** Bytes held that do not yet form a whole message. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Consumes `chunk` and returns the messages, pings and (at most one) error it completed. */
  push(chunk: Buffer): FramerEvent[] {
    const events: FramerEvent[] = [];
    if (this.state === State.Failed || chunk.length === 0) return events;
    this.append(chunk);
    for (;;) {
      if (this.state === State.Idle) {
        if (!this.skipIdle(events)) break;
      } else if (this.state === State.Header) {
        const error = this.findHeaderEnd();
        if (error) {
          this.fail(error, events);
          break;
        }
        if (this.state === State.Header) break;
      } else if (this.state === State.Body) {
        if (this.end - this.start < this.messageLength) break;
        const out = Buffer.allocUnsafe(this.messageLength);
        this.buf.copy(out, 0, this.start, this.start + this.messageLength);
        this.start += this.messageLength;
        this.state = State.Idle;
        events.push({ type: 'message', bytes: out });
      } else {
        break;
      }
    }
    this.releaseIfDrained();
    return events;
  }

  /** Skips CR/LF between messages. Returns true when a message starts at `start`. */
  private skipIdle(events: FramerEvent[]): boolean {
    const buf = this.buf;
    while (this.start < this.end) {
      const b = buf[this.start]!;
      if (b === CR) {
        this.pingPos = this.pingPos === 0 || this.pingPos === 2 ? this.pingPos + 1 : 1;
      } else if (b === LF) {
        if (this.pingPos === 3) {
          // RFC 5626 §4.4.1: a CRLFCRLF ping between messages is answered with a CRLF pong.
          events.push({ type: 'keepalive' });
          this.pingPos = 0;
        } else {
          this.pingPos = this.pingPos === 1 ? 2 : 0;
        }
      } else {
        this.pingPos = 0;
        this.scanned = 0;
        this.state = State.Header;
        return true;
      }
      this.start++;
    }
    return false;
  }

  /**
   * Looks for the end of the header section, resuming where the last search stopped. On success
   * moves to the Body state; returns a framing error when the section is unacceptable.
   */
  private findHeaderEnd(): TransportError | undefined {
    const pending = this.buf.subarray(this.start, this.end);
    const from = Math.max(0, this.scanned - 3);
    const at = pending.indexOf(END_OF_HEADERS, from);
    if (at < 0) {
      this.scanned = pending.length;
      if (pending.length > this.maxHeaderBytes) return headerTooLarge(this.maxHeaderBytes);
      return undefined;
    }
    const headerLength = at + 4;
    if (headerLength > this.maxHeaderBytes) return headerTooLarge(this.maxHeaderBytes);
    const length = contentLength(pending.toString('latin1', 0, at), this.maxBodyBytes);
    if (length instanceof TransportError) return length;
    this.messageLength = headerLength + length;
    this.state = State.Body;
    return undefined;
  }

  private fail(error: TransportError, events: FramerEvent[]): void {
    this.state = State.Failed;
    this.buf = Buffer.alloc(0);
    this.start = this.end = 0;
    events.push({ type: 'error', error });
  }

  private append(chunk: Buffer): void {
    if (this.end + chunk.length > this.buf.length) {
      const held = this.end - this.start;
      if (held + chunk.length <= this.buf.length) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, held + chunk.length));
        this.buf.copy(grown, 0, this.start, this.end);
        this.buf = grown;
      }
      this.start = 0;
      this.end = held;
    }
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
  }

  private releaseIfDrained(): void {
    if (this.start !== this.end || this.state === State.Failed) return;
    this.start = this.end = 0;
    if (this.buf.length > RETAIN_LIMIT) this.buf = Buffer.allocUnsafe(INITIAL_CAPACITY);
  }
}

function headerTooLarge(max: number): TransportError {
  return new TransportError('FRAMING_HEADER_TOO_LARGE', `header section longer than ${max} bytes`);
}

/**
 * The Content-Length of a header section (start line included, final CRLFCRLF excluded), read as
 * latin1 so every byte maps to one character. Handles the compact form `l`, any case, LWS around
 * the colon and folded lines (RFC 3261 §7.3.1).
 *
 * RFC 3261 §18.3: "In the case of stream-oriented transports such as TCP, the Content-Length
 * header field indicates the size of the body ... The Content-Length header field MUST be used
 * with stream oriented transports." A missing one is therefore a framing error.
 */
function contentLength(section: string, maxBody: number): number | TransportError {
  const lines = section.split('\r\n');
  let found: number | undefined;
  let header = '';
  const check = (): TransportError | undefined => {
    const colon = header.indexOf(':');
    if (colon < 0) return undefined;
    const name = trimWs(header.slice(0, colon)).toLowerCase();
    if (name !== 'content-length' && name !== 'l') return undefined;
    const value = trimWs(header.slice(colon + 1));
    if (!/^[0-9]{1,10}$/.test(value)) {
      return new TransportError('FRAMING_INVALID_CONTENT_LENGTH', `invalid Content-Length ${JSON.stringify(value)}`);
    }
    const n = Number(value);
    if (found !== undefined && found !== n) {
      return new TransportError('FRAMING_CONFLICTING_CONTENT_LENGTH', `conflicting Content-Length values ${found} and ${n}`);
    }
    found = n;
    return undefined;
  };
  // lines[0] is the start line.
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length > 0 && (line[0] === ' ' || line[0] === '\t')) {
      header += ' ' + trimWs(line);
      continue;
    }
    const error = check();
    if (error) return error;
    header = line;
  }
  const error = check();
  if (error) return error;
  if (found === undefined) {
    return new TransportError('FRAMING_MISSING_CONTENT_LENGTH', 'missing Content-Length on a stream transport');
  }
  if (found > maxBody) {
    return new TransportError('FRAMING_BODY_TOO_LARGE', `Content-Length ${found} exceeds the limit of ${maxBody} bytes`);
  }
  return found;
}
