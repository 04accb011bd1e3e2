/**
 * The RTP fixed header (RFC 3550 §5.1), read and rewritten in place.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                           timestamp                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           synchronization source (SSRC) identifier            |
 * +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 * |            contributing source (CSRC) identifiers             |
 * ```
 *
 * The relay's hot path uses only the small accessors ({@link isRtp}, {@link setPayloadType},
 * {@link SsrcContinuity}); {@link decodeRtpHeader} / {@link encodeRtpHeader} are the full codec
 * for tests and tools. Pure: no I/O, no clock.
 */

/** Length of the RTP fixed header without CSRCs. */
export const RTP_FIXED_HEADER_LENGTH = 12;

/** Decoded RTP header fields (RFC 3550 §5.1). */
export interface RtpHeader {
  padding: boolean;
  extension: boolean;
  marker: boolean;
  payloadType: number;
  sequence: number;
  timestamp: number;
  ssrc: number;
  csrcs: number[];
  /** Bytes before the payload: fixed header, CSRC list and, when X is set, the header extension. */
  headerLength: number;
}

/** What {@link encodeRtpHeader} writes (no header extension). */
export type RtpHeaderInit = Omit<RtpHeader, 'extension' | 'headerLength' | 'padding' | 'csrcs'> & {
  padding?: boolean;
  csrcs?: number[];
};

export type RtpPacketErrorCode = 'RTP_TOO_SHORT' | 'RTP_BAD_VERSION' | 'RTP_BAD_FIELD';

/** A malformed packet or an out-of-range field; `code` is stable. */
export class RtpPacketError extends Error {
  constructor(
    readonly code: RtpPacketErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RtpPacketError';
  }
}

/** True when `p` is long enough for the fixed header and has version 2 (RFC 3550 §5.1 "V"). */
export function isRtp(p: Uint8Array): boolean {
  return p.length >= RTP_FIXED_HEADER_LENGTH && (p[0]! & 0xc0) === 0x80;
}

export function payloadType(p: Uint8Array): number {
  return p[1]! & 0x7f;
}

/** Replaces the 7-bit payload type in place, keeping the marker bit. */
export function setPayloadType(p: Uint8Array, pt: number): void {
  p[1] = (p[1]! & 0x80) | (pt & 0x7f);
}

export function readSequence(p: Uint8Array): number {
  return (p[2]! << 8) | p[3]!;
}

export function readTimestamp(p: Uint8Array): number {
  return readU32(p, 4);
}

export function readSsrc(p: Uint8Array): number {
  return readU32(p, 8);
}

function readU32(p: Uint8Array, at: number): number {
  return ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;
}

function writeU32(p: Uint8Array, at: number, v: number): void {
  p[at] = v >>> 24;
  p[at + 1] = (v >>> 16) & 0xff;
  p[at + 2] = (v >>> 8) & 0xff;
  p[at + 3] = v & 0xff;
}

function writeU16(p: Uint8Array, at: number, v: number): void {
  p[at] = (v >>> 8) & 0xff;
  p[at + 1] = v & 0xff;
}

/** Decodes the header of the packet in `buf[offset, offset + length)`; throws {@link RtpPacketError}. */
export function decodeRtpHeader(buf: Uint8Array, offset = 0, length = buf.length - offset): RtpHeader {
  if (length < RTP_FIXED_HEADER_LENGTH) {
    throw new RtpPacketError('RTP_TOO_SHORT', `RTP packet of ${length} bytes is shorter than the 12-byte fixed header`);
  }
  const b0 = buf[offset]!;
  if (b0 >> 6 !== 2) throw new RtpPacketError('RTP_BAD_VERSION', `RTP version ${b0 >> 6}, expected 2`);
  const cc = b0 & 0x0f;
  const extension = (b0 & 0x10) !== 0;
  let headerLength = RTP_FIXED_HEADER_LENGTH + 4 * cc;
  if (length < headerLength) {
    throw new RtpPacketError('RTP_TOO_SHORT', `RTP packet of ${length} bytes cannot hold ${cc} CSRCs`);
  }
  const csrcs: number[] = [];
  for (let i = 0; i < cc; i++) csrcs.push(readU32(buf, offset + RTP_FIXED_HEADER_LENGTH + 4 * i));
  if (extension) {
    // RFC 3550 §5.3.1: 16-bit profile field, then the extension length in 32-bit words.
    if (length < headerLength + 4) {
      throw new RtpPacketError('RTP_TOO_SHORT', `RTP packet of ${length} bytes cannot hold its header extension`);
    }
    const words = (buf[offset + headerLength + 2]! << 8) | buf[offset + headerLength + 3]!;
    headerLength += 4 + 4 * words;
    if (length < headerLength) {
      throw new RtpPacketError('RTP_TOO_SHORT', `RTP header extension of ${words} words overruns a ${length}-byte packet`);
    }
  }
  return {
    padding: (b0 & 0x20) !== 0,
    extension,
    marker: (buf[offset + 1]! & 0x80) !== 0,
    payloadType: buf[offset + 1]! & 0x7f,
    sequence: (buf[offset + 2]! << 8) | buf[offset + 3]!,
    timestamp: readU32(buf, offset + 4),
    ssrc: readU32(buf, offset + 8),
    csrcs,
    headerLength,
  };
}

/** Bytes {@link encodeRtpHeader} writes for `h`. */
export function rtpHeaderEncodingLength(h: RtpHeaderInit): number {
  return RTP_FIXED_HEADER_LENGTH + 4 * (h.csrcs?.length ?? 0);
}

