/**
 * Parsing and serialising of the HTTP-style authentication header values that SIP borrows
 * (RFC 3261 §20.5, §20.27, §20.28, §20.44, §25.1; RFC 7235 §2.1; RFC 7616 §3.3–3.5):
 * WWW-Authenticate, Proxy-Authenticate, Authorization, Proxy-Authorization and
 * Authentication-Info.
 *
 * Values are byte strings (see `../message/headers.ts`). Parameter names are lower-cased,
 * quoted-string values are unquoted and their quoted-pairs undone. Unknown schemes and unknown
 * parameters are kept. A scheme followed by a token68 (RFC 7235 §2.1, e.g. `Basic QWxh==`)
 * stores that token under the empty key `''`.
 */
import { isToken, isTokenChar, isWs } from '../message/params.ts';
import { SipParseError } from '../message/errors.ts';
import type { AuthValue } from '../message/types.ts';

/** Which grammar a value is serialised for: challenges quote `qop`, credentials do not. */
export type AuthValueKind = 'challenge' | 'credentials' | 'info';

/** Digest parameters that are always quoted-strings (RFC 3261 §25.1, RFC 7616 §3.3–3.5). */
const ALWAYS_QUOTED: ReadonlySet<string> = new Set([
  'realm',
  'domain',
  'nonce',
  'opaque',
  'username',
  'uri',
  'response',
  'cnonce',
  'nextnonce',
  'rspauth',
]);

/** Digest parameters that are always bare tokens. */
const NEVER_QUOTED: ReadonlySet<string> = new Set(['algorithm', 'nc', 'stale', 'userhash', 'charset']);

const MAX_PARAMS = 64;

/** RFC 7235 §2.1 token68 characters (before the trailing `=` padding). */
function isToken68Char(c: number): boolean {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e || c === 0x2b || c === 0x2f;
}

/**
 * Characters accepted in an unquoted parameter value. The grammar says token, but deployed
 * servers send base64 nonces (`/`, `+`, `=`) and host names bare, so anything visible except
 * the delimiters `"` and `,` is taken, as most SIP stacks do.
 */
function isBareValueChar(c: number): boolean {
  return c > 0x20 && c !== 0x22 && c !== 0x2c && c !== 0x7f;
}

function fail(message: string): never {
  throw new SipParseError('bad-auth-header', message);
}

class Cursor {
  pos = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): number {
    return this.s.charCodeAt(this.pos);
  }
  skipWs(): number {
    const start = this.pos;
    while (!this.done && isWs(this.peek())) this.pos++;
    return this.pos - start;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && isTokenChar(this.peek())) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** A quoted-string starting at the opening quote; returns the unescaped content. */
  quoted(): string {
    this.pos++; // opening quote
    let out = '';
    let runStart = this.pos;
    while (!this.done) {
      const c = this.peek();
      if (c === 0x22) {
        out += this.s.slice(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c === 0x5c) {
        out += this.s.slice(runStart, this.pos);
        const next = this.s.charCodeAt(this.pos + 1);
        // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F) (RFC 3261 §25.1)
        if (Number.isNaN(next) || next === 0x0a || next === 0x0d || next > 0x7f) {
          fail('invalid quoted-pair in quoted-string');
        }
        out += this.s[this.pos + 1];
        this.pos += 2;
        runStart = this.pos;
        continue;
      }
      // qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII: no other control characters.
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) fail('control character in quoted-string');
      this.pos++;
    }
    return fail('unterminated quoted-string');
  }
}

/**
 * Parses a header value that holds one or more challenges or credentials
 * (`Digest realm="a", nonce="b", Basic realm="c"`: RFC 7235 §4.1 allows several challenges in
 * one field). Throws {@link SipParseError} with code `bad-auth-header` on malformed input:
 * unterminated quotes, a parameter without `=`, a duplicated parameter name (RFC 7235 §2.1),
 * stray characters.
 */
export function parseAuthValues(value: string): AuthValue[] {
  const cur = new Cursor(value);
  const out: AuthValue[] = [];
  skipSeparators(cur);
  while (!cur.done) {
    const scheme = cur.token();
    if (!scheme) fail(`expected an auth-scheme at offset ${cur.pos}`);
    const params = new Map<string, string>();
    out.push({ scheme, params });
    const hadWs = cur.skipWs();
    if (cur.done) break;
    if (cur.peek() === 0x2c) {
      skipSeparators(cur);
      continue;
    }
    if (!hadWs) fail(`expected whitespace after auth-scheme ${JSON.stringify(scheme)}`);
    const token68 = tryToken68(cur);
    if (token68 !== undefined) {
      params.set('', token68);
      if (!cur.done) skipSeparators(cur);
      continue;
    }
    // auth-param *(COMMA auth-param), until a comma is followed by a new scheme.
    for (;;) {
      const name = cur.token().toLowerCase();
      if (!name) fail(`expected a parameter name at offset ${cur.pos}`);
      cur.skipWs();
      if (cur.done || cur.peek() !== 0x3d) fail(`parameter ${JSON.stringify(name)} has no "="`);
      cur.pos++;
      cur.skipWs();
      let v: string;
      if (!cur.done && cur.peek() === 0x22) v = cur.quoted();
      else {
        const start = cur.pos;
        while (!cur.done && isBareValueChar(cur.peek())) cur.pos++;
        v = value.slice(start, cur.pos);
        if (!v) fail(`parameter ${JSON.stringify(name)} has an empty value`);
      }
      if (params.has(name)) fail(`parameter ${JSON.stringify(name)} appears twice`);
      if (params.size >= MAX_PARAMS) fail('too many parameters');
      params.set(name, v);
      cur.skipWs();
      if (cur.done) break;
      if (cur.peek() !== 0x2c) fail(`unexpected character at offset ${cur.pos}`);
      skipSeparators(cur);
      if (cur.done) break;
      // A token not followed by "=" starts the next challenge.
      const mark = cur.pos;
      cur.token();
      cur.skipWs();
      const isParam = !cur.done && cur.peek() === 0x3d;
      cur.pos = mark;
      if (!isParam) break;
    }
  }
  if (out.length === 0) fail('empty authentication header value');
  return out;
}

