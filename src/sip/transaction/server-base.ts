import type { SipRequest, SipResponse } from '../message/message.ts';
import { topVia } from './matching.ts';
import { responseDestination } from '../transport/response-destination.ts';
import { TransactionBase, type TransactionContext, type TransitionTable } from './transaction-base.ts';
import { TransactionError, type Destination, type ServerTransaction } from './types.ts';

/** Events a server transaction raises towards the layer (which forwards them to the TU). */
export interface ServerEvents {
  timeout(tx: ServerTransaction): void;
  transportError(tx: ServerTransaction, err: unknown): void;
  /** An ACK the INVITE server transaction passes up (RFC 6026 Accepted state). */
  ack(ack: SipRequest, source: Destination, tx: ServerTransaction): void;
}

/** Shared parts of the two server transactions: where responses go and the last response. */
export abstract class ServerTransactionBase<S extends string> extends TransactionBase<S> implements ServerTransaction {
  readonly responseDestination: Destination;
  protected last: SipResponse | undefined;

  constructor(
    id: string,
    request: SipRequest,
    readonly source: Destination,
    initial: S,
    table: TransitionTable<S>,
    ctx: TransactionContext,
    protected readonly events: ServerEvents,
  ) {
    super(id, request, source, initial, table, ctx);
    // §18.2.2 / RFC 3581 §4, computed by the transport's rule (the connection for TCP/TLS,
    // received/rport for UDP).
    const { transport, address, port } = source;
    const dest = responseDestination(topVia(request), { transport, address, port }, source.connectionId);
    this.responseDestination = {
      transport: dest.transport,
      address: dest.address,
      port: dest.port,
      ...(dest.connectionId !== undefined ? { connectionId: dest.connectionId } : {}),
    };
  }

  get lastResponse(): SipResponse | undefined {
    return this.last;
  }

  /** The TU's response (see {@link ServerTransaction.respond}). */
  respond(response: SipResponse): void {
    if (response.kind !== 'response' || !Number.isInteger(response.status) || response.status < 100 || response.status > 699) {
      throw new TransactionError('ERR_BAD_RESPONSE', `respond() needs a response with status 100-699, got ${String(response.status)}`);
    }
    if (this.isTerminated) {
      this.ctx.logger.warn('response after transaction terminated, dropped', this.fields({ status: response.status }));
      return;
    }
    this.handleResponse(response);
  }

  /** A retransmission of the request (or, for INVITE, an ACK) matched by the layer. */
  abstract receiveRequest(request: SipRequest, source: Destination): void;

  protected abstract handleResponse(response: SipResponse): void;

  /** Sends a response and remembers it for retransmissions. */
  protected sendResponse(response: SipResponse): void {
    this.last = response;
    this.transmit(response, this.responseDestination);
  }

  /** Sends the last response again (a retransmitted request or a timer). */
  protected resend(): void {
    if (this.last) this.transmit(this.last, this.responseDestination);
  }

  protected onTransportError(err: unknown): void {
    // §17.2.4: "the server transaction ... SHOULD inform the TU" of the failure; the
    // transaction then terminates.
    this.transition('terminated' as S);
    this.events.transportError(this, err);
  }
}
