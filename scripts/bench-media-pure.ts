/**
 * The in-process parts of the media benchmark (scripts/bench-media.ts), on the pure media core
 * with a simulated clock, no sockets and no files:
 * - the device pipeline's CPU per call-minute ({@link pipelineCpu}): one AudioStream at a 48 kHz
 *   card, a tone captured and an RTP stream received, both directions for N seconds of audio;
 * - the latency the gateway adds ({@link downlinkLatency}, {@link uplinkLatency}): tone bursts
 *   after silence, found again where they leave, timed on the simulated clock;
 * - transcoding G.722 ↔ PCMA ({@link transcodingCost}) through two RtpTranscoders.
 */
import type { AudioCodec } from '../src/media/codec/codec.ts';
import { pcma, pcmu } from '../src/media/codec/g711.ts';
import { g722 } from '../src/media/codec/g722.ts';
import { opus } from '../src/media/codec/opus.ts';
import { AudioStream } from '../src/media/endpoint/audio-stream.ts';
import type { ResamplerFactory } from '../src/media/resample/types.ts';
import { decodeRtpHeader, encodeRtpHeader } from '../src/media/rtp-packet.ts';
import { RtpTranscoder } from '../src/media/transcoder.ts';
import { ManualClock } from '../src/runtime/clock.ts';
import { SeededRandom } from '../src/runtime/random.ts';

/** The card of the benchmark: 48 kHz, 20 ms periods (the `audio` config defaults). */
export const CARD_RATE = 48000;
export const PERIOD_MS = 20;
const CARD_FRAME = (CARD_RATE * PERIOD_MS) / 1000;
/** The `audio.jitterMinMs` / `audio.jitterMaxMs` defaults. */
export const JITTER = { minDelayMs: 20, maxDelayMs: 200 };
export const PTIME_MS = 20;

/** A codec as the benchmark negotiates it. */
export interface BenchCodec {
  label: string;
  codec: AudioCodec;
  pt: number;
}

export const CODECS: BenchCodec[] = [
  { label: 'PCMU', codec: pcmu, pt: 0 },
  { label: 'G722', codec: g722, pt: 9 },
  { label: 'opus', codec: opus, pt: 111 },
];

const BURST_AMPLITUDE = 12000;
const BURST_MS = 200;
/** An onset is a sample at half the burst's amplitude after at least this much quiet. */
const QUIET_MS = 100;

interface Sent {
  at: number;
  packet: Uint8Array;
}

function stream(c: BenchCodec, resamplers: ResamplerFactory, sent: Sent[], now: () => number): AudioStream {
  const s = new AudioStream({
    clock: new ManualClock(),
    random: new SeededRandom(7),
    resamplers,
    cardRate: CARD_RATE,
    jitter: JITTER,
    inbandDtmf: false,
    send: { rtp: (packet) => sent.push({ at: now(), packet }), rtcp: () => undefined },
    cname: 'bench@hookswitch.test',
  });
  s.configure({
    codec: c.codec,
    sendPt: c.pt,
    receive: new Map([[c.pt, { kind: 'audio' }]]),
    remote: { address: '127.0.0.1', port: 9 },
    direction: 'sendrecv',
    ptime: PTIME_MS,
  });
  return s;
}

/** Silence with a 1 kHz burst (cosine phase: full amplitude at once) starting at each onset. */
function bursts(rate: number, samples: number, onsets: readonly number[]): Int16Array {
  const out = new Int16Array(samples);
  const len = Math.round((rate * BURST_MS) / 1000);
  for (const o of onsets) {
    for (let i = 0; i < len && o + i < samples; i++) out[o + i] = Math.round(BURST_AMPLITUDE * Math.cos((2 * Math.PI * 1000 * i) / rate));
  }
  return out;
}

function tone(rate: number, samples: number, frequency: number): Int16Array {
  const out = new Int16Array(samples);
  for (let i = 0; i < samples; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * frequency * i) / rate));
  return out;
}

