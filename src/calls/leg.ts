/**
 * One side of a call once a dialog exists (RFC 3261 §12): in-dialog requests out through client
 * transactions, the ACK of a 2xx, and the retransmission of our own 2xx to an INVITE until its
 * ACK arrives (§13.3.1.4). Every message of the leg goes to one fixed flow, where the leg's
 * INVITE came from or was sent to, so that a phone behind NAT is reached on the path it opened.
 */
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import type { Dialog, InDialogRequestOptions } from '../sip/dialog/dialog.ts';
import { parseCSeq, parseTokenList } from '../sip/message/header-values.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import { formatHostPort } from '../sip/message/uri.ts';
import type { TransactionLayer } from '../sip/transaction/transaction-layer.ts';
import { isReliable, type ClientTransactionHandlers, type Destination, type ServerTransaction } from '../sip/transaction/types.ts';
import { ALLOW } from '../sip/stack.ts';
import type { LegName } from './types.ts';

/** What every leg shares: the transaction layer, time, randomness and identity. */
export interface LegEnv {
  transactions: TransactionLayer;
  clock: Clock;
  random: Random;
  logger: Logger;
  userAgent: string;
  T1: number;
  T2: number;
}

/** Our address facing a leg's peer: Via sent-by and Contact. */
export interface LocalAddress {
  address: string;
  port: number;
}

/** The response handlers of an in-dialog request; a missing final outcome is reported as 408/503. */
export type FinalHandler = (status: number, response?: SipResponse) => void;

/** Methods we accept and advertise in Allow on legs (and in the gateway's OPTIONS answer). */
export const LEG_ALLOW = ALLOW;

/** A 2xx to an INVITE we sent, kept until its ACK (§13.3.1.4). */
interface PendingAnswer {
  cseq: number;
  timer: TimerHandle | undefined;
  giveUp: TimerHandle;
}

export function cseqNumber(msg: SipRequest | SipResponse): number {
  try {
    return parseCSeq(msg.headers.get('CSeq') ?? '').seq;
  } catch {
    return -1;
  }
}

/** Whether a message's Allow lists `method` (RFC 3261 §20.5). */
export function allows(msg: SipRequest | SipResponse, method: string): boolean {
  return msg.headers.getAll('Allow').flatMap(parseTokenList).some((m) => m.toUpperCase() === method);
}

export function sdpOf(msg: SipRequest | SipResponse): string | undefined {
  if (msg.body.length === 0) return undefined;
  const type = (msg.headers.get('Content-Type') ?? '').toLowerCase();
  if (!type.startsWith('application/sdp')) return undefined;
  return msg.body.toString('latin1');
}

export class Leg {
  dialog: Dialog | undefined;
  /** Whether the peer listed UPDATE in Allow (RFC 3311 §5.1): session refreshes may use it. */
  allowsUpdate = false;
  /** An offer/answer exchange in progress on this leg, in either direction (RFC 3261 §14.1 glare). */
  busy = false;
  private answerPending: PendingAnswer | undefined;
  private lastAck: SipRequest | undefined;
  private lastAckSeq = -1;

  constructor(
    protected readonly env: LegEnv,
    /** The media slot this leg feeds. */
    public slot: LegName,
    /** Where every request and the 2xx ACK of this leg go. */
    readonly flow: Destination,
    /** Our address facing the peer. */
    readonly local: LocalAddress,
  ) {}

  /** Our Contact on this leg. */
  get contact(): string {
    const transport = this.flow.transport === 'udp' ? '' : `;transport=${this.flow.transport}`;
    return `<sip:gw@${formatHostPort(this.local.address, this.local.port)}${transport}>`;
  }

  /** A top Via with a fresh branch (RFC 3261 §8.1.1.7) and rport (RFC 3581). */
  via(branch = this.env.transactions.newBranch()): string {
    return `SIP/2.0/${this.flow.transport.toUpperCase()} ${formatHostPort(this.local.address, this.local.port)};branch=${branch};rport`;
  }

  get live(): boolean {
    return this.dialog !== undefined && this.dialog.state !== 'terminated';
  }

