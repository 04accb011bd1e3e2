/**
 * The device's RTP and RTCP sockets for one call (edge adapter): an even/odd UDP port pair
 * from `media.rtpPorts`, datagrams in to a handler, datagrams out to the far end. Symmetric
 * RTP: once packets arrive, replies go to the address they came from (a phone behind NAT),
 * otherwise to the address its SDP gave.
 *
 * With SRTP (RFC 3711) keyed, every datagram is unprotected on arrival and protected on its way
 * out; a datagram that fails (bad authentication tag, replay, too short ...) is dropped, counted
 * by its error code and never latched onto: RFC 3711 §3.3 "if the result is 'AUTHENTICATION
 * FAILURE' the packet MUST be discarded", so a forged packet cannot redirect our media.
 */
import type dgram from 'node:dgram';
import type { Logger } from '../../runtime/logger.ts';
import type { PortAllocator } from '../port-allocator.ts';
import type { SrtpErrorCode, SrtpResult } from '../srtp/srtp-context.ts';
import { bindUdpPair, closeQuietly } from '../relay/udp-pair.ts';

/** Where to send: RTP port and RTCP port (RTP + 1 unless a=rtcp said otherwise). */
export interface RtpTarget {
  address: string;
  port: number;
  rtcpPort?: number;
}

/** What the socket needs of SRTP: an `SrtpSession`, or the device's per-direction contexts. */
export interface SrtpTransform {
  protectRtp(packet: Uint8Array): SrtpResult;
  unprotectRtp(packet: Uint8Array): SrtpResult;
  protectRtcp(packet: Uint8Array): SrtpResult;
  unprotectRtcp(packet: Uint8Array): SrtpResult;
}

/** Received datagrams dropped by SRTP, by error code (RTP and RTCP together). */
export type SrtpDrops = Partial<Record<SrtpErrorCode, number>>;

/** Called with each datagram that arrived (RTP and RTCP already unprotected when SRTP is on). */
export interface RtpSocketHandlers {
  rtp(packet: Buffer, from: { address: string; port: number }): void;
  rtcp(packet: Buffer): void;
}

export class RtpSocket {
  private target: RtpTarget | undefined;
  private latched: { address: string; port: number } | undefined;
  private closed = false;
  private srtp: SrtpTransform | undefined;
  /** Datagrams that could not be sent (unreachable, no target yet, SRTP refused to protect). */
  sendErrors = 0;
  /** Received datagrams SRTP refused, by code. */
  readonly srtpDrops: SrtpDrops = {};

  private constructor(
    readonly port: number,
    private readonly rtpSocket: dgram.Socket,
    private readonly rtcpSocket: dgram.Socket,
    private readonly release: () => void,
    private readonly logger: Logger,
  ) {}

  /** Binds a free pair from `allocator` on `bind`; rejects when the range is exhausted. */
  static async open(allocator: PortAllocator, bind: string, logger: Logger): Promise<RtpSocket> {
    const onError = (err: Error): void => logger.debug('rtp socket error', { reason: err.message });
    const { port, value } = await allocator.acquire((p) => bindUdpPair(bind, p, onError));
    return new RtpSocket(port, value.rtp, value.rtcp, () => allocator.release(port), logger);
  }

  /** Whether SRTP is keyed. */
  get secure(): boolean {
    return this.srtp !== undefined;
  }

  /** Keys the socket (a completed SDES exchange) or returns it to plain RTP (undefined). */
  setSrtp(srtp: SrtpTransform | undefined): void {
    this.srtp = srtp;
  }

  /** Received datagrams SRTP refused, all codes together. */
  get srtpDropped(): number {
    return Object.values(this.srtpDrops).reduce((a, b) => a + b, 0);
  }

  /** Starts delivering datagrams; replaces earlier handlers. */
  listen(handlers: RtpSocketHandlers): void {
    this.rtpSocket.removeAllListeners('message');
    this.rtcpSocket.removeAllListeners('message');
    this.rtpSocket.on('message', (msg, rinfo) => {
      const packet = this.unprotect(msg, 'rtp');
      if (!packet) return;
      if (this.latched?.address !== rinfo.address || this.latched.port !== rinfo.port) this.latched = { address: rinfo.address, port: rinfo.port };
      handlers.rtp(packet, rinfo);
    });
    this.rtcpSocket.on('message', (msg) => {
      const packet = this.unprotect(msg, 'rtcp');
      if (packet) handlers.rtcp(packet);
    });
  }

  /** The plain datagram, or undefined when SRTP refused it (counted). */
  private unprotect(datagram: Buffer, kind: 'rtp' | 'rtcp'): Buffer | undefined {
    const srtp = this.srtp;
    if (!srtp) return datagram;
    const r = kind === 'rtp' ? srtp.unprotectRtp(datagram) : srtp.unprotectRtcp(datagram);
    if (r.ok) return r.packet;
    const n = (this.srtpDrops[r.code] ?? 0) + 1;
    this.srtpDrops[r.code] = n;
    // Logged at 1, 2, 4, 8 ... drops of a code: a flood of forged packets cannot flood the log.
    if ((n & (n - 1)) === 0) this.logger.debug('srtp drop', { kind, code: r.code, reason: r.reason, count: n });
    return undefined;
  }

  /** The datagram to put on the wire, or undefined when SRTP refused to protect it. */
  private protect(packet: Uint8Array, kind: 'rtp' | 'rtcp'): Uint8Array | undefined {
    const srtp = this.srtp;
    if (!srtp) return packet;
    const r = kind === 'rtp' ? srtp.protectRtp(packet) : srtp.protectRtcp(packet);
    if (r.ok) return r.packet;
    this.sendErrors++;
    this.logger.debug('srtp protect failed', { kind, code: r.code, reason: r.reason });
    return undefined;
  }

  /** The far end from its SDP; a new SDP address drops the latched one. */
  setTarget(target: RtpTarget | undefined): void {
    if (target?.address !== this.target?.address || target?.port !== this.target?.port) this.latched = undefined;
    this.target = target;
  }

  sendRtp(packet: Uint8Array): void {
    const to = this.latched ?? this.target;
    if (!to || this.closed) return;
    const wire = this.protect(packet, 'rtp');
    if (!wire) return;
    this.rtpSocket.send(wire, to.port, to.address, (err) => {
      if (err) this.sendErrors++;
    });
  }

  sendRtcp(packet: Uint8Array): void {
    const t = this.target;
    if (!t || this.closed) return;
    const port = this.latched ? this.latched.port + 1 : (t.rtcpPort ?? t.port + 1);
    const address = this.latched?.address ?? t.address;
    const wire = this.protect(packet, 'rtcp');
    if (!wire) return;
    this.rtcpSocket.send(wire, port, address, (err) => {
      if (err) this.sendErrors++;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.rtpSocket);
    closeQuietly(this.rtcpSocket);
    this.release();
  }
}
