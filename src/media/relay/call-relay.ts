/**
 * One relayed call of the RTP relay (`rtp-relay.ts`, which documents the behaviour): its two
 * {@link RelayLeg}s, the packet paths (symmetric-RTP latching, SRTP unprotect/protect, payload
 * rewriting, transcoding, RTCP forwarding or the gateway's own RTCP) and its closing log line.
 * An I/O adapter over the `node:dgram` sockets that {@link RtpRelayFactory} binds and hands in.
 */
import type dgram from 'node:dgram';
import type { Clock } from '../../runtime/clock.ts';
import type { LogFields, Logger } from '../../runtime/logger.ts';
import type { Random } from '../../runtime/random.ts';
import type { LegName, MediaRelay, RelayPeer, RelayStats, RtpRelayFactory } from '../rtp-relay.ts';
import { RTP_FIXED_HEADER_LENGTH, SsrcContinuity } from '../rtp-packet.ts';
import type { PacketTranscoder } from '../transcoder.ts';
import { srtpFields, transcoderFields } from './close-fields.ts';
import { LegRtcp } from './leg-rtcp.ts';
import type { LegReport } from './leg-reports.ts';
import type { SrtpKeys } from './leg-srtp.ts';
import { RelayLeg } from './relay-leg.ts';
import { closeQuietly, type UdpPair } from './udp-pair.ts';

/** Smallest RTCP compound packet: a header and the sender SSRC (RFC 3550 §6.4.2, RR with RC = 0). */
const RTCP_MIN_LENGTH = 8;

/** Every this many forwarded packets per leg (a power of two), one send reports its outcome. */
const SEND_CHECK_EVERY = 128;

/** What a relay needs besides its sockets (the factory's clock, logger, random source and CNAME). */
export interface RelayContext {
  clock: Clock;
  logger: Logger;
  random: Random;
  cname: string;
  /** The relay closed: the factory forgets it and releases its {@link CallRelay.ports}. */
  onClose(relay: CallRelay): void;
}

/** A {@link MediaRelay} over two bound socket pairs; made by {@link RtpRelayFactory.open}. */
export class CallRelay implements MediaRelay {
  private readonly a: RelayLeg;
  private readonly b: RelayLeg;
  private echo = false;
  private closed = false;
  private socketErrors = 0;
  private readonly afterSend = (err: Error | null): void => {
    if (err) this.socketError(err);
  };

