/**
 * The Digest challenger of a registrar or UAS (RFC 3261 §22.1–22.4, RFC 7616, RFC 8760):
 * issues WWW-/Proxy-Authenticate values with stateless nonces and verifies the Authorization
 * values that answer them. Pure: time comes from the injected Clock, salt from a Random.
 *
 * Nonce = base64url(timestamp(8, ms since epoch, big-endian) || salt(8) ||
 * HMAC-SHA256(secret, timestamp || salt || realm)). No per-challenge state is kept; the only
 * state is a bounded map of the highest nonce-count seen per nonce, for replay protection.
 */
import * as crypto from 'node:crypto';
import { createHmac } from 'node:crypto';
import type { Clock } from '../../runtime/clock.ts';
import type { Random } from '../../runtime/random.ts';
import { byteString, trimWs, utf8Value } from '../message/headers.ts';
import type { AuthValue } from '../message/types.ts';
import { parseAuthValue, serializeAuthValue } from './auth-header.ts';
import {
  computeDigestResponse,
  computeHa1,
  computeUserhash,
  constantTimeEqual,
  digestHexLength,
  isSessionAlgorithm,
  parseDigestAlgorithm,
  type DigestAlgorithm,
  type DigestQop,
} from './digest.ts';

/** Construction options of {@link DigestServer}. */
export interface DigestServerOptions {
  /** The protection realm sent in challenges; answers for another realm are refused. */
  realm: string;
  /** HMAC key for nonces and opaque; at least 16 random bytes, kept across restarts if possible. */
  secret: Buffer;
  clock: Clock;
  /** Salt source for nonces; without one, nonces issued in the same millisecond are equal. */
  random?: Random;
  /** How long a nonce is accepted, in milliseconds (default 300 000). */
  nonceTtlMs?: number;
  /**
   * Algorithms offered, one challenge each, in this order (default `['SHA-256', 'MD5']`).
   * Clients that answer the first challenge they see (SIPp) need the one they support first:
   * SIPp 3.6 only computes MD5, so a gateway tested with it lists `MD5` first. Answers with an
   * algorithm not listed are refused.
   */
  algorithms?: readonly DigestAlgorithm[];
  /** Offer `userhash=true` (RFC 7616 §3.4.4); verification then needs `lookupUserhash`. */
  userhash?: boolean;
  /** Most nonces whose nonce-count is remembered (default 10 000); the oldest are evicted. */
  maxTrackedNonces?: number;
}

/** What {@link CredentialLookup} returns: the password (UTF-8 text) or the base-algorithm HA1. */
export type Credentials = { password: string } | { ha1: string };

/**
 * Finds a user's secret. `username` is UTF-8 text; `algorithm` tells which HA1 is wanted
 * (H(username:realm:password) with that algorithm's hash function, lower-case hex).
 */
export type CredentialLookup = (username: string, realm: string, algorithm: DigestAlgorithm) => Credentials | undefined;

/** Input of {@link DigestServer.verify}. */
export interface VerifyInput {
  /** Method of the request being authorized (REGISTER, INVITE, ...). */
  method: string;
  /** The Authorization / Proxy-Authorization value; undefined when the request had none. */
  authorization: string | undefined;
  lookup: CredentialLookup;
  /** Resolves a hashed username (RFC 7616 §3.4.4) to the username, for `userhash=true`. */
  lookupUserhash?: (userhash: string, realm: string, algorithm: DigestAlgorithm) => string | undefined;
  /** Body of the request, for qop=auth-int. */
  body?: string | Buffer;
}

/** Why verification failed. The same challenge is sent for all of them (no user enumeration). */
export type VerifyFailure =
  | 'missing'
  | 'malformed'
  | 'unknown-user'
  | 'bad-response'
  | 'stale'
  | 'replay'
  | 'bad-nonce'
  | 'realm-mismatch'
  | 'algorithm';

/**
 * Result of {@link DigestServer.verify}. On success `uri` is the digest-uri the response covers:
 * the caller should check it designates the Request-URI (RFC 7616 §3.4.6). On failure, `stale`
 * set means: re-challenge with `challenge({ stale: true })`, the credentials were right.
 */
export type VerifyResult =
  | { ok: true; username: string; uri: string; algorithm: DigestAlgorithm; qop?: DigestQop }
  | { ok: false; reason: VerifyFailure; stale?: boolean };

const NONCE_RAW_LENGTH = 8 + 8 + 32;
/** Accept nonces stamped up to this far in the future (wall clocks step). */
const FUTURE_SKEW_MS = 5_000;
const NC_PATTERN = /^[0-9a-fA-F]{8}$/;