/** Sample indices where |x| first reaches half the burst amplitude after QUIET_MS of quiet. */
function findOnsets(x: Int16Array, rate: number): number[] {
  const quiet = (rate * QUIET_MS) / 1000;
  const threshold = BURST_AMPLITUDE / 2;
  const found: number[] = [];
  let lastLoud = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(x[i]!) < threshold) continue;
    if (i - lastLoud > quiet) found.push(i);
    lastLoud = i;
  }
  return found;
}

/** RTP packets of `pcm` encoded at 20 ms (sequence and timestamp from 0). */
function packetise(c: BenchCodec, pcm: Int16Array): Uint8Array[] {
  const frame = (c.codec.info.sampleRate * PTIME_MS) / 1000;
  const ticks = (c.codec.info.clockRate * PTIME_MS) / 1000;
  const enc = c.codec.createEncoder(PTIME_MS);
  const out: Uint8Array[] = [];
  for (let m = 0; (m + 1) * frame <= pcm.length; m++) {
    const payload = enc.encode(pcm.subarray(m * frame, (m + 1) * frame));
    const header = encodeRtpHeader({ payloadType: c.pt, sequence: m & 0xffff, timestamp: (m * ticks) >>> 0, ssrc: 0x5eed, marker: m === 0 });
    const p = new Uint8Array(header.length + payload.length);
    p.set(header);
    p.set(payload, header.length);
    out.push(p);
  }
  enc.close();
  return out;
}

/** Decodes payloads in order with a fresh decoder into one signal. */
function decodeAll(codec: AudioCodec, payloads: readonly Uint8Array[]): Int16Array {
  const dec = codec.createDecoder();
  const parts = payloads.map((p) => dec.decode(p));
  dec.close();
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const payloadOf = (packet: Uint8Array) => packet.subarray(decodeRtpHeader(packet).headerLength);

/** Summary of a set of values. */
export interface Spread {
  min: number;
  mean: number;
  max: number;
  n: number;
}

function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { min: NaN, mean: NaN, max: NaN, n: 0 };
  return { min: Math.min(...values), mean: values.reduce((a, b) => a + b, 0) / values.length, max: Math.max(...values), n: values.length };
}

export interface DownlinkLatency {
  /** RTP arrival of a sample → the same sample's place in the playback write, ms. */
  latency: Spread;
  /** The jitter buffer's target delay when each onset was played, ms. */
  target: Spread;
  /** Onsets where latency > ptime + target (at that moment) + 10 ms. */
  overBudget: number;
  /** The largest latency − budget over all onsets (negative: every onset within), ms. */
  worstMargin: number;
  /** Wall-clock µs per tick (receive + tick), the processing a real tick adds. */
  tickMicros: number;
}

/**
 * Downlink: packets arrive every 20 ms at a phase `phase` ms after the card's ticks (one run per
 * phase, `seconds` of audio each); every second a 1 kHz burst starts at a known sample. The
 * sample's arrival time is its packet's arrival plus its place in the packet (found by decoding
 * the stream with a fresh decoder, so the codec's own delay cancels out); its playback time is
 * the tick that writes it plus its place in that write at 48 kHz.
 */
