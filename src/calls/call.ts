/**
 * One call: the caller's leg (`a`), the forks and then the answering leg (`b`), the media
 * session between them, and everything that happens in the dialogs until one side hangs up.
 * The B2BUA (b2bua.ts) creates a Call, routes it and hands it every message of its legs.
 */
import type { TimerHandle } from '../runtime/clock.ts';
import { buildResponse } from '../sip/dialog/request-builder.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import type { ServerTransaction } from '../sip/transaction/types.ts';
import { ClientLeg, type OutboundInvite } from './client-leg.ts';
import { ForkSet } from './fork-set.ts';
import { Leg, LEG_ALLOW, sdpOf, type LegEnv, type LocalAddress } from './leg.ts';
import type { ServerLeg } from './server-leg.ts';
import { answerHeaders, negotiateAsUas, refreshHeaders, SessionTimer, termsFromAnswer, type SessionTimerTerms } from './session-timer.ts';
import { Transfer } from './transfer.ts';
import { DeviceLeg } from './device-leg.ts';
import type { CallEndSummary, CallMedia, LegMediaStats, LegName, LocalEnd } from './types.ts';
import { callEndSummary, callSummaryFields, type CallEndFacts } from './call-summary.ts';
import type { Destination } from '../sip/transaction/types.ts';

/** Who is on a leg, for the From of requests that the gateway originates towards others. */
export interface Party {
  display?: string;
  user: string;
}

/** One INVITE to send: where, from which local address, with what identities (the SDP is added). */
export interface ForkSpec {
  flow: Destination;
  local: LocalAddress;
  invite: Omit<OutboundInvite, 'sdp'>;
}

/** What a call needs from the B2BUA. */
export interface CallEnv extends LegEnv {
  rtpTimeoutSeconds: number;
  sessionExpires: number;
  minSessionExpires: number;
  noAnswerSeconds: number;
  /** Makes the leg's dialog findable for in-dialog requests, ACKs and stray 2xx. */
  register(call: Call, leg: Leg): void;
  /** The call has ended: forget its legs. */
  ended(call: Call): void;
  /** The call was answered (it connected). */
  answered?(call: Call): void;
  /** Forks for a transfer target (a Refer-To user), or the status that refuses it. */
  transferTargets(number: string, caller: Party, slot: LegName): ForkSpec[] | { status: number; reason: string };
}

export type CallState = 'calling' | 'connected' | 'ended';

/** How often RTP inactivity is checked (ms), at most; see {@link rtpCheckInterval}. */
export const RTP_CHECK_MS = 5000;

/**
 * The RTP inactivity check period for a timeout: every {@link RTP_CHECK_MS}, but at least twice
 * per timeout, so that a silent leg is noticed at most 1.5 × the timeout after its last packet
 * (a fixed 5 s period let a 3 s timeout fire only after up to 8 s).
 */
export function rtpCheckInterval(rtpTimeoutSeconds: number): number {
  return Math.max(100, Math.min(RTP_CHECK_MS, (rtpTimeoutSeconds * 1000) / 2));
}

const RTP_TIMEOUT_REASON = 'SIP;cause=408;text="RTP timeout"';
const SESSION_EXPIRED_REASON = 'SIP;cause=408;text="Session expired"';

/** Headers passed through when relaying in-dialog requests (RFC 6086 INFO packages, events). */
const RELAYED_HEADERS = ['Info-Package', 'Event', 'Subscription-State', 'Recv-Info'];

export class Call {
  state: CallState = 'calling';
  readonly startedAt: number;
  b: Leg | undefined;
  /** The leg and media slot a transfer replaces; see transfer.ts. */
  transfer: Transfer | undefined;
  private forks: ForkSet | undefined;
  private noAnswer: TimerHandle | undefined;
  private rtpCheck: TimerHandle | undefined;
  private readonly timers = new Map<Leg, SessionTimer>();
  /** A leg put the other on hold (sendonly/inactive): RTP silence is expected. */
  private onHold = false;
  /**
   * When the media last (re)started: the answer, a re-INVITE/UPDATE with SDP (resume after a
   * hold), a transfer. RTP inactivity counts from here at the earliest, so that a check between
   * a resume and its first packet, or a ringing time without RTP, is not taken for silence.
   */
  private mediaSince = 0;
  private early: { leg: ClientLeg; remote: string; sdp: string } | undefined;
  /** Offerless re-INVITE in progress: the answer comes in the ACK (RFC 3261 §14.2). */
  private readonly ackAnswer = new Set<Leg>();
  /** The device, when it is one end of this call (the callee, or the caller on a {@link DeviceLeg}). */
  local: LocalEnd | undefined;
  private ringingTold = false;
  /** The final status of a call that ended before it connected. */
  private finalStatus: number | undefined;
  /** The dial plan target kind (set by the B2BUA when it routes the call), for the summary. */
  target = '';
  /** Wall-clock ms of the answer. */
  private answeredAt: number | undefined;
  /** Set when the call ends: what the `call summary` line said, for the observer. */
  endSummary: CallEndSummary | undefined;
  private cancelledByCaller = false;

