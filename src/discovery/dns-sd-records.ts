/**
 * What hookswitch says about itself over DNS-SD (RFC 6763) and what it reads from others: the
 * service types, the instance name, the TXT record built from our settings, and a peer's TXT
 * turned back into typed fields. Pure: no sockets, no clock.
 *
 * The TXT keys `txtvers`, `name`, `contact` and `instance_id` under `_sipuri._udp` are those
 * python-sipsimple (Blink) and baresip's old avahi module publish; `product`, `version`, `exts`
 * and `dev` are hookswitch's own. Passwords and the LAN secret are never part of a record.
 */

/** The DNS-SD service names we publish and browse, without the leading underscore. */
export type DnsSdType = 'sipuri' | 'sip';

/** Both types, each under `_udp` (RFC 6763 §7: the protocol label of a non-TCP service). */
export const SERVICE_TYPES: readonly DnsSdType[] = ['sipuri', 'sip'];

/** The value of `product` in our TXT record: how one hookswitch recognises another. */
export const PRODUCT = 'hookswitch';

/** RFC 6763 §4.1.1: an instance name is at most 63 octets. */
export const MAX_INSTANCE_NAME_BYTES = 63;

/** RFC 6763 §6.1: each TXT string (`key=value`) is at most 255 octets. */
export const MAX_TXT_STRING_BYTES = 255;

/** At most this many extension numbers are read from a peer's `exts` (bounds network input). */
export const MAX_PEER_EXTENSIONS = 100;

const utf8 = new TextEncoder();
const bytes = (s: string): number => utf8.encode(s).length;

/** `s` cut to at most `max` UTF-8 octets, never inside a character. */
export function truncateUtf8(s: string, max: number): string {
  if (bytes(s) <= max) return s;
  let out = '';
  for (const ch of s) {
    if (bytes(out + ch) > max) break;
    out += ch;
  }
  return out;
}

/** The first label of a host name, reduced to letters, digits and hyphens (RFC 952/1123). */
function hostLabel(hostname: string): string {
  const label = (hostname.split('.')[0] ?? '').replace(/[^A-Za-z0-9-]/g, '-').replace(/^-+|-+$/g, '');
  return label === '' ? 'hookswitch' : label;
}

/**
 * The instance name to publish: `configured`, or `hookswitch on <hostname>` when it is ''. Dots
 * become dashes (bonjour-service 1.4.4 cannot escape them; it would do the same) and the result
 * is cut to {@link MAX_INSTANCE_NAME_BYTES}.
 */
export function instanceName(configured: string, hostname: string): string {
  const name = configured !== '' ? configured : `hookswitch on ${hostLabel(hostname)}`;
  return truncateUtf8(name.split('.').join('-'), MAX_INSTANCE_NAME_BYTES);
}

/** The SRV target: the host's first label under `.local` (RFC 6762 §3). */
export function mdnsHostName(hostname: string): string {
  return `${hostLabel(hostname)}.local`;
}

/** `sip:user@host:port`, with an IPv6 host in brackets (RFC 3261 §25.1). */
export function sipUri(user: string, host: string, port: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `sip:${user}@${h}:${port}`;
}

/** What this box advertises; built by the composition root at each (re-)announcement. */
export interface AdvertisedIdentity {
  /** From {@link instanceName}. */
  instanceName: string;
  /** A stable UUID kept in the state directory, the same across restarts and address changes. */
  instanceId: string;
  /** hookswitch's version (package.json). */
  version: string;
  /** The SIP port peers send to (UDP). */
  port: number;
  /** Where to call this box: `sip:<device extension>@<LAN address>:<port>`, see {@link sipUri}. */
  contact: string;
  /** The extension numbers this box serves. */
  extensions: readonly string[];
  /** The number of this box's own handset or intercom, if it has one. */
  deviceExtension?: string;
}

/**
 * The TXT record as key/value pairs in publication order. `exts` lists as many extension numbers
 * as fit in one TXT string ({@link MAX_TXT_STRING_BYTES}); `name` is cut likewise.
 */
