/**
 * The speexdsp resampler's quality and bookkeeping: passband ripple, aliasing and SNR of the
 * 48→8→48 and 48→16→48 kHz round trips and throughput (printed, and held to bounds), output
 * length over every rate pair, drift correction, and the plain (non-SIMD) build agreeing with
 * the SIMD one.
 */
import t from 'tap';
import { loadSpeexResampler, type SpeexResampler, type SpeexResamplerFactory } from '../../../src/media/resample/speex-resampler.ts';

const RATES = [8000, 16000, 32000, 44100, 48000];
const HIGH = 48000;

const factory = await loadSpeexResampler();

function sine(rate: number, seconds: number, tones: { f: number; a: number }[]): Int16Array {
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (const { f, a } of tones) v += a * Math.sin((2 * Math.PI * f * i) / rate);
    out[i] = Math.round(v);
  }
  return out;
}

/** Feeds `input` in 20 ms chunks and joins the output. */
function run(r: SpeexResampler, input: Int16Array): Int16Array {
  const chunk = Math.round(r.inputRate / 50);
  const parts: Int16Array[] = [];
  let total = 0;
  for (let i = 0; i < input.length; i += chunk) {
    const out = r.process(input.subarray(i, Math.min(input.length, i + chunk)));
    parts.push(out);
    total += out.length;
  }
  const joined = new Int16Array(total);
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.length;
  }
  return joined;
}

function roundTrip(f: SpeexResamplerFactory, low: number, input: Int16Array): { out: Int16Array; delay: number } {
  const down = f.create(HIGH, low);
  const up = f.create(low, HIGH);
  const out = run(up, run(down, input));
  const delay = Math.round((down.delay * HIGH) / low) + up.delay;
  down.close();
  up.close();
  return { out, delay };
}

/** Amplitude of the `f` Hz component of `x[from, to)` by least squares on sin/cos. */
function amplitude(x: Int16Array, rate: number, f: number, from: number, to: number): number {
  let s = 0;
  let c = 0;
  for (let i = from; i < to; i++) {
    const w = (2 * Math.PI * f * i) / rate;
    s += x[i]! * Math.sin(w);
    c += x[i]! * Math.cos(w);
  }
  return (2 * Math.hypot(s, c)) / (to - from);
}

function power(x: Int16Array, from = 0, to = x.length): number {
  let e = 0;
  for (let i = from; i < to; i++) e += x[i]! * x[i]!;
  return e / Math.max(1, to - from);
}

const db = (ratio: number) => 10 * Math.log10(ratio);

