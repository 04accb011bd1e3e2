/**
 * The device's RTP and RTCP sockets for one call (edge adapter): an even/odd UDP port pair
 * from `media.rtpPorts`, datagrams in to a handler, datagrams out to the far end. Symmetric
 * RTP: once packets arrive, replies go to the address they came from (a phone behind NAT),
 * otherwise to the address its SDP gave.
 */
import type dgram from 'node:dgram';
import type { Logger } from '../../runtime/logger.ts';
import type { PortAllocator } from '../port-allocator.ts';
import { bindUdpPair, closeQuietly } from '../relay/udp-pair.ts';

/** Where to send: RTP port and RTCP port (RTP + 1 unless a=rtcp said otherwise). */
export interface RtpTarget {
  address: string;
  port: number;
  rtcpPort?: number;
}

export interface RtpSocketHandlers {
  rtp(packet: Buffer, from: { address: string; port: number }): void;
  rtcp(packet: Buffer): void;
}

export class RtpSocket {
  private target: RtpTarget | undefined;
  private latched: { address: string; port: number } | undefined;
  private closed = false;
  /** Datagrams that could not be sent (unreachable, no target yet). */
  sendErrors = 0;

  private constructor(
    readonly port: number,
    private readonly rtpSocket: dgram.Socket,
    private readonly rtcpSocket: dgram.Socket,
    private readonly release: () => void,
  ) {}

  /** Binds a free pair from `allocator` on `bind`; rejects when the range is exhausted. */
  static async open(allocator: PortAllocator, bind: string, logger: Logger): Promise<RtpSocket> {
    const onError = (err: Error): void => logger.debug('rtp socket error', { reason: err.message });
    const { port, value } = await allocator.acquire((p) => bindUdpPair(bind, p, onError));
    return new RtpSocket(port, value.rtp, value.rtcp, () => allocator.release(port));
  }

  /** Starts delivering datagrams; replaces earlier handlers. */
  listen(handlers: RtpSocketHandlers): void {
    this.rtpSocket.removeAllListeners('message');
    this.rtcpSocket.removeAllListeners('message');
    this.rtpSocket.on('message', (msg, rinfo) => {
      if (this.latched?.address !== rinfo.address || this.latched.port !== rinfo.port) this.latched = { address: rinfo.address, port: rinfo.port };
      handlers.rtp(msg, rinfo);
    });
    this.rtcpSocket.on('message', (msg) => handlers.rtcp(msg));
  }

  /** The far end from its SDP; a new SDP address drops the latched one. */
  setTarget(target: RtpTarget | undefined): void {
    if (target?.address !== this.target?.address || target?.port !== this.target?.port) this.latched = undefined;
    this.target = target;
  }

  sendRtp(packet: Uint8Array): void {
    const to = this.latched ?? this.target;
    if (!to || this.closed) return;
    this.rtpSocket.send(packet, to.port, to.address, (err) => {
      if (err) this.sendErrors++;
    });
  }

  sendRtcp(packet: Uint8Array): void {
    const t = this.target;
    if (!t || this.closed) return;
    const port = this.latched ? this.latched.port + 1 : (t.rtcpPort ?? t.port + 1);
    const address = this.latched?.address ?? t.address;
    this.rtcpSocket.send(packet, port, address, (err) => {
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