interface NonceUse {
  nc: number;
  issuedAt: number;
}

/** A dummy HA1 hashed when the user is unknown, so that both failures cost the same work. */
const DUMMY_HA1 = '0'.repeat(64);

/** The `response` parameter must be hex of the algorithm's digest length (32 or 64 digits). */
const HEX_32 = /^[0-9a-fA-F]{32}$/;
const HEX_64 = /^[0-9a-fA-F]{64}$/;

/** Nonce salts are cut from one draw of this many random bytes (one draw per 128 nonces). */
const SALT_POOL_BYTES = 8 * 128;

/** `crypto.hash` (Node 20.12+), a one-shot hash; without it the nonce MAC uses createHmac. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer }).hash;

/**
 * HMAC-SHA256 (RFC 2104) of `head || "|" || realm` under a fixed key, computed as two one-shot
 * SHA-256 hashes over preallocated buffers: H((K ^ opad) || H((K ^ ipad) || message)). Same
 * output as createHmac('sha256', key), at about two thirds of the cost (no Hmac object per
 * nonce). Not re-entrant, which a synchronous call never needs.
 */
class NonceMac {
  private readonly inner: Buffer;
  private readonly outer: Buffer;

  constructor(
    key: Buffer,
    tail: Buffer,
    private readonly hash: (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer,
  ) {
    // RFC 2104 §2: a key longer than the block (64 bytes for SHA-256) is hashed first.
    const k = key.length > 64 ? hash('sha256', key, 'buffer') : key;
    this.inner = Buffer.alloc(64 + 16 + tail.length, 0x36);
    this.outer = Buffer.alloc(64 + 32, 0x5c);
    for (let i = 0; i < k.length; i++) {
      this.inner[i]! ^= k[i]!;
      this.outer[i]! ^= k[i]!;
    }
    tail.copy(this.inner, 64 + 16);
  }

  /** The MAC of a 16-byte nonce head. */
  of(head: Buffer): Buffer {
    head.copy(this.inner, 64, 0, 16);
    this.hash('sha256', this.inner, 'buffer').copy(this.outer, 64);
    return this.hash('sha256', this.outer, 'buffer');
  }
}

/**
 * Issues Digest challenges and verifies answers. Callers send `challenge()` values in a 401
 * (WWW-Authenticate) or 407 (Proxy-Authenticate) and call `verify()` on the retried request.
 */
export class DigestServer {
  /** The realm as configured (UTF-8 text). */
  readonly realm: string;
  readonly algorithms: readonly DigestAlgorithm[];
  private readonly secret: Buffer;
  private readonly clock: Clock;
  private readonly random: Random | undefined;
  private readonly ttl: number;
  private readonly userhash: boolean;
  private readonly maxTracked: number;
  private readonly opaque: string;
  /** The realm as a byte string, as it appears in header values. */
  private readonly wireRealm: string;
  /** nonce → highest nonce-count seen; Map keeps insertion order, oldest first. */
  private readonly used = new Map<string, NonceUse>();
  /** Nonces issued at or before this time and not in `used` have lost their replay record. */
  private evictedUpTo = -Infinity;
  /** The fast nonce MAC, when the one-shot hash exists. */
  private readonly mac: NonceMac | undefined;
  /** Random bytes not yet used as nonce salt, and the read position in them. */
  private saltPool: Buffer | undefined;
  private saltOffset = 0;
  /**
   * Each challenge value split around its nonce, per algorithm, for plain and `stale`
   * challenges: the serialised form differs only in the nonce, so it is built once.
   */
  private readonly templates = new Map<string, [string, string] | null>();

  constructor(options: DigestServerOptions) {
    if (options.secret.length < 16) throw new RangeError('DigestServer secret must be at least 16 bytes');
    const algorithms = options.algorithms ?? ['SHA-256', 'MD5'];
    if (algorithms.length === 0) throw new RangeError('DigestServer needs at least one algorithm');
    this.realm = options.realm;
    this.wireRealm = byteString(options.realm);
    this.algorithms = [...algorithms];
    this.secret = options.secret;
    this.clock = options.clock;
    this.random = options.random;
    this.ttl = options.nonceTtlMs ?? 300_000;
    this.userhash = options.userhash ?? false;
    this.maxTracked = options.maxTrackedNonces ?? 10_000;
    this.opaque = createHmac('sha256', this.secret).update('opaque|').update(this.wireRealm, 'latin1').digest().subarray(0, 16).toString('base64url');
    if (oneShotHash) this.mac = new NonceMac(this.secret, Buffer.from(`|${this.wireRealm}`, 'latin1'), oneShotHash);
  }

