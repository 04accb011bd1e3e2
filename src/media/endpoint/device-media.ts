/**
 * The media of one device call as the call layer sees it ({@link CallMedia}): SDP for the far
 * end's leg (endpoint-sdp.ts), the RTP socket pair towards it, and the {@link AudioStream} that
 * turns RTP into the device's playback and its capture into RTP. The far end is slot 'a' when
 * the device was called and slot 'b' when it called; the other slot is the device itself.
 * When an exchange settles SDES keys (RFC 4568), the socket is keyed with the call's
 * {@link EndpointSrtp}: a re-INVITE with new keys re-keys the direction whose key changed.
 */
import type { Clock } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { LegName, SdpResult } from '../../calls/types.ts';
import type { CallMedia, LegMediaStats, LegSrtpStats } from '../../calls/types.ts';
import type { AudioStream } from './audio-stream.ts';
import type { EndpointSdp, EndpointSdpResult, NegotiatedMedia } from './endpoint-sdp.ts';
import type { LegPeer, LegSecurity } from '../srtp-policy.ts';
import { EndpointSrtp } from './endpoint-srtp.ts';
import type { RtpSocket, SrtpDrops } from './rtp-socket.ts';

/** SRTP figures of the device's stream (absent while the call is plain RTP). */
export interface DeviceSrtpStats {
  suite: string;
  /** Datagrams protected / unprotected (RTP and RTCP). */
  protected: number;
  unprotected: number;
  /** Received datagrams dropped, all codes, and by code (SRTP_AUTH_FAILED, SRTP_REPLAYED ...). */
  dropped: number;
  drops: SrtpDrops;
}

/**
 * The device's {@link CallMedia}: the B2BUA calls it like a relay's media; offers only come in
 * through {@link answerLocally} and go out through {@link reoffer}. Closing it ends the stream,
 * releases the RTP ports and logs one `call media` line with the call's figures.
 */
export class DeviceMedia implements CallMedia {
  private remoteSlot: LegName | undefined;
  private localAddress = '';
  private lastRtp: number;
  private closed = false;
  private held = false;
  private closeHandlers: (() => void)[] = [];
  /** The call's SRTP, once an exchange keyed it; kept while a later exchange goes plain. */
  private srtp: EndpointSrtp | undefined;

  constructor(
    readonly sdp: EndpointSdp,
    readonly socket: RtpSocket,
    readonly stream: AudioStream,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** The SRTP security of the far leg from who it is (`legSecurity` over the config); without it no SRTP. */
    private readonly srtpPolicy?: (peer: LegPeer) => LegSecurity,
  ) {
    this.lastRtp = clock.now();
    socket.listen({
      rtp: (packet) => {
        this.lastRtp = this.clock.now();
        this.stream.receiveRtp(packet, this.lastRtp);
      },
      rtcp: (packet) => this.stream.receiveRtcp(packet, this.clock.now()),
    });
  }

  /** The address written into our c= line. */
  get address(): string {
    return this.localAddress;
  }

  setLocalAddress(leg: LegName, address: string): void {
    if (this.remoteSlot === undefined || this.remoteSlot === leg) this.localAddress = address;
  }

  /**
   * Who the far end is and over which transports its signalling runs: decides the call's SRTP
   * (policy, and whether SDES keys may travel there). The call layer says it before the first SDP.
   */
  setLegPeer(leg: LegName, peer: LegPeer): void {
    this.remoteSlot ??= leg;
    if (leg !== this.remoteSlot || !this.srtpPolicy) return;
    this.sdp.setSecurity(this.srtpPolicy(peer));
  }

  /** Offers only ever come from the far end here; the call layer routes them to {@link answerLocally}. */
  offer(_from: LegName, _sdp: string): SdpResult {
    return { ok: false, status: 488, reason: 'the device answers offers itself' };
  }

  answer(from: LegName, sdp: string): SdpResult {
    this.remoteSlot ??= from;
    return this.apply(this.sdp.takeAnswer(sdp));
  }

  answerLocally(from: LegName, sdp: string): SdpResult {
    this.remoteSlot ??= from;
    return this.apply(this.sdp.answerOffer(sdp));
  }

