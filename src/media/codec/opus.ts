/**
 * Opus (RFC 6716) for RTP (RFC 7587) through libopus 1.4 as wasm, from the `opusscript` package.
 *
 * Only opusscript's emscripten build is used (`build/opusscript_native_wasm.{js,wasm}`), not its
 * JS wrapper: the wrapper addresses its heap views at twice the allocated pointers and keeps views
 * that go stale when the wasm memory grows. The native handler's calling convention, read from
 * opusscript's `src/opusscript_encoder.cpp`: `_encode(in, n, out, frameSize)` takes PCM with one
 * byte per 16-bit slot (low, high) and returns the packet length; `_decode(in, len, out)` writes
 * PCM the same way and returns samples per channel; `_encoder_ctl`/`_decoder_ctl` pass an
 * integer request. `_decode` calls `opus_decode(..., decode_fec = 0)` and nothing else reaches
 * `opus_decode`, so in-band FEC cannot be decoded here: {@link AudioDecoder.conceal} always runs
 * libopus's PLC (the peer still gets our FEC; baresip and others decode it).
 *
 * The wasm loads synchronously (a 310 KiB `WebAssembly.Module` compiled once per process on the
 * first encoder or decoder); its bytes come from beside the running bundle (`dist/`) or from
 * node_modules when running from source.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
// @ts-expect-error -- emscripten glue without type declarations (typed as OpusNative below).
import createOpusNative from 'opusscript/build/opusscript_native_wasm.js';
import type { AudioCodec, AudioDecoder, AudioEncoder, CodecInfo } from './codec.ts';

/** Encoder settings; the defaults suit narrowband-to-wideband speech over lossy Wi-Fi. */
export interface OpusOptions {
  /** Target bit rate in bit/s (OPUS_SET_BITRATE), 6000..510000; 24000 by default. */
  readonly bitrate?: number;
  /** OPUS_SET_COMPLEXITY 0..10; 5 by default (about half the CPU of 10 on a small ARM core). */
  readonly complexity?: number;
  /**
   * Expected packet loss in percent (OPUS_SET_PACKET_LOSS_PERC); with in-band FEC on, the encoder
   * spends bits on FEC only when this is above 0. 10 by default.
   */
  readonly packetLossPercent?: number;
  /** In-band FEC (OPUS_SET_INBAND_FEC), on by default as the SDP `useinbandfec=1` announces. */
  readonly inbandFec?: boolean;
}

/** The emscripten module and the embind class opusscript builds. */
interface OpusNative {
  HEAPU8: Uint8Array;
  HEAPU16: Uint16Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  OpusScriptHandler: {
    new (rate: number, channels: number, application: number): OpusHandler;
    destroy_handler(handler: OpusHandler): void;
  };
}

interface OpusHandler {
  _encode(inPtr: number, samples: number, outPtr: number, frameSize: number): number;
  _decode(inPtr: number, bytes: number, outPtr: number): number;
  _encoder_ctl(request: number, value: number): number;
  _decoder_ctl(request: number, value: number): number;
}

type NativeFactory = (opts: { wasmBinary: Uint8Array; print(): void; printErr(): void }) => OpusNative;

/** RFC 7587 §4.1: always 48000 in the rtpmap; §7: `/2` channels in SDP even for mono. */
const INFO: CodecInfo = {
  name: 'opus',
  clockRate: 48000,
  sampleRate: 48000,
  channels: 2,
  fmtp: 'useinbandfec=1; stereo=0; sprop-stereo=0',
};

const RATE = 48000;
/** opus.h request codes and values. */
const OPUS_APPLICATION_VOIP = 2048;
const OPUS_SET_BITRATE = 4002;
const OPUS_SET_COMPLEXITY = 4010;
const OPUS_SET_INBAND_FEC = 4012;
const OPUS_SET_PACKET_LOSS_PERC = 4014;
const OPUS_SET_SIGNAL = 4024;
const OPUS_SIGNAL_VOICE = 3001;
/** RFC 6716 §3.2.1: at most 1275 bytes a frame; 3 frames as opusscript allows. */
const MAX_PACKET = 1276 * 3;
/** 120 ms at 48 kHz, the longest packet RFC 6716 §3.2.5 allows. */
const MAX_FRAME = 5760;
/** Durations RFC 6716 §2.1.4 allows for one packet that we accept as ptime (ms). */
const PTIMES = [10, 20, 40, 60];
/** RFC 6716 §3.1 table 2: CELT-only fullband configs of 10 and 20 ms, used to ask for PLC. */
const CELT_FB_10MS = 30;
const CELT_FB_20MS = 31;

