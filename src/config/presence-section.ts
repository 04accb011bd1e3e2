/**
 * Validation of the `presence` section: the durations, rates and limits of the notifier for the
 * `dialog` (RFC 4235) and `presence` (RFC 3856) event packages (src/presence/presence-store.ts).
 */
import { DEFAULT_PRESENCE_LIMITS } from '../presence/presence-store.ts';
import { isObject, show, wholeNumber } from './sections.ts';

type Json = unknown;

/** The `presence` settings. */
export interface PresenceConfig {
  /** Shorter subscriptions get 423 with this Min-Expires (RFC 6665 §4.2.1.4), seconds. */
  minExpires: number;
  /** Longer subscriptions are shortened to this (RFC 6665 §4.2.1.1), seconds. */
  maxExpires: number;
  /** Active subscriptions one subscriber may hold; beyond, 403. */
  maxPerSubscriber: number;
  /** Least time between two `dialog` NOTIFYs of one subscription (RFC 4235 §3.10 suggests 1 s), ms. */
  dialogNotifyIntervalMs: number;
  /** Least time between two `presence` NOTIFYs of one subscription (RFC 3856 §6.10 suggests 5 s), ms. */
  presenceNotifyIntervalMs: number;
}

/** The defaults (those of the presence core), used when the section or one of its keys is absent. */
export const DEFAULT_PRESENCE: PresenceConfig = {
  minExpires: DEFAULT_PRESENCE_LIMITS.minExpires,
  maxExpires: DEFAULT_PRESENCE_LIMITS.maxExpires,
  maxPerSubscriber: DEFAULT_PRESENCE_LIMITS.maxPerSubscriber,
  dialogNotifyIntervalMs: DEFAULT_PRESENCE_LIMITS.minNotifyIntervalMs.dialog,
  presenceNotifyIntervalMs: DEFAULT_PRESENCE_LIMITS.minNotifyIntervalMs.presence,
};

/** The bounds of each key: [min, max]. */
export const PRESENCE_BOUNDS: Readonly<Record<keyof PresenceConfig, readonly [number, number]>> = {
  minExpires: [1, 86_400],
  maxExpires: [1, 86_400],
  maxPerSubscriber: [1, 1024],
  dialogNotifyIntervalMs: [0, 60_000],
  presenceNotifyIntervalMs: [0, 60_000],
};

const KEYS = Object.keys(PRESENCE_BOUNDS) as (keyof PresenceConfig)[];

/**
 * Checks `input.presence` and writes the accepted values into `cfg.presence` (which the caller
 * has filled with {@link DEFAULT_PRESENCE}). Each problem is one line naming the key, the rule
 * and the value, pushed onto `problems`. `minExpires` may not exceed `maxExpires`.
 */
export function checkPresenceSection(input: Record<string, Json>, cfg: { presence: PresenceConfig }, problems: string[]): void {
  const p = input.presence;
  if (p === undefined) return;
  if (!isObject(p)) {
    problems.push(`presence must be an object (got ${show(p)})`);
    return;
  }
  for (const k of Object.keys(p)) if (!(KEYS as string[]).includes(k)) problems.push(`presence.${k} is not a known setting`);
  for (const k of KEYS) {
    if (p[k] === undefined) continue;
    const [min, max] = PRESENCE_BOUNDS[k];
    const v = wholeNumber(p[k], `presence.${k}`, min, max, problems);
    if (v !== undefined) cfg.presence[k] = v;
  }
  if (cfg.presence.minExpires > cfg.presence.maxExpires) {
    problems.push(`presence.minExpires must be <= presence.maxExpires (got ${cfg.presence.minExpires} > ${cfg.presence.maxExpires})`);
  }
}
