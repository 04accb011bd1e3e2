/**
 * The RTP/RTCP relay of the B2BUA (an I/O adapter): per call two legs, each with an even RTP port
 * and the next odd RTCP port (RFC 3550 §11), packets forwarded between the legs without
 * re-encoding (or, when the legs share no codec, through a {@link PacketTranscoder} per
 * direction). Symmetric RTP: each leg latches to the first source that sends to it (a phone
 * behind NAT sends from a port other than the one in its SDP), then ignores every other source.
 *
 * The relaying hot path allocates nothing beyond what `node:dgram` does: the received buffer is
 * rewritten in place (payload type, and SSRC/sequence/timestamp only after a source change) and
 * sent on. RTCP is forwarded unchanged, except on a leg that receives a transcoded stream: there
 * the gateway runs RTCP of its own for that stream ({@link LegRtcp}, RFC 3550 §7.3).
 */
import type dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Clock } from '../runtime/clock.ts';
import type { LogFields, Logger } from '../runtime/logger.ts';
import { randomToken, SystemRandom, type Random } from '../runtime/random.ts';
import { PortAllocator } from './port-allocator.ts';
import { LegRtcp } from './relay/leg-rtcp.ts';
import { RelayLeg } from './relay/relay-leg.ts';
import { bindUdpPair, closeQuietly, type UdpPair } from './relay/udp-pair.ts';
import { RTP_FIXED_HEADER_LENGTH, SsrcContinuity } from './rtp-packet.ts';
import type { PacketTranscoder } from './transcoder.ts';
import type { LegReport } from './relay/leg-reports.ts';
import type { SrtpDrops, SrtpKeys } from './relay/leg-srtp.ts';
import { srtpFields, transcoderFields } from './relay/close-fields.ts';

export type LegName = 'a' | 'b';

/** Where a leg's media goes, from that leg's SDP (c= and m= port, a=rtcp). */
export interface RelayPeer {
  address: string;
  port: number;
  rtcpPort?: number;
}

/**
 * Packet counters of one leg, RTP and RTCP together: `received` counts every datagram that
 * arrived on the leg's sockets, and each one is then either `forwarded`, `consumed` or `dropped`
 * (too short, not version 2, from a source other than the latched one, or with nowhere to go).
 * While the leg is transcoded an RTP packet handed to the transcoder counts as forwarded (it may
 * come out as zero, one or more packets), and its RTCP is not forwarded (RFC 3550 §7.3): it is
 * `consumed` by the gateway's own RTCP for the stream it sends the leg.
 */
export interface RelayStats {
  forwarded: number;
  dropped: number;
  /** RTCP datagrams the gateway read itself instead of forwarding them. */
  consumed: number;
  received: number;
  /** SRTP refusals (counted in `dropped` too), once the leg had SRTP keys. */
  srtp?: SrtpDrops;
}

/**
 * One relayed call. Created by {@link RtpRelayFactory.open}, driven by the media session
 * (setRemote/setPayloadMap/setEcho from SDP negotiation) and polled by the B2BUA (idleMs).
 * `close()` closes the sockets and returns the ports; it is idempotent.
 */
export interface MediaRelay {
  readonly id: string;
  /** This leg's local RTP port (even); RTCP is localPort + 1. */
  localPort(leg: LegName): number;
  /** Sets (or, on re-INVITE/transfer, changes) where this leg's media goes. A new address resets latching for that leg. */
  setRemote(leg: LegName, peer: RelayPeer): void;
  /** Payload-type rewriting for packets that arrive on `from`, applied before sending to the other leg. Unmapped PTs pass unchanged. */
  setPayloadMap(from: LegName, map: ReadonlyMap<number, number>): void;
  /**
   * Transcoding of RTP arriving on `from` (undefined: plain relaying with the payload map). The
   * relay owns the transcoder: it closes the previous one and, on close, the current one. While
   * set, the gateway runs RTCP for the transcoder's stream on the other leg (SR+SDES at the
   * RFC 3550 §6.2 interval, reading that leg's reports); a replaced stream gets a BYE, and the
   * other leg's stream restarts its SSRC continuity (the re-encoded stream is a new source).
   */
  setTranscoder(from: LegName, transcoder: PacketTranscoder | undefined): void;
  /**
   * SRTP keys of a leg from its SDP (RFC 4568), undefined for plain RTP. From then on what
   * arrives on the leg is unprotected before anything else (a packet that fails authentication
   * or replay checks is dropped and counted, and never moves the symmetric-RTP latch) and what
   * goes to it is protected last, after payload rewriting and SSRC continuity. A context whose
   * key is unchanged keeps its state. Throws RangeError on keys SRTP cannot use.
   */
  setSrtp?(leg: LegName, keys: SrtpKeys | undefined): void;
  /** Echo mode: each leg's RTP/RTCP goes back to that leg's (latched) source instead of the other leg; the gateway's own RTCP pauses. */
  setEcho(on: boolean): void;
  /**
   * Milliseconds since the last RTP packet arrived on this leg (since open when none yet).
   * Accepted RTCP counts too, so a call on hold (RTP paused, RTCP still flowing, RFC 3264 §8.4)
   * is not mistaken for a vanished phone.
   */
  idleMs(leg: LegName): number;
  stats(leg: LegName): RelayStats;
  /** The last RTCP reception report of the leg's phone (loss, jitter, round trip), once it sent one; for `status`. */
  report?(leg: LegName): LegReport | undefined;
  /** Closes the sockets after a BYE on each leg the gateway sent a stream of its own; logs the counters and call statistics. */
  close(): void;
}

