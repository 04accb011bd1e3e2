/**
 * The presence and busy-lamp-field wiring for the composition root (gateway.ts): the notifier
 * core (src/presence/presence-store.ts), its SIP dialogs (src/sip/ua/subscription-dialogs.ts),
 * and the feeds into it: the registrar's bindings (through a {@link RegistrationWatch} and a
 * wrapped {@link RegisterHandler}), the configured extensions (exist / removed on reload), and
 * the call layer's dialog states (the B2BUA's `presence` option takes {@link Presence.dialogs}).
 */
import type { DialogStateSink } from '../calls/dialog-events.ts';
import type { Config } from '../config/config.ts';
import { PresenceStore } from '../presence/presence-store.ts';
import { RegistrationWatch } from '../presence/registration-watch.ts';
import { ALLOW_EVENTS } from '../presence/types.ts';
import type { SubscriptionSummary } from '../presence/subscription.ts';
import type { Binding } from '../registrar/binding-store.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import type { ClientTransactionHandlers, Destination } from '../sip/transaction/types.ts';
import { SubscriptionDialogs } from '../sip/ua/subscription-dialogs.ts';
import type { PresenceHandler, RegisterHandler } from '../sip/ua/uas-core.ts';

/** What the presence wiring reads from the gateway. */
export interface PresenceDeps {
  config: Config;
  clock: Clock;
  random: Random;
  logger: Logger;
  /** The configured extension numbers; replaced in place by a reload. */
  extensionNames: readonly string[];
  /** The registrar's live bindings of a user. */
  lookup(user: string): readonly Binding[];
  /** The transaction layer, once the stack exists (NOTIFYs are sent only after a SUBSCRIBE arrived). */
  transactions(): {
    newBranch(): string;
    sendRequest(request: SipRequest, dest: Destination, handlers: ClientTransactionHandlers): unknown;
  };
  localEndpoint(transport: Destination['transport'], remoteAddress: string): { address: string; port: number };
}

/** The presence parts the gateway hands to the UAS core, the registrar path, the B2BUA and the reloader. */
export interface Presence {
  /** For `UasCoreOptions.presence`. */
  handler: PresenceHandler;
  /** For `B2buaOptions.presence`: each local user's dialog states. */
  dialogs: DialogStateSink;
  /** Wraps the registrar so that each processed REGISTER updates the presence of its user. */
  registrar(inner: RegisterHandler): RegisterHandler;
  /** A reload replaced the extensions: subscriptions to removed ones end with `noresource`. */
  extensionsChanged(names: readonly string[]): void;
  /** The active subscriptions, for `status`. */
  subscriptions(): SubscriptionSummary[];
  /** Shutdown: every subscription gets its final NOTIFY (`deactivated`); call before the transports close. */
  close(): void;
}

/** Builds the presence parts of a gateway running `deps.config`. */
export function createPresence(deps: PresenceDeps): Presence {
  const { config, clock, logger } = deps;
  const device = (): string => config.device.extension;
  let known = new Set(deps.extensionNames);
  const exists = (r: string): boolean => r === device() || deps.extensionNames.includes(r);
  let dialogs: SubscriptionDialogs | undefined;
  const store = new PresenceStore({
    clock,
    logger: logger.child('presence'),
    sender: { notify: (n) => dialogs?.notify(n) },
    resources: {
      exists,
      // The device is this box: always there.
      registered: (r) => r === device() || deps.lookup(r).length > 0,
      entity: (r) => `sip:${r}@${config.sip.domain}`,
    },
    limits: {
      minExpires: config.presence.minExpires,
      maxExpires: config.presence.maxExpires,
      defaultExpires: config.presence.maxExpires,
      maxPerSubscriber: config.presence.maxPerSubscriber,
      minNotifyIntervalMs: { dialog: config.presence.dialogNotifyIntervalMs, presence: config.presence.presenceNotifyIntervalMs },
    },
  });
  dialogs = new SubscriptionDialogs({
    core: store,
    transactions: {
      newBranch: () => deps.transactions().newBranch(),
      sendRequest: (request, dest, handlers) => deps.transactions().sendRequest(request, dest, handlers),
    },
    random: deps.random,
    logger: logger.child('presence.sip'),
    userAgent: config.sip.userAgent,
    allowEvents: ALLOW_EVENTS,
    localEndpoint: deps.localEndpoint,
  });
  const watch = new RegistrationWatch({
    clock,
    expiries: (user) => deps.lookup(user).map((b) => b.expiresAt),
    changed: (user, open) => store.registrationChanged(user, open),
  });
  watch.seed(deps.extensionNames);
  const touched = (user: string): void => {
    try {
      watch.touched(user);
    } catch (err) {
      logger.error('presence update after REGISTER failed', { user, reason: err instanceof Error ? err.message : String(err) });
    }
  };
  return {
    handler: dialogs,
    dialogs: store,
    registrar: (inner) => ({
      register(req, username, source): SipResponse | Promise<SipResponse> {
        const res = inner.register(req, username, source);
        if (res instanceof Promise) return res.then((r) => (touched(username), r));
        touched(username);
        return res;
      },
    }),
    extensionsChanged: (names) => {
      const next = new Set(names);
      for (const name of known) if (!next.has(name) && name !== device()) store.resourceRemoved(name);
      known = next;
    },
    subscriptions: () => store.subscriptions(),
    close: () => {
      watch.close();
      store.close();
    },
  };
}
