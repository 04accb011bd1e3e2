/**
 * RTCP decoder (RFC 3550 §6, validity checks of A.2): reads one compound datagram into its
 * packets; the inverse of `encodeRtcp` (rtcp-encode.ts). Pure: bytes in, objects out.
 */
import {
  pad4,
  REPORT_BLOCK_LENGTH,
  RTCP_BYE,
  RTCP_RR,
  RTCP_SDES,
  RTCP_SR,
  RtcpPacketError,
  type RtcpBye,
  type RtcpDecodeOptions,
  type RtcpPacket,
  type RtcpReceiverReport,
  type RtcpReportBlock,
  type RtcpSdes,
  type RtcpSenderReport,
  type SdesItem,
} from './rtcp-types.ts';

const utf8Decoder = new TextDecoder();

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
