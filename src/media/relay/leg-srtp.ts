/**
 * SRTP of one relay leg (RFC 3711): the context that unprotects what the leg's peer sends (its
 * SDES key) and the one that protects what the gateway sends it (the gateway's key), with the
 * refusals counted by reason. Pure: bytes in, bytes or undefined out.
 *
 * New keys from a re-INVITE replace only the context whose key changed: a context whose key
 * stays keeps its rollover counters, replay lists and (sending) packet index, so a session
 * refresh neither loses the peer's ROC after a sequence wrap nor reuses a keystream.
 */
import { srtpContextOptions, srtpReceiveOptions } from '../srtp/srtp-session.ts';
import { SrtpContext, type SrtpErrorCode, type SrtpResult } from '../srtp/srtp-context.ts';
import type { SdesCrypto } from '../srtp/sdes.ts';

/** Refused packets of a leg, by what went wrong. */
export interface SrtpDrops {
  /** Arrived with a wrong authentication tag (tampered, or another key). */
  authFailed: number;
  /** Arrived again inside the replay window, or older than it (RFC 3711 §3.3.2). */
  replayed: number;
  /** Too short, malformed, another MKI, key exhausted or too many streams. */
  invalid: number;
  /** Could not be protected for sending (too many streams, key exhausted). */
  protectFailed: number;
}

/** Zeroed {@link SrtpDrops}. */
export function newSrtpDrops(): SrtpDrops {
  return { authFailed: 0, replayed: 0, invalid: 0, protectFailed: 0 };
}

/** The keys of a leg as the media session settled them. */
export interface SrtpKeys {
  /** The gateway's key: protects what is sent to the leg. */
  local: SdesCrypto;
  /** The peer's key: unprotects what arrives from it. */
  remote: SdesCrypto;
}

/** The identity of a key for "did it change": suite, key, salt, MKI. */
function keyId(c: SdesCrypto): string {
  const k = c.keys[0];
  return k === undefined ? '' : `${c.suite}/${k.masterKey.toString('hex')}/${k.masterSalt.toString('hex')}/${k.mki?.value ?? ''}:${k.mki?.length ?? ''}`;
}

/** The two contexts of an SRTP leg; see the module comment. */
export class LegSrtp {
  private send!: SrtpContext;
  private receive!: SrtpContext;
  private sendId = '';
  private receiveId = '';
  /** Why the last packet was refused, for a debug line. */
  lastError: { code: SrtpErrorCode; reason: string } | undefined;

  /**
   * `drops` is counted into (the relay leg's, so that counts outlive a switch to plain RTP).
   * Throws RangeError on keys a context cannot take (the media session never settles such keys).
   */
  constructor(
    keys: SrtpKeys,
    readonly drops: SrtpDrops = newSrtpDrops(),
  ) {
    this.rekey(keys);
  }

  /** New keys for the leg: each context is rebuilt only when its key changed. Throws like the constructor. */
  rekey(keys: SrtpKeys): void {
    const sendId = keyId(keys.local);
    const receiveId = keyId(keys.remote);
    if (sendId !== this.sendId) {
      this.send = new SrtpContext(srtpContextOptions(keys.local));
      this.sendId = sendId;
    }
    if (receiveId !== this.receiveId) {
      this.receive = new SrtpContext(srtpReceiveOptions(keys.remote));
      this.receiveId = receiveId;
    }
  }

  /** SRTP from the peer → RTP, or undefined (counted) when refused. */
  unprotectRtp(packet: Uint8Array): Buffer | undefined {
    return this.received(this.receive.unprotectRtp(packet));
  }

  /** SRTCP from the peer → RTCP, or undefined (counted) when refused. */
  unprotectRtcp(packet: Uint8Array): Buffer | undefined {
    return this.received(this.receive.unprotectRtcp(packet));
  }

  /** RTP for the peer → SRTP, or undefined (counted) when it cannot be protected. */
  protectRtp(packet: Uint8Array): Buffer | undefined {
    return this.sent(this.send.protectRtp(packet));
  }

  /** RTCP (compound, SR or RR first) for the peer → SRTCP, or undefined (counted). */
  protectRtcp(packet: Uint8Array): Buffer | undefined {
    return this.sent(this.send.protectRtcp(packet));
  }

  private received(r: SrtpResult): Buffer | undefined {
    if (r.ok) return r.packet;
    this.lastError = { code: r.code, reason: r.reason };
    if (r.code === 'SRTP_AUTH_FAILED') this.drops.authFailed++;
    else if (r.code === 'SRTP_REPLAYED') this.drops.replayed++;
    else this.drops.invalid++;
    return undefined;
  }

  private sent(r: SrtpResult): Buffer | undefined {
    if (r.ok) return r.packet;
    this.lastError = { code: r.code, reason: r.reason };
    this.drops.protectFailed++;
    return undefined;
  }
}
