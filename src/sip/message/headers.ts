import { isWs } from './params.ts';

/**
 * The header section of a SIP message: an ordered list of fields, looked up by case-insensitive
 * name with compact forms (RFC 3261 §7.3.3) folded to the long name.
 *
 * Values are "byte strings": the raw octets decoded as latin1, so every byte (NUL, UTF-8
 * sequences, bytes >= 0x80) survives a parse/serialise round trip unchanged. Use
 * {@link utf8Value} to read a value as UTF-8 text.
 */

/** Compact form → long name key (RFC 3261 §7.3.3 and the IANA SIP header registry). */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** Canonical spellings where Title-Case is not what RFC 3261 writes. */
const CANONICAL: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'mime-version': 'MIME-Version',
  'rack': 'RAck',
  'rseq': 'RSeq',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
};

/**
 * Headers whose values are comma-separated lists (RFC 3261 §7.3.1: a field with a list value may
 * be split into several fields and vice versa). Every other header, the authentication headers
 * included, is kept whole: their values contain commas that do not separate values.
 */
const LIST_HEADERS: ReadonlySet<string> = new Set([
  'accept',
  'accept-encoding',
  'accept-language',
  'alert-info',
  'allow',
  'allow-events',
  'call-info',
  'contact',
  'content-encoding',
  'content-language',
  'error-info',
  'in-reply-to',
  'path',
  'proxy-require',
  'record-route',
  'require',
  'route',
  'service-route',
  'supported',
  'unsupported',
  'via',
  'warning',
]);

/**
 * Trims SP and HTAB only. `String.prototype.trim` must not be used on byte strings: it also
 * removes U+00A0, which is the byte 0xA0 that can end a UTF-8 sequence.
 */
