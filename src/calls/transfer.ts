/**
 * Blind transfer carried out by the gateway (RFC 3515 REFER, RFC 5589 §6): the leg that sent
 * REFER (the transferor) gets 202 and NOTIFYs with a message/sipfrag of the progress; the
 * gateway INVITEs the Refer-To target in the transferor's media slot, and when it answers the
 * remaining party talks to it and the transferor is hung up. If the target fails, the NOTIFY
 * says so and the original call stays up.
 */
import { buildResponse } from '../sip/dialog/request-builder.ts';
import { parseNameAddr } from '../sip/message/header-values.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import type { ServerTransaction } from '../sip/transaction/types.ts';
import type { Call } from './call.ts';
import { ClientLeg } from './client-leg.ts';
import { ForkSet } from './fork-set.ts';
import { sdpOf, type Leg } from './leg.ts';
import { forksPeer } from './leg-peer.ts';
import { termsFromAnswer } from './session-timer.ts';

/** How long the implicit refer subscription lasts (RFC 3515 §2.4.4), seconds. */
const SUBSCRIPTION_SECONDS = 60;

export class Transfer {
  /** True until the target answered or failed. */
  pending = true;
  private readonly forks: ForkSet;

  private constructor(
    private readonly call: Call,
    readonly transferor: Leg,
    private readonly number: string,
  ) {
    this.forks = new ForkSet({
      provisional: () => undefined,
      answered: (leg, res) => this.answered(leg, res),
      failed: (status, reason) => this.failed(status, reason),
    });
  }

  /** Handles a REFER received on `leg` of `call`. */
  static start(call: Call, leg: Leg, req: SipRequest, tx: ServerTransaction): void {
    const respond = (status: number, reason?: string) => tx.respond(buildResponse(req, status, reason));
    const other = call.other(leg);
    if (call.transfer?.pending) {
      respond(491);
      return;
    }
    if (!other) {
      respond(403, 'Nothing To Transfer');
      return;
    }
    let number: string | undefined;
    try {
      const referTo = parseNameAddr(req.headers.get('Refer-To') ?? '');
      number = referTo.uri.user ?? (referTo.uri.scheme === 'tel' ? referTo.uri.host : undefined);
      if (referTo.uri.headers.has('replaces')) {
        respond(501, 'Attended Transfer Not Supported');
        return;
      }
    } catch {
      respond(400, 'Bad Refer-To');
      return;
    }
    if (number === undefined) {
      respond(400, 'Refer-To Without a User');
      return;
    }
    // RFC 3515 §2.4.2: accepting the REFER with 202 creates the implicit subscription.
    tx.respond(buildResponse(req, 202, undefined, { headers: [['Contact', leg.contact]] }));
    const transfer = new Transfer(call, leg, number);
    transfer.notify('SIP/2.0 100 Trying', false);
    const targets = call.env.transferTargets(number, call.parties[other.slot], leg.slot);
    if (!('length' in targets)) {
      transfer.pending = false;
      transfer.notify(`SIP/2.0 ${targets.status} ${targets.reason}`, true);
      return;
    }
    call.transfer = transfer;
    const first = targets[0]!;
    call.media.setLocalAddress(leg.slot, first.local.address);
    call.media.setLegPeer?.(leg.slot, forksPeer(targets));
    const sdp = call.media.reoffer(leg.slot);
    for (const spec of targets) {
      const fork = new ClientLeg(call.env, leg.slot, spec.flow, spec.local, { ...spec.invite, sdp }, transfer.forks);
      transfer.forks.add(fork);
      call.env.register(call, fork);
    }
    call.env.logger.info('blind transfer', { call: call.id, target: number });
    transfer.forks.start();
  }

  /** RFC 3515 §2.4.5: NOTIFY with the status line of the target's response as message/sipfrag. */
  private notify(statusLine: string, final: boolean): void {
    if (!this.transferor.live) return;
    this.transferor.request(
      'NOTIFY',
      {
        headers: [
          ['Event', 'refer'],
          ['Subscription-State', final ? 'terminated;reason=noresource' : `active;expires=${SUBSCRIPTION_SECONDS}`],
        ],
        body: Buffer.from(`${statusLine}\r\n`, 'latin1'),
        contentType: 'message/sipfrag;version=2.0',
      },
      () => undefined,
    );
  }

  private answered(leg: ClientLeg, res: SipResponse): void {
    const call = this.call;
    this.pending = false;
    if (call.state !== 'connected') {
      leg.bye();
      return;
    }
    const sdp = sdpOf(res);
    const r = sdp === undefined ? undefined : call.media.answer(leg.slot, sdp);
    if (!r || !r.ok) {
      leg.bye();
      this.failed(488, 'Not Acceptable Here');
      return;
    }
    this.notify('SIP/2.0 200 OK', true);
    call.replace(this.transferor, leg);
    call.parties[leg.slot] = { user: this.number };
    call.startTimer(leg, termsFromAnswer(res, call.env.sessionExpires));
    this.transferor.bye();
    call.transfer = undefined;
  }

  private failed(status: number, reason: string): void {
    this.pending = false;
    this.call.transfer = undefined;
    this.notify(`SIP/2.0 ${status} ${reason}`, true);
    // The transferor may have hung up already: then nobody is left for the other party.
    if (!this.transferor.live) this.call.hangup();
  }

  /** The call ended while the target was being called. */
  abandon(): void {
    this.pending = false;
    this.forks.cancelAll();
  }
}
