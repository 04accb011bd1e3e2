/**
 * One direction of B2BUA transcoding (pure: packets in, packets out, no clock, no sockets):
 * RTP of codec A → decode → resample (A's sample rate → B's) → encode as codec B, re-packetised
 * every `ptimeMs` with the gateway's own SSRC, sequence and timestamps. The relay
 * (`rtp-relay.ts`) feeds it each packet that arrives on a leg and sends what it returns to the
 * other leg.
 */
import { PcmFifo } from './pcm-fifo.ts';
import type { AudioCodec, AudioDecoder, AudioEncoder } from './codec/codec.ts';
import type { Resampler, ResamplerFactory } from './resample/types.ts';
import { decodeRtpHeader } from './rtp-packet.ts';
import { RtpSender } from './rtp/rtp-sender.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';

/** Counters of one transcoding direction. */
export interface TranscoderStats {
  /** Packets decoded. */
  decoded: number;
  /** Lost packets filled in by concealment. */
  concealed: number;
  /** Packets produced (audio and events). */
  sent: number;
  /** Packets refused (malformed, duplicate, late, unknown payload type, unrelayable event). */
  dropped: number;
  /** telephone-event packets relayed. */
  events: number;
}

/**
 * Converts the RTP stream arriving on one leg into the stream for the other (decode, resample,
 * encode; see `transcoder.ts`). Pure and synchronous; owned by the relay once set, which closes
 * it when it is replaced or the relay closes.
 */
export interface PacketTranscoder {
  /**
   * One received RTP packet (version 2, at least a fixed header) in, the packets to send out.
   * `nowMs` (monotonic) dates what comes out, for the RTP timestamp of the sender reports.
   */
  push(packet: Uint8Array, nowMs?: number): Uint8Array[];
  /**
   * The stream it sends (RFC 3550 §7.3: like a mixer, it "generates a new data stream of its
   * own"): SSRC, SR packet and octet counts, timeline. The relay runs RTCP for it on the leg it
   * goes to; the leg sends the same codec back, so `sender.clockRate` is that stream's too.
   */
  readonly sender: RtpSender;
  /** Name of the codec it sends (call statistics). */
  readonly codec: string;
  /** Whether `payloadType` arriving on the incoming leg is a telephone-event (no jitter sample, RFC 4733 §2.3). */
  isEvent(payloadType: number): boolean;
  readonly stats: TranscoderStats;
  close(): void;
}

/** What {@link RtpTranscoder} converts, from where to where. */
export interface RtpTranscoderOptions {
  /** The incoming codec and every payload number that means it on the incoming leg. */
  input: { codec: AudioCodec; payloadTypes: readonly number[] };
  /** The outgoing codec and the payload number the receiving leg declared for it. */
  output: { codec: AudioCodec; payloadType: number };
  /** Needed when the two codecs' sample rates differ (the constructor throws without it). */
  resamplers?: ResamplerFactory;
  /**
   * telephone-event (RFC 4733) payload numbers seen on the incoming leg. With `payloadType` they
   * are relayed renumbered (the legs agreed on the same event clock rate); without, dropped.
   */
  events?: { payloadTypes: readonly number[]; payloadType?: number };
  /** Outgoing packetisation in ms (default 20). */
  ptimeMs?: number;
  /** Initial SSRC, sequence number and timestamp (RFC 3550 §5.1: random), for the {@link RtpSender}. */
  random: Random;
  logger?: Logger;
}

/** Lost packets concealed at most in one gap; a longer gap is a resynchronisation. */
const MAX_CONCEAL_PACKETS = 5;
/** Concealed packets over which the repeated waveform fades to silence (no decoder PLC). */
const FADE_PACKETS = 3;
/** Timestamp jumps beyond this many seconds are a new timeline, not silence to carry over. */
const MAX_SILENCE_SECONDS = 60;

