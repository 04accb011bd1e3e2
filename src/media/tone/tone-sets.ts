/**
 * National call-progress tones as data, for the device's handset: dial, ringback, busy,
 * congestion, call waiting and off-hook warning ("howler").
 *
 * Source: ITU-T Recommendation E.180 Supplement 2, "Various tones used in national networks"
 * (the table of frequencies and cadences per country, as published by the ITU-T Operational
 * Bulletin), for dial, ringing (ringback), busy, congestion and call-waiting tones. E.180 Supp. 2
 * lists no off-hook warning for most countries; where a country's own howler is not listed, the
 * North American howler (1400+2060+2450+2600 Hz, 0.1 s on / 0.1 s off) stands in, marked
 * `substitute: true`. Levels are not given per country in the supplement; they are set to the
 * E.180 §2 range (-10 dBm0 for one frequency, -13 dBm0 each for two, lower for ringback and call
 * waiting). Cadences are in milliseconds, on/off alternating, starting with "on".
 */

/** Amplitude modulation of a tone: E.180's "f × m" (e.g. 400 × 25 Hz). */
export interface ToneModulation {
  /** Modulating frequency, Hz. */
  frequency: number;
  /** Modulation depth 0..1: the envelope is (1 + depth·sin(2π·m·t)) / (1 + depth). */
  depth: number;
}

/** One call-progress tone: what to play and when. */
export interface ToneSpec {
  /** Frequencies summed during "on" periods, Hz (one to four). */
  readonly frequencies: readonly number[];
  /** Level of each frequency (its peak), dBm0. */
  readonly levelDbm0: number;
  readonly modulation?: ToneModulation;
  /** ms on, ms off, ms on, ... repeated from the start; absent means continuous. */
  readonly cadence?: readonly number[];
  /** True when E.180 Supp. 2 lists no value for this country and a stand-in is used. */
  readonly substitute?: boolean;
}

export type ToneName = 'dial' | 'ringback' | 'busy' | 'congestion' | 'callWaiting' | 'offHookWarning';

export const TONE_NAMES: readonly ToneName[] = ['dial', 'ringback', 'busy', 'congestion', 'callWaiting', 'offHookWarning'];

/** Every tone of one country. */
export interface ToneSet {
  /** ISO 3166-1 alpha-2 code in lower case, or `itu` for the default. */
  readonly country: string;
  readonly tones: Readonly<Record<ToneName, ToneSpec>>;
}

const ONE = -10;
const TWO = -13;
const QUIET = -19;

function t(frequencies: number[], cadence?: number[], levelDbm0?: number, modulation?: ToneModulation): ToneSpec {
  const level = levelDbm0 ?? (frequencies.length > 1 ? TWO : ONE);
  return {
    frequencies,
    levelDbm0: level,
    ...(modulation ? { modulation } : {}),
    ...(cadence ? { cadence } : {}),
  };
}

const HOWLER: ToneSpec = { frequencies: [1400, 2060, 2450, 2600], levelDbm0: -16, cadence: [100, 100], substitute: true };
const AM25: ToneModulation = { frequency: 25, depth: 1 };
const AM16: ToneModulation = { frequency: 16, depth: 1 };

function set(country: string, tones: Omit<Record<ToneName, ToneSpec>, 'offHookWarning'> & { offHookWarning?: ToneSpec }): ToneSet {
  return { country, tones: { ...tones, offHookWarning: tones.offHookWarning ?? HOWLER } };
}

/** European 425 Hz family with the given ringback, busy, congestion and call-waiting cadences. */
function europe(country: string, hz: number, ring: number[], busy: number[], congestion: number[], callWaiting: number[], dial?: number[]): ToneSet {
  return set(country, {
    dial: t([hz], dial),
    ringback: t([hz], ring, QUIET),
    busy: t([hz], busy),
    congestion: t([hz], congestion),
    callWaiting: t([hz], callWaiting, QUIET),
  });
}

