import { encodeRtpHeader, RTP_FIXED_HEADER_LENGTH } from '../rtp-packet.ts';
import type { Random } from '../../runtime/random.ts';

/** Options of {@link RtpSender}. */
export interface RtpSenderOptions {
  /** Source of the SSRC and the initial sequence number and timestamp (RFC 3550 §5.1). */
  random: Random;
  /** RTP clock rate of the stream (8000 for G.711 and G.722, 48000 for opus): SR timestamps. */
  clockRate: number;
}

/** Per-packet options of {@link RtpSender.packet}. */
export interface RtpAudioPacketOptions {
  payloadType: number;
  /** Timestamp units this packet covers: the timeline moves on by this much after it. */
  ticks: number;
  /** Overrides the marker bit; by default set on the first packet of a talkspurt. */
  marker?: boolean;
  /** Monotonic time the packet is sent, for the SR timestamp extrapolation ({@link RtpSender.rtpTimestampAt}). */
  nowMs?: number;
}

/** Per-packet options of {@link RtpSender.eventPacket}. */
export interface RtpEventPacketOptions {
  payloadType: number;
  /** The explicit timestamp, taken from {@link RtpSender.timestamp} when the event began. */
  timestamp: number;
  /** RFC 4733 §2.5.1.1: set on the first packet of an event. Default false. */
  marker?: boolean;
}

const TWO_32 = 4294967296;

function u32(random: Random): number {
  return random.bytes(4).readUInt32BE(0);
}

/**
 * One outgoing RTP stream: SSRC, sequence number and media timeline, building complete packets.
 *
 * The media endpoint calls {@link packet} for each encoded audio frame and {@link skip} for each
 * frame it does not send (silence suppression, or audio muted while a DTMF event plays), so the
 * timeline follows the capture clock. The DTMF sender reads {@link timestamp} when an event starts
 * and sends every packet of that event through {@link eventPacket} with that timestamp
 * (RFC 4733 §2.3.1: the event timestamp is its start, in the audio's timeline); event packets
 * take sequence numbers but do not move the timeline. Pure: no I/O, no clock.
 */
export class RtpSender {
  readonly clockRate: number;
  private readonly random: Random;
  private currentSsrc: number;
  private seq: number;
  private ts: number;
  private talkspurtPending = true;
  private packets = 0;
  private octets = 0;
  private allPackets = 0;
  private allOctets = 0;
  private lastSentTs = 0;
  private lastSentMs: number | undefined;

  constructor(options: RtpSenderOptions) {
    if (!(options.clockRate > 0)) throw new RangeError(`clock rate ${options.clockRate} must be positive`);
    this.random = options.random;
    this.clockRate = options.clockRate;
    this.currentSsrc = u32(this.random);
    this.seq = this.random.bytes(2).readUInt16BE(0);
    this.ts = u32(this.random);
  }

  /** The SSRC in use. */
  get ssrc(): number {
    return this.currentSsrc;
  }

  /** Sequence number the next packet will carry. */
  get sequence(): number {
    return this.seq;
  }

  /** The timeline position: the timestamp the next audio packet will carry. */
  get timestamp(): number {
    return this.ts;
  }

  /** Packets sent with the current SSRC (the SR sender's packet count, RFC 3550 §6.4.1). */
  get packetCount(): number {
    return this.packets;
  }

  /** Payload octets sent with the current SSRC (the SR octet count: no header, no padding). */
  get octetCount(): number {
    return this.octets;
  }

  /** Packets sent over the stream's life, across SSRC changes (call statistics). */
  get totalPacketCount(): number {
    return this.allPackets;
  }

  /** Payload octets sent over the stream's life. */
  get totalOctetCount(): number {
    return this.allOctets;
  }

