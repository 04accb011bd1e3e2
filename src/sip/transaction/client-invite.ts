/**
 * The INVITE client transaction: RFC 3261 §17.1.1 as updated by RFC 6026 (the Accepted
 * state, Timer M).
 *
 *            Calling --1xx--> Proceeding
 *   Calling/Proceeding --300-699--> Completed (ACK sent) --Timer D--> Terminated
 *   Calling/Proceeding --2xx--> Accepted --Timer M--> Terminated
 *   Calling --Timer B--> Terminated; any --transport error--> Terminated
 */
import { sameTransactionRequest } from './cancel.ts';
import type { SipRequest, SipResponse } from '../message/message.ts';
import { TransactionBase, type TransactionContext, type TransitionTable } from './transaction-base.ts';
import type { ClientTransaction, ClientTransactionHandlers, Destination } from './types.ts';

export type InviteClientState = 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

const TRANSITIONS: TransitionTable<InviteClientState> = {
  calling: ['proceeding', 'completed', 'accepted', 'terminated'],
  proceeding: ['completed', 'accepted', 'terminated'],
  completed: ['terminated'],
  accepted: ['terminated'],
  terminated: [],
};

/**
 * The ACK for a non-2xx final response (§17.1.1.3): "The ACK request constructed by the client
 * transaction MUST contain values for the Call-ID, From, and Request-URI that are equal to the
 * values of those header fields in the request passed to the transport by the client
 * transaction (call this the 'original request'). The To header field in the ACK MUST equal the
 * To header field in the response being acknowledged ... The ACK MUST contain a single Via
 * header field, and this MUST be equal to the top Via header field of the original request.
 * The CSeq header field in the ACK MUST contain the same value for the sequence number as was
 * present in the original request, but the method parameter MUST be equal to 'ACK'."
 * "If the INVITE request whose response is being acknowledged had Route header fields, those
 * header fields MUST appear in the ACK."
 */
export function createNon2xxAck(invite: SipRequest, response: SipResponse): SipRequest {
  return sameTransactionRequest(invite, 'ACK', response.headers.get('To'));
}

export class InviteClientTransaction extends TransactionBase<InviteClientState> implements ClientTransaction {
  private ack: SipRequest | undefined;
  private retransmitInterval: number;

  constructor(
    id: string,
    request: SipRequest,
    readonly destination: Destination,
    private readonly handlers: ClientTransactionHandlers,
    ctx: TransactionContext,
  ) {
    super(id, request, destination, 'calling', TRANSITIONS, ctx);
    this.retransmitInterval = this.t.A;
  }

  /** Sends the INVITE and starts Timers A and B (§17.1.1.2). */
  start(): void {
    // §17.1.1.2: "If an unreliable transport is being used, the client transaction MUST start
    // timer A with a value of T1. ... For any transport, the client transaction MUST start
    // timer B with a value of 64*T1 seconds".
    if (!this.reliable) this.startTimer('A', this.retransmitInterval, () => this.timerA());
    this.startTimer('B', this.t.B, () => this.timerB());
    this.transmit(this.request, this.destination);
  }

  private timerA(): void {
    if (this.current !== 'calling') return;
    // §17.1.1.2: "When timer A fires, the client transaction MUST retransmit the request by
    // passing it to the transport layer, and MUST reset the timer with a value of 2*T1."
    this.retransmitInterval *= 2;
    this.startTimer('A', this.retransmitInterval, () => this.timerA());
    this.transmit(this.request, this.destination);
  }

  private timerB(): void {
    if (this.current !== 'calling') return;
    // §17.1.1.2: "If the client transaction is still in the 'Calling' state when timer B fires,
    // the client transaction SHOULD inform the TU that a timeout has occurred."
    this.transition('terminated');
    this.handlers.onTimeout();
  }

  /** A response matched to this transaction by the layer (§17.1.3). */
  receiveResponse(response: SipResponse): void {
    const status = response.status;
    switch (this.current) {
      case 'calling':
      case 'proceeding':
        if (status < 200) {
          // §17.1.1.2: "If the client transaction receives a provisional response while in the
          // 'Calling' state, it transitions to the 'Proceeding' state. In the 'Proceeding'
          // state, the client transaction SHOULD NOT retransmit the request any longer.
          // Furthermore, the provisional response MUST be passed to the TU."
          if (this.current === 'calling') {
            this.stopTimer('A');
            this.stopTimer('B');
            this.transition('proceeding');
          }
          this.handlers.onResponse(response);
        } else if (status < 300) {
          // RFC 6026 (updating §17.1.1.2): a 2xx in Calling or Proceeding MUST move the
          // transaction to Accepted, be passed to the TU, and start Timer M (64*T1).
          this.stopTimer('A');
          this.stopTimer('B');
          this.transition('accepted');
          this.startTimer('M', this.t.M, () => this.transition('terminated'));
          this.handlers.onResponse(response);
        } else {
          // §17.1.1.2: "When in either the 'Calling' or 'Proceeding' states, reception of a
          // response with status code from 300-699 MUST cause the client transaction to
          // transition to 'Completed'. The client transaction MUST pass the received response
          // up to the TU, and the client transaction MUST generate an ACK request".
          this.stopTimer('A');
          this.stopTimer('B');
          this.ack = createNon2xxAck(this.request, response);
          this.transition('completed');
          this.transmit(this.ack, this.destination);
          this.handlers.onResponse(response);
          // "The client transaction SHOULD start timer D ... at least 32 seconds for unreliable
          // transports, and ... zero seconds for reliable transports."
          if (this.state !== 'completed') return;
          if (this.t.D === 0) this.transition('terminated');
          else this.startTimer('D', this.t.D, () => this.transition('terminated'));
        }
        return;
      case 'completed':
        // §17.1.1.2: "Any retransmissions of the final response that are received while in the
        // 'Completed' state MUST cause the ACK to be re-passed to the transport layer for
        // retransmission, but the newly received response MUST NOT be passed up to the TU."
        if (status >= 300 && this.ack) this.transmit(this.ack, this.destination);
        return;
      case 'accepted':
        // RFC 6026 (updating §17.1.1.2): every 2xx matching the transaction in Accepted MUST be
        // passed up to the TU (which ACKs it, §13.2.2.4); the transaction itself never ACKs a
        // 2xx. Other responses are absorbed.
        if (status >= 200 && status < 300) this.handlers.onResponse(response);
        return;
      case 'terminated':
        return;
    }
  }

  protected onTransportError(err: unknown): void {
    // §17.1.4: "the client transaction SHOULD inform the TU and ... transition to the
    // terminated state".
    this.transition('terminated');
    this.handlers.onTransportError(err);
  }
}
