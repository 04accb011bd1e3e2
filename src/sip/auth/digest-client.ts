/**
 * The Digest answerer of a UAC (RFC 3261 §22.2–22.3, RFC 7616 §3.4, RFC 8760 §2.4): turns the
 * WWW-Authenticate / Proxy-Authenticate values of a 401/407 into an Authorization /
 * Proxy-Authorization value. Pure: the cnonce comes from the injected Random.
 */
import type { Random } from '../../runtime/random.ts';
import { byteString } from '../message/headers.ts';
import type { AuthValue } from '../message/types.ts';
import { parseAuthValues, serializeAuthValue } from './auth-header.ts';
import {
  algorithmStrength,
  computeDigestResponse,
  computeHa1,
  computeUserhash,
  isSessionAlgorithm,
  parseDigestAlgorithm,
  type DigestAlgorithm,
  type DigestQop,
} from './digest.ts';

/** Construction options of {@link DigestClient}. */
export interface DigestClientOptions {
  /** Username as UTF-8 text. */
  username: string;
  /** Password as UTF-8 text. */
  password: string;
  random: Random;
}

/** Input of {@link DigestClient.authorize}. */
export interface AuthorizeInput {
  /** Every WWW-Authenticate (or every Proxy-Authenticate) value of the 401 (407), in order. */
  challenges: readonly string[];
  /** Method of the request being retried. */
  method: string;
  /** The digest-uri: the Request-URI of the retried request, as it will be sent. */
  uri: string;
  /** Body of the retried request, for qop=auth-int. */
  body?: string | Buffer;
}

/** A challenge this client can answer. */
interface Candidate {
  params: Map<string, string>;
  realm: string;
  nonce: string;
  algorithm: DigestAlgorithm;
  qop: DigestQop | undefined;
}

/** How many nonces' counts are remembered; older ones restart at 1 if ever seen again. */
const MAX_NONCES = 32;

/**
 * Answers Digest challenges with one set of credentials. Keeps the nonce-count per nonce so
 * that a nonce reused for later requests (RFC 7616 §3.4) gets nc 2, 3, ...
 */
export class DigestClient {
  private readonly username: string;
  private readonly password: string;
  private readonly random: Random;
  private readonly counts = new Map<string, number>();

  constructor(options: DigestClientOptions) {
    this.username = byteString(options.username);
    this.password = byteString(options.password);
    this.random = options.random;
  }

  /**
   * The credentials value for the retried request, or undefined when no challenge can be
   * answered (no Digest challenge, unknown algorithms only, a qop other than auth/auth-int,
   * missing realm or nonce). Non-Digest schemes and unparsable values are skipped.
   *
   * Choice: the realm of the first answerable challenge, then the strongest algorithm offered
   * for that realm (SHA-512-256 > SHA-256 > MD5; between equals, the topmost, as servers list
   * their preferred challenge first, RFC 8760 §2.4).
   * A challenge with `stale=true` (RFC 7616 §3.3) is answered like any other: the new nonce
   * starts at nc 1. The caller must not retry again after a 401/407 to credentials it sent
   * unless that new challenge is stale (see {@link challengeIsStale}).
   */
  authorize(input: AuthorizeInput): string | undefined {
    const candidates = collectCandidates(input.challenges);
    const first = candidates[0];
    if (!first) return undefined;
    let best = first;
    for (const c of candidates) {
      if (c.realm === first.realm && algorithmStrength(c.algorithm) > algorithmStrength(best.algorithm)) best = c;
    }
    return this.answer(best, input);
  }

  private answer(c: Candidate, input: AuthorizeInput): string {
    const nc = this.nextCount(c.nonce);
    const ncText = nc.toString(16).padStart(8, '0');
    const cnonce = c.qop !== undefined ? this.random.bytes(8).toString('hex') : undefined;
    const ha1 = computeHa1(c.algorithm, this.username, c.realm, this.password);
    const response = computeDigestResponse({
      algorithm: c.algorithm,
      ha1,
      nonce: c.nonce,
      method: input.method,
      uri: input.uri,
      qop: c.qop,
      nc: ncText,
      cnonce,
      body: input.body,
    });
    const userhash = c.params.get('userhash')?.toLowerCase() === 'true';
    const params = new Map<string, string>([
      ['username', userhash ? computeUserhash(c.algorithm, this.username, c.realm) : this.username],
      ['realm', c.realm],
      ['nonce', c.nonce],
      ['uri', input.uri],
      ['response', response],
      ['algorithm', c.algorithm],
    ]);
    const opaque = c.params.get('opaque');
    if (opaque !== undefined) params.set('opaque', opaque);
    if (c.qop !== undefined) {
      params.set('qop', c.qop);
      params.set('nc', ncText);
      params.set('cnonce', cnonce!);
    }
    if (userhash) params.set('userhash', 'true');
    return serializeAuthValue({ scheme: 'Digest', params }, 'credentials');
  }

  private nextCount(nonce: string): number {
    const next = (this.counts.get(nonce) ?? 0) + 1;
    this.counts.delete(nonce);
    this.counts.set(nonce, next);
    if (this.counts.size > MAX_NONCES) this.counts.delete(this.counts.keys().next().value!);
    return next;
  }
}

/** Whether any Digest challenge among `challenges` carries `stale=true` (RFC 7616 §3.3). */
export function challengeIsStale(challenges: readonly string[]): boolean {
  for (const value of challenges) {
    for (const ch of safeParse(value)) {
      if (ch.scheme.toLowerCase() === 'digest' && ch.params.get('stale')?.toLowerCase() === 'true') return true;
    }
  }
  return false;
}

function safeParse(value: string): AuthValue[] {
  try {
    return parseAuthValues(value);
  } catch {
    return [];
  }
}

function collectCandidates(values: readonly string[]): Candidate[] {
  const out: Candidate[] = [];
  for (const value of values) {
    for (const ch of safeParse(value)) {
      if (ch.scheme.toLowerCase() !== 'digest') continue;
      const realm = ch.params.get('realm');
      const nonce = ch.params.get('nonce');
      // RFC 7616 §3.3: "If the algorithm is not understood, the challenge should be ignored".
      const algorithm = parseDigestAlgorithm(ch.params.get('algorithm'));
      if (realm === undefined || nonce === undefined || algorithm === undefined) continue;
      const qop = chooseQop(ch.params.get('qop'));
      if (qop === null) continue;
      // A -sess HA1 needs a cnonce, which is only sent with a qop.
      if (isSessionAlgorithm(algorithm) && qop === undefined) continue;
      out.push({ params: ch.params, realm, nonce, algorithm, qop });
    }
  }
  return out;
}

/** auth if offered, else auth-int; undefined for no qop; null when only unknown qops are offered. */
function chooseQop(options: string | undefined): DigestQop | undefined | null {
  if (options === undefined) return undefined;
  const offered = options.split(',').map((q) => q.replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase());
  if (offered.includes('auth')) return 'auth';
  if (offered.includes('auth-int')) return 'auth-int';
  return null;
}
