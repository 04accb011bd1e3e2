/**
 * Minimal WAV tools for the media tests: write a pure tone as 16-bit PCM mono (the audio source
 * baresip's aufile plays), read what baresip's sndfile recorded, and find which frequency
 * dominates a recording with the Goertzel algorithm (one DFT bin per candidate frequency).
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface ToneOptions {
  /** Sample rate in Hz (must equal the rate the reader expects: baresip's aufile does not resample). */
  rate: number;
  seconds: number;
  /** Tone frequency in Hz. */
  frequency: number;
  /** Peak amplitude 0..1 of full scale; default 0.5. */
  amplitude?: number;
  /** Channels, each carrying the same tone; default 1. */
  channels?: number;
}

/** Writes a sine tone as a canonical 44-byte-header PCM WAV (16-bit little-endian). */
export function writeToneWav(path: string, opts: ToneOptions): void {
  const channels = opts.channels ?? 1;
  const frames = Math.round(opts.rate * opts.seconds);
  const amplitude = Math.max(0, Math.min(1, opts.amplitude ?? 0.5)) * 32767;
  const data = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < frames; i++) {
    const v = Math.round(amplitude * Math.sin((2 * Math.PI * opts.frequency * i) / opts.rate));
    for (let c = 0; c < channels; c++) data.writeInt16LE(v, (i * channels + c) * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(opts.rate, 24);
  header.writeUInt32LE(opts.rate * channels * 2, 28);
  header.writeUInt16LE(channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([header, data]));
}

export interface WavData {
  rate: number;
  channels: number;
  /** The first channel's samples. */
  samples: Int16Array;
}

/**
 * Reads a 16-bit PCM WAV (any chunk order; a data chunk whose size field is 0 or too large, as
 * left by a writer killed before it finalised the header, is read to the end of the file).
 */
export function readWav(path: string): WavData {
  const buf = readFileSync(path);
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    throw new Error(`${path}: not a RIFF/WAVE file`);
  }
  let offset = 12;
  let rate = 0;
  let channels = 0;
  let bits = 0;
  for (let chunks = 0; chunks < 64 && offset + 8 <= buf.length; chunks++) {
    const id = buf.toString('latin1', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      const format = buf.readUInt16LE(body);
      channels = buf.readUInt16LE(body + 2);
      rate = buf.readUInt32LE(body + 4);
      bits = buf.readUInt16LE(body + 14);
      if ((format !== 1 && format !== 0xfffe) || bits !== 16) throw new Error(`${path}: only 16-bit PCM is supported (format ${format}, ${bits} bits)`);
    } else if (id === 'data') {
      if (!rate) throw new Error(`${path}: data chunk before fmt chunk`);
      const end = size === 0 || body + size > buf.length ? buf.length : body + size;
      const frames = Math.floor((end - body) / (2 * channels));
      const samples = new Int16Array(frames);
      for (let i = 0; i < frames; i++) samples[i] = buf.readInt16LE(body + i * channels * 2);
      return { rate, channels, samples };
    }
    offset = body + size + (size % 2);
  }
  throw new Error(`${path}: no data chunk`);
}

export interface DominantFrequency {
  /** The candidate with the most energy, in Hz. */
  frequency: number;
  /**
   * The share of the signal's total energy within about ±10 Hz of `frequency` (its analysis bin
   * and the two adjacent ones), 0..1: a clean tone gives close to 1 wherever it falls.
   */
  ratio: number;
  /** Root-mean-square level of the analysed samples, 0..32768 (0: silence). */
  rms: number;
}

/** Analysis blocks of 100 ms: Goertzel bins 10 Hz wide. */
const BIN_HZ = 10;

/** Goertzel power at `frequency` over `samples[from, to)`. */
function goertzel(samples: Int16Array, from: number, to: number, rate: number, frequency: number): number {
  const w = (2 * Math.PI * frequency) / rate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = from; i < to; i++) {
    const s0 = samples[i]! + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - coeff * s1 * s2;
}

/**
 * Which frequency dominates `samples`: the Goertzel power at each candidate (default: every
 * 10 Hz from 100 to 4000 Hz, capped below Nyquist), summed over 100 ms blocks, and the share of
 * the total energy near the best one. For a sine of amplitude A over a block of N samples the
 * Goertzel power is about (A·N/2)² and the block's energy Σx² about A²·N/2, so
 * 2·power / (N·Σx²) is ≈1 for a tone on a bin centre; adding the two neighbouring bins
 * (±10 Hz) keeps the ratio above ~0.8 for a tone between bins.
 */
export function dominantFrequency(samples: Int16Array, rate: number, candidates?: number[]): DominantFrequency {
  const list = candidates ?? defaultCandidates(rate);
  const n = samples.length;
  let energy = 0;
  for (let i = 0; i < n; i++) energy += samples[i]! * samples[i]!;
  const rms = n > 0 ? Math.sqrt(energy / n) : 0;
  const block = Math.max(1, Math.round(rate / BIN_HZ));
  const blocks = Math.floor(n / block);
  if (blocks === 0 || energy === 0 || list.length === 0) return { frequency: 0, ratio: 0, rms };
  const used = blocks * block;
  let usedEnergy = 0;
  for (let i = 0; i < used; i++) usedEnergy += samples[i]! * samples[i]!;
  const power = (f: number) => {
    if (f <= 0 || f >= rate / 2) return 0;
    let sum = 0;
    for (let b = 0; b < blocks; b++) sum += goertzel(samples, b * block, (b + 1) * block, rate, f);
    return sum;
  };
  let best = list[0]!;
  let bestPower = -1;
  for (const f of list) {
    const p = power(f);
    if (p > bestPower) {
      bestPower = p;
      best = f;
    }
  }
  const near = bestPower + power(best - BIN_HZ) + power(best + BIN_HZ);
  return { frequency: best, ratio: usedEnergy > 0 ? Math.min(1, (2 * near) / (block * usedEnergy)) : 0, rms };
}

function defaultCandidates(rate: number): number[] {
  const top = Math.min(4000, rate / 2 - 10);
  const out: number[] = [];
  for (let f = 100; f <= top; f += 10) out.push(f);
  return out;
}

/**
 * The middle part of a recording, skipping `skipSeconds` at both ends (call set-up, jitter
 * buffer fill, the hang-up), for a steady-state analysis.
 */
export function steadyPart(samples: Int16Array, rate: number, skipSeconds = 0.5): Int16Array {
  const skip = Math.floor(rate * skipSeconds);
  if (samples.length <= 2 * skip) return samples;
  return samples.subarray(skip, samples.length - skip);
}
