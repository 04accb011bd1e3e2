/**
 * SIP, SIPS (RFC 3261 §19.1, §25.1) and tel (RFC 3966) URIs: parse, serialise, compare.
 *
 * Input and output are byte strings (latin1, see `headers.ts`). The parser is a single forward
 * scan over char codes (no backtracking regular expressions), so hostile input costs linear time.
 * Every failure is a {@link SipParseError}: `unsupported-uri-scheme` (416) for a well-formed URI
 * of another scheme, `bad-uri` (400) for anything malformed.
 */
import { SipParseError } from './errors.ts';
import type { SipUri } from './types.ts';

// Character classes (bit flags per ASCII code).
const ALNUM = 1;
const MARK = 2; // - _ . ! ~ * ' ( )       (RFC 3261 mark)
const USER_UNRES = 4; // & = + $ , ; ? /
const PASS_UNRES = 8; // & = + $ ,
const PARAM_UNRES = 16; // [ ] / : & + $
const HNV_UNRES = 32; // [ ] / ? : + $
const HOSTCH = 64; // alnum - . _ (underscore tolerated: seen in real host names)
const TEL = 128; // tel number chars: hex digits * # + - . ( )

const CLASS = new Uint8Array(128);
{
  const add = (chars: string, flag: number): void => {
    for (let i = 0; i < chars.length; i++) CLASS[chars.charCodeAt(i)]! |= flag;
  };
  for (let c = 0x30; c <= 0x39; c++) CLASS[c]! |= ALNUM | HOSTCH;
  for (let c = 0x41; c <= 0x5a; c++) CLASS[c]! |= ALNUM | HOSTCH;
  for (let c = 0x61; c <= 0x7a; c++) CLASS[c]! |= ALNUM | HOSTCH;
  add("-_.!~*'()", MARK);
  add('&=+$,;?/', USER_UNRES);
  add('&=+$,', PASS_UNRES);
  add('[]/:&+$', PARAM_UNRES);
  add('[]/?:+$', HNV_UNRES);
  add('-._', HOSTCH);
  add('0123456789abcdefABCDEF*#+-.()', TEL);
}

const UNRESERVED = ALNUM | MARK;

function bad(message: string): never {
  throw new SipParseError('bad-uri', message);
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Checks that `text[start,end)` only holds characters of `allowed` or `%HH` escapes and returns it
 * with the escapes decoded exactly once (RFC 4475 §3.1.1.3: `%25` yields `%`, never re-decoded).
 * With `build` false it only checks (and still builds the decoded text of escapes; they are rare).
 */
function decodeRun(text: string, start: number, end: number, allowed: number, what: string, build = true): string {
  let out = '';
  let runStart = start;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const h = hexVal(text.charCodeAt(i + 1));
      const l = hexVal(text.charCodeAt(i + 2));
      if (i + 2 >= end || h < 0 || l < 0) bad(`bad %-escape in URI ${what}`);
      out += text.slice(runStart, i) + String.fromCharCode(h * 16 + l);
      i += 2;
      runStart = i + 1;
    } else if (c >= 128 || (CLASS[c]! & allowed) === 0) {
      bad(`character 0x${c.toString(16)} not allowed in URI ${what}`);
    }
  }
  if (!build) return ''; // checked only (checkUri): nobody reads the text
  return runStart === start ? text.slice(start, end) : out + text.slice(runStart, end);
}

/** Writes `value` with every character outside `allowed` %-escaped (inverse of decodeRun). */
function encodeRun(value: string, allowed: number): string {
  let out = '';
  let runStart = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 128 && (CLASS[c]! & allowed) !== 0) continue;
    out += value.slice(runStart, i);
    if (c > 0xff) {
      for (const b of Buffer.from(value[i]!, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
    } else {
      out += '%' + c.toString(16).toUpperCase().padStart(2, '0');
    }
    runStart = i + 1;
  }
  return runStart === 0 ? value : out + value.slice(runStart);
}

/** Whether a host is an IPv6 reference (`[2001:db8::1]`), as stored in {@link SipUri.host}. */
export function isIpv6Reference(host: string): boolean {
  return host.length > 2 && host.charCodeAt(0) === 0x5b && host.charCodeAt(host.length - 1) === 0x5d;
}

/**
 * `host[:port]` for a URI, Via sent-by or log line. A bare IPv6 address (containing `:`) is put
 * in brackets (RFC 5118 §4.2), so `formatHostPort('2001:db8::1', 5060)` is `[2001:db8::1]:5060`.
 */
export function formatHostPort(host: string, port?: number): string {
  const h = host.includes(':') && !isIpv6Reference(host) ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}

