/**
 * DTMF as RTP events (RFC 4733, `telephone-event`): the 4-byte payload, a sender that turns
 * digits into the start / update / end packet sequence of §2.5.1, and a receiver that turns the
 * packets back into one {@link DtmfDigit} per key press.
 *
 * Sender and audio share one RTP stream and one timeline. The RTP sender calls
 * {@link DtmfSender.nextFrame} once per packetisation interval with the timestamp its audio packet
 * would carry. When it returns a packet, that packet (payload type `telephone-event`) is sent
 * *instead of* the audio for that frame: the audio is suppressed while an event (including its
 * three end packets) is on the wire, and the timestamp of the audio timeline keeps advancing, so
 * audio resumes at the timestamp of the sample it carries. Every packet of one event carries the
 * timestamp of the event's first frame (§2.5.1.2); its duration field grows from that point.
 */
import { dtmfDigitOfEvent, dtmfEventCode, type DtmfDigit } from './types.ts';

/** The payload of one named event (RFC 4733 §2.3, figure 1). */
export interface DtmfEventPayload {
  /** Event code 0-255 (§3.2: 0-9, 10 `*`, 11 `#`, 12-15 `A`-`D`, 16 flash). */
  event: number;
  /** The E bit: this packet reports the end of the event (§2.3.3). */
  end: boolean;
  /** Power level of the tone as 0..63, meaning 0 to -63 dBm0 (§2.3.4). */
  volume: number;
  /** Duration so far in RTP clock units, 0..65535 (§2.3.5). */
  duration: number;
}

/** Bytes of one event block (§2.3). */
export const DTMF_EVENT_PAYLOAD_LENGTH = 4;

export type DtmfEventErrorCode = 'DTMF_TOO_SHORT' | 'DTMF_BAD_VALUE' | 'DTMF_BAD_DIGIT';

/** Thrown by the encoder/decoder and the sender for input they cannot represent. */
export class DtmfEventError extends Error {
  constructor(
    readonly code: DtmfEventErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DtmfEventError';
  }
}

function checkField(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new DtmfEventError('DTMF_BAD_VALUE', `telephone-event ${name} ${v} outside 0..${max}`);
  }
}

/**
 * Writes `p` (§2.3: event, E, R=0, volume, duration in network order) into `buf` at `offset`
 * (a fresh 4-byte array when `buf` is omitted) and returns `buf`. Throws {@link DtmfEventError}
 * `DTMF_BAD_VALUE` for a field out of range, `DTMF_TOO_SHORT` when `buf` has no room.
 */
export function encodeDtmfEvent(p: DtmfEventPayload, buf?: Uint8Array, offset = 0): Uint8Array {
  checkField('event', p.event, 255);
  checkField('volume', p.volume, 63);
  checkField('duration', p.duration, 0xffff);
  const out = buf ?? new Uint8Array(DTMF_EVENT_PAYLOAD_LENGTH);
  if (offset < 0 || offset + DTMF_EVENT_PAYLOAD_LENGTH > out.length) {
    throw new DtmfEventError('DTMF_TOO_SHORT', `no room for a 4-byte telephone-event at offset ${offset} of ${out.length}`);
  }
  out[offset] = p.event;
  // §2.3: the R bit "MUST be zero" on send.
  out[offset + 1] = (p.end ? 0x80 : 0) | p.volume;
  out[offset + 2] = p.duration >>> 8;
  out[offset + 3] = p.duration & 0xff;
  return out;
}

/**
 * Reads the first event block of the payload `buf[offset, offset + length)`; the R bit is ignored
 * (§2.3: "the receiver MUST ignore it"). Throws {@link DtmfEventError} `DTMF_TOO_SHORT` for fewer
 * than 4 bytes. Further blocks (§2.5.1.5 packing) are not read.
 */
export function decodeDtmfEvent(buf: Uint8Array, offset = 0, length = buf.length - offset): DtmfEventPayload {
  if (length < DTMF_EVENT_PAYLOAD_LENGTH || offset < 0 || offset + DTMF_EVENT_PAYLOAD_LENGTH > buf.length) {
    throw new DtmfEventError('DTMF_TOO_SHORT', `telephone-event payload of ${length} bytes, need 4`);
  }
  const b1 = buf[offset + 1]!;
  return {
    event: buf[offset]!,
    end: (b1 & 0x80) !== 0,
    volume: b1 & 0x3f,
    duration: (buf[offset + 2]! << 8) | buf[offset + 3]!,
  };
}