let native: OpusNative | undefined;

/** The process's one libopus instance, compiled on first use. */
function opusNative(): OpusNative {
  native ??= (createOpusNative as NativeFactory)({
    wasmBinary: readWasm('opusscript_native_wasm.wasm'),
    print() {},
    printErr() {},
  });
  return native;
}

/**
 * An Opus codec with these encoder settings. 20 ms mono VOIP-application packets at 48 kHz;
 * decoders always return mono (libopus downmixes a stereo stream when the decoder has one channel).
 */
export function createOpusCodec(opts: OpusOptions = {}): AudioCodec {
  const settings = {
    bitrate: checkInt('bitrate', opts.bitrate ?? 24000, 6000, 510000),
    complexity: checkInt('complexity', opts.complexity ?? 5, 0, 10),
    loss: checkInt('packetLossPercent', opts.packetLossPercent ?? 10, 0, 100),
    fec: opts.inbandFec ?? true,
  };
  return {
    info: INFO,
    createEncoder(ptimeMs) {
      if (!PTIMES.includes(ptimeMs)) throw new RangeError(`opus ptime must be one of ${PTIMES.join(', ')} ms (got ${ptimeMs})`);
      return new OpusEncoder(opusNative(), (RATE * ptimeMs) / 1000, settings);
    },
    createDecoder() {
      return new OpusDecoder(opusNative());
    },
  };
}

/** Opus with the default settings (24 kbit/s, complexity 5, FEC for 10 % loss). */
export const opus: AudioCodec = createOpusCodec();

class OpusEncoder implements AudioEncoder {
  private handler: OpusHandler | undefined;
  private readonly inPtr: number;
  private readonly outPtr: number;

  constructor(
    private readonly mod: OpusNative,
    private readonly frameSize: number,
    s: { bitrate: number; complexity: number; loss: number; fec: boolean },
  ) {
    const handler = new mod.OpusScriptHandler(RATE, 1, OPUS_APPLICATION_VOIP);
    for (const [request, value] of [
      [OPUS_SET_BITRATE, s.bitrate],
      [OPUS_SET_COMPLEXITY, s.complexity],
      [OPUS_SET_INBAND_FEC, s.fec ? 1 : 0],
      [OPUS_SET_PACKET_LOSS_PERC, s.loss],
      [OPUS_SET_SIGNAL, OPUS_SIGNAL_VOICE],
    ] as const) {
      const err = handler._encoder_ctl(request, value);
      if (err < 0) {
        mod.OpusScriptHandler.destroy_handler(handler);
        throw new Error(`opus_encoder_ctl(${request}, ${value}) failed with error ${err}`);
      }
    }
    this.handler = handler;
    // Two 16-bit slots per sample: the handler's byte-per-slot input convention.
    this.inPtr = mod._malloc(4 * frameSize);
    this.outPtr = mod._malloc(MAX_PACKET);
  }

  encode(pcm: Int16Array): Uint8Array {
    if (!this.handler) throw new Error('opus encoder used after close()');
    if (pcm.length !== this.frameSize) {
      throw new RangeError(`opus encoder takes ${this.frameSize} samples a packet (got ${pcm.length})`);
    }
    const slots = this.mod.HEAPU16;
    const base = this.inPtr >> 1;
    for (let i = 0; i < pcm.length; i++) {
      const s = pcm[i]!;
      slots[base + 2 * i] = s & 0xff;
      slots[base + 2 * i + 1] = (s >> 8) & 0xff;
    }
    const len = this.handler._encode(this.inPtr, pcm.length, this.outPtr, this.frameSize);
    if (len < 0) throw new Error(`opus_encode failed with error ${len}`);
    return this.mod.HEAPU8.slice(this.outPtr, this.outPtr + len);
  }

