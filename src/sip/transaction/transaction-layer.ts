/**
 * The transaction layer (RFC 3261 §17): owns the client and server transaction tables, matches
 * every inbound message to its transaction, hands new requests, stray ACKs, CANCELs and stray
 * 2xx responses to the transaction user, and removes each transaction when it terminates.
 *
 * Sans-IO: the transport calls {@link TransactionLayer.receive}; the layer sends through the
 * injected `send`, keeps time with the injected Clock and draws branches from the injected
 * Random.
 */
import type { Clock } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Random } from '../../runtime/random.ts';
import { SipParseError } from '../message/errors.ts';
import { parseCSeq } from '../message/header-values.ts';
import type { SipMessage, SipRequest, SipResponse } from '../message/message.ts';
import { InviteClientTransaction } from './client-invite.ts';
import { NonInviteClientTransaction } from './client-non-invite.ts';
import { clientKeyOfRequest, clientKeyOfResponse, newBranch, serverMatch, toTagOf, topVia, type ServerMatch } from './matching.ts';
import { responseDestination } from '../transport/response-destination.ts';
import type { ServerEvents } from './server-base.ts';
import { InviteServerTransaction } from './server-invite.ts';
import { NonInviteServerTransaction } from './server-non-invite.ts';
import { DEFAULT_TIMER_SETTINGS, type TimerSettings } from './timers.ts';
import type { TransactionBase, TransactionContext } from './transaction-base.ts';
import {
  TransactionError,
  type ClientTransaction,
  type ClientTransactionHandlers,
  type Destination,
  type SendFunction,
  type TransactionUser,
} from './types.ts';

export interface TransactionLayerOptions {
  clock: Clock;
  random: Random;
  /** The `sip.transaction` logger. */
  logger: Logger;
  /** The transport's send; a rejection is a transport error for the transaction that sent. */
  send: SendFunction;
  /** The TU; may also be set later with {@link TransactionLayer.setUser}. */
  user?: TransactionUser;
  /** T1/T2/T4 overrides (RFC 3261 §17.1.1.1 allows a larger T1 on high-latency networks). */
  timers?: Partial<TimerSettings>;
}

/** Inbound messages the layer could not hand to a transaction or the TU. */
export interface TransactionCounters {
  /** Responses matching no client transaction and not handed to `onStrayResponse`. */
  strayResponses: number;
  /** Messages without the Via/CSeq/From/To/Call-ID needed to match them. */
  malformed: number;
  /** Requests or events for which the TU has no handler. */
  unhandled: number;
}

type ClientTx = InviteClientTransaction | NonInviteClientTransaction;
type ServerTx = InviteServerTransaction | NonInviteServerTransaction;

export class TransactionLayer {
  private readonly clients = new Map<string, ClientTx>();
  /** RFC 3261 server transactions by exact key (§17.2.3). */
  private readonly servers = new Map<string, ServerTx>();
  /** RFC 2543 server transactions, grouped by everything but the To tag. */
  private readonly legacy = new Map<string, ServerTx[]>();
  private readonly matches = new Map<ServerTx, ServerMatch>();
  private readonly ctx: TransactionContext;
  private readonly events: ServerEvents;
  private user: TransactionUser | undefined;
  private readonly counts: TransactionCounters = { strayResponses: 0, malformed: 0, unhandled: 0 };

  constructor(private readonly options: TransactionLayerOptions) {
    this.user = options.user;
    this.ctx = {
      clock: options.clock,
      logger: options.logger,
      send: options.send,
      timers: { ...DEFAULT_TIMER_SETTINGS, ...options.timers },
      terminated: (tx) => this.remove(tx),
    };
    this.events = {
      timeout: (tx) => this.notify('onServerTimeout', () => this.user?.onServerTimeout?.(tx)),
      transportError: (tx, err) => this.notify('onServerTransportError', () => this.user?.onServerTransportError?.(tx, err)),
      ack: (ack, source, tx) =>
        this.notify('onAck', () => this.user?.onAck?.(ack, source, tx as InviteServerTransaction)),
    };
  }

  /** Installs the transaction user (the UA core or dialog layer). */
  setUser(user: TransactionUser): void {
    this.user = user;
  }

