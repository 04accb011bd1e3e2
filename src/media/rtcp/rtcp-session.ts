import type { Random } from '../../runtime/random.ts';
import type { LogFields } from '../../runtime/logger.ts';
import type { RtpSender } from '../rtp/rtp-sender.ts';
import type { ReceiveStatistics } from '../rtp/receive-statistics.ts';
import {
  compactNtp,
  compactNtpToMs,
  decodeRtcp,
  encodeRtcp,
  msToCompactNtp,
  RtcpPacketError,
  SDES_CNAME,
  type NtpTimestamp,
  type RtcpPacket,
  type RtcpReportBlock,
} from './rtcp-packet.ts';

/** Inputs of the RTCP transmission interval (RFC 3550 §6.3.1, A.7 `rtcp_interval`). */
export interface RtcpIntervalParams {
  members: number;
  senders: number;
  /** RTCP bandwidth in octets per second (5 % of the session bandwidth, §6.2). */
  rtcpBandwidth: number;
  weSent: boolean;
  /** Average compound RTCP packet size in octets, lower-layer headers included (§6.3.3). */
  avgRtcpSize: number;
  /** Before the first report: the minimum is halved (§6.2). */
  initial: boolean;
  /** Minimum interval, 5000 ms by default (§6.2 "the RECOMMENDED value ... is 5 seconds"). */
  minIntervalMs?: number;
}

/** e - 3/2: compensates the timer reconsideration's bias towards short intervals (A.7). */
const COMPENSATION = Math.E - 1.5;
const SENDER_BW_FRACTION = 0.25;

/**
 * The randomised RTCP interval in ms (RFC 3550 A.7): `u` in [0, 1) is the random draw, spread
 * onto [0.5, 1.5] times the deterministic interval, then divided by e - 3/2.
 */
export function computeRtcpIntervalMs(p: RtcpIntervalParams, u: number): number {
  let minMs = p.minIntervalMs ?? 5000;
  if (p.initial) minMs /= 2;
  let n = p.members;
  let bw = p.rtcpBandwidth;
  // §6.3.1: when senders are at most a quarter of the members, they share 25 % of the bandwidth.
  if (p.senders <= p.members * SENDER_BW_FRACTION) {
    if (p.weSent) {
      bw *= SENDER_BW_FRACTION;
      n = p.senders;
    } else {
      bw *= 1 - SENDER_BW_FRACTION;
      n -= p.senders;
    }
  }
  const t = Math.max(minMs, bw > 0 ? ((p.avgRtcpSize * n) / bw) * 1000 : minMs);
  return (t * (u + 0.5)) / COMPENSATION;
}

/** Options of {@link RtcpSession}. */
export interface RtcpSessionOptions {
  /** The stream we send: SSRC, SR counts and timestamps. */
  sender: RtpSender;
  /** Statistics of the stream we receive (report blocks). */
  receiver: ReceiveStatistics;
  /** For the interval randomisation (§6.3.1). */
  random: Random;
  /** Our SDES CNAME (§6.5.1), e.g. `hookswitch@192.0.2.10`. */
  cname: string;
  /** Session bandwidth in bit/s; RTCP takes 5 % of it (§6.2). Default 64000. */
  sessionBandwidth?: number;
  /** Minimum report interval in ms; default 5000 (§6.2). */
  minIntervalMs?: number;
  /** Octets of UDP/IP header counted with each RTCP packet (§6.2); default 28 (IPv4 + UDP). */
  headerOverhead?: number;
  /** Codec name for the statistics, also settable later through {@link RtcpSession.codec}. */
  codec?: string;
}

/** Per-call figures for `status` and the end-of-call log line. */
export interface CallStats {
  codec?: string;
  packetsSent: number;
  packetsReceived: number;
  /** Packets we lost receiving, over the call. */
  lost: number;
  lossPercent: number;
  /** Interarrival jitter of the received stream in ms (A.8). */
  jitterMs: number;
  /** Last round-trip time from the peer's LSR/DLSR (§6.4.1); absent until measured. */
  rttMs?: number;
  /** The peer's view of our stream, from its last report block about us. */
  remoteLost?: number;
  remoteFractionLostPercent?: number;
  remoteJitterMs?: number;
}

