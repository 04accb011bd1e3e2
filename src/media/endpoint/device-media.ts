/**
 * The media of one device call as the call layer sees it ({@link CallMedia}): SDP for the far
 * end's leg (endpoint-sdp.ts), the RTP socket pair towards it, and the {@link AudioStream} that
 * turns RTP into the device's playback and its capture into RTP. The far end is slot 'a' when
 * the device was called and slot 'b' when it called; the other slot is the device itself.
 */
import type { Clock } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { LegName, SdpResult } from '../../calls/types.ts';
import type { CallMedia, LegMediaStats } from '../../calls/types.ts';
import type { AudioStream } from './audio-stream.ts';
import type { EndpointSdp, EndpointSdpResult, NegotiatedMedia } from './endpoint-sdp.ts';
import type { RtpSocket } from './rtp-socket.ts';

export class DeviceMedia implements CallMedia {
  private remoteSlot: LegName | undefined;
  private localAddress = '';
  private lastRtp: number;
  private closed = false;
  private held = false;
  private closeHandlers: (() => void)[] = [];

  constructor(
    readonly sdp: EndpointSdp,
    readonly socket: RtpSocket,
    readonly stream: AudioStream,
    private readonly clock: Clock,
    private readonly logger: Logger,
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

  /** The far end's slot: the device's own stream figures (RFC 3550 receive statistics and RTCP); undefined for the device's slot. */
  stats(leg: LegName): LegMediaStats | undefined {
    if (leg !== this.remoteSlot) return undefined;
    const s = this.stream.summary();
    const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
    const out: LegMediaStats = { packetsIn: num(s.packetsReceived) ?? 0, packetsOut: num(s.packetsSent) ?? 0 };
    if (this.stream.codecName !== undefined) out.codec = this.stream.codecName;
    const figures = { lossPercent: num(s.lossPercent), lost: num(s.lost), jitterMs: num(s.jitterMs), rttMs: num(s.rttMs) };
    for (const [k, v] of Object.entries(figures)) if (v !== undefined) out[k as keyof typeof figures] = v;
    return out;
  }

  /** Runs `fn` once when the media closes (the call ended). */
  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeHandlers.push(fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.logger.info('call media', this.stream.summary());
    this.stream.close();
    this.socket.close();
    for (const fn of this.closeHandlers.splice(0)) fn();
  }

  private apply(result: EndpointSdpResult): SdpResult {
    if (!result.ok) return result;
    this.configure(result.media);
    return { ok: true, sdp: result.sdp };
  }

  private configure(media: NegotiatedMedia): void {
    this.socket.setTarget(media.remote);
    this.stream.configure(media);
    this.lastRtp = this.clock.now();
  }
}