/**
 * Checks the inside of an IPv6 reference. Hex groups, `::`, an optional trailing dotted IPv4 part.
 * The three-colon form `2001:db8:::192.0.2.1` produced by the RFC 3261 ABNF bug is tolerated
 * (RFC 5118 §4.4).
 */
function validIpv6(s: string): boolean {
  if (s.length < 2 || s.length > 64) return false;
  const norm = s.includes(':::') ? s.replace(':::', '::') : s;
  return ipv6Words(norm) !== undefined;
}

/** The eight 16-bit words of an IPv6 address, or undefined when malformed. */
export function ipv6Words(s: string): number[] | undefined {
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return undefined;
  const parseSide = (part: string, allowV4: boolean): number[] | undefined => {
    if (part === '') return [];
    const groups = part.split(':');
    const words: number[] = [];
    for (let g = 0; g < groups.length; g++) {
      const grp = groups[g]!;
      if (allowV4 && g === groups.length - 1 && grp.includes('.')) {
        const v4 = ipv4Bytes(grp);
        if (!v4) return undefined;
        words.push(v4[0]! * 256 + v4[1]!, v4[2]! * 256 + v4[3]!);
        continue;
      }
      if (grp.length < 1 || grp.length > 4) return undefined;
      let w = 0;
      for (let i = 0; i < grp.length; i++) {
        const v = hexVal(grp.charCodeAt(i));
        if (v < 0) return undefined;
        w = w * 16 + v;
      }
      words.push(w);
    }
    return words;
  };
  if (dbl < 0) {
    const w = parseSide(s, true);
    return w && w.length === 8 ? w : undefined;
  }
  const left = parseSide(s.slice(0, dbl), false);
  const right = parseSide(s.slice(dbl + 2), true);
  if (!left || !right || left.length + right.length > 7) return undefined;
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function ipv4Bytes(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (p.length < 1 || p.length > 3) return undefined;
    let v = 0;
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return undefined;
      v = v * 10 + c - 0x30;
    }
    if (v > 255) return undefined;
    out.push(v);
  }
  return out;
}

/**
 * Reads `host[:port]` in `text[start,end)`. Domain names are lower-cased; an IPv6 reference keeps
 * its brackets. A bare IPv6 address without brackets is rejected (RFC 5118 §4.2: the host part of
 * `sip:2001:db8::10` is ambiguous with a port).
 */
export function parseHostPort(text: string, start: number, end: number, what = 'host'): { host: string; port?: number } {
  const hp = scanHostPort(text, start, end, what, false);
  return hp.port === undefined ? { host: hp.host } : { host: hp.host, port: hp.port };
}

/** A host and port read by {@link scanHostPort}, and the index where the hostport ended. */
export interface HostPortAt {
  host: string;
  port?: number;
  end: number;
}

/**
 * {@link parseHostPort} over `text[start,end)`; with `stopAtParams`, the hostport also ends at
 * the first `;` or `?` (a SIP URI's parameters or headers). For speed the stop characters are
 * tested only on the path that would reject a character, so the hostport is found and checked in
 * one pass (instead of a search for its end and then a check). Exported for the Via parser,
 * which reads a host this way without the extra object of {@link parseHostPort}.
 */
export function scanHostPort(text: string, start: number, end: number, what: string, stopAtParams: boolean): HostPortAt {
  if (start >= end) bad(`empty ${what}`);
  let host: string;
  let i: number;
  if (text.charCodeAt(start) === 0x5b /* [ */) {
    if (stopAtParams) {
      // Neither stop character can occur inside an IPv6 reference.
      let e = start;
      while (e < end && text.charCodeAt(e) !== 0x3b && text.charCodeAt(e) !== 0x3f) e++;
      end = e;
    }
    const close = text.indexOf(']', start);
    if (close < 0 || close >= end) bad(`unterminated IPv6 reference in ${what}`);
    const inner = text.slice(start + 1, close);
    if (!validIpv6(inner)) bad(`malformed IPv6 reference in ${what}`);
    host = `[${inner.toLowerCase()}]`;
    i = close + 1;
  } else {
    let colons = 0;
    let colonAt = -1;
    // Noted in the same pass, for the host only (before any colon): upper case and "..".
    let upper = false;
    let dots = false;
    let j = start;
    for (; j < end; j++) {
      const c = text.charCodeAt(j);
      if (c === 0x3a) {
        colons++;
        if (colonAt < 0) colonAt = j;
      } else if (c >= 128 || (CLASS[c]! & HOSTCH) === 0) {
        if (stopAtParams && (c === 0x3b || c === 0x3f)) break;
        bad(`character 0x${c.toString(16)} not allowed in ${what}`);
      } else if (colonAt < 0) {
        if (c >= 0x41 && c <= 0x5a) upper = true;
        else if (c === 0x2e && j > start && text.charCodeAt(j - 1) === 0x2e) dots = true;
      }
    }
    end = j;
    if (colons > 1) bad(`IPv6 address in ${what} must be enclosed in [] (RFC 5118 §4.2)`);
    i = colonAt < 0 ? end : colonAt;
    if (i === start) bad(`empty ${what}`);
    host = upper ? text.slice(start, i).toLowerCase() : text.slice(start, i);
    const h0 = host.charCodeAt(0);
    if (h0 === 0x2e || h0 === 0x2d || dots) bad(`malformed ${what} "${host}"`);
  }
  if (i === end) return { host, end };
  if (text.charCodeAt(i) !== 0x3a) bad(`unexpected character after ${what}`);
  return { host, port: parsePort(text, i + 1, end, what), end };
}