  /**
   * Challenge values, one per configured algorithm in configured order, sharing one fresh nonce
   * (RFC 8760 §2.4: one WWW-Authenticate per algorithm, most preferred first). `stale` marks a
   * re-challenge after an expired nonce (RFC 7616 §3.3) so clients retry without re-prompting.
   */
  challenge(opts: { stale?: boolean } = {}): string[] {
    const nonce = this.issueNonce();
    const stale = opts.stale === true;
    return this.algorithms.map((algorithm) => {
      const template = this.template(algorithm, stale);
      return template ? template[0] + nonce + template[1] : this.serializeChallenge(algorithm, nonce, stale);
    });
  }

  private serializeChallenge(algorithm: DigestAlgorithm, nonce: string, stale: boolean): string {
    const params = new Map<string, string>([
      ['realm', this.wireRealm],
      ['nonce', nonce],
      ['opaque', this.opaque],
      ['algorithm', algorithm],
      ['qop', 'auth'],
    ]);
    if (stale) params.set('stale', 'true');
    if (this.userhash) params.set('userhash', 'true');
    return serializeAuthValue({ scheme: 'Digest', params }, 'challenge');
  }

  /**
   * The challenge serialised around a placeholder nonce of the same length and alphabet as a
   * real one (so quoting is the same), split at it; null when the placeholder is not found
   * exactly once (then every challenge is serialised in full).
   */
  private template(algorithm: DigestAlgorithm, stale: boolean): [string, string] | null {
    const key = `${algorithm}|${stale}`;
    let t = this.templates.get(key);
    if (t === undefined) {
      const placeholder = 'Q'.repeat(Math.ceil((NONCE_RAW_LENGTH * 4) / 3));
      const parts = this.serializeChallenge(algorithm, placeholder, stale).split(placeholder);
      t = parts.length === 2 ? [parts[0]!, parts[1]!] : null;
      this.templates.set(key, t);
    }
    return t;
  }

  /**
   * Verifies an Authorization value against the request method and a fresh nonce of ours.
   * Never throws on bad input. The response is computed over `method` and the header's own
   * `uri` parameter, as RFC 7616 §3.4.1 defines it.
   */
  verify(input: VerifyInput): VerifyResult {
    if (input.authorization === undefined || trimWs(input.authorization) === '') return fail('missing');
    let value: AuthValue;
    try {
      value = parseAuthValue(input.authorization);
    } catch {
      return fail('malformed');
    }
    if (value.scheme.toLowerCase() !== 'digest') return fail('malformed');
    const p = value.params;
    const username = p.get('username');
    const realm = p.get('realm');
    const nonce = p.get('nonce');
    const uri = p.get('uri');
    const response = p.get('response');
    // RFC 7616 §3.4: username, realm, nonce, uri and response are required.
    if (username === undefined || realm === undefined || nonce === undefined || uri === undefined || response === undefined) {
      return fail('malformed');
    }
    const qopParam = p.get('qop');
    let qop: DigestQop | undefined;
    let nc: number | undefined;
    const ncText = p.get('nc');
    const cnonce = p.get('cnonce');
    if (qopParam !== undefined) {
      const q = qopParam.toLowerCase();
      if (q !== 'auth' && q !== 'auth-int') return fail('malformed');
      qop = q;
      // RFC 7616 §3.4: with qop, cnonce and nc MUST be sent.
      if (cnonce === undefined || ncText === undefined || !NC_PATTERN.test(ncText)) return fail('malformed');
      nc = parseInt(ncText, 16);
      if (nc === 0) return fail('malformed');
    }

    const algorithm = parseDigestAlgorithm(p.get('algorithm'));
    if (algorithm === undefined || !this.algorithms.includes(algorithm)) return fail('algorithm');
    if (isSessionAlgorithm(algorithm) && qop === undefined) return fail('malformed');
    if (!(digestHexLength(algorithm) === 32 ? HEX_32 : HEX_64).test(response)) return fail('malformed');
    if (realm !== this.wireRealm) return fail('realm-mismatch');

    const issuedAt = this.checkNonce(nonce);
    if (issuedAt === undefined) return fail('bad-nonce');
    const opaque = p.get('opaque');
    if (opaque !== undefined && !constantTimeEqual(opaque, this.opaque)) return fail('bad-nonce');

    let name = utf8Value(username);
    const userhash = p.get('userhash')?.toLowerCase() === 'true';
    if (userhash) {
      const resolved = input.lookupUserhash?.(username.toLowerCase(), this.realm, algorithm);
      if (resolved === undefined || computeUserhash(algorithm, byteString(resolved), this.wireRealm) !== username.toLowerCase()) {
        this.burn(algorithm, nonce, uri, input.method);
        return fail('unknown-user');
      }
      name = resolved;
    }

    const creds = input.lookup(name, this.realm, algorithm);
    if (creds === undefined) {
      this.burn(algorithm, nonce, uri, input.method);
      return fail('unknown-user');
    }
    const ha1 =
      'ha1' in creds ? creds.ha1.toLowerCase() : computeHa1(algorithm, byteString(name), realm, byteString(creds.password));
    const expected = computeDigestResponse({
      algorithm,
      ha1,
      nonce,
      method: input.method,
      uri,
      qop,
      nc: ncText,
      cnonce,
      body: input.body,
    });
    if (!constantTimeEqual(expected, response.toLowerCase())) return fail('bad-response');

    // RFC 7616 §3.3 stale: "the request from the client was rejected because the nonce value
    // was stale" — only said once the response proves the client knows the password.
    const now = this.clock.wallNow();
    if (now - issuedAt > this.ttl) return { ok: false, reason: 'stale', stale: true };

    // RFC 7616 §3.4: the server checks the nonce-count to detect replays. Without qop
    // (RFC 2069 clients) there is no count: each nonce is accepted once.
    const seen = this.used.get(nonce);
    const count = nc ?? 0;
    if (seen === undefined && issuedAt <= this.evictedUpTo) return { ok: false, reason: 'replay', stale: true };
    if (seen !== undefined && count <= seen.nc) return { ok: false, reason: 'replay', stale: true };
    this.remember(nonce, count, issuedAt, now);
    return qop === undefined ? { ok: true, username: name, uri, algorithm } : { ok: true, username: name, uri, algorithm, qop };
  }

