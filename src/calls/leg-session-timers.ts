/**
 * The session timers of a call's legs (RFC 4028), and the refreshes the gateway sends on the
 * legs where it is the refresher. One {@link LegSessionTimers} per {@link Call}; a session that
 * expires, or a refresh that fails, hangs the call up.
 */
import type { SipResponse } from '../sip/message/message.ts';
import type { Call } from './call.ts';
import { sdpOf, type Leg } from './leg.ts';
import { refreshHeaders, SessionTimer, termsFromAnswer, type SessionTimerTerms } from './session-timer.ts';

const SESSION_EXPIRED_REASON = 'SIP;cause=408;text="Session expired"';

/** The running session timer of each leg of one call. */
export class LegSessionTimers {
  private readonly timers = new Map<Leg, SessionTimer>();

  constructor(private readonly call: Call) {}

  /** The timer of `leg`, if one runs. */
  get(leg: Leg): SessionTimer | undefined {
    return this.timers.get(leg);
  }

  /** Starts (or replaces) the session timer of a leg (RFC 4028). */
  start(leg: Leg, terms: SessionTimerTerms): void {
    this.timers.get(leg)?.stop();
    this.timers.set(
      leg,
      new SessionTimer(this.call.env.clock, terms, () => this.refresh(leg), () => {
        this.call.env.logger.info('session expired without refresh', { call: this.call.id });
        this.call.hangup(SESSION_EXPIRED_REASON);
      }),
    );
  }

  /** Stops and forgets the timer of `leg`. */
  stop(leg: Leg): void {
    this.timers.get(leg)?.stop();
    this.timers.delete(leg);
  }

  /** Stops and forgets every timer (the call ended). */
  stopAll(): void {
    for (const t of this.timers.values()) t.stop();
    this.timers.clear();
  }

  /**
   * Our refresh of a leg (RFC 4028 §10): UPDATE without SDP when the peer allows it, else a
   * re-INVITE with the current SDP. A refresh that fails ends the call (§10: "If the session
   * refresh request transaction times out or generates a 408 or 481 response, then the UAC
   * sends a BYE").
   */
  private refresh(leg: Leg): void {
    const call = this.call;
    const timer = this.timers.get(leg);
    if (!timer || call.state !== 'connected' || leg.busy) return;
    const headers = refreshHeaders(timer.terms, call.env.minSessionExpires);
    const method = leg.allowsUpdate ? 'UPDATE' : 'INVITE';
    const done = (status: number, res?: SipResponse) => {
      leg.busy = false;
      if (call.state !== 'connected') return;
      if (status >= 200 && status < 300 && res) {
        const sdp = method === 'INVITE' ? sdpOf(res) : undefined;
        if (sdp !== undefined) call.media.answer(leg.slot, sdp);
        timer.reset(termsFromAnswer(res, timer.terms.interval));
      } else if (status !== 491) {
        call.hangup(SESSION_EXPIRED_REASON);
      }
    };
    leg.busy = true;
    if (method === 'UPDATE') leg.request('UPDATE', { headers }, done);
    else {
      const sdp = call.media.reoffer(leg.slot);
      leg.request('INVITE', { headers, body: Buffer.from(sdp, 'latin1'), contentType: 'application/sdp' }, done);
    }
  }
}
