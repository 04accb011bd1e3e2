/**
 * The notifier for the `dialog` (RFC 4235) and `presence` (RFC 3856) event packages: the
 * subscriptions by resource (an extension or the device), the dialog state each resource is in,
 * and the fan-out of changes to the subscriptions. Two sources feed it: the call layer reports
 * each dialog of a resource ({@link PresenceStore.dialogChanged}), the registrar reports when a
 * user's registration appears or goes ({@link PresenceStore.registrationChanged}). The SIP side
 * hands it parsed SUBSCRIBEs ({@link PresenceStore.subscribe}) and sends the NOTIFYs it asks for.
 */
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { canAdvance, DIALOG_INFO_CONTENT_TYPE, encodeDialogInfo, type DialogInfo } from './dialog-info.ts';
import { encodePidf, PIDF_CONTENT_TYPE, tupleIdFor } from './pidf.ts';
import {
  grantExpires,
  Subscription,
  subscriptionKey,
  type ExpiryLimits,
  type RenderedDocument,
  type SubscriptionSummary,
} from './subscription.ts';
import type {
  NotifySender,
  PresenceEvent,
  ResourceDirectory,
  SubscribeRequest,
  SubscribeResult,
  TerminationReason,
} from './types.ts';

/** Durations, rates and limits of the notifier. */
export interface PresenceLimits extends ExpiryLimits {
  /** Active subscriptions one subscriber may hold; beyond, 403. */
  maxPerSubscriber: number;
  /** Active subscriptions in all; beyond, 503 with Retry-After. */
  maxTotal: number;
  /** Least time between two NOTIFYs of one subscription, per package (RFC 6665 §4.2.2). */
  minNotifyIntervalMs: Record<PresenceEvent, number>;
}

/**
 * Defaults. Expiry: the packages' default of 3600 s (RFC 4235 §3.4, RFC 3856 §6.4) is also the
 * most granted; 60 s is the least (a local choice: RFC 6665 sets none). Rates: RFC 4235 §3.10,
 * "SHOULD NOT generate notifications for a single subscriber at a rate faster than once every
 * 1 second"; RFC 3856 §6.10, not more than "once every five seconds" per presentity. A BLF
 * phone watches a few dozen keys, hence 64 per subscriber.
 */
export const DEFAULT_PRESENCE_LIMITS: PresenceLimits = {
  minExpires: 60,
  maxExpires: 3600,
  defaultExpires: 3600,
  maxPerSubscriber: 64,
  maxTotal: 1024,
  minNotifyIntervalMs: { dialog: 1000, presence: 5000 },
};

/** Seconds a 503 asks a subscriber to wait (RFC 3261 §20.33 Retry-After) when the total is reached. */
const RETRY_AFTER_SECONDS = 60;

/** Dialogs kept per resource; a call layer that never reports `terminated` cannot grow it further. */
const MAX_DIALOGS_PER_RESOURCE = 32;

/** Ended dialogs kept per resource until every subscription has reported them. */
const MAX_ENDED_PER_RESOURCE = 32;

/** Ids of ended dialogs remembered per resource, so that a late report cannot revive one. */
const MAX_GONE_PER_RESOURCE = 64;

/** Everything {@link PresenceStore} needs; the composition root provides it. */
export interface PresenceStoreOptions {
  clock: Clock;
  logger: Logger;
  sender: NotifySender;
  resources: ResourceDirectory;
  limits?: Partial<PresenceLimits>;
  /** Whether `subscriber` may watch `resource`; default: every authenticated user may. Refused: 403. */
  authorize?(subscriber: string, resource: string, event: PresenceEvent): boolean;
  /**
   * Policy when `user`'s registration goes away: the reason to end the subscriptions it holds
   * with, or undefined to keep them. Default: end them with `deactivated` (RFC 6665 §4.1.3:
   * the subscriber "SHOULD retry immediately", so a phone that re-registers subscribes again).
   */
  onSubscriberUnregistered?(user: string): TerminationReason | undefined;
}

interface EndedDialog {
  dialog: DialogInfo;
  seq: number;
}

/** What is known about one resource. */
interface ResourceState {
  dialogs: Map<string, DialogInfo>;
  /** Dialogs that reached `terminated`, until every subscription has sent a document since. */
  ended: Map<string, EndedDialog>;
  /** Ids of recently ended dialogs (RFC 4235 §3.7.1: nothing leaves `terminated`). */
  gone: Set<string>;
  /** Counts changes; each subscription remembers the value its last document saw. */
  seq: number;
}

