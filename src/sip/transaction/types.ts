import type { SipMessage, SipRequest, SipResponse } from '../message/message.ts';

/**
 * Where a message goes to or came from. The shape matches the transport layer's `Endpoint`
 * (transport, address, port) so either can be passed where the other is expected;
 * `connectionId` names the TCP/TLS connection a request arrived on, so that responses reuse it
 * (RFC 3261 §18.2.2).
 */
export interface Destination {
  transport: 'udp' | 'tcp' | 'tls';
  address: string;
  port: number;
  connectionId?: string;
}

/** Whether a transport is reliable in the sense of RFC 3261 §17 (no retransmission timers). */
export function isReliable(dest: Destination): boolean {
  return dest.transport !== 'udp';
}

/**
 * Hands a message to the transport. The promise rejects when the transport cannot send it
 * (no route, connection refused, ICMP unreachable): the transaction then reports a transport
 * error to its TU and terminates (RFC 3261 §17.1.4, §17.2.4).
 */
export type SendFunction = (msg: SipMessage, dest: Destination) => Promise<void>;

/** What a client transaction reports to the TU that started it with `sendRequest`. */
export interface ClientTransactionHandlers {
  /**
   * A response for the TU: every provisional and final response, and (RFC 6026) each 2xx
   * retransmission received in the Accepted state, so that the UAC core can re-ACK it.
   * Retransmitted non-2xx finals are absorbed and never reach here.
   */
  onResponse(response: SipResponse): void;
  /** Timer B (INVITE, Calling state) or Timer F (non-INVITE) fired; the transaction has ended. */
  onTimeout(): void;
  /** The transport failed to send the request (or the ACK); the transaction has ended. */
  onTransportError(error: unknown): void;
}

/** A client transaction, as the TU sees it. */
export interface ClientTransaction {
  /** Table key: the branch and method (RFC 3261 §17.1.3). */
  readonly id: string;
  readonly request: SipRequest;
  readonly destination: Destination;
  readonly state: string;
}

/** A server transaction, as the TU sees it: the TU answers through {@link respond}. */
export interface ServerTransaction {
  /** Table key (RFC 3261 §17.2.3, or the RFC 2543 fallback). */
  readonly id: string;
  readonly request: SipRequest;
  /** Where the request came from. */
  readonly source: Destination;
  /** Where responses go (RFC 3261 §18.2.2, RFC 3581 §4; see transport/response-destination.ts). */
  readonly responseDestination: Destination;
  readonly state: string;
  /** The most recent response the TU passed down, if any. */
  readonly lastResponse: SipResponse | undefined;
  /**
   * Sends a response built by the TU (status 100-699). Responses the state machine must discard
   * (a second final response to a non-INVITE request, anything after termination) are dropped
   * with a warning.
   */
  respond(response: SipResponse): void;
}

/** The INVITE server transaction, which a CANCEL can refer to. */
export interface InviteServerTransaction extends ServerTransaction {
  readonly method: 'INVITE';
}

/**
 * The transaction user (UAS/UAC core or dialog layer) above the transaction layer. Only
 * `onRequest` is required; events without a handler are logged and counted.
 */
export interface TransactionUser {
  /**
   * A new request other than ACK and CANCEL. The server transaction exists already; the TU
   * answers with `tx.respond`. For INVITE, the transaction sends 100 Trying itself if the TU has
   * not responded within 200 ms (RFC 3261 §17.2.1).
   */
  onRequest(request: SipRequest, tx: ServerTransaction): void;
  /**
   * Called for a new request (not a retransmission, not an ACK) before any server transaction
   * exists. A response returned here is sent statelessly and no transaction is created; the
   * request's retransmissions come here again and get a fresh answer. This is how requests
   * refused before authentication (challenges, 4xx) and OPTIONS keep no state: an
   * unauthenticated sender cannot make the gateway hold 32 seconds of state per request.
   * For a CANCEL, `invite` is the INVITE server transaction it matches, if any.
   */
  screen?(request: SipRequest, source: Destination, invite?: InviteServerTransaction): SipResponse | undefined;
  /**
   * An ACK that is not absorbed by a server transaction: the ACK for a 2xx (a transaction of
   * its own, RFC 3261 §17.1.1.3), or one matching an INVITE transaction in the Accepted state
   * (RFC 6026). `invite` is that transaction when there is one.
   */
  onAck?(ack: SipRequest, source: Destination, invite?: InviteServerTransaction): void;
  /**
   * A new CANCEL (RFC 3261 §9.2). `invite` is the INVITE server transaction it matches, or
   * undefined. The TU answers 200 on `cancelTx` and 487 on `invite` if that has no final
   * response yet, or 481 on `cancelTx` when `invite` is undefined.
   */
  onCancel?(cancel: SipRequest, invite: InviteServerTransaction | undefined, cancelTx: ServerTransaction): void;
  /**
   * A response that matches no client transaction and is a 2xx to INVITE: a retransmission
   * of the 2xx that the dialog layer must ACK again (RFC 3261 §13.2.2.4). Other stray
   * responses are dropped and counted.
   */
  onStrayResponse?(response: SipResponse, source: Destination): void;
  /** Timer H fired: no ACK arrived for a non-2xx final response to INVITE (§17.2.1). */
  onServerTimeout?(tx: ServerTransaction): void;
  /** The transport failed to send a response; the server transaction has ended (§17.2.4). */
  onServerTransportError?(tx: ServerTransaction, error: unknown): void;
}

/** An error in how the transaction layer was used, or an impossible state. */
export class TransactionError extends Error {
  constructor(
    public readonly code:
      | 'ERR_INVALID_STATE_TRANSITION'
      | 'ERR_MISSING_BRANCH'
      | 'ERR_DUPLICATE_TRANSACTION'
      | 'ERR_ACK_NOT_A_TRANSACTION'
      | 'ERR_BAD_RESPONSE',
    message: string,
  ) {
    super(message);
    this.name = 'TransactionError';
  }
}
