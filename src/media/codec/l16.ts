/**
 * L16: uncompressed 16-bit signed linear PCM in network byte order (RFC 3551 §4.5.11), mono.
 * Offered at 8000, 16000 and 48000 Hz; RFC 3551 table 4 gives static payload types only for
 * 44.1 kHz (10, 11), so these use dynamic ones.
 */
import type { AudioCodec, AudioDecoder, AudioEncoder } from './codec.ts';

/** Writes `pcm` big-endian; any number of samples, two bytes each. */
function encodeL16(pcm: Int16Array): Uint8Array {
  const out = new Uint8Array(pcm.length * 2);
  for (let i = 0, j = 0; i < pcm.length; i++, j += 2) {
    const v = pcm[i]!;
    out[j] = v >> 8;
    out[j + 1] = v;
  }
  return out;
}

/** Reads big-endian samples; a payload of odd length is malformed and yields no samples. */
function decodeL16(payload: Uint8Array): Int16Array {
  if ((payload.length & 1) !== 0) return new Int16Array(0);
  const out = new Int16Array(payload.length >> 1);
  for (let i = 0, j = 0; i < out.length; i++, j += 2) out[i] = (payload[j]! << 8) | payload[j + 1]!;
  return out;
}

const encoder: AudioEncoder = { encode: encodeL16, close: () => undefined };
const decoder: AudioDecoder = { decode: decodeL16, close: () => undefined };

/** The L16 mono codec at `rate` Hz (`L16/<rate>` in SDP; RTP clock = sample rate). */
export function l16(rate: number): AudioCodec {
  if (!Number.isInteger(rate) || rate <= 0) throw new RangeError(`L16 sample rate must be a positive integer, got ${rate}`);
  return {
    info: { name: 'L16', clockRate: rate, sampleRate: rate, channels: 1 },
    createEncoder: () => encoder,
    createDecoder: () => decoder,
  };
}

/** L16 mono at 8000, 16000 and 48000 Hz, in that order. */
export const l16Codecs: readonly AudioCodec[] = [l16(8000), l16(16000), l16(48000)];
