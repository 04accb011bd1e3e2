/**
 * The state of one leg of the RTP relay (`rtp-relay.ts`): its sockets, where its media goes
 * (the SDP peer until symmetric RTP latches to the real source), its payload-type table, its
 * transcoder, the RTCP the gateway runs for a stream of its own sent to it, and its counters.
 * Kept as one class so that the relay's hot path sees one object shape.
 */
import type dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { LegName, RelayPeer } from '../rtp-relay.ts';
import { SsrcContinuity } from '../rtp-packet.ts';
import type { PacketTranscoder } from '../transcoder.ts';
import type { LegRtcp } from './leg-rtcp.ts';
import { LegReports } from './leg-reports.ts';
import { LegSrtp, newSrtpDrops, type SrtpKeys } from './leg-srtp.ts';

/** Why a datagram that arrived on a leg was not sent on ('srtp': refused by SRTP, see {@link RelayLeg.srtpDrops}). */
export type DropReason = 'malformed' | 'source' | 'destination' | 'transcoded' | 'srtp';

/** What is wrong with a peer given to {@link RelayLeg.setPeer}, for the relay's warning. */
export type PeerProblem = 'address is not an IP address' | 'unreachable from the bind address family';

/** One leg of a relay; see the module comment. Mutable fields are the relay's to drive. */
export class RelayLeg {
  rtp!: dgram.Socket;
  rtcp!: dgram.Socket;
  port = 0;
  other!: RelayLeg;
  /** The SDP peer as given to setRemote (for change detection). */
  peerAddress = '';
  peerPort = 0;
  peerRtcpPort: number | undefined = undefined;
  /** Where this leg's RTP goes: the latched source, else the SDP peer; port 0 = nowhere. */
  rtpLatched = false;
  rtpAddress = '';
  rtpPort = 0;
  rtcpLatched = false;
  rtcpAddress = '';
  rtcpPort = 0;
  /** Payload-type table for packets arriving on this leg, or undefined when nothing is mapped. */
  ptTable: Uint8Array | undefined = undefined;
  /** Transcoder for RTP arriving on this leg, when the legs share no codec. */
  transcoder: PacketTranscoder | undefined = undefined;
  transcodeErrors = 0;
  /** RTCP for the stream the gateway itself sends to this leg (the other leg's transcoder output). */
  ownRtcp: LegRtcp | undefined = undefined;
  /** What the phone on this leg reports in its RTCP (loss, jitter, round trip), for `status`. */
  readonly reports = new LegReports();
  /** Continuity of the RTP stream sent to this leg. */
  toThisLeg = new SsrcContinuity();
  lastPacket: number;
  received = 0;
  forwarded = 0;
  dropped = 0;
  /** RTCP datagrams the gateway read itself (its own RTCP runs on the leg). */
  consumed = 0;
  readonly drops: Record<DropReason, number> = { malformed: 0, source: 0, destination: 0, transcoded: 0, srtp: 0 };
  /** SRTP of the leg (RFC 3711), when its SDP settled keys; undefined: plain RTP. */
  srtp: LegSrtp | undefined = undefined;
  /** SRTP refusals by kind, over the leg's whole life (also what the gateway could not protect for it). */
  readonly srtpDrops = newSrtpDrops();
  /** The leg ever had SRTP (its counters are then reported). */
  srtpUsed = false;

  constructor(
    readonly name: LegName,
    now: number,
  ) {
    this.lastPacket = now;
  }

  drop(reason: DropReason): void {
    this.dropped++;
    this.drops[reason]++;
  }

  /** Takes the leg's SRTP keys (undefined: plain RTP from now on); a context whose key is unchanged goes on. */
  setSrtp(keys: SrtpKeys | undefined): void {
    if (keys === undefined) this.srtp = undefined;
    else if (this.srtp === undefined) this.srtp = new LegSrtp(keys, this.srtpDrops);
    else this.srtp.rekey(keys);
    if (keys !== undefined) this.srtpUsed = true;
  }