  constructor(
    readonly env: CallEnv,
    readonly id: string,
    readonly media: CallMedia,
    public a: Leg,
    readonly parties: Record<LegName, Party>,
    private readonly aTerms: SessionTimerTerms,
  ) {
    this.startedAt = env.clock.wallNow();
  }

  /** The leg opposite `leg`, if the call has one. */
  other(leg: Leg): Leg | undefined {
    if (leg === this.a) return this.b;
    if (leg === this.b) return this.a;
    return undefined;
  }

  get caller(): ServerLeg | undefined {
    return 'tx' in this.a ? (this.a as ServerLeg) : undefined;
  }

  /** Sends one INVITE per spec (§16.7-style parallel forking) carrying `sdp`. */
  dial(specs: readonly ForkSpec[], sdp: string): void {
    const forks = new ForkSet({
      provisional: (leg, res) => this.provisional(leg, res),
      answered: (leg, res) => this.answered(leg, res),
      failed: (status, reason) => this.failed(status, reason),
    });
    for (const spec of specs) {
      const leg = new ClientLeg(this.env, 'b', spec.flow, spec.local, { ...spec.invite, sdp }, forks);
      forks.add(leg);
      this.env.register(this, leg);
    }
    this.forks = forks;
    this.noAnswer = this.env.clock.setTimer(this.env.noAnswerSeconds * 1000, () => this.noAnswerTimeout(), 'no-answer');
    forks.start();
  }

  /** The echo target answers at once with the locally produced SDP. */
  answerLocally(sdp: string): void {
    this.connect(sdp);
  }

  /** A final failure before the call was answered (no route, no media, ...). */
  reject(status: number, reason?: string, headers: [string, string][] = []): void {
    this.caller?.reject(status, reason, headers);
    this.finalStatus = status;
    this.end(`rejected ${status}`);
  }

  private provisional(leg: ClientLeg, res: SipResponse): void {
    if (this.state !== 'calling') return;
    const remote = sdpOf(res);
    let sdp: string | undefined;
    if (remote !== undefined && this.early === undefined) {
      // Early media from the first fork that sends SDP (RFC 3960 gateway model).
      const r = this.media.answer('b', remote);
      if (r.ok && r.sdp !== '') {
        this.early = { leg, remote, sdp: r.sdp };
        sdp = r.sdp;
      }
    } else if (this.early?.leg === leg) sdp = this.early.sdp;
    if (this.local && !this.ringingTold) {
      this.ringingTold = true;
      this.local.ringing();
    }
    this.caller?.provisional(sdp ? 183 : res.status === 183 ? 180 : res.status, sdp);
  }

  private answered(leg: ClientLeg, res: SipResponse): void {
    this.noAnswer?.cancel();
    if (this.state !== 'calling') {
      leg.bye();
      return;
    }
    const remote = sdpOf(res);
    let sdp: string | undefined;
    if (remote !== undefined && !(this.early?.leg === leg && this.early.remote === remote)) {
      const r = this.media.answer('b', remote);
      if (r.ok) sdp = r.sdp !== '' ? r.sdp : this.early?.sdp;
    } else sdp = this.early?.sdp;
    if (sdp === undefined) {
      this.env.logger.warn('answer without usable SDP, call refused', { call: this.id });
      leg.bye();
      this.reject(502, 'Bad Gateway (no usable SDP answer)');
      return;
    }
    this.b = leg;
    this.startTimer(leg, termsFromAnswer(res, this.env.sessionExpires));
    this.connect(sdp);
  }

  private connect(sdp: string): void {
    this.state = 'connected';
    this.answeredAt = this.env.clock.wallNow();
    this.env.answered?.(this);
    this.caller?.accept(sdp, answerHeaders(this.aTerms), () => this.hangup('SIP;cause=408;text="No ACK"'));
    // The device's own leg has no dialog to refresh.
    if (!(this.a instanceof DeviceLeg)) this.startTimer(this.a, this.aTerms);
    this.mediaSince = this.env.clock.now();
    this.rtpCheck = this.env.clock.setTimer(rtpCheckInterval(this.env.rtpTimeoutSeconds), () => this.checkRtp(), 'rtp-check');
    this.local?.connected();
  }

