import { SipParseError } from './errors.ts';
import { Headers, type HeaderField, headerNameInBytes, trimWs } from './headers.ts';
import type { SipMessage } from './message.ts';
import { isTokenChar, isWs } from './params.ts';

/**
 * Size bounds for one message. Anything beyond them is rejected with a precise error instead of
 * being buffered or scanned without limit.
 */
export interface ParseLimits {
  /** Largest whole message in bytes (RFC 3261 §18.1.1 leaves UDP at the datagram size). */
  maxMessageBytes: number;
  /** Most header fields (after folding) in one message. */
  maxHeaders: number;
  /** Longest single header line or start line, folding included. */
  maxLineBytes: number;
}

export const DEFAULT_LIMITS: ParseLimits = {
  maxMessageBytes: 65_535,
  maxHeaders: 256,
  maxLineBytes: 16_384,
};

export interface ParseOptions {
  /**
   * True for a message framed by a stream transport (TCP/TLS): Content-Length is mandatory and
   * the buffer holds exactly one message. False (the default) for a datagram: a missing
   * Content-Length means "the rest of the datagram", a larger one is an error, and octets past
   * Content-Length are ignored (RFC 3261 §18.3, RFC 4475 §3.1.1.8).
   */
  stream?: boolean;
  limits?: Partial<ParseLimits>;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

const VERSION_RE = /^SIP\/\d+\.\d+$/i;

/**
 * Finds the end of the header section: the index just past the empty line. Accepts CRLF line
 * ends and, leniently, bare LF. Returns -1 when the section is not terminated.
 */
export function findHeaderEnd(buf: Buffer, from = 0): number {
  // The earliest of "\n\n" and "\n\r\n" (CRLF CRLF is the usual "\r\n\r\n").
  const crlf = buf.indexOf(CRLF_BLANK, from);
  const lf = buf.indexOf(LF_BLANK, from);
  if (crlf < 0) return lf < 0 ? -1 : lf + 2;
  if (lf < 0 || crlf < lf) return crlf + 3;
  return lf + 2;
}

const CRLF_BLANK = Buffer.from('\n\r\n', 'latin1');
const LF_BLANK = Buffer.from('\n\n', 'latin1');

/**
 * Parses one SIP message from bytes. The bytes of header values, the Request-URI and the body
 * are kept intact (values are latin1 byte strings; the body is a Buffer).
 *
 * Ownership: the returned body is a view (`subarray`) of `buf`, not a copy, so the caller hands
 * `buf` over and must not modify or reuse its memory afterwards. The receive paths satisfy this:
 * Node's dgram socket delivers a fresh Buffer per datagram, and the stream framer delivers each
 * message as its own copy. A caller that recycles its buffer must pass a copy.
 *
 * Throws {@link SipParseError} with the response status the sender deserves: 400 for syntax and
 * framing faults, 505 for a SIP version other than 2.0, 513 for an oversized message.
 * Semantic checks (mandatory headers, CSeq, URI scheme) are in `validate.ts`.
 */
export function parseMessage(buf: Buffer, opts: ParseOptions = {}): SipMessage {
  const limits = opts.limits ? { ...DEFAULT_LIMITS, ...opts.limits } : DEFAULT_LIMITS;
  if (buf.length > limits.maxMessageBytes) {
    throw new SipParseError('message-too-large', `message of ${buf.length} bytes exceeds ${limits.maxMessageBytes}`, 513);
  }
  // RFC 3261 §7.5: implementations SHOULD ignore CRLFs that precede the start line.
  let start = 0;
  while (start < buf.length && (buf[start] === CR || buf[start] === LF)) start++;
  if (start === buf.length) throw new SipParseError('empty', 'empty message');

  // One latin1 string of the rest of the datagram, read line by line up to the empty line: this
  // finds the end of the header section in the same pass (no separate search for CRLF CRLF).
  const text = buf.toString('latin1', start);
  let section: HeaderSection;
  try {
    section = readHeaderSection(buf, start, text, limits);
  } catch (e) {
    // A bound was exceeded. Without a terminating empty line the message is reported as
    // unterminated (nothing readable to answer), as if the section had never been read.
    if (findHeaderEnd(buf, start) < 0) {
      throw new SipParseError('unterminated-headers', 'header section is not terminated by an empty line');
    }
    throw e;
  }
  const { startLine, fields, error } = section;
  if (section.end < 0) {
    const unterminated = new SipParseError('unterminated-headers', 'header section is not terminated by an empty line');
    // A truncated datagram: keep what is readable so that the sender can still get its 400.
    if (startLine !== undefined) unterminated.partial = partialMessage(startLine, fields);
    throw unterminated;
  }
  if (startLine === undefined) throw new SipParseError('empty', 'no start line');
  try {
    if (error) throw error;
    const body = extractBody(buf, start + section.end, fields, opts.stream === true);
    return buildMessage(startLine, fields, body);
  } catch (e) {
    if (e instanceof SipParseError && !e.partial) e.partial = partialMessage(startLine, fields);
    throw e;
  }
}

/** The readable part of a message that failed, for addressing an error response. */
function partialMessage(startLine: string, fields: HeaderField[]): SipMessage {
  const headers = new Headers(fields);
  const body = Buffer.alloc(0);
  if (/^SIP\//i.test(startLine)) return { kind: 'response', status: 0, reason: '', version: '', headers, body };
  const method = startLine.split(' ', 1)[0] ?? '';
  return { kind: 'request', method, uri: '', version: 'SIP/2.0', headers, body };
}

interface HeaderSection {
  /** The first line; undefined when the text ended before any line. */
  startLine: string | undefined;
  fields: HeaderField[];
  /** The first malformed field line, reported once the other fields are collected. */
  error: SipParseError | undefined;
  /** Index in the text just past the empty line that ends the section; -1 when there is none. */
  end: number;
}

/**
 * Reads the header section (start line, fields, the empty line) in one pass: folding undone
 * (§7.3.1: LWS folding is one SP), `name: value` fields split. A malformed field line is
 * reported as `error` while the other fields are still collected, so that an error response
 * can be addressed from them; exceeded bounds throw at once. Reading stops at the empty line
 * (only a line ended by LF counts: a trailing bare CR is not a terminator).
 *
 * `text` is `buf` from `offset` on, decoded as latin1 (one character per byte). For speed, the
 * per-character work (names, the colon, whitespace) reads the bytes, which is cheaper than
 * `charCodeAt`; only line ends are searched in the text (a native search), and only values are
 * sliced from it.
 */
function readHeaderSection(buf: Buffer, offset: number, text: string, limits: ParseLimits): HeaderSection {
  const fields: HeaderField[] = [];
  let error: SipParseError | undefined;
  let startLine: string | undefined;
  let pos = 0;
  const len = text.length;
  const maxLine = limits.maxLineBytes;
  while (pos < len) {
    let eol = text.indexOf('\n', pos);
    const hasLf = eol >= 0;
    if (!hasLf) eol = len;
    // From here on, positions are in `buf` (text index + offset).
    const lineStart = pos + offset;
    const end = eol > pos && buf[eol - 1 + offset] === CR ? eol - 1 + offset : eol + offset;
    if (end - lineStart > maxLine) {
      throw new SipParseError('line-too-long', `a header line exceeds ${maxLine} bytes`, 400);
    }
    pos = eol + 1;
    if (end === lineStart) {
      // The empty line that ends the section.
      return { startLine, fields, error, end: hasLf ? pos : -1 };
    }
    if (startLine === undefined) {
      startLine = text.slice(lineStart - offset, end - offset);
      continue;
    }
    const first = buf[lineStart]!;
    if (first === SP || first === HT) {
      // A continuation line. Before any field (right after the start line) it is malformed.
      const last = fields[fields.length - 1];
      if (!last) {
        error ??= new SipParseError('bad-header', 'continuation line before any header field');
        continue;
      }
      const more = trimWs(text.slice(lineStart - offset, end - offset));
      last.value = last.value === '' ? more : more === '' ? last.value : `${last.value} ${more}`;
      if (last.value.length > maxLine) {
        throw new SipParseError('line-too-long', `a folded header exceeds ${maxLine} bytes`, 400);
      }
      continue;
    }
    // field-name HCOLON, HCOLON = *( SP / HTAB ) ":" SWS: the name is scanned in place, so that
    // only the value is sliced (known names come from headerNameInBytes without a slice).
    let nameEnd = lineStart;
    while (nameEnd < end && TOKEN_BYTE[buf[nameEnd]!] === 1) nameEnd++;
    let colon = nameEnd;
    while (colon < end && (buf[colon] === SP || buf[colon] === HT)) colon++;
    if (nameEnd === lineStart || colon === end || buf[colon] !== COLON) {
      error ??= new SipParseError('bad-header', `malformed header line: ${preview(text.slice(lineStart - offset, end - offset))}`);
      continue;
    }
    if (fields.length >= limits.maxHeaders) {
      throw new SipParseError('too-many-headers', `more than ${limits.maxHeaders} header fields`);
    }
    let vs = colon + 1;
    let ve = end;
    while (vs < ve && WS_BYTE[buf[vs]!] === 1) vs++;
    while (ve > vs && WS_BYTE[buf[ve - 1]!] === 1) ve--;
    const { name, key } = headerNameInBytes(buf, lineStart, nameEnd, text, offset);
    fields.push({ name, key, value: text.slice(vs - offset, ve - offset) });
  }
  return { startLine, fields, error, end: -1 };
}

/** Per byte value: 1 for a token character (isTokenChar), as a table indexed without a range check. */
const TOKEN_BYTE = new Uint8Array(256);
/** Per byte value: 1 for LWS (isWs: SP, HTAB, CR, LF). */
const WS_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  TOKEN_BYTE[c] = isTokenChar(c) ? 1 : 0;
  WS_BYTE[c] = isWs(c) ? 1 : 0;
}

/** Whether `text[start,end)` is a non-empty token (checked in place, without slicing). */
function isTokenRange(text: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) if (!isTokenChar(text.charCodeAt(i))) return false;
  return true;
}