  constructor(
    readonly id: string,
    private readonly v6: boolean,
    pairs: { a: { port: number; value: UdpPair }; b: { port: number; value: UdpPair } },
    private readonly ctx: RelayContext,
  ) {
    const now = ctx.clock.now();
    this.a = new RelayLeg('a', now);
    this.b = new RelayLeg('b', now);
    this.a.other = this.b;
    this.b.other = this.a;
    for (const [leg, pair] of [
      [this.a, pairs.a],
      [this.b, pairs.b],
    ] as const) {
      leg.port = pair.port;
      leg.rtp = pair.value.rtp;
      leg.rtcp = pair.value.rtcp;
      leg.rtp.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => this.onRtp(leg, msg, rinfo));
      leg.rtcp.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => this.onRtcp(leg, msg, rinfo));
    }
  }

  localPort(leg: LegName): number {
    return this.leg(leg).port;
  }

  setRemote(name: LegName, peer: RelayPeer): void {
    const problem = this.leg(name).setPeer(peer, this.v6);
    if (problem !== undefined) this.ctx.logger.warn(`relay peer ${problem}`, { relay: this.id, leg: name, address: peer.address });
  }

  setPayloadMap(from: LegName, map: ReadonlyMap<number, number>): void {
    this.leg(from).setPayloadMap(map);
  }

  setTranscoder(from: LegName, transcoder: PacketTranscoder | undefined): void {
    const leg = this.leg(from);
    if (leg.transcoder === transcoder) return;
    leg.transcoder?.close();
    leg.transcoder = transcoder;
    if (!this.closed) this.ownStream(leg.other, transcoder);
  }

  setEcho(on: boolean): void {
    this.echo = on;
  }

  setSrtp(name: LegName, keys: SrtpKeys | undefined): void {
    this.leg(name).setSrtp(keys);
  }

  idleMs(leg: LegName): number {
    return this.ctx.clock.now() - this.leg(leg).lastPacket;
  }

  stats(name: LegName): RelayStats {
    const leg = this.leg(name);
    const stats: RelayStats = { received: leg.received, forwarded: leg.forwarded, dropped: leg.dropped, consumed: leg.consumed };
    if (leg.srtpUsed) stats.srtp = { ...leg.srtpDrops };
    return stats;
  }

  report(name: LegName): LegReport | undefined {
    const leg = this.leg(name);
    const report = leg.reports.snapshot();
    // A transcoded leg's reports are about the gateway's own stream: its RTCP measured the round trip.
    const rttMs = leg.ownRtcp?.stats.rttMs ?? report?.rttMs;
    return report === undefined || rttMs === undefined ? report : { ...report, rttMs };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const rtcp: LogFields = {};
    for (const leg of [this.a, this.b]) {
      if (leg.ownRtcp !== undefined) {
        // RFC 3550 §6.6: the stream the gateway originated ends; its last report goes with the BYE.
        leg.ownRtcp.bye();
        for (const [k, v] of Object.entries(leg.ownRtcp.summary())) rtcp[`${leg.name}${k[0]!.toUpperCase()}${k.slice(1)}`] = v;
      }
    }
    for (const leg of [this.a, this.b]) {
      leg.transcoder?.close();
      closeQuietly(leg.rtp);
      closeQuietly(leg.rtcp);
    }
    this.ctx.logger.info('relay closed', {
      relay: this.id,
      aReceived: this.a.received,
      aForwarded: this.a.forwarded,
      aDropped: this.a.dropped,
      aConsumed: this.a.consumed,
      aDroppedSource: this.a.drops.source,
      bReceived: this.b.received,
      bForwarded: this.b.forwarded,
      bDropped: this.b.dropped,
      bConsumed: this.b.consumed,
      bDroppedSource: this.b.drops.source,
      socketErrors: this.socketErrors,
      ...srtpFields(this.a),
      ...srtpFields(this.b),
      ...transcoderFields('a', this.a.transcoder),
      ...transcoderFields('b', this.b.transcoder),
      ...rtcp,
    });
    this.ctx.onClose(this);
  }

  /** Ports to give back to the allocator. */
  ports(): [number, number] {
    return [this.a.port, this.b.port];
  }

  /** Socket errors never end the call; the first is logged, the rest only counted. */
  socketError(err: Error): void {
    if (this.socketErrors++ === 0) {
      this.ctx.logger.warn('relay socket error (further errors are only counted)', { relay: this.id, error: err.message });
    }
  }

  private leg(name: LegName): RelayLeg {
    if (name === 'a') return this.a;
    if (name === 'b') return this.b;
    throw new Error(`unknown relay leg ${String(name)}`);
  }

  /**
   * The stream sent to `to` now comes from `transcoder` (undefined: relayed again). The RTCP of a
   * previous stream of the gateway's ends: with a BYE when a new stream of its own replaces it
   * (§6.6), silently when relaying resumes (the continuity keeps its SSRC on the wire).
   */
  private ownStream(to: RelayLeg, transcoder: PacketTranscoder | undefined): void {
    const previous = to.ownRtcp;
    to.ownRtcp = undefined;
    if (previous !== undefined) {
      if (transcoder !== undefined) previous.bye();
      else previous.stop();
      this.ctx.logger.info('relay stream of the gateway ended', { relay: this.id, leg: to.name, ...previous.summary() });
    }
    if (transcoder === undefined) return;
    // RFC 3550 §7.3: the re-encoded stream is the gateway's own source, under its own SSRC.
    to.toThisLeg = new SsrcContinuity();
    to.ownRtcp = new LegRtcp({
      sender: transcoder.sender,
      clock: this.ctx.clock,
      random: this.ctx.random,
      cname: this.ctx.cname,
      codec: transcoder.codec,
      send: (packet) => this.sendOwnRtcp(to, packet),
      onSsrcChange: () => {
        to.toThisLeg = new SsrcContinuity();
      },
      logger: this.ctx.logger,
      logFields: { relay: this.id, leg: to.name },
    });
  }

  private sendOwnRtcp(to: RelayLeg, packet: Uint8Array): boolean {
    if (this.echo || to.rtcpPort === 0) return false;
    const wire = to.leaving(packet, true);
    if (wire === undefined) return false;
    try {
      to.rtcp.send(wire, to.rtcpPort, to.rtcpAddress, this.afterSend);
      return true;
    } catch (err) {
      this.socketError(err as Error);
      return false;
    }
  }

  private onRtp(leg: RelayLeg, raw: Buffer, rinfo: dgram.RemoteInfo): void {
    leg.received++;
    // RFC 3550 §5.1: V is 2; anything shorter than the fixed header is not RTP.
    if (this.closed || raw.length < RTP_FIXED_HEADER_LENGTH || (raw[0]! & 0xc0) !== 0x80 || rinfo.port === 0) {
      leg.drop('malformed');
      return;
    }
    if (leg.rtpLatched && (rinfo.port !== leg.rtpPort || rinfo.address !== leg.rtpAddress)) {
      leg.drop('source');
      return;
    }
    // On an SRTP leg only a packet that authenticates may latch (a forged one must not steal the leg).
    const msg = leg.arriving(raw, false) ?? this.srtpRefused(leg, rinfo);
    if (msg === undefined) return;
    if (!leg.rtpLatched) {
      leg.rtpLatched = true;
      leg.rtpAddress = rinfo.address;
      leg.rtpPort = rinfo.port;
      this.ctx.logger.debug('rtp latched', { relay: this.id, leg: leg.name, source: `${rinfo.address}:${rinfo.port}` });
    }
    const now = this.ctx.clock.now();
    leg.lastPacket = now;
    if (!this.echo) {
      const transcoder = leg.transcoder;
      leg.ownRtcp?.onRtp(msg, now, transcoder === undefined || !transcoder.isEvent(msg[1]! & 0x7f));
      if (transcoder !== undefined) {
        this.transcode(leg, transcoder, msg, now);
        return;
      }
    }
    let out = leg;
    if (!this.echo) {
      out = leg.other;
      const table = leg.ptTable;
      if (table !== undefined) msg[1] = (msg[1]! & 0x80) | table[msg[1]! & 0x7f]!;
    }
    if (out.rtpPort === 0) {
      leg.drop('destination');
      return;
    }
    out.toThisLeg.apply(msg);
    this.send(out.rtp, out.leaving(msg, false), out.rtpPort, out.rtpAddress, leg);
  }

  private onRtcp(leg: RelayLeg, raw: Buffer, rinfo: dgram.RemoteInfo): void {
    leg.received++;
    if (this.closed || raw.length < RTCP_MIN_LENGTH || (raw[0]! & 0xc0) !== 0x80 || rinfo.port === 0) {
      leg.drop('malformed');
      return;
    }
    if (leg.rtcpLatched && (rinfo.port !== leg.rtcpPort || rinfo.address !== leg.rtcpAddress)) {
      leg.drop('source');
      return;
    }
    const msg = leg.arriving(raw, true) ?? this.srtpRefused(leg, rinfo);
    if (msg === undefined) return;
    if (!leg.rtcpLatched) {
      leg.rtcpLatched = true;
      leg.rtcpAddress = rinfo.address;
      leg.rtcpPort = rinfo.port;
    }
    leg.lastPacket = this.ctx.clock.now();
    leg.reports.onRtcp(msg, leg.lastPacket, leg.other.reports);
    if (!this.echo && leg.ownRtcp !== undefined) {
      // RFC 3550 §7.3: reports about the gateway's own stream are the gateway's to read.
      leg.consumed++;
      leg.ownRtcp.onRtcp(msg, leg.lastPacket);
      return;
    }
    if (!this.echo && leg.transcoder !== undefined) {
      leg.drop('transcoded');
      return;
    }
    const out = this.echo ? leg : leg.other;
    if (out.rtcpPort === 0) {
      leg.drop('destination');
      return;
    }
    this.send(out.rtcp, out.leaving(msg, true), out.rtcpPort, out.rtcpAddress, leg);
  }

  /** The first SRTP refusal of a leg gets a debug line (the kind, never key material); the rest are only counted. */
  private srtpRefused(leg: RelayLeg, rinfo: dgram.RemoteInfo): undefined {
    if (leg.drops.srtp === 1) this.ctx.logger.debug('srtp refused a packet (further refusals are only counted)', { relay: this.id, leg: leg.name, source: `${rinfo.address}:${rinfo.port}`, code: leg.srtp?.lastError?.code, reason: leg.srtp?.lastError?.reason });
    return undefined;
  }

  /** Sends what the transcoder makes of `msg`; a codec that throws costs the packet, not the call. */
  private transcode(leg: RelayLeg, transcoder: PacketTranscoder, msg: Buffer, now: number): void {
    const out = leg.other;
    if (out.rtpPort === 0) {
      leg.drop('destination');
      return;
    }
    let packets: Uint8Array[];
    try {
      packets = transcoder.push(msg, now);
    } catch (err) {
      leg.drop('malformed');
      if (leg.transcodeErrors++ === 0) {
        this.ctx.logger.warn('transcoder failed on a packet (further failures are only counted)', { relay: this.id, leg: leg.name, error: (err as Error).message });
      }
      return;
    }
    leg.forwarded++;
    for (const p of packets) {
      out.toThisLeg.apply(p);
      const wire = out.leaving(p, false);
      if (wire === undefined) continue;
      try {
        out.rtp.send(wire, out.rtpPort, out.rtpAddress, this.afterSend);
      } catch (err) {
        this.socketError(err as Error);
      }
    }
  }

  /** Sends `msg` (undefined: SRTP could not protect it, a drop) on for `from`. */
  private send(socket: dgram.Socket, msg: Uint8Array | undefined, port: number, address: string, from: RelayLeg): void {
    if (msg === undefined) {
      from.drop('srtp');
      return;
    }
    try {
      // node:dgram reports a send error only to a callback (without one it is swallowed), and a
      // callback costs a tick per packet: so only the first and every SEND_CHECK_EVERY-th packet
      // of a leg carry one. A lasting failure (EACCES, ENETUNREACH) is still seen within seconds.
      if ((from.forwarded & (SEND_CHECK_EVERY - 1)) === 0) socket.send(msg, port, address, this.afterSend);
      else socket.send(msg, port, address);
      from.forwarded++;
    } catch (err) {
      from.drop('destination');
      this.socketError(err as Error);
    }
  }
}