for (const low of [8000, 16000]) {
  const label = `48→${low / 1000}→48 kHz`;

  t.test(`${label}: passband ripple under 0.5 dB (quality 5 to 0.85 × Nyquist, quality 6 to 0.9 ×)`, async (t) => {
    for (const { quality, edge } of [{ quality: 5, edge: 0.85 }, { quality: 6, edge: 0.9 }]) {
      const f = quality === factory.quality ? factory : await loadSpeexResampler({ quality });
      const top = edge * (low / 2);
      const gains: { f: number; gain: number }[] = [];
      for (let k = 0; k <= 40; k++) {
        const freq = Math.round(100 + ((top - 100) * k) / 40);
        const input = sine(HIGH, 0.25, [{ f: freq, a: 16000 }]);
        const { out, delay } = roundTrip(f, low, input);
        const from = delay + 960;
        const to = Math.min(out.length, input.length);
        const gain = amplitude(out, HIGH, freq, from, to) / amplitude(input, HIGH, freq, from - delay, to - delay);
        gains.push({ f: freq, gain: 20 * Math.log10(gain) });
      }
      const max = Math.max(...gains.map((g) => g.gain));
      const min = Math.min(...gains.map((g) => g.gain));
      const worst = gains.reduce((a, b) => (Math.abs(b.gain) > Math.abs(a.gain) ? b : a));
      // Where quality 5's transition band starts: the response at 0.9 × Nyquist, for the record.
      const edgeFreq = 0.9 * (low / 2);
      const probe = sine(HIGH, 0.25, [{ f: edgeFreq, a: 16000 }]);
      const { out, delay } = roundTrip(f, low, probe);
      const atEdge = 20 * Math.log10(amplitude(out, HIGH, edgeFreq, delay + 960, probe.length) / amplitude(probe, HIGH, edgeFreq, 960, probe.length - delay));
      t.comment(
        `${label} quality ${quality}: ripple ${(max - min).toFixed(4)} dB over 100..${top} Hz ` +
          `(gain ${min.toFixed(4)}..${max.toFixed(4)} dB, largest deviation at ${worst.f} Hz); ${atEdge.toFixed(3)} dB at ${edgeFreq} Hz`,
      );
      t.ok(max - min < 0.5, `quality ${quality}: ripple ${(max - min).toFixed(4)} dB < 0.5 dB up to ${edge} × Nyquist`);
    }
  });

  t.test(`${label}: a sine above ${low / 2000} kHz is rejected below -60 dB on the way down`, async (t) => {
    // Each probe folds to a distinct in-band frequency; a 440 Hz tone alongside dithers the int16
    // output so that the alias, far below 1 LSB, is still measured (by projection).
    const probes = low === 8000 ? [4500, 5000, 6500, 11000, 19500] : [8800, 9000, 12500, 22000];
    let worst = -Infinity;
    const figures: string[] = [];
    for (const f of probes) {
      const alias = Math.abs(f - low * Math.round(f / low));
      const a = 16000;
      const input = sine(HIGH, 1, [{ f, a }, { f: 440, a: 8000 }]);
      const down = factory.create(HIGH, low);
      const out = run(down, input);
      const skip = 2 * down.delay;
      down.close();
      // Exactly 0.5 s: the 440 Hz tone and every even-Hz alias are orthogonal over it (no leakage).
      const rejection = 20 * Math.log10(amplitude(out, low, alias, skip, skip + low / 2) / a);
      figures.push(`${f} Hz (→ ${alias} Hz) ${rejection.toFixed(1)} dB`);
      worst = Math.max(worst, rejection);
    }
    t.comment(`${label} aliasing (alias amplitude / input amplitude): ${figures.join(', ')}; worst ${worst.toFixed(1)} dB`);
    t.ok(worst < -60, `worst aliasing ${worst.toFixed(1)} dB < -60 dB`);
  });

  t.test(`${label}: an in-band signal survives the round trip with SNR above 40 dB`, async (t) => {
    const tones = low === 8000
      ? [{ f: 300, a: 6000 }, { f: 1000, a: 6000 }, { f: 2500, a: 6000 }]
      : [{ f: 300, a: 5000 }, { f: 1000, a: 5000 }, { f: 2500, a: 5000 }, { f: 5500, a: 5000 }];
    const input = sine(HIGH, 1, tones);
    const { out, delay } = roundTrip(factory, low, input);
    // The computed delay, confirmed by the best alignment within ±8 samples.
    let best = { lag: delay, snr: -Infinity };
    for (let lag = delay - 8; lag <= delay + 8; lag++) {
      let sig = 0;
      let err = 0;
      for (let i = 2000; i < input.length - 2000; i++) {
        const d = out[i + lag]! - input[i]!;
        sig += input[i]! * input[i]!;
        err += d * d;
      }
      const snr = db(sig / Math.max(err, 1e-9));
      if (snr > best.snr) best = { lag, snr };
    }
    t.comment(`${label} round-trip SNR ${best.snr.toFixed(1)} dB (${tones.map((x) => x.f).join('+')} Hz), delay ${best.lag} samples at 48 kHz`);
    t.equal(best.lag, delay, 'the delay the resamplers report is the signal delay');
    t.ok(best.snr > 40, `SNR ${best.snr.toFixed(1)} dB > 40 dB`);
  });
}

t.test('throughput in 20 ms chunks', async (t) => {
  const seconds = 10;
  const figures: string[] = [];
  for (const [from, to] of [[48000, 8000], [8000, 48000], [48000, 16000], [44100, 48000]] as const) {
    const input = sine(from, seconds, [{ f: 440, a: 8000 }]);
    const r = factory.create(from, to);
    const started = performance.now();
    run(r, input);
    const elapsed = (performance.now() - started) / 1000;
    r.close();
    const rate = input.length / elapsed;
    figures.push(`${from}→${to} ${(rate / 1e6).toFixed(1)} M input samples/s (${(rate / from).toFixed(0)}× real time)`);
    t.ok(rate > 50 * from, `${from}→${to} at least 50× real time`);
  }
  t.comment(`throughput (${factory.simd ? 'SIMD' : 'plain'} wasm, quality ${factory.quality}): ${figures.join('; ')}`);
});