const SETS: readonly ToneSet[] = [
  set('us', {
    dial: t([350, 440]),
    ringback: t([440, 480], [2000, 4000], QUIET),
    busy: t([480, 620], [500, 500]),
    congestion: t([480, 620], [250, 250]),
    callWaiting: t([440], [300, 9700], QUIET),
    // North American off-hook warning (receiver off-hook, "ROH").
    offHookWarning: { frequencies: [1400, 2060, 2450, 2600], levelDbm0: -16, cadence: [100, 100] },
  }),
  set('gb', {
    dial: t([350, 440]),
    ringback: t([400, 450], [400, 200, 400, 2000], QUIET),
    busy: t([400], [375, 375]),
    congestion: t([400], [400, 350, 225, 525]),
    callWaiting: t([400], [100, 4000], QUIET),
  }),
  europe('de', 425, [1000, 4000], [480, 480], [240, 240], [200, 200, 200, 5000]),
  europe('fr', 440, [1500, 3500], [500, 500], [250, 250], [300, 10000]),
  europe('it', 425, [1000, 4000], [500, 500], [200, 200], [400, 100, 250, 100, 150, 14000], [200, 200, 600, 1000]),
  europe('es', 425, [1500, 3000], [200, 200], [200, 200, 200, 200, 200, 600], [175, 175, 175, 3500]),
  europe('nl', 425, [1000, 4000], [500, 500], [250, 250], [500, 9500]),
  europe('se', 425, [1000, 5000], [250, 250], [250, 750], [200, 500, 200, 9100]),
  europe('ch', 425, [1000, 4000], [500, 500], [200, 200], [200, 200, 200, 4000]),
  europe('at', 420, [1000, 5000], [400, 400], [200, 200], [40, 1960]),
  set('au', {
    dial: t([413, 438]),
    ringback: t([413, 438], [400, 200, 400, 2000], QUIET),
    busy: t([425], [375, 375]),
    congestion: t([425], [375, 375]),
    callWaiting: t([425], [200, 200, 200, 4400], QUIET),
  }),
  set('nz', {
    dial: t([400]),
    ringback: t([400, 450], [400, 200, 400, 2000], QUIET),
    busy: t([400], [500, 500]),
    congestion: t([400], [250, 250]),
    callWaiting: t([400], [200, 3000, 200, 3000], QUIET),
  }),
  set('jp', {
    dial: t([400]),
    ringback: t([400], [1000, 2000], QUIET, AM16),
    busy: t([400], [500, 500]),
    congestion: t([400], [500, 500]),
    callWaiting: t([400], [500, 8000], QUIET, AM16),
  }),
  europe('cn', 450, [1000, 4000], [350, 350], [700, 700], [400, 4000]),
  set('in', {
    dial: t([400], undefined, ONE, AM25),
    ringback: t([400], [400, 200, 400, 2000], QUIET, AM25),
    busy: t([400], [750, 750]),
    congestion: t([400], [250, 250]),
    callWaiting: t([400], [200, 100, 200, 7500], QUIET),
  }),
  europe('br', 425, [1000, 4000], [250, 250], [250, 250, 750, 250], [50, 1000]),
  europe('ru', 425, [800, 3200], [350, 350], [175, 175], [200, 5000]),
];

/**
 * The default when a country has no entry: the tones ITU-T E.180 §2 recommends for new networks
 * (425 Hz; ringing about 1 s on, 4 s off; busy 0.5 s on/off; congestion 0.25 s on/off).
 */
export const DEFAULT_TONE_SET: ToneSet = europe('itu', 425, [1000, 4000], [500, 500], [250, 250], [200, 200, 200, 4000]);

/** Countries with their own tone set (ISO 3166-1 alpha-2, lower case). */
export const TONE_COUNTRIES: readonly string[] = SETS.map((s) => s.country);

const BY_COUNTRY = new Map(SETS.map((s) => [s.country, s]));

/**
 * The tone set of `country` (ISO 3166-1 alpha-2, any case; `uk` means `gb`), or
 * {@link DEFAULT_TONE_SET} for a country without one.
 */
export function toneSet(country: string): ToneSet {
  const key = country.trim().toLowerCase();
  return BY_COUNTRY.get(key === 'uk' ? 'gb' : key) ?? DEFAULT_TONE_SET;
}
