/**
 * The device's media for one call, pure: RTP in → jitter buffer → decode (loss concealed) →
 * resample → the sound card's playback; the card's capture → resample → encode (or an RFC 4733
 * event instead) → RTP out; RTCP reports and statistics alongside. The sound card's capture clock
 * drives everything through {@link AudioStream.tick}: one capture frame in, one playback frame
 * out, the packets due sent on the way.
 */
import type { AudioCodec, AudioDecoder, AudioEncoder } from '../codec/codec.ts';
import { DtmfReceiver, DtmfSender } from '../dtmf/rfc4733.ts';
import type { DtmfDigit } from '../dtmf/types.ts';
import { InbandDtmfDetector } from '../dtmf/inband-detector.ts';
import { EchoSuppressor } from '../echo/echo-suppressor.ts';
import { JitterBuffer, type PlayoutFrame } from '../jitter/jitter-buffer.ts';
import { WaveformPlc } from '../jitter/plc.ts';
import type { Resampler, ResamplerFactory } from '../resample/types.ts';
import { ntpFromUnixMs } from '../rtcp/rtcp-packet.ts';
import { formatCallStats, RtcpSession } from '../rtcp/rtcp-session.ts';
import { decodeRtpHeader } from '../rtp-packet.ts';
import { ReceiveStatistics } from '../rtp/receive-statistics.ts';
import { RtpSender } from '../rtp/rtp-sender.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { LogFields } from '../../runtime/logger.ts';
import type { Random } from '../../runtime/random.ts';
import type { NegotiatedMedia } from './endpoint-sdp.ts';
import { PcmFifo } from '../pcm-fifo.ts';

/** A received RTP packet as the jitter buffer keeps it. */
interface Packet {
  sequence: number;
  timestamp: number;
  ssrc: number;
  marker: boolean;
  payloadType: number;
  payload: Uint8Array;
}

export interface AudioStreamOptions {
  clock: Clock;
  random: Random;
  resamplers: ResamplerFactory;
  /** The sound card's rate. */
  cardRate: number;
  jitter: { minDelayMs: number; maxDelayMs: number };
  /** Detect DTMF in the received audio when the far end sends no telephone-event. */
  inbandDtmf: boolean;
  /** Sends one datagram to the far end. */
  send: { rtp(packet: Uint8Array): void; rtcp(packet: Uint8Array): void };
  cname: string;
  /** Suppress the far end's voice coming back from the speaker into the microphone (intercoms). */
  echoSuppression?: boolean;
}

/** The playout frame: 10 ms, which divides every usual packetisation (10 … 60 ms). */
const FRAME_MS = 10;
/** A packet is "recent" (the far end is sending, e.g. early media) for this long. */
const RECENT_MS = 500;

/** The per-codec part of the stream: rebuilt when the codec changes (re-INVITE). */
interface CodecState {
  media: NegotiatedMedia;
  codec: AudioCodec;
  encoder: AudioEncoder;
  decoder: AudioDecoder;
  sender: RtpSender;
  receiver: ReceiveStatistics;
  rtcp: RtcpSession;
  rtcpDue: number;
  jitter: JitterBuffer<Packet>;
  plc: WaveformPlc;
  up: Resampler;
  down: Resampler;
  /** Codec-rate PCM waiting to be encoded. */
  upFifo: PcmFifo;
  /** Card-rate PCM waiting to be played. */
  downFifo: PcmFifo;
  frameSamples: number;
  frameTicks: number;
  dtmfOut: DtmfSender | undefined;
  dtmfIn: DtmfReceiver;
  inband: InbandDtmfDetector | undefined;
  decoded: { packet: Packet; pcm: Int16Array } | undefined;
}

export class AudioStream {
  private state: CodecState | undefined;
  private readonly digitHandlers: ((d: DtmfDigit) => void)[] = [];
  private readonly echo: EchoSuppressor | undefined;
  /** What the card was given to play on the last tick: the echo's source. */
  private lastPlayed: Int16Array | undefined;
  private lastAudioAt = Number.NEGATIVE_INFINITY;
  private now = 0;
  private closed = false;
  /** Totals carried over codec changes, for the call-end line. */
  private totals = { sent: 0, received: 0 };

