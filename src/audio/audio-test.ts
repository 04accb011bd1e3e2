import type { Clock } from '../runtime/clock.ts';
import type { AudioDevice, AudioDeviceStats } from './audio-device.ts';

/** The test signal and how long to listen; defaults in brackets. */
export interface AudioTestOptions {
  /** Tone frequency in Hz [1000]. */
  toneHz?: number;
  /** Tone duration in ms [2000]. */
  toneMs?: number;
  /** Peak amplitude of tone and chirp, 0..1 of full scale [0.5, i.e. -6 dBFS]. */
  amplitude?: number;
  /** Longest round-trip latency searched for, also recorded after the signal ends, in ms [1000]. */
  maxLatencyMs?: number;
  /** Give up (with `complete: false`) if capture has not delivered everything by then [signal + 5 s]. */
  timeoutMs?: number;
}

/** The played signal: silence, a chirp (the latency marker), a short gap, the tone, silence. */
export interface AudioTestSignal {
  samples: Int16Array;
  /** First sample of the chirp in `samples`. */
  chirpAt: number;
  chirp: Float64Array;
  /** The tone occupies `samples[toneFrom, toneTo)`. */
  toneFrom: number;
  toneTo: number;
}

/** What `hookswitch audio-test` reports. Levels are dBFS (a full-scale sine has RMS -3.01 dBFS). */
export interface AudioTestResult {
  rate: number;
  /** Milliseconds of capture analysed. */
  recordedMs: number;
  /** False when the capture stopped delivering before the planned end (timeout). */
  complete: boolean;
  /** RMS level of the whole recording; -Infinity for digital silence. */
  rmsDbfs: number;
  /** Largest absolute sample; -Infinity for digital silence. */
  peakDbfs: number;
  /** Samples at the rails (32767 or -32768). */
  clippedSamples: number;
  /** The test tone was heard (it carries most of the recording's energy, above -60 dBFS). */
  toneDetected: boolean;
  /** Share of the recording's energy at the tone frequency, 0..1. */
  toneRatio: number;
  /**
   * Round-trip latency (play() to onCapture) when the chirp came back; null without a loopback. At
   * least one frame: a frame is played when the capture frame before it has been delivered.
   */
  latencyMs: number | null;
  /** Normalised cross-correlation of the chirp at `latencyMs`, 0..1 (above 0.5 counts as found). */
  correlation: number;
  /** The device's counters at the end. */
  stats: AudioDeviceStats;
}

const LEAD_IN_MS = 200;
const CHIRP_MS = 100;
const GAP_MS = 200;
const CHIRP_FROM_HZ = 300;
const CHIRP_TO_HZ = 3400;
const MIN_CORRELATION = 0.5;
const MIN_TONE_DBFS = -60;
const MIN_TONE_RATIO = 0.5;

/**
 * The audio-test signal at `rate`: 200 ms silence, a 100 ms Hann-windowed linear chirp from 300 Hz
 * to 3400 Hz (capped below Nyquist; a sharp autocorrelation peak for the latency), 200 ms silence,
 * then the tone with 5 ms ramps (no clicks).
 */
export function audioTestSignal(rate: number, opts: AudioTestOptions = {}): AudioTestSignal {
  const amp = Math.max(0, Math.min(1, opts.amplitude ?? 0.5)) * 32767;
  const toneHz = opts.toneHz ?? 1000;
  const ms = (v: number) => Math.round((v * rate) / 1000);
  const chirpAt = ms(LEAD_IN_MS);
  const chirpLen = ms(CHIRP_MS);
  const toneFrom = chirpAt + chirpLen + ms(GAP_MS);
  const toneTo = toneFrom + ms(opts.toneMs ?? 2000);
  const samples = new Int16Array(toneTo);
  const chirp = new Float64Array(chirpLen);
  const f1 = Math.min(CHIRP_TO_HZ, rate * 0.45);
  const sweep = (f1 - CHIRP_FROM_HZ) / (chirpLen / rate);
  for (let i = 0; i < chirpLen; i++) {
    const t = i / rate;
    const window = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (chirpLen - 1));
    chirp[i] = window * Math.sin(2 * Math.PI * (CHIRP_FROM_HZ * t + (sweep * t * t) / 2));
    samples[chirpAt + i] = Math.round(amp * chirp[i]!);
  }
  const ramp = ms(5);
  for (let i = toneFrom; i < toneTo; i++) {
    const edge = Math.min(1, (i - toneFrom) / ramp, (toneTo - 1 - i) / ramp);
    samples[i] = Math.round(amp * edge * Math.sin((2 * Math.PI * toneHz * (i - toneFrom)) / rate));
  }
  return { samples, chirpAt, chirp, toneFrom, toneTo };
}

/**
 * Runs the audio test on a started-by-us device: for each captured frame the next frame of the
 * test signal (then silence) is played, so sample k of the recording and sample k of the signal
 * were exchanged with the device at the same moment and the chirp's offset in the recording is
 * the round-trip latency. Stops the device when done; resolves with the analysis, never rejects.
 */