export interface RelayFactoryOptions {
  /** Local address the RTP sockets bind (`0.0.0.0`, `::` for dual stack, or one interface). */
  bind: string;
  /** `media.rtpPorts`: inclusive range for RTP (even) and RTCP (odd) ports. */
  ports: [number, number];
  clock: Clock;
  logger: Logger;
  /** Randomises the RTCP report interval (RFC 3550 §6.3.1); default: the system's. */
  random?: Random;
  /** SDES CNAME of the gateway's RTCP (§6.5.1); default a random one per factory (RFC 7022 §4.2). */
  cname?: string;
  /** The pairs of `ports`, when shared with the device's media; default the factory's own. */
  allocator?: PortAllocator;
}

/** Smallest RTCP compound packet: a header and the sender SSRC (RFC 3550 §6.4.2, RR with RC = 0). */
const RTCP_MIN_LENGTH = 8;

/** Every this many forwarded packets per leg (a power of two), one send reports its outcome. */
const SEND_CHECK_EVERY = 128;

/** What a relay needs besides its sockets. */
interface RelayContext {
  clock: Clock;
  logger: Logger;
  random: Random;
  cname: string;
  onClose(relay: RtpRelay): void;
}

class RtpRelay implements MediaRelay {
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

/**
 * Opens relays on ports from `media.rtpPorts`. One factory per gateway (the composition root
 * creates it); `closeAll()` on shutdown.
 */
export class RtpRelayFactory {
  private readonly allocator: PortAllocator;
  private readonly v6: boolean;
  private readonly random: Random;
  private readonly cname: string;
  private readonly relays = new Set<RtpRelay>();
  private seq = 0;

  constructor(private readonly opts: RelayFactoryOptions) {
    this.allocator = opts.allocator ?? new PortAllocator(opts.ports[0], opts.ports[1]);
    this.v6 = isIP(opts.bind) === 6;
    this.random = opts.random ?? new SystemRandom();
    this.cname = opts.cname ?? `hookswitch-${randomToken(this.random, 16)}`;
  }

  /** Opens 4 UDP sockets (RTP+RTCP per leg) on even/odd ports from the range; rejects when the range is exhausted. */
  async open(): Promise<MediaRelay> {
    const id = `relay-${++this.seq}`;
    let relay: RtpRelay | undefined;
    const onError = (err: Error): void => {
      if (relay) relay.socketError(err);
      else this.opts.logger.warn('relay socket error', { relay: id, error: err.message });
    };
    const bindPair = (port: number): Promise<UdpPair> => bindUdpPair(this.opts.bind, port, onError);
    const a = await this.allocator.acquire(bindPair);
    let b: { port: number; value: UdpPair };
    try {
      b = await this.allocator.acquire(bindPair);
    } catch (err) {
      closeQuietly(a.value.rtp);
      closeQuietly(a.value.rtcp);
      this.allocator.release(a.port);
      throw err;
    }
    relay = new RtpRelay(id, this.v6, { a, b }, {
      clock: this.opts.clock,
      logger: this.opts.logger,
      random: this.random,
      cname: this.cname,
      onClose: (r) => {
        this.relays.delete(r);
        for (const port of r.ports()) this.allocator.release(port);
      },
    });
    this.relays.add(relay);
    this.opts.logger.info('relay opened', { relay: id, portA: a.port, portB: b.port });
    return relay;
  }

  /** Relays currently open. */
  active(): number {
    return this.relays.size;
  }

  /** Closes every open relay (shutdown). */
  closeAll(): void {
    for (const relay of [...this.relays]) relay.close();
  }
}