/** What {@link RtcpSession.onRtcp} made of a datagram. */
export type RtcpReceipt =
  | {
      ok: true;
      packets: RtcpPacket[];
      /** The source we receive said BYE (§6.6). */
      bye: boolean;
      /** The peer reported with our own SSRC: call {@link RtcpSession.changeSsrc} (§8.2). */
      collision: boolean;
      /** Round-trip time measured from this datagram, in ms. */
      rttMs?: number;
    }
  | { ok: false; error: RtcpPacketError };

/** The next step after {@link RtcpSession.onTimer}: a datagram to send, and when to call again. */
export interface RtcpTimerResult {
  packet?: Uint8Array;
  nextAtMs: number;
}

const SENT_SR_MEMORY = 8;

/**
 * The RTCP side of one media stream in a two-party call. Pure: the media endpoint owns the
 * socket and the timer. It calls {@link start} when media starts and arms a timer for the time
 * returned; on each firing it calls {@link onTimer} and sends the packet, if any. Every RTCP
 * datagram from the peer goes to {@link onRtcp}. At the end it sends {@link bye} and logs
 * `formatCallStats(session.stats)`. Times are monotonic ms; NTP times come from the caller
 * (`ntpFromUnixMs(clock.wallNow())`).
 */
export class RtcpSession {
  /** Codec name reported in {@link stats}. */
  codec: string | undefined;
  private readonly sender: RtpSender;
  private readonly receiver: ReceiveStatistics;
  private readonly random: Random;
  private readonly cname: string;
  private readonly rtcpBandwidth: number;
  private readonly minIntervalMs: number;
  private readonly overhead: number;

  private avgRtcpSize: number;
  private initial = true;
  private lastSentAtMs = 0;
  private nextAtMs = 0;
  /** Our sent/received packet totals at the previous two reports, oldest first (A.7 we_sent). */
  private sentAtReports: [number, number] = [0, 0];
  private receivedAtReports: [number, number] = [0, 0];
  private peerSsrc: number | undefined;
  private lastPeerSr: { ssrc: number; compact: number; arrivalMs: number } | undefined;
  private readonly sentSrs = new Map<number, number>();
  private rtt: number | undefined;
  private remoteBlock: RtcpReportBlock | undefined;
  private malformed = 0;

  constructor(options: RtcpSessionOptions) {
    this.sender = options.sender;
    this.receiver = options.receiver;
    this.random = options.random;
    this.cname = options.cname;
    this.codec = options.codec;
    this.rtcpBandwidth = ((options.sessionBandwidth ?? 64000) / 8) * 0.05;
    this.minIntervalMs = options.minIntervalMs ?? 5000;
    this.overhead = options.headerOverhead ?? 28;
    // §6.3.2: avg_rtcp_size starts at the size of the first packet we will build.
    this.avgRtcpSize = 8 + 24 + this.sdesLength() + this.overhead;
  }

  /** Round-trip time in ms from the last report about us that carried an LSR of ours. */
  get rttMs(): number | undefined {
    return this.rtt;
  }

  /** The last report block the peer sent about our stream. */
  get remoteReport(): RtcpReportBlock | undefined {
    return this.remoteBlock;
  }

  /** RTCP datagrams from the peer that failed to decode. */
  get malformedCount(): number {
    return this.malformed;
  }

  /** Begins the schedule at `nowMs`; returns when the first report is due (§6.2, half minimum). */
  start(nowMs: number): number {
    this.initial = true;
    this.lastSentAtMs = nowMs;
    this.nextAtMs = nowMs + this.interval();
    return this.nextAtMs;
  }

  /** The randomised interval for the present state, in ms (A.7 `rtcp_interval`). */
  interval(): number {
    const peerKnown = this.receiver.ssrc !== undefined || this.peerSsrc !== undefined;
    const weSent = this.sender.totalPacketCount > this.sentAtReports[0];
    const peerSent = this.receiver.totalReceived > this.receivedAtReports[0];
    const params: RtcpIntervalParams = {
      members: peerKnown ? 2 : 1,
      senders: (weSent ? 1 : 0) + (peerSent ? 1 : 0),
      rtcpBandwidth: this.rtcpBandwidth,
      weSent,
      avgRtcpSize: this.avgRtcpSize,
      initial: this.initial,
      minIntervalMs: this.minIntervalMs,
    };
    return computeRtcpIntervalMs(params, this.random.bytes(4).readUInt32BE(0) / 4294967296);
  }

