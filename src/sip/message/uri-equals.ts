/**
 * SIP and tel URI comparison (RFC 3261 §19.1.4, RFC 3966 §4), kept apart from the scanner in
 * `uri.ts`.
 */
import type { SipUri } from './types.ts';
import { ipv6Words, isIpv6Reference } from './uri.ts';

/** A host comparison key: lower case, IPv6 references reduced to their eight words. */
function hostKey(host: string): string {
  const h = host.toLowerCase();
  if (!isIpv6Reference(h)) return h;
  const inner = h.slice(1, -1);
  const words = ipv6Words(inner.includes(':::') ? inner.replace(':::', '::') : inner);
  return words ? `[${words.map((w) => w.toString(16)).join(':')}]` : h;
}

/** Parameters that, when present in either URI, must be present and equal in both (§19.1.4). */
const MUST_MATCH_PARAMS = ['user', 'ttl', 'method', 'maddr', 'transport'];

function paramValueEquals(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  return a.toLowerCase() === b.toLowerCase();
}

/** RFC 3966 §4: numbers compare without visual separators, hex digits case-insensitively. */
function telNumberKey(n: string | undefined): string {
  return (n ?? '').replace(/[-.()]/g, '').toLowerCase();
}

/**
 * URI equivalence, RFC 3261 §19.1.4 for sip/sips:
 * - scheme, host and parameter names/values compare case-insensitively; user and password
 *   case-sensitively; escaped and unescaped characters are equal (both were decoded when parsed);
 * - a port, or the user/password, must be present in both or neither (`sip:h` ≠ `sip:h:5060`);
 * - `user`, `ttl`, `method`, `maddr` and `transport` must match when present in either; any other
 *   parameter must match only when present in both;
 * - URI headers are never ignored: both must carry the same set (names case-insensitive).
 * tel URIs follow RFC 3966 §4 (visual separators ignored, the same parameter set required).
 */
export function uriEquals(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme) return false;
  if (a.scheme === 'tel') {
    if (telNumberKey(a.user) !== telNumberKey(b.user)) return false;
    if (a.params.size !== b.params.size) return false;
    for (const [k, v] of a.params) {
      if (!b.params.has(k) || !paramValueEquals(v, b.params.get(k)!)) return false;
    }
    return true;
  }
  if (a.user !== b.user || a.password !== b.password) return false;
  if (a.port !== b.port) return false;
  if (hostKey(a.host) !== hostKey(b.host)) return false;
  for (const name of MUST_MATCH_PARAMS) {
    const inA = a.params.has(name);
    if (inA !== b.params.has(name)) return false;
    if (inA && !paramValueEquals(a.params.get(name)!, b.params.get(name)!)) return false;
  }
  for (const [k, v] of a.params) {
    if (b.params.has(k) && !paramValueEquals(v, b.params.get(k)!)) return false;
  }
  if (a.headers.size !== b.headers.size) return false;
  if (a.headers.size > 0) {
    const bh = new Map<string, string>();
    for (const [k, v] of b.headers) bh.set(k.toLowerCase(), v);
    for (const [k, v] of a.headers) if (bh.get(k.toLowerCase()) !== v) return false;
  }
  return true;
}