/** Configuration of a {@link DtmfSender}. */
export interface DtmfSenderOptions {
  /** RTP clock rate of `telephone-event` (equal to the audio's: 8000, 16000 or 48000). */
  clockRate: number;
  /** Packetisation interval of the stream, ms (default 20): one event packet per audio frame. */
  ptimeMs?: number;
  /** Tone duration per digit, ms (default 100). Limited to 65535 clock units (§2.5.1.3 segments are not sent). */
  durationMs?: number;
  /**
   * Silence between the end of one digit and the start of the next, ms (default 100; door openers
   * may need 500). Rounded up to whole frames; at least two frames, which carry the end
   * retransmissions of the previous digit.
   */
  gapMs?: number;
  /** Tone level reported in the volume field, as -dBm0 (default 10). */
  volume?: number;
}

/** Per-call overrides for {@link DtmfSender.send}. */
export interface DtmfSendOverrides {
  durationMs?: number;
  gapMs?: number;
}

/** One `telephone-event` packet for the RTP sender to send in place of the frame's audio. */
export interface DtmfPacket {
  /** The 4-byte RTP payload. */
  payload: Uint8Array;
  /** RTP marker bit: set on the first packet of an event (§2.5.1.2). */
  marker: boolean;
  /** RTP timestamp: the timestamp of the event's first frame, the same for all its packets. */
  timestamp: number;
  /** The key this packet reports. */
  digit: string;
  /** True for the end packet and its two retransmissions (§2.5.1.4). */
  end: boolean;
}

interface QueuedDigit {
  digit: string;
  event: number;
  units: number;
  gapFrames: number;
}

interface ActiveEvent extends QueuedDigit {
  timestamp: number;
  sent: number;
  endsSent: number;
}

/**
 * Turns digits into the RFC 4733 §2.5.1 packet sequence, one packet per frame: a start packet
 * with the marker bit, updates every ptime with the duration so far, then the end packet with
 * the E bit, sent three times in successive frames with the same timestamp and final duration.
 * Pure: driven only by {@link nextFrame}, called by the RTP sender once per ptime.
 */
export class DtmfSender {
  private readonly clockRate: number;
  private readonly ptimeMs: number;
  private readonly frameUnits: number;
  private readonly durationMs: number;
  private readonly gapMs: number;
  private readonly volume: number;
  private readonly queue: QueuedDigit[] = [];
  private current: ActiveEvent | undefined;
  private waitFrames = 0;

  constructor(opts: DtmfSenderOptions) {
    if (!(opts.clockRate > 0)) throw new DtmfEventError('DTMF_BAD_VALUE', `clock rate ${opts.clockRate}`);
    this.clockRate = opts.clockRate;
    this.ptimeMs = opts.ptimeMs ?? 20;
    this.frameUnits = Math.round((this.clockRate * this.ptimeMs) / 1000);
    if (!(this.frameUnits > 0)) throw new DtmfEventError('DTMF_BAD_VALUE', `ptime ${this.ptimeMs} ms`);
    this.durationMs = opts.durationMs ?? 100;
    this.gapMs = opts.gapMs ?? 100;
    this.volume = opts.volume ?? 10;
    checkField('volume', this.volume, 63);
    this.prepare('0', {});
  }

  /**
   * Queues `digits` (`0`-`9`, `*`, `#`, `A`-`D` in either case, `!` for flash) behind any digits
   * still queued. Throws {@link DtmfEventError} `DTMF_BAD_DIGIT` (nothing queued) for any other
   * character, `DTMF_BAD_VALUE` for a duration beyond 65535 clock units.
   */
  send(digits: string, overrides: DtmfSendOverrides = {}): void {
    const prepared = [...digits].map((d) => this.prepare(d, overrides));
    this.queue.push(...prepared);
  }

  /** True while an event is being sent, digits are queued, or the gap after a digit runs. */
  get busy(): boolean {
    return this.current !== undefined || this.queue.length > 0 || this.waitFrames > 0;
  }

  /** Digits queued and not yet started. */
  get queued(): number {
    return this.queue.length;
  }

  /** Drops the queued digits; an event already started still ends with its end packets. */
  clear(): void {
    this.queue.length = 0;
  }

