/**
 * RTCP encoder (RFC 3550 §6): writes a list of packets as one compound datagram.
 * {@link encodeRtcp} and {@link rtcpEncodingLength} round-trip with `decodeRtcp`
 * (rtcp-decode.ts). Pure: objects in, bytes out.
 */
import {
  pad4,
  REPORT_BLOCK_LENGTH,
  RTCP_BYE,
  RTCP_RR,
  RTCP_SDES,
  RTCP_SR,
  RtcpPacketError,
  type RtcpEncodeOptions,
  type RtcpPacket,
  type RtcpReportBlock,
} from './rtcp-types.ts';

const utf8 = new TextEncoder();

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
