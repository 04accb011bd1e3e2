/**
 * Typed views of single header values (RFC 3261 §20, §25.1): name-addr (From, To, Contact,
 * Route, Record-Route, Refer-To), Via, CSeq, token lists and unsigned integers.
 *
 * Each parser takes ONE value (list headers are split by `Headers.getAll`), as a byte string, and
 * throws {@link SipParseError} with a stable code on malformed input; nothing else is thrown.
 */
import { SipParseError } from './errors.ts';
import {
  checkParams,
  checkParamsMany,
  isTokenChar,
  isWs,
  quote,
  quotedEnd,
  scanParams,
  scanQuoted,
  scanToken,
  serializeParams,
  skipWs,
} from './params.ts';
import type { ContactValue, CSeq, NameAddr, SipUri, Via } from './types.ts';
import { checkUri, formatHostPort, parseUri, scanHostPort, serializeUri } from './uri.ts';

export { parseParams, serializeParams, quote, unquote, isToken } from './params.ts';

function fail(code: string, message: string): never {
  throw new SipParseError(code, message);
}

/** Index just past the last non-LWS character of `s`. */
function trimEnd(s: string): number {
  let e = s.length;
  while (e > 0 && isWs(s.charCodeAt(e - 1))) e--;
  return e;
}

/**
 * Parses a name-addr (`"Display" <uri>;params`, `Display Name<uri>`) or an addr-spec
 * (`uri;params`). In the addr-spec form the parameters after the URI are header parameters, not
 * URI parameters (RFC 3261 §20.10), so `sip:a@b;tag=1` has tag 1 and a URI without params.
 *
 * Display names: a quoted-string (quoted-pairs undone) or one or more tokens (kept separated by
 * single spaces). No LWS is needed before `<` (RFC 4475 §3.1.1.6).
 *
 * @throws SipParseError `bad-name-addr` (unterminated quote, non-token display name, spaces
 *   inside `<>`, trailing garbage), or the URI's own `bad-uri` / `unsupported-uri-scheme`.
 */
export function parseNameAddr(value: string): NameAddr {
  const b = nameAddrBounds(value);
  const s = b.text;
  let uri: SipUri;
  try {
    uri = parseUri(s.slice(b.uriStart, b.uriEnd));
  } catch (e) {
    checkInsideAngles(b);
    throw e;
  }
  const { params, end } = scanParams(s, b.paramsStart, NAME_ADDR);
  if (end < s.length) fail(NAME_ADDR, b.addrSpec ? 'unexpected "," after addr-spec' : 'unexpected "," after name-addr');
  const out: NameAddr = { uri, params };
  if (b.displayStart >= 0) {
    if (s.charCodeAt(b.displayStart) === 0x22) {
      out.displayName = scanQuoted(s, b.displayStart, NAME_ADDR).text;
    } else {
      // token display name: the words kept, separated by single spaces
      const words: string[] = [];
      for (let i = b.displayStart; i < b.displayEnd; ) {
        const e = scanToken(s, i);
        words.push(s.slice(i, e));
        i = skipWs(s, e);
      }
      out.displayName = words.join(' ');
    }
  }
  return out;
}

/**
 * Checks a name-addr or addr-spec exactly as {@link parseNameAddr} does (same errors) without
 * building the URI, display name or parameter map, and returns its `tag` parameter as
 * `parseNameAddr(value).params.get('tag')` would: the validation path for From, To and Contact.
 */
export function checkNameAddr(value: string): string | null | undefined {
  const b = nameAddrBounds(value);
  const s = b.text;
  try {
    checkUri(s.slice(b.uriStart, b.uriEnd));
  } catch (e) {
    checkInsideAngles(b);
    throw e;
  }
  const { end, value: tag } = checkParams(s, b.paramsStart, NAME_ADDR, 'tag');
  if (end < s.length) fail(NAME_ADDR, b.addrSpec ? 'unexpected "," after addr-spec' : 'unexpected "," after name-addr');
  return tag;
}

const NAME_ADDR = 'bad-name-addr';