  /**
   * The report timer fired at `nowMs`. A.7 `OnExpire` with reconsideration: a fresh interval
   * from the last transmission decides whether to send now or wait until `nextAtMs`.
   */
  onTimer(nowMs: number, nowNtp: NtpTimestamp): RtcpTimerResult {
    const tn = this.lastSentAtMs + this.interval();
    if (tn > nowMs) {
      this.nextAtMs = tn;
      return { nextAtMs: tn };
    }
    const packet = this.report(nowMs, nowNtp);
    this.nextAtMs = nowMs + this.interval();
    return { packet, nextAtMs: this.nextAtMs };
  }

  /**
   * Builds a compound report now (§6.1): an SR if we sent RTP since the report before last, else
   * an RR, with one block about the source we receive, then SDES CNAME. Counts as a transmission
   * for the interval.
   */
  report(nowMs: number, nowNtp: NtpTimestamp): Uint8Array {
    return this.transmit(this.reportPackets(nowMs, nowNtp), nowMs);
  }

  /** A report plus BYE for our SSRC (§6.6), to send when the stream ends. */
  bye(nowMs: number, nowNtp: NtpTimestamp, reason?: string): Uint8Array {
    const packets = this.reportPackets(nowMs, nowNtp);
    packets.push(reason === undefined ? { type: 'bye', ssrcs: [this.sender.ssrc] } : { type: 'bye', ssrcs: [this.sender.ssrc], reason });
    return this.transmit(packets, nowMs);
  }

  /**
   * Resolves an SSRC collision (§8.2): "send an RTCP BYE packet for the old identifier and use
   * another identifier". Returns the BYE datagram; the sender has its new SSRC afterwards.
   */
  changeSsrc(nowMs: number, nowNtp: NtpTimestamp): Uint8Array {
    const out = this.bye(nowMs, nowNtp, 'SSRC collision');
    const avoid = [this.receiver.ssrc, this.peerSsrc].filter((s): s is number => s !== undefined);
    this.sender.changeSsrc(avoid);
    this.sentSrs.clear();
    return out;
  }

  /**
   * Takes one RTCP datagram from the peer that arrived at monotonic `arrivalMs`. A malformed one
   * is counted and returned as an error (the caller logs and drops it). Reduced-size RTCP is
   * accepted. An SR sets the LSR/DLSR of our next report; a report block about our SSRC gives
   * the peer's view of our stream and, when its LSR is one of our recent SRs, the round-trip
   * time A - LSR - DLSR (§6.4.1), with A and LSR taken on the monotonic clock.
   */
  onRtcp(bytes: Uint8Array, arrivalMs: number): RtcpReceipt {
    let packets: RtcpPacket[];
    try {
      packets = decodeRtcp(bytes, 0, bytes.length, { requireCompound: false });
    } catch (err) {
      if (!(err instanceof RtcpPacketError)) throw err;
      this.malformed++;
      return { ok: false, error: err };
    }
    // §6.3.3: avg_rtcp_size = 1/16 * packet_size + 15/16 * avg_rtcp_size.
    this.avgRtcpSize += (bytes.length + this.overhead - this.avgRtcpSize) / 16;
    const ours = this.sender.ssrc;
    let bye = false;
    let collision = false;
    let rttMs: number | undefined;
    for (const p of packets) {
      if (p.type === 'sr' || p.type === 'rr') {
        if (p.ssrc === ours) {
          collision = true;
          continue;
        }
        this.peerSsrc = p.ssrc;
        if (p.type === 'sr') this.lastPeerSr = { ssrc: p.ssrc, compact: compactNtp(p.ntp), arrivalMs };
        for (const block of p.reports) {
          if (block.ssrc !== ours) continue;
          this.remoteBlock = block;
          const sentAt = block.lastSr === 0 ? undefined : this.sentSrs.get(block.lastSr);
          if (sentAt !== undefined) {
            rttMs = Math.max(0, arrivalMs - sentAt - compactNtpToMs(block.delaySinceLastSr));
            this.rtt = rttMs;
          }
        }
      } else if (p.type === 'bye') {
        const source = this.receiver.ssrc ?? this.peerSsrc;
        if (source !== undefined && p.ssrcs.includes(source)) bye = true;
      }
    }
    return rttMs === undefined ? { ok: true, packets, bye, collision } : { ok: true, packets, bye, collision, rttMs };
  }

