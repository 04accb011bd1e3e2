/**
 * The resampling contract: streaming conversion of mono 16-bit PCM between two rates, one
 * instance per stream and direction (it keeps filter state between calls).
 */
export interface Resampler {
  readonly inputRate: number;
  readonly outputRate: number;
  /**
   * Converts the next chunk of the stream. The output length follows the rate ratio over the
   * whole stream (a chunk may come out one sample shorter or longer; the filter delay is a few
   * samples). Equal rates return the input unchanged.
   */
  process(input: Int16Array): Int16Array;
  /** Frees wasm memory; idempotent. */
  close(): void;
}

/** Creates resamplers; the composition root loads one (the speexdsp wasm) at start. */
export interface ResamplerFactory {
  create(inputRate: number, outputRate: number): Resampler;
}