function parsePort(text: string, start: number, end: number, what: string): number {
  if (start >= end || end - start > 5) bad(`bad port in ${what}`);
  let v = 0;
  for (let j = start; j < end; j++) {
    const c = text.charCodeAt(j);
    if (c < 0x30 || c > 0x39) bad(`bad port in ${what}`);
    v = v * 10 + c - 0x30;
  }
  if (v > 65535) bad(`port out of range in ${what}`);
  return v;
}

function isSchemeChar(c: number, first: boolean): boolean {
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  if (first) return false;
  return (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e;
}

/**
 * Parses a URI (RFC 3261 §25.1 SIP-URI / SIPS-URI, RFC 3966 telephone-uri).
 *
 * The user part may hold `;` (a user parameter: `sip:user;par=u@example.net` has user
 * `user;par=u`). %-escapes in user, password, parameters and headers are decoded exactly once.
 * No whitespace is allowed anywhere (RFC 4475 §3.1.2.8).
 *
 * @throws SipParseError `unsupported-uri-scheme` (status 416) for a syntactically valid URI of
 *   another scheme (RFC 3261 §8.2.2.1), `bad-uri` (400) for malformed input.
 */
export function parseUri(text: string): SipUri {
  return scanUri(text, true)!;
}

/**
 * Checks a URI exactly as {@link parseUri} does (same errors, same statuses) without building
 * the result: the validation path for From, To and Contact, whose URIs nobody reads there.
 */
export function checkUri(text: string): void {
  scanUri(text, false);
}

/** The one URI scanner behind parseUri and checkUri; builds the SipUri only when `build`. */
function scanUri(text: string, build: boolean): SipUri | undefined {
  const len = text.length;
  let colon = -1;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3a) {
      colon = i;
      break;
    }
    if (!isSchemeChar(c, i === 0)) bad('malformed URI scheme');
  }
  if (colon <= 0) bad('URI has no scheme');
  const scheme = schemeOf(text, colon);
  if (scheme === 'tel') return scanTel(text, colon + 1, build);
  if (scheme !== 'sip' && scheme !== 'sips') {
    for (let i = colon + 1; i < len; i++) {
      const c = text.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f || c === 0x3c || c === 0x3e || c === 0x22) bad('malformed URI');
    }
    throw new SipParseError('unsupported-uri-scheme', `unsupported URI scheme "${scheme}"`, 416);
  }

  let p = colon + 1;
  // userinfo: everything up to the first '@' (user may contain ; ? / but not '@').
  const at = text.indexOf('@', p);
  let user: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    let pc = text.indexOf(':', p); // a native search (the user part is usually short)
    if (pc > at) pc = -1;
    const userEnd = pc < 0 ? at : pc;
    if (userEnd === p) bad('empty user part');
    user = decodeRun(text, p, userEnd, UNRESERVED | USER_UNRES, 'user', build);
    if (pc >= 0) password = decodeRun(text, pc + 1, at, UNRESERVED | PASS_UNRES, 'password', build);
    p = at + 1;
  }

  // hostport ends at ';' or '?' (never inside an IPv6 reference: neither char is valid there).
  const { host, port, end: hpEnd } = scanHostPort(text, p, len, 'URI host', true);
  const uri: SipUri | undefined = build ? { scheme, host, params: new Map(), headers: new Map() } : undefined;
  if (uri) {
    if (user !== undefined) uri.user = user;
    if (password !== undefined) uri.password = password;
    if (port !== undefined) uri.port = port;
  }
  p = hpEnd;

  while (p < len && text.charCodeAt(p) === 0x3b) {
    p++;
    // One pass finds the parameter's end and its '=' and checks the characters: a parameter
    // without escapes or faults (nearly all) is then sliced without a second pass. Any other is
    // re-read by decodeRun, which decodes the escapes and reports the first fault exactly.
    let end = p;
    let eq = -1;
    let plain = true;
    while (end < len) {
      const c = text.charCodeAt(end);
      if (c === 0x3b || c === 0x3f) break;
      if (c === 0x3d && eq < 0) eq = end;
      else if (c >= 128 || (CLASS[c]! & (UNRESERVED | PARAM_UNRES)) === 0) plain = false;
      end++;
    }
    const nameEnd = eq < 0 ? end : eq;
    if (nameEnd === p) bad('empty URI parameter name');
    if (plain) {
      if (uri) {
        const key = text.slice(p, nameEnd).toLowerCase();
        if (!uri.params.has(key)) uri.params.set(key, eq < 0 ? null : text.slice(eq + 1, end));
      }
    } else {
      const name = decodeRun(text, p, nameEnd, UNRESERVED | PARAM_UNRES, 'parameter', build);
      const value = eq < 0 ? null : decodeRun(text, eq + 1, end, UNRESERVED | PARAM_UNRES, 'parameter', build);
      if (uri) {
        const key = name.toLowerCase();
        if (!uri.params.has(key)) uri.params.set(key, value);
      }
    }
    p = end;
  }

  if (p < len) {
    // p is at '?'
    p++;
    if (p >= len) bad('empty URI headers');
    while (p <= len) {
      let end = text.indexOf('&', p);
      if (end < 0) end = len;
      const eq = text.indexOf('=', p);
      if (eq < 0 || eq >= end || eq === p) bad('malformed URI header');
      const name = decodeRun(text, p, eq, UNRESERVED | HNV_UNRES, 'header', build);
      const value = decodeRun(text, eq + 1, end, UNRESERVED | HNV_UNRES, 'header', build);
      uri?.headers.set(name, value);
      p = end + 1;
    }
  }
  return uri;
}

