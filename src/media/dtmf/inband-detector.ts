/**
 * In-band DTMF detection for legs that send keys as audio: Goertzel-style single-bin DFTs at the
 * eight DTMF frequencies over overlapping blocks of 16-bit PCM, checked against the receiver
 * limits of ITU-T Q.24 (11/1988), "Multifrequency push-button signal reception", whose table
 * lists per administration (figures below are the commonly used AT&T/Bellcore column, which the
 * other columns fall within or near):
 * - frequency tolerance: operate within ±1.5 %, do not operate beyond ±3.5 %;
 * - twist (level difference between the two tones): operate up to 8 dB "normal" (low group
 *   stronger, as after line loss) and 4 dB "reverse" (high group stronger);
 * - signal duration: operate at 40 ms or more, do not operate at 23 ms or less;
 * - signal interruption: an interruption of 10 ms or less is not a new key press;
 * - plus the talk-off guards every practical receiver adds: the two tones must hold almost all the
 *   energy (signal to residual), each must dominate the other frequencies of its group, and
 *   voiced-speech-like second harmonics must be absent.
 *
 * Frequency is measured, not only binned: the phase advance of each bin between two blocks half a
 * block apart gives the tone's offset from the nominal frequency to a few Hz, so ±3.5 % is
 * rejected even at 697 Hz where it is 24 Hz, well inside one bin.
 */
import type { DtmfDigit } from './types.ts';

const ROWS = [697, 770, 852, 941] as const;
const COLS = [1209, 1336, 1477, 1633] as const;
const KEYPAD = ['123A', '456B', '789C', '*0#D'] as const;

/** 0 dBm0 as a sine amplitude in 16-bit PCM: a full-scale sine is +3.14 dBm0 (ITU-T G.711). */
const DBM0_AMPLITUDE = 32767 / 10 ** (3.14 / 20);

/** Tunable limits of an {@link InbandDtmfDetector}; defaults follow Q.24 as described above. */
export interface InbandDtmfOptions {
  /** PCM sample rate in Hz (default 8000; 16000 and other rates of 8000 or more work). */
  sampleRate?: number;
  /** Accept a tone whose frequencies are within this fraction of nominal (default 0.025, between 1.5 % and 3.5 %). */
  frequencyTolerance?: number;
  /** Low group may exceed the high group by this much (dB, default 8, Q.24 "normal twist"). */
  twistLowOverHighDb?: number;
  /** High group may exceed the low group by this much (dB, default 4, Q.24 "reverse twist"). */
  twistHighOverLowDb?: number;
  /** Weakest tone accepted, per frequency (dBm0, default -30). */
  minLevelDbm0?: number;
  /** Shortest key press reported (ms, default 40). */
  minToneMs?: number;
  /** Longest interruption bridged inside one key press (ms, default 10). */
  maxInterruptionMs?: number;
  /** The energy outside the two tones must be at least this far below them (dB, default 10). */
  minSignalToResidualDb?: number;
  /** Other frequencies of a group must be at least this far below its tone (dB, default 8). */
  minRelativePeakDb?: number;
  /** Second harmonics must be at least this far below their fundamental (dB, default 15). */
  minHarmonicRejectionDb?: number;
}

interface Active {
  digit: string;
  firstHop: number;
  lastHop: number;
  misses: number;
}

/**
 * A streaming DTMF detector. Feed PCM in chunks of any size with {@link process}; each call
 * returns the key presses that ended within it (a press is reported once, at its end, with its
 * duration). {@link flush} ends a press still held at the end of the stream. Pure and
 * deterministic: the same samples in any chunking give the same digits.
 */