  /**
   * Called once per frame with the RTP timestamp of that frame on the audio timeline. Returns the
   * packet to send instead of the frame's audio, or undefined: send audio as usual.
   */
  nextFrame(frameTimestamp: number): DtmfPacket | undefined {
    if (!this.current) {
      if (this.waitFrames > 0) {
        this.waitFrames--;
        return undefined;
      }
      const next = this.queue.shift();
      if (!next) return undefined;
      // §2.5.1.2: the RTP timestamp of every packet of the event is the time of its onset.
      this.current = { ...next, timestamp: frameTimestamp >>> 0, sent: 0, endsSent: 0 };
    }
    const c = this.current;
    const marker = c.sent === 0;
    const soFar = (c.sent + 1) * this.frameUnits;
    c.sent++;
    if (soFar < c.units && c.endsSent === 0) {
      // §2.5.1.2: updates carry the same timestamp and the duration so far.
      return this.packet(c, false, soFar, marker);
    }
    // §2.5.1.4: "the final packet for each event ... SHOULD be sent a total of three times at
    // the interval used by the source for updates".
    c.endsSent++;
    const p = this.packet(c, true, c.units, marker);
    if (c.endsSent === 3) {
      this.current = undefined;
      this.waitFrames = Math.max(0, c.gapFrames - 2);
    }
    return p;
  }

  private packet(c: ActiveEvent, end: boolean, duration: number, marker: boolean): DtmfPacket {
    const payload = encodeDtmfEvent({ event: c.event, end, volume: this.volume, duration });
    return { payload, marker, timestamp: c.timestamp, digit: c.digit, end };
  }

  private prepare(digit: string, o: DtmfSendOverrides): QueuedDigit {
    const event = dtmfEventCode(digit);
    if (event === undefined) throw new DtmfEventError('DTMF_BAD_DIGIT', `not a DTMF key: ${JSON.stringify(digit)}`);
    const durationMs = o.durationMs ?? this.durationMs;
    const units = Math.round((durationMs * this.clockRate) / 1000);
    if (!(units >= 1 && units <= 0xffff)) {
      throw new DtmfEventError('DTMF_BAD_VALUE', `duration ${durationMs} ms is ${units} units at ${this.clockRate} Hz, outside 1..65535`);
    }
    const gapMs = o.gapMs ?? this.gapMs;
    if (!(gapMs >= 0)) throw new DtmfEventError('DTMF_BAD_VALUE', `gap ${gapMs} ms`);
    const gapFrames = Math.max(2, Math.ceil(gapMs / this.ptimeMs - 1e-9));
    return { digit: digit === '!' ? '!' : digit.toUpperCase(), event, units, gapFrames };
  }
}

/** One entry of {@link dtmfSchedule}. */
export interface DtmfScheduledPacket {
  /** When to send it, ms after the schedule starts (a multiple of ptime). */
  atMs: number;
  payload: Uint8Array;
  marker: boolean;
  /** RTP timestamp relative to the schedule's first frame (the event's onset). */
  timestampOffset: number;
  digit: string;
  end: boolean;
}

/**
 * The whole packet schedule of `digits` as a {@link DtmfSender} would produce it, starting at
 * frame 0. Frames without an entry carry audio. For tests and for callers that pre-plan.
 */
export function dtmfSchedule(digits: string, opts: DtmfSenderOptions): DtmfScheduledPacket[] {
  const sender = new DtmfSender(opts);
  sender.send(digits);
  const ptimeMs = opts.ptimeMs ?? 20;
  const frameUnits = Math.round((opts.clockRate * ptimeMs) / 1000);
  const out: DtmfScheduledPacket[] = [];
  for (let frame = 0; sender.busy; frame++) {
    const p = sender.nextFrame((frame * frameUnits) >>> 0);
    if (p) {
      out.push({ atMs: frame * ptimeMs, payload: p.payload, marker: p.marker, timestampOffset: p.timestamp, digit: p.digit, end: p.end });
    }
  }
  return out;
}

/** Configuration of a {@link DtmfReceiver}. */
export interface DtmfReceiverOptions {
  /** RTP clock rate of the `telephone-event` format (from SDP). */
  clockRate: number;
  /**
   * An event that has seen no packet for this long (ms, default 500) is taken as ended with the
   * last duration reported: its end packets were all lost.
   */
  timeoutMs?: number;
  /** Report event 16 (flash) as `!` (default true); when false it is ignored. */
  flash?: boolean;
}

