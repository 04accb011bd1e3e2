/**
 * One subscription, notifier side (RFC 6665 §4.2): its expiry timer, its document version and
 * the rate control of its NOTIFYs. Pure: time comes from the injected Clock, NOTIFYs leave
 * through a callback, the document comes from a callback that reads the resource's state at the
 * moment the NOTIFY is built (so coalesced changes always send the latest state).
 */
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Notification, PresenceEvent, TerminationReason } from './types.ts';

/** The durations a notifier grants (RFC 6665 §4.2.1.1, §4.2.1.4), in seconds. */
export interface ExpiryLimits {
  /** Shorter non-zero requests get 423 with this Min-Expires. */
  minExpires: number;
  /** Longer requests are shortened to this ("MAY shorten ... MUST NOT lengthen"). */
  maxExpires: number;
  /**
   * Used when the SUBSCRIBE has no Expires: the package's default, 3600 s for both `dialog`
   * (RFC 4235 §3.4) and `presence` (RFC 3856 §6.4).
   */
  defaultExpires: number;
}

/** The verdict of {@link grantExpires}. */
export type ExpiryGrant = { ok: true; expires: number } | { ok: false; minExpires: number };

/**
 * The duration to grant a SUBSCRIBE asking for `requested` seconds (undefined: no Expires).
 * RFC 6665 §4.2.1.1: the notifier "MAY shorten the duration but MUST NOT lengthen it";
 * §4.2.1.4: "If the duration specified in a SUBSCRIBE request is unacceptably short, the
 * notifier SHOULD respond with a 423 (Interval Too Brief) response". Zero is always granted:
 * it unsubscribes (§4.2.1.4) or fetches the state once (§4.4.3).
 */
export function grantExpires(requested: number | undefined, limits: ExpiryLimits): ExpiryGrant {
  const wanted = requested ?? limits.defaultExpires;
  if (wanted === 0) return { ok: true, expires: 0 };
  if (wanted < limits.minExpires) return { ok: false, minExpires: limits.minExpires };
  return { ok: true, expires: Math.min(Math.floor(wanted), limits.maxExpires) };
}

/** The key naming a subscription: its dialog, event type and Event `id` (RFC 6665 §8.2.1). */
export function subscriptionKey(dialogId: string, event: PresenceEvent, eventId: string | undefined): string {
  return `${dialogId}\n${event}\n${eventId ?? ''}`;
}

/** A subscription's state as the Subscription-State header field carries it (RFC 6665 §8.2.3). */
export type SubscriptionStateValue = { state: 'active'; expires: number } | { state: 'terminated'; reason: TerminationReason };

/**
 * The Subscription-State header value. RFC 6665 §4.2.2: with `active` the notifier "SHOULD
 * also include ... an 'expires' parameter that indicates the time remaining on the
 * subscription"; with `terminated`, a `reason` (§4.1.3).
 */
export function formatSubscriptionState(value: SubscriptionStateValue): string {
  return value.state === 'active' ? `active;expires=${value.expires}` : `terminated;reason=${value.reason}`;
}

/** A document as {@link SubscriptionOptions.render} returns it. */
export interface RenderedDocument {
  contentType: string;
  body: string;
}

/** Everything a {@link Subscription} needs; the presence store provides it. */
export interface SubscriptionOptions {
  key: string;
  dialogId: string;
  eventId?: string;
  subscriber: string;
  resource: string;
  event: PresenceEvent;
  clock: Clock;
  /** Rate control (RFC 6665 §4.2.2; package rates RFC 4235 §3.10, RFC 3856 §6.10): the least time between NOTIFYs. */
  minNotifyIntervalMs: number;
  /** The current document; `version` starts at 0 and grows by one per NOTIFY (RFC 4235 §4.1). */
  render(version: number): RenderedDocument;
  /** Sends a NOTIFY the subscription decided on by itself (a throttled change, the expiry). */
  send(notification: Notification): void;
  /** The subscription ended (with or without a final NOTIFY): the store forgets it. */
  ended(subscription: Subscription): void;
}

/** A summary for `status`. */
export interface SubscriptionSummary {
  subscriber: string;
  resource: string;
  event: PresenceEvent;
  /** Seconds until the subscription expires. */
  expiresIn: number;
  /** NOTIFYs built so far. */
  notifications: number;
}

/**
 * One active subscription. The store calls {@link start} once, {@link refresh} for each
 * in-dialog SUBSCRIBE, {@link changed} whenever the resource's state changes, and
 * {@link terminate} or {@link drop} to end it. After the end every call is ignored.
 */
export class Subscription {
  private version = 0;
  private expiresAt = 0;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private expiryTimer: TimerHandle | undefined;
  private throttleTimer: TimerHandle | undefined;
  private activeValue = false;

  constructor(private readonly opts: SubscriptionOptions) {}

  get key(): string {
    return this.opts.key;
  }
  get subscriber(): string {
    return this.opts.subscriber;
  }
  get resource(): string {
    return this.opts.resource;
  }
  get event(): PresenceEvent {
    return this.opts.event;
  }
  /** True from {@link start} until the subscription ends. */
  get active(): boolean {
    return this.activeValue;
  }

