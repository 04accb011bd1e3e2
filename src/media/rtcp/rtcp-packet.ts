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
 * packets (one compound datagram). This module is the entry point: the model lives in
 * rtcp-types.ts, the codec in rtcp-encode.ts and rtcp-decode.ts, the NTP helpers in ntp.ts, all
 * re-exported here.
 */

export {
  RTCP_APP,
  RTCP_BYE,
  RTCP_RR,
  RTCP_SDES,
  RTCP_SR,
  RtcpPacketError,
  SDES_CNAME,
  SDES_NAME,
  SDES_TOOL,
  type RtcpBye,
  type RtcpDecodeOptions,
  type RtcpEncodeOptions,
  type RtcpOther,
  type RtcpPacket,
  type RtcpPacketErrorCode,
  type RtcpReceiverReport,
  type RtcpReportBlock,
  type RtcpSdes,
  type RtcpSenderReport,
  type SdesItem,
} from './rtcp-types.ts';
export { encodeRtcp, rtcpEncodingLength } from './rtcp-encode.ts';
export { decodeRtcp } from './rtcp-decode.ts';
export { compactNtp, compactNtpToMs, msToCompactNtp, NTP_UNIX_OFFSET_SECONDS, ntpFromUnixMs, ntpToUnixMs, type NtpTimestamp } from './ntp.ts';

/**
 * True when `p` looks like RTCP rather than RTP on a multiplexed port (RFC 5761 §4: version 2,
 * second octet 192..223).
 */
export function isRtcp(p: Uint8Array): boolean {
  return p.length >= 4 && (p[0]! & 0xc0) === 0x80 && p[1]! >= 192 && p[1]! <= 223;
}
