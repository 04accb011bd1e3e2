/**
 * G.711 PCMU (µ-law) and PCMA (A-law), ITU-T G.711 (11/1988) §§2–3, Tables 1a/1b and 2a/2b.
 *
 * The scalar functions follow the G.711 compression rule on 16-bit left-justified samples
 * exactly as the ITU-T G.191 reference implementation interprets them: µ-law looks at the top
 * 14 bits, A-law at the top 13, negative inputs are quantised by their one's complement (so a
 * code is a function of `x >> 2` or `x >> 4` alone). The array codecs use lookup tables built
 * once from the scalar rules, so they are bit-identical to them.
 */
import type { AudioCodec, AudioDecoder, AudioEncoder } from './codec.ts';

/** µ-law bias (G.711 Table 2: decision values are offset by 33 in 14-bit units). */
const ULAW_BIAS = 33;
/** Largest biased 14-bit magnitude the 8 µ-law segments cover. */
const ULAW_CLIP = 0x1fff;

/**
 * Encodes one 16-bit linear sample to a µ-law code (G.711 Table 2a/2b; the returned byte has
 * its bits inverted as transmitted on the line).
 */
export function linearToUlaw(sample: number): number {
  const negative = sample < 0;
  let magnitude = ((negative ? ~sample : sample) >> 2) + ULAW_BIAS;
  if (magnitude > ULAW_CLIP) magnitude = ULAW_CLIP;
  // Segment number = position of the leading one above bit 5 (32..63 is segment 0).
  let segment = 0;
  for (let v = magnitude >> 6; v !== 0; v >>= 1) segment++;
  const mantissa = (magnitude >> (segment + 1)) & 0x0f;
  const code = ((7 - segment) << 4) | (15 - mantissa);
  return negative ? code : code | 0x80;
}

/** Decodes one µ-law code to its 16-bit linear reconstruction value (G.711 Table 2, column 7). */
export function ulawToLinear(code: number): number {
  const inverted = ~code & 0xff;
  const segment = (inverted >> 4) & 0x07;
  const mantissa = inverted & 0x0f;
  // (2·mantissa + 33) · 2^segment − 33 in 14-bit units, left-justified by 2 bits.
  const magnitude = ((((mantissa << 1) + ULAW_BIAS) << segment) - ULAW_BIAS) << 2;
  return code & 0x80 ? magnitude : -magnitude;
}

/** Encodes one 16-bit linear sample to an A-law code (G.711 Table 1a/1b, even bits inverted). */
export function linearToAlaw(sample: number): number {
  const negative = sample < 0;
  let magnitude = (negative ? ~sample : sample) >> 4;
  if (magnitude > 15) {
    let segment = 1;
    while (magnitude > 31) {
      magnitude >>= 1;
      segment++;
    }
    magnitude = (segment << 4) | (magnitude - 16);
  }
  return (negative ? magnitude : magnitude | 0x80) ^ 0x55;
}

/** Decodes one A-law code to its 16-bit linear reconstruction value (G.711 Table 1, column 7). */
export function alawToLinear(code: number): number {
  const value = (code ^ 0x55) & 0x7f;
  const segment = value >> 4;
  let magnitude = value & 0x0f;
  if (segment > 0) magnitude += 16;
  magnitude = (magnitude << 4) + 8;
  if (segment > 1) magnitude <<= segment - 1;
  return code & 0x80 ? magnitude : -magnitude;
}

/** Encode tables indexed by `(x >> 2) + 8192` (µ-law) and `(x >> 4) + 2048` (A-law). */
const ULAW_ENCODE = new Uint8Array(16384);
const ALAW_ENCODE = new Uint8Array(4096);
const ULAW_DECODE = new Int16Array(256);
const ALAW_DECODE = new Int16Array(256);
for (let i = 0; i < 16384; i++) ULAW_ENCODE[i] = linearToUlaw((i - 8192) << 2);
for (let i = 0; i < 4096; i++) ALAW_ENCODE[i] = linearToAlaw((i - 2048) << 4);
for (let c = 0; c < 256; c++) {
  ULAW_DECODE[c] = ulawToLinear(c);
  ALAW_DECODE[c] = alawToLinear(c);
}

/**
 * µ-law encodes `pcm` into `out` (allocated when absent; must hold `pcm.length` bytes) and
 * returns it.
 */
export function ulawEncode(pcm: Int16Array, out: Uint8Array = new Uint8Array(pcm.length)): Uint8Array {
  for (let i = 0; i < pcm.length; i++) out[i] = ULAW_ENCODE[(pcm[i]! >> 2) + 8192]!;
  return out;
}

/** Decodes µ-law `codes` into `out` (allocated when absent) and returns it. */
export function ulawDecode(codes: Uint8Array, out: Int16Array = new Int16Array(codes.length)): Int16Array {
  for (let i = 0; i < codes.length; i++) out[i] = ULAW_DECODE[codes[i]!]!;
  return out;
}

/** A-law encodes `pcm` into `out` (allocated when absent) and returns it. */
export function alawEncode(pcm: Int16Array, out: Uint8Array = new Uint8Array(pcm.length)): Uint8Array {
  for (let i = 0; i < pcm.length; i++) out[i] = ALAW_ENCODE[(pcm[i]! >> 4) + 2048]!;
  return out;
}

/** Decodes A-law `codes` into `out` (allocated when absent) and returns it. */
export function alawDecode(codes: Uint8Array, out: Int16Array = new Int16Array(codes.length)): Int16Array {
  for (let i = 0; i < codes.length; i++) out[i] = ALAW_DECODE[codes[i]!]!;
  return out;
}

type ArrayEncode = (pcm: Int16Array) => Uint8Array;
type ArrayDecode = (codes: Uint8Array) => Int16Array;

/** G.711 is stateless: one sample per byte, any payload length (including 0) is valid. */
function g711Codec(name: 'PCMU' | 'PCMA', pt: number, encode: ArrayEncode, decode: ArrayDecode): AudioCodec {
  const encoder: AudioEncoder = { encode, close: () => undefined };
  const decoder: AudioDecoder = { decode, close: () => undefined };
  return {
    info: { name, clockRate: 8000, sampleRate: 8000, channels: 1, staticPayloadType: pt },
    createEncoder: () => encoder,
    createDecoder: () => decoder,
  };
}

/** PCMU, G.711 µ-law at 8000 Hz, static payload type 0 (RFC 3551 §4.5.14, table 4). */
export const pcmu: AudioCodec = g711Codec('PCMU', 0, (p) => ulawEncode(p), (c) => ulawDecode(c));

/** PCMA, G.711 A-law at 8000 Hz, static payload type 8 (RFC 3551 §4.5.14, table 4). */
export const pcma: AudioCodec = g711Codec('PCMA', 8, (p) => alawEncode(p), (c) => alawDecode(c));