export function downlinkLatency(c: BenchCodec, resamplers: ResamplerFactory, phases: readonly number[], seconds: number): DownlinkLatency {
  const fs = c.codec.info.sampleRate;
  const frame = (fs * PTIME_MS) / 1000;
  const onsets: number[] = [];
  for (let s = 2, k = 0; s < seconds - 1; s++, k++) onsets.push(s * fs + ((k * 53) % frame));
  const packets = packetise(c, bursts(fs, seconds * fs, onsets));
  const ref = findOnsets(decodeAll(c.codec, packets.map(payloadOf)), fs);
  const latencies: number[] = [];
  const targets: number[] = [];
  let overBudget = 0;
  let worstMargin = Number.NEGATIVE_INFINITY;
  let busy = 0;
  let ticks = 0;
  for (const phase of phases) {
    let now = 0;
    const s = stream(c, resamplers, [], () => now);
    const arrival = (m: number) => phase + m * PTIME_MS;
    const capture = new Int16Array(CARD_FRAME);
    const played: Int16Array[] = [];
    const tickTarget: number[] = [];
    let next = 0;
    const tickCount = Math.floor((seconds * 1000) / PERIOD_MS);
    for (let k = 0; k < tickCount; k++) {
      now = k * PERIOD_MS;
      const t0 = performance.now();
      while (next < packets.length && arrival(next) < now) s.receiveRtp(packets[next]!, arrival(next++));
      played.push(s.tick(capture, now));
      busy += performance.now() - t0;
      ticks++;
      tickTarget.push(Number(s.summary().jitterTargetMs));
    }
    s.close();
    const out = findOnsets(concat(played), CARD_RATE);
    for (let i = 0; i < Math.min(out.length, ref.length); i++) {
      const m = Math.floor(ref[i]! / frame);
      const inAt = arrival(m) + ((ref[i]! - m * frame) / fs) * 1000;
      const k = Math.floor(out[i]! / CARD_FRAME);
      const outAt = k * PERIOD_MS + ((out[i]! - k * CARD_FRAME) / CARD_RATE) * 1000;
      const latency = outAt - inAt;
      latencies.push(latency);
      targets.push(tickTarget[k]!);
      const margin = latency - (PTIME_MS + tickTarget[k]! + 10);
      worstMargin = Math.max(worstMargin, margin);
      if (margin > 0) overBudget++;
    }
    if (out.length !== ref.length) throw new Error(`${c.label} downlink, phase ${phase} ms: ${out.length} onsets played for ${ref.length} sent`);
  }
  return { latency: spread(latencies), target: spread(targets), overBudget, worstMargin, tickMicros: (busy / ticks) * 1000 };
}

export interface UplinkLatency {
  /** A sample read from the capture pipe → its place in the RTP packet sent, ms. */
  latency: Spread;
}

/**
 * Uplink: the card delivers 20 ms frames; every second a burst starts at a different place in
 * a frame. A sample read at tick time t at offset o leaves, at the earliest, at t + o/48000 (a
 * gateway that sends every frame the moment it is read); it actually leaves in the packet sent
 * at t' at position j, i.e. at t' + j/fs (found by decoding what was sent with a fresh decoder,
 * so the codec's algorithmic delay counts: it is delay the gateway adds).
 */
export function uplinkLatency(c: BenchCodec, resamplers: ResamplerFactory, seconds: number): UplinkLatency {
  const fs = c.codec.info.sampleRate;
  const frame = (fs * PTIME_MS) / 1000;
  const onsets: number[] = [];
  for (let s = 2, k = 0; s < seconds - 1; s++, k++) onsets.push(s * CARD_RATE + ((k * 137) % CARD_FRAME));
  const capture = bursts(CARD_RATE, seconds * CARD_RATE, onsets);
  const sent: Sent[] = [];
  let now = 0;
  const s = stream(c, resamplers, sent, () => now);
  const tickCount = Math.floor((seconds * 1000) / PERIOD_MS);
  for (let k = 0; k < tickCount; k++) {
    now = k * PERIOD_MS;
    s.tick(capture.subarray(k * CARD_FRAME, (k + 1) * CARD_FRAME), now);
  }
  s.close();
  const out = findOnsets(decodeAll(c.codec, sent.map((p) => payloadOf(p.packet))), fs);
  if (out.length !== onsets.length) throw new Error(`${c.label} uplink: ${out.length} onsets sent for ${onsets.length} captured`);
  const latencies = out.map((n, i) => {
    const m = Math.floor(n / frame);
    const outAt = sent[m]!.at + ((n - m * frame) / fs) * 1000;
    const k = Math.floor(onsets[i]! / CARD_FRAME);
    const inAt = k * PERIOD_MS + ((onsets[i]! - k * CARD_FRAME) / CARD_RATE) * 1000;
    return outAt - inAt;
  });
  return { latency: spread(latencies) };
}

