/**
 * Synthesises a call-progress tone ({@link ToneSpec}) as 16-bit PCM at any sample rate, in
 * chunks of any size: the oscillators' phases and the cadence position carry over between calls,
 * so the stream is the same however it is chunked.
 */
import type { ToneSpec } from './tone-sets.ts';

/** 0 dBm0 as a sine amplitude in 16-bit PCM: a full-scale sine is +3.14 dBm0 (ITU-T G.711). */
const DBM0_AMPLITUDE = 32767 / 10 ** (3.14 / 20);

/**
 * A streaming tone source. Cadence boundaries fall on the sample nearest to each boundary's time
 * (counted from the start, so they do not drift); each "on" period starts its oscillators at
 * phase 0, so it begins without a step, and "off" periods are digital silence.
 */
export class ToneGenerator {
  readonly sampleRate: number;
  private readonly amplitude: number;
  private readonly increments: Float64Array;
  private readonly phases: Float64Array;
  private readonly modIncrement: number;
  private readonly modDepth: number;
  private modPhase = 0;
  /** Time (ms) from the start of a cycle to the end of each cadence period; empty: continuous. */
  private readonly ends: number[];
  private readonly cycleMs: number;
  private position = 0;
  private segment = 0;
  private cycleIndex = 0;

  constructor(spec: ToneSpec, sampleRate: number) {
    if (!(sampleRate > 0)) throw new RangeError(`sample rate ${sampleRate}`);
    if (spec.frequencies.length === 0) throw new RangeError('a tone needs at least one frequency');
    for (const f of spec.frequencies) {
      if (!(f > 0 && f < sampleRate / 2)) throw new RangeError(`${f} Hz cannot be played at ${sampleRate} Hz`);
    }
    this.sampleRate = sampleRate;
    this.amplitude = DBM0_AMPLITUDE * 10 ** (spec.levelDbm0 / 20);
    this.increments = Float64Array.from(spec.frequencies, (f) => f / sampleRate);
    this.phases = new Float64Array(spec.frequencies.length);
    this.modIncrement = spec.modulation ? spec.modulation.frequency / sampleRate : 0;
    this.modDepth = spec.modulation ? spec.modulation.depth : 0;
    this.ends = [];
    let ms = 0;
    for (const d of spec.cadence ?? []) {
      if (!(d >= 0)) throw new RangeError(`cadence period ${d} ms`);
      ms += d;
      this.ends.push(ms);
    }
    if (this.ends.length % 2 === 1) throw new RangeError('a cadence lists on/off pairs');
    this.cycleMs = ms;
    if (this.ends.length > 0 && !(this.cycleMs > 0)) throw new RangeError('a cadence needs a non-zero length');
  }

  /** Samples produced since the start (or the last {@link reset}). */
  get elapsed(): number {
    return this.position;
  }

  /** Starts the tone again from the beginning of its cadence. */
  reset(): void {
    this.position = 0;
    this.segment = 0;
    this.cycleIndex = 0;
    this.phases.fill(0);
    this.modPhase = 0;
  }

  /** The next `samples` samples of the tone. */
  next(samples: number): Int16Array {
    const out = new Int16Array(samples);
    if (this.ends.length === 0) {
      this.fillOn(out, 0, samples);
      this.position += samples;
      return out;
    }
    let i = 0;
    while (i < samples) {
      const end = this.periodEnd();
      const run = Math.min(samples - i, end - this.position);
      if (run > 0) {
        if (this.segment % 2 === 0) this.fillOn(out, i, run);
        i += run;
        this.position += run;
      }
      if (this.position >= end) {
        this.segment++;
        if (this.segment === this.ends.length) {
          this.segment = 0;
          this.cycleIndex++;
        }
        if (this.segment % 2 === 0) {
          this.phases.fill(0);
          this.modPhase = 0;
        }
      }
    }
    return out;
  }

  /** Sample index where the current cadence period ends: its exact time, rounded, so no drift. */
  private periodEnd(): number {
    return Math.round(((this.cycleIndex * this.cycleMs + this.ends[this.segment]!) * this.sampleRate) / 1000);
  }

  private fillOn(out: Int16Array, from: number, count: number): void {
    const n = this.phases.length;
    for (let k = from; k < from + count; k++) {
      let v = 0;
      for (let j = 0; j < n; j++) {
        v += Math.sin(2 * Math.PI * this.phases[j]!);
        let p = this.phases[j]! + this.increments[j]!;
        if (p >= 1) p -= 1;
        this.phases[j] = p;
      }
      if (this.modIncrement > 0) {
        v *= (1 + this.modDepth * Math.sin(2 * Math.PI * this.modPhase)) / (1 + this.modDepth);
        this.modPhase += this.modIncrement;
        if (this.modPhase >= 1) this.modPhase -= 1;
      }
      const s = Math.round(v * this.amplitude);
      out[k] = s > 32767 ? 32767 : s < -32768 ? -32768 : s;
    }
  }
}
