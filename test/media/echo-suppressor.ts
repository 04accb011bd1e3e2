import t from 'tap';
import { EchoSuppressor } from '../../src/media/echo/echo-suppressor.ts';
import { prng } from '../helpers/prng.ts';

/**
 * A speech-like test signal: syllables (120-300 ms, Hann-shaped) of a gliding voiced source
 * (f0 90-220 Hz, harmonics to 3.4 kHz shaped by three formants and a -6 dB/octave tilt) or, now
 * and then, a noise burst (fricative), with short gaps between syllables and longer pauses
 * between talk spurts. Scaled to `rmsDbfs` over its active part.
 */
function speech(rate: number, seconds: number, seed: number, rmsDbfs = -20): Float64Array {
  const rnd = prng(seed);
  const x = new Float64Array(Math.round(rate * seconds));
  let n = Math.round(rate * 0.05 * rnd());
  while (n < x.length) {
    const len = Math.round(rate * (0.12 + 0.18 * rnd()));
    const f0a = 90 + 130 * rnd();
    const f0b = f0a * (0.85 + 0.3 * rnd());
    const formants = [300 + 500 * rnd(), 900 + 1300 * rnd(), 2400 + 400 * rnd()];
    const fricative = rnd() < 0.15;
    let phase = 0;
    for (let i = 0; i < len && n + i < x.length; i++) {
      const env = Math.sin((Math.PI * i) / len) ** 2;
      let v = 0;
      if (fricative) v = (rnd() * 2 - 1) * 0.3;
      else {
        const f0 = f0a + ((f0b - f0a) * i) / len;
        phase += (2 * Math.PI * f0) / rate;
        for (let h = 1; h * f0 < 3400; h++) {
          const f = h * f0;
          let amp = 0;
          for (const F of formants) amp += Math.exp(-(((f - F) / 120) ** 2));
          v += ((0.1 + amp) / h) * Math.sin(h * phase);
        }
      }
      x[n + i] = env * v;
    }
    n += len + Math.round(rate * (rnd() < 0.2 ? 0.3 + 0.5 * rnd() : 0.03 + 0.12 * rnd()));
  }
  let sum = 0;
  let active = 0;
  for (const v of x) if (v !== 0) (sum += v * v), active++;
  const k = (32768 * 10 ** (rmsDbfs / 20)) / Math.sqrt(sum / Math.max(1, active));
  for (let i = 0; i < x.length; i++) x[i]! *= k;
  return x;
}

/** The synthetic echo path: the far-end signal delayed by `delayMs` and attenuated by `lossDb`. */
function echoPath(far: Float64Array, rate: number, delayMs: number, lossDb: number): Float64Array {
  const d = Math.round((rate * delayMs) / 1000);
  const k = 10 ** (-lossDb / 20);
  const e = new Float64Array(far.length);
  for (let i = d; i < far.length; i++) e[i] = far[i - d]! * k;
  return e;
}

const toInt16 = (x: Float64Array): Int16Array => Int16Array.from(x, (v) => Math.max(-32768, Math.min(32767, Math.round(v))));
const energy = (x: ArrayLike<number>, from = 0, to = x.length): number => {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i]! * x[i]!;
  return s;
};
const db = (ratio: number): number => 10 * Math.log10(ratio);

/** Runs the suppressor in 20 ms frames; returns the output and the gain of every sample. */
function run(es: EchoSuppressor, far: Int16Array, near: Int16Array, frame: number): { out: Int16Array; gains: Float32Array } {
  const out = new Int16Array(near.length);
  const gains = new Float32Array(near.length);
  for (let i = 0; i < near.length; i += frame) {
    const end = Math.min(near.length, i + frame);
    es.process(far.subarray(i, end), near.subarray(i, end), out.subarray(i, end), gains.subarray(i, end));
  }
  return { out, gains };
}

