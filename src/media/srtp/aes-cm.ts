/**
 * AES in counter mode as SRTP uses it (RFC 3711 §4.1.1): a 128-bit counter block whose low 16
 * bits count AES blocks within one packet, so one packet (or one key-derivation output) may use
 * at most 2^16 blocks of keystream.
 */
import { createCipheriv, type Cipher } from 'node:crypto';

/** Octets in one AES block and so in one SRTP counter block. */
export const AES_BLOCK_LENGTH = 16;

/** Longest keystream one counter block start gives: 2^16 blocks (RFC 3711 §4.1.1). */
export const MAX_KEYSTREAM_LENGTH = AES_BLOCK_LENGTH * 0x10000;

/**
 * Writes the SRTP counter block (RFC 3711 §4.1.1)
 * `IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)` into `out`, with the 48-bit index `i`
 * given as its high 32 bits (the ROC for SRTP) and low 16 bits (SEQ). An SRTCP index (31 bits)
 * is passed as `index >>> 16` and `index & 0xffff`. `salt` is the 14-octet session salt.
 */
export function writeCounterBlock<T extends Uint8Array>(out: T, salt: Uint8Array, ssrc: number, indexHigh: number, indexLow: number): T {
  if (salt.length !== 14) throw new RangeError(`session salt of ${salt.length} octets, expected 14`);
  out.set(salt, 0);
  out[14] = 0;
  out[15] = 0;
  out[4] = out[4]! ^ (ssrc >>> 24);
  out[5] = out[5]! ^ ((ssrc >>> 16) & 0xff);
  out[6] = out[6]! ^ ((ssrc >>> 8) & 0xff);
  out[7] = out[7]! ^ (ssrc & 0xff);
  out[8] = out[8]! ^ (indexHigh >>> 24);
  out[9] = out[9]! ^ ((indexHigh >>> 16) & 0xff);
  out[10] = out[10]! ^ ((indexHigh >>> 8) & 0xff);
  out[11] = out[11]! ^ (indexHigh & 0xff);
  out[12] = out[12]! ^ ((indexLow >>> 8) & 0xff);
  out[13] = out[13]! ^ (indexLow & 0xff);
  return out;
}

/**
 * An AES-128 key in counter mode. {@link xor} encrypts or decrypts (the same operation) a byte
 * range with the keystream that starts at a counter block. One ECB cipher is kept for the key's
 * life and fed the counter blocks (`iv` with block number j added to its low 16 bits, RFC 3711
 * §4.1.1), which costs about half of a fresh CTR cipher per packet. Throws RangeError on a key
 * that is not 16 octets or a range longer than {@link MAX_KEYSTREAM_LENGTH} (programming errors:
 * SRTP packets never come near it).
 */
export class AesCm {
  private readonly ecb: Cipher;
  private counters = Buffer.alloc(0);

  constructor(key: Uint8Array) {
    if (key.length !== 16) throw new RangeError(`AES-128 key of ${key.length} octets, expected 16`);
    this.ecb = createCipheriv('aes-128-ecb', key, null);
    this.ecb.setAutoPadding(false);
  }

  /** Writes `input XOR keystream(iv)` to `output` at `outputOffset`; `input` may alias the output. */
  xor(iv: Uint8Array, input: Uint8Array, output: Uint8Array, outputOffset = 0): void {
    const length = input.length;
    if (length > MAX_KEYSTREAM_LENGTH) throw new RangeError(`${length} octets exceed one SRTP keystream segment`);
    if (length === 0) return;
    const blocks = Math.ceil(length / AES_BLOCK_LENGTH);
    if (this.counters.length < blocks * AES_BLOCK_LENGTH) this.counters = Buffer.alloc(blocks * AES_BLOCK_LENGTH);
    const low = (iv[14]! << 8) | iv[15]!;
    for (let j = 0; j < blocks; j++) {
      const at = j * AES_BLOCK_LENGTH;
      this.counters.set(iv.subarray(0, 14), at);
      const c = (low + j) & 0xffff;
      this.counters[at + 14] = c >>> 8;
      this.counters[at + 15] = c & 0xff;
    }
    const keystream = this.ecb.update(this.counters.subarray(0, blocks * AES_BLOCK_LENGTH));
    for (let i = 0; i < length; i++) output[outputOffset + i] = input[i]! ^ keystream[i]!;
  }

  /** The first `length` octets of keystream from counter block `iv` (RFC 3711 §4.1.1). */
  keystream(iv: Uint8Array, length: number): Buffer {
    const out = Buffer.alloc(length);
    this.xor(iv, out, out);
    return out;
  }
}
