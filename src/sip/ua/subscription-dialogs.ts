/**
 * The notifier's dialogs (RFC 6665 §4.2): the SIP side of the presence core. A SUBSCRIBE that
 * the UAS core authenticated becomes a dialog (our To tag, RFC 6665 §4.1.2.1) and a
 * {@link SubscribeRequest} for the core; the core's answer becomes the response and the NOTIFY
 * that follows it; every NOTIFY the core asks for later goes out in that dialog through a
 * non-INVITE client transaction, to the flow the SUBSCRIBE came from (RFC 3581 §4: the path a
 * NATed phone opened), and its final status goes back to the core. A dialog is forgotten once
 * its last subscription has ended.
 *
 * Pure in the house sense: no sockets, no timers; transactions, randomness and addresses are
 * injected.
 */
import type { Logger } from '../../runtime/logger.ts';
import type { Random } from '../../runtime/random.ts';
import type { Notification, NotifySender, SubscribeRequest, SubscribeResult } from '../../presence/types.ts';
import { Dialog } from '../dialog/dialog.ts';
import { buildResponse, newTag } from '../dialog/request-builder.ts';
import { parseUint, tagOf } from '../message/header-values.ts';
import type { SipRequest } from '../message/message.ts';
import { formatHostPort, parseUri } from '../message/uri.ts';
import type { ClientTransactionHandlers, Destination, ServerTransaction } from '../transaction/types.ts';
import type { PresenceHandler } from './uas-core.ts';

/** What the dialogs need of the presence core (`PresenceStore`). */
export interface SubscriptionCore {
  subscribe(req: SubscribeRequest): SubscribeResult;
  notifyResponse(key: string, status: number): void;
}

/** Everything {@link SubscriptionDialogs} needs; the composition root provides it. */
export interface SubscriptionDialogsOptions {
  core: SubscriptionCore;
  transactions: {
    newBranch(): string;
    sendRequest(request: SipRequest, dest: Destination, handlers: ClientTransactionHandlers): unknown;
  };
  random: Random;
  logger: Logger;
  userAgent: string;
  /** The `Allow-Events` value (RFC 6665 §8.2.2) of 200 and 489 responses and of OPTIONS. */
  allowEvents: string;
  /** Our address facing `remoteAddress` on `transport`: Via sent-by and Contact. */
  localEndpoint(transport: Destination['transport'], remoteAddress: string): { address: string; port: number };
}

/** One subscription dialog: the dialog state, where its NOTIFYs go, and its live subscriptions. */
interface Entry {
  dialog: Dialog;
  /** RFC 3581 §4: the flow of the last SUBSCRIBE (a refresh from a new NAT port moves it). */
  flow: Destination;
  subscriber: string;
  resource: string;
  /** The subscriptions of this dialog the core holds (RFC 6665 §4.5.2: a dialog may carry several). */
  keys: Set<string>;
}

/** The parts of a SUBSCRIBE the core reads; or the status that refuses it first. */
type ParsedSubscribe =
  | { ok: true; event: string; eventId?: string; expires?: number; accept?: string[] }
  | { ok: false; status: number; reason: string };

const MAX_UINT32 = 0xffffffff;

function dialogKey(callId: string, localTag: string): string {
  return `${callId}\n${localTag}`;
}

/**
 * Reads Event (RFC 6665 §8.2.1: `event-type *( SEMI event-param )`, the `id` parameter), Expires
 * (RFC 3261 §20.19) and Accept (RFC 3261 §20.1).
 */
