/**
 * RTCP packets (RFC 3550 §6): sender and receiver reports with report blocks, SDES, BYE, any
 * other packet type kept opaque, and compound packets (§6.1). Pure: bytes in, objects out.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |V=2|P|  count  |      PT       |  length (32-bit words - 1)    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * {@link encodeRtcp} / {@link decodeRtcp} / {@link rtcpEncodingLength} round-trip a list of
 * packets (one compound datagram). The NTP helpers live in ntp.ts (re-exported here).
 */
import type { NtpTimestamp } from './ntp.ts';

/** RTCP packet types (RFC 3550 §12.1). */
export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;
export const RTCP_APP = 204;

/** SDES item types (RFC 3550 §12.2). */
export const SDES_CNAME = 1;
export const SDES_NAME = 2;
export const SDES_TOOL = 6;

/** One reception report block (RFC 3550 §6.4.1), about the source `ssrc`. */
export interface RtcpReportBlock {
  ssrc: number;
  /** Fraction of packets lost since the previous report, in 1/256 (0..255). */
  fractionLost: number;
  /** Cumulative packets lost, signed 24 bits (duplicates can make it negative). */
  cumulativeLost: number;
  /** Extended highest sequence number received: cycles in the high 16 bits. */
  extendedHighestSequence: number;
  /** Interarrival jitter in RTP timestamp units (§6.4.1, A.8). */
  jitter: number;
  /** Middle 32 bits of the NTP timestamp of the last SR received from `ssrc` (LSR), 0 if none. */
  lastSr: number;
  /** Delay since that SR was received, in 1/65536 s (DLSR), 0 if none. */
  delaySinceLastSr: number;
}

/** SR (RFC 3550 §6.4.1). */
export interface RtcpSenderReport {
  type: 'sr';
  ssrc: number;
  ntp: NtpTimestamp;
  rtpTimestamp: number;
  packetCount: number;
  /** Payload octets sent (headers and padding excluded). */
  octetCount: number;
  reports: RtcpReportBlock[];
  /** Profile-specific extension after the report blocks (a multiple of 4 bytes), when present. */
  extension?: Uint8Array;
}

/** RR (RFC 3550 §6.4.2). */
export interface RtcpReceiverReport {
  type: 'rr';
  ssrc: number;
  reports: RtcpReportBlock[];
  extension?: Uint8Array;
}

/** One SDES item (RFC 3550 §6.5): `type` 1..255, `text` at most 255 UTF-8 bytes. */
export interface SdesItem {
  type: number;
  text: string;
}

/** SDES (RFC 3550 §6.5): chunks of items per source. */
export interface RtcpSdes {
  type: 'sdes';
  chunks: { ssrc: number; items: SdesItem[] }[];
}

/** BYE (RFC 3550 §6.6). */
export interface RtcpBye {
  type: 'bye';
  ssrcs: number[];
  reason?: string;
}

/** Any other packet type (APP, feedback, XR), kept opaque: `count` is the 5-bit header field. */
export interface RtcpOther {
  type: 'other';
  packetType: number;
  count: number;
  /** The bytes after the 4-byte header, padding removed (a multiple of 4 bytes when encoding). */
  body: Uint8Array;
}

export type RtcpPacket = RtcpSenderReport | RtcpReceiverReport | RtcpSdes | RtcpBye | RtcpOther;

export type RtcpPacketErrorCode =
  | 'RTCP_TOO_SHORT'
  | 'RTCP_BAD_VERSION'
  | 'RTCP_BAD_LENGTH'
  | 'RTCP_BAD_PADDING'
  | 'RTCP_NOT_COMPOUND'
  | 'RTCP_BAD_SDES'
  | 'RTCP_BAD_BYE'
  | 'RTCP_BAD_FIELD';

/** A malformed RTCP datagram (decode) or an unencodable field (encode); `code` is stable. */
export class RtcpPacketError extends Error {
  constructor(
    readonly code: RtcpPacketErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RtcpPacketError';
  }
}