  /** A new RFC 3261 branch (`z9hG4bK` + random token) for the top Via of a new request. */
  newBranch(): string {
    return newBranch(this.options.random);
  }

  /** Live transactions, client and server. Terminated ones are removed at once. */
  size(): number {
    let n = this.clients.size + this.servers.size;
    for (const list of this.legacy.values()) n += list.length;
    return n;
  }

  counters(): Readonly<TransactionCounters> {
    return { ...this.counts };
  }

  /**
   * Starts a client transaction (§17.1). The top Via must already carry an RFC 3261 branch
   * (see {@link newBranch}). ACK is not a transaction: send the ACK for a 2xx with
   * {@link sendStateless}. Throws TransactionError on a missing branch or a duplicate.
   */
  sendRequest(request: SipRequest, dest: Destination, handlers: ClientTransactionHandlers): ClientTransaction {
    if (request.method === 'ACK') {
      throw new TransactionError('ERR_ACK_NOT_A_TRANSACTION', 'ACK for a 2xx is sent with sendStateless (RFC 3261 §17.1.1.3)');
    }
    let key: string | undefined;
    try {
      key = clientKeyOfRequest(request);
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
    }
    if (key === undefined) {
      throw new TransactionError('ERR_MISSING_BRANCH', 'the top Via of a request needs a branch starting with z9hG4bK (RFC 3261 §8.1.1.7)');
    }
    if (this.clients.has(key)) throw new TransactionError('ERR_DUPLICATE_TRANSACTION', `a client transaction ${key} exists already`);
    const tx =
      request.method === 'INVITE'
        ? new InviteClientTransaction(key, request, dest, handlers, this.ctx)
        : new NonInviteClientTransaction(key, request, dest, handlers, this.ctx);
    this.clients.set(key, tx);
    tx.start();
    return tx;
  }

  /** Sends a message outside any transaction: the ACK for a 2xx, 2xx retransmissions after Timer L. */
  sendStateless(msg: SipMessage, dest: Destination): Promise<void> {
    return this.options.send(msg, dest);
  }

  /** An inbound message from the transport, already parsed and validated. */
  receive(msg: SipMessage, source: Destination): void {
    if (msg.kind === 'response') this.receiveResponse(msg, source);
    else this.receiveRequest(msg, source);
  }

  /** Ends every transaction without telling the TU (shutdown). */
  close(): void {
    for (const tx of [...this.clients.values(), ...this.matches.keys()]) tx.dispose();
  }

  private receiveResponse(response: SipResponse, source: Destination): void {
    let key: string | undefined;
    let cseqMethod: string;
    try {
      key = clientKeyOfResponse(response);
      cseqMethod = parseCSeq(response.headers.get('CSeq') ?? '').method;
    } catch (err) {
      this.malformed(err, response);
      return;
    }
    const tx = key === undefined ? undefined : this.clients.get(key);
    if (tx) {
      tx.receiveResponse(response);
      return;
    }
    // §17.1.3 / RFC 6026: a response matching no transaction. A 2xx to INVITE is a
    // retransmission (or a forked 2xx) the UAC core must ACK (§13.2.2.4); the rest are dropped.
    if (response.status >= 200 && response.status < 300 && cseqMethod === 'INVITE' && this.user?.onStrayResponse) {
      this.user.onStrayResponse(response, source);
      return;
    }
    this.counts.strayResponses++;
    this.options.logger.debug('stray response dropped', { status: response.status, callId: response.headers.get('Call-ID') });
  }