  /**
   * Activates the subscription for `expires` seconds (> 0) and returns the NOTIFY that
   * RFC 6665 §4.2.1.2 requires "immediately" with the current state, for the SIP side to send
   * after its 200.
   */
  start(expires: number): Notification {
    if (this.activeValue || this.expiryTimer !== undefined) throw new Error(`subscription ${this.opts.key} started twice`);
    if (!(expires > 0)) throw new RangeError(`subscription ${this.opts.key} started with expires ${expires}`);
    this.activeValue = true;
    this.arm(expires);
    return this.build();
  }

  /**
   * A fetch (RFC 6665 §4.4.3, a SUBSCRIBE with `Expires: 0` that creates nothing): the one
   * NOTIFY with the current state and `terminated;reason=timeout`. The subscription never
   * becomes active.
   */
  fetch(): Notification {
    if (this.activeValue) throw new Error(`subscription ${this.opts.key} is active: refresh it instead`);
    return this.build({ state: 'terminated', reason: 'timeout' });
  }

  /**
   * A refresh (RFC 6665 §4.2.1.4): the expiry restarts from now and, as §4.2.1.2 requires, the
   * current state goes out at once (a pending throttled NOTIFY is folded into it). `expires` 0
   * unsubscribes: the returned NOTIFY is the final one, `terminated;reason=timeout`.
   */
  refresh(expires: number): Notification {
    if (!this.activeValue) throw new Error(`subscription ${this.opts.key} refreshed after its end`);
    if (expires === 0) return this.terminate('timeout');
    this.arm(expires);
    return this.build();
  }

  /**
   * The resource's state changed. RFC 6665 §4.2.2 rate control: at most one NOTIFY per
   * `minNotifyIntervalMs`; changes inside the interval are coalesced into one NOTIFY at its end,
   * which renders the state as it is then.
   */
  changed(): void {
    if (!this.activeValue || this.throttleTimer !== undefined) return;
    const wait = this.lastSentAt + this.opts.minNotifyIntervalMs - this.opts.clock.now();
    if (wait <= 0) {
      this.opts.send(this.build());
      return;
    }
    this.throttleTimer = this.opts.clock.setTimer(
      wait,
      () => {
        this.throttleTimer = undefined;
        if (this.activeValue) this.opts.send(this.build());
      },
      `presence notify ${this.opts.resource}`,
    );
  }

  /**
   * Ends the subscription and returns its final NOTIFY (RFC 6665 §4.2.2: "the notifier MUST
   * send a NOTIFY request with a 'Subscription-State' value of 'terminated'"), carrying the
   * current state. Never throttled: a pending coalesced NOTIFY is folded into it. The caller
   * sends it (or returns it with the response to an unsubscribe).
   */
  terminate(reason: TerminationReason): Notification {
    if (!this.activeValue) throw new Error(`subscription ${this.opts.key} terminated twice`);
    this.stop();
    const n = this.build({ state: 'terminated', reason });
    this.opts.ended(this);
    return n;
  }

  /**
   * Ends the subscription without a NOTIFY: a NOTIFY failed (RFC 6665 §4.2.2: on a 481 or a
   * transaction timeout the notifier removes the subscription), or the gateway forgets it.
   */
  drop(): void {
    if (!this.activeValue) return;
    this.stop();
    this.opts.ended(this);
  }

  summary(): SubscriptionSummary {
    return {
      subscriber: this.opts.subscriber,
      resource: this.opts.resource,
      event: this.opts.event,
      expiresIn: this.remainingSeconds(),
      notifications: this.version,
    };
  }

  private arm(expires: number): void {
    this.expiryTimer?.cancel();
    this.expiresAt = this.opts.clock.now() + expires * 1000;
    this.expiryTimer = this.opts.clock.setTimer(
      expires * 1000,
      () => {
        this.expiryTimer = undefined;
        // RFC 6665 §4.2.1.4 / §4.1.3: not refreshed in time, "reason" is "timeout".
        if (this.activeValue) this.opts.send(this.terminate('timeout'));
      },
      `presence expiry ${this.opts.resource}`,
    );
  }

  private stop(): void {
    this.activeValue = false;
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
    this.throttleTimer?.cancel();
    this.throttleTimer = undefined;
  }

  /**
   * Whole seconds left, rounded down (after rounding to whole milliseconds, so the NOTIFY that
   * follows a 200 in the same tick repeats its Expires). RFC 6665 §4.2.2: the `expires`
   * parameter "indicates the time remaining on the subscription", and subscribers schedule the
   * refresh from it (libre, under baresip 1.0.0, at 90 % of the value): rounding up would place
   * that refresh up to a second after the subscription already ended.
   */
  private remainingSeconds(): number {
    return Math.max(0, Math.floor(Math.round(this.expiresAt - this.opts.clock.now()) / 1000));
  }

  private build(state?: SubscriptionStateValue): Notification {
    this.throttleTimer?.cancel();
    this.throttleTimer = undefined;
    const value = state ?? { state: 'active', expires: this.remainingSeconds() };
    const doc = this.opts.render(this.version);
    this.version += 1;
    this.lastSentAt = this.opts.clock.now();
    const o = this.opts;
    return {
      key: o.key,
      dialogId: o.dialogId,
      subscriber: o.subscriber,
      resource: o.resource,
      event: o.event,
      eventHeader: o.eventId === undefined ? o.event : `${o.event};id=${o.eventId}`,
      subscriptionState: formatSubscriptionState(value),
      terminated: value.state === 'terminated',
      contentType: doc.contentType,
      body: doc.body,
    };
  }
}
