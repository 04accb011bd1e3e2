/**
 * A double-talk-aware echo suppressor for door stations with a loudspeaker and a microphone: the
 * microphone picks up what the speaker plays (the far end's voice, "echo"), and the far end would
 * hear itself. While only the far end talks, the microphone signal is attenuated; while the near
 * end talks too ("double talk"), it passes.
 *
 * Double talk is found with the Geigel detector (described in D. L. Duttweiler, "A twelve-channel
 * digital echo canceler", IEEE Trans. Commun. COM-26(5), May 1978): the near end talks when |near(n)| ≥ ρ · max{|far(n)|, …, |far(n−L+1)|}, with L the echo-path
 * tail and ρ the expected echo return loss (ρ = ½, 6 dB, for a line hybrid; set it from the
 * station's measured speaker-to-microphone loss). Here |near| is a peak envelope (instant attack,
 * exponential release) so the detector does not flicker at zero crossings; the decision is held
 * for a hangover time after the near end stops, and the gain moves along one-pole ramps, closing
 * fast and opening a little slower, so there are no clicks.
 *
 * Pure and frame-size independent: any split of the same two streams gives the same output.
 */

/** Settings; every field but the rate has a default. */
export interface EchoSuppressorOptions {
  /** Sample rate of both streams, Hz. */
  sampleRate: number;
  /** Expected loss from the speaker signal to its echo in the microphone, dB (default 6). */
  echoReturnLossDb?: number;
  /** Longest echo delay covered (the Geigel window), ms (default 128). */
  tailMs?: number;
  /** Attenuation applied to the microphone during far-end single talk, dB (default 30). */
  suppressionDb?: number;
  /** Double-talk hangover after the near end falls silent, ms (default 60). */
  holdMs?: number;
  /** Time constant of the gain closing, ms (default 2). */
  closeMs?: number;
  /** Time constant of the gain opening, ms (default 5). */
  openMs?: number;
  /** Release time constant of the near-end peak envelope, ms (default 20). */
  nearReleaseMs?: number;
  /** Far-end peak level under which the far end counts as silent, dBFS (default -50). */
  farSilenceDbfs?: number;
}

/** Counters since construction or {@link EchoSuppressor.reset}, in samples. */
export interface EchoSuppressorStats {
  samples: number;
  /** Samples during which the suppressor aimed at the attenuated gain (far-end single talk). */
  suppressing: number;
  /** Samples during which the Geigel detector (or its hangover) declared double talk. */
  doubleTalk: number;
}

const FULL_SCALE = 32768;

/**
 * One suppressor per microphone stream. The audio path calls {@link process} once per frame with
 * the far-end frame being played at the same time and the captured microphone frame.
 */
export class EchoSuppressor {
  private readonly threshold: number;
  private readonly minGain: number;
  private readonly holdSamples: number;
  private readonly closeCoef: number;
  private readonly openCoef: number;
  private readonly nearDecay: number;
  private readonly farSilence: number;
  private readonly blockLen: number;
  private readonly blockMaxima: Float64Array;

  private blockPos = 0;
  private blockIndex = 0;
  private blockMax = 0;
  private windowMax = 0;
  private nearEnv = 0;
  private hold = 0;
  private g = 1;
  private readonly counters: EchoSuppressorStats = { samples: 0, suppressing: 0, doubleTalk: 0 };