t.test('a conversation over a synthetic echo path: ERLE in single talk, near speech kept in double talk', async (t) => {
  const cases = [8000, 16000].flatMap((rate) => [20, 40, 60].map((delayMs) => ({ rate, delayMs, nearDb: -20 })));
  cases.push({ rate: 8000, delayMs: 40, nearDb: -26 }, { rate: 16000, delayMs: 60, nearDb: -26 });
  for (const { rate, delayMs, nearDb } of cases) {
    // Far speech at -20 dBFS (active RMS) reaches the microphone 10 dB down; near speech at nearDb.
    // 0-4 s far end alone, 4-8 s near end alone, 8-14 s both at once.
    const seg = (s: number): number => Math.round(s * rate);
    const total = seg(14);
    const farSpeech = speech(rate, 14, 11 + delayMs);
    const nearSpeech = speech(rate, 14, 97 + delayMs, nearDb);
    for (let i = seg(4); i < seg(8); i++) farSpeech[i] = 0;
    for (let i = 0; i < seg(4); i++) nearSpeech[i] = 0;
    const echo = echoPath(farSpeech, rate, delayMs, 10);
    const noise = prng(5);
    const mic = new Float64Array(total);
    for (let i = 0; i < total; i++) mic[i] = nearSpeech[i]! + echo[i]! + (noise() * 2 - 1) * 3;

    const es = new EchoSuppressor({ sampleRate: rate });
    const { out, gains } = run(es, toInt16(farSpeech), toInt16(mic), seg(0.02));
    const applied = (x: Float64Array, from: number, to: number): number => {
      let s = 0;
      for (let i = from; i < to; i++) s += (x[i]! * gains[i]!) ** 2;
      return s;
    };
    const where = `${rate} Hz, echo ${delayMs} ms at -10 dB, near speech ${nearDb + 20} dB against far`;

    const erle = db(energy(mic, 0, seg(4)) / energy(out, 0, seg(4)));
    const nearAlone = db(energy(nearSpeech, seg(4), seg(8)) / applied(nearSpeech, seg(4), seg(8)));
    const nearInDoubleTalk = db(energy(nearSpeech, seg(8), total) / applied(nearSpeech, seg(8), total));
    const echoInDoubleTalk = db(energy(echo, seg(8), total) / applied(echo, seg(8), total));
    t.comment(
      `${where}: ERLE ${erle.toFixed(1)} dB in far-end single talk; near speech attenuated ${nearAlone.toFixed(2)} dB alone, ` +
        `${nearInDoubleTalk.toFixed(2)} dB in double talk (echo there ${echoInDoubleTalk.toFixed(1)} dB)`,
    );
    t.ok(erle >= 20, `${where}: ERLE ${erle.toFixed(1)} dB >= 20 dB in single talk`);
    t.ok(nearAlone <= 0.5, `${where}: near end alone passes (${nearAlone.toFixed(2)} dB)`);
    t.ok(nearInDoubleTalk <= 6, `${where}: near speech in double talk attenuated ${nearInDoubleTalk.toFixed(2)} dB <= 6 dB`);
    const stats = es.stats;
    t.equal(stats.samples, total, `${where}: every sample counted`);
    t.ok(stats.doubleTalk > seg(1), `${where}: double talk detected for ${(stats.doubleTalk / rate).toFixed(1)} s`);
  }
});

t.test('an echo louder than the expected loss is taken for double talk (the Geigel threshold)', async (t) => {
  const rate = 8000;
  const far = speech(rate, 3, 3);
  const table = [
    { lossDb: 10, suppressed: true },
    { lossDb: 7, suppressed: true },
    { lossDb: 5, suppressed: false },
    { lossDb: 0, suppressed: false },
  ];
  for (const c of table) {
    const mic = echoPath(far, rate, 30, c.lossDb);
    const es = new EchoSuppressor({ sampleRate: rate, echoReturnLossDb: 6 });
    const { out } = run(es, toInt16(far), toInt16(mic), 160);
    const erle = db(energy(mic) / energy(out));
    t.equal(erle >= 20, c.suppressed, `echo path loss ${c.lossDb} dB vs expected 6 dB: ERLE ${erle.toFixed(1)} dB`);
  }
});

