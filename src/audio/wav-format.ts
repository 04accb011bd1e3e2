import { AudioDeviceError } from './audio-device.ts';

/** A parsed 16-bit PCM mono WAV. */
export interface WavPcm {
  rate: number;
  samples: Int16Array;
}

/** Size of the canonical header {@link wavHeader} writes (RIFF + `fmt ` + `data` chunk headers). */
export const WAV_HEADER_BYTES = 44;

/** The data size written while a file is still being recorded: readers take it as "to the end". */
export const WAV_STREAMING_SIZE = 0xffffffff;

/**
 * Parses a RIFF/WAVE file holding 16-bit linear PCM, mono (WAVE_FORMAT_PCM, or
 * WAVE_FORMAT_EXTENSIBLE with 16-bit samples). Chunks other than `fmt ` and `data` are skipped; a
 * `data` size of 0 or past the end of the file (a recording whose writer was killed) means "to the
 * end". Anything else throws an {@link AudioDeviceError} naming `name` and what is wrong:
 * `AUDIO_WAV_INVALID` (not RIFF/WAVE, no fmt/data) or `AUDIO_WAV_FORMAT` (not 16-bit PCM mono).
 */
export function parseWav(bytes: Uint8Array, name: string): WavPcm {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    throw new AudioDeviceError('AUDIO_WAV_INVALID', `${name}: not a RIFF/WAVE file`);
  }
  let offset = 12;
  let rate = 0;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('latin1', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) throw new AudioDeviceError('AUDIO_WAV_INVALID', `${name}: truncated fmt chunk`);
      const format = buf.readUInt16LE(body);
      const channels = buf.readUInt16LE(body + 2);
      const bits = buf.readUInt16LE(body + 14);
      if ((format !== 1 && format !== 0xfffe) || bits !== 16 || channels !== 1) {
        throw new AudioDeviceError(
          'AUDIO_WAV_FORMAT',
          `${name}: need 16-bit PCM mono, found format ${format}, ${bits} bits, ${channels} channels (convert with: sox IN -b 16 -c 1 OUT.wav)`,
        );
      }
      rate = buf.readUInt32LE(body + 4);
    } else if (id === 'data') {
      if (!rate) throw new AudioDeviceError('AUDIO_WAV_INVALID', `${name}: data chunk before fmt chunk`);
      const end = size === 0 || body + size > buf.length ? buf.length : body + size;
      const count = Math.floor((end - body) / 2);
      const samples = new Int16Array(count);
      for (let i = 0; i < count; i++) samples[i] = buf.readInt16LE(body + 2 * i);
      return { rate, samples };
    }
    offset = body + size + (size % 2);
  }
  throw new AudioDeviceError('AUDIO_WAV_INVALID', rate ? `${name}: no data chunk` : `${name}: no fmt chunk`);
}

/**
 * The canonical 44-byte header of a 16-bit PCM mono WAV with `dataBytes` of samples. Pass
 * {@link WAV_STREAMING_SIZE} while the length is unknown; the RIFF size saturates accordingly.
 */
export function wavHeader(rate: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(Math.min(WAV_STREAMING_SIZE, 36 + dataBytes), 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(Math.min(WAV_STREAMING_SIZE, dataBytes), 40);
  return h;
}

/** `pcm` as little-endian bytes (a fresh buffer). */
export function pcmToBytes(pcm: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) out.writeInt16LE(pcm[i]!, 2 * i);
  return out;
}

/** Little-endian bytes as samples (a fresh array; a trailing odd byte is ignored). */
export function bytesToPcm(bytes: Uint8Array): Int16Array {
  const n = bytes.length >> 1;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const v = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    out[i] = v >= 0x8000 ? v - 0x10000 : v;
  }
  return out;
}