/** The scheme before `colon`, lower-cased; the usual spellings without allocating. */
function schemeOf(text: string, colon: number): string {
  if (colon === 3 && text.startsWith('sip')) return 'sip';
  if (colon === 3 && text.startsWith('tel')) return 'tel';
  if (colon === 4 && text.startsWith('sips')) return 'sips';
  return text.slice(0, colon).toLowerCase();
}

/** RFC 3966 telephone-uri: the number goes to `user`, `host` is empty, no URI headers. */
function scanTel(text: string, start: number, build: boolean): SipUri | undefined {
  const len = text.length;
  let p = start;
  while (p < len && text.charCodeAt(p) !== 0x3b) p++;
  if (p === start) bad('empty telephone number');
  for (let i = start; i < p; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || (CLASS[c]! & TEL) === 0 || (c === 0x2b && i !== start)) bad('malformed telephone number');
  }
  const uri: SipUri | undefined = build
    ? { scheme: 'tel', user: text.slice(start, p), host: '', params: new Map(), headers: new Map() }
    : undefined;
  while (p < len) {
    p++;
    let end = p;
    let eq = -1;
    while (end < len && text.charCodeAt(end) !== 0x3b) {
      if (text.charCodeAt(end) === 0x3d && eq < 0) eq = end;
      end++;
    }
    const nameEnd = eq < 0 ? end : eq;
    if (nameEnd === p) bad('empty tel parameter name');
    const name = decodeRun(text, p, nameEnd, UNRESERVED | PARAM_UNRES, 'parameter', build);
    const value = eq < 0 ? null : decodeRun(text, eq + 1, end, UNRESERVED | PARAM_UNRES, 'parameter', build);
    if (uri) {
      const key = name.toLowerCase();
      if (!uri.params.has(key)) uri.params.set(key, value);
    }
    p = end;
  }
  return uri;
}

/** Writes a URI; escapes whatever its component may not hold literally. `parseUri` inverts it. */
export function serializeUri(uri: SipUri): string {
  let out = uri.scheme + ':';
  if (uri.scheme === 'tel') {
    out += uri.user ?? '';
  } else {
    if (uri.user !== undefined) {
      out += encodeRun(uri.user, UNRESERVED | USER_UNRES);
      if (uri.password !== undefined) out += ':' + encodeRun(uri.password, UNRESERVED | PASS_UNRES);
      out += '@';
    }
    out += formatHostPort(uri.host, uri.port);
  }
  for (const [k, v] of uri.params) {
    out += ';' + encodeRun(k, UNRESERVED | PARAM_UNRES);
    if (v !== null) out += '=' + encodeRun(v, UNRESERVED | PARAM_UNRES);
  }
  if (uri.scheme !== 'tel' && uri.headers.size > 0) {
    let first = true;
    for (const [k, v] of uri.headers) {
      out += (first ? '?' : '&') + encodeRun(k, UNRESERVED | HNV_UNRES) + '=' + encodeRun(v, UNRESERVED | HNV_UNRES);
      first = false;
    }
  }
  return out;
}
