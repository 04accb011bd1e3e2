/**
 * The SRTP of the device's stream over the life of one call: the context of our key (what we
 * send) and the context of the peer's key (what we receive), as the offer/answer exchanges of
 * the call key them. Pure.
 *
 * Each direction's context is replaced only when that direction's key changes. An `SrtpSession`
 * pairs both and would be rebuilt whenever either changed; but a context that starts afresh
 * under an unchanged key forgets the rollover counter (RFC 3711 §3.3.1) — after 65536 packets
 * the receiver would guess the wrong index and fail every tag, and a sender would reuse packet
 * indices, i.e. keystream (RFC 3711 §9.1 "the same key MUST never be used with the same index").
 * A re-INVITE that keeps the keys (session refresh, hold) therefore keeps the contexts.
 */
import { formatSdesCrypto, type SdesCrypto } from '../srtp/sdes.ts';
import { SrtpContext, type SrtpCounters, type SrtpResult } from '../srtp/srtp-context.ts';
import { srtpContextOptions, srtpReceiveOptions } from '../srtp/srtp-session.ts';
import type { LegKeys } from '../srtp-negotiation.ts';
import type { SrtpTransform } from './rtp-socket.ts';

/** Per-direction SRTP contexts for one call; see the module comment. */
export class EndpointSrtp implements SrtpTransform {
  private send: SrtpContext;
  private receive: SrtpContext;
  private sendKey: string;
  private receiveKey: string;
  /** Counters of contexts already replaced, so the call's totals survive a re-key. */
  private readonly retired: SrtpCounters[] = [];

  /** Throws RangeError on unusable keys (several MKI keys), which the SDES answer never accepts. */
  constructor(keys: LegKeys) {
    this.send = sendContext(keys.local);
    this.receive = receiveContext(keys.remote);
    this.sendKey = formatSdesCrypto(keys.local);
    this.receiveKey = formatSdesCrypto(keys.remote);
  }

  /** The suite we send with, e.g. AES_CM_128_HMAC_SHA1_80. */
  get suite(): string {
    return this.send.suite.name;
  }

  /** Applies the keys of a completed exchange; tells which directions were re-keyed. */
  update(keys: LegKeys): { send: boolean; receive: boolean } {
    const sendKey = formatSdesCrypto(keys.local);
    const receiveKey = formatSdesCrypto(keys.remote);
    const out = { send: sendKey !== this.sendKey, receive: receiveKey !== this.receiveKey };
    if (out.send) {
      this.retired.push(this.send.counters);
      this.send = sendContext(keys.local);
      this.sendKey = sendKey;
    }
    if (out.receive) {
      this.retired.push(this.receive.counters);
      this.receive = receiveContext(keys.remote);
      this.receiveKey = receiveKey;
    }
    return out;
  }

  protectRtp(packet: Uint8Array): SrtpResult {
    return this.send.protectRtp(packet);
  }

  unprotectRtp(packet: Uint8Array): SrtpResult {
    return this.receive.unprotectRtp(packet);
  }

  protectRtcp(packet: Uint8Array): SrtpResult {
    return this.send.protectRtcp(packet);
  }

  unprotectRtcp(packet: Uint8Array): SrtpResult {
    return this.receive.unprotectRtcp(packet);
  }

  /** Packets protected and unprotected over the call, re-keys included. */
  get totals(): { rtpProtected: number; rtpUnprotected: number; rtcpProtected: number; rtcpUnprotected: number } {
    const all = [...this.retired, this.send.counters, this.receive.counters];
    const sum = (k: 'rtpProtected' | 'rtpUnprotected' | 'rtcpProtected' | 'rtcpUnprotected'): number => all.reduce((n, c) => n + c[k], 0);
    return { rtpProtected: sum('rtpProtected'), rtpUnprotected: sum('rtpUnprotected'), rtcpProtected: sum('rtcpProtected'), rtcpUnprotected: sum('rtcpUnprotected') };
  }
}

function sendContext(crypto: SdesCrypto): SrtpContext {
  return new SrtpContext(srtpContextOptions(crypto));
}

function receiveContext(crypto: SdesCrypto): SrtpContext {
  return new SrtpContext(srtpReceiveOptions(crypto));
}