/** Options of {@link decodeRtcp}. */
export interface RtcpDecodeOptions {
  /**
   * Enforce RFC 3550 §6.1 / A.2: the first packet is an SR or RR (else `RTCP_NOT_COMPOUND`).
   * Default true; pass false to accept reduced-size RTCP (RFC 5506).
   */
  requireCompound?: boolean;
}

/** Options of {@link encodeRtcp}. */
export interface RtcpEncodeOptions {
  /** Padding octets appended to the last packet (§6.4.1 P bit): a multiple of 4, 4..252. */
  padding?: number;
}

/**
 * True when `p` looks like RTCP rather than RTP on a multiplexed port (RFC 5761 §4: version 2,
 * second octet 192..223).
 */
export function isRtcp(p: Uint8Array): boolean {
  return p.length >= 4 && (p[0]! & 0xc0) === 0x80 && p[1]! >= 192 && p[1]! <= 223;
}

export { compactNtp, compactNtpToMs, msToCompactNtp, NTP_UNIX_OFFSET_SECONDS, ntpFromUnixMs, ntpToUnixMs, type NtpTimestamp } from './ntp.ts';

// --- encode ----------------------------------------------------------------------------------

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();
const REPORT_BLOCK_LENGTH = 24;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function packetLength(p: RtcpPacket): number {
  switch (p.type) {
    case 'sr':
      return 28 + REPORT_BLOCK_LENGTH * p.reports.length + (p.extension?.length ?? 0);
    case 'rr':
      return 8 + REPORT_BLOCK_LENGTH * p.reports.length + (p.extension?.length ?? 0);
    case 'sdes': {
      let n = 4;
      for (const c of p.chunks) {
        let chunk = 4;
        for (const item of c.items) chunk += 2 + utf8.encode(item.text).length;
        n += pad4(chunk + 1);
      }
      return n;
    }
    case 'bye':
      return 4 + 4 * p.ssrcs.length + (p.reason === undefined ? 0 : pad4(1 + utf8.encode(p.reason).length));
    case 'other':
      return 4 + p.body.length;
  }
}

/** Bytes {@link encodeRtcp} writes for `packets` (with `options.padding`). */
export function rtcpEncodingLength(packets: readonly RtcpPacket[], options: RtcpEncodeOptions = {}): number {
  let n = options.padding ?? 0;
  for (const p of packets) n += packetLength(p);
  return n;
}

function fieldError(message: string): RtcpPacketError {
  return new RtcpPacketError('RTCP_BAD_FIELD', message);
}

function checkU(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw fieldError(`${name} ${v} is outside 0..${max}`);
}