/** Skips whitespace and empty list elements (`,,`, RFC 7230 §7). */
function skipSeparators(cur: Cursor): void {
  while (!cur.done && (isWs(cur.peek()) || cur.peek() === 0x2c)) cur.pos++;
}

/** A token68 followed by the end or a comma, or undefined (position unchanged). */
function tryToken68(cur: Cursor): string | undefined {
  const start = cur.pos;
  while (!cur.done && isToken68Char(cur.peek())) cur.pos++;
  if (cur.pos === start) return undefined;
  while (!cur.done && cur.peek() === 0x3d) cur.pos++;
  const end = cur.pos;
  cur.skipWs();
  if (cur.done || cur.peek() === 0x2c) return cur.s.slice(start, end);
  cur.pos = start;
  return undefined;
}

/**
 * Parses one challenge or credentials value (what a single WWW-Authenticate or Authorization
 * field holds in SIP, RFC 3261 §20.44). Throws {@link SipParseError} (`bad-auth-header`) when the
 * value is malformed or holds more than one challenge.
 */
export function parseAuthValue(value: string): AuthValue {
  const all = parseAuthValues(value);
  if (all.length !== 1) fail(`expected one authentication value, found ${all.length}`);
  return all[0]!;
}

/**
 * Parses an Authentication-Info value (RFC 3261 §20.6, RFC 7615 §3): a bare parameter list with
 * no scheme. Throws {@link SipParseError} (`bad-auth-header`) when malformed.
 */
export function parseAuthInfo(value: string): Map<string, string> {
  // Reuse the challenge grammar with a placeholder scheme.
  const parsed = parseAuthValue(`X ${value}`);
  if (parsed.params.has('')) fail('Authentication-Info holds a token68, not parameters');
  return parsed.params;
}


/**
 * Writes a quoted-string, escaping `"` and `\` (RFC 3261 §25.1). Throws a RangeError for CR, LF
 * or NUL, which no quoted-string can carry safely.
 */
export function quoteString(s: string): string {
  if (/[\r\n\0]/.test(s)) throw new RangeError('CR, LF and NUL cannot appear in a quoted-string');
  return `"${s.replace(/(["\\])/g, '\\$1')}"`;
}

function shouldQuote(name: string, value: string, kind: AuthValueKind): boolean {
  if (ALWAYS_QUOTED.has(name)) return true;
  // qop-options in a challenge is a quoted list; message-qop in credentials and info is a token
  // (RFC 3261 §25.1 digest-cln vs. dig-resp, RFC 7616 §3.3 and §3.4).
  if (name === 'qop') return kind === 'challenge' || !isToken(value);
  if (NEVER_QUOTED.has(name) && isToken(value)) return false;
  return !isToken(value);
}

function serializeParams(params: ReadonlyMap<string, string>, kind: AuthValueKind): string {
  const parts: string[] = [];
  for (const [name, value] of params) {
    if (name === '') continue;
    if (!isToken(name)) throw new RangeError(`invalid auth-param name ${JSON.stringify(name)}`);
    parts.push(`${name}=${shouldQuote(name, value, kind) ? quoteString(value) : value}`);
  }
  return parts.join(', ');
}

/**
 * Serialises a challenge (`kind` `challenge`) or credentials value (`credentials`) so that
 * {@link parseAuthValue} reads it back unchanged. Digest parameters use the quoting the
 * grammar requires; unknown parameters are quoted unless they are tokens.
 */
export function serializeAuthValue(value: AuthValue, kind: AuthValueKind): string {
  if (!isToken(value.scheme)) throw new RangeError(`invalid auth-scheme ${JSON.stringify(value.scheme)}`);
  const token68 = value.params.get('');
  if (token68 !== undefined) return `${value.scheme} ${token68}`;
  const params = serializeParams(value.params, kind);
  return params ? `${value.scheme} ${params}` : value.scheme;
}

/** Serialises an Authentication-Info value (parameters only, no scheme). */
export function serializeAuthInfo(params: ReadonlyMap<string, string>): string {
  return serializeParams(params, 'info');
}