  private receiveRequest(request: SipRequest, source: Destination): void {
    let match: ServerMatch;
    try {
      match = serverMatch(request);
    } catch (err) {
      this.malformed(err, request);
      return;
    }
    const existing = this.findServer(match, request.method === 'ACK');
    if (existing) {
      existing.receiveRequest(request, source);
      return;
    }
    if (request.method === 'ACK') {
      // §17.2.3 / §13.3.1.4: an ACK matching no server transaction acknowledges a 2xx; it is
      // its own transaction and goes to the TU (the dialog layer).
      this.notify('onAck', () => this.user?.onAck?.(request, source, undefined));
      return;
    }
    const user = this.user;
    // §9.2: "the CANCEL request matches the transaction ... using the procedures of Section
    // 17.2.3", except that the method is INVITE.
    const target = request.method === 'CANCEL' ? this.findServer(serverMatch(request, 'INVITE'), false) : undefined;
    const invite = target instanceof InviteServerTransaction ? target : undefined;
    const early = user?.screen?.(request, source, invite);
    if (early) {
      this.respondStatelessly(request, early, source);
      return;
    }
    if (request.method === 'CANCEL') {
      const cancelTx = this.addServer(new NonInviteServerTransaction(match.key, request, source, this.ctx, this.events), match);
      if (user?.onCancel) user.onCancel(request, invite, cancelTx);
      else this.orphan(cancelTx, 'onCancel');
      return;
    }
    const tx =
      request.method === 'INVITE'
        ? new InviteServerTransaction(match.key, request, source, this.ctx, this.events)
        : new NonInviteServerTransaction(match.key, request, source, this.ctx, this.events);
    this.addServer(tx, match);
    if (tx instanceof InviteServerTransaction) tx.start();
    if (user) user.onRequest(request, tx);
    else this.orphan(tx, 'onRequest');
  }

  /** Sends a response without a transaction, to where §18.2.2 says responses go. */
  private respondStatelessly(request: SipRequest, response: SipResponse, source: Destination): void {
    const dest = responseDestination(topVia(request), source, source.connectionId);
    const to: Destination = {
      transport: dest.transport,
      address: dest.address,
      port: dest.port,
      ...(dest.connectionId !== undefined ? { connectionId: dest.connectionId } : {}),
    };
    this.options.send(response, to).catch((err: unknown) => {
      this.ctx.logger.warn('stateless response not sent', { status: response.status, reason: err instanceof Error ? err.message : String(err) });
    });
  }

  private findServer(match: ServerMatch, isAck: boolean): ServerTx | undefined {
    if (match.rfc3261) return this.servers.get(match.key);
    // §17.2.3 (RFC 2543 peers): the To tag must equal the creating request's, except that an
    // ACK carries the To tag of the response the server transaction sent.
    return this.legacy.get(match.key)?.find((tx) => {
      if (isAck) return tx instanceof InviteServerTransaction && (tx.responseToTag ?? toTagOf(tx.request)) === match.toTag;
      return toTagOf(tx.request) === match.toTag;
    });
  }

  private addServer<T extends ServerTx>(tx: T, match: ServerMatch): T {
    this.matches.set(tx, match);
    if (match.rfc3261) this.servers.set(match.key, tx);
    else {
      const list = this.legacy.get(match.key);
      if (list) list.push(tx);
      else this.legacy.set(match.key, [tx]);
    }
    return tx;
  }

  private remove(tx: TransactionBase<string>): void {
    if (this.clients.get(tx.id) === tx) {
      this.clients.delete(tx.id);
      return;
    }
    const server = tx as ServerTx;
    const match = this.matches.get(server);
    if (!match) return;
    this.matches.delete(server);
    if (match.rfc3261) {
      if (this.servers.get(match.key) === server) this.servers.delete(match.key);
      return;
    }
    const list = this.legacy.get(match.key)?.filter((t) => t !== server) ?? [];
    if (list.length > 0) this.legacy.set(match.key, list);
    else this.legacy.delete(match.key);
  }

  /** A new server transaction no TU can answer: ended at once so it does not leak. */
  private orphan(tx: ServerTx, handler: string): void {
    this.counts.unhandled++;
    this.options.logger.warn('no transaction user handler, request dropped', { handler, method: tx.request.method });
    tx.dispose();
  }

  private notify(handler: string, call: () => void): void {
    const user = this.user as Record<string, unknown> | undefined;
    if (typeof user?.[handler] === 'function') call();
    else {
      this.counts.unhandled++;
      this.options.logger.debug('no transaction user handler, event dropped', { handler });
    }
  }

  private malformed(err: unknown, msg: SipMessage): void {
    if (!(err instanceof SipParseError)) throw err;
    this.counts.malformed++;
    this.options.logger.warn('message cannot be matched to a transaction, dropped', {
      code: err.code,
      reason: err.message,
      callId: msg.headers.get('Call-ID'),
    });
  }
}
