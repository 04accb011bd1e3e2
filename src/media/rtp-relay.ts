/**
 * The RTP/RTCP relay of the B2BUA (an I/O adapter): per call two legs, each with an even RTP port
 * and the next odd RTCP port (RFC 3550 §11), packets forwarded between the legs without
 * re-encoding (or, when the legs share no codec, through a {@link PacketTranscoder} per
 * direction). Symmetric RTP: each leg latches to the first source that sends to it (a phone
 * behind NAT sends from a port other than the one in its SDP), then ignores every other source.
 *
 * The relaying hot path allocates nothing beyond what `node:dgram` does: the received buffer is
 * rewritten in place (payload type, and SSRC/sequence/timestamp only after a source change) and
 * sent on.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { PortAllocator } from './port-allocator.ts';
import { RTP_FIXED_HEADER_LENGTH, SsrcContinuity } from './rtp-packet.ts';
import type { PacketTranscoder } from './transcoder.ts';

export type LegName = 'a' | 'b';

/** Where a leg's media goes, from that leg's SDP (c= and m= port, a=rtcp). */
export interface RelayPeer {
  address: string;
  port: number;
  rtcpPort?: number;
}

/**
 * Packet counters of one leg, RTP and RTCP together: `received` counts every datagram that
 * arrived on the leg's sockets, and each one is then either `forwarded` or `dropped` (too short,
 * not version 2, from a source other than the latched one, or with nowhere to go). While the leg
 * is transcoded an RTP packet handed to the transcoder counts as forwarded (it may come out as
 * zero, one or more packets), and its RTCP is dropped: it describes a stream the other leg never
 * sees.
 */
export interface RelayStats {
  forwarded: number;
  dropped: number;
  received: number;
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
   * relay owns the transcoder: it closes the previous one and, on close, the current one.
   */
  setTranscoder(from: LegName, transcoder: PacketTranscoder | undefined): void;
  /** Echo mode: each leg's RTP/RTCP goes back to that leg's (latched) source instead of the other leg. */
  setEcho(on: boolean): void;
  /**
   * Milliseconds since the last RTP packet arrived on this leg (since open when none yet).
   * Accepted RTCP counts too, so a call on hold (RTP paused, RTCP still flowing, RFC 3264 §8.4)
   * is not mistaken for a vanished phone.
   */
  idleMs(leg: LegName): number;
  stats(leg: LegName): RelayStats;
  close(): void;
}

export interface RelayFactoryOptions {
  /** Local address the RTP sockets bind (`0.0.0.0`, `::` for dual stack, or one interface). */
  bind: string;
  /** `media.rtpPorts`: inclusive range for RTP (even) and RTCP (odd) ports. */
  ports: [number, number];
  clock: Clock;
  logger: Logger;
}

/** Smallest RTCP compound packet: a header and the sender SSRC (RFC 3550 §6.4.2, RR with RC = 0). */
const RTCP_MIN_LENGTH = 8;

/** Every this many forwarded packets per leg (a power of two), one send reports its outcome. */
const SEND_CHECK_EVERY = 128;

type DropReason = 'malformed' | 'source' | 'destination' | 'transcoded';

/** Whether an IPv4 or IPv6 socket can reach `address`, in the form that socket sends to. */
function sendableAddress(v6Socket: boolean, address: string): string | undefined {
  const family = isIP(address);
  if (family === 0 || address === '0.0.0.0' || address === '::') return undefined;
  const lower = address.toLowerCase();
  if (v6Socket) return family === 6 ? lower : `::ffff:${address}`;
  if (family === 4) return address;
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : undefined;
}

/** The mutable state of one leg; kept as one class so the hot path sees one object shape. */
class Leg {
  rtp!: dgram.Socket;
  rtcp!: dgram.Socket;
  port = 0;
  other!: Leg;
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
  /** Continuity of the RTP stream sent to this leg. */
  readonly toThisLeg = new SsrcContinuity();
  lastPacket: number;
  received = 0;
  forwarded = 0;
  dropped = 0;
  readonly drops: Record<DropReason, number> = { malformed: 0, source: 0, destination: 0, transcoded: 0 };

  constructor(
    readonly name: LegName,
    now: number,
  ) {
    this.lastPacket = now;
  }
}

