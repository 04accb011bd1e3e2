/**
 * IP addresses and CIDR ranges as text (RFC 4291 §2.2 and §2.3, RFC 4632 §3.1), for source
 * filtering. Pure.
 *
 * Every address is placed in one 128-bit space: IPv6 as itself, IPv4 as its IPv4-mapped IPv6
 * address `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2). So `10.0.0.0/8` is `::ffff:10.0.0.0/104`, and a
 * dual-stack socket's `::ffff:10.0.0.1` falls in IPv4 ranges with no special case.
 */

/** A parsed IP address: 4 bytes for IPv4, 16 for IPv6. */
export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

/** One CIDR range. */
export interface CidrMatcher {
  /** The range in canonical form (`10.0.0.0/8`, `fe80::/10`), host bits cleared. */
  readonly cidr: string;
  /** True when `address` (text, as {@link parseIpAddress} accepts) lies in the range; false for non-addresses. */
  contains(address: string): boolean;
}

/** Private, loopback and link-local ranges: the sources a LAN gateway accepts by default. */
export const DEFAULT_ALLOWED_SOURCES: readonly string[] = Object.freeze([
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '169.254.0.0/16',
  '127.0.0.0/8',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
]);

const V4_MAPPED_PREFIX = 0xffffn << 32n;

/**
 * Parses a dotted-quad IPv4 address (`192.0.2.1`). Octets are decimal 0-255 without leading
 * zeros (`010` is refused: some parsers read it as octal).
 */
function parseIpv4Bytes(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** Parses the 16-bit groups of one side of `::`; a dotted IPv4 tail counts as two groups. */
function parseGroups(side: string, allowIpv4Tail: boolean): number[] | undefined {
  if (side === '') return [];
  const parts = side.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (allowIpv4Tail && i === parts.length - 1 && p.includes('.')) {
      const v4 = parseIpv4Bytes(p);
      if (!v4) return undefined;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      continue;
    }
    if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
    groups.push(parseInt(p, 16));
  }
  return groups;
}

/**
 * Parses an IPv6 address in any RFC 4291 §2.2 form: eight groups, `::` compression (once, for
 * one or more zero groups), and a dotted IPv4 tail (`::ffff:192.0.2.1`, `::13.1.68.3`).
 */
function parseIpv6Bytes(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0]!, false);
    const tail = parseGroups(halves[1]!, true);
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(text, true);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * Parses an IPv4 or IPv6 address. Accepts what sockets report: brackets (`[::1]`) and a zone
 * (`fe80::1%eth0`, the zone is dropped). Returns undefined for anything else, never throws.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  let s = text;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0 && s.includes(':')) s = s.slice(0, zone);
  if (s.includes(':')) {
    const bytes = parseIpv6Bytes(s);
    return bytes ? { family: 6, bytes } : undefined;
  }
  const bytes = parseIpv4Bytes(s);
  return bytes ? { family: 4, bytes } : undefined;
}

/** The address as a number in the shared 128-bit space (IPv4 as IPv4-mapped IPv6). */
function toKey(ip: IpAddress): bigint {
  let n = 0n;
  for (const b of ip.bytes) n = (n << 8n) | BigInt(b);
  return ip.family === 4 ? V4_MAPPED_PREFIX | n : n;
}

function isV4Mapped(key: bigint): boolean {
  return key >> 32n === 0xffffn;
}

function keyToIp(key: bigint): IpAddress {
  if (isV4Mapped(key)) {
    const v = Number(key & 0xffffffffn);
    return { family: 4, bytes: Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff) };
  }
  return v6Bytes(key);
}

/**
 * Text of an address: dotted quad for IPv4, RFC 5952 for IPv6 (lower case, no leading zeros,
 * the longest run of two or more zero groups compressed, the first on a tie, and
 * `::ffff:a.b.c.d` for IPv4-mapped addresses, §5).
 */
export function formatIpAddress(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * One canonical text per host: `::ffff:10.0.0.1`, `10.0.0.1` and `[::FFFF:a00:1]` all give
 * `10.0.0.1`; IPv6 in RFC 5952 form. Undefined when `text` is not an address.
 */
export function normalizeAddress(text: string): string | undefined {
  const ip = parseIpAddress(text);
  return ip === undefined ? undefined : formatIpAddress(keyToIp(toKey(ip)));
}

function fail(text: string, why: string): never {
  const shown = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text);
  throw new Error(`invalid address range ${shown}: ${why}`);
}

class Range implements CidrMatcher {
  readonly cidr: string;
  private readonly shift: bigint;
  private readonly network: bigint;

  constructor(key: bigint, prefix128: number, family: 4 | 6, prefix: number) {
    this.shift = BigInt(128 - prefix128);
    this.network = key >> this.shift;
    const base = this.network << this.shift;
    this.cidr = `${formatIpAddress(family === 4 ? keyToIp(base) : v6Bytes(base))}/${prefix}`;
  }

  contains(address: string): boolean {
    const ip = parseIpAddress(address);
    return ip !== undefined && this.containsKey(toKey(ip));
  }

  containsKey(key: bigint): boolean {
    return key >> this.shift === this.network;
  }
}

function v6Bytes(key: bigint): IpAddress {
  const bytes = new Uint8Array(16);
  for (let i = 15, k = key; i >= 0; i--, k >>= 8n) bytes[i] = Number(k & 0xffn);
  return { family: 6, bytes };
}

/**
 * Parses `a.b.c.d/n` (n 0-32), an IPv6 range `x::y/n` (n 0-128) or a bare address (a /32 or
 * /128). Host bits beyond the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`). Throws an
 * Error with a one-line message on anything else.
 */
export function parseCidr(text: string): CidrMatcher {
  return parseRange(text);
}

function parseRange(text: string): Range {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  if (addrText.includes('%') || addrText.startsWith('[')) fail(text, 'zones and brackets are not allowed in a range');
  const ip = parseIpAddress(addrText);
  if (!ip) fail(text, 'not an IPv4 or IPv6 address');
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) fail(text, `prefix length must be 0-${max}`);
    prefix = Number(p);
  }
  return new Range(toKey(ip), ip.family === 4 ? 96 + prefix : prefix, ip.family, prefix);
}

/**
 * A set of CIDR ranges, for "is this source allowed". Construction throws (one-line message
 * naming the bad entry) when any entry is not a range; `has` never throws.
 */
export class AddressSet {
  private readonly ranges: Range[];

  constructor(cidrs: readonly string[]) {
    this.ranges = cidrs.map(parseRange);
  }

  /** The ranges in canonical form. */
  get cidrs(): string[] {
    return this.ranges.map((r) => r.cidr);
  }

  /** True when `address` lies in one of the ranges; false for text that is not an address. */
  has(address: string): boolean {
    const ip = parseIpAddress(address);
    if (ip === undefined) return false;
    const key = toKey(ip);
    return this.ranges.some((r) => r.containsKey(key));
  }
}