interface Entry {
  sub: Subscription;
  /** The resource's `seq` when this subscription's last document was rendered. */
  renderedSeq: number;
}

const ACCEPTS: Record<PresenceEvent, string> = { dialog: DIALOG_INFO_CONTENT_TYPE, presence: PIDF_CONTENT_TYPE };

function isPresenceEvent(event: string): event is PresenceEvent {
  return event === 'dialog' || event === 'presence';
}

/** Whether an Accept list admits `type` (RFC 3261 §20.1: `*\/*`, `type/*`, parameters ignored). */
function accepts(accept: readonly string[], type: string): boolean {
  const [major] = type.split('/');
  return accept.some((a) => {
    const t = a.split(';')[0]!.trim().toLowerCase();
    return t === type || t === '*/*' || t === `${major}/*`;
  });
}

/** The notifier. One per gateway; see the module comment. */
export class PresenceStore {
  private readonly limits: PresenceLimits;
  private readonly entries = new Map<string, Entry>();
  private readonly byResource = new Map<string, Set<Entry>>();
  private readonly perSubscriber = new Map<string, number>();
  private readonly states = new Map<string, ResourceState>();

  constructor(private readonly opts: PresenceStoreOptions) {
    this.limits = {
      ...DEFAULT_PRESENCE_LIMITS,
      ...opts.limits,
      minNotifyIntervalMs: { ...DEFAULT_PRESENCE_LIMITS.minNotifyIntervalMs, ...opts.limits?.minNotifyIntervalMs },
    };
  }

  /**
   * A SUBSCRIBE, parsed and authenticated by the SIP side. Returns the response to send and,
   * with a 200, the NOTIFY to send right after it (RFC 6665 §4.2.1.2). A new subscription
   * (no To tag) is created; one inside a dialog refreshes or, with `Expires: 0`, ends it.
   * Success is always 200: RFC 6665 §4.2.1.1 accepts a subscription with 200 OK, and the 202
   * of RFC 3265 is deprecated (RFC 6665 §8.3.1; subscribers treat a 202 like a 200).
   */
  subscribe(req: SubscribeRequest): SubscribeResult {
    if (!isPresenceEvent(req.event)) {
      // RFC 6665 §4.2.1.1: an event package the notifier does not understand gets 489.
      return { status: 489, reason: 'Bad Event' };
    }
    const event = req.event;
    const key = subscriptionKey(req.dialogId, event, req.eventId);
    const existing = this.entries.get(key);
    if (existing !== undefined) return this.refresh(existing.sub, req);
    if (req.inDialog) {
      // RFC 6665 §4.2.1.4 with RFC 3261 §12.2.2: a refresh for a subscription that no longer exists.
      return { status: 481, reason: 'Subscription Does Not Exist' };
    }
    if (!this.opts.resources.exists(req.resource)) return { status: 404, reason: 'Not Found' };
    if (this.opts.authorize && !this.opts.authorize(req.subscriber, req.resource, event)) {
      // RFC 6665 §4.2.1.3: a subscriber that is not authorized is refused.
      this.opts.logger.info('subscription refused by policy', { subscriber: req.subscriber, resource: req.resource, event });
      return { status: 403, reason: 'Forbidden' };
    }
    if (req.accept !== undefined && req.accept.length > 0 && !accepts(req.accept, ACCEPTS[event])) {
      // RFC 3261 §21.4.7: the package's only body type is not among the acceptable ones.
      return { status: 406, reason: 'Not Acceptable', accept: ACCEPTS[event] };
    }
    const grant = grantExpires(req.expires, this.limits);
    if (!grant.ok) return { status: 423, reason: 'Interval Too Brief', minExpires: grant.minExpires };

    const entry = this.createEntry(req, event, key);
    if (grant.expires === 0) {
      // RFC 6665 §4.4.3: a fetch. One NOTIFY with the state, nothing is kept.
      return { status: 200, expires: 0, key, notification: entry.sub.fetch() };
    }
    if (this.entries.size >= this.limits.maxTotal) {
      this.opts.logger.warn('subscription refused: limit reached', { subscriber: req.subscriber, limit: this.limits.maxTotal });
      return { status: 503, reason: 'Too Many Subscriptions', retryAfter: RETRY_AFTER_SECONDS };
    }
    if ((this.perSubscriber.get(req.subscriber) ?? 0) >= this.limits.maxPerSubscriber) {
      this.opts.logger.warn('subscription refused: limit per subscriber reached', {
        subscriber: req.subscriber,
        limit: this.limits.maxPerSubscriber,
      });
      return { status: 403, reason: 'Too Many Subscriptions' };
    }
    this.entries.set(key, entry);
    this.setOf(req.resource).add(entry);
    this.perSubscriber.set(req.subscriber, (this.perSubscriber.get(req.subscriber) ?? 0) + 1);
    this.opts.logger.info('subscription created', { subscriber: req.subscriber, resource: req.resource, event, expires: grant.expires });
    return { status: 200, expires: grant.expires, key, notification: entry.sub.start(grant.expires) };
  }

