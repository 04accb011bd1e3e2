import t from 'tap';
import { ToneGenerator } from '../../src/media/tone/tone-generator.ts';
import { DEFAULT_TONE_SET, TONE_COUNTRIES, TONE_NAMES, toneSet, type ToneSpec } from '../../src/media/tone/tone-sets.ts';
import { dominantFrequency } from '../helpers/wav.ts';
import { prng } from '../helpers/prng.ts';

const REQUIRED = ['us', 'gb', 'de', 'fr', 'it', 'es', 'nl', 'se', 'ch', 'at', 'au', 'nz', 'jp', 'cn', 'in', 'br', 'ru'];
const RATES = [8000, 16000, 44100, 48000];
const DBM0 = 32767 / 10 ** (3.14 / 20);
const ALL_SETS = [...TONE_COUNTRIES.map((c) => toneSet(c)), DEFAULT_TONE_SET];

t.test('every country has every tone, with playable data', async (t) => {
  for (const c of REQUIRED) t.ok(TONE_COUNTRIES.includes(c), `${c} has its own tone set`);
  for (const set of ALL_SETS) {
    for (const name of TONE_NAMES) {
      const spec = set.tones[name];
      const where = `${set.country} ${name}`;
      t.ok(spec.frequencies.length >= 1 && spec.frequencies.every((f) => f >= 300 && f < 3400), `${where}: frequencies in the telephone band`);
      t.ok(spec.levelDbm0 <= -3 && spec.levelDbm0 >= -30, `${where}: level ${spec.levelDbm0} dBm0`);
      if (spec.cadence) t.ok(spec.cadence.length % 2 === 0 && spec.cadence.every((d) => d > 0), `${where}: on/off pairs`);
    }
    t.equal(set.tones.dial.cadence === undefined || set.country === 'it', true, `${set.country}: dial tone continuous (Italy's is cadenced)`);
  }
  t.equal(toneSet('UK').country, 'gb', 'uk is an alias of gb');
  t.equal(toneSet(' DE ').country, 'de', 'case and spaces ignored');
  t.equal(toneSet('zz'), DEFAULT_TONE_SET, 'unknown country falls back to the ITU-T E.180 default');
  t.same(toneSet('gb').tones.ringback, { frequencies: [400, 450], levelDbm0: -19, cadence: [400, 200, 400, 2000] }, 'uk ringback');
  t.same(toneSet('us').tones.dial.frequencies, [350, 440], 'us dial 350+440 Hz');
});

/** Amplitude of the component at `f` in `x` (single-bin DFT over the whole array). */
function amplitudeAt(x: Int16Array, rate: number, f: number): number {
  const w = (2 * Math.PI * f) / rate;
  let re = 0;
  let im = 0;
  for (let n = 0; n < x.length; n++) {
    re += x[n]! * Math.cos(w * n);
    im -= x[n]! * Math.sin(w * n);
  }
  return (2 * Math.hypot(re, im)) / x.length;
}

/** The components a spec should produce: its frequencies, or carrier and sidebands when modulated. */
function components(spec: ToneSpec): { f: number; amplitude: number }[] {
  const a = DBM0 * 10 ** (spec.levelDbm0 / 20);
  if (!spec.modulation) return spec.frequencies.map((f) => ({ f, amplitude: a }));
  const { frequency: m, depth: d } = spec.modulation;
  return spec.frequencies.flatMap((f) => [
    { f, amplitude: a / (1 + d) },
    { f: f - m, amplitude: (a * d) / (2 * (1 + d)) },
    { f: f + m, amplitude: (a * d) / (2 * (1 + d)) },
  ]);
}

t.test('generated tones hold the specified frequencies and levels at every sample rate', async (t) => {
  let checked = 0;
  for (const rate of RATES) {
    for (const set of ALL_SETS) {
      for (const name of TONE_NAMES) {
        const spec = set.tones[name];
        const onMs = Math.min(spec.cadence?.[0] ?? 500, 500);
        const x = new ToneGenerator(spec, rate).next(Math.round((rate * onMs) / 1000));
        const comps = components(spec);
        let explained = 0;
        let ok = true;
        for (const c of comps) {
          const a = amplitudeAt(x, rate, c.f);
          explained += (a * a) / 2;
          if (Math.abs(20 * Math.log10(a / c.amplitude)) > 1) ok = false;
        }
        const power = x.reduce((s, v) => s + v * v, 0) / x.length;
        const share = explained / power;
        t.ok(ok && share > 0.9 && share < 1.1, `${rate} Hz ${set.country} ${name}: components within 1 dB, ${(share * 100).toFixed(1)} % of the power at ${comps.map((c) => c.f).join('+')} Hz`);
        checked++;
      }
    }
  }
  t.ok(checked >= RATES.length * 18 * 6);
  // Independent check with the shared dominant-frequency helper (100 ms Goertzel blocks).
  for (const [country, name, expect] of [['de', 'dial', 425], ['fr', 'dial', 440], ['cn', 'busy', 450], ['gb', 'busy', 400]] as const) {
    const spec = toneSet(country).tones[name];
    for (const rate of [8000, 48000]) {
      const x = new ToneGenerator(spec, rate).next(Math.round(rate * Math.min(0.3, (spec.cadence?.[0] ?? 1000) / 1000)));
      const d = dominantFrequency(x, rate, [300, 350, 400, 410, 420, 425, 430, 440, 450, 460, 480, 500]);
      t.equal(d.frequency, expect, `${country} ${name} at ${rate} Hz: dominant ${d.frequency} Hz`);
      t.ok(d.ratio > 0.9, `energy concentrated (${d.ratio.toFixed(3)})`);
    }
  }
});

