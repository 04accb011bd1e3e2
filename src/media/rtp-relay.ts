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
 * the gateway runs RTCP of its own for that stream (`relay/leg-rtcp.ts`, RFC 3550 §7.3). Each
 * call's relay is a {@link CallRelay} (`relay/call-relay.ts`).
 */
import { isIP } from 'node:net';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { randomToken, SystemRandom, type Random } from '../runtime/random.ts';
import { PortAllocator } from './port-allocator.ts';
import { CallRelay } from './relay/call-relay.ts';
import { bindUdpPair, closeQuietly, type UdpPair } from './relay/udp-pair.ts';
import type { PacketTranscoder } from './transcoder.ts';
import type { LegReport } from './relay/leg-reports.ts';
import type { SrtpDrops, SrtpKeys } from './relay/leg-srtp.ts';

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

/**
 * Opens relays on ports from `media.rtpPorts`. One factory per gateway (the composition root
 * creates it); `closeAll()` on shutdown.
 */
export class RtpRelayFactory {
  private readonly allocator: PortAllocator;
  private readonly v6: boolean;
  private readonly random: Random;
  private readonly cname: string;
  private readonly relays = new Set<CallRelay>();
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
    let relay: CallRelay | undefined;
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
    relay = new CallRelay(id, this.v6, { a, b }, {
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
