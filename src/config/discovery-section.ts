/**
 * Validation of the `discovery` section: whether this box advertises itself and browses for
 * peers over mDNS/DNS-SD (src/discovery/*), under which instance name, on which interface, and
 * the shared LAN secret that calls between peers authenticate with.
 */
import { MAX_INSTANCE_NAME_BYTES } from '../discovery/dns-sd-records.ts';
import { isIpAddress, isObject, show } from './sections.ts';

type Json = unknown;

/** The `discovery` settings. */
export interface DiscoveryConfig {
  /** Advertise `_sip._udp` and `_sipuri._udp` and browse for peers (default true). */
  enabled: boolean;
  /** The DNS-SD instance name; '' means `hookswitch on <hostname>` (see `instanceName`). */
  name: string;
  /** The IPv4 address whose interface mDNS joins and sends on; absent: every interface. */
  interface?: string;
  /** Shared secret that calls between hookswitch peers authenticate with; never advertised. */
  secret?: string;
}

/** The defaults, used when the section or one of its keys is absent. */
export const DEFAULT_DISCOVERY: DiscoveryConfig = { enabled: true, name: '' };

const KEYS = ['enabled', 'name', 'interface', 'secret'];

/** The shortest shared secret accepted: long enough that guessing it over SIP is hopeless. */
export const MIN_SECRET_LENGTH = 12;

/**
 * Checks `input.discovery` and writes the accepted values into `cfg.discovery` (which the caller
 * has filled with {@link DEFAULT_DISCOVERY}). Each problem is one line naming the key, the rule
 * and the value, pushed onto `problems`; the secret's value is never repeated in a message.
 */
export function checkDiscoverySection(input: Record<string, Json>, cfg: { discovery: DiscoveryConfig }, problems: string[]): void {
  const d = input.discovery;
  if (d === undefined) return;
  if (!isObject(d)) {
    problems.push(`discovery must be an object (got ${show(d)})`);
    return;
  }
  for (const k of Object.keys(d)) if (!KEYS.includes(k)) problems.push(`discovery.${k} is not a known setting`);

  if (d.enabled !== undefined) {
    if (typeof d.enabled !== 'boolean') problems.push(`discovery.enabled must be true or false (got ${show(d.enabled)})`);
    else cfg.discovery.enabled = d.enabled;
  }

  if (d.name !== undefined) {
    const problem = instanceNameProblem(d.name);
    if (problem) problems.push(`discovery.name ${problem} (got ${show(d.name)})`);
    else cfg.discovery.name = d.name as string;
  }

  if (d.interface !== undefined) {
    const v = d.interface;
    if (!isIpAddress(v) || v.includes(':')) problems.push(`discovery.interface must be an IPv4 address of this box (got ${show(v)})`);
    else if (/^127\./.test(v) || v === '0.0.0.0') problems.push(`discovery.interface must be a LAN address, not loopback or the wildcard (got ${show(v)})`);
    else cfg.discovery.interface = v;
  }

  if (d.secret !== undefined) {
    const v = d.secret;
    if (typeof v !== 'string' || v.length < MIN_SECRET_LENGTH || /[\x00-\x1f\x7f]/.test(v)) {
      const got = typeof v === 'string' ? `${v.length} characters` : show(v);
      problems.push(`discovery.secret must be a one-line string of at least ${MIN_SECRET_LENGTH} characters (got ${got})`);
    } else cfg.discovery.secret = v;
  }
}

/** Why `v` cannot be an instance name, or undefined when it can ('' included: the default). */
function instanceNameProblem(v: Json): string | undefined {
  if (typeof v !== 'string') return 'must be a string';
  // RFC 6763 §4.1.1: "MUST NOT contain ASCII control characters".
  if (/[\x00-\x1f\x7f]/.test(v)) return 'must not contain control characters';
  // bonjour-service 1.4.4 turns dots into dashes instead of escaping them.
  if (v.includes('.')) return 'must not contain "."';
  if (new TextEncoder().encode(v).length > MAX_INSTANCE_NAME_BYTES) return `must be at most ${MAX_INSTANCE_NAME_BYTES} bytes of UTF-8`;
  return undefined;
}
