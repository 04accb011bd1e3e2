/**
 * Small stand-ins for the codec and resampler contracts, for transcoding tests: 'X' is 8 kHz
 * linear PCM, 'Y' samples 16 kHz on an 8000 RTP clock (like G.722), 'Z' is 8 kHz with its own
 * loss concealment; all carry big-endian 16-bit samples. A linear-interpolation resampler.
 */
import type { AudioCodec, AudioDecoder } from '../../src/media/codec/codec.ts';
import { codecId } from '../../src/media/codec/codec.ts';
import type { Resampler, ResamplerFactory } from '../../src/media/resample/types.ts';
import type { CodecCatalog } from '../../src/media/transcode-plan.ts';

/** Value a 'Z' decoder's concealment fills with, to recognise it downstream. */
export const Z_CONCEALED = 1234;

export interface FakeCodecOptions {
  name: string;
  sampleRate: number;
  clockRate?: number;
  staticPayloadType?: number;
  fmtp?: string;
  conceal?: boolean;
}

/** Counters shared by every encoder/decoder a fake codec creates. */
export interface FakeCodec extends AudioCodec {
  readonly counts: { encoders: number; decoders: number; closed: number; concealed: number };
}

export function fakeCodec(o: FakeCodecOptions): FakeCodec {
  const counts = { encoders: 0, decoders: 0, closed: 0, concealed: 0 };
  const info = {
    name: o.name,
    clockRate: o.clockRate ?? o.sampleRate,
    sampleRate: o.sampleRate,
    channels: 1,
    ...(o.staticPayloadType === undefined ? {} : { staticPayloadType: o.staticPayloadType }),
    ...(o.fmtp === undefined ? {} : { fmtp: o.fmtp }),
  };
  return {
    info,
    counts,
    createEncoder(ptimeMs: number) {
      counts.encoders++;
      const frame = (o.sampleRate * ptimeMs) / 1000;
      return {
        encode(pcm: Int16Array): Uint8Array {
          if (pcm.length !== frame) throw new Error(`${o.name} encoder got ${pcm.length} samples, wants ${frame}`);
          const out = new Uint8Array(pcm.length * 2);
          const view = new DataView(out.buffer);
          for (let i = 0; i < pcm.length; i++) view.setInt16(2 * i, pcm[i]!);
          return out;
        },
        close: () => void counts.closed++,
      };
    },
    createDecoder() {
      counts.decoders++;
      const decoder: AudioDecoder = {
        decode(payload: Uint8Array): Int16Array {
          if (payload.length % 2 !== 0) return new Int16Array(0);
          const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
          const out = new Int16Array(payload.length / 2);
          for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i);
          return out;
        },
        close: () => void counts.closed++,
      };
      if (o.conceal === true) {
        decoder.conceal = (samples: number): Int16Array => {
          counts.concealed++;
          return new Int16Array(samples).fill(Z_CONCEALED);
        };
      }
      return decoder;
    },
  };
}

/** Big-endian 16-bit payload of `pcm` (what the fake codecs carry). */
export function fakePayload(pcm: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(pcm.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < pcm.length; i++) view.setInt16(2 * i, pcm[i]!);
  return out;
}

/** Linear interpolation between consecutive samples, streaming: enough for tones well below Nyquist. */
export class LinearResampler implements Resampler {
  private prev = 0;
  /** Where the next output sample lies, in input samples from the start of the next chunk (-1: `prev`). */
  private pos = -1;
  closed = false;
  constructor(
    readonly inputRate: number,
    readonly outputRate: number,
  ) {}
  process(input: Int16Array): Int16Array {
    if (this.inputRate === this.outputRate) return input;
    const step = this.inputRate / this.outputRate;
    const out: number[] = [];
    const at = (i: number): number => (i < 0 ? this.prev : input[i]!);
    while (this.pos < input.length - 1) {
      const i = Math.floor(this.pos);
      const f = this.pos - i;
      out.push(Math.round(at(i) * (1 - f) + at(i + 1) * f));
      this.pos += step;
    }
    if (input.length > 0) {
      this.prev = input[input.length - 1]!;
      this.pos -= input.length;
    }
    return Int16Array.from(out);
  }
  close(): void {
    this.closed = true;
  }
}

/** A factory of {@link LinearResampler}s that remembers what it made. */
export class LinearResamplerFactory implements ResamplerFactory {
  readonly made: LinearResampler[] = [];
  create(inputRate: number, outputRate: number): Resampler {
    const r = new LinearResampler(inputRate, outputRate);
    this.made.push(r);
    return r;
  }
}

/** A codec registry over `codecs` in that preference order. */
export function catalog(...codecs: AudioCodec[]): CodecCatalog {
  return {
    find: (name, clockRate, channels = 1) => codecs.find((c) => codecId(c.info) === codecId({ name, clockRate, channels })),
    list: () => codecs,
  };
}

/** `seconds` of a sine at `frequency` Hz sampled at `rate`, amplitude `amplitude`. */
export function sine(frequency: number, rate: number, seconds: number, amplitude = 8000, phase0 = 0): Int16Array {
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amplitude * Math.sin(phase0 + (2 * Math.PI * frequency * i) / rate));
  return out;
}
