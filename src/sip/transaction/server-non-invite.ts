/**
 * The non-INVITE server transaction (RFC 3261 §17.2.2).
 *
 *   Trying --1xx from TU--> Proceeding
 *   Trying/Proceeding --200-699 from TU--> Completed --Timer J--> Terminated
 *   any --transport error--> Terminated
 */
import type { SipRequest, SipResponse } from '../message/message.ts';
import { ServerTransactionBase, type ServerEvents } from './server-base.ts';
import type { TransactionContext, TransitionTable } from './transaction-base.ts';
import type { Destination } from './types.ts';

export type NonInviteServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

const TRANSITIONS: TransitionTable<NonInviteServerState> = {
  trying: ['proceeding', 'completed', 'terminated'],
  proceeding: ['completed', 'terminated'],
  completed: ['terminated'],
  terminated: [],
};

export class NonInviteServerTransaction extends ServerTransactionBase<NonInviteServerState> {
  constructor(id: string, request: SipRequest, source: Destination, ctx: TransactionContext, events: ServerEvents) {
    super(id, request, source, 'trying', TRANSITIONS, ctx, events);
  }

  protected handleResponse(response: SipResponse): void {
    switch (this.current) {
      case 'trying':
      case 'proceeding':
        if (response.status < 200) {
          // §17.2.2: "While in the 'Trying' state, if the TU passes a provisional response to
          // the server transaction, the server transaction MUST enter the 'Proceeding' state.
          // The response MUST be passed to the transport layer for transmission. Any further
          // provisional responses that are received from the TU while in the 'Proceeding'
          // state MUST be passed to the transport layer for transmission."
          if (this.current === 'trying') this.transition('proceeding');
          this.sendResponse(response);
          return;
        }
        // §17.2.2: "If the TU passes a final response (status codes 200-699) to the server
        // while in the 'Proceeding' [or 'Trying'] state, the transaction MUST enter the
        // 'Completed' state, and the response MUST be passed to the transport layer for
        // transmission." "When the server transaction enters the 'Completed' state, it MUST set
        // Timer J to fire in 64*T1 seconds for unreliable transports, and zero seconds for
        // reliable transports."
        this.transition('completed');
        this.sendResponse(response);
        if (this.state !== 'completed') return;
        if (this.t.J === 0) this.transition('terminated');
        else this.startTimer('J', this.t.J, () => this.transition('terminated'));
        return;
      case 'completed':
      case 'terminated':
        // §17.2.2: "Any other final responses passed by the TU to the server transaction MUST
        // be discarded while in the 'Completed' state."
        this.ctx.logger.warn('response after final response, dropped', this.fields({ status: response.status }));
        return;
    }
  }

  receiveRequest(_request: SipRequest, _source: Destination): void {
    switch (this.current) {
      case 'trying':
        // §17.2.2: "Once in the 'Trying' state, any further request retransmissions are
        // discarded."
        return;
      case 'proceeding':
        // §17.2.2: "If a retransmission of the request is received while in the 'Proceeding'
        // state, the most recently sent provisional response MUST be passed to the transport
        // layer for retransmission."
        this.resend();
        return;
      case 'completed':
        // §17.2.2: "While in the 'Completed' state, the server transaction MUST pass the final
        // response to the transport layer for retransmission whenever a retransmission of the
        // request is received."
        this.resend();
        return;
      case 'terminated':
        return;
    }
  }
}
