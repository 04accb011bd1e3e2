/**
 * The RTCP the gateway runs on one relay leg while it sends that leg a stream of its own (a
 * transcoder's re-encoded audio, with the transcoder's SSRC). RFC 3550 §7.3: "Since a mixer
 * generates a new data stream of its own, it does not pass through SR or RR packets at all and
 * instead generates new information for both sides." So the gateway reports on the stream it
 * sends and reads the leg's reports about it. Pure apart from the injected clock's timers;
 * datagrams go out through a callback.
 */
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { LogFields, Logger } from '../../runtime/logger.ts';
import type { Random } from '../../runtime/random.ts';
import { ntpFromUnixMs } from '../rtcp/rtcp-packet.ts';
import { formatCallStats, RtcpSession, type CallStats } from '../rtcp/rtcp-session.ts';
import { ReceiveStatistics } from '../rtp/receive-statistics.ts';
import type { RtpSender } from '../rtp/rtp-sender.ts';

/** Options of {@link LegRtcp}. */
export interface LegRtcpOptions {
  /** The stream the gateway sends on the leg (SSRC, SR counts, timeline). */
  sender: RtpSender;
  clock: Clock;
  random: Random;
  /** SDES CNAME of the gateway (RFC 3550 §6.5.1). */
  cname: string;
  /** Codec name for the statistics. */
  codec?: string;
  /**
   * Sends one compound RTCP datagram to the leg's RTCP destination; returns whether it went out
   * (false: nowhere to send, or the relay is echoing).
   */
  send(packet: Uint8Array): boolean;
  /**
   * The sender took a new SSRC after a collision (RFC 3550 §8.2): whoever rewrites the outgoing
   * stream must now let the new SSRC through.
   */
  onSsrcChange?(): void;
  logger: Logger;
  /** Fields that name the relay and leg in log lines. */
  logFields?: LogFields;
  /** Session bandwidth in bit/s for the report interval (§6.2); the RtcpSession default otherwise. */
  sessionBandwidth?: number;
}

/**
 * RTCP for one outgoing stream and the stream received on the same leg. Created when the relay
 * starts sending the leg a stream of its own; the relay feeds it every RTP packet accepted from
 * the leg ({@link onRtp}) and every RTCP datagram ({@link onRtcp}). It schedules its reports on
 * the clock from construction (§6.2: the first after half the minimum interval, randomised) and
 * sends SR+SDES while the stream flows (RR+SDES when it paused). {@link bye} sends a last report
 * with BYE and stops; {@link stop} stops without one. Both are idempotent.
 */
export class LegRtcp {
  private readonly session: RtcpSession;
  private readonly receiver: ReceiveStatistics;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private reportsSent = 0;
  private reportsRead = 0;
  private warnedMalformed = false;

  constructor(private readonly opts: LegRtcpOptions) {
    this.receiver = new ReceiveStatistics({ clockRate: opts.sender.clockRate });
    this.session = new RtcpSession({
      sender: opts.sender,
      receiver: this.receiver,
      random: opts.random,
      cname: opts.cname,
      ...(opts.codec === undefined ? {} : { codec: opts.codec }),
      ...(opts.sessionBandwidth === undefined ? {} : { sessionBandwidth: opts.sessionBandwidth }),
    });
    this.arm(this.session.start(opts.clock.now()));
  }

  /** Call statistics: our stream's counts, the received stream's loss and jitter, the peer's view and RTT. */
  get stats(): CallStats {
    return this.session.stats;
  }

  /** RTCP datagrams sent to the leg. */
  get sent(): number {
    return this.reportsSent;
  }

  /** RTCP datagrams from the leg that decoded and were taken in. */
  get read(): number {
    return this.reportsRead;
  }

  /**
   * One RTP packet accepted from the leg at monotonic `arrivalMs` (at least a fixed header).
   * `jitter` false for packets whose timestamp is not their sampling instant (RFC 4733 events).
   */
  onRtp(packet: Uint8Array, arrivalMs: number, jitter = true): void {
    if (this.stopped) return;
    const header = {
      sequence: (packet[2]! << 8) | packet[3]!,
      timestamp: readU32(packet, 4),
      ssrc: readU32(packet, 8),
    };
    const headerLength = 12 + 4 * (packet[0]! & 0x0f);
    this.receiver.onPacket(header, arrivalMs, Math.max(0, packet.length - headerLength), jitter);
  }

  /**
   * One RTCP datagram from the leg. Its reports about our SSRC give the peer's loss and jitter and
   * the round-trip time (§6.4.1); its SR sets the LSR/DLSR of our next report. A malformed one is
   * logged once and otherwise only counted. A report with our own SSRC is a collision: §8.2 "send
   * an RTCP BYE packet for the old identifier and use another identifier".
   */
  onRtcp(packet: Uint8Array, arrivalMs: number): void {
    if (this.stopped) return;
    const receipt = this.session.onRtcp(packet, arrivalMs);
    if (!receipt.ok) {
      if (!this.warnedMalformed) {
        this.warnedMalformed = true;
        this.opts.logger.warn('malformed RTCP from a transcoded leg (further ones are only counted)', { ...this.opts.logFields, error: receipt.error.message });
      }
      return;
    }
    this.reportsRead++;
    if (receipt.collision) {
      const old = this.opts.sender.ssrc;
      this.transmit(this.session.changeSsrc(arrivalMs, this.ntpNow()));
      this.opts.logger.warn('SSRC collision on a transcoded leg: new SSRC taken', { ...this.opts.logFields, oldSsrc: old, ssrc: this.opts.sender.ssrc });
      this.opts.onSsrcChange?.();
    }
  }

  /** Sends a last report with BYE for our SSRC (§6.6) and stops. */
  bye(reason?: string): void {
    if (this.stopped) return;
    this.transmit(this.session.bye(this.opts.clock.now(), this.ntpNow(), reason));
    this.stop();
  }

  /** Stops the report timer; nothing more is sent or counted. */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** The end-of-stream log fields: our SSRC, {@link formatCallStats}, and the RTCP datagrams sent and read. */
  summary(): LogFields {
    return { ssrc: this.opts.sender.ssrc, ...formatCallStats(this.session.stats), rtcpSent: this.reportsSent, rtcpRead: this.reportsRead };
  }

  /** A.7 OnExpire: the session decides, with reconsideration, whether a report is due now. */
  private fire(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.opts.clock.now();
    const result = this.session.onTimer(now, this.ntpNow());
    if (result.packet !== undefined) this.transmit(result.packet);
    this.arm(result.nextAtMs);
  }

  private arm(atMs: number): void {
    this.timer = this.opts.clock.setTimer(Math.max(0, atMs - this.opts.clock.now()), () => this.fire(), 'relay rtcp report');
  }

  private transmit(packet: Uint8Array): void {
    if (this.opts.send(packet)) this.reportsSent++;
  }

  private ntpNow(): ReturnType<typeof ntpFromUnixMs> {
    return ntpFromUnixMs(this.opts.clock.wallNow());
  }
}

function readU32(p: Uint8Array, at: number): number {
  return ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;
}
