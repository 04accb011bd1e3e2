/**
 * What a configuration reload changes: compares the running {@link Config} with a freshly read
 * one and sorts every changed key into "applied live" or "needs a restart". Pure: no I/O.
 *
 * Keys are reported as dotted paths. An area whose settings all share one fate is reported as a
 * whole (`extensions`, `trunks`, `security`); the areas in {@link SPLIT_AREAS} are reported per
 * setting (`sip.port`, `media.codecs`). A key this table does not know needs a restart: a new
 * setting is never silently taken as applied.
 */
import type { Config, TrunkConfig } from '../config/config.ts';

/** What happens to a changed key on reload. */
export type ReloadFate = 'live' | 'restart';

/**
 * The keys that take effect without a restart and without dropping calls or registrations.
 * Calls in progress keep the dial plan, codecs and timers they started with.
 */
const FATES: Readonly<Record<string, ReloadFate>> = {
  extensions: 'live',
  trunks: 'live',
  dialplan: 'live',
  emergencyNumbers: 'live',
  security: 'live',
  calls: 'live',
  dtmf: 'live',
  'log.level': 'live',
  'media.codecs': 'live',
  'media.rtpTimeoutSeconds': 'live',
  // Read when a call starts (legSecurity over the running config); calls in progress keep theirs.
  'media.srtp': 'live',
  'media.srtpOverPlainSignalling': 'live',
  'discovery.name': 'live',
  'registrar.qualifySeconds': 'live',
  // The presence core's limits are fixed when it is made; subscriptions outlive a reload.
  presence: 'restart',
  messages: 'live',
};

/** Areas compared setting by setting, because their settings differ in fate. */
const SPLIT_AREAS: ReadonlySet<string> = new Set(['sip', 'media', 'registrar', 'discovery', 'log']);

/** The outcome of {@link diffConfig}: changed keys, each in exactly one list, in config order. */
export interface ConfigDiff {
  applied: string[];
  restartNeeded: string[];
}

/** How the trunks list changed, by trunk name (a renamed trunk is one removed and one added). */
export interface TrunkChanges {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
}

/** Deep equality of JSON-like values (what a parsed config holds). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => sameValue(x, b[i]));
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!sameValue(a[k], b[k])) return false;
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The fate of one key path: its own entry, else its area's, else a restart. */
export function fateOf(path: string): ReloadFate {
  return FATES[path] ?? FATES[path.split('.')[0]!] ?? 'restart';
}

/** Sorts the keys that differ between `running` and `next` into applied and restart-needed. */
export function diffConfig(running: Config, next: Config): ConfigDiff {
  const out: ConfigDiff = { applied: [], restartNeeded: [] };
  const report = (path: string): void => {
    (fateOf(path) === 'live' ? out.applied : out.restartNeeded).push(path);
  };
  const a = running as unknown as Record<string, unknown>;
  const b = next as unknown as Record<string, unknown>;
  for (const key of unionKeys(a, b)) {
    const before = a[key];
    const after = b[key];
    if (SPLIT_AREAS.has(key) && isPlainObject(before) && isPlainObject(after)) {
      for (const sub of unionKeys(before, after)) if (!sameValue(before[sub], after[sub])) report(`${key}.${sub}`);
    } else if (!sameValue(before, after)) {
      report(key);
    }
  }
  return out;
}

function unionKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])];
}

/** Which trunks a reload adds, removes, changes (any setting) or leaves alone, by name. */
export function diffTrunks(running: readonly TrunkConfig[], next: readonly TrunkConfig[]): TrunkChanges {
  const before = new Map(running.map((t) => [t.name, t]));
  const after = new Map(next.map((t) => [t.name, t]));
  const out: TrunkChanges = { added: [], removed: [], changed: [], unchanged: [] };
  for (const t of next) {
    const old = before.get(t.name);
    if (!old) out.added.push(t.name);
    else (sameValue(old, t) ? out.unchanged : out.changed).push(t.name);
  }
  for (const t of running) if (!after.has(t.name)) out.removed.push(t.name);
  return out;
}

/**
 * Writes the values of the `applied` keys of `next` into `running`, in place: an object keeps
 * its identity (its keys are replaced) and so does an array (its items are replaced), so every
 * component holding a reference into the running config sees the new value. Keys that need a
 * restart are left as they are: the running config keeps describing what actually runs.
 */
export function adoptLiveKeys(running: Config, next: Config, applied: readonly string[]): void {
  for (const path of applied) {
    const parts = path.split('.');
    const last = parts.pop()!;
    let from: unknown = next;
    let into: unknown = running;
    for (const p of parts) {
      from = (from as Record<string, unknown>)[p];
      into = (into as Record<string, unknown>)[p];
    }
    const target = into as Record<string, unknown>;
    const value = structuredClone((from as Record<string, unknown>)[last]);
    const current = target[last];
    if (Array.isArray(current) && Array.isArray(value)) current.splice(0, current.length, ...value);
    else if (isPlainObject(current) && isPlainObject(value)) {
      for (const k of Object.keys(current)) delete current[k];
      Object.assign(current, value);
    } else if (value === undefined) delete target[last];
    else target[last] = value;
  }
}
