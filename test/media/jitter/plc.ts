import t from 'tap';
import { WaveformPlc } from '../../../src/media/jitter/plc.ts';

const AMP = 10000;

function tone(rate: number, hz: number, from: number, n: number, phase = 0): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(AMP * Math.sin((2 * Math.PI * hz * (from + i)) / rate + phase));
  return out;
}

/** Frequency from the spacing of rising zero crossings (interpolated), precise on 20 ms. */
function zeroCrossingHz(x: Int16Array, rate: number): number {
  let first = -1;
  let last = -1;
  let cycles = 0;
  for (let i = 1; i < x.length; i++) {
    const a = x[i - 1]!;
    const b = x[i]!;
    if (a < 0 && b >= 0) {
      const at = i - 1 + -a / (b - a);
      if (first < 0) first = at;
      else cycles++;
      last = at;
    }
  }
  return cycles > 0 ? (cycles * rate) / (last - first) : 0;
}

function rms(x: Int16Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return x.length ? Math.sqrt(s / x.length) : 0;
}

function maxStep(x: Int16Array): number {
  let m = 0;
  for (let i = 1; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - x[i - 1]!));
  return m;
}

/** 200 ms of a tone, `lossMs` concealed, 100 ms of the tone again (its phase shifted by `resumePhase`). */
function run(rate: number, hz: number, lossMs: number, resumePhase = 0) {
  const plc = new WaveformPlc(rate);
  const frame = rate / 100;
  const parts: Int16Array[] = [];
  let pos = 0;
  for (let k = 0; k < 20; k++, pos += frame) parts.push(plc.good(tone(rate, hz, pos, frame)));
  const lossStart = pos;
  for (let k = 0; k < lossMs / 10; k++, pos += frame) parts.push(plc.conceal(frame));
  for (let k = 0; k < 10; k++, pos += frame) parts.push(plc.good(tone(rate, hz, pos, frame, resumePhase)));
  const out = new Int16Array(pos);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  const ms = rate / 1000;
  const lossAt = (fromMs: number, toMs: number) => out.subarray(lossStart + fromMs * ms, lossStart + toMs * ms);
  return { out, lossAt, naturalStep: 2 * AMP * Math.sin((Math.PI * hz) / rate) };
}

t.test('a concealed 440 Hz tone keeps its pitch and level for 10-20 ms, then fades to silence by 60 ms', async (t) => {
  for (const rate of [8000, 16000, 48000]) {
    const { lossAt } = run(rate, 440, 80);
    const hz = zeroCrossingHz(lossAt(0, 20), rate);
    const first = rms(lossAt(0, 10));
    const fading = rms(lossAt(50, 60));
    const after = rms(lossAt(60, 80));
    t.comment(`${rate} Hz: first 20 ms at ${hz.toFixed(1)} Hz, rms 0-10 ms ${first.toFixed(0)}, 50-60 ms ${fading.toFixed(0)}`);
    t.ok(Math.abs(hz - 440) < 440 * 0.005, `${rate} Hz: frequency kept (${hz.toFixed(1)} Hz)`);
    t.ok(Math.abs(first - AMP / Math.SQRT2) < 0.05 * AMP, `${rate} Hz: no attenuation in the first 10 ms`);
    t.ok(fading < 0.15 * AMP, `${rate} Hz: faded to under 20 % between 50 and 60 ms`);
    t.equal(after, 0, `${rate} Hz: silent from 60 ms`);
  }
});

t.test('no click at the start of an erasure, at its period switches or at the resume', async (t) => {
  const cases = [
    { name: '20 ms loss, resume in phase', rate: 8000, hz: 440, lossMs: 20, phase: 0 },
    { name: '30 ms loss, resume in opposite phase', rate: 8000, hz: 440, lossMs: 30, phase: Math.PI },
    { name: '80 ms loss (fade back in from silence)', rate: 8000, hz: 440, lossMs: 80, phase: 0 },
    { name: '20 ms loss at 16 kHz, 300 Hz, quarter-period phase jump', rate: 16000, hz: 300, lossMs: 20, phase: Math.PI / 2 },
    { name: '40 ms loss at 48 kHz', rate: 48000, hz: 440, lossMs: 40, phase: 1 },
  ];
  for (const c of cases) {
    const { out, naturalStep } = run(c.rate, c.hz, c.lossMs, c.phase);
    const step = maxStep(out);
    t.comment(`${c.name}: max sample step ${step} (the tone's own ${naturalStep.toFixed(0)})`);
    t.ok(step <= naturalStep * 1.5, `${c.name}: max step within 1.5x the tone's own`);
  }
  const splice = new Int16Array([...tone(8000, 440, 0, 1605), ...tone(8000, 440, 1605, 800, Math.PI)]);
  t.ok(maxStep(splice) > 3439 * 1.5, `a plain splice with a phase jump measures as a click (${maxStep(splice)})`);
});

t.test('finds the pitch of a harmonic-rich voiced signal and conceals silence as silence', async (t) => {
  const rate = 8000;
  const f0 = 125;
  const plc = new WaveformPlc(rate);
  const voiced = new Int16Array(1600);
  for (let i = 0; i < voiced.length; i++) {
    let v = 0;
    for (let h = 1; h <= 8; h++) v += (3000 / h) * Math.sin((2 * Math.PI * f0 * h * i) / rate + h);
    voiced[i] = Math.round(v);
  }
  plc.good(voiced);
  const concealed = plc.conceal(160);
  t.ok(plc.concealing, 'concealing until the next good frame');
  let corr = 0;
  let energy = 0;
  for (let i = 0; i < 160; i++) {
    const expected = voiced[1600 - 64 + (i % 64)]!;
    corr += concealed[i]! * expected;
    energy += expected * expected;
  }
  t.ok(corr / energy > 0.95, 'the concealment repeats the 8 ms (64-sample) pitch period');

  const quiet = new WaveformPlc(16000);
  quiet.good(new Int16Array(320));
  t.same(Array.from(new Set(quiet.conceal(480))), [0], 'silence history conceals as silence');
  const resumed = quiet.good(Int16Array.from({ length: 320 }, () => 100));
  t.ok(resumed[0]! < 100 && resumed[319] === 100, 'the first good frame fades in and then passes through');
  t.notOk(quiet.concealing, 'no longer concealing');

  const wide = new WaveformPlc(8000);
  wide.good(tone(8000, 440, 0, 4000));
  wide.reset();
  t.same(Array.from(new Set(wide.conceal(160))), [0], 'after reset() the old history is forgotten');
  t.throws(() => new WaveformPlc(0), RangeError);
});
