import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import { SipParseError } from './message/errors.ts';
import { parseVia, serializeVia } from './message/header-values.ts';
import type { SipMessage, SipRequest } from './message/message.ts';
import type { Via } from './message/types.ts';
import { parseMessage } from './message/parser.ts';
import { serializeMessage } from './message/serialize.ts';
import { validateRequest, validateResponse } from './message/validate.ts';
import { buildResponse } from './dialog/request-builder.ts';
import { TransactionLayer } from './transaction/transaction-layer.ts';
import type { Destination, TransactionUser } from './transaction/types.ts';
import { responseDestination } from './transport/response-destination.ts';
import type { Endpoint, SendOptions } from './transport/transport.ts';

/** What the stack needs from the transport layer: sending bytes. */
export interface StackTransport {
  send(bytes: Buffer, dest: Endpoint, opts?: SendOptions): Promise<void>;
}

/** Counters of what the stack dropped or rejected, for `status` and tests. */
export interface StackCounters {
  received: number;
  rejected: number;
  droppedResponses: number;
  sendErrors: number;
}

/** Every method this stack recognises; requests with other methods get 501 (RFC 3261 §8.2.1). */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'INVITE',
  'ACK',
  'CANCEL',
  'BYE',
  'OPTIONS',
  'REGISTER',
  'PRACK',
  'SUBSCRIBE',
  'NOTIFY',
  'PUBLISH',
  'INFO',
  'REFER',
  'MESSAGE',
  'UPDATE',
]);

export interface SipStackOptions {
  clock: Clock;
  random: Random;
  logger: Logger;
  transport: StackTransport;
}

/**
 * The signalling path between the transport layer and the transaction user:
 * bytes → parse → Via stamping (§18.2.1, RFC 3581) → validation (§8.2) → transactions.
 * Requests that cannot be parsed or validated are answered statelessly with the status the
 * error names; malformed responses are dropped. Nothing received can throw out of `receive`.
 */
export class SipStack {
  readonly transactions: TransactionLayer;
  readonly counters: StackCounters = { received: 0, rejected: 0, droppedResponses: 0, sendErrors: 0 };
  private readonly log: Logger;
  private readonly transport: StackTransport;

  constructor(opts: SipStackOptions, user: TransactionUser) {
    this.log = opts.logger;
    this.transport = opts.transport;
    this.transactions = new TransactionLayer({
      clock: opts.clock,
      random: opts.random,
      logger: opts.logger.child('transaction'),
      send: (msg, dest) => this.send(msg, dest),
      user,
    });
  }

  /** Serialises and sends a message; rejects with the transport's error. */
  send(msg: SipMessage, dest: Destination): Promise<void> {
    const bytes = serializeMessage(msg);
    const opts: SendOptions | undefined = dest.connectionId ? { connectionId: dest.connectionId } : undefined;
    return this.transport.send(bytes, { transport: dest.transport, address: dest.address, port: dest.port }, opts);
  }

  /** One whole message from a transport (a datagram, or a message cut from a stream). */
  receive(bytes: Buffer, source: Endpoint, connectionId?: string): void {
    this.counters.received++;
    const from: Destination = { transport: source.transport, address: source.address, port: source.port, ...(connectionId ? { connectionId } : {}) };
    let msg: SipMessage;
    try {
      msg = parseMessage(bytes, { stream: source.transport !== 'udp' });
    } catch (e) {
      this.rejectUnparsable(e, from);
      return;
    }
    if (msg.kind === 'response') {
      try {
        validateResponse(msg);
      } catch (e) {
        this.counters.droppedResponses++;
        this.log.warn('dropped malformed response', { peer: `${from.address}:${from.port}`, reason: errorText(e) });
        return;
      }
      this.transactions.receive(msg, from);
      return;
    }
    let via: Via;
    try {
      ({ via } = validateRequest(msg, { knownMethods: KNOWN_METHODS }));
    } catch (e) {
      this.rejectUnreadableVia(msg, from);
      this.rejectRequest(msg, e, from);
      return;
    }
    stampVia(msg, from, via);
    this.transactions.receive(msg, from);
  }