export class InbandDtmfDetector {
  readonly sampleRate: number;
  private readonly n: number;
  private readonly hop: number;
  private readonly freqs: number[];
  private readonly cosTab: Float64Array[];
  private readonly sinTab: Float64Array[];
  private readonly block: Float64Array;
  private fill: number;
  private hopIndex = 0;
  private readonly prevRe = new Float64Array(8);
  private readonly prevIm = new Float64Array(8);
  private hasPrev = false;
  private readonly tol: number;
  private readonly twistLow: number;
  private readonly twistHigh: number;
  private readonly minAmplitude: number;
  private readonly confirmHops: number;
  private readonly endHops: number;
  private readonly residualRatio: number;
  private readonly relPeak: number;
  private readonly harmonicRatio: number;
  private active: Active | undefined;
  private candidate: string | undefined;
  private candidateFirst = 0;
  private candidateCount = 0;

  constructor(opts: InbandDtmfOptions = {}) {
    this.sampleRate = opts.sampleRate ?? 8000;
    if (!(this.sampleRate >= 8000)) throw new RangeError(`in-band DTMF needs a sample rate of 8000 Hz or more, got ${this.sampleRate}`);
    // Blocks of 12.75 ms (102 samples at 8 kHz, bins 78 Hz wide: neighbouring DTMF frequencies,
    // 73 Hz apart at least, fall near the first null), analysed every half block.
    this.hop = Math.round((this.sampleRate * 51) / 8000);
    this.n = 2 * this.hop;
    this.block = new Float64Array(this.n);
    this.fill = 0;
    this.freqs = [...ROWS, ...COLS];
    this.cosTab = this.freqs.map((f) => this.table(f, Math.cos));
    this.sinTab = this.freqs.map((f) => this.table(f, Math.sin));
    this.tol = opts.frequencyTolerance ?? 0.025;
    this.twistLow = 10 ** ((opts.twistLowOverHighDb ?? 8) / 10);
    this.twistHigh = 10 ** ((opts.twistHighOverLowDb ?? 4) / 10);
    this.minAmplitude = DBM0_AMPLITUDE * 10 ** ((opts.minLevelDbm0 ?? -30) / 20);
    const hopMs = (this.hop * 1000) / this.sampleRate;
    const spanMs = hopMs * 3; // one hop's decision looks at a block and the one half a block before
    // A press of L ms gives at least floor((L - span) / hop) + 1 valid hops.
    this.confirmHops = Math.max(1, Math.floor(((opts.minToneMs ?? 40) - spanMs) / hopMs + 1e-9) + 1);
    // An interruption of G ms spoils at most ceil((G + span) / hop) hops.
    this.endHops = Math.ceil(((opts.maxInterruptionMs ?? 10) + spanMs) / hopMs) + 1;
    this.residualRatio = 10 ** (-(opts.minSignalToResidualDb ?? 10) / 10);
    this.relPeak = 10 ** (-(opts.minRelativePeakDb ?? 8) / 10);
    this.harmonicRatio = 10 ** (-(opts.minHarmonicRejectionDb ?? 15) / 10);
  }

  /** Analyses `pcm` (mono, at `sampleRate`); returns the key presses that ended in it. */
  process(pcm: Int16Array): DtmfDigit[] {
    const out: DtmfDigit[] = [];
    for (let i = 0; i < pcm.length; ) {
      const take = Math.min(pcm.length - i, this.n - this.fill);
      for (let k = 0; k < take; k++) this.block[this.fill + k] = pcm[i + k]!;
      this.fill += take;
      i += take;
      if (this.fill === this.n) {
        this.decide(this.analyse(), out);
        this.block.copyWithin(0, this.hop);
        this.fill = this.n - this.hop;
      }
    }
    return out;
  }

  /** Ends the key press still held, if any (end of stream, call hung up). */
  flush(): DtmfDigit[] {
    const out: DtmfDigit[] = [];
    if (this.active) out.push(this.finish(this.active));
    this.active = undefined;
    this.candidate = undefined;
    this.candidateCount = 0;
    return out;
  }

  /** The key currently held (confirmed, not yet ended), if any. */
  get holding(): string | undefined {
    return this.active?.digit;
  }

  private table(f: number, fn: (x: number) => number): Float64Array {
    const t = new Float64Array(this.n);
    const w = (2 * Math.PI * f) / this.sampleRate;
    for (let m = 0; m < this.n; m++) t[m] = fn(w * m);
    return t;
  }

