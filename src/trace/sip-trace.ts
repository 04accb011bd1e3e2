/**
 * The terminal side of `hookswitch trace`, pure: turns a traced SIP message into text in the
 * spirit of FreeSWITCH's `sofia global siptrace` (a header line, then the message) or of
 * sngrep's message list (one line per message), and blanks Digest `response` values so that no
 * trace output (terminal, pcap, control socket) ever carries one.
 */
import type { TransportTraceEvent } from '../sip/transport/transport-layer.ts';
import { formatHostPort } from '../sip/transport/transport.ts';

/** What the formatter needs of a trace event. */
export type SipTraceEvent = Pick<TransportTraceEvent, 'time' | 'direction' | 'transport' | 'local' | 'remote' | 'bytes'>;

/** Options of {@link formatSipTrace}. */
export interface SipTraceFormat {
  /** `full`: header line and the whole message; `summary`: one line per message. */
  mode: 'full' | 'summary';
  /** Clock time shown in UTC or in the process's local time zone (default local). */
  utc?: boolean;
}

/** The character that replaces each character of a redacted value. */
export const REDACTION_CHAR = 'x';

/**
 * Text for one traced message, ending with a newline. Control characters from the network
 * (ESC and the like, which could drive the terminal) are shown as `\xNN`; the body is decoded as
 * UTF-8 with invalid bytes replaced.
 */
export function formatSipTrace(event: SipTraceEvent, format: SipTraceFormat): string {
  const time = clockTime(event.time, format.utc ?? false);
  const local = formatHostPort(event.local.address, event.local.port);
  const remote = formatHostPort(event.remote.address, event.remote.port);
  const [from, to] = event.direction === 'in' ? [remote, local] : [local, remote];
  const text = safeText(event.bytes.toString('utf8'));
  const lines = text.split(/\r?\n/);
  while (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  if (format.mode === 'summary') {
    return `${time} ${event.transport.toUpperCase().padEnd(3)} ${from} -> ${to}  ${lines[0] ?? ''}\n`;
  }
  const verb = event.direction === 'in' ? 'recv' : 'send';
  const preposition = event.direction === 'in' ? 'from' : 'to';
  const rule = `   ${'-'.repeat(72)}`;
  return [
    `${verb} ${event.bytes.length} bytes ${preposition} ${event.transport}/${remote} at ${time} (local ${event.transport}/${local}):`,
    rule,
    ...lines.map((l) => `   ${l}`),
    rule,
    '',
  ].join('\n');
}

/** `HH:MM:SS.mmm` of wall-clock milliseconds. */
function clockTime(ms: number, utc: boolean): string {
  const d = new Date(ms);
  const parts = utc
    ? [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  const [h, m, s, milli] = parts as [number, number, number, number];
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}.${pad(milli, 3)}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** C0 controls except TAB, CR and LF; DEL; C1 controls. */
const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

function safeText(text: string): string {
  return text.replace(UNSAFE, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Header names whose Digest credentials carry a `response` (RFC 3261 §20.7, §20.28). */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization']);
/**
 * A `response` auth-param and its value: `request-digest = LDQUOT 32LHEX RDQUOT` (RFC 3261
 * §25.1; RFC 8760 allows longer digests), matched leniently also without quotes.
 */
const RESPONSE_PARAM = /([\s,]|^)(response[ \t]*=[ \t]*)(?:"([^"\r\n]*)"?|([^\s,;]+))/gi;

/**
 * `bytes` with the value of every Digest `response` parameter in an Authorization or
 * Proxy-Authorization header (folded lines included) replaced by {@link REDACTION_CHAR}s of the
 * same length, so lengths and Content-Length stay true. Only the header section is touched. Returns
 * `bytes` itself when there is nothing to redact.
 */
export function redactDigestResponses(bytes: Buffer): Buffer {
  const end = headerEnd(bytes);
  // latin1 maps each byte to one character, so string offsets are byte offsets.
  const head = bytes.toString('latin1', 0, end);
  if (!/response/i.test(head)) return bytes;
  let out: Buffer | undefined;
  let offset = 0;
  let inCredentials = false;
  for (const line of head.split('\n')) {
    const folded = line.startsWith(' ') || line.startsWith('\t');
    if (!folded) {
      const colon = line.indexOf(':');
      inCredentials = colon > 0 && CREDENTIAL_HEADERS.has(line.slice(0, colon).trim().toLowerCase());
    }
    if (inCredentials) {
      const start = folded ? 0 : line.indexOf(':') + 1;
      for (const m of line.slice(start).matchAll(RESPONSE_PARAM)) {
        const value = m[3] ?? m[4] ?? '';
        const valueAt = offset + start + m.index + m[1]!.length + m[2]!.length + (m[3] !== undefined ? 1 : 0);
        out ??= Buffer.from(bytes);
        out.fill(REDACTION_CHAR, valueAt, valueAt + value.length, 'latin1');
      }
    }
    offset += line.length + 1;
  }
  return out ?? bytes;
}

/** Offset of the blank line ending the header section (RFC 3261 §7), or the length of `bytes`. */
function headerEnd(bytes: Buffer): number {
  const crlf = bytes.indexOf('\r\n\r\n', 0, 'latin1');
  const lf = bytes.indexOf('\n\n', 0, 'latin1');
  const ends = [crlf, lf].filter((i) => i >= 0);
  return ends.length > 0 ? Math.min(...ends) : bytes.length;
}
