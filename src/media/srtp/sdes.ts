/**
 * SDP Security Descriptions for SRTP (RFC 4568): the `a=crypto` attribute that carries a master
 * key in the SDP of the side that will send with it. Parses and formats the attribute value (what
 * follows `a=crypto:`), generates fresh keys from an injected Random, picks the answer to an offer
 * (§7.1.2), and redacts keys from text meant for logs and traces. Pure.
 *
 * ```
 * a=crypto:<tag> <crypto-suite> inline:<base64(key||salt)>[|lifetime][|MKI:length] [<session-param>...]
 * ```
 */
import type { Random } from '../../runtime/random.ts';
import { srtpSuite, SRTP_SUITES, type SrtpSuiteName } from './srtp-suites.ts';

/** One master key of an `inline:` key parameter (RFC 4568 §6.1). */
export interface SdesKey {
  /** 16 octets. */
  masterKey: Buffer;
  /** 14 octets. */
  masterSalt: Buffer;
  /** Packets the key may protect; absent means the suite default (2^48 SRTP, 2^31 SRTCP). */
  lifetime?: number;
  /** Master key identifier and the octets it takes in each packet (1..128). */
  mki?: { value: bigint; length: number };
}

/** A parsed `a=crypto` attribute whose suite and parameters hookswitch supports. */
export interface SdesCrypto {
  /** Identifies the attribute within its m-line; the answer repeats the accepted one (§5.1.2). */
  tag: number;
  suite: SrtpSuiteName;
  /** At least one; several only with MKIs of one length (§6.1). */
  keys: SdesKey[];
  /** WSH (§6.3.6): the sender's hint for the receiver's replay window; only a hint. */
  windowSizeHint?: number;
  /** FEC_ORDER (§6.3.4), kept to repeat it; hookswitch sends no FEC. */
  fecOrder?: 'FEC_SRTP' | 'SRTP_FEC';
}

/** A parse outcome: the attribute, or why it is invalid or unsupported (for a log line). */
export type SdesParseResult = { ok: true; crypto: SdesCrypto } | { ok: false; reason: string };

/** Longest MKI field (RFC 4568 §6.1: "If the MKI length is not given or its value exceeds 128 (bytes) ... invalid"). */
const MAX_MKI_LENGTH = 128;
/** Largest lifetime any supported suite allows: 2^48 SRTP packets (RFC 4568 §6.2). */
const MAX_LIFETIME_EXPONENT = 48;
/** Smallest WSH (RFC 4568 §9.2 "minimum value is 64"). */
const MIN_WSH = 64;