  /** Power of the DFT of `x` (one block) at `f`. */
  private power(x: Float64Array, f: number): number {
    const w = (2 * Math.PI * f) / this.sampleRate;
    let re = 0;
    let im = 0;
    for (let m = 0; m < this.n; m++) {
      re += x[m]! * Math.cos(w * m);
      im -= x[m]! * Math.sin(w * m);
    }
    return re * re + im * im;
  }

  /**
   * Least-squares fit of two sinusoids at `f1` and `f2` to the block: their amplitudes, the
   * energy they explain, the energy left over, and the block minus the fit.
   */
  private fitTwoTones(f1: number, f2: number): { amplitudes: [number, number]; tones: number; residual: number; rest: Float64Array } | undefined {
    const n = this.n;
    const basis: Float64Array[] = [];
    for (const f of [f1, f2]) {
      const w = (2 * Math.PI * f) / this.sampleRate;
      const c = new Float64Array(n);
      const s = new Float64Array(n);
      for (let m = 0; m < n; m++) {
        c[m] = Math.cos(w * m);
        s[m] = Math.sin(w * m);
      }
      basis.push(c, s);
    }
    const g = basis.map((u) => basis.map((v) => dot(u, v, n)));
    const rhs = basis.map((u) => dot(u, this.block, n));
    const coef = solve(g, rhs);
    if (coef === undefined) return undefined;
    const rest = Float64Array.from(this.block);
    for (let k = 0; k < 4; k++) {
      const u = basis[k]!;
      const a = coef[k]!;
      for (let m = 0; m < n; m++) rest[m]! -= a * u[m]!;
    }
    const tones = coef.reduce((sum, a, k) => sum + a * rhs[k]!, 0);
    const amplitudes: [number, number] = [Math.hypot(coef[0]!, coef[1]!), Math.hypot(coef[2]!, coef[3]!)];
    return { amplitudes, tones, residual: dot(rest, rest, n), rest };
  }

  /** The key this block holds, or undefined. */
  private analyse(): string | undefined {
    const n = this.n;
    const re = new Float64Array(8);
    const im = new Float64Array(8);
    const pw = new Float64Array(8);
    for (let f = 0; f < 8; f++) {
      const c = this.cosTab[f]!;
      const s = this.sinTab[f]!;
      let a = 0;
      let b = 0;
      for (let m = 0; m < n; m++) {
        const x = this.block[m]!;
        a += x * c[m]!;
        b -= x * s[m]!;
      }
      re[f] = a;
      im[f] = b;
      pw[f] = a * a + b * b;
    }
    const hadPrev = this.hasPrev;
    const pRe = Float64Array.from(this.prevRe);
    const pIm = Float64Array.from(this.prevIm);
    this.prevRe.set(re);
    this.prevIm.set(im);
    this.hasPrev = true;
    if (!hadPrev) return undefined;

    const r = argmax(pw, 0);
    const c = argmax(pw, 4);
    // Cheap screening on the bins before the fit below measures the tones precisely.
    const floor = this.minAmplitude / 2;
    if ((2 * Math.sqrt(pw[r]!)) / n < floor || (2 * Math.sqrt(pw[c]!)) / n < floor) return undefined;
    for (let i = 0; i < 4; i++) {
      if (i !== r && pw[i]! > pw[r]! * this.relPeak) return undefined;
      if (i + 4 !== c && pw[i + 4]! > pw[c]! * this.relPeak) return undefined;
    }
    // Q.24 frequency tolerance, from the phase advance over one hop.
    const offsetR = this.offsetHz(r, re, im, pRe, pIm);
    const offsetC = this.offsetHz(c, re, im, pRe, pIm);
    if (Math.abs(offsetR) > this.tol * this.freqs[r]! || Math.abs(offsetC) > this.tol * this.freqs[c]!) return undefined;
    const fit = this.fitTwoTones(this.freqs[r]! + offsetR, this.freqs[c]! + offsetC);
    if (fit === undefined) return undefined;
    if (fit.amplitudes[0] < this.minAmplitude || fit.amplitudes[1] < this.minAmplitude) return undefined;
    // Q.24 twist: the stronger tone may exceed the weaker by the normal/reverse limit only.
    const lowOverHigh = (fit.amplitudes[0] / fit.amplitudes[1]) ** 2;
    if (lowOverHigh > this.twistLow || 1 / lowOverHigh > this.twistHigh) return undefined;
    // Energy outside the two tones.
    if (fit.residual > fit.tones * this.residualRatio) return undefined;
    // Voiced speech and instruments carry harmonics; a DTMF generator does not.
    for (const f of [this.freqs[r]! + offsetR, this.freqs[c]! + offsetC]) {
      if (2 * f >= this.sampleRate / 2 - this.sampleRate / this.n) continue;
      if (this.power(fit.rest, 2 * f) > this.power(this.block, f) * this.harmonicRatio) return undefined;
    }
    return KEYPAD[r]![c - 4];
  }