  reoffer(to: LegName): string {
    this.remoteSlot ??= to;
    const refusal = this.sdp.offerRefusal;
    // The offer then carries no keys and cannot be answered (see EndpointSdp.offer): the call fails with the far end's 488.
    if (refusal !== undefined) this.logger.warn('srtp refused', { reason: refusal });
    // RFC 3264 §8.4: a held stream is offered inactive (the device neither sends the handset's
    // audio to the held party nor plays theirs); otherwise sendrecv, also after the far end held us.
    return this.sdp.offer(this.held ? 'inactive' : 'sendrecv');
  }

  /** Whether the device holds this call: the next {@link reoffer} says so. */
  setHeld(held: boolean): void {
    this.held = held;
  }

  get isHeld(): boolean {
    return this.held;
  }

  idleMs(leg: LegName): number {
    // The device itself is never idle; the far end is idle since its last RTP packet.
    return leg === this.remoteSlot ? this.clock.now() - this.lastRtp : 0;
  }

  /**
   * The far end's slot: the device's own stream figures (RFC 3550 receive statistics and RTCP)
   * and, while the stream is SRTP, its suite and refusals; undefined for the device's slot.
   */
  stats(leg: LegName): LegMediaStats | undefined {
    if (leg !== this.remoteSlot) return undefined;
    const s = this.stream.summary();
    const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
    const out: LegMediaStats = { packetsIn: num(s.packetsReceived) ?? 0, packetsOut: num(s.packetsSent) ?? 0 };
    if (this.stream.codecName !== undefined) out.codec = this.stream.codecName;
    const figures = { lossPercent: num(s.lossPercent), lost: num(s.lost), jitterMs: num(s.jitterMs), rttMs: num(s.rttMs) };
    for (const [k, v] of Object.entries(figures)) if (v !== undefined) out[k as keyof typeof figures] = v;
    const srtp = this.srtpStats();
    if (srtp) out.srtp = legSrtp(srtp);
    return out;
  }

  /** The SRTP figures while the stream is SRTP; undefined for plain RTP. */
  srtpStats(): DeviceSrtpStats | undefined {
    const srtp = this.srtp;
    if (!srtp || !this.socket.secure) return undefined;
    const t = srtp.totals;
    return {
      suite: srtp.suite,
      protected: t.rtpProtected + t.rtcpProtected,
      unprotected: t.rtpUnprotected + t.rtcpUnprotected,
      dropped: this.socket.srtpDropped,
      drops: { ...this.socket.srtpDrops },
    };
  }

  /** Runs `fn` once when the media closes (the call ended). */
  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeHandlers.push(fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const srtp = this.srtpStats();
    const drops = srtp ? Object.entries(srtp.drops).map(([code, n]) => `${code}:${n}`).join(',') : '';
    this.logger.info('call media', {
      ...this.stream.summary(),
      ...(srtp ? { srtp: srtp.suite, srtpUnprotected: srtp.unprotected, srtpDropped: srtp.dropped, ...(drops ? { srtpDrops: drops } : {}) } : {}),
    });
    this.stream.close();
    this.socket.close();
    for (const fn of this.closeHandlers.splice(0)) fn();
  }

  private apply(result: EndpointSdpResult): SdpResult {
    if (!result.ok) {
      // The one line for an SRTP policy refusal (RFC 4568 reasons carry no key material).
      if (result.srtp) this.logger.warn('srtp refused', { status: result.status, reason: result.reason });
      return { ok: false, status: result.status, reason: result.reason };
    }
    this.configure(result.media);
    return { ok: true, sdp: result.sdp };
  }

  private configure(media: NegotiatedMedia): void {
    if (media.srtp) {
      if (!this.srtp) {
        this.srtp = new EndpointSrtp(media.srtp);
        this.logger.info('srtp keyed', { suite: this.srtp.suite });
      } else {
        const rekeyed = this.srtp.update(media.srtp);
        if (rekeyed.send || rekeyed.receive) this.logger.info('srtp re-keyed', { send: rekeyed.send, receive: rekeyed.receive });
      }
    }
    this.socket.setSrtp(media.srtp ? this.srtp : undefined);
    this.socket.setTarget(media.remote);
    this.stream.configure(media);
    this.lastRtp = this.clock.now();
  }
}

/** The device's SRTP figures as a slot's (`status`, metrics): refusals by kind. */
function legSrtp(s: DeviceSrtpStats): LegSrtpStats {
  const authFailed = s.drops.SRTP_AUTH_FAILED ?? 0;
  const replayed = s.drops.SRTP_REPLAYED ?? 0;
  return { suite: s.suite, authFailed, replayed, other: s.dropped - authFailed - replayed };
}