t.test('every rate pair gives the rate ratio of output over 1 s fed in 20 ms chunks (±2)', async (t) => {
  for (const from of RATES) {
    for (const to of RATES) {
      const r = factory.create(from, to);
      const out = run(r, sine(from, 1, [{ f: 440, a: 8000 }]));
      r.close();
      t.ok(Math.abs(out.length - to) <= 2, `${from} → ${to}: ${out.length} samples`);
    }
  }
});

t.test('equal rates pass through untouched unless created adjustable', async (t) => {
  const pass = factory.create(16000, 16000);
  const chunk = sine(16000, 0.02, [{ f: 440, a: 8000 }]);
  t.equal(pass.process(chunk), chunk, 'the same array comes back');
  t.equal(pass.delay, 0);
  t.throws(() => pass.setRatioCorrection(10), /adjustable/);
  const adjustable = factory.create(48000, 48000, { adjustable: true });
  const input = sine(48000, 0.5, [{ f: 1000, a: 8000 }]);
  const out = run(adjustable, input);
  t.equal(out.length, input.length, 'an adjustable 1:1 resampler keeps the length');
  let err = 0;
  for (let i = 2000; i < input.length - 2000; i++) err += (out[i + adjustable.delay]! - input[i]!) ** 2;
  const snr = db((power(input) * (input.length - 4000)) / err);
  t.ok(snr > 60, `and the signal (SNR ${snr.toFixed(1)} dB after its ${adjustable.delay}-sample delay)`);
  adjustable.close();
});

t.test('ratio correction stretches the output by the asked parts per million', async (t) => {
  const table = [
    { name: '48 → 48 kHz, +100 ppm', from: 48000, to: 48000, ppm: 100 },
    { name: '48 → 48 kHz, -250 ppm', from: 48000, to: 48000, ppm: -250 },
    { name: '48 → 8 kHz, +500 ppm', from: 48000, to: 8000, ppm: 500 },
    { name: '8 → 48 kHz, -40 ppm', from: 8000, to: 48000, ppm: -40 },
    { name: '44.1 → 48 kHz, +1000 ppm', from: 44100, to: 48000, ppm: 1000 },
  ];
  const seconds = 10;
  for (const { name, from, to, ppm } of table) {
    const r = factory.create(from, to, { adjustable: true });
    r.setRatioCorrection(ppm);
    const out = run(r, sine(from, seconds, [{ f: 440, a: 8000 }]));
    r.close();
    const expected = to * seconds * (1 + ppm / 1e6);
    t.ok(Math.abs(out.length - expected) <= 2, `${name}: ${out.length} samples, expected ${expected.toFixed(1)}`);
  }
  const r = factory.create(48000, 16000);
  t.throws(() => r.setRatioCorrection(20000), RangeError, 'more than ±10000 ppm is refused');
  r.close();
});

t.test('the plain wasm build agrees with the SIMD build within 1 LSB', async (t) => {
  const plain = await loadSpeexResampler({ simd: false });
  t.equal(plain.simd, false);
  const input = sine(48000, 0.5, [{ f: 700, a: 9000 }, { f: 3100, a: 9000 }]);
  for (const low of [8000, 16000, 44100]) {
    const a = factory.create(48000, low);
    const b = plain.create(48000, low);
    const x = run(a, input);
    const y = run(b, input);
    let maxDiff = 0;
    for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i]! - y[i]!));
    t.equal(x.length, y.length, `48 → ${low}: same length`);
    t.ok(maxDiff <= 1, `48 → ${low}: largest difference ${maxDiff} LSB`);
    a.close();
    b.close();
  }
});

t.test('lifecycle and bad arguments', async (t) => {
  const r = factory.create(8000, 16000);
  t.equal(r.process(new Int16Array(0)).length, 0, 'an empty chunk gives an empty output');
  const big = r.process(new Int16Array(8000 * 3).fill(1000));
  t.ok(Math.abs(big.length - 48000) <= 2, `a 3 s chunk grows the buffers (${big.length} samples)`);
  r.close();
  r.close();
  t.throws(() => r.process(new Int16Array(160)), /after close/);
  t.throws(() => factory.create(0, 8000), RangeError);
  t.throws(() => factory.create(8000, 8000.5), RangeError);
  await t.rejects(loadSpeexResampler({ quality: 11 }), RangeError);
  const q10 = await loadSpeexResampler({ quality: 0 });
  const low = q10.create(48000, 8000);
  t.ok(Math.abs(run(low, sine(48000, 1, [{ f: 440, a: 8000 }])).length - 8000) <= 2, 'quality 0 works too');
  low.close();
});