  /**
   * Builds the next audio packet: the timeline's timestamp, the next sequence number, the marker
   * on the first packet of a talkspurt (RFC 3551 §4.1), then advances the timeline by `ticks`.
   */
  packet(payload: Uint8Array, options: RtpAudioPacketOptions): Uint8Array {
    checkTicks(options.ticks);
    const marker = options.marker ?? this.talkspurtPending;
    const out = this.build(payload, options.payloadType, this.ts, marker);
    this.talkspurtPending = false;
    this.lastSentTs = this.ts;
    if (options.nowMs !== undefined) this.lastSentMs = options.nowMs;
    this.ts = (this.ts + options.ticks) % TWO_32;
    return out;
  }

  /** Builds a packet with an explicit timestamp (RFC 4733 events); the timeline does not move. */
  eventPacket(payload: Uint8Array, options: RtpEventPacketOptions): Uint8Array {
    if (!Number.isInteger(options.timestamp) || options.timestamp < 0 || options.timestamp >= TWO_32) {
      throw new RangeError(`event timestamp ${options.timestamp} is not a 32-bit unsigned integer`);
    }
    return this.build(payload, options.payloadType, options.timestamp, options.marker ?? false);
  }

  /**
   * Advances the timeline by `ticks` without sending; the next audio packet starts a talkspurt
   * and carries the marker (RFC 3551 §4.1: "the first packet after a silence period").
   */
  skip(ticks: number): void {
    checkTicks(ticks);
    this.ts = (this.ts + ticks) % TWO_32;
    this.talkspurtPending = true;
  }

  /**
   * The RTP timestamp of monotonic time `nowMs` for an SR (RFC 3550 §6.4.1: "the same time as the
   * NTP timestamp"): extrapolated from the last audio packet sent with `nowMs`, else the timeline.
   */
  rtpTimestampAt(nowMs: number): number {
    if (this.lastSentMs === undefined) return this.ts;
    const elapsed = Math.round(((nowMs - this.lastSentMs) * this.clockRate) / 1000);
    return (((this.lastSentTs + elapsed) % TWO_32) + TWO_32) % TWO_32;
  }

  /**
   * Takes a new random SSRC, different from the old one and from `avoid` (RFC 3550 §8.2, after a
   * collision), with new random sequence and timestamp bases (a new source, §5.1); the SR counts
   * restart (§6.4.1: "reset if the sender changes its SSRC identifier") and the next packet
   * carries the marker. Returns the old SSRC, for the BYE the caller sends for it. Timestamps read
   * from {@link timestamp} before the change are void.
   */
  changeSsrc(avoid: readonly number[] = []): number {
    const old = this.currentSsrc;
    let next = u32(this.random);
    for (let tries = 0; next === old || avoid.includes(next); tries++) {
      if (tries > 64) throw new Error('random source keeps returning a colliding SSRC');
      next = u32(this.random);
    }
    this.currentSsrc = next;
    this.seq = this.random.bytes(2).readUInt16BE(0);
    this.ts = u32(this.random);
    this.packets = 0;
    this.octets = 0;
    this.lastSentMs = undefined;
    this.talkspurtPending = true;
    return old;
  }

  private build(payload: Uint8Array, payloadType: number, timestamp: number, marker: boolean): Uint8Array {
    const out = new Uint8Array(RTP_FIXED_HEADER_LENGTH + payload.length);
    encodeRtpHeader({ marker, payloadType, sequence: this.seq, timestamp, ssrc: this.currentSsrc }, out, 0);
    out.set(payload, RTP_FIXED_HEADER_LENGTH);
    this.seq = (this.seq + 1) & 0xffff;
    this.packets = (this.packets + 1) % TWO_32;
    this.octets = (this.octets + payload.length) % TWO_32;
    this.allPackets++;
    this.allOctets += payload.length;
    return out;
  }
}

function checkTicks(ticks: number): void {
  if (!Number.isInteger(ticks) || ticks < 0 || ticks >= TWO_32) throw new RangeError(`ticks ${ticks} is not a 32-bit unsigned integer`);
}
