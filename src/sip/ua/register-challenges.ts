/**
 * The Digest challenges a trunk registration answers (RFC 3261 §22.2, RFC 7616): remembers the
 * latest 401/407 challenge of each kind, answers it pre-emptively on later REGISTERs (RFC 7616
 * §3.4 nonce reuse), and decides whether a new challenge within one attempt may be answered.
 * Pure: the injected {@link DigestClient} computes the credentials.
 */
import { challengeIsStale, type DigestClient } from '../auth/digest-client.ts';
import type { SipResponse } from '../message/message.ts';

/** `www`: 401 with WWW-Authenticate; `proxy`: 407 with Proxy-Authenticate. */
export type ChallengeKind = 'www' | 'proxy';

const CHALLENGE: Record<ChallengeKind, { status: number; challenge: string; credentials: string }> = {
  www: { status: 401, challenge: 'WWW-Authenticate', credentials: 'Authorization' },
  proxy: { status: 407, challenge: 'Proxy-Authenticate', credentials: 'Proxy-Authorization' },
};

/** Consecutive `stale=true` challenges answered in one attempt before giving up (a looping server). */
const MAX_STALE_RETRIES = 2;

/** The challenge kind a final response carries: 401 `www`, 407 `proxy`, otherwise none. */
export function challengeKindOf(status: number): ChallengeKind | undefined {
  return status === 401 ? 'www' : status === 407 ? 'proxy' : undefined;
}

/**
 * The challenge state of one registration. The client calls {@link newAttempt} when an attempt
 * starts, {@link accept} on each 401/407 and {@link credentials} for each REGISTER it sends.
 */
export class RegisterChallenges {
  /** Latest challenges per kind. */
  private readonly challenges: Partial<Record<ChallengeKind, string[]>> = {};
  /** Challenges answered during the current attempt: one per kind, more only when stale. */
  private answered: Record<ChallengeKind, number> = { www: 0, proxy: 0 };

  constructor(
    private readonly digest: DigestClient,
    private readonly requestUri: string,
  ) {}

  /** A new attempt (initial, refresh, retry or un-registration): one challenge of each kind may be answered. */
  newAttempt(): void {
    this.answered = { www: 0, proxy: 0 };
  }

  /**
   * Records the challenge of `res` and returns true when it may be answered. §22.2: on 401/407
   * the UAC "MAY re-originate the request with the proper credentials". After credentials this
   * attempt already answered were refused, the same credentials would be refused again: only a
   * `stale=true` challenge (RFC 7616 §3.3: the credentials were right, the nonce expired) is
   * answered once more. Returns false (recording nothing) otherwise.
   */
  accept(res: SipResponse, kind: ChallengeKind): boolean {
    const challenges = res.headers.getAll(CHALLENGE[kind].challenge);
    const stale = challengeIsStale(challenges);
    if (this.answered[kind] > 0 && !(stale && this.answered[kind] <= MAX_STALE_RETRIES)) return false;
    this.challenges[kind] = challenges;
    this.answered[kind]++;
    return true;
  }

  /**
   * The credential headers (Proxy-Authorization, then Authorization) for every challenge
   * remembered. `answering` names the challenge just received: when that one cannot be
   * answered, it is forgotten and the result is undefined (the attempt fails).
   */
  credentials(answering?: ChallengeKind): [string, string][] | undefined {
    const out: [string, string][] = [];
    for (const kind of ['proxy', 'www'] as const) {
      const challenges = this.challenges[kind];
      if (!challenges) continue;
      const value = this.digest.authorize({ challenges, method: 'REGISTER', uri: this.requestUri });
      if (value !== undefined) out.push([CHALLENGE[kind].credentials, value]);
      else if (answering === kind) {
        delete this.challenges[kind];
        return undefined;
      }
    }
    return out;
  }
}