  /**
   * The final response to a NOTIFY the store asked for (408 for a transaction timeout). RFC
   * 6665 §4.2.2: a NOTIFY that fails (a timeout, a 481, another error) removes the subscription,
   * without a further NOTIFY. 2xx and provisional responses change nothing.
   */
  notifyResponse(key: string, status: number): void {
    if (status < 300) return;
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.opts.logger.info('subscription removed: NOTIFY failed', { subscriber: entry.sub.subscriber, resource: entry.sub.resource, status });
    entry.sub.drop();
  }

  /**
   * A dialog of `resource` changed state (the call layer: a call to or from an extension or the
   * device). Report every transition with the same `dialog.id`; moves the dialog FSM can not
   * make (RFC 4235 §3.7.1: backwards, or out of `terminated`) are ignored. A `terminated` dialog
   * is reported once more to the subscriptions that have not seen it end, then forgotten.
   */
  dialogChanged(resource: string, dialog: DialogInfo): void {
    const r = this.stateOf(resource);
    const prev = r.dialogs.get(dialog.id);
    if (prev === undefined && r.gone.has(dialog.id)) {
      this.opts.logger.debug('report for an ended dialog ignored', { resource, dialog: dialog.id, state: dialog.state });
      return;
    }
    if (prev !== undefined && !canAdvance(prev.state, dialog.state)) {
      this.opts.logger.debug('dialog state ignored', { resource, dialog: dialog.id, from: prev.state, to: dialog.state });
      return;
    }
    if (prev !== undefined && JSON.stringify(prev) === JSON.stringify(dialog)) return;
    r.seq += 1;
    if (dialog.state === 'terminated') {
      r.dialogs.delete(dialog.id);
      r.ended.set(dialog.id, { dialog, seq: r.seq });
      r.gone.add(dialog.id);
      if (r.gone.size > MAX_GONE_PER_RESOURCE) r.gone.delete(r.gone.values().next().value as string);
      this.purgeEnded(resource, r);
    } else {
      r.dialogs.set(dialog.id, dialog);
      if (r.dialogs.size > MAX_DIALOGS_PER_RESOURCE) {
        const oldest = r.dialogs.keys().next().value as string;
        r.dialogs.delete(oldest);
        this.opts.logger.warn('dialog dropped: too many for one resource', { resource, dialog: oldest });
      }
    }
    this.fanOut(resource, 'dialog');
  }

  /**
   * `user`'s registration appeared (`open`) or went away. Call it after the registrar's
   * bindings changed: the presence documents read {@link ResourceDirectory.registered}. When it
   * went away, the subscriptions `user` holds end per {@link PresenceStoreOptions.onSubscriberUnregistered}.
   */
  registrationChanged(user: string, open: boolean): void {
    const reason = open ? undefined : this.opts.onSubscriberUnregistered ? this.opts.onSubscriberUnregistered(user) : 'deactivated';
    if (reason !== undefined) {
      for (const entry of [...this.entries.values()]) {
        if (entry.sub.subscriber === user) this.opts.sender.notify(entry.sub.terminate(reason));
      }
    }
    this.fanOut(user, 'presence');
  }

  /**
   * `resource` no longer exists (an extension removed from the configuration): its
   * subscriptions end with `noresource` (RFC 6665 §4.1.3: "Clients SHOULD NOT attempt to
   * re-subscribe") and its dialog state is forgotten.
   */
  resourceRemoved(resource: string): void {
    for (const entry of [...(this.byResource.get(resource) ?? [])]) this.opts.sender.notify(entry.sub.terminate('noresource'));
    this.states.delete(resource);
  }

  /** Ends every subscription with a final NOTIFY (shutdown: `deactivated`, RFC 6665 §4.1.3). */
  close(reason: TerminationReason = 'deactivated'): void {
    for (const entry of [...this.entries.values()]) this.opts.sender.notify(entry.sub.terminate(reason));
  }