/** Converts one RTP stream of codec A into one of codec B; see the module comment. */
export class RtpTranscoder implements PacketTranscoder {
  readonly stats: TranscoderStats = { decoded: 0, concealed: 0, sent: 0, dropped: 0, events: 0 };
  private readonly inPts: Uint8Array = new Uint8Array(128);
  private decoder: AudioDecoder;
  private readonly encoder: AudioEncoder;
  private readonly resampler: Resampler | undefined;
  private readonly frame: number;
  /** Outgoing timestamp units per outgoing frame (G.722: 160 for 320 samples, RFC 3551 §4.5.2). */
  private readonly frameTicks: number;
  /** Incoming timestamp units per decoded sample. */
  private readonly inTicksPerSample: number;
  /** Outgoing timestamp units per incoming timestamp unit. */
  private readonly tickRatio: number;
  /** Output-rate PCM waiting to fill a frame. */
  private readonly pcm = new PcmFifo();
  private last: Int16Array = new Int16Array(0);
  private started = false;
  private inSsrc = 0;
  private lastSeq = 0;
  /** The incoming timestamp the next packet should carry if nothing was lost or suppressed. */
  private nextInTs = 0;
  readonly sender: RtpSender;
  readonly codec: string;
  private nowMs: number | undefined;
  private marker = true;
  private eventInTs = -1;
  private eventOutTs = 0;
  private warnedEvents = false;
  private closed = false;

  constructor(private readonly opts: RtpTranscoderOptions) {
    const a = opts.input.codec.info;
    const b = opts.output.codec.info;
    const ptime = opts.ptimeMs ?? 20;
    for (const pt of opts.input.payloadTypes) this.inPts[pt & 0x7f] = 1;
    for (const pt of opts.events?.payloadTypes ?? []) this.inPts[pt & 0x7f] = 2;
    if (a.sampleRate !== b.sampleRate) {
      if (opts.resamplers === undefined) throw new Error(`transcoding ${a.name} to ${b.name} needs a resampler`);
      this.resampler = opts.resamplers.create(a.sampleRate, b.sampleRate);
    }
    this.frame = Math.round((b.sampleRate * ptime) / 1000);
    this.frameTicks = Math.round((b.clockRate * ptime) / 1000);
    this.inTicksPerSample = a.clockRate / a.sampleRate;
    this.tickRatio = b.clockRate / a.clockRate;
    this.decoder = opts.input.codec.createDecoder();
    this.encoder = opts.output.codec.createEncoder(ptime);
    this.sender = new RtpSender({ random: opts.random, clockRate: b.clockRate });
    this.codec = b.name;
  }

  isEvent(payloadType: number): boolean {
    return this.inPts[payloadType & 0x7f] === 2;
  }