  private issueNonce(): string {
    const raw = Buffer.alloc(NONCE_RAW_LENGTH);
    raw.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(this.clock.wallNow()))), 0);
    if (this.random) {
      if (this.saltPool === undefined || this.saltOffset + 8 > this.saltPool.length) {
        this.saltPool = this.random.bytes(SALT_POOL_BYTES);
        this.saltOffset = 0;
      }
      this.saltPool.copy(raw, 8, this.saltOffset, this.saltOffset + 8);
      this.saltOffset += 8;
    }
    this.nonceMac(raw.subarray(0, 16)).copy(raw, 16);
    return raw.toString('base64url');
  }

  private nonceMac(head: Buffer): Buffer {
    if (this.mac) return this.mac.of(head);
    return createHmac('sha256', this.secret).update(head).update('|').update(this.wireRealm, 'latin1').digest();
  }

  /** The issue time of a nonce of ours, or undefined when it is not one (or from the future). */
  private checkNonce(nonce: string): number | undefined {
    if (!/^[A-Za-z0-9_-]+$/.test(nonce)) return undefined;
    const raw = Buffer.from(nonce, 'base64url');
    if (raw.length !== NONCE_RAW_LENGTH || raw.toString('base64url') !== nonce) return undefined;
    // Both 32 bytes: raw has exactly NONCE_RAW_LENGTH bytes.
    if (!crypto.timingSafeEqual(this.nonceMac(raw.subarray(0, 16)), raw.subarray(16))) return undefined;
    const issuedAt = Number(raw.readBigUInt64BE(0));
    if (issuedAt > this.clock.wallNow() + FUTURE_SKEW_MS) return undefined;
    return issuedAt;
  }

  /** Records the nonce-count, evicting expired entries and then the oldest beyond the bound. */
  private remember(nonce: string, nc: number, issuedAt: number, now: number): void {
    const existing = this.used.get(nonce);
    if (existing) {
      existing.nc = nc;
      return;
    }
    for (const [key, use] of this.used) {
      if (now - use.issuedAt <= this.ttl && this.used.size < this.maxTracked) break;
      this.used.delete(key);
      // An expired nonce fails as stale anyway; an evicted live one must not be replayable.
      if (now - use.issuedAt <= this.ttl) this.evictedUpTo = Math.max(this.evictedUpTo, use.issuedAt);
    }
    this.used.set(nonce, { nc, issuedAt });
  }

  /** Spends the same hashing work as a real check, so unknown users are not told apart by time. */
  private burn(algorithm: DigestAlgorithm, nonce: string, uri: string, method: string): void {
    const ha1 = DUMMY_HA1.slice(0, digestHexLength(algorithm));
    const expected = computeDigestResponse({ algorithm, ha1, nonce, method, uri, qop: 'auth', nc: '00000001', cnonce: '0' });
    constantTimeEqual(expected, ha1);
  }
}

function fail(reason: VerifyFailure): VerifyResult {
  return { ok: false, reason };
}