export function trimWs(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isWs(s.charCodeAt(start))) start++;
  while (end > start && isWs(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** The lookup key of a header name: lower case, compact forms expanded. */
export function headerKey(name: string): string {
  const cached = KEY_CACHE.get(name);
  if (cached !== undefined) return cached;
  const lower = name.toLowerCase();
  const expanded = COMPACT_FORMS[lower] ?? lower;
  // The literal spelling for known names: the code compares keys with literals ('via', 'cseq'),
  // and two identical literal strings compare by reference, without reading their characters.
  const key = KNOWN_KEYS.get(expanded) ?? expanded;
  // Bounded: names seen on the wire are few; a flood of invented ones only resets the cache.
  if (KEY_CACHE.size >= 2048) KEY_CACHE.clear();
  KEY_CACHE.set(name, key);
  return key;
}

const KEY_CACHE = new Map<string, string>();

/** Keys of the headers the stack reads, each mapped to its own literal (see headerKey). */
const KNOWN_KEYS = new Map<string, string>(
  [
    ...Object.values(COMPACT_FORMS),
    ...LIST_HEADERS,
    ...['call-id', 'cseq', 'max-forwards', 'content-type', 'content-length', 'expires', 'user-agent', 'server'],
    ...['authorization', 'proxy-authorization', 'www-authenticate', 'proxy-authenticate', 'min-expires'],
  ].map((k) => [k, k]),
);

/** A header name as spelled on the wire and its lookup key. */
export interface HeaderName {
  readonly name: string;
  readonly key: string;
}

/**
 * Names seen on the wire, in buckets indexed by {@link nameShape}. A plain array indexed by a
 * small integer, not a Map: the lookup runs once per header line (a parsing hot spot).
 */
let namesByShape: (RememberedName[] | undefined)[] = new Array(4096);

/**
 * A remembered name with its character codes: the parser compares them with the bytes of each
 * header line, and typed-array reads on both sides are cheaper than `charCodeAt` on the name
 * (often a slice of the first message that carried it).
 */
interface RememberedName extends HeaderName {
  readonly codes: Uint16Array;
}
let namesRemembered = 0;

/** Bucket index of a name of `len` characters starting with `c0`: 5 bits of length, 7 of char. */
function nameShape(len: number, c0: number): number {
  return ((len & 31) << 7) | (c0 & 127);
}

/** Whether `text[start,end)` is exactly `name`, compared in place (cheaper than `startsWith(name, pos)`). */
function sameName(text: string, start: number, end: number, name: string): boolean {
  if (name.length !== end - start) return false;
  for (let k = name.length - 1; k >= 0; k--) if (text.charCodeAt(start + k) !== name.charCodeAt(k)) return false;
  return true;
}

/** Whether `bytes[start,end)` spells the name of `codes` (latin1). Compared from the end: `Call-ID`/`Contact` differ there. */
function sameNameBytes(bytes: Uint8Array, start: number, end: number, codes: Uint16Array): boolean {
  if (codes.length !== end - start) return false;
  for (let k = codes.length - 1; k >= 0; k--) if (bytes[start + k] !== codes[k]) return false;
  return true;
}

/**
 * The name `text[start,end)` and its key. Names seen before are found by comparing in place
 * against the few remembered names of the same shape (length, first character), so the usual
 * header line costs neither a slice nor a string hash.
 */
export function headerNameAt(text: string, start: number, end: number): HeaderName {
  const shape = nameShape(end - start, text.charCodeAt(start));
  const same = namesByShape[shape];
  if (same !== undefined) {
    for (let k = 0; k < same.length; k++) if (sameName(text, start, end, same[k]!.name)) return same[k]!;
  }
  return rememberName(shape, text.slice(start, end));
}

/**
 * {@link headerNameAt} for the parser, which has the message both as bytes and as a latin1
 * string: the name is `bytes[start,end)`, which is `text[start - delta, end - delta)`. The
 * comparison reads the bytes (typed-array reads are cheaper than `charCodeAt` on a string);
 * the text is only sliced for a name not seen before.
 */
export function headerNameInBytes(bytes: Uint8Array, start: number, end: number, text: string, delta: number): HeaderName {
  const shape = nameShape(end - start, bytes[start]!);
  const same = namesByShape[shape];
  if (same !== undefined) {
    for (let k = 0; k < same.length; k++) if (sameNameBytes(bytes, start, end, same[k]!.codes)) return same[k]!;
  }
  return rememberName(shape, text.slice(start - delta, end - delta));
}

function rememberName(shape: number, name: string): HeaderName {
  const codes = new Uint16Array(name.length);
  for (let k = 0; k < name.length; k++) codes[k] = name.charCodeAt(k);
  const entry: RememberedName = { name, key: headerKey(name), codes };
  // Bounded like KEY_CACHE: a flood of invented names only resets it.
  if (namesRemembered >= 2048) {
    namesByShape = new Array(4096);
    namesRemembered = 0;
  }
  (namesByShape[shape] ??= []).push(entry);
  namesRemembered++;
  return entry;
}

/** The canonical spelling of a header name (`call-id` → `Call-ID`, `v` → `Via`). */
export function canonicalName(name: string): string {
  const key = headerKey(name);
  const special = CANONICAL[key];
  if (special) return special;
  return key.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/**
 * Headers of RFC 3261 §20 and the extensions the stack speaks, keyed by lookup key, with the
 * spelling the serialiser writes. Headers not listed here are written exactly as received.
 */
const WIRE_SPELLING: ReadonlyMap<string, string> = new Map(
  [
    'accept', 'accept-encoding', 'accept-language', 'alert-info', 'allow', 'allow-events',
    'authentication-info', 'authorization', 'call-id', 'call-info', 'contact', 'content-disposition',
    'content-encoding', 'content-language', 'content-length', 'content-type', 'cseq', 'date',
    'error-info', 'event', 'expires', 'from', 'in-reply-to', 'max-forwards', 'mime-version',
    'min-expires', 'min-se', 'organization', 'p-asserted-identity', 'path', 'priority',
    'proxy-authenticate', 'proxy-authorization', 'proxy-require', 'rack', 'record-route',
    'refer-to', 'referred-by', 'replaces', 'reply-to', 'require', 'retry-after', 'route', 'rseq',
    'server', 'service-route', 'session-expires', 'subject', 'supported', 'timestamp', 'to',
    'unsupported', 'user-agent', 'via', 'warning', 'www-authenticate',
  ].map((key) => [key, canonicalName(key)]),
);

/**
 * The name to write for a field: the canonical long form of a known header (`v` and `VIA` are
 * written `Via`, RFC 3261 §7.3.3 allows either form), an unknown header's name unchanged.
 */
export function wireName(field: HeaderField): string {
  return WIRE_SPELLING.get(field.key) ?? field.name;
}

/** Whether a header's value is a comma-separated list that may be split. */
export function isListHeader(name: string): boolean {
  return LIST_HEADERS.has(headerKey(name));
}

/**
 * Splits a header value at commas that are outside quoted strings and angle brackets
 * (`"Doe, John" <sip:j@x>, <sip:k@y>` is two values). Empty elements are dropped and each
 * element is trimmed.
 */
export function splitList(value: string): string[] {
  return listElements(value, Infinity);
}

/**
 * The first element {@link splitList} would give (`splitList(value)[0]`), without splitting the
 * rest of the list: the top Via of a field holding several.
 */
export function firstListValue(value: string): string | undefined {
  return listElements(value, 1)[0];
}

/** At most `limit` elements of a list value, scanned left to right. */
function listElements(value: string, limit: number): string[] {
  // Most values hold one element: without a comma there is nothing to split (a native search).
  if (value.indexOf(',') < 0) {
    const only = trimWs(value);
    return only ? [only] : [];
  }
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inQuote = false;
    } else if (c === 0x22) inQuote = true;
    else if (c === 0x3c /* < */) inAngle = true;
    else if (c === 0x3e /* > */) inAngle = false;
    else if (c === 0x2c /* , */ && !inAngle) {
      const part = trimWs(value.slice(start, i));
      if (part && out.push(part) >= limit) return out;
      start = i + 1;
    }
  }
  const last = trimWs(value.slice(start));
  if (last) out.push(last);
  return out;
}

/** One header field as it appeared (or will appear) on the wire. */
export interface HeaderField {
  /** The name as received (or as set); serialisation writes it unchanged. */
  readonly name: string;
  /** Lookup key: lower case, compact form expanded. */
  readonly key: string;
  /** The value with folding undone and surrounding whitespace trimmed, as a byte string. */
  value: string;
}

/** Reads a byte-string header value as UTF-8 text (display names, reason phrases, subjects). */
export function utf8Value(value: string): string {
  return Buffer.from(value, 'latin1').toString('utf8');
}

/** Turns UTF-8 text into a byte string fit for a header value. */
export function byteString(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** An ordered, case-insensitive collection of header fields. */
export class Headers implements Iterable<HeaderField> {
  private fields: HeaderField[];

  constructor(fields: Iterable<HeaderField | readonly [string, string]> = []) {
    this.fields = [];
    for (const f of fields) {
      if (Array.isArray(f)) this.append(f[0] as string, f[1] as string);
      else this.fields.push({ ...(f as HeaderField) });
    }
  }

  /**
   * Headers that take over `fields` without copying them (the parser's fresh field objects).
   * The caller must not keep or modify the array or its fields afterwards.
   */
  static adopt(fields: HeaderField[]): Headers {
    const headers = new Headers();
    headers.fields = fields;
    return headers;
  }

  /** The first field's value, or undefined. */
  get(name: string): string | undefined {
    const key = headerKey(name);
    for (const f of this.fields) if (f.key === key) return f.value;
    return undefined;
  }

  /**
   * Every value of a header in order. List headers (Via, Contact, Route, Allow, ...) are split at
   * top-level commas, so two `Via` fields and one `Via: a, b` field read the same. Other headers
   * give one value per field.
   */
  getAll(name: string): string[] {
    const key = headerKey(name);
    const list = LIST_HEADERS.has(key);
    const out: string[] = [];
    for (const f of this.fields) {
      if (f.key !== key) continue;
      if (list) out.push(...splitList(f.value));
      else out.push(f.value);
    }
    return out;
  }

  /** Number of fields (not values) with this name. */
  count(name: string): number {
    const key = headerKey(name);
    let n = 0;
    for (const f of this.fields) if (f.key === key) n++;
    return n;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Adds a field at the end. */
  append(name: string, value: string): this {
    this.fields.push({ name, key: headerKey(name), value });
    return this;
  }

  /** Adds a field before every other field of the same name (a proxy's Via, a Record-Route). */
  prepend(name: string, value: string): this {
    const key = headerKey(name);
    const at = this.fields.findIndex((f) => f.key === key);
    const field = { name, key, value };
    if (at < 0) this.fields.push(field);
    else this.fields.splice(at, 0, field);
    return this;
  }

  /**
   * Replaces every field of this name with the given values, placed where the first one was
   * (or at the end). An empty array removes the header.
   */
  set(name: string, value: string | readonly string[]): this {
    const key = headerKey(name);
    const values = typeof value === 'string' ? [value] : value;
    const at = this.fields.findIndex((f) => f.key === key);
    const kept = this.fields.filter((f) => f.key !== key);
    const added = values.map((v) => ({ name, key, value: v }));
    const insertAt = at < 0 ? kept.length : this.fields.slice(0, at).filter((f) => f.key !== key).length;
    kept.splice(insertAt, 0, ...added);
    this.fields = kept;
    return this;
  }

  /** Removes every field of this name. */
  delete(name: string): this {
    const key = headerKey(name);
    this.fields = this.fields.filter((f) => f.key !== key);
    return this;
  }

  /** Removes the first value of a list header (the top Via when a response goes upstream). */
  removeFirstValue(name: string): this {
    const key = headerKey(name);
    const at = this.fields.findIndex((f) => f.key === key);
    if (at < 0) return this;
    const field = this.fields[at]!;
    const values = LIST_HEADERS.has(key) ? splitList(field.value) : [field.value];
    if (values.length <= 1) this.fields.splice(at, 1);
    else this.fields[at] = { ...field, value: values.slice(1).join(', ') };
    return this;
  }

  clone(): Headers {
    return new Headers(this.fields);
  }

  [Symbol.iterator](): Iterator<HeaderField> {
    return this.fields[Symbol.iterator]();
  }

  get size(): number {
    return this.fields.length;
  }
}