export function runAudioTest(device: AudioDevice, clock: Clock, rate: number, opts: AudioTestOptions = {}): Promise<AudioTestResult> {
  const signal = audioTestSignal(rate, opts);
  const n = device.frameSamples;
  const totalSamples = signal.samples.length + Math.round(((opts.maxLatencyMs ?? 1000) * rate) / 1000);
  const frames = Math.ceil(totalSamples / n);
  const recording = new Int16Array(frames * n);
  let captured = 0;
  return new Promise<AudioTestResult>((resolve) => {
    let done = false;
    const finish = (complete: boolean) => {
      if (done) return;
      done = true;
      timeout.cancel();
      void device.stop().then(() => {
        const result = analyseAudioTest(recording.subarray(0, captured * n), signal, rate, opts);
        resolve({ ...result, complete, stats: device.stats() });
      });
    };
    const timeout = clock.setTimer(opts.timeoutMs ?? (totalSamples / rate) * 1000 + 5000, () => finish(false), 'audio.test.timeout');
    device.start((pcm) => {
      if (done) return;
      recording.set(pcm.subarray(0, n), captured * n);
      const out = new Int16Array(n);
      const from = captured * n;
      if (from < signal.samples.length) out.set(signal.samples.subarray(from, Math.min(from + n, signal.samples.length)));
      device.play(out);
      captured++;
      if (captured >= frames) finish(true);
    });
  });
}

/**
 * Level, clipping, tone presence and latency of `recording` made while `signal` was played
 * (pure; exported for tests and for analysing a recording made elsewhere).
 */
export function analyseAudioTest(
  recording: Int16Array,
  signal: AudioTestSignal,
  rate: number,
  opts: AudioTestOptions = {},
): Omit<AudioTestResult, 'complete' | 'stats'> {
  let energy = 0;
  let peak = 0;
  let clipped = 0;
  for (let i = 0; i < recording.length; i++) {
    const v = recording[i]!;
    energy += v * v;
    const a = Math.abs(v);
    if (a > peak) peak = a;
    if (v >= 32767 || v <= -32768) clipped++;
  }
  const rms = recording.length ? Math.sqrt(energy / recording.length) : 0;
  const toneRatio = toneShare(recording, rate, opts.toneHz ?? 1000, energy);
  const { lag, correlation } = findChirp(recording, signal, rate, opts.maxLatencyMs ?? 1000);
  return {
    rate,
    recordedMs: (recording.length / rate) * 1000,
    rmsDbfs: dbfs(rms),
    peakDbfs: dbfs(peak),
    clippedSamples: clipped,
    toneDetected: toneRatio >= MIN_TONE_RATIO && dbfs(rms) > MIN_TONE_DBFS,
    toneRatio,
    latencyMs: correlation >= MIN_CORRELATION ? (lag / rate) * 1000 : null,
    correlation,
  };
}

function dbfs(level: number): number {
  return level > 0 ? 20 * Math.log10(level / 32768) : -Infinity;
}

/**
 * Energy share at `hz`: Goertzel power over 100 ms blocks (10 Hz bins) plus the two neighbouring
 * bins, against the total energy (for a block of N samples a sine's power is ≈ (A·N/2)² and its
 * energy A²·N/2, hence the 2/N factor).
 */
function toneShare(x: Int16Array, rate: number, hz: number, energy: number): number {
  const block = Math.round(rate / 10);
  const blocks = Math.floor(x.length / block);
  if (blocks === 0 || energy === 0) return 0;
  let power = 0;
  for (const f of [hz - 10, hz, hz + 10]) {
    const coeff = 2 * Math.cos((2 * Math.PI * f) / rate);
    for (let b = 0; b < blocks; b++) {
      let s1 = 0;
      let s2 = 0;
      for (let i = b * block; i < (b + 1) * block; i++) {
        const s0 = x[i]! + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
      }
      power += s1 * s1 + s2 * s2 - coeff * s1 * s2;
    }
  }
  return Math.min(1, (2 * power) / (block * energy));
}

/**
 * The lag (0..maxLatencyMs) where the chirp best matches the recording: a coarse search on every
 * d-th sample and lag (d = rate / 8000; the chirp stays below 4 kHz), refined at full resolution
 * around the best coarse lag. Correlation is normalised by both signals' energy over the window.
 */
function findChirp(x: Int16Array, signal: AudioTestSignal, rate: number, maxLatencyMs: number): { lag: number; correlation: number } {
  const c = signal.chirp;
  const maxLag = Math.min(Math.round((maxLatencyMs * rate) / 1000), x.length - signal.chirpAt - c.length);
  if (maxLag < 0) return { lag: 0, correlation: 0 };
  const d = Math.max(1, Math.floor(rate / 8000));
  const score = (lag: number, step: number): number => {
    let dot = 0;
    let xe = 0;
    let ce = 0;
    const base = signal.chirpAt + lag;
    for (let i = 0; i < c.length; i += step) {
      const v = x[base + i]!;
      dot += v * c[i]!;
      xe += v * v;
      ce += c[i]! * c[i]!;
    }
    return xe > 0 && ce > 0 ? dot / Math.sqrt(xe * ce) : 0;
  };
  let best = 0;
  let bestScore = -Infinity;
  for (let lag = 0; lag <= maxLag; lag += d) {
    const s = score(lag, d);
    if (s > bestScore) {
      bestScore = s;
      best = lag;
    }
  }
  let lag = best;
  let correlation = score(best, 1);
  for (let l = Math.max(0, best - d); l <= Math.min(maxLag, best + d); l++) {
    const s = score(l, 1);
    if (s > correlation) {
      correlation = s;
      lag = l;
    }
  }
  return { lag, correlation: Math.max(0, correlation) };
}
