/**
 * Session timers (RFC 4028): the negotiation of Session-Expires and Min-SE, and one timer per
 * leg that either triggers our refresh at half the interval (§10: "the refresher SHOULD send
 * the refresh ... at half the session expiration") or, when the peer refreshes, ends the
 * session if no refresh arrives in time (§10: "If ... no session refresh request or response
 * has been received ... the UA SHOULD send a BYE ... before the session expiration minus the
 * minimum of 32 seconds and one third of the session expiration").
 */
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import { parseTokenList } from '../sip/message/header-values.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import { parseSessionExpires } from '../sip/message/value-headers.ts';
import { parseUint } from '../sip/message/header-values.ts';

/** RFC 4028 §4: Min-SE "MUST NOT be less than 90 seconds". */
export const ABSOLUTE_MIN_SE = 90;

/** A negotiated session timer of one leg. */
export interface SessionTimerTerms {
  /** Session interval in seconds. */
  interval: number;
  /** Whether the gateway sends the refreshes on this leg (otherwise it expects them). */
  weRefresh: boolean;
  /** Whether the peer said `Supported: timer` (then our 2xx carries `Require: timer`, §9). */
  peerSupports: boolean;
}

export type UasNegotiation = { ok: true; terms: SessionTimerTerms } | { ok: false; status: 422 | 400; minSE: number };

function supportsTimer(msg: SipRequest | SipResponse): boolean {
  return [...msg.headers.getAll('Supported'), ...msg.headers.getAll('Require')]
    .flatMap(parseTokenList)
    .some((t) => t.toLowerCase() === 'timer');
}

function minSeOf(msg: SipRequest): number | undefined {
  const v = msg.headers.get('Min-SE');
  if (v === undefined) return undefined;
  return parseUint(v.split(';')[0]!.replace(/[ \t]/g, ''), 2 ** 31, 'bad-min-se');
}

/**
 * The UAS side (§9) of a request that starts or refreshes a session, given our preferred
 * interval and minimum. "If the Session-Expires ... is less than the Min-SE ... the UAS MUST
 * reject it with a 422" naming our Min-SE. A refresher the request leaves open is ours.
 */
export function negotiateAsUas(req: SipRequest, preferred: number, minSE: number): UasNegotiation {
  const peerSupports = supportsTimer(req);
  let requested: { seconds: number; refresher?: 'uac' | 'uas' } | undefined;
  let theirMin: number | undefined;
  try {
    const se = req.headers.get('Session-Expires');
    requested = se === undefined ? undefined : parseSessionExpires(se);
    theirMin = minSeOf(req);
  } catch {
    return { ok: false, status: 400, minSE };
  }
  if (requested !== undefined && requested.seconds < minSE) return { ok: false, status: 422, minSE };
  const floor = Math.max(minSE, theirMin ?? 0, ABSOLUTE_MIN_SE);
  // §9: the UAS may shorten the interval, but never below the Min-SE of the request.
  const interval = requested === undefined ? Math.max(preferred, floor) : Math.max(Math.min(requested.seconds, preferred), floor);
  // §9: "If the refresher parameter is not present ... the UAS ... MUST set it to 'uas' if the UAC
  // does not support session timers"; otherwise it is the UAS's choice: we refresh.
  const refresher = peerSupports && requested?.refresher === 'uac' ? 'uac' : 'uas';
  return { ok: true, terms: { interval, weRefresh: refresher === 'uas', peerSupports } };
}

/**
 * The UAC side (§7.2) from the 2xx to a request we sent with `Session-Expires: requested`.
 * "If the 2xx response did not contain a Session-Expires header field" the gateway still keeps
 * the session alive itself (it may, as the UAC, act as refresher).
 */
export function termsFromAnswer(res: SipResponse, requested: number): SessionTimerTerms {
  const peerSupports = supportsTimer(res);
  try {
    const se = res.headers.get('Session-Expires');
    if (se !== undefined) {
      const v = parseSessionExpires(se);
      return { interval: v.seconds, weRefresh: v.refresher !== 'uas', peerSupports };
    }
  } catch {
    // A garbled Session-Expires counts as absent.
  }
  return { interval: requested, weRefresh: true, peerSupports };
}

/** Header fields of a 2xx that accepts `terms` (§9): Session-Expires, and Require when supported. */
export function answerHeaders(terms: SessionTimerTerms): [string, string][] {
  const out: [string, string][] = [['Session-Expires', `${terms.interval};refresher=${terms.weRefresh ? 'uas' : 'uac'}`]];
  if (terms.peerSupports) out.push(['Require', 'timer']);
  return out;
}

/** Header fields of a refresh request we send on a leg (§7.4): we are its UAC. */
export function refreshHeaders(terms: SessionTimerTerms, minSE: number): [string, string][] {
  return [
    ['Session-Expires', `${terms.interval};refresher=${terms.weRefresh ? 'uac' : 'uas'}`],
    ['Min-SE', String(minSE)],
    ['Supported', 'timer'],
  ];
}

/** One leg's timer: refresh at half the interval, or expire when the peer fails to refresh. */
export class SessionTimer {
  private handle: TimerHandle | undefined;
  terms: SessionTimerTerms;

  constructor(
    private readonly clock: Clock,
    terms: SessionTimerTerms,
    private readonly onRefresh: () => void,
    private readonly onExpire: () => void,
  ) {
    this.terms = terms;
    this.arm();
  }

  /** A refresh succeeded (sent or received): start the interval again, maybe with new terms. */
  reset(terms?: SessionTimerTerms): void {
    if (terms) this.terms = terms;
    this.arm();
  }

  stop(): void {
    this.handle?.cancel();
    this.handle = undefined;
  }

  private arm(): void {
    this.stop();
    const ms = this.terms.interval * 1000;
    if (this.terms.weRefresh) {
      this.handle = this.clock.setTimer(ms / 2, () => {
        // After the refresh is sent, the session still ends at the full interval unless it succeeds.
        this.handle = this.clock.setTimer(ms / 2, () => this.onExpire(), 'session-expired');
        this.onRefresh();
      }, 'session-refresh');
    } else {
      const margin = Math.min(32_000, ms / 3);
      this.handle = this.clock.setTimer(ms - margin, () => this.onExpire(), 'session-expired');
    }
  }
}