  constructor(private readonly opts: AudioStreamOptions) {
    this.echo = opts.echoSuppression ? new EchoSuppressor({ sampleRate: opts.cardRate }) : undefined;
  }

  /** The codec in use, once negotiated. */
  get codecName(): string | undefined {
    return this.state?.codec.info.name;
  }

  /** Whether we send nothing (our direction is sendonly-less: on hold by us or inactive). */
  get holding(): boolean {
    const d = this.state?.media.direction;
    return d === 'recvonly' || d === 'inactive';
  }

  /** Whether audio from the far end arrived lately (early media replaces the local ringback). */
  get receiving(): boolean {
    return this.now - this.lastAudioAt < RECENT_MS;
  }

  onDigit(fn: (d: DtmfDigit) => void): void {
    this.digitHandlers.push(fn);
  }

  /** Applies a completed offer/answer: a new codec gets fresh coder, resampler and RTP state. */
  configure(media: NegotiatedMedia): void {
    const s = this.state;
    if (s && s.codec === media.codec && s.media.ptime === media.ptime) {
      // Same codec (hold, resume, a new address): the coder and RTP state carry on.
      const eventChanged = s.media.event?.pt !== media.event?.pt || s.media.event?.rate !== media.event?.rate;
      s.media = media;
      if (eventChanged) s.dtmfOut = media.event ? this.dtmfSender(media) : undefined;
      return;
    }
    this.release();
    const { codec } = media;
    const info = codec.info;
    const frameSamples = (info.sampleRate * media.ptime) / 1000;
    const frameTicks = (info.clockRate * media.ptime) / 1000;
    const sender = new RtpSender({ random: this.opts.random, clockRate: info.clockRate });
    const receiver = new ReceiveStatistics({ clockRate: info.clockRate });
    const rtcp = new RtcpSession({ sender, receiver, random: this.opts.random, cname: this.opts.cname, codec: info.name });
    const classify = (pt: number) => {
      const r = this.state?.media.receive.get(pt);
      return r?.kind === 'event' ? 'event' : r?.kind === 'cn' ? 'cn' : 'audio';
    };
    const bytesPerTick = info.name.toUpperCase() === 'L16' ? 2 : info.name.toLowerCase() === 'opus' ? 0 : 1;
    const jitter = new JitterBuffer<Packet>({
      clockRate: info.clockRate,
      frameTicks: (info.clockRate * FRAME_MS) / 1000,
      minDelayMs: this.opts.jitter.minDelayMs,
      maxDelayMs: this.opts.jitter.maxDelayMs,
      initialDelayMs: Math.max(this.opts.jitter.minDelayMs, 40),
      classify,
      ...(bytesPerTick > 0 ? { durationTicks: (p: Packet) => Math.floor(p.payload.length / bytesPerTick) } : {}),
    });
    const state: CodecState = {
      media,
      codec,
      encoder: codec.createEncoder(media.ptime),
      decoder: codec.createDecoder(),
      sender,
      receiver,
      rtcp,
      rtcpDue: rtcp.start(this.now),
      jitter,
      plc: new WaveformPlc(info.sampleRate),
      up: this.opts.resamplers.create(this.opts.cardRate, info.sampleRate),
      down: this.opts.resamplers.create(info.sampleRate, this.opts.cardRate),
      upFifo: new PcmFifo(),
      downFifo: new PcmFifo(),
      frameSamples,
      frameTicks,
      dtmfOut: undefined,
      dtmfIn: new DtmfReceiver({ clockRate: media.event?.rate ?? info.clockRate }),
      inband: undefined,
      decoded: undefined,
    };
    state.dtmfOut = media.event ? this.dtmfSender(media) : undefined;
    // In-band detection only where events cannot come: the far end offered no telephone-event.
    if (this.opts.inbandDtmf && media.event === undefined) state.inband = new InbandDtmfDetector({ sampleRate: info.sampleRate });
    this.state = state;
  }

  /** Queues DTMF as RFC 4733 events; false when the far end takes no telephone-event (use INFO). */
  sendDigits(digits: string, timing: { durationMs: number; gapMs: number }): boolean {
    const out = this.state?.dtmfOut;
    if (!out) return false;
    out.send(digits, timing);
    return true;
  }