  /**
   * Sends a request in the dialog (§12.2.1.1) to the leg's flow. `done` gets the final status:
   * the response's, 408 on timeout (Timer B/F), 503 on a transport error.
   */
  request(method: string, opts: InDialogRequestOptions, done?: FinalHandler, provisional?: (r: SipResponse) => void): SipRequest | undefined {
    const dialog = this.dialog;
    if (!dialog || dialog.state === 'terminated') return undefined;
    const headers: (readonly [string, string])[] = [...(opts.headers ?? []), ['User-Agent', this.env.userAgent]];
    const { request } = dialog.createRequest(method, { ...opts, headers });
    request.headers.prepend('Via', this.via());
    const handlers: ClientTransactionHandlers = {
      onResponse: (res) => {
        if (res.status < 200) {
          provisional?.(res);
          return;
        }
        const seen = method === 'INVITE' && res.status < 300 && this.lastAckSeq === cseqNumber(res);
        if (method === 'INVITE' && res.status < 300) this.ack(res);
        if (seen) return;
        dialog.receiveResponse(res);
        done?.(res.status, res);
      },
      onTimeout: () => done?.(408),
      onTransportError: () => done?.(503),
    };
    try {
      this.env.transactions.sendRequest(request, this.flow, handlers);
    } catch (err) {
      this.env.logger.error('in-dialog request not sent', { method, reason: err instanceof Error ? err.message : String(err) });
      done?.(500);
    }
    return request;
  }

  /**
   * ACKs a 2xx to an INVITE of this leg (§13.2.2.4), or re-sends the ACK when the 2xx is a
   * retransmission: "The UAC core MUST generate an ACK request for each 2xx received from the
   * transaction layer." `extra` carries credentials of the INVITE.
   */
  ack(res: SipResponse, extra: [string, string][] = [], body?: string): void {
    const seq = cseqNumber(res);
    if (this.lastAck && seq === this.lastAckSeq) {
      this.send(this.lastAck);
      return;
    }
    const dialog = this.dialog;
    if (!dialog) return;
    const { request } = dialog.createAck(seq, {
      headers: extra,
      ...(body !== undefined ? { body: Buffer.from(body, 'latin1'), contentType: 'application/sdp' } : {}),
    });
    request.headers.prepend('Via', this.via());
    this.lastAck = request;
    this.lastAckSeq = seq;
    this.send(request);
  }

  /** Sends a message outside any transaction to the leg's flow; failures are logged. */
  send(msg: SipRequest | SipResponse): void {
    this.env.transactions.sendStateless(msg, this.flow).catch((err: unknown) => {
      this.env.logger.warn('message not sent', { reason: err instanceof Error ? err.message : String(err) });
    });
  }

  /**
   * Sends our 2xx to an INVITE and keeps sending it until the ACK (§13.3.1.4): "The 2xx response
   * is passed to the transport with an interval that starts at T1 seconds and doubles for each
   * retransmission until it reaches T2 seconds"; "If the server retransmits the 2xx response for
   * 64*T1 seconds without receiving an ACK, the dialog is confirmed, but the session SHOULD be
   * terminated" — `noAck` is called then.
   */
  answer(tx: ServerTransaction, res: SipResponse, noAck: () => void): void {
    this.stopAnswer();
    tx.respond(res);
    const pending: PendingAnswer = {
      cseq: cseqNumber(res),
      timer: undefined,
      giveUp: this.env.clock.setTimer(64 * this.env.T1, () => {
        if (this.answerPending !== pending) return;
        this.stopAnswer();
        noAck();
      }, 'no-ack'),
    };
    this.answerPending = pending;
    // §13.3.1.4 retransmission makes up for loss on unreliable transports only.
    if (isReliable(tx.source)) return;
    const retransmit = (interval: number): void => {
      pending.timer = this.env.clock.setTimer(interval, () => {
        if (this.answerPending !== pending) return;
        if (tx.state === 'accepted') tx.respond(res);
        else {
          this.env.transactions.sendStateless(res, tx.responseDestination).catch(() => undefined);
        }
        retransmit(Math.min(2 * interval, this.env.T2));
      }, '2xx-retransmit');
    };
    retransmit(this.env.T1);
  }

  /** An ACK arrived on this leg: true when it acknowledges our pending 2xx (first time). */
  acked(ack: SipRequest): boolean {
    const pending = this.answerPending;
    if (!pending || pending.cseq !== cseqNumber(ack)) return false;
    this.stopAnswer();
    return true;
  }

  get awaitingAck(): boolean {
    return this.answerPending !== undefined;
  }

  stopAnswer(): void {
    const pending = this.answerPending;
    if (!pending) return;
    pending.timer?.cancel();
    pending.giveUp.cancel();
    this.answerPending = undefined;
  }

  /** Sends BYE (§15.1.1) unless the dialog has ended, and terminates the dialog. */
  bye(reason?: string): void {
    if (!this.live) return;
    this.request('BYE', { headers: reason ? [['Reason', reason]] : [] }, () => undefined);
    this.dialog!.terminate();
    this.stopAnswer();
  }

  /** Ends the leg without signalling (the peer sent BYE, or the dialog failed). */
  terminate(): void {
    this.dialog?.terminate();
    this.stopAnswer();
  }
}
