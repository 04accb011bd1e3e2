/**
 * The INVITE server transaction: RFC 3261 §17.2.1 as updated by RFC 6026 (Accepted state).
 *
 *   Proceeding --1xx from TU--> Proceeding
 *   Proceeding --2xx from TU--> Accepted --Timer L--> Terminated
 *   Proceeding --300-699 from TU--> Completed --ACK--> Confirmed --Timer I--> Terminated
 *   Completed --Timer H--> Terminated (TU told); any --transport error--> Terminated
 *
 * 100 Trying: §17.2.1 lets the transaction skip it when the TU answers within 200 ms. We wait
 * {@link TRYING_DELAY} ms and send 100 Trying only if the TU has not responded by then, so a TU
 * that rejects or answers at once costs no extra datagram.
 */
import { createResponse, type SipRequest, type SipResponse } from '../message/message.ts';
import { Headers } from '../message/headers.ts';
import { toTagOf } from './matching.ts';
import { ServerTransactionBase, type ServerEvents } from './server-base.ts';
import { TRYING_DELAY } from './timers.ts';
import type { TransactionContext, TransitionTable } from './transaction-base.ts';
import type { Destination, InviteServerTransaction as InviteServerTransactionView } from './types.ts';

export type InviteServerState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

const TRANSITIONS: TransitionTable<InviteServerState> = {
  proceeding: ['completed', 'accepted', 'terminated'],
  completed: ['confirmed', 'terminated'],
  confirmed: ['terminated'],
  accepted: ['terminated'],
  terminated: [],
};

/**
 * A 100 Trying for a request (§8.2.6.1): Via, From, To, Call-ID, CSeq copied (§8.2.6.2; the To
 * tag may stay absent on a 100) and Timestamp echoed.
 */
export function createTrying(request: SipRequest): SipResponse {
  const headers = new Headers();
  for (const name of ['Via', 'From', 'To', 'Call-ID', 'CSeq', 'Timestamp']) {
    for (const value of request.headers.getAll(name)) headers.append(name, value);
  }
  return createResponse(100, 'Trying', headers);
}

export class InviteServerTransaction extends ServerTransactionBase<InviteServerState> implements InviteServerTransactionView {
  readonly method = 'INVITE' as const;
  private retransmitInterval: number;

  constructor(id: string, request: SipRequest, source: Destination, ctx: TransactionContext, events: ServerEvents) {
    super(id, request, source, 'proceeding', TRANSITIONS, ctx, events);
    this.retransmitInterval = this.t.G;
  }

  /** Arms the 100 Trying timer (§17.2.1). Called by the layer before the TU sees the request. */
  start(): void {
    this.startTimer('Trying', TRYING_DELAY, () => {
      // §17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it knows
      // that the TU will generate a provisional or final response within 200 ms".
      if (this.current === 'proceeding' && this.last === undefined) this.sendResponse(createTrying(this.request));
    });
  }

  protected handleResponse(response: SipResponse): void {
    const status = response.status;
    switch (this.current) {
      case 'proceeding':
        this.stopTimer('Trying');
        if (status < 200) {
          // §17.2.1: "The TU passes any number of provisional responses to the server
          // transaction. So long as the server transaction is in the 'Proceeding' state, each
          // of these MUST be passed to the transport layer for transmission."
          this.sendResponse(response);
        } else if (status < 300) {
          // RFC 6026 (updating §17.2.1): a 2xx from the TU in Proceeding MUST be passed to the
          // transport and the transaction MUST move to Accepted and start Timer L (64*T1),
          // instead of terminating as RFC 3261 said.
          this.transition('accepted');
          this.startTimer('L', this.t.L, () => this.transition('terminated'));
          this.sendResponse(response);
        } else {
          // §17.2.1: "While in the 'Proceeding' state, if the TU passes a response with status
          // code from 300 to 699 to the server transaction, the response MUST be passed to the
          // transport layer for transmission, and the state machine MUST enter the 'Completed'
          // state. For unreliable transports, timer G is set to fire in T1 seconds ... When the
          // 'Completed' state is entered, timer H MUST be set to fire in 64*T1 seconds for all
          // transports."
          this.transition('completed');
          if (!this.reliable) this.startTimer('G', this.retransmitInterval, () => this.timerG());
          this.startTimer('H', this.t.H, () => this.timerH());
          this.sendResponse(response);
        }
        return;
      case 'accepted':
        // RFC 6026 (updating §17.2.1): the TU's 2xx retransmissions (§13.3.1.4) pass through the
        // Accepted state to the transport.
        if (status >= 200 && status < 300) this.sendResponse(response);
        else this.ctx.logger.warn('non-2xx response in Accepted state, dropped', this.fields({ status }));
        return;
      default:
        // §17.2.1: once a final response is sent, the TU has no more responses to give here.
        this.ctx.logger.warn('response after final response, dropped', this.fields({ status }));
        return;
    }
  }

