/**
 * The speexdsp resampler (libspeexdsp `resample.c`, built as wasm by
 * `@echogarden/speex-resampler-wasm`) behind the {@link ResamplerFactory} contract.
 *
 * The `.wasm` binary is read from beside the running script first (the esbuild bundle in `dist/`
 * carries a copy, see `scripts/build.mjs`) and otherwise from the installed package (running from
 * source with tsx). This file is the loader's edge: it reads that one file at start; the
 * resamplers it creates are pure and synchronous.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
// @ts-expect-error -- the package ships emscripten glue without type declarations (typed below).
import createSimdModule from '@echogarden/speex-resampler-wasm/simd';
// @ts-expect-error -- as above, the build without wasm SIMD for engines that lack it.
import createPlainModule from '@echogarden/speex-resampler-wasm';
import type { Resampler, ResamplerFactory } from './types.ts';

/** What loading may be told. */
export interface SpeexResamplerOptions {
  /** speexdsp quality 0..10 (filter length and stop-band attenuation); 5 by default. */
  readonly quality?: number;
  /** Use the wasm SIMD build when the engine validates it (default true); false forces the plain one. */
  readonly simd?: boolean;
}

/** Per-resampler options beyond the {@link ResamplerFactory} contract. */
export interface SpeexCreateOptions {
  /**
   * Run the filter even when the rates are equal, so that {@link SpeexResampler.setRatioCorrection}
   * can nudge a 48 kHz → 48 kHz stream for clock drift. Without it equal rates pass through.
   */
  readonly adjustable?: boolean;
}

/** A speexdsp resampler: the contract plus drift correction and its delay. */
export interface SpeexResampler extends Resampler {
  /**
   * Output samples by which the signal lags (the filter's group delay at the output rate):
   * input sample `i` comes out near output sample `i·out/in + delay`. 0 for a pass-through.
   */
  readonly delay: number;
  /**
   * Stretches the output by `ppm` parts per million (positive: more output samples per input,
   * i.e. the stream plays slower; negative: fewer). For clock-drift control by the jitter buffer;
   * takes effect on the next {@link Resampler.process}. Limited to ±10000 ppm. Throws on a
   * pass-through resampler (equal rates created without `adjustable`).
   */
  setRatioCorrection(ppm: number): void;
}

/** Creates {@link SpeexResampler}s sharing one wasm instance. */
export interface SpeexResamplerFactory extends ResamplerFactory {
  /** Whether the SIMD build was loaded. */
  readonly simd: boolean;
  readonly quality: number;
  create(inputRate: number, outputRate: number, opts?: SpeexCreateOptions): SpeexResampler;
}

/** The part of the emscripten module this file uses. */
interface SpeexModule {
  HEAP16: Int16Array;
  HEAPU32: Uint32Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  _speex_resampler_init(channels: number, inRate: number, outRate: number, quality: number, errPtr: number): number;
  _speex_resampler_set_rate_frac(st: number, num: number, den: number, inRate: number, outRate: number): number;
  _speex_resampler_process_int(st: number, channel: number, inPtr: number, inLenPtr: number, outPtr: number, outLenPtr: number): number;
  _speex_resampler_get_output_latency(st: number): number;
  _speex_resampler_destroy(st: number): void;
}

type ModuleFactory = (opts: { wasmBinary: Uint8Array }) => Promise<SpeexModule>;

const MAX_CORRECTION_PPM = 10_000;
/**
 * Rates are scaled by this for {@link SpeexResampler.setRatioCorrection}: 0.125 ppm steps at
 * 8 kHz, and `den × oversample(16)` stays below 2³² at 48 kHz (speexdsp keeps fractions in u32).
 */
const RATIO_SCALE = 1000;

/**
 * Loads the speexdsp wasm (the SIMD build when it is found and the engine validates it, else the
 * plain build) and returns a factory of streaming mono 16-bit resamplers at `quality` (default 5).
 * Rejects when no usable `.wasm` file can be found or the quality is not 0..10.
 */
export async function loadSpeexResampler(opts: SpeexResamplerOptions = {}): Promise<SpeexResamplerFactory> {
  const quality = opts.quality ?? 5;
  if (!Number.isInteger(quality) || quality < 0 || quality > 10) {
    throw new RangeError(`speex resampler quality must be an integer 0..10 (got ${quality})`);
  }
  let simd = false;
  let mod: SpeexModule | undefined;
  if (opts.simd !== false) {
    const binary = await readWasm('speex-resampler-simd.wasm').catch(() => undefined);
    if (binary && WebAssembly.validate(binary)) {
      mod = await (createSimdModule as ModuleFactory)({ wasmBinary: binary });
      simd = true;
    }
  }
  if (!mod) mod = await (createPlainModule as ModuleFactory)({ wasmBinary: await readWasm('speex-resampler-nonsimd.wasm') });
  const m = mod;
  return {
    simd,
    quality,
    create(inputRate, outputRate, createOpts) {
      checkRate(inputRate);
      checkRate(outputRate);
      if (inputRate === outputRate && !createOpts?.adjustable) return passThrough(inputRate);
      return new WasmResampler(m, inputRate, outputRate, quality);
    },
  };
}

function checkRate(rate: number): void {
  if (!Number.isInteger(rate) || rate < 1000 || rate > 384_000) {
    throw new RangeError(`sample rate must be an integer 1000..384000 Hz (got ${rate})`);
  }
}

function passThrough(rate: number): SpeexResampler {
  return {
    inputRate: rate,
    outputRate: rate,
    delay: 0,
    process: (input) => input,
    setRatioCorrection() {
      throw new Error('a pass-through resampler cannot correct its ratio: create it with { adjustable: true }');
    },
    close() {},
  };
}

