/**
 * Packet loss concealment on linear PCM for codecs without their own (G.711, G.722, L16), in the
 * spirit of ITU-T G.711 Appendix I (waveform repetition):
 *
 * - a history of the last 3.25 longest pitch periods (48.75 ms) of good output is kept;
 * - at the start of an erasure the pitch period is found by normalised autocorrelation over the
 *   last 20 ms, searching 5–15 ms (66–200 Hz) at about 8 kHz resolution, then to the sample;
 * - the last pitch period is repeated, its end overlap-added with the quarter period before it so
 *   the repetition has no seam; after 10 ms two periods are cycled, after 20 ms three (App. I: less
 *   buzzy), each switch cross-faded over a quarter period;
 * - the output is attenuated by 20 % per 10 ms after the first 10 ms, reaching silence at 60 ms;
 * - the first good frame after an erasure is cross-faded with the continued synthetic signal over
 *   a quarter period plus 4 ms per extra 10 ms of erasure (at most 10 ms).
 *
 * Unlike Appendix I this version adds no algorithmic delay (App. I delays output by a quarter of the
 * longest period to overlap-add at the start of an erasure): the step at the start of an erasure
 * is instead corrected by an offset that decays over a quarter period, so that the first
 * synthetic sample continues the last good one with the slope seen one period earlier.
 *
 * Pure and stateful per stream and direction. Works at any sample rate (8, 16, 48 kHz...).
 */
export class WaveformPlc {
  private readonly hist: Float32Array;
  private readonly pitchMin: number;
  private readonly pitchMax: number;
  private readonly corrLen: number;
  private readonly ms10: number;
  private readonly ms4: number;
  private src = new Float32Array(0);
  private pitch = 0;
  private quarter = 1;
  private junction = 0;
  private erased = 0;

  /** @param sampleRate rate of the PCM passed to {@link good} and produced by {@link conceal}. */
  constructor(readonly sampleRate: number) {
    if (!(sampleRate >= 1000)) throw new RangeError(`WaveformPlc: bad sample rate ${sampleRate}`);
    const ms = sampleRate / 1000;
    this.pitchMin = Math.round(5 * ms);
    this.pitchMax = Math.round(15 * ms);
    this.corrLen = Math.round(20 * ms);
    this.ms10 = Math.round(10 * ms);
    this.ms4 = Math.round(4 * ms);
    this.hist = new Float32Array(Math.ceil(3.25 * this.pitchMax));
  }

  /** True while concealing (since the last {@link conceal}, until the next {@link good}). */
  get concealing(): boolean {
    return this.erased > 0;
  }

  /**
   * Records a frame of good PCM. Returns it unchanged, except for the first frame after an
   * erasure, which comes back as a new array cross-faded from the concealment.
   */
  good(pcm: Int16Array): Int16Array {
    let out = pcm;
    if (this.erased > 0) {
      // G.711 App. I: the overlap grows by 4 ms for each 10 ms erased beyond the first, up to 10 ms.
      const extra = Math.max(0, Math.ceil(this.erased / this.ms10) - 1) * this.ms4;
      const olen = Math.min(pcm.length, this.ms10, this.quarter + extra);
      out = Int16Array.from(pcm);
      for (let j = 0; j < olen; j++) {
        const w = (j + 1) / (olen + 1);
        out[j] = toInt16(this.synth(this.erased + j) * (1 - w) + pcm[j]! * w);
      }
      this.erased = 0;
    }
    this.remember(out);
    return out;
  }

  /** Produces `samples` samples of concealment continuing the signal (or the current erasure). */
  conceal(samples: number): Int16Array {
    if (this.erased === 0) this.startErasure();
    const out = new Int16Array(Math.max(0, samples));
    for (let i = 0; i < out.length; i++) out[i] = toInt16(this.synth(this.erased + i));
    this.erased += out.length;
    this.remember(out);
    return out;
  }

  /** Forgets the history (a new stream). */
  reset(): void {
    this.hist.fill(0);
    this.erased = 0;
  }

  private remember(pcm: Int16Array): void {
    const h = this.hist;
    const n = pcm.length;
    if (n >= h.length) {
      for (let i = 0; i < h.length; i++) h[i] = pcm[n - h.length + i]!;
      return;
    }
    h.copyWithin(0, n);
    for (let i = 0; i < n; i++) h[h.length - n + i] = pcm[i]!;
  }

  private startErasure(): void {
    this.src = this.hist.slice();
    this.pitch = this.findPitch();
    this.quarter = Math.max(1, this.pitch >> 2);
    const h = this.src.length;
    this.junction = this.src[h - 1]! - this.src[h - 1 - this.pitch]!;
  }

  /** Sample `i` of the erasure (counted from its start), attenuation included. */
  private synth(i: number): number {
    const k = i < this.ms10 ? 1 : i < 2 * this.ms10 ? 2 : 3;
    let v = this.cycle(k, i);
    const sinceSwitch = i - (k - 1) * this.ms10;
    if (k > 1 && sinceSwitch < this.quarter) {
      const w = (sinceSwitch + 1) / (this.quarter + 1);
      v = this.cycle(k - 1, i) * (1 - w) + v * w;
    }
    if (i < this.quarter) v += this.junction * (1 - (i + 1) / (this.quarter + 1));
    // G.711 App. I: no attenuation for 10 ms, then 20 % per 10 ms, silent from 60 ms.
    const gain = i < this.ms10 ? 1 : Math.max(0, 1 - (0.2 * (i - this.ms10)) / this.ms10);
    return v * gain;
  }

  /**
   * The last `k` pitch periods repeated; the last quarter period of the cycle is blended into the
   * quarter period that precedes the cycle, so the wrap back to its start is seamless.
   */
  private cycle(k: number, i: number): number {
    const src = this.src;
    const h = src.length;
    const span = k * this.pitch;
    const j = i % span;
    const v = src[h - span + j]!;
    const tail = j - (span - this.quarter);
    if (tail < 0) return v;
    const w = (tail + 1) / (this.quarter + 1);
    return v * (1 - w) + src[h - span - this.quarter + tail]! * w;
  }

  /** Lag maximising Σ x[n]·x[n−lag] / √Σ x[n−lag]² over the last 20 ms (G.711 App. I §I.2.2). */
  private findPitch(): number {
    const step = Math.max(1, Math.round(this.sampleRate / 8000));
    let best = this.bestLag(this.pitchMin, this.pitchMax, step, step);
    best = this.bestLag(Math.max(this.pitchMin, best - step), Math.min(this.pitchMax, best + step), 1, 1);
    return best;
  }

  private bestLag(from: number, to: number, lagStep: number, sampleStep: number): number {
    const x = this.src;
    const end = x.length;
    const start = end - this.corrLen;
    let best = from;
    let bestScore = -Infinity;
    for (let lag = from; lag <= to; lag += lagStep) {
      let corr = 0;
      let energy = 0;
      for (let n = start; n < end; n += sampleStep) {
        const y = x[n - lag]!;
        corr += x[n]! * y;
        energy += y * y;
      }
      const score = energy > 0 ? corr / Math.sqrt(energy) : 0;
      if (score > bestScore) {
        bestScore = score;
        best = lag;
      }
    }
    return best;
  }
}

function toInt16(v: number): number {
  const r = Math.round(v);
  return r > 32767 ? 32767 : r < -32768 ? -32768 : r;
}
