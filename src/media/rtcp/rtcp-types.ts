/**
 * RTCP packet model (RFC 3550 §6): the packet-type and SDES-item constants, the packet objects
 * that rtcp-encode.ts writes and rtcp-decode.ts reads, their options and the
 * {@link RtcpPacketError} both throw. Types and constants only: no I/O, no state.
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

/** Bytes of one reception report block (RFC 3550 §6.4.1): six 32-bit words. */
export const REPORT_BLOCK_LENGTH = 24;

/** `n` rounded up to the next multiple of 4 (RTCP packets are 32-bit aligned, RFC 3550 §6.4.1). */
export function pad4(n: number): number {
  return (n + 3) & ~3;
}