t.test('the gain holds after double talk, then ramps down without steps', async (t) => {
  const rate = 8000;
  const len = rate;
  const far = new Int16Array(len);
  const near = new Int16Array(len);
  const burst = [800, 2400];
  for (let i = 0; i < len; i++) {
    far[i] = Math.round(10000 * Math.sin((2 * Math.PI * 400 * i) / rate));
    const echo = i >= 80 ? 3162 * Math.sin((2 * Math.PI * 400 * (i - 80)) / rate) : 0;
    const talk = i >= burst[0]! && i < burst[1]! ? 8000 * Math.sin((2 * Math.PI * 1000 * i) / rate) : 0;
    near[i] = Math.round(echo + talk);
  }
  const es = new EchoSuppressor({ sampleRate: rate, holdMs: 60 });
  const { gains } = run(es, far, near, 160);
  const at = (ms: number): number => gains[Math.round((ms * rate) / 1000)]!;
  t.ok(at(90) < 0.04, `echo alone suppressed before the burst (gain ${at(90).toFixed(3)})`);
  t.ok(at(130) > 0.99, `open 30 ms into the burst (gain ${at(130).toFixed(3)})`);
  t.ok(at(300 + 55) > 0.99, `still open 55 ms after the burst: hangover (gain ${at(355).toFixed(3)})`);
  t.ok(at(300 + 130) < 0.04, `closed 130 ms after the burst (gain ${at(430).toFixed(3)})`);
  let maxStep = 0;
  for (let i = 1; i < len; i++) maxStep = Math.max(maxStep, Math.abs(gains[i]! - gains[i - 1]!));
  t.ok(maxStep < 0.08, `largest gain change per sample ${maxStep.toFixed(3)} (no clicks)`);
});

t.test('any frame split gives the same output; silence from the far end changes nothing', async (t) => {
  const rate = 16000;
  const far = toInt16(speech(rate, 2, 8));
  const near = toInt16(speech(rate, 2, 9).map((v, i) => v + far[i]! * 0.3));
  const whole = new EchoSuppressor({ sampleRate: rate }).process(far, near);
  const rnd = prng(1);
  const es = new EchoSuppressor({ sampleRate: rate });
  const pieces = new Int16Array(near.length);
  for (let i = 0; i < near.length; ) {
    const n = 1 + Math.floor(rnd() * 700);
    const end = Math.min(near.length, i + n);
    es.process(far.subarray(i, end), near.subarray(i, end), pieces.subarray(i, end));
    i = end;
  }
  t.same(pieces, whole, 'random frame sizes 1-700 samples give the same output as one call');

  const quiet = new Int16Array(near.length);
  const passed = new EchoSuppressor({ sampleRate: rate }).process(quiet, near);
  t.same(passed, near, 'with a silent far end the microphone passes unchanged');

  es.reset();
  t.same(es.stats, { samples: 0, suppressing: 0, doubleTalk: 0 }, 'reset clears the counters');
  t.equal(es.gain, 1, 'reset opens the gain');
  const inPlace = near.slice();
  t.equal(es.process(far, inPlace, inPlace), inPlace, 'out may be the near frame itself');
  t.same(inPlace, whole, 'in-place processing after reset gives the same output');
});

t.test('bad arguments are RangeErrors', async (t) => {
  t.throws(() => new EchoSuppressor({ sampleRate: 100 }), RangeError, 'rate too low');
  t.throws(() => new EchoSuppressor({ sampleRate: 8000, tailMs: 0 }), RangeError, 'no tail');
  const es = new EchoSuppressor({ sampleRate: 8000 });
  t.throws(() => es.process(new Int16Array(160), new Int16Array(80)), RangeError, 'frames of different lengths');
});