/** One speexdsp state plus its wasm-side buffers, grown on demand and reused. */
class WasmResampler implements SpeexResampler {
  readonly delay: number;
  private state: number;
  /** Two u32 cells: the in/out lengths speexdsp reads and updates. */
  private readonly lengths: number;
  private inPtr = 0;
  private inCap = 0;
  private outPtr = 0;
  private outCap = 0;
  private stretch = 1;

  constructor(
    private readonly mod: SpeexModule,
    readonly inputRate: number,
    readonly outputRate: number,
    quality: number,
  ) {
    this.lengths = mod._malloc(8);
    mod.HEAPU32[this.lengths >> 2] = 0;
    const state = mod._speex_resampler_init(1, inputRate, outputRate, quality, this.lengths);
    const err = mod.HEAPU32[this.lengths >> 2]!;
    if (state === 0 || err !== 0) {
      mod._free(this.lengths);
      throw new Error(`speex_resampler_init(${inputRate} → ${outputRate}, q${quality}) failed with error ${err}`);
    }
    this.state = state;
    this.delay = mod._speex_resampler_get_output_latency(state);
  }

  setRatioCorrection(ppm: number): void {
    this.assertOpen();
    if (!Number.isFinite(ppm) || Math.abs(ppm) > MAX_CORRECTION_PPM) {
      throw new RangeError(`ratio correction must be within ±${MAX_CORRECTION_PPM} ppm (got ${ppm})`);
    }
    const num = this.inputRate * RATIO_SCALE;
    const den = Math.round(this.outputRate * RATIO_SCALE * (1 + ppm / 1e6));
    const err = this.mod._speex_resampler_set_rate_frac(this.state, num, den, this.inputRate, this.outputRate);
    if (err !== 0) throw new Error(`speex_resampler_set_rate_frac(${num}/${den}) failed with error ${err}`);
    this.stretch = den / (this.outputRate * RATIO_SCALE);
  }

  process(input: Int16Array): Int16Array {
    this.assertOpen();
    if (input.length === 0) return new Int16Array(0);
    const expected = Math.ceil((input.length * this.outputRate * this.stretch) / this.inputRate);
    this.reserve(input.length, expected + 16);
    const m = this.mod;
    m.HEAP16.set(input, this.inPtr >> 1);
    let out = new Int16Array(expected + 16);
    let consumed = 0;
    let produced = 0;
    while (consumed < input.length) {
      const u32 = m.HEAPU32;
      u32[this.lengths >> 2] = input.length - consumed;
      u32[(this.lengths >> 2) + 1] = this.outCap;
      const err = m._speex_resampler_process_int(this.state, 0, this.inPtr + 2 * consumed, this.lengths, this.outPtr, this.lengths + 4);
      if (err !== 0) throw new Error(`speex_resampler_process_int failed with error ${err}`);
      const used = m.HEAPU32[this.lengths >> 2]!;
      const made = m.HEAPU32[(this.lengths >> 2) + 1]!;
      if (used === 0 && made === 0) break;
      consumed += used;
      if (produced + made > out.length) {
        const bigger = new Int16Array(2 * (produced + made));
        bigger.set(out.subarray(0, produced));
        out = bigger;
      }
      out.set(m.HEAP16.subarray(this.outPtr >> 1, (this.outPtr >> 1) + made), produced);
      produced += made;
    }
    return produced === out.length ? out : out.slice(0, produced);
  }

  close(): void {
    if (this.state === 0) return;
    this.mod._speex_resampler_destroy(this.state);
    this.state = 0;
    this.mod._free(this.lengths);
    if (this.inPtr) this.mod._free(this.inPtr);
    if (this.outPtr) this.mod._free(this.outPtr);
    this.inPtr = this.outPtr = this.inCap = this.outCap = 0;
  }

  /** Grows (never shrinks) the wasm-side sample buffers; allocation may move the heap views. */
  private reserve(inSamples: number, outSamples: number): void {
    if (inSamples > this.inCap) {
      if (this.inPtr) this.mod._free(this.inPtr);
      this.inCap = Math.max(inSamples, 2 * this.inCap);
      this.inPtr = this.mod._malloc(2 * this.inCap);
    }
    if (outSamples > this.outCap) {
      if (this.outPtr) this.mod._free(this.outPtr);
      this.outCap = Math.max(outSamples, 2 * this.outCap);
      this.outPtr = this.mod._malloc(2 * this.outCap);
    }
    if (this.inPtr === 0 || this.outPtr === 0) throw new Error('speex resampler: wasm out of memory');
  }

  private assertOpen(): void {
    if (this.state === 0) throw new Error('speex resampler used after close()');
  }
}

/**
 * The bytes of `file`: beside the running module (the bundle's `dist/`), else in the package's
 * `wasm/` folder in node_modules.
 */
async function readWasm(file: string): Promise<Uint8Array<ArrayBuffer>> {
  const places = [new URL(file, import.meta.url)];
  try {
    const glue = createRequire(import.meta.url).resolve('@echogarden/speex-resampler-wasm/simd');
    places.push(new URL(file, pathToFileURL(glue)));
  } catch {
    // Not installed: only the copy beside the bundle can serve.
  }
  for (const place of places) {
    try {
      return new Uint8Array(await readFile(place)) as Uint8Array<ArrayBuffer>;
    } catch {
      // Try the next place.
    }
  }
  throw new Error(`cannot find ${file} (looked in ${places.map((p) => p.pathname).join(', ')})`);
}
