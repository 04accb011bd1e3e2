import { SipParseError } from './errors.ts';
import { Headers, type HeaderField, headerKey, trimWs } from './headers.ts';
import type { SipMessage } from './message.ts';
import { isToken } from './params.ts';

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
 * are kept intact (values are latin1 byte strings; the body is a Buffer slice copy).
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

  const headerEnd = findHeaderEnd(buf, start);
  if (headerEnd < 0) {
    const error = new SipParseError('unterminated-headers', 'header section is not terminated by an empty line');
    // A truncated datagram: keep what is readable so that the sender can still get its 400.
    try {
      const section = readHeaderSection(buf.toString('latin1', start), limits);
      error.partial = partialMessage(section.startLine, section.fields);
    } catch {
      // Not even a readable start: nothing to answer.
    }
    throw error;
  }

  const { startLine, fields, error } = readHeaderSection(buf.toString('latin1', start, headerEnd), limits);
  try {
    if (error) throw error;
    const body = extractBody(buf, headerEnd, fields, opts.stream === true);
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

/**
 * Reads the header section (start line, fields, the empty line) in one pass: folding undone
 * (§7.3.1: LWS folding is one SP), `name: value` fields split. A malformed field line is
 * reported as `error` while the other fields are still collected, so that an error response
 * can be addressed from them; exceeded bounds throw at once.
 */
function readHeaderSection(
  text: string,
  limits: ParseLimits,
): { startLine: string; fields: HeaderField[]; error?: SipParseError } {
  const fields: HeaderField[] = [];
  let error: SipParseError | undefined;
  let startLine: string | undefined;
  let pos = 0;
  while (pos < text.length) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = text.length;
    const end = eol > pos && text.charCodeAt(eol - 1) === CR ? eol - 1 : eol;
    if (end - pos > limits.maxLineBytes) {
      throw new SipParseError('line-too-long', `a header line exceeds ${limits.maxLineBytes} bytes`, 400);
    }
    const lineStart = pos;
    pos = eol + 1;
    if (end === lineStart) break; // the empty line that ends the section
    if (startLine === undefined) {
      startLine = text.slice(lineStart, end);
      continue;
    }
    const first = text.charCodeAt(lineStart);
    if (first === SP || first === HT) {
      // A continuation line. Before any field (right after the start line) it is malformed.
      const last = fields[fields.length - 1];
      if (!last) {
        error ??= new SipParseError('bad-header', 'continuation line before any header field');
        continue;
      }
      const more = trimWs(text.slice(lineStart, end));
      last.value = last.value === '' ? more : more === '' ? last.value : `${last.value} ${more}`;
      if (last.value.length > limits.maxLineBytes) {
        throw new SipParseError('line-too-long', `a folded header exceeds ${limits.maxLineBytes} bytes`, 400);
      }
      continue;
    }
    const colon = text.indexOf(':', lineStart);
    // HCOLON = *( SP / HTAB ) ":" SWS
    const name = colon > lineStart && colon < end ? trimEndWs(text.slice(lineStart, colon)) : '';
    if (!isToken(name)) {
      error ??= new SipParseError('bad-header', `malformed header line: ${preview(text.slice(lineStart, end))}`);
      continue;
    }
    if (fields.length >= limits.maxHeaders) {
      throw new SipParseError('too-many-headers', `more than ${limits.maxHeaders} header fields`);
    }
    fields.push({ name, key: headerKey(name), value: trimWs(text.slice(colon + 1, end)) });
  }
  if (startLine === undefined) throw new SipParseError('empty', 'no start line');
  return { startLine, fields, error };
}

function trimEndWs(s: string): string {
  let end = s.length;
  while (end > 0 && (s.charCodeAt(end - 1) === SP || s.charCodeAt(end - 1) === HT)) end--;
  return s.slice(0, end);
}

/** Content-Length values from every field (a list of equal values is tolerated, §20.14 allows one). */
function contentLength(fields: HeaderField[]): number | undefined {
  let found: number | undefined;
  for (const f of fields) {
    if (f.key !== 'content-length') continue;
    const parts = /^\d{1,10}$/.test(f.value) ? [f.value] : f.value.split(',');
    for (const part of parts) {
      const text = trimWs(part);
      if (!/^\d{1,10}$/.test(text)) {
        throw new SipParseError('bad-content-length', `invalid Content-Length: ${preview(f.value)}`);
      }
      const n = Number(text);
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
    return Buffer.from(buf.subarray(headerEnd));
  }
  if (length > available) {
    throw new SipParseError(
      'content-length-too-large',
      `Content-Length ${length} is larger than the ${available} body bytes received`,
    );
  }
  // Octets beyond Content-Length in a datagram are ignored (§18.3).
  return Buffer.from(buf.subarray(headerEnd, headerEnd + length));
}

function buildMessage(startLine: string, fields: HeaderField[], body: Buffer): SipMessage {
  const headers = new Headers(fields);
  if (startLine.startsWith('SIP/') || /^SIP\//i.test(startLine)) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    const sp1 = startLine.indexOf(' ');
    const sp2 = sp1 < 0 ? -1 : startLine.indexOf(' ', sp1 + 1);
    if (sp1 < 0) throw new SipParseError('bad-status-line', `malformed status line: ${preview(startLine)}`);
    const version = startLine.slice(0, sp1);
    const codeText = sp2 < 0 ? startLine.slice(sp1 + 1) : startLine.slice(sp1 + 1, sp2);
    if (!/^\d{3}$/.test(codeText)) throw new SipParseError('bad-status-code', `malformed status code: ${preview(codeText)}`);
    const status = Number(codeText);
    if (status < 100 || status > 699) throw new SipParseError('bad-status-code', `status code out of range: ${status}`);
    if (!VERSION_RE.test(version)) throw new SipParseError('bad-version', `malformed SIP version: ${preview(version)}`);
    const reason = sp2 < 0 ? '' : startLine.slice(sp2 + 1);
    return { kind: 'response', status, reason, version, headers, body };
  }
  // Request-Line = Method SP Request-URI SP SIP-Version CRLF: exactly two single spaces.
  const parts = startLine.split(' ');
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) {
    throw new SipParseError('bad-request-line', `malformed request line: ${preview(startLine)}`);
  }
  const [method, uri, version] = parts as [string, string, string];
  if (!isToken(method)) throw new SipParseError('bad-method', `invalid method: ${preview(method)}`);
  if (/[\t\r\n]/.test(uri)) throw new SipParseError('bad-request-uri', 'whitespace in the Request-URI');
  if (!VERSION_RE.test(version)) throw new SipParseError('bad-version', `malformed SIP version: ${preview(version)}`);
  if (version.toUpperCase() !== 'SIP/2.0') {
    throw new SipParseError('unsupported-version', `SIP version ${version} is not supported`, 505);
  }
  return { kind: 'request', method, uri, version, headers, body };
}

/** A short, printable preview of offending input for error messages and logs. */
export function preview(text: string, max = 60): string {
  const clipped = text.length > max ? text.slice(0, max) + '...' : text;
  return JSON.stringify(clipped);
}