  private timerG(): void {
    if (this.current !== 'completed') return;
    // §17.2.1: "If timer G fires, the response is passed to the transport layer once more for
    // retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds. From then on, when
    // timer G fires, the response is passed to the transport again for transmission, and timer
    // G is reset with a value that doubles, unless that value exceeds T2, in which case it is
    // reset with the value of T2."
    this.retransmitInterval = Math.min(2 * this.retransmitInterval, this.t.T2);
    this.startTimer('G', this.retransmitInterval, () => this.timerG());
    this.resend();
  }

  private timerH(): void {
    if (this.current !== 'completed') return;
    // §17.2.1: "If timer H fires while in the 'Completed' state, it implies that the ACK was
    // never received. In this case, the server transaction MUST transition to the 'Terminated'
    // state, and MUST indicate to the TU that a transaction failure has occurred."
    this.transition('terminated');
    this.events.timeout(this);
  }

  receiveRequest(request: SipRequest, source: Destination): void {
    if (request.method === 'ACK') {
      this.receiveAck(request, source);
      return;
    }
    switch (this.current) {
      case 'proceeding':
        // §17.2.1: "If a request retransmission is received while in the 'Proceeding' state,
        // the most recent provisional response that was received from the TU MUST be passed to
        // the transport layer for retransmission."
        this.resend();
        return;
      case 'completed':
        // §17.2.1: "while in the 'Completed' state, if a request retransmission is received,
        // the server SHOULD pass the response to the transport for retransmission."
        this.resend();
        return;
      case 'accepted':
        // RFC 6026 (updating §17.2.1): INVITE retransmissions in Accepted are absorbed without
        // a response; the 2xx is retransmitted by the TU, not the transaction.
      case 'confirmed':
      case 'terminated':
        return;
    }
  }

  /** The To tag of the final response, which a RFC 2543 ACK must carry to match (§17.2.3). */
  get responseToTag(): string | undefined {
    return this.last ? toTagOf(this.last) : undefined;
  }

  private receiveAck(ack: SipRequest, source: Destination): void {
    switch (this.current) {
      case 'completed':
        // §17.2.1: "If an ACK is received while the server transaction is in the 'Completed'
        // state, the server transaction MUST transition to the 'Confirmed' state. As Timer G is
        // ignored in this state, any retransmissions of the response will cease." "When this
        // state is entered, timer I is set to fire in T4 seconds for unreliable transports, and
        // zero seconds for reliable transports."
        this.stopTimer('G');
        this.stopTimer('H');
        this.transition('confirmed');
        if (this.t.I === 0) this.transition('terminated');
        else this.startTimer('I', this.t.I, () => this.transition('terminated'));
        return;
      case 'accepted':
        // RFC 6026 (updating §17.2.1): an ACK matching the transaction in Accepted MUST be
        // passed to the TU (it acknowledges the 2xx).
        this.events.ack(ack, source, this);
        return;
      case 'proceeding':
      case 'confirmed':
      case 'terminated':
        // §17.2.1: in Confirmed, ACK retransmissions are absorbed ("the purpose of the
        // 'Confirmed' state is to absorb any additional ACK messages"). An ACK before any final
        // response is meaningless and is absorbed too.
        return;
    }
  }
}