const WSP = /[ \t]+/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Parses an `a=crypto` value (RFC 4568 §9.1, §9.2); a leading `a=crypto:` or `crypto:` is
 * allowed. Invalid attributes (§6.1: wrong key length, bad lifetime or MKI) and valid ones that
 * hookswitch cannot honour (another suite or key method, KDR, UNENCRYPTED_*,
 * UNAUTHENTICATED_SRTP, FEC_KEY, an unknown mandatory parameter: §6.3.7 "If an SDP crypto
 * attribute is received with an unknown session parameter that is not prefixed with a '-'
 * character, that crypto attribute MUST be considered invalid") come back as `ok: false` with a
 * reason that never contains key material.
 */
export function parseSdesCrypto(value: string): SdesParseResult {
  const text = value.trim().replace(/^(a=)?crypto:/, '');
  const fields = text.split(WSP);
  if (fields.length < 3) return bad(`"${redactSdesKeys(text)}" lacks a tag, crypto-suite or key parameter`);
  const [tagText, suiteText, keyParams, ...sessionParams] = fields as [string, string, string, ...string[]];
  if (!/^[0-9]{1,9}$/.test(tagText) || !DECIMAL.test(tagText)) return bad(`tag "${tagText}" is not 1-9 digits without leading zeros`);
  const tag = Number(tagText);
  const suite = srtpSuite(suiteText);
  if (!suite) return bad(`crypto-suite ${suiteText} is not supported (only ${Object.keys(SRTP_SUITES).join(', ')})`, tag);
  const keys: SdesKey[] = [];
  for (const param of keyParams.split(';')) {
    const key = parseKeyParam(param, suite.masterKeyLength + suite.masterSaltLength, suite.masterKeyLength);
    if (typeof key === 'string') return bad(key, tag);
    keys.push(key);
  }
  if (keys.length > 1) {
    // RFC 4568 §6.1: "all the master keys in that key parameter MUST include an MKI value" of one length.
    const lengths = new Set(keys.map((k) => k.mki?.length));
    if (lengths.has(undefined) || lengths.size !== 1) return bad('several keys without MKIs of one length', tag);
  }
  const crypto: SdesCrypto = { tag, suite: suite.name, keys };
  for (const param of sessionParams) {
    const problem = applySessionParam(crypto, param);
    if (problem) return bad(problem, tag);
  }
  return { ok: true, crypto };
}

/** Formats `c` as the value of an `a=crypto` attribute (without `a=crypto:`); parses back equal. */
export function formatSdesCrypto(c: SdesCrypto): string {
  const keys = c.keys.map((k) => {
    let s = `inline:${Buffer.concat([k.masterKey, k.masterSalt]).toString('base64')}`;
    if (k.lifetime !== undefined) s += `|${formatLifetime(k.lifetime)}`;
    if (k.mki) s += `|${k.mki.value}:${k.mki.length}`;
    return s;
  });
  let out = `${c.tag} ${c.suite} ${keys.join(';')}`;
  if (c.fecOrder) out += ` FEC_ORDER=${c.fecOrder}`;
  if (c.windowSizeHint !== undefined) out += ` WSH=${c.windowSizeHint}`;
  return out;
}

/**
 * A fresh attribute with one random master key and salt from `random` (RFC 4568 §6.1: "Each
 * master key and salt MUST be a cryptographically random number"; pass a SystemRandom outside
 * tests), no lifetime and no MKI.
 */
export function generateSdesCrypto(random: Random, tag = 1, suite: SrtpSuiteName = 'AES_CM_128_HMAC_SHA1_80'): SdesCrypto {
  const s = SRTP_SUITES[suite];
  const bytes = random.bytes(s.masterKeyLength + s.masterSaltLength);
  return {
    tag,
    suite,
    keys: [{ masterKey: Buffer.from(bytes.subarray(0, s.masterKeyLength)), masterSalt: Buffer.from(bytes.subarray(s.masterKeyLength)) }],
  };
}

/** Offer attributes for every supported suite, strongest first (RFC 4568 §5.1.1), each with its own key. */
export function generateSdesOffer(random: Random): SdesCrypto[] {
  return (Object.keys(SRTP_SUITES) as SrtpSuiteName[]).map((suite, i) => generateSdesCrypto(random, i + 1, suite));
}

/** The outcome of {@link answerSdesOffer}. */
export type SdesAnswer =
  | { ok: true; remote: SdesCrypto; local: SdesCrypto }
  | { ok: false; reasons: string[] };

/**
 * Chooses among the `a=crypto` values of one offered m-line (RFC 4568 §5.1.2, §7.1.2): the first
 * valid attribute hookswitch supports that has a single key ("the answerer SHOULD select the most
 * preferred crypto attribute it can support"), answered with the same tag and suite and a fresh
 * key ("the master key(s) included in the answer MUST be different from those in the offer").
 * `remote` keys the packets received, `local` the packets sent. `ok: false` means the stream must
 * be rejected ("it MUST reject the media stream"), with one reason per attribute.
 */
export function answerSdesOffer(offered: readonly string[], random: Random): SdesAnswer {
  const reasons: string[] = [];
  for (const value of offered) {
    const parsed = parseSdesCrypto(value);
    if (!parsed.ok) {
      reasons.push(parsed.reason);
    } else if (parsed.crypto.keys.length !== 1) {
      reasons.push(`tag ${parsed.crypto.tag}: several master keys (MKI re-keying) are not supported`);
    } else {
      const local = generateSdesCrypto(random, parsed.crypto.tag, parsed.crypto.suite);
      return { ok: true, remote: parsed.crypto, local };
    }
  }
  if (reasons.length === 0) reasons.push('no a=crypto attribute');
  return { ok: false, reasons };
}

/**
 * `text` with every `inline:` key replaced by `inline:<redacted>` (lifetime and MKI kept), for
 * SDP bodies and attribute values on their way to logs or traces: keys never appear there.
 */
export function redactSdesKeys(text: string): string {
  return text.replace(/(inline:)[^|;\s]+/gi, '$1<redacted>');
}

function bad(reason: string, tag?: number): SdesParseResult {
  return { ok: false, reason: tag === undefined ? reason : `tag ${tag}: ${reason}` };
}

/** One `inline:` key (RFC 4568 §6.1, §9.2 srtp-key-info), or why it is invalid. */
function parseKeyParam(param: string, keySaltLength: number, keyLength: number): SdesKey | string {
  const colon = param.indexOf(':');
  if (colon < 0) return 'key parameter is not method:key-info';
  const method = param.slice(0, colon);
  if (method.toLowerCase() !== 'inline') return `key method "${method}" is not supported (only inline)`;
  const [keySalt = '', ...rest] = param.slice(colon + 1).split('|');
  if (!BASE64.test(keySalt)) return 'key||salt is not base64';
  const bytes = Buffer.from(keySalt, 'base64');
  if (bytes.length !== keySaltLength) {
    // RFC 4568 §6.1: "If the length (after being decoded from base64) does not match that
    // specified for the crypto-suite, the crypto attribute in question MUST be considered invalid."
    return `key||salt is ${bytes.length} octets, the suite needs ${keySaltLength}`;
  }
  const key: SdesKey = { masterKey: Buffer.from(bytes.subarray(0, keyLength)), masterSalt: Buffer.from(bytes.subarray(keyLength)) };
  if (rest.length > 2) return 'key parameter has more than lifetime and MKI after the key';
  for (const [i, field] of rest.entries()) {
    if (field.includes(':')) {
      // "the lifetime field never includes a colon, whereas the third field always does"
      const mki = parseMki(field);
      if (typeof mki === 'string') return mki;
      key.mki = mki;
    } else {
      if (i !== 0 || key.mki) return 'lifetime must come before the MKI';
      const lifetime = parseLifetime(field);
      if (typeof lifetime === 'string') return lifetime;
      key.lifetime = lifetime;
    }
  }
  return key;
}

/** RFC 4568 §6.1 lifetime: a positive decimal or `2^n` without leading zeros, at most the suite's 2^48. */
function parseLifetime(field: string): number | string {
  const power = field.startsWith('2^');
  const digits = power ? field.slice(2) : field;
  if (!DECIMAL.test(digits)) return `lifetime "${field}" is not a decimal or 2^n without leading zeros`;
  const n = Number(digits);
  const value = power ? 2 ** n : n;
  if (power ? n > MAX_LIFETIME_EXPONENT : digits.length > 15 || n > 2 ** MAX_LIFETIME_EXPONENT) {
    return `lifetime ${field} exceeds the suite's 2^${MAX_LIFETIME_EXPONENT} packets`;
  }
  if (value < 1) return 'lifetime 0 is not a positive packet count';
  return value;
}

/** RFC 4568 §6.1 / §9.2 `MKI:length`: decimal value without leading zeros, length 1..128, value fits. */
function parseMki(field: string): { value: bigint; length: number } | string {
  const [valueText = '', lengthText = ''] = field.split(':');
  if (!DECIMAL.test(valueText) || !DECIMAL.test(lengthText) || lengthText.length > 3) {
    return `MKI "${field}" is not value:length in decimal without leading zeros`;
  }
  const length = Number(lengthText);
  if (length < 1 || length > MAX_MKI_LENGTH) return `MKI length ${length} is outside 1..${MAX_MKI_LENGTH}`;
  const value = BigInt(valueText);
  if (value >= 1n << BigInt(8 * length)) return `MKI ${valueText} does not fit in ${length} octets`;
  return { value, length };
}

/** Big-endian octets of an MKI as SRTP packets carry it (RFC 4568 §6.1). */
export function mkiBytes(mki: { value: bigint; length: number }): Buffer {
  const out = Buffer.alloc(mki.length);
  let v = mki.value;
  for (let i = mki.length - 1; i >= 0 && v > 0n; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Applies one SRTP session parameter (RFC 4568 §6.3), or says why the attribute cannot be used. */
function applySessionParam(c: SdesCrypto, param: string): string | undefined {
  const eq = param.indexOf('=');
  const name = (eq < 0 ? param : param.slice(0, eq)).toUpperCase();
  const value = eq < 0 ? '' : param.slice(eq + 1);
  switch (name) {
    case 'KDR':
      return `KDR=${value} (key re-derivation every 2^n packets) is not supported`;
    case 'UNENCRYPTED_SRTP':
    case 'UNENCRYPTED_SRTCP':
    case 'UNAUTHENTICATED_SRTP':
      return `${name} is refused: hookswitch only encrypts and authenticates all media`;
    case 'FEC_KEY':
      return 'FEC_KEY (a separate FEC stream) is not supported';
    case 'FEC_ORDER': {
      const order = value.toUpperCase();
      if (order !== 'FEC_SRTP' && order !== 'SRTP_FEC') return `FEC_ORDER=${value} is neither FEC_SRTP nor SRTP_FEC`;
      c.fecOrder = order;
      return undefined;
    }
    case 'WSH': {
      if (!DECIMAL.test(value) || Number(value) < MIN_WSH) return `WSH=${value} is not a decimal of at least ${MIN_WSH}`;
      c.windowSizeHint = Number(value);
      return undefined;
    }
    default:
      // RFC 4568 §6.3.7: "prefixed with the dash character ('-') ... is considered optional and MAY be ignored".
      return param.startsWith('-') ? undefined : `unknown mandatory session parameter ${param}`;
  }
}

/** `2^n` for powers of two (as RFC 4568 examples write them), else the decimal. */
function formatLifetime(n: number): string {
  const e = Math.log2(n);
  return Number.isInteger(e) ? `2^${e}` : String(n);
}
