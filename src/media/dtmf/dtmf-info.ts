/**
 * DTMF in SIP INFO bodies. Two formats are in use, neither with an RFC of its own:
 * - `application/dtmf-relay` (Cisco, widely copied): lines `Signal=5` and `Duration=160`
 *   (milliseconds), CRLF separated;
 * - `application/dtmf`: the body is just the key (some senders write the RFC 4733 event number).
 * Parsing is tolerant (any case, spaces, LF or CRLF, missing Duration); formatting is strict.
 */
import { DTMF_FLASH, dtmfDigitOfEvent, dtmfEventCode } from './types.ts';

/** A key press carried by an INFO request. */
export interface DtmfInfoEvent {
  /** `0`-`9`, `*`, `#`, `A`-`D`, or `!` (flash). */
  digit: string;
  durationMs: number;
}

export const DTMF_RELAY_CONTENT_TYPE = 'application/dtmf-relay';
export const DTMF_CONTENT_TYPE = 'application/dtmf';

/** Duration assumed when a body names none (ms), the common default of INFO senders. */
export const DTMF_INFO_DEFAULT_DURATION_MS = 100;

/** Longest duration believed (ms); larger values are clamped (a garbled or hostile body). */
const MAX_DURATION_MS = 60_000;

/**
 * Reads the key press in an INFO body. `contentType` is the Content-Type header value
 * (parameters and case ignored); `body` its bytes or text. Returns undefined for another content
 * type or a body naming no valid key; a missing or unreadable Duration gives
 * {@link DTMF_INFO_DEFAULT_DURATION_MS}.
 */
export function parseDtmfInfo(contentType: string, body: Uint8Array | string): DtmfInfoEvent | undefined {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  const text = typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: false }).decode(body);
  if (type === DTMF_RELAY_CONTENT_TYPE) return parseRelay(text);
  if (type === DTMF_CONTENT_TYPE) {
    const digit = keyOf(text.trim());
    return digit === undefined ? undefined : { digit, durationMs: DTMF_INFO_DEFAULT_DURATION_MS };
  }
  return undefined;
}

function parseRelay(text: string): DtmfInfoEvent | undefined {
  let digit: string | undefined;
  let durationMs = DTMF_INFO_DEFAULT_DURATION_MS;
  for (const line of text.split(/\r?\n|\r/)) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const name = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    if (name === 'signal') {
      digit = keyOf(value);
    } else if (name === 'duration' && /^\d+$/.test(value)) {
      durationMs = Math.min(MAX_DURATION_MS, Number.parseInt(value, 10));
    }
  }
  return digit === undefined ? undefined : { digit, durationMs };
}

/** A key from `5`, `*`, `a`, `!`, `hf`/`flash`, or an event number `10`-`16`. */
function keyOf(value: string): string | undefined {
  if (value.length === 1) return dtmfEventCode(value) === undefined ? undefined : value === DTMF_FLASH ? value : value.toUpperCase();
  const lower = value.toLowerCase();
  if (lower === 'hf' || lower === 'flash' || lower === 'hookflash') return DTMF_FLASH;
  if (/^1[0-6]$/.test(value)) return dtmfDigitOfEvent(Number.parseInt(value, 10));
  return undefined;
}

/** An INFO body ready to send. */
export interface DtmfInfoBody {
  contentType: string;
  body: string;
}

/**
 * Formats a key press as an INFO body: `application/dtmf-relay` (default) gives
 * `Signal=5\r\nDuration=160\r\n`, `application/dtmf` gives just the key. Throws a RangeError for
 * a character that is not a DTMF key.
 */
export function formatDtmfInfo(
  digit: string,
  durationMs: number,
  contentType: typeof DTMF_RELAY_CONTENT_TYPE | typeof DTMF_CONTENT_TYPE = DTMF_RELAY_CONTENT_TYPE,
): DtmfInfoBody {
  if (dtmfEventCode(digit) === undefined) throw new RangeError(`not a DTMF key: ${JSON.stringify(digit)}`);
  const key = digit === DTMF_FLASH ? digit : digit.toUpperCase();
  if (contentType === DTMF_CONTENT_TYPE) return { contentType, body: key };
  const ms = Math.max(0, Math.round(durationMs));
  return { contentType, body: `Signal=${key}\r\nDuration=${ms}\r\n` };
}