  /** The active subscriptions, for `status`. */
  subscriptions(): SubscriptionSummary[] {
    return [...this.entries.values()].map((e) => e.sub.summary());
  }

  /** The dialogs `resource` is in now (not the ended ones). */
  dialogsOf(resource: string): DialogInfo[] {
    return [...(this.states.get(resource)?.dialogs.values() ?? [])];
  }

  private createEntry(req: SubscribeRequest, event: PresenceEvent, key: string): Entry {
    const resource = req.resource;
    const entity = this.opts.resources.entity(resource);
    const entry: Entry = { sub: undefined as unknown as Subscription, renderedSeq: this.stateOf(resource).seq };
    const render = (version: number): RenderedDocument => {
      if (event === 'presence') {
        const basic = this.opts.resources.registered(resource) ? 'open' : 'closed';
        return { contentType: PIDF_CONTENT_TYPE, body: encodePidf({ entity, tupleId: tupleIdFor(resource), basic, contact: entity }) };
      }
      const r = this.stateOf(resource);
      const dialogs = [...r.dialogs.values()];
      for (const e of r.ended.values()) if (e.seq > entry.renderedSeq) dialogs.push(e.dialog);
      entry.renderedSeq = r.seq;
      this.purgeEnded(resource, r);
      return { contentType: DIALOG_INFO_CONTENT_TYPE, body: encodeDialogInfo({ entity, version, state: 'full', dialogs }) };
    };
    entry.sub = new Subscription({
      key,
      dialogId: req.dialogId,
      ...(req.eventId !== undefined ? { eventId: req.eventId } : {}),
      subscriber: req.subscriber,
      resource,
      event,
      clock: this.opts.clock,
      minNotifyIntervalMs: this.limits.minNotifyIntervalMs[event],
      render,
      send: (n) => this.opts.sender.notify(n),
      ended: () => this.forget(entry),
    });
    return entry;
  }

  private refresh(sub: Subscription, req: SubscribeRequest): SubscribeResult {
    const grant = grantExpires(req.expires, this.limits);
    if (!grant.ok) return { status: 423, reason: 'Interval Too Brief', minExpires: grant.minExpires };
    if (grant.expires === 0) {
      this.opts.logger.info('subscription ended by the subscriber', { subscriber: sub.subscriber, resource: sub.resource, event: sub.event });
    }
    return { status: 200, expires: grant.expires, key: sub.key, notification: sub.refresh(grant.expires) };
  }

  private forget(entry: Entry): void {
    if (!this.entries.delete(entry.sub.key)) return;
    const set = this.byResource.get(entry.sub.resource);
    set?.delete(entry);
    if (set?.size === 0) this.byResource.delete(entry.sub.resource);
    const n = (this.perSubscriber.get(entry.sub.subscriber) ?? 1) - 1;
    if (n > 0) this.perSubscriber.set(entry.sub.subscriber, n);
    else this.perSubscriber.delete(entry.sub.subscriber);
    const r = this.states.get(entry.sub.resource);
    if (r !== undefined) this.purgeEnded(entry.sub.resource, r);
  }

  private fanOut(resource: string, event: PresenceEvent): void {
    for (const entry of [...(this.byResource.get(resource) ?? [])]) if (entry.sub.event === event) entry.sub.changed();
  }

  private setOf(resource: string): Set<Entry> {
    let set = this.byResource.get(resource);
    if (set === undefined) this.byResource.set(resource, (set = new Set()));
    return set;
  }

  private stateOf(resource: string): ResourceState {
    let r = this.states.get(resource);
    if (r === undefined) this.states.set(resource, (r = { dialogs: new Map(), ended: new Map(), gone: new Set(), seq: 0 }));
    return r;
  }

  /** Forgets ended dialogs every dialog subscription of the resource has reported (and the oldest past the cap). */
  private purgeEnded(resource: string, r: ResourceState): void {
    let oldest = r.seq;
    for (const e of this.byResource.get(resource) ?? []) if (e.sub.event === 'dialog') oldest = Math.min(oldest, e.renderedSeq);
    for (const [id, e] of r.ended) if (e.seq <= oldest) r.ended.delete(id);
    while (r.ended.size > MAX_ENDED_PER_RESOURCE) r.ended.delete(r.ended.keys().next().value as string);
    if (r.dialogs.size === 0 && r.ended.size === 0 && r.gone.size === 0 && !this.byResource.has(resource)) this.states.delete(resource);
  }
}
