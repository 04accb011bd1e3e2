/**
 * Validation of the call-related config sections (`device`, `dialplan`, `emergencyNumbers`,
 * `media`, `security`, `registrar`, `calls`) and the small checks `config.ts` shares.
 */
import { compileDialRule, parseDialTarget, type DialRule } from '../calls/dialplan.ts';
import type { Config } from './config.ts';
import { checkCodecList } from './audio-sections.ts';

type Json = unknown;

export function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function show(v: Json): string {
  return JSON.stringify(v) ?? String(v);
}

export function wholeNumber(v: Json, key: string, min: number, max: number, problems: string[]): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    problems.push(`${key} must be a whole number from ${min} to ${max} (got ${show(v)})`);
    return undefined;
  }
  return v;
}

/** An object-valued top-level section, with its unknown keys reported. */
function section(input: Record<string, Json>, name: string, keys: readonly string[], problems: string[]): Record<string, Json> | undefined {
  const v = input[name];
  if (v === undefined) return undefined;
  if (!isObject(v)) {
    problems.push(`${name} must be an object (got ${show(v)})`);
    return undefined;
  }
  for (const k of Object.keys(v)) if (!keys.includes(k)) problems.push(`${name}.${k} is not a known setting`);
  return v;
}

/** Copies the whole-number keys of `src` that are present and in range into `dst`. */
function wholeNumbers(src: Record<string, Json>, name: string, dst: object, ranges: Record<string, [number, number]>, problems: string[]): void {
  for (const [k, [min, max]] of Object.entries(ranges)) {
    if (src[k] === undefined) continue;
    const n = wholeNumber(src[k], `${name}.${k}`, min, max, problems);
    if (n !== undefined) (dst as Record<string, number>)[k] = n;
  }
}

const isDigits = (v: Json): v is string => typeof v === 'string' && /^[0-9]{1,15}$/.test(v);
export const isHostName = (v: Json): v is string => typeof v === 'string' && /^[A-Za-z0-9.-]+$/.test(v);

function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/.test(p));
}

/** RFC 4291 §2.2 text forms: eight groups, one `::`, or a trailing dotted IPv4 address. */
function isIPv6(s: string): boolean {
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((h) => (h === '' ? [] : h.split(':')));
  let count = groups.length;
  const last = groups[groups.length - 1];
  if (last !== undefined && last.includes('.')) {
    if (!isIPv4(last)) return false;
    groups.pop();
    count += 1;
  }
  if (!groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}

export function isIpAddress(v: Json): v is string {
  return typeof v === 'string' && (isIPv4(v) || isIPv6(v));
}

/**
 * `a.b.c.d/n` (n 0-32), `<IPv6>/n` (n 0-128), or a bare address meaning that one host. Host bits
 * may be set; they are ignored. Agrees with `parseCidr` in src/security/cidr.ts.
 */
export function isCidr(v: Json): v is string {
  if (typeof v !== 'string') return false;
  const slash = v.indexOf('/');
  if (slash < 0) return isIpAddress(v);
  const addr = v.slice(0, slash);
  const bits = v.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits)) return false;
  if (isIPv4(addr)) return Number(bits) <= 32;
  return isIPv6(addr) && Number(bits) <= 128;
}

