/**
 * The contract between the presence core (`src/presence/`) and the SIP side: what a SUBSCRIBE
 * becomes once parsed and authenticated, what the core asks the SIP side to send (NOTIFY), and
 * what the registrar and the call layer report. The SIP side owns the subscription dialogs;
 * the core owns the subscriptions' state, timers and documents.
 */

/** The event packages served (RFC 6665 §7): `dialog` (RFC 4235) and `presence` (RFC 3856). */
export type PresenceEvent = 'dialog' | 'presence';

/** The `Allow-Events` value (RFC 6665 §8.2.2) for OPTIONS answers, 489 responses and NOTIFYs. */
export const ALLOW_EVENTS = 'dialog, presence';

/**
 * The `reason` of a terminated subscription (RFC 6665 §4.1.3, Subscription-State):
 * - `timeout`: not refreshed before it expired, or unsubscribed with `Expires: 0`.
 * - `deactivated`: ended by the notifier; the subscriber SHOULD retry immediately.
 * - `noresource`: the monitored resource no longer exists; the subscriber SHOULD NOT retry.
 * - `rejected`: authorization policy changed; the subscriber SHOULD NOT retry.
 */
export type TerminationReason = 'timeout' | 'deactivated' | 'noresource' | 'rejected';

/** A SUBSCRIBE the SIP side has parsed and authenticated (RFC 6665 §4.2.1). */
export interface SubscribeRequest {
  /**
   * The subscription's dialog (RFC 3261 §12: Call-ID, our To tag, the subscriber's From tag), as
   * a string the SIP side chooses. Together with the Event type and `id` parameter it names the
   * subscription (RFC 6665 §8.2.1: the dialog, the event type and the `id` parameter tell
   * subscriptions apart).
   */
  dialogId: string;
  /** The Event header's `id` parameter, when present (RFC 6665 §8.2.1). */
  eventId?: string;
  /**
   * True for a SUBSCRIBE inside a dialog (it carried a To tag): a refresh or an unsubscribe.
   * Such a request for no known subscription gets 481 (RFC 6665 §4.2.1.4; RFC 3261 §12.2.2).
   */
  inDialog: boolean;
  /** The authenticated user that subscribes (the limits per subscriber count these). */
  subscriber: string;
  /** The Request-URI's user: an extension number or the device's extension. */
  resource: string;
  /** The Event header's type, lower-cased; anything but a {@link PresenceEvent} gets 489. */
  event: string;
  /** The Expires header in seconds; undefined when absent (the package default applies). */
  expires?: number;
  /** The media types of the Accept header fields; undefined when there is none (RFC 6665 §4.2.1.1). */
  accept?: readonly string[];
}

/** One NOTIFY to send inside a subscription's dialog (RFC 6665 §4.2.2). */
export interface Notification {
  /** The subscription's key (see `subscriptionKey` in subscription.ts); hand it back to `notifyResponse`. */
  key: string;
  /** The dialog the SIP side named in {@link SubscribeRequest.dialogId}. */
  dialogId: string;
  subscriber: string;
  resource: string;
  event: PresenceEvent;
  /** The Event header value: the type and, when the SUBSCRIBE had one, `;id=` (RFC 6665 §8.2.1). */
  eventHeader: string;
  /** The Subscription-State header value, e.g. `active;expires=3600`, `terminated;reason=timeout`. */
  subscriptionState: string;
  /** True for the final NOTIFY: once it is answered the SIP side forgets the subscription's dialog. */
  terminated: boolean;
  contentType: string;
  /** The document, UTF-8 text. */
  body: string;
}

/**
 * Sends NOTIFYs. The SIP side implements it: a NOTIFY request inside the subscription's dialog
 * (a UAC transaction), with Event, Subscription-State, Content-Type and the body, and then
 * reports the final response through `PresenceStore.notifyResponse(key, status)` (408 for a
 * transaction timeout). Called synchronously from the core; never call back into it from here.
 */
export interface NotifySender {
  notify(notification: Notification): void;
}

/**
 * What the core asks about resources. The gateway answers from its configuration and the
 * registrar; the answers are read when a subscription starts, and changes are pushed with
 * `registrationChanged` and `resourceRemoved`.
 */
export interface ResourceDirectory {
  /** Whether `resource` (an extension or the device) exists; unknown resources get 404. */
  exists(resource: string): boolean;
  /** Whether `resource` has a registration now (the device always has: it is this box). */
  registered(resource: string): boolean;
  /** The resource's URI for the documents' `entity`, e.g. `sip:101@hookswitch.local`. */
  entity(resource: string): string;
}

/** The outcome of a SUBSCRIBE: the response to send, and the NOTIFY to send right after it. */
export type SubscribeResult =
  | {
      status: 200;
      /** The granted duration for the response's Expires header (RFC 6665 §4.2.1.1). */
      expires: number;
      /** The subscription's key. */
      key: string;
      /**
       * RFC 6665 §4.2.1.2: "Upon successfully accepting or refreshing a subscription, notifiers
       * MUST send a NOTIFY request immediately". Send it after the 200; it is `terminated` for an
       * unsubscribe or a fetch (`Expires: 0`, §4.4.3).
       */
      notification: Notification;
    }
  /** RFC 6665 §4.2.1.4: the interval is too brief; answer with Min-Expires. */
  | { status: 423; reason: string; minExpires: number }
  /** 489 carries `Allow-Events: {@link ALLOW_EVENTS}` (RFC 6665 §8.3.2); 406 carries Accept; 503 carries Retry-After. */
  | { status: 403 | 404 | 406 | 481 | 489 | 503; reason: string; retryAfter?: number; accept?: string };