  /**
   * A datagram that arrived on the leg as plain RTP (`rtcp`: RTCP), unprotected when the leg
   * has SRTP; undefined (dropped and counted) when SRTP refused it.
   */
  arriving(msg: Buffer, rtcp: boolean): Buffer | undefined {
    const srtp = this.srtp;
    if (srtp === undefined) return msg;
    const plain = rtcp ? srtp.unprotectRtcp(msg) : srtp.unprotectRtp(msg);
    if (plain === undefined) this.drop('srtp');
    return plain;
  }

  /** A packet for the leg's peer, protected when the leg has SRTP; undefined when it cannot be (counted in srtpDrops). */
  leaving(packet: Uint8Array, rtcp: boolean): Uint8Array | undefined {
    const srtp = this.srtp;
    if (srtp === undefined) return packet;
    return rtcp ? srtp.protectRtcp(packet) : srtp.protectRtp(packet);
  }

  /**
   * Takes the leg's SDP peer. A new address or port resets latching (re-INVITE, transfer); port 0
   * (a rejected stream) and 0.0.0.0 (RFC 2543 hold) mean nothing is sent. `v6` tells the family
   * of the relay's sockets. Returns what makes the peer unusable, when the caller should warn.
   */
  setPeer(peer: RelayPeer, v6: boolean): PeerProblem | undefined {
    const changed = peer.address !== this.peerAddress || peer.port !== this.peerPort;
    const rtcpChanged = peer.rtcpPort !== this.peerRtcpPort;
    this.peerAddress = peer.address;
    this.peerPort = peer.port;
    this.peerRtcpPort = peer.rtcpPort;
    const address = sendableAddress(v6, peer.address);
    const rtpOk = address !== undefined && validPort(peer.port);
    const rtcpPort = peer.rtcpPort ?? peer.port + 1;
    const rtcpOk = rtpOk && validPort(rtcpPort);
    if (changed) {
      this.rtpLatched = false;
      this.rtcpLatched = false;
    }
    if (!this.rtpLatched) {
      this.rtpAddress = rtpOk ? address : '';
      this.rtpPort = rtpOk ? peer.port : 0;
    }
    if (!this.rtcpLatched && (changed || rtcpChanged)) {
      this.rtcpAddress = rtcpOk ? address : '';
      this.rtcpPort = rtcpOk ? rtcpPort : 0;
    }
    if (address !== undefined) return undefined;
    if (isIP(peer.address) === 0) return 'address is not an IP address';
    return peer.address === '0.0.0.0' || peer.address === '::' ? undefined : 'unreachable from the bind address family';
  }

  /** Payload-type rewriting for packets arriving on this leg; throws on numbers outside 0..127. */
  setPayloadMap(map: ReadonlyMap<number, number>): void {
    let table: Uint8Array | undefined;
    for (const [inPt, outPt] of map) {
      if (!isPt(inPt) || !isPt(outPt)) throw new RangeError(`payload type mapping ${inPt} -> ${outPt} is outside 0..127`);
      if (inPt === outPt) continue;
      if (!table) table = identityTable();
      table[inPt] = outPt;
    }
    this.ptTable = table;
  }
}

/** Whether an IPv4 or IPv6 socket can reach `address`, in the form that socket sends to. */
function sendableAddress(v6Socket: boolean, address: string): string | undefined {
  const family = isIP(address);
  if (family === 0 || address === '0.0.0.0' || address === '::') return undefined;
  const lower = address.toLowerCase();
  if (v6Socket) return family === 6 ? lower : `::ffff:${address}`;
  if (family === 4) return address;
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : undefined;
}

function validPort(p: number | undefined): p is number {
  return p !== undefined && Number.isInteger(p) && p > 0 && p <= 65535;
}

function isPt(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 127;
}

function identityTable(): Uint8Array {
  const t = new Uint8Array(128);
  for (let i = 0; i < 128; i++) t[i] = i;
  return t;
}