/** The sections issue 3 added: device, dial plan, emergency numbers, media, security, registrar, calls. */
export function checkSections(input: Record<string, Json>, cfg: Config, problems: string[]): void {
  const device = section(input, 'device', ['extension', 'autoAnswer'], problems);
  if (device?.extension !== undefined) {
    if (!isDigits(device.extension)) problems.push(`device.extension must be a string of 1 to 15 digits (got ${show(device.extension)})`);
    else cfg.device.extension = device.extension;
  }
  if (device?.autoAnswer !== undefined) {
    if (typeof device.autoAnswer !== 'boolean') problems.push(`device.autoAnswer must be true or false (got ${show(device.autoAnswer)})`);
    else cfg.device.autoAnswer = device.autoAnswer;
  }

  const emergency = input.emergencyNumbers;
  if (emergency !== undefined) {
    if (!Array.isArray(emergency)) problems.push(`emergencyNumbers must be a list of digit strings (got ${show(emergency)})`);
    else {
      const bad = emergency.findIndex((n) => !isDigits(n));
      if (bad >= 0) problems.push(`emergencyNumbers[${bad}] must be a string of 1 to 15 digits (got ${show(emergency[bad])})`);
      else cfg.emergencyNumbers = [...new Set(emergency as string[])];
    }
  }

  const media = section(input, 'media', ['rtpPorts', 'bind', 'publicAddress', 'stunServer', 'rtpTimeoutSeconds', 'codecs', 'srtp', 'srtpOverPlainSignalling'], problems);
  if (media) {
    if (media.rtpPorts !== undefined) {
      const r = checkRtpPorts(media.rtpPorts, problems);
      if (r) cfg.media.rtpPorts = r;
    }
    if (media.bind !== undefined) {
      if (!isIpAddress(media.bind)) problems.push(`media.bind must be an IP address (got ${show(media.bind)})`);
      else cfg.media.bind = media.bind;
    }
    if (media.publicAddress !== undefined) {
      if (!isIpAddress(media.publicAddress) && !isHostName(media.publicAddress)) {
        problems.push(`media.publicAddress must be an IP address or host name (got ${show(media.publicAddress)})`);
      } else cfg.media.publicAddress = media.publicAddress;
    }
    const stun = media.stunServer;
    if (stun !== undefined) {
      const m = typeof stun === 'string' ? /^(\[([^\]]+)\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$/.exec(stun) : null;
      if (typeof stun !== 'string' || !m || (m[2] !== undefined && !isIPv6(m[2])) || (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535))) {
        problems.push(`media.stunServer must be host or host:port (got ${show(stun)})`);
      } else cfg.media.stunServer = stun;
    }
    wholeNumbers(media, 'media', cfg.media, { rtpTimeoutSeconds: [1, 86_400] }, problems);
    if (media.codecs !== undefined) {
      const codecs = checkCodecList(media.codecs, problems);
      if (codecs) cfg.media.codecs = codecs;
    }
  }

  const security = section(input, 'security', ['allowedSources', 'maxAuthFailures', 'banSeconds'], problems);
  if (security) {
    const src = security.allowedSources;
    if (src !== undefined) {
      if (!Array.isArray(src) || src.length === 0) problems.push(`security.allowedSources must be a non-empty list of CIDRs (got ${show(src)})`);
      else {
        const bad = src.findIndex((c) => !isCidr(c));
        if (bad >= 0) problems.push(`security.allowedSources[${bad}] must be a CIDR like 192.168.0.0/16 or fe80::/10, or one address (got ${show(src[bad])})`);
        else cfg.security.allowedSources = src as string[];
      }
    }
    wholeNumbers(security, 'security', cfg.security, { maxAuthFailures: [1, 1000], banSeconds: [1, 2_592_000] }, problems);
  }

  const registrar = section(input, 'registrar', ['minExpires', 'maxExpires', 'defaultExpires', 'qualifySeconds'], problems);
  if (registrar) {
    const ranges: Record<string, [number, number]> = { minExpires: [1, 86_400], maxExpires: [1, 86_400], defaultExpires: [1, 86_400], qualifySeconds: [0, 3600] };
    wholeNumbers(registrar, 'registrar', cfg.registrar, ranges, problems);
    const { minExpires: lo, maxExpires: hi, defaultExpires: def } = cfg.registrar;
    if (lo > hi) problems.push(`registrar.minExpires must be <= registrar.maxExpires (got ${lo} > ${hi})`);
    else if (def < lo || def > hi) problems.push(`registrar.defaultExpires must be from registrar.minExpires to registrar.maxExpires (got ${def}, range ${lo} to ${hi})`);
  }

  const calls = section(input, 'calls', ['noAnswerSeconds', 'sessionExpires', 'minSessionExpires'], problems);
  if (calls) {
    // RFC 4028 §5: Min-SE "MUST NOT be less than 90 seconds".
    wholeNumbers(calls, 'calls', cfg.calls, { noAnswerSeconds: [1, 3600], sessionExpires: [90, 86_400], minSessionExpires: [90, 86_400] }, problems);
    const { sessionExpires: se, minSessionExpires: minSe } = cfg.calls;
    if (se < minSe) problems.push(`calls.sessionExpires must be >= calls.minSessionExpires (got ${se} < ${minSe})`);
  }

  if (input.dialplan !== undefined) {
    const rules = checkDialplan(input, cfg, problems);
    if (rules) cfg.dialplan = rules;
  }
}