/** A received `telephone-event` RTP packet, as far as the receiver needs it. */
export interface DtmfEventPacket {
  timestamp: number;
  payload: Uint8Array;
  marker?: boolean;
}

interface ReceivedEvent {
  timestamp: number;
  digit: string;
  duration: number;
  lastMs: number;
  ended: boolean;
}

const REMEMBERED_ENDS = 8;
/** How far back (seconds of RTP clock) a packet counts as a late straggler rather than a restart. */
const LATE_WINDOW_S = 10;

/**
 * Turns `telephone-event` packets into digits, each reported once with its duration. Packets with
 * the timestamp of an event already reported (the end retransmissions, duplicates) are dropped;
 * an event whose end packets were lost ends when an event with a new timestamp starts or when
 * {@link poll} finds it silent for `timeoutMs`. Two presses of the same key are two events
 * because they have different timestamps.
 */
export class DtmfReceiver {
  private readonly clockRate: number;
  private readonly timeoutMs: number;
  private readonly flash: boolean;
  private current: ReceivedEvent | undefined;
  private readonly endedTimestamps: number[] = [];
  private malformedCount = 0;

  constructor(opts: DtmfReceiverOptions) {
    this.clockRate = opts.clockRate;
    this.timeoutMs = opts.timeoutMs ?? 500;
    this.flash = opts.flash ?? true;
  }

  /** Payloads too short to decode, so far. */
  get malformed(): number {
    return this.malformedCount;
  }

  /** The key currently held (an event started and not yet ended), if any. */
  get holding(): string | undefined {
    return this.current && !this.current.ended ? this.current.digit : undefined;
  }

  /** Takes one packet received at `nowMs`; returns the digits that ended with it (0, 1 or 2). */
  receive(packet: DtmfEventPacket, nowMs: number): DtmfDigit[] {
    let p: DtmfEventPayload;
    try {
      p = decodeDtmfEvent(packet.payload);
    } catch {
      this.malformedCount++;
      return [];
    }
    const digit = dtmfDigitOfEvent(p.event);
    if (digit === undefined || (digit === '!' && !this.flash)) return [];
    const ts = packet.timestamp >>> 0;
    const out: DtmfDigit[] = [];
    const c = this.current;
    if (c && c.timestamp === ts) {
      // §2.5.2: packets with the timestamp of a known event update it; once ended, the E-bit
      // retransmissions (§2.5.1.4) and duplicates change nothing.
      if (c.ended) return out;
      c.duration = Math.max(c.duration, p.duration);
      c.lastMs = nowMs;
      if (p.end) out.push(this.finish(c));
      return out;
    }
    if (this.endedTimestamps.includes(ts)) return out;
    // A straggler from an event older than the current one is dropped; a jump far back is a
    // restarted stream (new SSRC or timestamp base) and begins a new event.
    if (c && isBefore(ts, c.timestamp) && ((c.timestamp - ts) >>> 0) < this.clockRate * LATE_WINDOW_S) return out;
    // A new timestamp begins a new event; a previous one still open lost its end packets.
    if (c && !c.ended) out.push(this.finish(c));
    const next: ReceivedEvent = { timestamp: ts, digit, duration: p.duration, lastMs: nowMs, ended: false };
    this.current = next;
    if (p.end) out.push(this.finish(next));
    return out;
  }

  /**
   * Forgets all events without reporting the one in progress: call on an SSRC change or when the
   * stream is re-negotiated, so the new stream's timestamps are not taken for old ones.
   */
  reset(): void {
    this.current = undefined;
    this.endedTimestamps.length = 0;
  }

  /** Ends an event silent for `timeoutMs` at `nowMs` (its end packets were lost). */
  poll(nowMs: number): DtmfDigit[] {
    const c = this.current;
    if (c && !c.ended && nowMs - c.lastMs >= this.timeoutMs) return [this.finish(c)];
    return [];
  }

  private finish(e: ReceivedEvent): DtmfDigit {
    e.ended = true;
    this.endedTimestamps.push(e.timestamp);
    if (this.endedTimestamps.length > REMEMBERED_ENDS) this.endedTimestamps.shift();
    return { digit: e.digit, durationMs: Math.round((e.duration * 1000) / this.clockRate), source: 'rfc4733' };
  }
}

/** RTP timestamp order with wrap-around (RFC 3550 §5.1 modular arithmetic). */
function isBefore(a: number, b: number): boolean {
  const d = (a - b) | 0;
  return d < 0;
}