/** Writes the header (X = 0) into `buf` at `offset` (a new buffer when omitted); returns the buffer. */
export function encodeRtpHeader(h: RtpHeaderInit, buf?: Uint8Array, offset = 0): Uint8Array {
  const csrcs = h.csrcs ?? [];
  const len = rtpHeaderEncodingLength(h);
  if (csrcs.length > 15) throw new RtpPacketError('RTP_BAD_FIELD', `${csrcs.length} CSRCs, at most 15`);
  checkRange('payload type', h.payloadType, 0x7f);
  checkRange('sequence', h.sequence, 0xffff);
  checkRange('timestamp', h.timestamp, 0xffffffff);
  checkRange('SSRC', h.ssrc, 0xffffffff);
  const out = buf ?? new Uint8Array(offset + len);
  if (out.length < offset + len) throw new RangeError(`encodeRtpHeader needs ${len} bytes at offset ${offset}`);
  out[offset] = 0x80 | (h.padding ? 0x20 : 0) | csrcs.length;
  out[offset + 1] = (h.marker ? 0x80 : 0) | h.payloadType;
  writeU16(out, offset + 2, h.sequence);
  writeU32(out, offset + 4, h.timestamp);
  writeU32(out, offset + 8, h.ssrc);
  csrcs.forEach((c, i) => {
    checkRange('CSRC', c, 0xffffffff);
    writeU32(out, offset + RTP_FIXED_HEADER_LENGTH + 4 * i, c);
  });
  return out;
}

function checkRange(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RtpPacketError('RTP_BAD_FIELD', `${name} ${v} is outside 0..${max}`);
}

/** Timestamp units per packet assumed until one is observed: 20 ms of 8 kHz audio (G.711). */
export const DEFAULT_TIMESTAMP_STEP = 160;
/** Largest per-packet timestamp step learnt: 120 ms at 48 kHz (the longest Opus packet). */
const MAX_TIMESTAMP_STEP = 5760;

/**
 * Keeps one outgoing RTP stream continuous while the source feeding it changes (a transfer puts a
 * new phone, with its own SSRC and random sequence/timestamp bases, behind the same leg).
 *
 * Until the first SSRC change, packets pass untouched. After a change the receiver keeps seeing
 * the first SSRC, with the sequence number continuing at last sent + 1 and the timestamp at last
 * sent + one packet's worth (the last step observed between consecutive packets, default 160);
 * the first packet of the new source carries the marker bit, as a talkspurt start
 * (RFC 3551 §4.1), so the receiver's jitter buffer resynchronises. One instance per output
 * direction; {@link apply} is called on every packet (already checked with {@link isRtp}).
 */
export class SsrcContinuity {
  private started = false;
  private rewriting = false;
  private inSsrc = 0;
  private outSsrc = 0;
  private seqOffset = 0;
  private tsOffset = 0;
  private lastInSeq = 0;
  private lastInTs = 0;
  private lastOutSeq = 0;
  private lastOutTs = 0;
  private step: number;

  constructor(defaultStep = DEFAULT_TIMESTAMP_STEP) {
    this.step = defaultStep;
  }

  /** The SSRC the receiver sees (the first one forwarded). */
  get ssrc(): number {
    return this.outSsrc;
  }

  /** True once a source change made this direction rewrite headers. */
  get isRewriting(): boolean {
    return this.rewriting;
  }

  /** Rewrites `p` in place when the stream needs it. */
  apply(p: Uint8Array): void {
    const ssrc = readU32(p, 8);
    const seq = (p[2]! << 8) | p[3]!;
    const ts = readU32(p, 4);
    if (!this.started) {
      this.started = true;
      this.inSsrc = this.outSsrc = ssrc;
      this.lastInSeq = this.lastOutSeq = seq;
      this.lastInTs = this.lastOutTs = ts;
      return;
    }
    let marker = false;
    if (ssrc !== this.inSsrc) {
      // RFC 3550 §5.1: a new source starts from random sequence and timestamp bases; map them
      // onto the stream the receiver already knows.
      this.inSsrc = ssrc;
      this.seqOffset = (this.lastOutSeq + 1 - seq) & 0xffff;
      this.tsOffset = (this.lastOutTs + this.step - ts) >>> 0;
      this.rewriting = true;
      marker = true;
    } else if (((seq - this.lastInSeq) & 0xffff) === 1 && (p[1]! & 0x80) === 0) {
      // Consecutive packets without a talkspurt start: their timestamp gap is one packet's worth.
      const d = (ts - this.lastInTs) >>> 0;
      if (d > 0 && d <= MAX_TIMESTAMP_STEP) this.step = d;
    }
    this.lastInSeq = seq;
    this.lastInTs = ts;
    let outSeq = seq;
    let outTs = ts;
    if (this.rewriting) {
      outSeq = (seq + this.seqOffset) & 0xffff;
      outTs = (ts + this.tsOffset) >>> 0;
      writeU32(p, 8, this.outSsrc);
      writeU16(p, 2, outSeq);
      writeU32(p, 4, outTs);
      if (marker) p[1] = p[1]! | 0x80;
    }
    // A reordered (older) packet must not pull the continuation point backwards.
    if (marker || ((outSeq - this.lastOutSeq) & 0xffff) < 0x8000) {
      this.lastOutSeq = outSeq;
      this.lastOutTs = outTs;
    }
  }
}