function checkRtpPorts(v: Json, problems: string[]): [number, number] | undefined {
  const rule = (what: string) => problems.push(`media.rtpPorts ${what} (got ${show(v)})`);
  if (!Array.isArray(v) || v.length !== 2 || !v.every((p) => typeof p === 'number' && Number.isInteger(p))) rule('must be two whole numbers [first, last]');
  else if (v[0] < 1024 || v[1] > 65535) rule('must lie within 1024 to 65535');
  else if (v[0] >= v[1]) rule('must list the lower port first');
  else if (v[1] - v[0] + 1 < 4) rule('must span at least 4 ports');
  else return [v[0], v[1]];
  return undefined;
}

/**
 * `dialplan[]`: every `match` must compile and every `to` name a known target. Extension numbers
 * are checked only when the file lists extensions (the generated defaults come later); trunk
 * names are taken from the file even when a trunk has other problems, so one mistake is one line.
 */
function checkDialplan(input: Record<string, Json>, cfg: Config, problems: string[]): DialRule[] | undefined {
  const list = input.dialplan;
  if (!Array.isArray(list)) {
    problems.push(`dialplan must be a list of rules (got ${show(list)})`);
    return undefined;
  }
  const known = {
    ...(isObject(input.extensions) ? { extensions: Object.keys(input.extensions) } : {}),
    deviceExtension: cfg.device.extension,
    trunks: Array.isArray(input.trunks) ? input.trunks.flatMap((t) => (isObject(t) && typeof t.name === 'string' ? [t.name] : [])) : [],
  };
  const before = problems.length;
  const rules: DialRule[] = [];
  list.forEach((r, i) => {
    const key = `dialplan[${i}]`;
    if (!isObject(r)) {
      problems.push(`${key} must be an object with match and to (got ${show(r)})`);
      return;
    }
    for (const k of Object.keys(r)) if (!['match', 'to', 'strip', 'prepend', 'peer'].includes(k)) problems.push(`${key}.${k} is not a known setting`);
    const { match, to, strip, prepend, peer } = r;
    if (typeof match !== 'string' || match === '') problems.push(`${key}.match must be a digit map or /regex/ (got ${show(match)})`);
    else {
      try {
        compileDialRule({ match, to: '' });
      } catch (e) {
        problems.push(`${key}.match: ${(e as Error).message}`);
      }
    }
    if (typeof to !== 'string') problems.push(`${key}.to must be "extension:<number>", "device", "trunk:<name>", "echo" or "peer" (got ${show(to)})`);
    else {
      const target = parseDialTarget(to, known);
      if ('error' in target) problems.push(`${key}.to ${target.error} (got ${show(to)})`);
    }
    if (strip !== undefined && (typeof strip !== 'number' || !Number.isInteger(strip) || strip < 0)) {
      problems.push(`${key}.strip must be a whole number >= 0 (got ${show(strip)})`);
    }
    if (prepend !== undefined && (typeof prepend !== 'string' || !/^[0-9*#+]*$/.test(prepend))) {
      problems.push(`${key}.prepend must hold only digits, +, * and # (got ${show(prepend)})`);
    }
    if (peer !== undefined) {
      if (to !== 'peer') problems.push(`${key}.peer needs "to": "peer" (got ${show(to)})`);
      else if (typeof peer !== 'string' || peer.trim() === '' || peer.length > 63 || /[\x00-\x1f\x7f]/.test(peer)) {
        problems.push(`${key}.peer must be a peer's name of 1 to 63 characters (got ${show(peer)})`);
      }
    }
    rules.push({
      match: match as string,
      to: to as string,
      ...(strip !== undefined ? { strip: strip as number } : {}),
      ...(prepend !== undefined ? { prepend: prepend as string } : {}),
      ...(peer !== undefined ? { peer: peer as string } : {}),
    });
  });
  return problems.length > before ? undefined : rules;
}
