/**
 * Lexical pieces shared by the typed header parsers (RFC 3261 §25.1): tokens, LWS, quoted
 * strings and generic `;name=value` parameters. All scanners work over char codes in one pass.
 */
import { SipParseError } from './errors.ts';

const TOKEN_CHARS = new Uint8Array(128);
{
  const extra = "-.!%*_+`'~";
  for (let c = 0x30; c <= 0x39; c++) TOKEN_CHARS[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) TOKEN_CHARS[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) TOKEN_CHARS[c] = 1;
  for (let i = 0; i < extra.length; i++) TOKEN_CHARS[extra.charCodeAt(i)] = 1;
}

/** Whether `c` is a `token` character (RFC 3261 §25.1). */
export function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN_CHARS[c] === 1;
}

/** Whether `s` is a non-empty token. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

/** Whether `c` is linear white space (SP, HTAB, or a CR/LF left over from folding). */
export function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** Index of the first non-LWS character at or after `i`. */
export function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  return i;
}

/** End index (exclusive) of the token starting at `i` (equal to `i` when there is none). */
export function scanToken(s: string, i: number): number {
  while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
  return i;
}

/**
 * Scans a quoted-string whose opening `"` is at `i`. Returns the index just past the closing quote
 * and the content with quoted-pairs (`\"`, `\\`) undone.
 * @throws SipParseError `code` when the string is unterminated (RFC 4475 §3.1.2.6).
 */
export function scanQuoted(s: string, i: number, code: string): { end: number; text: string } {
  let text = '';
  let run = i + 1;
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x5c /* \ */) {
      if (j + 1 >= s.length) break;
      text += s.slice(run, j);
      run = j + 1;
      j++;
    } else if (c === 0x22) {
      return { end: j + 1, text: text + s.slice(run, j) };
    }
  }
  throw new SipParseError(code, 'unterminated quoted string');
}

/** Removes the quotes and quoted-pairs from a quoted parameter value; other values unchanged. */
export function unquote(value: string): string {
  if (value.length >= 2 && value.charCodeAt(0) === 0x22) {
    try {
      const q = scanQuoted(value, 0, 'bad-quoted-string');
      if (q.end === value.length) return q.text;
    } catch {
      // not a well-formed quoted string: return it as it is
    }
  }
  return value;
}

/** Writes `text` as a quoted-string, escaping `"` and `\`. */
export function quote(text: string): string {
  let out = '"';
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) {
      out += text.slice(run, i) + '\\';
      run = i;
    }
  }
  return out + text.slice(run) + '"';
}

/** Whether `c` may appear in an unquoted gen-value (token or host, incl. `[v6]` and `a:b:c`). */
function isValueChar(c: number): boolean {
  // A table lookup instead of six comparisons: values are scanned character by character.
  return c < 128 && VALUE_CHARS[c] === 1;
}

const VALUE_CHARS = new Uint8Array(128);
for (let c = 0x21; c < 0x7f; c++) {
  VALUE_CHARS[c] = c !== 0x3b && c !== 0x2c && c !== 0x22 && c !== 0x3c && c !== 0x3e ? 1 : 0;
}

/**
 * Index just past the closing quote of the quoted-string whose opening `"` is at `i`, without
 * building its content (the same rules as {@link scanQuoted}).
 * @throws SipParseError `code` when the string is unterminated.
 */
export function quotedEnd(s: string, i: number, code: string): number {
  // Native searches instead of a loop over the characters (long values such as
  // `+sip.instance="<urn:uuid:...>"` are common): the first `"` is the closing one unless a
  // backslash comes before it, which escapes the next character.
  let j = i + 1;
  for (;;) {
    const q = s.indexOf('"', j);
    if (q < 0) break;
    const bs = s.indexOf('\\', j);
    if (bs < 0 || bs > q) return q + 1;
    j = bs + 2;
  }
  throw new SipParseError(code, 'unterminated quoted string');
}

/**
 * Parses `*( SEMI generic-param )` from `s` starting at `i` (RFC 3261 §25.1), with LWS allowed
 * around `;` and `=`. Names are lower-cased and must be tokens; a flag parameter maps to null; a
 * quoted value is kept with its quotes (use {@link unquote}) so it serialises unchanged. The first
 * of two parameters with the same name wins.
 *
 * @returns the parameters and the index where scanning stopped (end of `s`, or a `,`).
 * @throws SipParseError `code` on a missing name, a bad value, or trailing garbage.
 */
export function scanParams(
  s: string,
  i: number,
  code: string,
  into: Map<string, string | null> = new Map(),
): { params: Map<string, string | null>; end: number } {
  const end = walkParams(s, i, code, into, undefined);
  return { params: into, end };
}