/** Where the parts of a name-addr or addr-spec lie in `text` (the value without trailing LWS). */
interface NameAddrBounds {
  text: string;
  addrSpec: boolean;
  /** The display name: a quoted-string or the token words; displayStart is -1 when absent. */
  displayStart: number;
  displayEnd: number;
  uriStart: number;
  uriEnd: number;
  /** Where the header parameters start (just past `>` or the addr-spec). */
  paramsStart: number;
}

/**
 * The syntax checks of a name-addr or addr-spec that come before its URI and parameters, shared
 * by {@link parseNameAddr} and {@link checkNameAddr} so that both accept the same inputs.
 */
function nameAddrBounds(value: string): NameAddrBounds {
  const code = NAME_ADDR;
  const end = trimEnd(value);
  const s = end === value.length ? value : value.slice(0, end);
  let i = skipWs(s, 0);
  if (i >= s.length) fail(code, 'empty name-addr');
  let displayStart = -1;
  let displayEnd = -1;
  let c = s.charCodeAt(i);

  if (c === 0x22 /* " */) {
    displayStart = i;
    displayEnd = quotedEnd(s, i, code);
    i = skipWs(s, displayEnd);
    if (i >= s.length || s.charCodeAt(i) !== 0x3c) fail(code, 'quoted display name must be followed by <URI>');
  } else if (c !== 0x3c /* < */) {
    const first = scanToken(s, i);
    if (first < s.length && s.charCodeAt(first) === 0x3a /* : */) return addrSpecBounds(s, i);
    // token display name: *(token LWS) then '<'
    displayStart = i;
    while (i < s.length && s.charCodeAt(i) !== 0x3c) {
      const e = scanToken(s, i);
      if (e === i) fail(code, `character "${s[i]}" not allowed in an unquoted display name`);
      displayEnd = e;
      i = skipWs(s, e);
    }
    if (i >= s.length) fail(code, 'display name without <URI>');
  }

  // s[i] === '<'. Whitespace or '<' inside the brackets is checked by checkInsideAngles, which
  // the callers run only when the URI fails to parse (see there).
  const gt = s.indexOf('>', i + 1);
  if (gt < 0) fail(code, 'unterminated <URI>');
  return { text: s, addrSpec: false, displayStart, displayEnd, uriStart: i + 1, uriEnd: gt, paramsStart: gt + 1 };
}

/**
 * Rejects whitespace or `<` between `<` and `>` (RFC 4475 §3.1.2.14) with `bad-name-addr`, the
 * error reported before any fault of the URI itself. For speed this runs only when the URI fails:
 * a URI that parses holds neither (no URI component admits them), so the separate pass over the
 * characters is needed only to choose which error to report.
 */
function checkInsideAngles(b: NameAddrBounds): void {
  if (b.addrSpec) return;
  const s = b.text;
  for (let j = b.uriStart; j < b.uriEnd; j++) {
    const c = s.charCodeAt(j);
    if (isWs(c) || c === 0x3c) fail(NAME_ADDR, 'whitespace inside <addr-spec> (RFC 4475 §3.1.2.14)');
  }
}

function addrSpecBounds(s: string, start: number): NameAddrBounds {
  let i = start;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 0x3b || isWs(c)) break;
    if (c === 0x2c || c === 0x3c || c === 0x3e || c === 0x22) fail(NAME_ADDR, `"${s[i]}" in an addr-spec without <>`);
    i++;
  }
  return { text: s, addrSpec: true, displayStart: -1, displayEnd: -1, uriStart: start, uriEnd: i, paramsStart: i };
}

/**
 * Writes `"Display" <uri>;params`, always in name-addr form (angle brackets keep URI parameters
 * and header parameters apart, §20.10). The display name is quoted whenever present.
 */
export function serializeNameAddr(n: NameAddr): string {
  const dn = n.displayName !== undefined ? quote(n.displayName) + ' ' : '';
  return `${dn}<${serializeUri(n.uri)}>${serializeParams(n.params)}`;
}