  /** One RTP datagram from the far end. Malformed ones are counted by the caller's socket and dropped. */
  receiveRtp(datagram: Uint8Array, nowMs: number): void {
    const s = this.state;
    if (!s || this.closed) return;
    const d = s.media.direction;
    if (d === 'sendonly' || d === 'inactive') return;
    let header;
    try {
      header = decodeRtpHeader(datagram);
    } catch {
      return;
    }
    const kind = s.media.receive.get(header.payloadType)?.kind;
    if (kind === undefined) return;
    const packet: Packet = {
      sequence: header.sequence,
      timestamp: header.timestamp,
      ssrc: header.ssrc,
      marker: header.marker,
      payloadType: header.payloadType,
      payload: datagram.subarray(header.headerLength, datagram.length - paddingOf(datagram, header.padding)),
    };
    s.receiver.onPacket(packet, nowMs, packet.payload.length, kind !== 'event');
    if (s.jitter.put(packet, nowMs) === 'event') {
      for (const digit of s.dtmfIn.receive(packet, nowMs)) this.digit(digit);
      return;
    }
    if (kind === 'audio') this.lastAudioAt = nowMs;
  }

  receiveRtcp(datagram: Uint8Array, nowMs: number): void {
    this.state?.rtcp.onRtcp(datagram, nowMs);
  }

  /**
   * One capture frame (card rate) in; the playback frame of the same length out. Encodes and
   * sends every complete codec frame, sends RTCP when due.
   */
  tick(capture: Int16Array, nowMs: number): Int16Array {
    this.now = nowMs;
    const s = this.state;
    if (!s || this.closed) return new Int16Array(capture.length);
    // The microphone hears what the speaker played a moment ago: suppressed while the far end talks.
    const far = this.lastPlayed;
    const near = this.echo && far && far.length === capture.length ? this.echo.process(far, capture) : capture;
    this.uplink(s, near, nowMs);
    const out = this.downlink(s, capture.length, nowMs);
    this.lastPlayed = out;
    for (const digit of s.dtmfIn.poll(nowMs)) this.digit(digit);
    if (nowMs >= s.rtcpDue) {
      const r = s.rtcp.onTimer(nowMs, ntpFromUnixMs(this.opts.clock.wallNow()));
      if (r.packet) this.opts.send.rtcp(r.packet);
      s.rtcpDue = r.nextAtMs;
    }
    return out;
  }

  /** Statistics for `status` and the call-end log line. */
  summary(): LogFields {
    const s = this.state;
    if (!s) return { codec: '-' };
    const j = s.jitter.stats;
    return {
      ...formatCallStats(s.rtcp.stats),
      concealed: j.concealed,
      lateDrops: j.late,
      jitterTargetMs: Math.round(j.targetDelayMs),
      driftAdjust: j.inserted + j.dropped,
    };
  }

  close(): void {
    if (this.closed) return;
    const s = this.state;
    if (s) {
      const r = s.rtcp.bye(this.now, ntpFromUnixMs(this.opts.clock.wallNow()));
      if (r) this.opts.send.rtcp(r);
    }
    this.closed = true;
    this.release();
  }

  private dtmfSender(media: NegotiatedMedia): DtmfSender {
    return new DtmfSender({ clockRate: media.event!.rate, ptimeMs: media.ptime });
  }

  private digit(d: DtmfDigit): void {
    for (const fn of this.digitHandlers) fn(d);
  }

  private uplink(s: CodecState, capture: Int16Array, nowMs: number): void {
    s.upFifo.push(s.up.process(capture));
    const sending = s.media.direction === 'sendrecv' || s.media.direction === 'sendonly';
    while (s.upFifo.length >= s.frameSamples) {
      const pcm = s.upFifo.take(s.frameSamples);
      if (!sending || !s.media.remote) {
        s.sender.skip(s.frameTicks);
        continue;
      }
      const event = s.dtmfOut?.nextFrame(s.sender.timestamp);
      if (event && s.media.event) {
        this.opts.send.rtp(s.sender.eventPacket(event.payload, { payloadType: s.media.event.pt, timestamp: event.timestamp, marker: event.marker }));
        // RFC 4733 §2.5.1.2 (audio suppressed while the event plays); the timeline moves on.
        s.sender.skip(s.frameTicks);
        continue;
      }
      this.opts.send.rtp(s.sender.packet(s.encoder.encode(pcm), { payloadType: s.media.sendPt, ticks: s.frameTicks, nowMs }));
    }
  }

