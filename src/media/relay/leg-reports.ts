/**
 * What the phone on one relay leg says in its RTCP about the media it receives (RFC 3550 §6.4):
 * loss and jitter from its report blocks, and the round-trip time between the gateway and that
 * phone, measured from the sender reports that passed the relay towards it. Read for `status`;
 * pure: the relay passes each accepted RTCP datagram and its monotonic arrival time.
 */
import { compactNtp, compactNtpToMs, decodeRtcp, type RtcpPacket, type RtcpReportBlock } from '../rtcp/rtcp-packet.ts';

/** The last reception report of a leg's phone, as {@link LegReports.snapshot} returns it. */
export interface LegReport {
  /** Fraction lost since the phone's previous report, in percent (§6.4.1 "fraction lost" / 256). */
  fractionLostPercent: number;
  /** Cumulative packets the phone lost (§6.4.1). */
  cumulativeLost: number;
  /** Interarrival jitter the phone measured, in RTP timestamp units (§6.4.1, A.8). */
  jitterUnits: number;
  /** Gateway ↔ phone round-trip time in ms, once a report answered an SR the gateway relayed. */
  rttMs?: number;
}

/** How many relayed SR times are kept to match LSR fields against. */
const SR_MEMORY = 8;

/** The reports of one leg; see the module comment. */
export class LegReports {
  /** LSR value (compact NTP of an SR sent on towards the other leg) → its monotonic arrival time. */
  private readonly relayedSrs = new Map<number, number>();
  private last: RtcpReportBlock | undefined;
  private rttMs: number | undefined;

  /**
   * One accepted RTCP datagram from this leg at `arrivalMs`. Its first report block is the
   * phone's view of the stream it receives (a two-party call has one). A block whose LSR matches
   * an SR that `other` relayed towards this leg gives the round trip: §6.4.1 "A − LSR − DLSR",
   * with the gateway's arrival times standing in for the NTP clock. Undecodable datagrams are
   * ignored (the relay forwards or drops them on its own terms).
   */
  onRtcp(packet: Uint8Array, arrivalMs: number, other: LegReports): void {
    let packets: RtcpPacket[];
    try {
      packets = decodeRtcp(packet, 0, packet.length, { requireCompound: false });
    } catch {
      return;
    }
    for (const p of packets) {
      if (p.type !== 'sr' && p.type !== 'rr') continue;
      if (p.type === 'sr') this.rememberSr(compactNtp(p.ntp), arrivalMs);
      const block = p.reports[0];
      if (block === undefined) continue;
      this.last = block;
      const sentAt = block.lastSr === 0 ? undefined : other.relayedSrs.get(block.lastSr);
      if (sentAt !== undefined) {
        const rtt = arrivalMs - sentAt - compactNtpToMs(block.delaySinceLastSr);
        if (rtt >= 0) this.rttMs = rtt;
      }
    }
  }

  /** The last report, or undefined before the phone sent one with a report block. */
  snapshot(): LegReport | undefined {
    const b = this.last;
    if (b === undefined) return undefined;
    const out: LegReport = { fractionLostPercent: (b.fractionLost * 100) / 256, cumulativeLost: b.cumulativeLost, jitterUnits: b.jitter };
    if (this.rttMs !== undefined) out.rttMs = this.rttMs;
    return out;
  }

  private rememberSr(lsr: number, arrivalMs: number): void {
    this.relayedSrs.set(lsr, arrivalMs);
    if (this.relayedSrs.size > SR_MEMORY) this.relayedSrs.delete(this.relayedSrs.keys().next().value!);
  }
}