/**
 * Parses one Contact value: `*` (RFC 3261 §10.2.2, REGISTER only) or a name-addr/addr-spec with
 * its contact-params (`q`, `expires`, `+sip.instance`, ...).
 */
export function parseContact(value: string): ContactValue {
  const e = trimEnd(value);
  const b = skipWs(value, 0);
  if (e - b === 1 && value.charCodeAt(b) === 0x2a /* * */) return { star: true };
  return { star: false, ...parseNameAddr(value) };
}

/** Writes a Contact value (`*` or a name-addr). */
export function serializeContact(c: ContactValue): string {
  return c.star ? '*' : serializeNameAddr(c);
}

/**
 * Parses one Via value (RFC 3261 §20.42, §25.1 via-parm): `SIP/2.0/UDP host:port;params`, with
 * LWS allowed around `/`, `:`, `;` and `=`. Any transport token is accepted (RFC 4475
 * §3.1.1.10) and upper-cased. The sent-by host may be an IPv6 reference; `received` may hold an
 * IPv6 address with or without brackets (RFC 5118 §4.5). `rport` without a value is null
 * (RFC 3581).
 *
 * @throws SipParseError `bad-via`
 */
export function parseVia(value: string): Via {
  const code = 'bad-via';
  const s = value;
  let i = skipWs(s, 0);
  // sent-protocol = protocol-name SLASH protocol-version SLASH transport
  const bounds: number[] = [];
  for (let k = 0; k < 3; k++) {
    if (k > 0) {
      if (s.charCodeAt(i) !== 0x2f /* / */) fail(code, 'expected "/" in Via sent-protocol');
      i = skipWs(s, i + 1);
    }
    const e = scanToken(s, i);
    if (e === i) fail(code, 'missing Via sent-protocol token');
    bounds.push(i, e);
    i = skipWs(s, e);
  }
  const hostStart = i;
  if (hostStart === 0 || !isWs(s.charCodeAt(hostStart - 1))) fail(code, 'missing LWS before Via sent-by');
  if (i >= s.length) fail(code, 'missing Via sent-by');
  let hostEnd: number;
  if (s.charCodeAt(i) === 0x5b) {
    hostEnd = s.indexOf(']', i);
    if (hostEnd < 0) fail(code, 'unterminated IPv6 reference in Via sent-by');
    hostEnd++;
  } else {
    hostEnd = i;
    while (hostEnd < s.length) {
      const c = s.charCodeAt(hostEnd);
      if (c === 0x3a || c === 0x3b || c === 0x2c || c === 0x28 || isWs(c)) break;
      hostEnd++;
    }
  }
  let sentBy: { host: string; port?: number };
  try {
    sentBy = scanHostPort(s, hostStart, hostEnd, 'Via sent-by', false);
    i = skipWs(s, hostEnd);
    if (i < s.length && s.charCodeAt(i) === 0x3a) {
      i = skipWs(s, i + 1);
      const ps = i;
      while (i < s.length && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
      if (i === ps) fail(code, 'empty port in Via sent-by');
      // The digits are read in place; parseUint (which slices) only reports an overlarge port.
      let port = 0;
      for (let d = ps; d < i && port <= 65535; d++) port = port * 10 + (s.charCodeAt(d) - 0x30);
      sentBy.port = port <= 65535 ? port : parseUint(s.slice(ps, i), 65535, code);
    }
  } catch (err) {
    if (err instanceof SipParseError) fail(code, err.message);
    throw err;
  }
  // The typed parameters are read in the checking scan; the params Map is built only when read.
  const found: (string | null | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  const end = checkParamsMany(s, i, code, TYPED_VIA_PARAMS, found);
  if (end < s.length) fail(code, 'unexpected "," in Via value');

  const via = new ParsedVia(
    sentProtocol(s, bounds[0]!, bounds[1]!, bounds[2]!, bounds[3]!),
    upperToken(s, bounds[4]!, bounds[5]!),
    sentBy.host,
    s,
    i,
  );
  if (sentBy.port !== undefined) via.port = sentBy.port;
  const [branch, received, rport, maddr, ttl] = found;
  if (branch !== undefined) {
    if (branch === null) fail(code, 'Via branch without a value');
    via.branch = branch;
  }
  if (received !== undefined) {
    if (received === null) fail(code, 'Via received without a value');
    via.received = received;
  }
  if (rport !== undefined) via.rport = rport === null ? null : parseUint(rport, 65535, code);
  if (maddr !== undefined) {
    if (maddr === null) fail(code, 'Via maddr without a value');
    via.maddr = maddr;
  }
  if (ttl !== undefined) {
    if (ttl === null) fail(code, 'Via ttl without a value');
    via.ttl = parseUint(ttl, 255, code);
  }
  return via;
}

/**
 * The Via that {@link parseVia} returns. For speed its `params` Map is built only when first
 * read (most Vias are only matched on `branch` and `sent-by`), from the already-checked
 * parameter text; assigning `params` replaces it like on a plain object, and `params.set(...)`
 * works on the built Map. The source text is kept in private fields, so that spreading or
 * comparing a Via sees only the Via's own data. Optional fields are assigned only when present,
 * as on a plain object literal.
 */
class ParsedVia implements Via {
  declare port?: number;
  declare branch?: string;
  declare received?: string;
  declare rport?: number | null;
  declare maddr?: string;
  declare ttl?: number;
  #text: string;
  #paramsAt: number;
  #params: Map<string, string | null> | undefined = undefined;

  constructor(
    public protocol: string,
    public transport: string,
    public host: string,
    text: string,
    paramsAt: number,
  ) {
    this.#text = text;
    this.#paramsAt = paramsAt;
  }

  get params(): Map<string, string | null> {
    return (this.#params ??= scanParams(this.#text, this.#paramsAt, 'bad-via').params);
  }

  set params(map: Map<string, string | null>) {
    this.#params = map;
  }
}

/** `SIP/2.0` as every Via has it, without building it; otherwise `NAME/version`, name upper-cased. */
function sentProtocol(s: string, ns: number, ne: number, vs: number, ve: number): string {
  if (ne - ns === 3 && s.startsWith('SIP', ns) && ve - vs === 3 && s.startsWith('2.0', vs)) return 'SIP/2.0';
  return `${s.slice(ns, ne).toUpperCase()}/${s.slice(vs, ve)}`;
}

/** Transports as they are usually written, returned as literals (no slice, no case mapping). */
const TRANSPORTS = ['UDP', 'TCP', 'TLS', 'SCTP', 'WS', 'WSS'];

/** `s[start,end)` upper-cased. */
function upperToken(s: string, start: number, end: number): string {
  for (const t of TRANSPORTS) if (t.length === end - start && s.startsWith(t, start)) return t;
  return s.slice(start, end).toUpperCase();
}

/**
 * Via parameters that {@link serializeVia} takes from the typed fields, not from `params`
 * (parseVia reads them in this order).
 */
const TYPED_VIA_PARAMS = ['branch', 'received', 'rport', 'maddr', 'ttl'] as const;

/**
 * Writes a Via value. The typed fields (`branch`, `received`, `rport`, `maddr`, `ttl`) are
 * authoritative: one set only in the typed field is appended, one cleared there is left out even
 * if still in `params`. Other parameters are written from `params` in order.
 */
export function serializeVia(v: Via): string {
  const params = new Map<string, string | null>();
  const typed = (k: (typeof TYPED_VIA_PARAMS)[number]): string | null | undefined => {
    const x = v[k];
    if (x === undefined) return undefined;
    return x === null ? null : String(x);
  };
  for (const [k, val] of v.params) {
    if ((TYPED_VIA_PARAMS as readonly string[]).includes(k)) {
      const t = typed(k as (typeof TYPED_VIA_PARAMS)[number]);
      if (t !== undefined) params.set(k, t);
    } else {
      params.set(k, val);
    }
  }
  for (const k of TYPED_VIA_PARAMS) {
    const t = typed(k);
    if (t !== undefined && !params.has(k)) params.set(k, t);
  }
  const protocol = v.protocol.includes('/') ? v.protocol : `${v.protocol}/2.0`;
  return `${protocol}/${v.transport} ${formatHostPort(v.host, v.port)}${serializeParams(params)}`;
}

/**
 * Parses a CSeq value `1*DIGIT LWS Method` (RFC 3261 §20.16). The number must fit in 32 bits
 * (§8.1.1.5: less than 2**31 when generated, but up to 2**32-1 accepted); leading zeros allowed.
 * @throws SipParseError `bad-cseq` (RFC 4475 §3.1.2.4)
 */
export function parseCSeq(value: string): CSeq {
  const s = value;
  let i = skipWs(s, 0);
  const ds = i;
  while (i < s.length && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
  if (i === ds) fail('bad-cseq', 'CSeq without a sequence number');
  const seq = parseUint(s.slice(ds, i), 0xffffffff, 'bad-cseq');
  const ws = i;
  i = skipWs(s, i);
  if (i === ws) fail('bad-cseq', 'CSeq needs LWS between number and method');
  const me = scanToken(s, i);
  if (me === i) fail('bad-cseq', 'CSeq without a method');
  if (skipWs(s, me) !== s.length) fail('bad-cseq', 'trailing characters in CSeq');
  return { seq, method: s.slice(i, me) };
}

/** Writes `seq METHOD`. */
export function serializeCSeq(c: CSeq): string {
  return `${c.seq} ${c.method}`;
}

/**
 * Parses a comma-separated list of tokens (Allow, Supported, Require, Proxy-Require,
 * Unsupported). Empty elements (`a,,b`) are skipped; an empty value gives [].
 * @throws SipParseError `bad-token-list` for a non-token element
 */
export function parseTokenList(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  const s = value;
  while (i < s.length) {
    i = skipWs(s, i);
    if (i >= s.length) break;
    if (s.charCodeAt(i) === 0x2c) {
      i++;
      continue;
    }
    const e = scanToken(s, i);
    if (e === i) fail('bad-token-list', `character "${s[i]}" in a token list`);
    out.push(s.slice(i, e));
    i = skipWs(s, e);
    if (i < s.length && s.charCodeAt(i) !== 0x2c) fail('bad-token-list', 'expected "," between tokens');
  }
  return out;
}

/**
 * Parses a non-negative decimal integer (Max-Forwards, Expires, Content-Length, rport). LWS
 * around it is ignored and leading zeros are allowed (RFC 4475 §3.1.1.1); a value above `max` is
 * rejected without overflowing (RFC 4475 §3.1.2.4).
 * @throws SipParseError `code` (default `bad-number`)
 */
export function parseUint(value: string, max: number, code = 'bad-number'): number {
  let i = skipWs(value, 0);
  const end = trimEnd(value);
  if (i >= end) fail(code, 'empty number');
  let v = 0;
  for (; i < end; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) fail(code, `"${value}" is not a number`);
    v = v * 10 + (c - 0x30);
    if (v > max) fail(code, `number "${value}" exceeds ${max}`);
  }
  return v;
}

/**
 * The `tag` parameter of a From/To value, without parsing the URI (transaction and dialog
 * matching hot path). Follows the same name-addr/addr-spec rules as {@link parseNameAddr}.
 * Returns undefined when there is no tag or the parameters are malformed; never throws.
 */
export function tagOf(nameAddrValue: string): string | undefined {
  const s = nameAddrValue;
  let start = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) {
      i++;
      while (i < s.length && s.charCodeAt(i) !== 0x22) {
        if (s.charCodeAt(i) === 0x5c) i++;
        i++;
      }
    } else if (c === 0x3c) {
      const gt = s.indexOf('>', i);
      if (gt < 0) return undefined;
      start = gt + 1;
      break;
    } else if (c === 0x3b) {
      start = i;
      break;
    }
  }
  if (start < 0) return undefined;
  try {
    const tag = scanParams(s, start, 'bad-params').params.get('tag');
    return tag ?? undefined;
  } catch {
    return undefined;
  }
}

/** Whether a character code is a token character (re-exported for callers validating methods). */
export { isTokenChar };