  /** The call's figures now; reading them changes nothing. */
  get stats(): CallStats {
    const r = this.receiver;
    const expected = r.totalExpected;
    const stats: CallStats = {
      packetsSent: this.sender.totalPacketCount,
      packetsReceived: r.totalReceived,
      lost: r.totalLost,
      lossPercent: expected > 0 ? (100 * r.totalLost) / expected : 0,
      jitterMs: r.jitterMs,
    };
    if (this.codec !== undefined) stats.codec = this.codec;
    if (this.rtt !== undefined) stats.rttMs = this.rtt;
    if (this.remoteBlock) {
      stats.remoteLost = this.remoteBlock.cumulativeLost;
      stats.remoteFractionLostPercent = (100 * this.remoteBlock.fractionLost) / 256;
      stats.remoteJitterMs = (this.remoteBlock.jitter * 1000) / this.sender.clockRate;
    }
    return stats;
  }

  private reportPackets(nowMs: number, nowNtp: NtpTimestamp): RtcpPacket[] {
    const ssrc = this.sender.ssrc;
    const reports: RtcpReportBlock[] = [];
    const figures = this.receiver.report();
    if (figures) {
      const sr = this.lastPeerSr?.ssrc === figures.ssrc ? this.lastPeerSr : undefined;
      reports.push({
        ...figures,
        lastSr: sr?.compact ?? 0,
        delaySinceLastSr: sr ? msToCompactNtp(nowMs - sr.arrivalMs) : 0,
      });
    }
    const sdes: RtcpPacket = { type: 'sdes', chunks: [{ ssrc, items: [{ type: SDES_CNAME, text: this.cname }] }] };
    if (this.sender.totalPacketCount > this.sentAtReports[0]) {
      const compact = compactNtp(nowNtp);
      this.sentSrs.set(compact, nowMs);
      if (this.sentSrs.size > SENT_SR_MEMORY) this.sentSrs.delete(this.sentSrs.keys().next().value!);
      return [
        {
          type: 'sr',
          ssrc,
          ntp: nowNtp,
          rtpTimestamp: this.sender.rtpTimestampAt(nowMs),
          packetCount: this.sender.packetCount,
          octetCount: this.sender.octetCount,
          reports,
        },
        sdes,
      ];
    }
    return [{ type: 'rr', ssrc, reports }, sdes];
  }

  private transmit(packets: RtcpPacket[], nowMs: number): Uint8Array {
    const out = encodeRtcp(packets);
    this.avgRtcpSize += (out.length + this.overhead - this.avgRtcpSize) / 16;
    this.sentAtReports = [this.sentAtReports[1], this.sender.totalPacketCount];
    this.receivedAtReports = [this.receivedAtReports[1], this.receiver.totalReceived];
    this.lastSentAtMs = nowMs;
    this.initial = false;
    return out;
  }

  private sdesLength(): number {
    return 4 + ((4 + 2 + new TextEncoder().encode(this.cname).length + 1 + 3) & ~3);
  }
}

/**
 * The end-of-call log fields: `codec`, packet counts, `lossPercent` (2 decimals), `jitterMs` and
 * `rttMs` (1 decimal), omitting what is unknown. Pass to `logger.info('call media', fields)`.
 */
export function formatCallStats(stats: CallStats): LogFields {
  const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;
  const fields: LogFields = {
    codec: stats.codec,
    packetsSent: stats.packetsSent,
    packetsReceived: stats.packetsReceived,
    lost: stats.lost,
    lossPercent: round(stats.lossPercent, 2),
    jitterMs: round(stats.jitterMs, 1),
    rttMs: stats.rttMs === undefined ? undefined : round(stats.rttMs, 1),
    remoteLost: stats.remoteLost,
    remoteJitterMs: stats.remoteJitterMs === undefined ? undefined : round(stats.remoteJitterMs, 1),
  };
  for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
  return fields;
}