/**
 * Checks `*( SEMI generic-param )` exactly as {@link scanParams} does, without building a map,
 * and finds one parameter's value (validation hot path: the `tag` of From and To).
 *
 * @param wanted a lower-case parameter name
 * @returns the index where scanning stopped and the first `wanted` value: a string, null for a
 *   flag, undefined when absent.
 */
export function checkParams(
  s: string,
  i: number,
  code: string,
  wanted: string,
): { end: number; value: string | null | undefined } {
  const found: (string | null | undefined)[] = [undefined];
  const end = walkParams(s, i, code, undefined, [wanted], found);
  return { end, value: found[0] };
}

/**
 * {@link checkParams} for several names at once (the Via's branch, received, rport, ...):
 * `found[k]` receives the first value of `wanted[k]` (string, null for a flag, or left
 * undefined when absent). Returns the index where scanning stopped.
 */
export function checkParamsMany(
  s: string,
  i: number,
  code: string,
  wanted: readonly string[],
  found: (string | null | undefined)[],
): number {
  return walkParams(s, i, code, undefined, wanted, found);
}

/**
 * The one parameter scanner behind {@link scanParams} and {@link checkParams}: stores every
 * parameter in `into` when given, and the first value of each `wanted[k]` in `found[k]`.
 */
function walkParams(
  s: string,
  i: number,
  code: string,
  into: Map<string, string | null> | undefined,
  wanted: readonly string[] | undefined,
  found?: (string | null | undefined)[],
): number {
  const len = s.length;
  i = skipWs(s, i);
  while (i < len) {
    if (s.charCodeAt(i) !== 0x3b) {
      throw new SipParseError(code, `unexpected character "${s[i]}" in parameters`);
    }
    i = skipWs(s, i + 1);
    const nameStart = i;
    const nameEnd = scanToken(s, i);
    if (nameEnd === i) throw new SipParseError(code, 'empty parameter name');
    i = skipWs(s, nameEnd);
    // The value's bounds; it is sliced only when stored or wanted (checking alone needs no string).
    let valueStart = -1;
    let valueEnd = -1;
    if (i < len && s.charCodeAt(i) === 0x3d /* = */) {
      i = skipWs(s, i + 1);
      valueStart = i;
      if (i < len && s.charCodeAt(i) === 0x22) {
        i = quotedEnd(s, i, code);
      } else {
        while (i < len && isValueChar(s.charCodeAt(i))) i++;
        if (i === valueStart) {
          const name = s.slice(nameStart, nameEnd).toLowerCase();
          throw new SipParseError(code, `parameter "${name}" has an empty value`);
        }
      }
      valueEnd = i;
      i = skipWs(s, i);
    }
    if (into) {
      const name = s.slice(nameStart, nameEnd).toLowerCase();
      if (!into.has(name)) into.set(name, valueStart < 0 ? null : s.slice(valueStart, valueEnd));
    }
    if (wanted) {
      for (let k = 0; k < wanted.length; k++) {
        if (found![k] === undefined && equalsLower(s, nameStart, nameEnd, wanted[k]!)) {
          found![k] = valueStart < 0 ? null : s.slice(valueStart, valueEnd);
          break;
        }
      }
    }
  }
  return i;
}

/** Whether `s[start,end)` equals the lower-case ASCII `lower`, ignoring case (no slicing). */
function equalsLower(s: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    let c = s.charCodeAt(start + k);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * Parses a parameter list such as `;tag=a;lr;+sip.instance="<urn:uuid:...>"` (the leading `;` is
 * optional). See {@link scanParams} for the value rules.
 * @throws SipParseError `bad-params`
 */
export function parseParams(text: string): Map<string, string | null> {
  const i = skipWs(text, 0);
  const s = i < text.length && text.charCodeAt(i) !== 0x3b ? ';' + text.slice(i) : text;
  const { params, end } = scanParams(s, s === text ? i : 0, 'bad-params');
  if (end < s.length) throw new SipParseError('bad-params', 'unexpected "," in parameters');
  return params;
}

/**
 * Writes parameters as `;name=value` / `;name`. A value that is neither a quoted string nor
 * valid unquoted (e.g. holds a space or `;`) is quoted, so `parseParams` reads it back.
 */
export function serializeParams(params: ReadonlyMap<string, string | null>): string {
  let out = '';
  for (const [k, v] of params) {
    out += ';' + k;
    if (v === null) continue;
    out += '=' + (needsQuoting(v) ? quote(v) : v);
  }
  return out;
}

function needsQuoting(v: string): boolean {
  if (v.length === 0) return true;
  if (v.charCodeAt(0) === 0x22) {
    try {
      return scanQuoted(v, 0, 'x').end !== v.length;
    } catch {
      return true;
    }
  }
  for (let i = 0; i < v.length; i++) if (!isValueChar(v.charCodeAt(i))) return true;
  return false;
}