  constructor(options: EchoSuppressorOptions) {
    const rate = options.sampleRate;
    if (!(Number.isInteger(rate) && rate >= 4000 && rate <= 192_000)) throw new RangeError(`echo suppressor: sample rate must be 4000-192000 Hz (got ${rate})`);
    const ms = (v: number): number => (v * rate) / 1000;
    const coef = (tau: number): number => 1 - Math.exp(-1 / Math.max(1, ms(tau)));
    const tailMs = options.tailMs ?? 128;
    if (!(tailMs >= 1 && tailMs <= 2000)) throw new RangeError(`echo suppressor: tailMs must be 1-2000 (got ${tailMs})`);
    this.threshold = 10 ** (-(options.echoReturnLossDb ?? 6) / 20);
    this.minGain = 10 ** (-Math.abs(options.suppressionDb ?? 30) / 20);
    this.holdSamples = Math.round(ms(options.holdMs ?? 60));
    this.closeCoef = coef(options.closeMs ?? 2);
    this.openCoef = coef(options.openMs ?? 5);
    this.nearDecay = Math.exp(-1 / Math.max(1, ms(options.nearReleaseMs ?? 20)));
    this.farSilence = FULL_SCALE * 10 ** ((options.farSilenceDbfs ?? -50) / 20);
    this.blockLen = Math.max(1, Math.round(rate / 1000));
    this.blockMaxima = new Float64Array(Math.ceil(tailMs));
  }

  /** The gain applied to the last sample (1 = passing, lower = suppressing). */
  get gain(): number {
    return this.g;
  }

  /** Counters since construction or the last reset (a copy). */
  get stats(): EchoSuppressorStats {
    return { ...this.counters };
  }

  /** Forgets all history (a new call). */
  reset(): void {
    this.blockMaxima.fill(0);
    this.blockPos = this.blockIndex = 0;
    this.blockMax = this.windowMax = this.nearEnv = this.hold = 0;
    this.g = 1;
    this.counters.samples = this.counters.suppressing = this.counters.doubleTalk = 0;
  }

  /**
   * Processes one frame: `far` is what the speaker plays, `near` what the microphone captured
   * over the same period (equal lengths, else RangeError). Returns the microphone frame with the
   * echo suppressed, in `out` when given (it may be `near` itself). `gains`, when given, receives
   * the gain applied to each sample (for measurements).
   */
  process(far: Int16Array, near: Int16Array, out: Int16Array = new Int16Array(near.length), gains?: Float32Array): Int16Array {
    if (far.length !== near.length || out.length < near.length || (gains && gains.length < near.length)) {
      throw new RangeError(`echo suppressor: frames differ in length (far ${far.length}, near ${near.length}, out ${out.length})`);
    }
    for (let i = 0; i < near.length; i++) {
      const f = Math.abs(far[i]!);
      if (f > this.blockMax) this.blockMax = f;
      const farPeak = Math.max(this.windowMax, this.blockMax);

      const x = near[i]!;
      const a = Math.abs(x);
      this.nearEnv = a > this.nearEnv ? a : this.nearEnv * this.nearDecay;

      // Geigel: double talk when the near end exceeds the largest echo the far end can cause.
      // Only while the far end talks: in silence 0 ≥ ρ·0 would arm the hangover and let the
      // first echo of the next far-end burst through.
      const farActive = farPeak >= this.farSilence;
      const detected = farActive && this.nearEnv >= this.threshold * farPeak;
      if (detected) this.hold = this.holdSamples;
      else if (this.hold > 0) this.hold--;
      const talking = detected || this.hold > 0;
      const target = farActive && !talking ? this.minGain : 1;
      this.g += (target - this.g) * (target < this.g ? this.closeCoef : this.openCoef);

      this.counters.samples++;
      if (farActive && talking) this.counters.doubleTalk++;
      if (target < 1) this.counters.suppressing++;

      const y = Math.round(x * this.g);
      out[i] = y > 32767 ? 32767 : y < -32768 ? -32768 : y;
      if (gains) gains[i] = this.g;

      if (++this.blockPos === this.blockLen) this.endBlock();
    }
    return out;
  }

  /** Stores the block's far-end peak in the Geigel window and recomputes the window maximum. */
  private endBlock(): void {
    this.blockMaxima[this.blockIndex] = this.blockMax;
    this.blockIndex = (this.blockIndex + 1) % this.blockMaxima.length;
    this.blockPos = 0;
    this.blockMax = 0;
    let m = 0;
    for (const v of this.blockMaxima) if (v > m) m = v;
    this.windowMax = m;
  }
}