function concat(parts: readonly Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface PipelineCpu {
  /** CPU seconds per call-minute of the pure pipeline (both directions). */
  perMinute: number;
  packetsSent: number;
}

/** One device call's pipeline, driven one 20 ms card period at a time. */
export interface Pipeline {
  /** Delivers the RTP packets due and runs card period `k` (at k × 20 ms). */
  step(k: number): void;
  /** Closes the stream; returns the packets it sent. */
  close(): number;
}

/**
 * A 1 kHz capture and a 440 Hz RTP stream (encoded here, beforehand: not part of the work
 * measured; packets arrive 5 ms after each period starts) through one AudioStream, for up to
 * `seconds` of audio.
 */
export function createPipeline(c: BenchCodec, resamplers: ResamplerFactory, seconds: number): Pipeline {
  const fs = c.codec.info.sampleRate;
  const packets = packetise(c, tone(fs, (seconds + 1) * fs, 440));
  const capture = tone(CARD_RATE, CARD_FRAME * 50, 1000);
  const sent: Sent[] = [];
  let now = 0;
  let next = 0;
  const s = stream(c, resamplers, sent, () => now);
  return {
    step(k) {
      now = k * PERIOD_MS;
      while (next < packets.length && next * PTIME_MS + 5 < now) s.receiveRtp(packets[next]!, next++ * PTIME_MS + 5);
      s.tick(capture.subarray((k % 50) * CARD_FRAME, ((k % 50) + 1) * CARD_FRAME), now);
    },
    close() {
      s.close();
      return sent.length;
    },
  };
}

/** {@link createPipeline} run flat out for `seconds` of audio after a 5 s warm-up; CPU from process.cpuUsage. */
export function pipelineCpu(c: BenchCodec, resamplers: ResamplerFactory, seconds: number): PipelineCpu {
  const run = (secs: number): number => {
    const p = createPipeline(c, resamplers, secs);
    for (let k = 0; k < (secs * 1000) / PERIOD_MS; k++) p.step(k);
    return p.close();
  };
  run(5);
  const start = process.cpuUsage();
  const packetsSent = run(seconds);
  const used = process.cpuUsage(start);
  return { perMinute: ((used.user + used.system) / 1e6 / seconds) * 60, packetsSent };
}

export interface TranscodingCost {
  /** CPU ms per call-minute, both directions. */
  msPerMinute: number;
  /** Transcoded calls one core could carry on this computation alone. */
  callsPerCore: number;
  packetsOut: number;
}

/**
 * G.722 → PCMA and PCMA → G.722 (one call's two directions) over `seconds` of 20 ms packets,
 * after a 20 s warm-up pair; packets encoded beforehand; CPU time from process.cpuUsage.
 */
export function transcodingCost(resamplers: ResamplerFactory, seconds: number): TranscodingCost {
  const wide: BenchCodec = { label: 'G722', codec: g722, pt: 9 };
  const narrow: BenchCodec = { label: 'PCMA', codec: pcma, pt: 8 };
  const widePackets = packetise(wide, tone(16000, (seconds + 1) * 16000, 1000));
  const narrowPackets = packetise(narrow, tone(8000, (seconds + 1) * 8000, 440));
  const random = new SeededRandom(9);
  const pair = () => ({
    toNarrow: new RtpTranscoder({ input: { codec: g722, payloadTypes: [9] }, output: { codec: pcma, payloadType: 8 }, resamplers, random }),
    toWide: new RtpTranscoder({ input: { codec: pcma, payloadTypes: [8] }, output: { codec: g722, payloadType: 9 }, resamplers, random }),
  });
  const run = (packets: number): number => {
    const { toNarrow, toWide } = pair();
    let out = 0;
    for (let i = 0; i < packets; i++) out += toNarrow.push(widePackets[i % widePackets.length]!).length + toWide.push(narrowPackets[i % narrowPackets.length]!).length;
    toNarrow.close();
    toWide.close();
    return out;
  };
  run(Math.min(1000, widePackets.length));
  const start = process.cpuUsage();
  const packetsOut = run(seconds * 50);
  const used = process.cpuUsage(start);
  const msPerMinute = ((used.user + used.system) / 1000 / seconds) * 60;
  return { msPerMinute, callsPerCore: 60000 / msPerMinute, packetsOut };
}