interface BoundPair {
  rtp: dgram.Socket;
  rtcp: dgram.Socket;
}

class RtpRelay implements MediaRelay {
  private readonly a: Leg;
  private readonly b: Leg;
  private echo = false;
  private closed = false;
  private socketErrors = 0;
  private readonly afterSend = (err: Error | null): void => {
    if (err) this.socketError(err);
  };

  constructor(
    readonly id: string,
    private readonly v6: boolean,
    pairs: { a: { port: number; value: BoundPair }; b: { port: number; value: BoundPair } },
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly onClose: (relay: RtpRelay) => void,
  ) {
    const now = clock.now();
    this.a = new Leg('a', now);
    this.b = new Leg('b', now);
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
    const leg = this.leg(name);
    const changed = peer.address !== leg.peerAddress || peer.port !== leg.peerPort;
    const rtcpChanged = peer.rtcpPort !== leg.peerRtcpPort;
    leg.peerAddress = peer.address;
    leg.peerPort = peer.port;
    leg.peerRtcpPort = peer.rtcpPort;
    const address = sendableAddress(this.v6, peer.address);
    const validPort = (p: number | undefined): p is number => p !== undefined && Number.isInteger(p) && p > 0 && p <= 65535;
    // Port 0 rejects the stream and 0.0.0.0 is the RFC 2543 hold address: nothing is sent there.
    const rtpOk = address !== undefined && validPort(peer.port);
    const rtcpPort = peer.rtcpPort ?? peer.port + 1;
    const rtcpOk = address !== undefined && validPort(peer.port) && validPort(rtcpPort);
    if (address === undefined && isIP(peer.address) === 0) {
      this.logger.warn('relay peer address is not an IP address', { relay: this.id, leg: name, address: peer.address });
    } else if (address === undefined && peer.address !== '0.0.0.0' && peer.address !== '::') {
      this.logger.warn('relay peer unreachable from the bind address family', { relay: this.id, leg: name, address: peer.address });
    }
    if (changed) {
      // A new SDP address (re-INVITE, transfer to another phone): latch afresh to whoever sends now.
      leg.rtpLatched = false;
      leg.rtcpLatched = false;
    }
    if (!leg.rtpLatched) {
      leg.rtpAddress = rtpOk ? address : '';
      leg.rtpPort = rtpOk ? peer.port : 0;
    }
    if (!leg.rtcpLatched && (changed || rtcpChanged)) {
      leg.rtcpAddress = rtcpOk ? address : '';
      leg.rtcpPort = rtcpOk ? rtcpPort : 0;
    }
  }

  setPayloadMap(from: LegName, map: ReadonlyMap<number, number>): void {
    let table: Uint8Array | undefined;
    for (const [inPt, outPt] of map) {
      if (!isPt(inPt) || !isPt(outPt)) throw new RangeError(`payload type mapping ${inPt} -> ${outPt} is outside 0..127`);
      if (inPt === outPt) continue;
      if (!table) table = identityTable();
      table[inPt] = outPt;
    }
    this.leg(from).ptTable = table;
  }

  setTranscoder(from: LegName, transcoder: PacketTranscoder | undefined): void {
    const leg = this.leg(from);
    if (leg.transcoder === transcoder) return;
    leg.transcoder?.close();
    leg.transcoder = transcoder;
  }

  setEcho(on: boolean): void {
    this.echo = on;
  }

  idleMs(leg: LegName): number {
    return this.clock.now() - this.leg(leg).lastPacket;
  }