t.test('cadence boundaries fall within one sample of their time', async (t) => {
  const rnd = prng(4);
  let boundaries = 0;
  for (const rate of RATES) {
    for (const set of ALL_SETS) {
      for (const name of TONE_NAMES) {
        const spec = set.tones[name];
        if (!spec.cadence) continue;
        const cycleMs = spec.cadence.reduce((a, b) => a + b, 0);
        const total = Math.round((rate * Math.min(cycleMs * 2.2, 30_000)) / 1000);
        const gen = new ToneGenerator(spec, rate);
        const x = new Int16Array(total);
        for (let at = 0; at < total; ) {
          const n = Math.min(total - at, 1 + Math.floor(rnd() * 3000));
          x.set(gen.next(n), at);
          at += n;
        }
        let ms = 0;
        let bad = 0;
        for (let k = 0; ms * rate < total * 1000; k++) {
          const on = k % 2 === 0;
          const startExact = (ms * rate) / 1000;
          ms += spec.cadence[k % spec.cadence.length]!;
          const endExact = Math.min((ms * rate) / 1000, total);
          const start = Math.round(startExact);
          const end = Math.round(endExact);
          if (!on) {
            for (let i = start; i < end; i++) if (x[i] !== 0) bad++;
            continue;
          }
          boundaries++;
          // The first "on" sample is sin(0) = 0; the next ones carry the tone.
          if (!x.subarray(start + 1, start + 3).some((v) => v !== 0)) bad++;
          if (end - start > 4 && !x.subarray(end - 3, end).some((v) => v !== 0)) bad++;
          if (start > 0 && x[start - 1] !== 0) bad++;
          if (Math.abs(start - startExact) > 1) bad++;
        }
        if (bad > 0) t.fail(`${rate} Hz ${set.country} ${name}: ${bad} samples off the cadence`);
      }
    }
  }
  t.ok(boundaries > 1000, `${boundaries} on-periods checked at 4 rates, all within ±1 sample, silence exactly 0`);
  const gen = new ToneGenerator(toneSet('gb').tones.ringback, 8000);
  const first = gen.next(8000 * 3);
  t.equal(gen.elapsed, 24000);
  gen.reset();
  t.same(gen.next(8000 * 3), first, 'reset starts the cadence again');
});

t.test('phase is continuous across chunk boundaries', async (t) => {
  const rnd = prng(9);
  for (const rate of RATES) {
    for (const [country, name] of [['us', 'dial'], ['au', 'dial'], ['in', 'dial'], ['gb', 'ringback'], ['us', 'offHookWarning']] as const) {
      const spec = toneSet(country).tones[name];
      const total = rate * 2;
      const whole = new ToneGenerator(spec, rate).next(total);
      const gen = new ToneGenerator(spec, rate);
      const chunked = new Int16Array(total);
      const joins: number[] = [];
      for (let at = 0; at < total; ) {
        const n = Math.min(total - at, 1 + Math.floor(rnd() * 700));
        chunked.set(gen.next(n), at);
        at += n;
        joins.push(at);
      }
      t.same(chunked, whole, `${rate} Hz ${country} ${name}: chunked output equals one-shot output`);
      const a = DBM0 * 10 ** (spec.levelDbm0 / 20);
      const natural = spec.frequencies.reduce((s, f) => s + (2 * Math.PI * (f + (spec.modulation?.frequency ?? 0)) * a) / rate, 0) + 1;
      let worst = 0;
      for (const j of joins) if (j < total && j > 0 && (j * 1000) % rate !== 0) worst = Math.max(worst, Math.abs(chunked[j]! - chunked[j - 1]!));
      t.ok(worst <= natural, `${rate} Hz ${country} ${name}: largest step at a chunk join ${worst} ≤ the sine's own ${natural.toFixed(0)}`);
    }
  }
  t.throws(() => new ToneGenerator({ frequencies: [5000], levelDbm0: -10 }, 8000), RangeError, 'above Nyquist');
  t.throws(() => new ToneGenerator({ frequencies: [400], levelDbm0: -10, cadence: [100] }, 8000), RangeError, 'odd cadence');
});
