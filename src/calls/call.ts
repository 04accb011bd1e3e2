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
import { Leg, sdpOf, type LegEnv, type LocalAddress } from './leg.ts';
import { LegSessionTimers } from './leg-session-timers.ts';
import { Reinvites } from './reinvites.ts';
import type { ServerLeg } from './server-leg.ts';
import { answerHeaders, termsFromAnswer, type SessionTimerTerms } from './session-timer.ts';
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
  /** The extension or trunk the INVITE reaches (its SRTP policy). */
  party?: { extension?: string; trunk?: string };
}

/** What a call needs from the B2BUA. */
export interface CallEnv extends LegEnv {
  rtpTimeoutSeconds: number;
  sessionExpires: number;
  minSessionExpires: number;
  noAnswerSeconds: number;
  /** Makes the leg's dialog findable for in-dialog requests, ACKs and stray 2xx. */
  register(call: Call, leg: Leg): void;
  /** The call has ended (`cause` as the `call ended` line says it): forget its legs. */
  ended(call: Call, cause?: string): void;
  /** A provisional response from a fork, before the caller hears of it (dialog-events.ts). */
  provisional?(call: Call, res: SipResponse): void;
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
  /** The RFC 4028 session timer of each leg. */
  readonly sessionTimers = new LegSessionTimers(this);
  private readonly reinvites = new Reinvites(this);
  /** A leg put the other on hold (sendonly/inactive): RTP silence is expected. */
  private onHold = false;
  /**
   * When the media last (re)started: the answer, a re-INVITE/UPDATE with SDP (resume after a
   * hold), a transfer. RTP inactivity counts from here at the earliest, so that a check between
   * a resume and its first packet, or a ringing time without RTP, is not taken for silence.
   */
  private mediaSince = 0;
  private early: { leg: ClientLeg; remote: string; sdp: string } | undefined;
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
    this.env.provisional?.(this, res);
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
  remoteOther(leg: Leg): Leg | undefined {
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
        this.reinvites.offer(leg, req, tx);
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
    this.reinvites.acked(leg, ack);
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
    this.sessionTimers.start(leg, terms);
  }

  /** Stops and forgets the session timer of a leg (it left the call). */
  stopTimer(leg: Leg): void {
    this.sessionTimers.stop(leg);
  }

  /**
   * A new offer from the device on the far end's leg (RFC 3264 §8.4 hold and resume): see
   * {@link Reinvites.reofferLocal}. False when an offer is already in progress.
   */
  reofferLocal(slot: LegName, hold: boolean, done: (accepted: boolean) => void): boolean {
    return this.reinvites.reofferLocal(slot, hold, done);
  }

  /**
   * The media (re)started now: RTP inactivity counts from here. `hold` says whether a leg now
   * holds the other (sendonly/inactive); undefined leaves the hold state as it was.
   */
  mediaRestarted(hold?: boolean): void {
    if (hold !== undefined) this.onHold = hold;
    this.mediaSince = this.env.clock.now();
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
    this.sessionTimers.stopAll();
    this.summarize(cause);
    this.media.close();
    this.env.ended(this, cause);
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
