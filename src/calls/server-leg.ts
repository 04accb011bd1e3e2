/**
 * The caller side of a call: the INVITE the gateway received (RFC 3261 §13.3), answered with
 * provisional responses, a 2xx (retransmitted until ACK, §13.3.1.4) or a final failure. All
 * responses after 100 carry one To tag, ours, which with the Call-ID names the dialog (§12.1.1).
 */
import { Dialog } from '../sip/dialog/dialog.ts';
import { buildResponse, newTag } from '../sip/dialog/request-builder.ts';
import type { SipRequest } from '../sip/message/message.ts';
import type { ServerTransaction } from '../sip/transaction/types.ts';
import { allows, Leg, LEG_ALLOW, type LegEnv, type LocalAddress } from './leg.ts';

export class ServerLeg extends Leg {
  /** Our To tag. */
  readonly tag: string;
  readonly callId: string;
  readonly invite: SipRequest;
  private finalSent = false;

  /** @throws SipParseError when the INVITE cannot create a dialog (no From tag, bad Contact). */
  constructor(env: LegEnv, readonly tx: ServerTransaction, local: LocalAddress) {
    super(env, 'a', tx.source, local);
    this.invite = tx.request;
    this.tag = newTag(env.random);
    this.callId = tx.request.headers.get('Call-ID') ?? '';
    this.dialog = Dialog.asUas(tx.request, this.tag, this.contact, {
      state: 'early',
      random: env.random,
      overTls: tx.source.transport === 'tls',
    });
    this.allowsUpdate = allows(tx.request, 'UPDATE');
  }

  get answered(): boolean {
    return this.finalSent;
  }

  /** 180/183 (§13.3.1.1), with SDP for early media when given. */
  provisional(status: number, sdp?: string): void {
    if (this.finalSent) return;
    this.tx.respond(
      buildResponse(this.invite, status, undefined, {
        toTag: this.tag,
        headers: [['Contact', this.contact], ['Allow', LEG_ALLOW]],
        ...(sdp ? { body: Buffer.from(sdp, 'latin1'), contentType: 'application/sdp' } : {}),
      }),
    );
  }

  /** The 2xx with the SDP answer (§13.3.1.4); `noAck` runs when no ACK came within 64*T1. */
  accept(sdp: string, headers: [string, string][], noAck: () => void): void {
    if (this.finalSent) return;
    this.finalSent = true;
    this.dialog?.confirm();
    const res = buildResponse(this.invite, 200, undefined, {
      toTag: this.tag,
      headers: [['Contact', this.contact], ['Allow', LEG_ALLOW], ['Supported', 'timer'], ['Server', this.env.userAgent], ...headers],
      body: Buffer.from(sdp, 'latin1'),
      contentType: 'application/sdp',
    });
    this.answer(this.tx, res, noAck);
  }

  /** A final failure (§13.3.1.3); the transaction retransmits it and absorbs the ACK. */
  reject(status: number, reason?: string, headers: [string, string][] = []): void {
    if (this.finalSent) return;
    this.finalSent = true;
    this.dialog?.terminate();
    this.tx.respond(buildResponse(this.invite, status, reason, { toTag: this.tag, headers }));
  }

  /** UasCore answered a CANCEL with 487 on our behalf (§9.2). */
  cancelled(): void {
    this.finalSent = true;
    this.dialog?.terminate();
  }
}
