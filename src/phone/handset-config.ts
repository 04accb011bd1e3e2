/**
 * The handset's settings (`handset.*` in the config) and their defaults; pure.
 */

/** The handset's settings. */
export interface HandsetConfig {
  /** How long to wait for another digit before dialling what matches (ms). */
  interDigitMs: number;
  /** Off-hook without dialling this long gives the off-hook warning howler (ms; 30-60 s is usual). */
  offHookWarningMs: number;
  /** How long a busy, congestion or unobtainable tone plays before the howler (ms). */
  failureToneMs: number;
  /** A number dialled at once when the handset is lifted (a hotline phone has no dial tone). */
  hotline?: string;
  /** Ring frequency (Hz). */
  ringFrequencyHz: number;
  /** ISO 3166-1 alpha-2 country: ring cadence (tones come from the line's own `tones.country`). */
  country: string;
}

/** The defaults (North America: `us`, 20 Hz ringing). */
export const HANDSET_DEFAULTS: Readonly<HandsetConfig> = {
  interDigitMs: 4000,
  offHookWarningMs: 45_000,
  failureToneMs: 30_000,
  ringFrequencyHz: 20,
  country: 'us',
};

/** Countries that ring at 20 Hz (North American Numbering Plan practice); the rest ring at 25 Hz. */
const TWENTY_HZ = new Set(['us', 'ca']);

/**
 * Fills in the defaults of a partial config; without `ringFrequencyHz` the country decides
 * (20 Hz for us/ca, 25 Hz elsewhere). Throws an Error with a one-line message on a bad value.
 */
export function resolveHandsetConfig(input: Partial<HandsetConfig> = {}): HandsetConfig {
  const country = (input.country ?? HANDSET_DEFAULTS.country).toLowerCase();
  const cfg: HandsetConfig = {
    interDigitMs: input.interDigitMs ?? HANDSET_DEFAULTS.interDigitMs,
    offHookWarningMs: input.offHookWarningMs ?? HANDSET_DEFAULTS.offHookWarningMs,
    failureToneMs: input.failureToneMs ?? HANDSET_DEFAULTS.failureToneMs,
    ringFrequencyHz: input.ringFrequencyHz ?? (TWENTY_HZ.has(country) ? 20 : 25),
    country,
    ...(input.hotline === undefined ? {} : { hotline: input.hotline }),
  };
  for (const key of ['interDigitMs', 'offHookWarningMs', 'failureToneMs', 'ringFrequencyHz'] as const) {
    if (!(Number.isFinite(cfg[key]) && cfg[key] > 0)) throw new Error(`handset ${key} must be a positive number (got ${cfg[key]})`);
  }
  if (cfg.hotline !== undefined && !/^[0-9*#+]{1,64}$/.test(cfg.hotline)) {
    throw new Error(`handset hotline must be 1 to 64 digits, *, # or + (got ${JSON.stringify(cfg.hotline)})`);
  }
  return cfg;
}