/** A Content-Length value of 1 to 10 digits, or -1 (checked without a regular expression). */
function digitsValue(text: string): number {
  if (text.length === 0 || text.length > 10) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** Content-Length values from every field (a list of equal values is tolerated, §20.14 allows one). */
function contentLength(fields: HeaderField[]): number | undefined {
  let found: number | undefined;
  for (const f of fields) {
    if (f.key !== 'content-length') continue;
    const whole = digitsValue(f.value);
    const parts = whole >= 0 ? [f.value] : f.value.split(',');
    for (const part of parts) {
      const n = digitsValue(trimWs(part));
      if (n < 0) throw new SipParseError('bad-content-length', `invalid Content-Length: ${preview(f.value)}`);
      if (found !== undefined && found !== n) {
        throw new SipParseError('multiple-content-length', 'conflicting Content-Length values');
      }
      found = n;
    }
  }
  return found;
}

function extractBody(buf: Buffer, headerEnd: number, fields: HeaderField[], stream: boolean): Buffer {
  const available = buf.length - headerEnd;
  const length = contentLength(fields);
  if (length === undefined) {
    // §18.3: mandatory on streams; on datagrams the body runs to the end of the datagram.
    if (stream) throw new SipParseError('missing-content-length', 'Content-Length is mandatory on stream transports');
    return bodyView(buf, headerEnd, buf.length);
  }
  if (length > available) {
    throw new SipParseError(
      'content-length-too-large',
      `Content-Length ${length} is larger than the ${available} body bytes received`,
    );
  }
  // Octets beyond Content-Length in a datagram are ignored (§18.3).
  return bodyView(buf, headerEnd, headerEnd + length);
}

/**
 * `buf[start,end)` as a view, not a copy: copying was a measurable share of parsing, and `buf`
 * belongs to the message once parsed (see the ownership rule of {@link parseMessage}).
 */
function bodyView(buf: Buffer, start: number, end: number): Buffer {
  return buf.subarray(start, Math.max(start, end));
}

/** Whether `s` starts with `SIP/`, in any case (a status line). */
function isStatusLine(s: string): boolean {
  return (
    s.length >= 4 &&
    (s.charCodeAt(0) | 0x20) === 0x73 /* s */ &&
    (s.charCodeAt(1) | 0x20) === 0x69 /* i */ &&
    (s.charCodeAt(2) | 0x20) === 0x70 /* p */ &&
    s.charCodeAt(3) === 0x2f /* / */
  );
}

/** `SIP/2.0` in any case, checked without allocating (the version of every message we accept). */
function isSip20(v: string): boolean {
  return v.length === 7 && isStatusLine(v) && v.charCodeAt(4) === 0x32 && v.charCodeAt(5) === 0x2e && v.charCodeAt(6) === 0x30;
}

function buildMessage(startLine: string, fields: HeaderField[], body: Buffer): SipMessage {
  // The parser's fields are fresh objects: the Headers take them over without copying.
  const headers = Headers.adopt(fields);
  if (isStatusLine(startLine)) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    const sp1 = startLine.indexOf(' ');
    const sp2 = sp1 < 0 ? -1 : startLine.indexOf(' ', sp1 + 1);
    if (sp1 < 0) throw new SipParseError('bad-status-line', `malformed status line: ${preview(startLine)}`);
    const version = startLine.slice(0, sp1);
    const codeEnd = sp2 < 0 ? startLine.length : sp2;
    const status = codeEnd - sp1 === 4 ? digitsValue(startLine.slice(sp1 + 1, codeEnd)) : -1;
    if (status < 0) {
      throw new SipParseError('bad-status-code', `malformed status code: ${preview(startLine.slice(sp1 + 1, codeEnd))}`);
    }
    if (status < 100 || status > 699) throw new SipParseError('bad-status-code', `status code out of range: ${status}`);
    if (!isSip20(version) && !VERSION_RE.test(version)) {
      throw new SipParseError('bad-version', `malformed SIP version: ${preview(version)}`);
    }
    const reason = sp2 < 0 ? '' : startLine.slice(sp2 + 1);
    return { kind: 'response', status, reason, version, headers, body };
  }
  // Request-Line = Method SP Request-URI SP SIP-Version CRLF: exactly two single spaces.
  const sp1 = startLine.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : startLine.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 <= sp1 + 1 || sp2 === startLine.length - 1 || startLine.indexOf(' ', sp2 + 1) >= 0) {
    throw new SipParseError('bad-request-line', `malformed request line: ${preview(startLine)}`);
  }
  const method = startLine.slice(0, sp1);
  const uri = startLine.slice(sp1 + 1, sp2);
  const version = startLine.slice(sp2 + 1);
  if (!isTokenRange(method, 0, method.length)) throw new SipParseError('bad-method', `invalid method: ${preview(method)}`);
  if (hasTabOrLineEnd(uri)) throw new SipParseError('bad-request-uri', 'whitespace in the Request-URI');
  if (!isSip20(version)) {
    if (!VERSION_RE.test(version)) throw new SipParseError('bad-version', `malformed SIP version: ${preview(version)}`);
    throw new SipParseError('unsupported-version', `SIP version ${version} is not supported`, 505);
  }
  return { kind: 'request', method, uri, version, headers, body };
}

function hasTabOrLineEnd(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === HT || c === CR || c === LF) return true;
  }
  return false;
}

/** A short, printable preview of offending input for error messages and logs. */
export function preview(text: string, max = 60): string {
  const clipped = text.length > max ? text.slice(0, max) + '...' : text;
  return JSON.stringify(clipped);
}