class Writer {
  private readonly view: DataView;
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8(v: number): void {
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }
  u32(name: string, v: number): void {
    checkU(name, v, 0xffffffff);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  zeros(n: number): void {
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }
}

function writeBlocks(w: Writer, blocks: readonly RtcpReportBlock[]): void {
  for (const b of blocks) {
    w.u32('report block SSRC', b.ssrc);
    checkU('fraction lost', b.fractionLost, 0xff);
    if (!Number.isInteger(b.cumulativeLost) || b.cumulativeLost < -0x800000 || b.cumulativeLost > 0x7fffff) {
      throw fieldError(`cumulative lost ${b.cumulativeLost} does not fit in signed 24 bits`);
    }
    w.u32('fraction and cumulative lost', ((b.fractionLost << 24) | (b.cumulativeLost & 0xffffff)) >>> 0);
    w.u32('extended highest sequence', b.extendedHighestSequence);
    w.u32('jitter', b.jitter);
    w.u32('LSR', b.lastSr);
    w.u32('DLSR', b.delaySinceLastSr);
  }
}

function writeExtension(w: Writer, ext: Uint8Array | undefined): void {
  if (!ext) return;
  if (ext.length % 4 !== 0) throw fieldError(`profile extension of ${ext.length} bytes is not a multiple of 4`);
  w.bytes(ext);
}

function writePacket(w: Writer, p: RtcpPacket, paddingOctets: number): void {
  const start = w.pos;
  const total = packetLength(p) + paddingOctets;
  let count: number;
  let pt: number;
  switch (p.type) {
    case 'sr':
      count = p.reports.length;
      pt = RTCP_SR;
      break;
    case 'rr':
      count = p.reports.length;
      pt = RTCP_RR;
      break;
    case 'sdes':
      count = p.chunks.length;
      pt = RTCP_SDES;
      break;
    case 'bye':
      count = p.ssrcs.length;
      pt = RTCP_BYE;
      break;
    case 'other':
      count = p.count;
      pt = p.packetType;
      checkU('packet type', pt, 0xff);
      if (p.body.length % 4 !== 0) throw fieldError(`packet body of ${p.body.length} bytes is not a multiple of 4`);
      break;
  }
  checkU(`${p.type} count`, count, 31);
  if (total > 4 * 65536) throw fieldError(`RTCP packet of ${total} bytes exceeds the 16-bit length field`);
  w.u8(0x80 | (paddingOctets > 0 ? 0x20 : 0) | count);
  w.u8(pt);
  w.u16(total / 4 - 1);
  switch (p.type) {
    case 'sr':
      w.u32('SSRC', p.ssrc);
      w.u32('NTP seconds', p.ntp.seconds);
      w.u32('NTP fraction', p.ntp.fraction);
      w.u32('RTP timestamp', p.rtpTimestamp);
      w.u32('packet count', p.packetCount);
      w.u32('octet count', p.octetCount);
      writeBlocks(w, p.reports);
      writeExtension(w, p.extension);
      break;
    case 'rr':
      w.u32('SSRC', p.ssrc);
      writeBlocks(w, p.reports);
      writeExtension(w, p.extension);
      break;
    case 'sdes':
      for (const c of p.chunks) {
        const chunkStart = w.pos;
        w.u32('SDES SSRC', c.ssrc);
        for (const item of c.items) {
          const text = utf8.encode(item.text);
          checkU('SDES item type', item.type, 0xff);
          if (item.type === 0) throw fieldError('SDES item type 0 is the list terminator');
          if (text.length > 255) throw fieldError(`SDES item of ${text.length} bytes, at most 255`);
          w.u8(item.type);
          w.u8(text.length);
          w.bytes(text);
        }
        // §6.5: the item list ends with one or more null octets up to the next 32-bit boundary.
        w.zeros(pad4(w.pos - chunkStart + 1) - (w.pos - chunkStart));
      }
      break;
    case 'bye':
      for (const s of p.ssrcs) w.u32('BYE SSRC', s);
      if (p.reason !== undefined) {
        const text = utf8.encode(p.reason);
        if (text.length > 255) throw fieldError(`BYE reason of ${text.length} bytes, at most 255`);
        w.u8(text.length);
        w.bytes(text);
        w.zeros(pad4(1 + text.length) - 1 - text.length);
      }
      break;
    case 'other':
      w.bytes(p.body);
      break;
  }
  if (paddingOctets > 0) {
    w.zeros(paddingOctets - 1);
    w.u8(paddingOctets);
  }
  if (w.pos - start !== total) throw new Error(`RTCP ${p.type}: wrote ${w.pos - start} bytes, expected ${total}`);
}

/**
 * Writes `packets` as one compound datagram into `buf` at `offset` (a new buffer when omitted);
 * returns the buffer. Throws {@link RtcpPacketError} `RTCP_BAD_FIELD` for a value that does not
 * fit (more than 31 blocks/chunks/SSRCs, a text over 255 bytes, an out-of-range number).
 */
export function encodeRtcp(
  packets: readonly RtcpPacket[],
  buf?: Uint8Array,
  offset = 0,
  options: RtcpEncodeOptions = {},
): Uint8Array {
  const padding = options.padding ?? 0;
  if (padding !== 0 && (padding % 4 !== 0 || padding > 252)) {
    throw fieldError(`padding ${padding} is not a multiple of 4 in 4..252`);
  }
  if (packets.length === 0) throw fieldError('an RTCP datagram holds at least one packet');
  const len = rtcpEncodingLength(packets, options);
  const out = buf ?? new Uint8Array(offset + len);
  if (out.length < offset + len) throw new RangeError(`encodeRtcp needs ${len} bytes at offset ${offset}`);
  const w = new Writer(out, offset);
  packets.forEach((p, i) => writePacket(w, p, i === packets.length - 1 ? padding : 0));
  return out;
}

// --- decode ----------------------------------------------------------------------------------

function readBlocks(view: DataView, at: number, count: number): RtcpReportBlock[] {
  const blocks: RtcpReportBlock[] = [];
  for (let i = 0; i < count; i++, at += REPORT_BLOCK_LENGTH) {
    const lossWord = view.getUint32(at + 4);
    blocks.push({
      ssrc: view.getUint32(at),
      fractionLost: lossWord >>> 24,
      cumulativeLost: (lossWord << 8) >> 8,
      extendedHighestSequence: view.getUint32(at + 8),
      jitter: view.getUint32(at + 12),
      lastSr: view.getUint32(at + 16),
      delaySinceLastSr: view.getUint32(at + 20),
    });
  }
  return blocks;
}

function decodeSdes(buf: Uint8Array, view: DataView, at: number, end: number, count: number): RtcpSdes {
  const chunks: RtcpSdes['chunks'] = [];
  const packetStart = at - 4;
  for (let c = 0; c < count; c++) {
    if (end - at < 4) throw new RtcpPacketError('RTCP_BAD_LENGTH', `SDES chunk ${c + 1} of ${count} overruns the packet`);
    const ssrc = view.getUint32(at);
    at += 4;
    const items: SdesItem[] = [];
    for (;;) {
      if (at >= end) throw new RtcpPacketError('RTCP_BAD_SDES', `SDES chunk for SSRC ${ssrc} has no null terminator`);
      const type = buf[at]!;
      if (type === 0) break;
      if (at + 2 > end || at + 2 + buf[at + 1]! > end) {
        throw new RtcpPacketError('RTCP_BAD_SDES', `SDES item of type ${type} overruns the packet`);
      }
      const len = buf[at + 1]!;
      items.push({ type, text: utf8Decoder.decode(buf.subarray(at + 2, at + 2 + len)) });
      at += 2 + len;
    }
    // Skip the terminator and the null octets up to the next 32-bit boundary of the packet.
    at = packetStart + pad4(at + 1 - packetStart);
    if (at > end) throw new RtcpPacketError('RTCP_BAD_SDES', `SDES chunk for SSRC ${ssrc} overruns the packet`);
    chunks.push({ ssrc, items });
  }
  for (; at < end; at++) {
    if (buf[at] !== 0) throw new RtcpPacketError('RTCP_BAD_SDES', `${end - at} unexpected bytes after the SDES chunks`);
  }
  return { type: 'sdes', chunks };
}

function decodeBye(buf: Uint8Array, view: DataView, at: number, end: number, count: number): RtcpBye {
  if (end - at < 4 * count) throw new RtcpPacketError('RTCP_BAD_LENGTH', `BYE with ${count} SSRCs overruns the packet`);
  const ssrcs: number[] = [];
  for (let i = 0; i < count; i++, at += 4) ssrcs.push(view.getUint32(at));
  const bye: RtcpBye = { type: 'bye', ssrcs };
  if (at < end) {
    const len = buf[at]!;
    if (at + 1 + len > end) throw new RtcpPacketError('RTCP_BAD_BYE', `BYE reason of ${len} bytes overruns the packet`);
    bye.reason = utf8Decoder.decode(buf.subarray(at + 1, at + 1 + len));
  }
  return bye;
}

function tooShortFor(what: string, need: number, have: number): RtcpPacketError {
  return new RtcpPacketError('RTCP_BAD_LENGTH', `${what} needs ${need} bytes, the packet holds ${have}`);
}

/**
 * Decodes the RTCP datagram in `buf[offset, offset + length)` into its packets, validating as
 * RFC 3550 A.2 does: version 2 everywhere, lengths that add up to the datagram exactly, padding
 * only on the last packet, counts that fit their packets, and (by default) an SR or RR first.
 * Throws {@link RtcpPacketError}; the returned objects do not alias `buf` except `RtcpOther.body`
 * and `extension`, which are copies.
 */
export function decodeRtcp(
  buf: Uint8Array,
  offset = 0,
  length = buf.length - offset,
  options: RtcpDecodeOptions = {},
): RtcpPacket[] {
  if (offset < 0 || length < 0 || offset + length > buf.length) {
    throw new RangeError(`decodeRtcp: range ${offset}+${length} outside a ${buf.length}-byte buffer`);
  }
  if (length < 4) throw new RtcpPacketError('RTCP_TOO_SHORT', `RTCP datagram of ${length} bytes is shorter than a header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const end = offset + length;
  const packets: RtcpPacket[] = [];
  let pos = offset;
  while (pos < end) {
    if (end - pos < 4) {
      throw new RtcpPacketError('RTCP_TOO_SHORT', `${end - pos} bytes after the last packet are shorter than a header`);
    }
    const b0 = buf[pos]!;
    if (b0 >> 6 !== 2) throw new RtcpPacketError('RTCP_BAD_VERSION', `RTCP version ${b0 >> 6}, expected 2`);
    const count = b0 & 0x1f;
    const pt = buf[pos + 1]!;
    const size = (view.getUint16(pos + 2) + 1) * 4;
    if (pos + size > end) {
      throw new RtcpPacketError('RTCP_BAD_LENGTH', `RTCP packet type ${pt} of ${size} bytes overruns the ${end - pos} left`);
    }
    if (packets.length === 0 && options.requireCompound !== false && pt !== RTCP_SR && pt !== RTCP_RR) {
      // §6.1: "The first RTCP packet in the compound packet MUST always be a report packet".
      throw new RtcpPacketError('RTCP_NOT_COMPOUND', `first RTCP packet has type ${pt}, expected SR or RR`);
    }
    let bodyEnd = pos + size;
    if (b0 & 0x20) {
      // A.2: only the last packet of a compound packet may carry padding.
      if (bodyEnd !== end) throw new RtcpPacketError('RTCP_BAD_PADDING', `RTCP packet type ${pt} is padded but not last`);
      const pad = buf[bodyEnd - 1]!;
      if (pad === 0 || pad > size - 4) {
        throw new RtcpPacketError('RTCP_BAD_PADDING', `padding count ${pad} in a ${size}-byte packet`);
      }
      bodyEnd -= pad;
    }
    const body = pos + 4;
    const bodyLen = bodyEnd - body;
    switch (pt) {
      case RTCP_SR: {
        const need = 24 + REPORT_BLOCK_LENGTH * count;
        if (bodyLen < need) throw tooShortFor(`SR with ${count} report blocks`, need + 4, bodyLen + 4);
        const sr: RtcpSenderReport = {
          type: 'sr',
          ssrc: view.getUint32(body),
          ntp: { seconds: view.getUint32(body + 4), fraction: view.getUint32(body + 8) },
          rtpTimestamp: view.getUint32(body + 12),
          packetCount: view.getUint32(body + 16),
          octetCount: view.getUint32(body + 20),
          reports: readBlocks(view, body + 24, count),
        };
        if (bodyLen > need) sr.extension = buf.slice(body + need, bodyEnd);
        packets.push(sr);
        break;
      }
      case RTCP_RR: {
        const need = 4 + REPORT_BLOCK_LENGTH * count;
        if (bodyLen < need) throw tooShortFor(`RR with ${count} report blocks`, need + 4, bodyLen + 4);
        const rr: RtcpReceiverReport = { type: 'rr', ssrc: view.getUint32(body), reports: readBlocks(view, body + 4, count) };
        if (bodyLen > need) rr.extension = buf.slice(body + need, bodyEnd);
        packets.push(rr);
        break;
      }
      case RTCP_SDES:
        packets.push(decodeSdes(buf, view, body, bodyEnd, count));
        break;
      case RTCP_BYE:
        packets.push(decodeBye(buf, view, body, bodyEnd, count));
        break;
      default:
        packets.push({ type: 'other', packetType: pt, count, body: buf.slice(body, bodyEnd) });
    }
    pos += size;
  }
  return packets;
}