  /**
   * Takes one RTP packet from the incoming leg; returns the packets (possibly none while a frame
   * fills up) to send to the other leg. Malformed packets, duplicates, late packets and payload
   * types it does not know are counted in `stats.dropped` and yield nothing.
   */
  push(packet: Uint8Array, nowMs?: number): Uint8Array[] {
    if (this.closed) return [];
    this.nowMs = nowMs;
    let header;
    try {
      header = decodeRtpHeader(packet);
    } catch {
      this.stats.dropped++;
      return [];
    }
    let end = packet.length;
    if (header.padding) end -= packet[end - 1]!;
    if (end < header.headerLength) {
      this.stats.dropped++;
      return [];
    }
    const payload = packet.subarray(header.headerLength, end);
    const kind = this.inPts[header.payloadType];
    if (kind === 2) return this.event(header.timestamp, header.marker, payload);
    if (kind !== 1) {
      this.stats.dropped++;
      return [];
    }
    const out: Uint8Array[] = [];
    if (this.started && header.ssrc === this.inSsrc) {
      const d = (header.sequence - this.lastSeq) & 0xffff;
      // RFC 3550 §A.1: a number at or behind the highest seen is a duplicate or arrives too late.
      if (d === 0 || d >= 0x8000) {
        this.stats.dropped++;
        return [];
      }
      if (d > 1 && d - 1 <= MAX_CONCEAL_PACKETS) this.conceal(d - 1, payload, out);
      const gap = (header.timestamp - this.nextInTs) | 0;
      if (gap > 0 && gap <= MAX_SILENCE_SECONDS * this.opts.input.codec.info.clockRate) {
        // Silence suppression or loss beyond concealment: the outgoing timeline jumps as well,
        // and the marker flags a talkspurt start (RFC 3551 §4.1).
        this.sender.skip(Math.round(gap * this.tickRatio) >>> 0);
        this.marker = true;
      } else if (gap !== 0) {
        this.marker = true;
      }
    } else if (this.started) {
      // A new source behind the leg (transfer, RFC 3550 §8.2): fresh decoder state, same output stream.
      this.decoder.close();
      this.decoder = this.opts.input.codec.createDecoder();
      this.marker = true;
    }
    this.started = true;
    this.inSsrc = header.ssrc;
    this.lastSeq = header.sequence;
    const pcm = this.decoder.decode(payload);
    if (pcm.length === 0) {
      this.stats.dropped++;
      this.nextInTs = header.timestamp;
      return out;
    }
    this.stats.decoded++;
    this.last = pcm;
    this.nextInTs = (header.timestamp + Math.round(pcm.length * this.inTicksPerSample)) >>> 0;
    this.feed(pcm, out);
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder.close();
    this.encoder.close();
    this.resampler?.close();
  }

  /** Fills `lost` packets' worth of audio: the decoder's PLC if it has one, else a fading repeat. */
  private conceal(lost: number, next: Uint8Array, out: Uint8Array[]): void {
    const per = this.last.length;
    if (per === 0) return;
    this.stats.concealed += lost;
    this.nextInTs = (this.nextInTs + Math.round(lost * per * this.inTicksPerSample)) >>> 0;
    if (this.decoder.conceal !== undefined) {
      for (let i = 0; i < lost; i++) this.feed(this.decoder.conceal(per, i === lost - 1 ? next : undefined), out);
      return;
    }
    const total = FADE_PACKETS * per;
    for (let k = 0; k < lost; k++) {
      const frame = new Int16Array(per);
      for (let i = 0; i < per; i++) {
        const gain = Math.max(0, 1 - (k * per + i) / total);
        frame[i] = Math.round(this.last[i]! * gain);
      }
      this.feed(frame, out);
    }
  }

  /** Resamples decoded PCM into the frame buffer and encodes every full frame. */
  private feed(decoded: Int16Array, out: Uint8Array[]): void {
    this.pcm.push(this.resampler === undefined ? decoded : this.resampler.process(decoded));
    while (this.pcm.length >= this.frame) {
      const payload = this.encoder.encode(this.pcm.take(this.frame));
      out.push(this.sender.packet(payload, { payloadType: this.opts.output.payloadType, ticks: this.frameTicks, marker: this.marker, nowMs: this.nowMs }));
      this.stats.sent++;
      this.marker = false;
    }
  }

  /**
   * RFC 4733 §2.5.1: the packets of one event share the timestamp of its start and their
   * duration counts in the event clock, which both legs share here; only the RTP header changes.
   */
  private event(timestamp: number, marker: boolean, payload: Uint8Array): Uint8Array[] {
    const pt = this.opts.events?.payloadType;
    if (pt === undefined) {
      this.stats.dropped++;
      if (!this.warnedEvents) {
        this.warnedEvents = true;
        this.opts.logger?.warn('telephone-event dropped: the legs share no telephone-event clock rate', {
          from: this.opts.input.codec.info.name,
          to: this.opts.output.codec.info.name,
        });
      }
      return [];
    }
    if (timestamp !== this.eventInTs) {
      this.eventInTs = timestamp;
      this.eventOutTs = this.sender.timestamp;
    }
    this.stats.events++;
    this.stats.sent++;
    return [this.sender.eventPacket(payload, { payloadType: pt, timestamp: this.eventOutTs, marker })];
  }
}
