/**
 * The non-INVITE client transaction (RFC 3261 §17.1.2).
 *
 *   Trying --1xx--> Proceeding
 *   Trying/Proceeding --200-699--> Completed --Timer K--> Terminated
 *   Trying/Proceeding --Timer F or transport error--> Terminated
 */
import type { SipRequest, SipResponse } from '../message/message.ts';
import { TransactionBase, type TransactionContext, type TransitionTable } from './transaction-base.ts';
import type { ClientTransaction, ClientTransactionHandlers, Destination } from './types.ts';

export type NonInviteClientState = 'trying' | 'proceeding' | 'completed' | 'terminated';

const TRANSITIONS: TransitionTable<NonInviteClientState> = {
  trying: ['proceeding', 'completed', 'terminated'],
  proceeding: ['completed', 'terminated'],
  completed: ['terminated'],
  terminated: [],
};

export class NonInviteClientTransaction extends TransactionBase<NonInviteClientState> implements ClientTransaction {
  private retransmitInterval: number;

  constructor(
    id: string,
    request: SipRequest,
    readonly destination: Destination,
    private readonly handlers: ClientTransactionHandlers,
    ctx: TransactionContext,
  ) {
    super(id, request, destination, 'trying', TRANSITIONS, ctx);
    this.retransmitInterval = this.t.E;
  }

  /** Sends the request and starts Timers E and F (§17.1.2.2). */
  start(): void {
    // §17.1.2.2: "The 'Trying' state is entered when the TU initiates a new client transaction
    // with a request. When entering this state, the client transaction SHOULD set timer F to fire
    // in 64*T1 seconds. ... If an unreliable transport is in use, the client transaction MUST
    // set timer E to fire in T1 seconds."
    this.startTimer('F', this.t.F, () => this.timerF());
    if (!this.reliable) this.startTimer('E', this.retransmitInterval, () => this.timerE());
    this.transmit(this.request, this.destination);
  }

  private timerE(): void {
    if (this.current === 'trying') {
      // §17.1.2.2: "If timer E fires while still in this state, the timer is reset, but this
      // time with a value of MIN(2*T1, T2). When the timer fires again, it is reset to a
      // MIN(4*T1, T2). This process continues so that retransmissions occur with an
      // exponentially increasing interval that caps at T2."
      this.retransmitInterval = Math.min(2 * this.retransmitInterval, this.t.T2);
    } else if (this.current === 'proceeding') {
      // §17.1.2.2: "If Timer E fires while in the 'Proceeding' state, the request MUST be
      // passed to the transport layer for retransmission, and Timer E MUST be reset with a
      // value of T2 seconds."
      this.retransmitInterval = this.t.T2;
    } else {
      return;
    }
    this.startTimer('E', this.retransmitInterval, () => this.timerE());
    this.transmit(this.request, this.destination);
  }

  private timerF(): void {
    if (this.current !== 'trying' && this.current !== 'proceeding') return;
    // §17.1.2.2: "If Timer F fires while the client transaction is still in the 'Trying'
    // [or 'Proceeding'] state, the client transaction SHOULD inform the TU about the timeout,
    // and then it SHOULD enter the 'Terminated' state."
    this.transition('terminated');
    this.handlers.onTimeout();
  }

  /** A response matched to this transaction by the layer (§17.1.3). */
  receiveResponse(response: SipResponse): void {
    switch (this.current) {
      case 'trying':
      case 'proceeding':
        if (response.status < 200) {
          // §17.1.2.2: "If a provisional response is received while in the 'Trying' state, the
          // response MUST be passed to the TU, and then the client transaction SHOULD move to
          // the 'Proceeding' state." Timer E keeps running and is reset to T2 when it fires.
          if (this.current === 'trying') this.transition('proceeding');
          this.handlers.onResponse(response);
          return;
        }
        // §17.1.2.2: "If a final response (status codes 200-699) is received while in the
        // 'Trying' [or 'Proceeding'] state, the response MUST be passed to the TU, and the
        // client transaction MUST transition to the 'Completed' state." "Once the client
        // transaction enters the 'Completed' state, it MUST set Timer K to fire in T4 seconds
        // for unreliable transports, and zero seconds for reliable transports."
        this.stopTimer('E');
        this.stopTimer('F');
        this.transition('completed');
        this.handlers.onResponse(response);
        if (this.state !== 'completed') return;
        if (this.t.K === 0) this.transition('terminated');
        else this.startTimer('K', this.t.K, () => this.transition('terminated'));
        return;
      case 'completed':
        // §17.1.2.2: "The 'Completed' state exists to buffer any additional response
        // retransmissions that may be received" — they are absorbed.
        return;
      case 'terminated':
        return;
    }
  }

  protected onTransportError(err: unknown): void {
    // §17.1.4: inform the TU and terminate.
    this.transition('terminated');
    this.handlers.onTransportError(err);
  }
}