function parseSubscribe(req: SipRequest): ParsedSubscribe {
  const events = req.headers.getAll('Event');
  // RFC 6665 §8.2.1: a SUBSCRIBE names exactly one package; without one there is nothing to subscribe to.
  if (events.length !== 1) return { ok: false, status: 400, reason: events.length === 0 ? 'Missing Event Header' : 'More Than One Event Header' };
  const [type = '', ...params] = events[0]!.split(';').map((s) => s.trim());
  if (!/^[A-Za-z0-9!%*_+`'~.-]+$/.test(type)) return { ok: false, status: 400, reason: 'Malformed Event Header' };
  let eventId: string | undefined;
  for (const p of params) {
    const m = /^id\s*=\s*"?([^"]*)"?$/i.exec(p);
    if (m) eventId = m[1];
  }
  let expires: number | undefined;
  const expiresText = req.headers.get('Expires');
  if (expiresText !== undefined) {
    try {
      expires = parseUint(expiresText.trim(), MAX_UINT32);
    } catch {
      return { ok: false, status: 400, reason: 'Malformed Expires' };
    }
  }
  const acceptValues = req.headers.getAll('Accept');
  const accept = acceptValues.flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  return {
    ok: true,
    event: type.toLowerCase(),
    ...(eventId !== undefined ? { eventId } : {}),
    ...(expires !== undefined ? { expires } : {}),
    ...(acceptValues.length > 0 ? { accept } : {}),
  };
}

/**
 * The subscription dialogs of the gateway. The UAS core hands it SUBSCRIBEs
 * ({@link PresenceHandler}); the presence core sends NOTIFYs through it ({@link NotifySender}).
 * Create the core with a sender that forwards to {@link notify} of this object.
 */
export class SubscriptionDialogs implements PresenceHandler, NotifySender {
  readonly allowEvents: string;
  private readonly dialogs = new Map<string, Entry>();

  constructor(private readonly opts: SubscriptionDialogsOptions) {
    this.allowEvents = opts.allowEvents;
  }

  /** How many subscription dialogs exist, for `status` and tests. */
  get size(): number {
    return this.dialogs.size;
  }

  /** Whether a request with a To tag belongs to one of our subscription dialogs (RFC 3261 §12.2.2). */
  ownsDialog(req: SipRequest): boolean {
    return this.find(req) !== undefined;
  }

  /**
   * A SUBSCRIBE outside a dialog from the authenticated `subscriber` (RFC 6665 §4.2.1). The
   * resource is the Request-URI's user (an extension number). On 200 the dialog exists with our
   * tag and the immediate NOTIFY (§4.2.1.2) follows the response.
   */
  subscribe(req: SipRequest, tx: ServerTransaction, subscriber: string): void {
    const parsed = parseSubscribe(req);
    if (!parsed.ok) {
      tx.respond(buildResponse(req, parsed.status, parsed.reason));
      return;
    }
    let resource = '';
    try {
      resource = parseUri(req.uri).user ?? '';
    } catch {
      // The stack validated the Request-URI; an unusable one names no resource: 404 from the core.
    }
    const tag = newTag(this.opts.random);
    const contact = this.contactFor(tx.source, resource);
    let dialog: Dialog;
    try {
      dialog = Dialog.asUas(req, tag, contact, { state: 'confirmed', random: this.opts.random, overTls: tx.source.transport === 'tls' });
    } catch (err) {
      tx.respond(buildResponse(req, 400, err instanceof Error ? err.message.slice(0, 80) : 'Bad Request'));
      return;
    }
    const dialogId = dialogKey(dialog.id.callId, tag);
    const result = this.opts.core.subscribe({
      dialogId,
      inDialog: false,
      subscriber,
      resource,
      event: parsed.event,
      ...(parsed.eventId !== undefined ? { eventId: parsed.eventId } : {}),
      ...(parsed.expires !== undefined ? { expires: parsed.expires } : {}),
      ...(parsed.accept !== undefined ? { accept: parsed.accept } : {}),
    });
    if (result.status !== 200) {
      tx.respond(buildResponse(req, result.status, result.reason, { headers: this.refusalHeaders(result) }));
      return;
    }
    const entry: Entry = { dialog, flow: tx.source, subscriber, resource, keys: new Set() };
    this.dialogs.set(dialogId, entry);
    tx.respond(buildResponse(req, 200, undefined, { toTag: tag, headers: this.okHeaders(result.expires, contact) }));
    this.accepted(entry, dialogId, result);
  }

  /**
   * A SUBSCRIBE inside one of our dialogs (RFC 6665 §4.2.1.4): a refresh, or with `Expires: 0`
   * an unsubscribe. The CSeq is checked by the dialog (RFC 3261 §12.2.2: lower is 500).
   */
  inDialog(req: SipRequest, tx: ServerTransaction): void {
    const found = this.find(req);
    if (found === undefined) {
      tx.respond(buildResponse(req, 481));
      return;
    }
    const [dialogId, entry] = found;
    const check = entry.dialog.receiveRequest(req);
    if (!check.accepted) {
      tx.respond(buildResponse(req, check.status, check.reason));
      return;
    }
    const parsed = parseSubscribe(req);
    if (!parsed.ok) {
      tx.respond(buildResponse(req, parsed.status, parsed.reason));
      return;
    }
    entry.flow = tx.source;
    const result = this.opts.core.subscribe({
      dialogId,
      inDialog: true,
      subscriber: entry.subscriber,
      resource: entry.resource,
      event: parsed.event,
      ...(parsed.eventId !== undefined ? { eventId: parsed.eventId } : {}),
      ...(parsed.expires !== undefined ? { expires: parsed.expires } : {}),
      ...(parsed.accept !== undefined ? { accept: parsed.accept } : {}),
    });
    if (result.status !== 200) {
      tx.respond(buildResponse(req, result.status, result.reason, { headers: this.refusalHeaders(result) }));
      if (result.status === 481 && entry.keys.size === 0) this.dialogs.delete(dialogId);
      return;
    }
    tx.respond(buildResponse(req, 200, undefined, { headers: this.okHeaders(result.expires, entry.dialog.localContact ?? '') }));
    this.accepted(entry, dialogId, result);
  }

  /**
   * Sends a NOTIFY the core asked for in its subscription's dialog (RFC 6665 §4.2.2), and reports
   * the final status back (408 when Timer F fires, 503 on a transport error). A `terminated`
   * NOTIFY ends the subscription: the dialog goes with its last one.
   */
  notify(n: Notification): void {
    const entry = this.dialogs.get(n.dialogId);
    if (entry === undefined || entry.dialog.state === 'terminated') {
      this.opts.logger.warn('NOTIFY for a subscription without a dialog not sent', { resource: n.resource, subscriber: n.subscriber });
      if (entry !== undefined) this.dialogs.delete(n.dialogId);
      return;
    }
    if (n.terminated) this.release(n.dialogId, entry, n.key);
    const { request } = entry.dialog.createRequest('NOTIFY', {
      headers: [
        ['Event', n.eventHeader],
        ['Subscription-State', n.subscriptionState],
        ['User-Agent', this.opts.userAgent],
      ],
      body: Buffer.from(n.body, 'utf8'),
      contentType: n.contentType,
    });
    const flow = entry.flow;
    const local = this.opts.localEndpoint(flow.transport, flow.address);
    request.headers.prepend('Via', `SIP/2.0/${flow.transport.toUpperCase()} ${formatHostPort(local.address, local.port)};branch=${this.opts.transactions.newBranch()};rport`);
    const done = (status: number): void => {
      // RFC 6665 §4.2.2: a failed NOTIFY (481, 408, an error) removes the subscription.
      if (status >= 300) this.release(n.dialogId, entry, n.key);
      this.opts.core.notifyResponse(n.key, status);
    };
    const handlers: ClientTransactionHandlers = {
      onResponse: (res) => {
        if (res.status < 200) return;
        entry.dialog.receiveResponse(res);
        done(res.status);
      },
      onTimeout: () => done(408),
      onTransportError: () => done(503),
    };
    try {
      this.opts.transactions.sendRequest(request, flow, handlers);
    } catch (err) {
      this.opts.logger.error('NOTIFY not sent', { resource: n.resource, reason: err instanceof Error ? err.message : String(err) });
    }
  }

  /** The 200 was sent: remember an active subscription, then send the NOTIFY that must follow it. */
  private accepted(entry: Entry, dialogId: string, result: Extract<SubscribeResult, { status: 200 }>): void {
    if (!result.notification.terminated) entry.keys.add(result.key);
    this.notify(result.notification);
  }

  private release(dialogId: string, entry: Entry, key: string): void {
    entry.keys.delete(key);
    if (entry.keys.size === 0 && this.dialogs.get(dialogId) === entry) this.dialogs.delete(dialogId);
  }

  private find(req: SipRequest): [string, Entry] | undefined {
    const callId = req.headers.get('Call-ID');
    const toTag = tagOf(req.headers.get('To') ?? '');
    if (callId === undefined || toTag === undefined) return undefined;
    const id = dialogKey(callId, toTag);
    const entry = this.dialogs.get(id);
    // RFC 3261 §12.2.2: the dialog is matched by Call-ID, our tag and the peer's tag.
    if (entry === undefined || tagOf(req.headers.get('From') ?? '') !== entry.dialog.id.remoteTag) return undefined;
    return [id, entry];
  }

  private contactFor(flow: Destination, resource: string): string {
    const local = this.opts.localEndpoint(flow.transport, flow.address);
    const transport = flow.transport === 'udp' ? '' : `;transport=${flow.transport}`;
    const user = /^[0-9A-Za-z*+\-_.!~]+$/.test(resource) ? `${resource}@` : '';
    return `<sip:${user}${formatHostPort(local.address, local.port)}${transport}>`;
  }

  /** RFC 6665 §4.2.1.1: the 200 carries the granted Expires; a dialog-creating one our Contact. */
  private okHeaders(expires: number, contact: string): [string, string][] {
    return [
      ['Expires', String(expires)],
      ...(contact !== '' ? ([['Contact', contact]] as [string, string][]) : []),
      ['Allow-Events', this.allowEvents],
      ['Server', this.opts.userAgent],
    ];
  }

  /** The headers each refusal needs (RFC 6665 §4.2.1.4 Min-Expires, §8.3.2 Allow-Events; RFC 3261 §21.4.7, §20.33). */
  private refusalHeaders(result: Exclude<SubscribeResult, { status: 200 }>): [string, string][] {
    if (result.status === 423) return [['Min-Expires', String(result.minExpires)]];
    const headers: [string, string][] = [];
    if (result.status === 489) headers.push(['Allow-Events', this.allowEvents]);
    if (result.accept !== undefined) headers.push(['Accept', result.accept]);
    if (result.retryAfter !== undefined) headers.push(['Retry-After', String(result.retryAfter)]);
    return headers;
  }
}