  close(): void {
    if (!this.handler) return;
    this.mod.OpusScriptHandler.destroy_handler(this.handler);
    this.handler = undefined;
    this.mod._free(this.inPtr);
    this.mod._free(this.outPtr);
  }
}

class OpusDecoder implements AudioDecoder {
  private handler: OpusHandler | undefined;
  private readonly inPtr: number;
  private readonly outPtr: number;
  /** The TOC byte of the last good packet (RFC 6716 §3.1), for its stereo flag; -1 before any. */
  private lastToc = -1;

  constructor(private readonly mod: OpusNative) {
    this.handler = new mod.OpusScriptHandler(RATE, 1, OPUS_APPLICATION_VOIP);
    this.inPtr = mod._malloc(MAX_PACKET);
    this.outPtr = mod._malloc(4 * MAX_FRAME);
  }

  decode(payload: Uint8Array): Int16Array {
    if (!this.handler) throw new Error('opus decoder used after close()');
    // RFC 6716 §3.4 R1: a packet has at least one byte (the TOC).
    if (payload.length === 0 || payload.length > MAX_PACKET) return new Int16Array(0);
    const out = this.run(payload);
    if (out.length > 0) this.lastToc = payload[0]!;
    return out;
  }

  /**
   * libopus PLC for `samples` samples; `next` is ignored (see the file comment: opusscript cannot
   * decode FEC). PLC runs in 20 ms steps, and 10 ms for a remainder, asked for with a TOC-only
   * packet (RFC 6716 §3.2.1: a zero-length frame is a lost frame of the TOC's duration), so the
   * decoder's state advances by what was concealed. A remainder under 10 ms is cut from a 10 ms
   * step. Before any packet has been decoded, silence.
   */
  conceal(samples: number, _next?: Uint8Array): Int16Array {
    if (!this.handler) throw new Error('opus decoder used after close()');
    const out = new Int16Array(Math.max(0, samples));
    if (this.lastToc < 0) return out;
    const stereoFlag = this.lastToc & 0x04;
    let filled = 0;
    while (filled < out.length) {
      const config = out.length - filled >= RATE / 50 ? CELT_FB_20MS : CELT_FB_10MS;
      const chunk = this.run(Uint8Array.of((config << 3) | stereoFlag));
      if (chunk.length === 0) break;
      const take = Math.min(chunk.length, out.length - filled);
      out.set(chunk.subarray(0, take), filled);
      filled += take;
    }
    return out;
  }

  close(): void {
    if (!this.handler) return;
    this.mod.OpusScriptHandler.destroy_handler(this.handler);
    this.handler = undefined;
    this.mod._free(this.inPtr);
    this.mod._free(this.outPtr);
  }

  private run(packet: Uint8Array): Int16Array {
    const m = this.mod;
    m.HEAPU8.set(packet, this.inPtr);
    let n: number;
    try {
      n = this.handler!._decode(this.inPtr, packet.length, this.outPtr);
    } catch {
      return new Int16Array(0);
    }
    if (n <= 0) return new Int16Array(0);
    const slots = m.HEAPU16;
    const base = this.outPtr >> 1;
    const pcm = new Int16Array(n);
    for (let i = 0; i < n; i++) pcm[i] = ((slots[base + 2 * i + 1]! << 24) | (slots[base + 2 * i]! << 16)) >> 16;
    return pcm;
  }
}

function checkInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`opus ${name} must be an integer ${min}..${max} (got ${value})`);
  }
  return value;
}

/** The bytes of `file`: beside the running bundle, else in opusscript's `build/` in node_modules. */
function readWasm(file: string): Uint8Array {
  const places = [fileURLToPath(new URL(file, import.meta.url))];
  try {
    places.push(createRequire(import.meta.url).resolve(`opusscript/build/${file}`));
  } catch {
    // Not installed: only the copy beside the bundle can serve.
  }
  for (const place of places) {
    try {
      return readFileSync(place);
    } catch {
      // Try the next place.
    }
  }
  throw new Error(`cannot find ${file} (looked in ${places.join(', ')})`);
}