  stats(name: LegName): RelayStats {
    const leg = this.leg(name);
    return { received: leg.received, forwarded: leg.forwarded, dropped: leg.dropped };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const leg of [this.a, this.b]) {
      leg.transcoder?.close();
      for (const socket of [leg.rtp, leg.rtcp]) {
        try {
          socket.close();
        } catch {
          // Already closed by an error path: nothing left to release.
        }
      }
    }
    this.logger.info('relay closed', {
      relay: this.id,
      aReceived: this.a.received,
      aForwarded: this.a.forwarded,
      aDropped: this.a.dropped,
      aDroppedSource: this.a.drops.source,
      bReceived: this.b.received,
      bForwarded: this.b.forwarded,
      bDropped: this.b.dropped,
      bDroppedSource: this.b.drops.source,
      socketErrors: this.socketErrors,
      ...transcoderFields('a', this.a.transcoder),
      ...transcoderFields('b', this.b.transcoder),
    });
    this.onClose(this);
  }

  /** Ports to give back to the allocator. */
  ports(): [number, number] {
    return [this.a.port, this.b.port];
  }

  /** Socket errors never end the call; the first is logged, the rest only counted. */
  socketError(err: Error): void {
    if (this.socketErrors++ === 0) {
      this.logger.warn('relay socket error (further errors are only counted)', { relay: this.id, error: err.message });
    }
  }

  private leg(name: LegName): Leg {
    if (name === 'a') return this.a;
    if (name === 'b') return this.b;
    throw new Error(`unknown relay leg ${String(name)}`);
  }

  private drop(leg: Leg, reason: DropReason): void {
    leg.dropped++;
    leg.drops[reason]++;
  }

  private onRtp(leg: Leg, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    leg.received++;
    // RFC 3550 §5.1: V is 2; anything shorter than the fixed header is not RTP.
    if (this.closed || msg.length < RTP_FIXED_HEADER_LENGTH || (msg[0]! & 0xc0) !== 0x80 || rinfo.port === 0) {
      this.drop(leg, 'malformed');
      return;
    }
    if (!leg.rtpLatched) {
      leg.rtpLatched = true;
      leg.rtpAddress = rinfo.address;
      leg.rtpPort = rinfo.port;
      this.logger.debug('rtp latched', { relay: this.id, leg: leg.name, source: `${rinfo.address}:${rinfo.port}` });
    } else if (rinfo.port !== leg.rtpPort || rinfo.address !== leg.rtpAddress) {
      this.drop(leg, 'source');
      return;
    }
    leg.lastPacket = this.clock.now();
    if (!this.echo && leg.transcoder !== undefined) {
      this.transcode(leg, leg.transcoder, msg);
      return;
    }
    let out = leg;
    if (!this.echo) {
      out = leg.other;
      const table = leg.ptTable;
      if (table !== undefined) msg[1] = (msg[1]! & 0x80) | table[msg[1]! & 0x7f]!;
    }
    if (out.rtpPort === 0) {
      this.drop(leg, 'destination');
      return;
    }
    out.toThisLeg.apply(msg);
    this.send(out.rtp, msg, out.rtpPort, out.rtpAddress, leg);
  }

  private onRtcp(leg: Leg, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    leg.received++;
    if (this.closed || msg.length < RTCP_MIN_LENGTH || (msg[0]! & 0xc0) !== 0x80 || rinfo.port === 0) {
      this.drop(leg, 'malformed');
      return;
    }
    if (!leg.rtcpLatched) {
      leg.rtcpLatched = true;
      leg.rtcpAddress = rinfo.address;
      leg.rtcpPort = rinfo.port;
    } else if (rinfo.port !== leg.rtcpPort || rinfo.address !== leg.rtcpAddress) {
      this.drop(leg, 'source');
      return;
    }
    leg.lastPacket = this.clock.now();
    if (!this.echo && leg.transcoder !== undefined) {
      this.drop(leg, 'transcoded');
      return;
    }
    const out = this.echo ? leg : leg.other;
    if (out.rtcpPort === 0) {
      this.drop(leg, 'destination');
      return;
    }
    this.send(out.rtcp, msg, out.rtcpPort, out.rtcpAddress, leg);
  }

  /** Sends what the transcoder makes of `msg`; a codec that throws costs the packet, not the call. */
  private transcode(leg: Leg, transcoder: PacketTranscoder, msg: Buffer): void {
    const out = leg.other;
    if (out.rtpPort === 0) {
      this.drop(leg, 'destination');
      return;
    }
    let packets: Uint8Array[];
    try {
      packets = transcoder.push(msg);
    } catch (err) {
      this.drop(leg, 'malformed');
      if (leg.transcodeErrors++ === 0) {
        this.logger.warn('transcoder failed on a packet (further failures are only counted)', { relay: this.id, leg: leg.name, error: (err as Error).message });
      }
      return;
    }
    leg.forwarded++;
    for (const p of packets) {
      out.toThisLeg.apply(p);
      try {
        out.rtp.send(p, out.rtpPort, out.rtpAddress, this.afterSend);
      } catch (err) {
        this.socketError(err as Error);
      }
    }
  }

  private send(socket: dgram.Socket, msg: Buffer, port: number, address: string, from: Leg): void {
    try {
      // node:dgram reports a send error only to a callback (without one it is swallowed), and a
      // callback costs a tick per packet: so only the first and every SEND_CHECK_EVERY-th packet
      // of a leg carry one. A lasting failure (EACCES, ENETUNREACH) is still seen within seconds.
      if ((from.forwarded & (SEND_CHECK_EVERY - 1)) === 0) socket.send(msg, port, address, this.afterSend);
      else socket.send(msg, port, address);
      from.forwarded++;
    } catch (err) {
      this.drop(from, 'destination');
      this.socketError(err as Error);
    }
  }
}

