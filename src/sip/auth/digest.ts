/**
 * Digest computations (RFC 2617 §3.2.2, RFC 7616 §3.4, RFC 8760 §2, RFC 3261 §22.4): the
 * algorithms, HA1, HA2 and the request-digest, with and without qop, `-sess` variants included.
 *
 * Every string argument is a byte string (latin1-decoded octets, as header values are; see
 * `../message/headers.ts`), so a UTF-8 username hashes as its UTF-8 octets. Convert text from
 * configuration with `byteString` first.
 */
import * as crypto from 'node:crypto';
import { createHash, timingSafeEqual } from 'node:crypto';

/** The Digest algorithms of RFC 7616 §3.3 / RFC 8760 §2.2. */
export type DigestAlgorithm =
  | 'MD5'
  | 'MD5-sess'
  | 'SHA-256'
  | 'SHA-256-sess'
  | 'SHA-512-256'
  | 'SHA-512-256-sess';

export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = [
  'MD5',
  'MD5-sess',
  'SHA-256',
  'SHA-256-sess',
  'SHA-512-256',
  'SHA-512-256-sess',
];

const NODE_HASH: Readonly<Record<string, string>> = {
  MD5: 'md5',
  'SHA-256': 'sha256',
  'SHA-512-256': 'sha512-256',
};

/** Strength rank for choosing among offered challenges: higher is stronger. */
const STRENGTH: Readonly<Record<string, number>> = { MD5: 1, 'SHA-256': 2, 'SHA-512-256': 3 };

/** The `qop` values Digest defines (RFC 7616 §3.3). */
export type DigestQop = 'auth' | 'auth-int';

/**
 * The algorithm named by an `algorithm` parameter, matched case-insensitively; an absent
 * parameter means MD5 (RFC 7616 §3.3: "If this is not present, it is assumed to be 'MD5'").
 * Unknown names (AKAv1-MD5, tokens of future RFCs) give undefined.
 */
export function parseDigestAlgorithm(name: string | undefined): DigestAlgorithm | undefined {
  if (name === undefined) return 'MD5';
  const upper = name.toUpperCase();
  return DIGEST_ALGORITHMS.find((a) => a.toUpperCase() === upper);
}

/** The algorithm without its `-sess` suffix (the hash function used). */
export function baseAlgorithm(algorithm: DigestAlgorithm): 'MD5' | 'SHA-256' | 'SHA-512-256' {
  return BASE_ALGORITHM[algorithm];
}

const BASE_ALGORITHM: Readonly<Record<DigestAlgorithm, 'MD5' | 'SHA-256' | 'SHA-512-256'>> = {
  MD5: 'MD5',
  'MD5-sess': 'MD5',
  'SHA-256': 'SHA-256',
  'SHA-256-sess': 'SHA-256',
  'SHA-512-256': 'SHA-512-256',
  'SHA-512-256-sess': 'SHA-512-256',
};

/** Whether HA1 is the session form H(H(A1-base):nonce:cnonce) (RFC 7616 §3.4.2). */
export function isSessionAlgorithm(algorithm: DigestAlgorithm): boolean {
  return algorithm.endsWith('-sess');
}

/** Higher for stronger hash functions: SHA-512-256 > SHA-256 > MD5. */
export function algorithmStrength(algorithm: DigestAlgorithm): number {
  return STRENGTH[baseAlgorithm(algorithm)]!;
}

/** Length in hex characters of a digest by this algorithm (32 for MD5, 64 otherwise). */
export function digestHexLength(algorithm: DigestAlgorithm): number {
  return baseAlgorithm(algorithm) === 'MD5' ? 32 : 64;
}

/**
 * `crypto.hash` (Node 20.12+): a one-shot hash without a Hash object, about 3x faster than
 * createHash/update/digest for the short inputs of Digest. Older Node versions fall back.
 */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string | Buffer, encoding: 'hex') => string }).hash;