  private downlink(s: CodecState, samples: number, nowMs: number): Int16Array {
    const frame = (s.codec.info.sampleRate * FRAME_MS) / 1000;
    // Each 10 ms playout frame goes through the resampler to the card rate; the FIFO evens out
    // the card's period and the resampler's ±1 sample per call.
    let guard = 0;
    while (s.downFifo.length < samples && guard++ < 64) {
      const pcm = this.playout(s, s.jitter.get(nowMs), frame);
      if (s.inband) for (const d of s.inband.process(pcm)) this.digit(d);
      s.downFifo.push(s.down.process(pcm));
    }
    return s.downFifo.take(samples);
  }

  /** The codec-rate PCM of one playout frame. */
  private playout(s: CodecState, f: PlayoutFrame<Packet>, frame: number): Int16Array {
    switch (f.kind) {
      case 'audio': {
        if (f.dropped && f.dropped.packet !== f.packet) this.decode(s, f.dropped.packet);
        const pcm = this.decode(s, f.packet);
        const at = Math.round((f.offsetTicks * s.codec.info.sampleRate) / s.codec.info.clockRate);
        const slice = pcm.length >= at + frame ? pcm.subarray(at, at + frame) : fit(pcm.subarray(Math.min(at, pcm.length)), frame);
        return s.plc.good(slice);
      }
      case 'lost': {
        const own = s.decoder.conceal?.(frame, f.next?.payload);
        if (own) {
          const fitted = fit(own, frame);
          s.plc.good(fitted);
          return fitted;
        }
        return s.plc.conceal(frame);
      }
      case 'cn':
        return comfortNoise(f.packet.payload, frame, this.opts.random);
      case 'silence':
        // Concealment fades out to zeros and keeps the fade-in for the next talkspurt.
        return s.plc.conceal(frame);
    }
  }

  /** Decodes a packet once; later frames of the same packet reuse the PCM. */
  private decode(s: CodecState, packet: Packet): Int16Array {
    if (s.decoded?.packet === packet) return s.decoded.pcm;
    const pcm = s.decoder.decode(packet.payload);
    s.decoded = { packet, pcm };
    return pcm;
  }

  private release(): void {
    const s = this.state;
    if (!s) return;
    this.totals.sent += s.sender.totalPacketCount;
    this.totals.received += s.receiver.totalReceived;
    s.encoder.close();
    s.decoder.close();
    s.up.close();
    s.down.close();
    this.state = undefined;
  }
}

/** RFC 3550 §5.1: with P set, the last octet counts the padding octets (itself included). */
function paddingOf(datagram: Uint8Array, padded: boolean): number {
  return padded && datagram.length > 0 ? datagram[datagram.length - 1]! : 0;
}

/** `pcm` cut or zero-padded to `samples`. */
function fit(pcm: Int16Array, samples: number): Int16Array {
  if (pcm.length === samples) return pcm;
  const out = new Int16Array(samples);
  out.set(pcm.subarray(0, samples));
  return out;
}

/**
 * RFC 3389 comfort noise: white noise at the level of the packet's first byte (-dBov, §3), the
 * spectral coefficients are not used.
 */
function comfortNoise(payload: Uint8Array, samples: number, random: Random): Int16Array {
  const level = payload.length > 0 ? Math.min(127, payload[0]!) : 70;
  const rms = 32767 * 10 ** (-level / 20);
  const bytes = random.bytes(samples * 2);
  const out = new Int16Array(samples);
  // Uniform noise has rms = amplitude / √3.
  const amplitude = rms * Math.sqrt(3);
  for (let i = 0; i < samples; i++) out[i] = Math.round(((bytes.readUInt16LE(i * 2) / 65535) * 2 - 1) * amplitude);
  return out;
}