function transcoderFields(leg: LegName, t: PacketTranscoder | undefined): Record<string, number> {
  if (t === undefined) return {};
  const s = t.stats;
  return { [`${leg}Decoded`]: s.decoded, [`${leg}Concealed`]: s.concealed, [`${leg}Encoded`]: s.sent, [`${leg}TranscodeDropped`]: s.dropped };
}

function isPt(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 127;
}

function identityTable(): Uint8Array {
  const t = new Uint8Array(128);
  for (let i = 0; i < 128; i++) t[i] = i;
  return t;
}

/**
 * Opens relays on ports from `media.rtpPorts`. One factory per gateway (the composition root
 * creates it); `closeAll()` on shutdown.
 */
export class RtpRelayFactory {
  private readonly allocator: PortAllocator;
  private readonly v6: boolean;
  private readonly relays = new Set<RtpRelay>();
  private seq = 0;

  constructor(private readonly opts: RelayFactoryOptions) {
    this.allocator = new PortAllocator(opts.ports[0], opts.ports[1]);
    this.v6 = isIP(opts.bind) === 6;
  }

  /** Opens 4 UDP sockets (RTP+RTCP per leg) on even/odd ports from the range; rejects when the range is exhausted. */
  async open(): Promise<MediaRelay> {
    const id = `relay-${++this.seq}`;
    let relay: RtpRelay | undefined;
    const onError = (err: Error): void => {
      if (relay) relay.socketError(err);
      else this.opts.logger.warn('relay socket error', { relay: id, error: err.message });
    };
    const bindPair = (port: number): Promise<BoundPair> => this.bindPair(port, onError);
    const a = await this.allocator.acquire(bindPair);
    let b: { port: number; value: BoundPair };
    try {
      b = await this.allocator.acquire(bindPair);
    } catch (err) {
      closeQuietly(a.value.rtp);
      closeQuietly(a.value.rtcp);
      this.allocator.release(a.port);
      throw err;
    }
    relay = new RtpRelay(id, this.v6, { a, b }, this.opts.clock, this.opts.logger, (r) => {
      this.relays.delete(r);
      for (const port of r.ports()) this.allocator.release(port);
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

  private async bindPair(port: number, onError: (err: Error) => void): Promise<BoundPair> {
    const rtp = await this.bindSocket(port, onError);
    try {
      return { rtp, rtcp: await this.bindSocket(port + 1, onError) };
    } catch (err) {
      closeQuietly(rtp);
      throw err;
    }
  }

  private bindSocket(port: number, onError: (err: Error) => void): Promise<dgram.Socket> {
    const family = this.v6 ? 6 : 4;
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({
        type: this.v6 ? 'udp6' : 'udp4',
        reuseAddr: false,
        // Destinations are always IP literals (rinfo or checked in setRemote): skip dns.lookup per packet.
        lookup: (address, _options, callback) => callback(null, address, family),
      });
      const onBindError = (err: Error): void => {
        closeQuietly(socket);
        reject(err);
      };
      socket.once('error', onBindError);
      socket.bind({ address: this.opts.bind, port, exclusive: true }, () => {
        socket.off('error', onBindError);
        socket.on('error', onError);
        resolve(socket);
      });
    });
  }
}

function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    // Not running (bind failed): nothing to close.
  }
}