  private rejectUnparsable(e: unknown, from: Destination): void {
    this.counters.rejected++;
    const partial = e instanceof SipParseError ? e.partial : undefined;
    if (partial?.kind === 'request' && partial.method !== 'ACK') {
      this.rejectUnreadableVia(partial, from);
      this.rejectRequest(partial, e, from);
      return;
    }
    this.log.warn('dropped unparsable message', { peer: `${from.address}:${from.port}`, reason: errorText(e) });
  }

  /** Stamps the Via of a request about to be rejected, when the Via can be read at all. */
  private rejectUnreadableVia(req: SipRequest, from: Destination): void {
    try {
      stampVia(req, from);
    } catch {
      // The Via itself is unreadable: the reply goes back to the source address.
    }
  }

  /** Answers a request that failed parsing or validation, statelessly (RFC 3261 §8.2). */
  private rejectRequest(req: SipRequest, e: unknown, from: Destination): void {
    if (!(e instanceof SipParseError)) {
      this.log.error('internal error while checking a request', { reason: errorText(e) });
    }
    const status = e instanceof SipParseError ? e.status : 500;
    this.counters.rejected++;
    this.log.warn('rejected request', {
      peer: `${from.address}:${from.port}`,
      method: req.method,
      status,
      code: e instanceof SipParseError ? e.code : 'internal',
      reason: errorText(e),
      callId: req.headers.get('call-id'),
    });
    // §17.1.1.3: an ACK is never answered; without a Via there is nowhere to send a response.
    if (req.method === 'ACK' || !req.headers.has('via')) return;
    const extra: [string, string][] = [];
    if (status === 501 || status === 405) extra.push(['Allow', ALLOW]);
    if (status === 400 && e instanceof SipParseError) extra.push(['Warning', `399 hookswitch "${e.message.replace(/["\\\r\n]/g, "'").slice(0, 120)}"`]);
    const res = buildResponse(req, status, undefined, { headers: extra });
    const dest = destinationFor(req, from);
    this.send(res, dest).catch((err: unknown) => {
      this.counters.sendErrors++;
      this.log.warn('could not send error response', { peer: `${dest.address}:${dest.port}`, reason: errorText(err) });
    });
  }
}

/**
 * The methods the gateway supports (RFC 3261 §20.5), advertised in Allow; the last four only
 * inside calls. SUBSCRIBE: the notifier of the dialog and presence packages (RFC 6665).
 */
export const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, SUBSCRIBE, UPDATE, INFO, REFER, NOTIFY';

/**
 * RFC 3261 §18.2.1: add `received` when the sent-by host is not the packet's source address;
 * RFC 3581 §4: fill in an empty `rport` with the source port (and then always add `received`).
 */
export function stampVia(req: SipRequest, from: Destination, parsed?: Via): void {
  let via = parsed;
  if (via === undefined) {
    const top = req.headers.getAll('via')[0];
    if (top === undefined) return;
    via = parseVia(top);
  }
  const wantsRport = via.rport === null;
  if (via.host.replace(/^\[|\]$/g, '').toLowerCase() === from.address.toLowerCase() && !wantsRport) return;
  // serializeVia writes received and rport from these typed fields.
  via.received = from.address;
  if (wantsRport) via.rport = from.port;
  req.headers.removeFirstValue('via');
  req.headers.prepend('Via', serializeVia(via));
}

/** Where a response to `req` goes: the rules of §18.2.2 over its top Via, or back to the source. */
export function destinationFor(req: SipRequest, from: Destination): Destination {
  const top = req.headers.getAll('via')[0];
  if (top === undefined) return from;
  try {
    const dest = responseDestination(parseVia(top), from, from.connectionId);
    return { transport: dest.transport, address: dest.address, port: dest.port, ...(dest.connectionId ? { connectionId: dest.connectionId } : {}) };
  } catch {
    return from;
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