/** True when every code unit is ASCII, so the UTF-8 and latin1 encodings of `s` are the same bytes. */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** H(data) as lower-case hex (RFC 7616 §3.4.1), with the algorithm's hash function. */
export function digestHash(algorithm: DigestAlgorithm, data: string | Buffer): string {
  const name = NODE_HASH[baseAlgorithm(algorithm)]!;
  // Byte strings hash as their latin1 octets; crypto.hash encodes strings as UTF-8, which is
  // the same only for ASCII.
  const bytes = typeof data === 'string' && !isAscii(data) ? Buffer.from(data, 'latin1') : data;
  if (oneShotHash) return oneShotHash(name, bytes, 'hex');
  return createHash(name).update(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes).digest('hex');
}

/** HA1 of the base algorithm: H(username ":" realm ":" password) (RFC 7616 §3.4.2). */
export function computeHa1(algorithm: DigestAlgorithm, username: string, realm: string, password: string): string {
  return digestHash(algorithm, `${username}:${realm}:${password}`);
}

/**
 * The hashed username of RFC 7616 §3.4.4: H(username ":" realm), sent when the challenge has
 * `userhash=true`.
 */
export function computeUserhash(algorithm: DigestAlgorithm, username: string, realm: string): string {
  return digestHash(algorithm, `${username}:${realm}`);
}

/** Inputs of a request-digest (RFC 7616 §3.4.1). */
export interface DigestResponseInput {
  algorithm: DigestAlgorithm;
  /** HA1 of the base algorithm, H(username:realm:password), lower-case hex. */
  ha1: string;
  nonce: string;
  /** The request method; empty for an Authentication-Info `rspauth` (RFC 2617 §3.2.3). */
  method: string;
  /** The `uri` parameter (digest-uri), exactly as sent. */
  uri: string;
  /** qop chosen by the client; undefined for RFC 2069 clients (no qop). */
  qop?: DigestQop;
  /** nonce-count as the 8 hex digits sent (`00000001`); required with qop. */
  nc?: string;
  /** Client nonce; required with qop and with `-sess` algorithms. */
  cnonce?: string;
  /** Message body for qop=auth-int (an empty body when absent). */
  body?: string | Buffer;
}

/** HA1 as used in the response: the base HA1, or its session form for `-sess` algorithms. */
export function effectiveHa1(input: Pick<DigestResponseInput, 'algorithm' | 'ha1' | 'nonce' | 'cnonce'>): string {
  if (!isSessionAlgorithm(input.algorithm)) return input.ha1;
  if (input.cnonce === undefined) throw new TypeError(`${input.algorithm} needs a cnonce`);
  return digestHash(input.algorithm, `${input.ha1}:${input.nonce}:${input.cnonce}`);
}

/**
 * HA2 (RFC 7616 §3.4.3): H(method ":" uri) for qop=auth or no qop, and
 * H(method ":" uri ":" H(body)) for qop=auth-int.
 */
export function computeHa2(algorithm: DigestAlgorithm, method: string, uri: string, qop?: DigestQop, body?: string | Buffer): string {
  if (qop === 'auth-int') return digestHash(algorithm, `${method}:${uri}:${digestHash(algorithm, body ?? '')}`);
  return digestHash(algorithm, `${method}:${uri}`);
}

/**
 * The request-digest (the `response` parameter), lower-case hex.
 * With qop: H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2) (RFC 7616 §3.4.1);
 * without: H(HA1 ":" nonce ":" HA2) (RFC 2617 §3.2.2.1, the RFC 2069 form).
 * Throws TypeError when qop is given without nc and cnonce (a programming error).
 */
export function computeDigestResponse(input: DigestResponseInput): string {
  const ha1 = effectiveHa1(input);
  const ha2 = computeHa2(input.algorithm, input.method, input.uri, input.qop, input.body);
  if (input.qop === undefined) return digestHash(input.algorithm, `${ha1}:${input.nonce}:${ha2}`);
  if (input.nc === undefined || input.cnonce === undefined) throw new TypeError('qop needs nc and cnonce');
  return digestHash(input.algorithm, `${ha1}:${input.nonce}:${input.nc}:${input.cnonce}:${input.qop}:${ha2}`);
}

/** Compares two strings in time independent of where they differ (lengths may leak). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'latin1');
  const bb = Buffer.from(b, 'latin1');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}