  /**
   * The leg across from `leg` that speaks SIP: undefined when the other end is the device (or
   * there is none, the echo), so that offers and INFOs are answered here.
   */
  private remoteOther(leg: Leg): Leg | undefined {
    const other = this.other(leg);
    return other instanceof DeviceLeg ? undefined : other;
  }

  private failed(status: number, reason: string): void {
    this.noAnswer?.cancel();
    if (this.state !== 'calling') return;
    this.reject(status, reason);
  }

  private noAnswerTimeout(): void {
    if (this.state !== 'calling') return;
    this.forks?.cancelAll();
    this.reject(480, 'Temporarily Unavailable (no answer)');
  }

  /** The caller CANCELled; UasCore has already answered 487 (§9.2). */
  cancelled(): void {
    if (this.state !== 'calling') return;
    this.caller?.cancelled();
    this.forks?.cancelAll();
    this.cancelledByCaller = true;
    this.end('cancelled by the caller');
  }

  /** An in-dialog request on one of the call's legs (the dialog exists: the To tag matched). */
  inDialog(leg: Leg, req: SipRequest, tx: ServerTransaction): void {
    const respond = (status: number, reason?: string, headers: [string, string][] = []) =>
      tx.respond(buildResponse(req, status, reason, { headers }));
    const check = leg.dialog?.receiveRequest(req);
    if (!check || !check.accepted) {
      respond(check?.status ?? 481, check?.reason);
      return;
    }
    if (req.method === 'BYE') {
      // §15.1.2: "the UAS MUST ... generate a 2xx response to the BYE".
      respond(200);
      leg.terminate();
      this.byeReceived(leg);
      return;
    }
    if (this.state !== 'connected' || (leg !== this.a && leg !== this.b)) {
      respond(req.method === 'INVITE' || req.method === 'UPDATE' ? 491 : 481);
      return;
    }
    switch (req.method) {
      case 'INVITE':
      case 'UPDATE':
        this.offer(leg, req, tx);
        return;
      case 'REFER':
        if (this.local) {
          // Transferring a device call would need the device to place the new call.
          respond(501, 'Not Implemented (transfer of a device call)');
          return;
        }
        Transfer.start(this, leg, req, tx);
        return;
      default:
        this.relay(leg, req, tx);
    }
  }

  private byeReceived(leg: Leg): void {
    if (this.transfer?.transferor === leg && this.transfer.pending) {
      // The transferor may hang up once the REFER is accepted; the transfer carries on.
      return;
    }
    if (leg !== this.a && leg !== this.b) return;
    this.hangup(undefined, `BYE from leg ${leg.slot}`);
  }

