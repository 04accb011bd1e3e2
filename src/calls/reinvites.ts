/**
 * New offers on a connected call (RFC 3264 §8, RFC 3311): a re-INVITE or UPDATE from either
 * leg is relayed to the other leg and its answer back, an offerless re-INVITE gets its answer
 * in the ACK (RFC 3261 §14.2), and the device's own hold/resume goes out as a re-INVITE.
 * One {@link Reinvites} per {@link Call}, like the transfer in transfer.ts.
 */
import { buildResponse } from '../sip/dialog/request-builder.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import type { ServerTransaction } from '../sip/transaction/types.ts';
import type { Call } from './call.ts';
import { LEG_ALLOW, sdpOf, type Leg } from './leg.ts';
import { answerHeaders, negotiateAsUas, refreshHeaders, termsFromAnswer } from './session-timer.ts';
import type { LegName } from './types.ts';

/** The offer/answer exchanges in progress on one call. */
export class Reinvites {
  /** Offerless re-INVITE in progress: the answer comes in the ACK (RFC 3261 §14.2). */
  private readonly ackAnswer = new Set<Leg>();

  constructor(private readonly call: Call) {}

  /** An ACK for a 2xx on `leg` (already matched by the leg): an offerless re-INVITE gets its answer here. */
  acked(leg: Leg, ack: SipRequest): void {
    if (this.ackAnswer.delete(leg)) {
      leg.busy = false;
      const sdp = sdpOf(ack);
      if (sdp !== undefined) {
        const r = this.call.media.answer(leg.slot, sdp);
        if (!r.ok) this.call.env.logger.warn('SDP answer in ACK refused', { call: this.call.id, reason: r.reason });
      }
    }
  }

  /**
   * A re-INVITE or UPDATE (RFC 3311) on a connected leg: a new offer is relayed to the other
   * leg and its answer back; no SDP is a session refresh (UPDATE) or an offer request
   * (re-INVITE, §14.2), answered here. §14.2: "A UAS that receives a second INVITE before it
   * sends the final response to a first INVITE with a lower CSeq ... MUST return a 500"; a
   * request crossing one of ours (glare) gets 491 (§14.2).
   */
  offer(leg: Leg, req: SipRequest, tx: ServerTransaction): void {
    const call = this.call;
    const other = call.remoteOther(leg);
    const negotiated = negotiateAsUas(req, call.sessionTimers.get(leg)?.terms.interval ?? call.env.sessionExpires, call.env.minSessionExpires);
    if (!negotiated.ok) {
      tx.respond(buildResponse(req, negotiated.status, undefined, { headers: [['Min-SE', String(negotiated.minSE)]] }));
      return;
    }
    const terms = negotiated.terms;
    if (leg.busy || other?.busy) {
      tx.respond(buildResponse(req, 491, undefined, { headers: [['Retry-After', '2']] }));
      return;
    }
    const remote = sdpOf(req);
    const ok = (sdp: string | undefined): SipResponse =>
      buildResponse(req, 200, undefined, {
        headers: [['Contact', leg.contact], ['Allow', LEG_ALLOW], ...answerHeaders(terms)],
        ...(sdp !== undefined ? { body: Buffer.from(sdp, 'latin1'), contentType: 'application/sdp' } : {}),
      });
    const respondOk = (sdp: string | undefined) => {
      call.sessionTimers.get(leg)?.reset(terms);
      if (req.method === 'INVITE') leg.answer(tx, ok(sdp), () => call.hangup('SIP;cause=408;text="No ACK"'));
      else tx.respond(ok(sdp));
    };
    if (remote === undefined) {
      if (req.method === 'UPDATE') {
        respondOk(undefined);
        return;
      }
      leg.busy = true;
      this.ackAnswer.add(leg);
      respondOk(call.media.reoffer(leg.slot));
      return;
    }
    call.mediaRestarted(/^a=(sendonly|inactive)\s*$/m.test(remote));
    if (!other) {
      // Echo or the device: nobody else to ask.
      const r = call.media.answerLocally(leg.slot, remote);
      if (!r.ok) tx.respond(buildResponse(req, r.status, r.reason));
      else respondOk(r.sdp);
      return;
    }
    const r = call.media.offer(leg.slot, remote);
    if (!r.ok) {
      tx.respond(buildResponse(req, r.status, r.reason));
      return;
    }
    leg.busy = true;
    other.busy = true;
    const otherTimer = call.sessionTimers.get(other);
    const headers = otherTimer ? refreshHeaders(otherTimer.terms, call.env.minSessionExpires) : [];
    other.request(req.method, { headers, body: Buffer.from(r.sdp, 'latin1'), contentType: 'application/sdp' }, (status, res) => {
      leg.busy = false;
      other.busy = false;
      if (call.state !== 'connected') return;
      if (status >= 200 && status < 300 && res) {
        otherTimer?.reset();
        const answer = sdpOf(res);
        const a = answer === undefined ? undefined : call.media.answer(other.slot, answer);
        if (!a || !a.ok) {
          tx.respond(buildResponse(req, 488, a && !a.ok ? a.reason : 'No SDP answer'));
          return;
        }
        respondOk(a.sdp);
        return;
      }
      tx.respond(buildResponse(req, status, res?.reason));
      if (status === 481 || status === 408) call.hangup();
    });
  }

  /**
   * A new offer from the device on the far end's leg (RFC 3264 §8.4 hold and resume): a
   * re-INVITE with the device's SDP. A refused re-INVITE leaves the session as it was (RFC 3261
   * §14.1); `done` says whether the far end accepted. False when an offer is already in progress.
   */
  reofferLocal(slot: LegName, hold: boolean, done: (accepted: boolean) => void): boolean {
    const call = this.call;
    const leg = slot === 'a' ? call.a : call.b;
    if (!leg || call.state !== 'connected' || leg.busy) return false;
    const timer = call.sessionTimers.get(leg);
    const headers = timer ? refreshHeaders(timer.terms, call.env.minSessionExpires) : [];
    const sdp = call.media.reoffer(slot);
    leg.busy = true;
    leg.request('INVITE', { headers, body: Buffer.from(sdp, 'latin1'), contentType: 'application/sdp' }, (status, res) => {
      leg.busy = false;
      const answer = res && status >= 200 && status < 300 ? sdpOf(res) : undefined;
      const accepted = answer !== undefined && call.state === 'connected' && call.media.answer(slot, answer).ok;
      if (accepted) {
        call.mediaRestarted(hold);
        if (timer) timer.reset(termsFromAnswer(res!, timer.terms.interval));
      }
      done(accepted);
    });
    return true;
  }
}