export function buildTxt(id: AdvertisedIdentity): Record<string, string> {
  const txt: Record<string, string> = {
    // RFC 6763 §6.7: txtvers first, so a reader can tell the format.
    txtvers: '1',
    name: truncateUtf8(id.instanceName, MAX_TXT_STRING_BYTES - 'name='.length),
    contact: `<${id.contact}>`,
    instance_id: id.instanceId,
    product: PRODUCT,
    version: id.version,
  };
  const exts: string[] = [];
  for (const e of [...id.extensions].sort(numeric)) {
    if (bytes(`exts=${[...exts, e].join(',')}`) > MAX_TXT_STRING_BYTES) break;
    exts.push(e);
  }
  txt.exts = exts.join(',');
  if (id.deviceExtension !== undefined) txt.dev = id.deviceExtension;
  return txt;
}

const numeric = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

/** Decoded TXT attributes: keys lower-cased, a key without `=` maps to `true` (RFC 6763 §6.4). */
export type TxtAttributes = ReadonlyMap<string, string | true>;

/**
 * Decodes the strings of a TXT record (RFC 6763 §6.3-6.5): the key is everything before the
 * first `=`, compared case-insensitively; empty strings and empty keys are ignored; when a key
 * repeats, the first wins ("SHOULD silently ignore all but the first").
 */
export function decodeTxt(strings: readonly Uint8Array[]): TxtAttributes {
  const out = new Map<string, string | true>();
  const text = new TextDecoder('utf-8', { fatal: false });
  for (const s of strings) {
    const eq = s.indexOf(0x3d);
    const key = text.decode(eq === -1 ? s : s.subarray(0, eq)).toLowerCase();
    if (key === '' || out.has(key)) continue;
    out.set(key, eq === -1 ? true : text.decode(s.subarray(eq + 1)));
  }
  return out;
}

/** The same, from an already split object (bonjour-service's `txt` when the raw strings are absent). */
export function txtFromObject(obj: Record<string, unknown>): TxtAttributes {
  const out = new Map<string, string | true>();
  for (const [k, v] of Object.entries(obj)) {
    const key = k.toLowerCase();
    if (key === '' || out.has(key)) continue;
    out.set(key, typeof v === 'string' ? v : v === undefined || v === true ? true : String(v));
  }
  return out;
}

/** One service instance as a browser reported it, before interpretation. */
export interface ServiceSighting {
  type: DnsSdType;
  /** The instance name (first label of the service's DNS name). */
  instance: string;
  /** The SRV target. */
  host: string;
  port: number;
  /** A and AAAA data that came with it; the responder's source address when none did. */
  addresses: readonly string[];
  txt: TxtAttributes;
  /** The record TTL in seconds (0 is a goodbye, RFC 6762 §10.1). */
  ttlSeconds: number;
}

/** What a sighting says about the peer, with the network's strings checked. */
export interface PeerInfo {
  name: string;
  host: string;
  addresses: string[];
  port: number;
  /** The SIP URI from `contact`, without angle brackets, when it is one. */
  contact?: string;
  instanceId?: string;
  /** `product=hookswitch` is present. */
  isHookswitch: boolean;
  version?: string;
  /** From `exts`: digit strings only, at most {@link MAX_PEER_EXTENSIONS}. */
  extensions: string[];
  deviceExtension?: string;
}

const text = (txt: TxtAttributes, key: string, max: number): string | undefined => {
  const v = txt.get(key);
  return typeof v === 'string' && v !== '' && v.length <= max && !/[\x00-\x1f\x7f]/.test(v) ? v : undefined;
};

const isDigits = (s: string): boolean => /^[0-9]{1,15}$/.test(s);

/** Interprets a sighting; malformed TXT values are dropped, never thrown. */
export function peerInfo(s: ServiceSighting): PeerInfo {
  const contactText = text(s.txt, 'contact', 255);
  const contact = contactText ? /^<?(sips?:[^\s<>"]+)>?$/i.exec(contactText)?.[1] : undefined;
  const exts = (text(s.txt, 'exts', 1024) ?? '').split(',').filter(isDigits).slice(0, MAX_PEER_EXTENSIONS);
  const dev = text(s.txt, 'dev', 15);
  const instanceId = text(s.txt, 'instance_id', 64);
  const version = text(s.txt, 'version', 32);
  return {
    name: s.instance,
    host: s.host,
    addresses: [...new Set(s.addresses)],
    port: s.port,
    ...(contact ? { contact } : {}),
    ...(instanceId ? { instanceId } : {}),
    isHookswitch: text(s.txt, 'product', 64)?.toLowerCase() === PRODUCT,
    ...(version ? { version } : {}),
    extensions: exts,
    ...(dev && isDigits(dev) ? { deviceExtension: dev } : {}),
  };
}