  /** An ACK for a 2xx: stops the retransmission; an offerless re-INVITE gets its answer here. */
  ack(leg: Leg, ack: SipRequest): void {
    if (!leg.acked(ack)) return;
    if (this.ackAnswer.delete(leg)) {
      leg.busy = false;
      const sdp = sdpOf(ack);
      if (sdp !== undefined) {
        const r = this.media.answer(leg.slot, sdp);
        if (!r.ok) this.env.logger.warn('SDP answer in ACK refused', { call: this.id, reason: r.reason });
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
  private offer(leg: Leg, req: SipRequest, tx: ServerTransaction): void {
    const other = this.remoteOther(leg);
    const negotiated = negotiateAsUas(req, this.timers.get(leg)?.terms.interval ?? this.env.sessionExpires, this.env.minSessionExpires);
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
      this.timers.get(leg)?.reset(terms);
      if (req.method === 'INVITE') leg.answer(tx, ok(sdp), () => this.hangup('SIP;cause=408;text="No ACK"'));
      else tx.respond(ok(sdp));
    };
    if (remote === undefined) {
      if (req.method === 'UPDATE') {
        respondOk(undefined);
        return;
      }
      leg.busy = true;
      this.ackAnswer.add(leg);
      respondOk(this.media.reoffer(leg.slot));
      return;
    }
    this.onHold = /^a=(sendonly|inactive)\s*$/m.test(remote);
    this.mediaSince = this.env.clock.now();
    if (!other) {
      // Echo or the device: nobody else to ask.
      const r = this.media.answerLocally(leg.slot, remote);
      if (!r.ok) tx.respond(buildResponse(req, r.status, r.reason));
      else respondOk(r.sdp);
      return;
    }
    const r = this.media.offer(leg.slot, remote);
    if (!r.ok) {
      tx.respond(buildResponse(req, r.status, r.reason));
      return;
    }
    leg.busy = true;
    other.busy = true;
    const otherTimer = this.timers.get(other);
    const headers = otherTimer ? refreshHeaders(otherTimer.terms, this.env.minSessionExpires) : [];
    other.request(req.method, { headers, body: Buffer.from(r.sdp, 'latin1'), contentType: 'application/sdp' }, (status, res) => {
      leg.busy = false;
      other.busy = false;
      if (this.state !== 'connected') return;
      if (status >= 200 && status < 300 && res) {
        otherTimer?.reset();
        const answer = sdpOf(res);
        const a = answer === undefined ? undefined : this.media.answer(other.slot, answer);
        if (!a || !a.ok) {
          tx.respond(buildResponse(req, 488, a && !a.ok ? a.reason : 'No SDP answer'));
          return;
        }
        respondOk(a.sdp);
        return;
      }
      tx.respond(buildResponse(req, status, res?.reason));
      if (status === 481 || status === 408) this.hangup();
    });
  }

  /** INFO, NOTIFY, MESSAGE and the like: sent on to the other leg; its final status comes back. */
  private relay(leg: Leg, req: SipRequest, tx: ServerTransaction): void {
    const other = this.remoteOther(leg);
    if (!other && this.local && req.method === 'INFO') {
      tx.respond(buildResponse(req, this.local.info(req.headers.get('Content-Type'), req.body)));
      return;
    }
    if (!other) {
      tx.respond(buildResponse(req, req.method === 'INFO' || req.method === 'OPTIONS' ? 200 : 405));
      return;
    }
    const headers: [string, string][] = [];
    for (const name of RELAYED_HEADERS) for (const v of req.headers.getAll(name)) headers.push([name, v]);
    const contentType = req.headers.get('Content-Type');
    other.request(
      req.method,
      { headers, ...(req.body.length > 0 ? { body: req.body, ...(contentType ? { contentType } : {}) } : {}) },
      (status, res) => {
        const type = res?.headers.get('Content-Type');
        tx.respond(
          buildResponse(req, status, res?.reason, {
            ...(res && res.body.length > 0 ? { body: res.body, ...(type ? { contentType: type } : {}) } : {}),
          }),
        );
      },
    );
  }

  /** Starts (or replaces) the session timer of a leg (RFC 4028). */
  startTimer(leg: Leg, terms: SessionTimerTerms): void {
    this.timers.get(leg)?.stop();
    this.timers.set(
      leg,
      new SessionTimer(this.env.clock, terms, () => this.refresh(leg), () => {
        this.env.logger.info('session expired without refresh', { call: this.id });
        this.hangup(SESSION_EXPIRED_REASON);
      }),
    );
  }

  stopTimer(leg: Leg): void {
    this.timers.get(leg)?.stop();
    this.timers.delete(leg);
  }

  /**
   * Our refresh of a leg (RFC 4028 §10): UPDATE without SDP when the peer allows it, else a
   * re-INVITE with the current SDP. A refresh that fails ends the call (§10: "If the session
   * refresh request transaction times out or generates a 408 or 481 response, then the UAC
   * sends a BYE").
   */
  private refresh(leg: Leg): void {
    const timer = this.timers.get(leg);
    if (!timer || this.state !== 'connected' || leg.busy) return;
    const headers = refreshHeaders(timer.terms, this.env.minSessionExpires);
    const method = leg.allowsUpdate ? 'UPDATE' : 'INVITE';
    const done = (status: number, res?: SipResponse) => {
      leg.busy = false;
      if (this.state !== 'connected') return;
      if (status >= 200 && status < 300 && res) {
        const sdp = method === 'INVITE' ? sdpOf(res) : undefined;
        if (sdp !== undefined) this.media.answer(leg.slot, sdp);
        timer.reset(termsFromAnswer(res, timer.terms.interval));
      } else if (status !== 491) {
        this.hangup(SESSION_EXPIRED_REASON);
      }
    };
    leg.busy = true;
    if (method === 'UPDATE') leg.request('UPDATE', { headers }, done);
    else {
      const sdp = this.media.reoffer(leg.slot);
      leg.request('INVITE', { headers, body: Buffer.from(sdp, 'latin1'), contentType: 'application/sdp' }, done);
    }
  }

  /**
   * A new offer from the device on the far end's leg (RFC 3264 §8.4 hold and resume): a
   * re-INVITE with the device's SDP. A refused re-INVITE leaves the session as it was (RFC 3261
   * §14.1); `done` says whether the far end accepted. False when an offer is already in progress.
   */
  reofferLocal(slot: LegName, hold: boolean, done: (accepted: boolean) => void): boolean {
    const leg = slot === 'a' ? this.a : this.b;
    if (!leg || this.state !== 'connected' || leg.busy) return false;
    const timer = this.timers.get(leg);
    const headers = timer ? refreshHeaders(timer.terms, this.env.minSessionExpires) : [];
    const sdp = this.media.reoffer(slot);
    leg.busy = true;
    leg.request('INVITE', { headers, body: Buffer.from(sdp, 'latin1'), contentType: 'application/sdp' }, (status, res) => {
      leg.busy = false;
      const answer = res && status >= 200 && status < 300 ? sdpOf(res) : undefined;
      const accepted = answer !== undefined && this.state === 'connected' && this.media.answer(slot, answer).ok;
      if (accepted) {
        this.onHold = hold;
        this.mediaSince = this.env.clock.now();
        if (timer) timer.reset(termsFromAnswer(res!, timer.terms.interval));
      }
      done(accepted);
    });
    return true;
  }

  /** RTP inactivity (every {@link rtpCheckInterval}): a leg silent too long ends the call. */
  private checkRtp(): void {
    if (this.state !== 'connected') return;
    const limit = this.env.rtpTimeoutSeconds * 1000;
    if (limit > 0 && !this.onHold) {
      const slots: LegName[] = this.b ? ['a', 'b'] : ['a'];
      const restarted = this.env.clock.now() - this.mediaSince;
      const idle = slots.find((s) => Math.min(this.media.idleMs(s), restarted) > limit);
      if (idle !== undefined) {
        this.env.logger.info('RTP timeout, call ended', { call: this.id, leg: idle });
        this.hangup(RTP_TIMEOUT_REASON);
        return;
      }
    }
    this.rtpCheck = this.env.clock.setTimer(rtpCheckInterval(this.env.rtpTimeoutSeconds), () => this.checkRtp(), 'rtp-check');
  }

  /**
   * Ends the call from the gateway's side: BYE to every live leg (a Reason header when given).
   * `cause` is what the "call ended" log line says (default: the Reason, else "hung up").
   */
  hangup(reason?: string, cause: string = reason ?? 'hung up'): void {
    if (this.state === 'ended') return;
    if (this.state === 'calling') {
      this.forks?.cancelAll();
      this.caller?.reject(480);
    }
    this.a.bye(reason);
    this.b?.bye(reason);
    this.transfer?.abandon();
    this.end(cause);
  }

  /** Forgets the call: timers off, media closed, legs unregistered; logs why it ended. */
  end(cause = 'ended'): void {
    if (this.state === 'ended') return;
    this.env.logger.info('call ended', { call: this.id, reason: cause, seconds: Math.round((this.env.clock.wallNow() - this.startedAt) / 1000) });
    this.state = 'ended';
    this.noAnswer?.cancel();
    this.rtpCheck?.cancel();
    for (const t of this.timers.values()) t.stop();
    this.timers.clear();
    this.summarize(cause);
    this.media.close();
    this.env.ended(this);
    this.local?.ended(cause, this.finalStatus);
  }

  /** Logs the one `call summary` line (parties, durations, codec, loss, jitter) before the media closes. */
  private summarize(reason: string): void {
    const media: Partial<Record<LegName, LegMediaStats>> = {};
    for (const slot of ['a', 'b'] as const) {
      const stats = this.media.stats?.(slot);
      if (stats !== undefined) media[slot] = stats;
    }
    const facts: CallEndFacts = {
      id: this.id,
      from: this.parties.a.user,
      to: this.parties.b.user,
      target: this.target,
      reason,
      cancelled: this.cancelledByCaller,
      startedAt: this.startedAt,
      endedAt: this.env.clock.wallNow(),
      media,
      ...(this.finalStatus === undefined ? {} : { status: this.finalStatus }),
      ...(this.answeredAt === undefined ? {} : { answeredAt: this.answeredAt }),
    };
    this.env.logger.info('call summary', callSummaryFields(facts));
    this.endSummary = callEndSummary(facts);
  }

  /** Puts a new leg in place of an old one (transfer), keeping the media slot. */
  replace(old: Leg, replacement: Leg): void {
    if (this.a === old) this.a = replacement;
    else if (this.b === old) this.b = replacement;
    this.stopTimer(old);
    this.mediaSince = this.env.clock.now();
  }
}