  private offsetHz(i: number, re: Float64Array, im: Float64Array, pRe: Float64Array, pIm: Float64Array): number {
    const x = re[i]! * pRe[i]! + im[i]! * pIm[i]!;
    const y = im[i]! * pRe[i]! - re[i]! * pIm[i]!;
    const expected = (2 * Math.PI * this.freqs[i]! * this.hop) / this.sampleRate;
    let d = Math.atan2(y, x) - expected;
    d -= 2 * Math.PI * Math.round(d / (2 * Math.PI));
    return (d * this.sampleRate) / (2 * Math.PI * this.hop);
  }

  private decide(digit: string | undefined, out: DtmfDigit[]): void {
    const hop = this.hopIndex++;
    if (digit !== undefined && digit === this.candidate) {
      this.candidateCount++;
    } else {
      this.candidate = digit;
      this.candidateFirst = hop;
      this.candidateCount = digit === undefined ? 0 : 1;
    }
    const a = this.active;
    if (a) {
      if (digit === a.digit) {
        a.lastHop = hop;
        a.misses = 0;
        return;
      }
      a.misses++;
      // Q.24 signal interruption: a gap of up to maxInterruptionMs is part of the same press; a
      // longer one, or another key held long enough, ends it.
      const otherConfirmed = digit !== undefined && this.candidateCount >= this.confirmHops;
      if (a.misses < this.endHops && !otherConfirmed) return;
      out.push(this.finish(a));
      this.active = undefined;
    }
    if (this.candidate !== undefined && this.candidateCount >= this.confirmHops) {
      this.active = { digit: this.candidate, firstHop: this.candidateFirst, lastHop: hop, misses: 0 };
    }
  }

  private finish(a: Active): DtmfDigit {
    const samples = (a.lastHop - a.firstHop) * this.hop + this.n + this.hop;
    return { digit: a.digit, durationMs: Math.round((samples * 1000) / this.sampleRate), source: 'inband' };
  }
}

function argmax(p: Float64Array, from: number): number {
  let best = from;
  for (let i = from + 1; i < from + 4; i++) if (p[i]! > p[best]!) best = i;
  return best;
}

function dot(a: Float64Array, b: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i]! * b[i]!;
  return s;
}

/** Solves the small linear system `a·x = b` by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] | undefined {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let i = col + 1; i < n; i++) if (Math.abs(m[i]![col]!) > Math.abs(m[piv]![col]!)) piv = i;
    if (Math.abs(m[piv]![col]!) < 1e-9) return undefined;
    [m[col], m[piv]] = [m[piv]!, m[col]!];
    for (let i = col + 1; i < n; i++) {
      const k = m[i]![col]! / m[col]![col]!;
      for (let j = col; j <= n; j++) m[i]![j]! -= k * m[col]![j]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = m[i]![n]!;
    for (let j = i + 1; j < n; j++) s -= m[i]![j]! * x[j]!;
    x[i] = s / m[i]![i]!;
  }
  return x;
}
