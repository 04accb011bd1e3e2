/**
 * The SRTP of one call leg keyed by SDES: the context of the local key (what the gateway sends,
 * RTP and RTCP) and the context of the peer's key (what it receives). RFC 4568 §5.1.1: "each
 * endpoint determines its own transmission keys and sends those keys, in SDP, to the other
 * endpoint." This is the object the media layer calls per packet. Pure.
 */
import type { SdesCrypto } from './sdes.ts';
import { mkiBytes } from './sdes.ts';
import { SrtpContext, type SrtpContextOptions, type SrtpCounters, type SrtpResult } from './srtp-context.ts';

/** Largest WSH from the peer that the receive window grows to (a hint only, RFC 4568 §6.3.6). */
const MAX_HINTED_WINDOW = 1024;
/** Receive replay window (RFC 3711 §3.3.2 minimum 64; libsrtp uses 128). */
const REPLAY_WINDOW = 128;

/** Keys of one leg and receiver tuning. */
export interface SrtpSessionOptions {
  /** Our `a=crypto` (the offer we sent or the answer we gave): protects what we send. */
  local: SdesCrypto;
  /** The peer's `a=crypto`: unprotects what we receive. */
  remote: SdesCrypto;
  /** Receive replay window (default 128, at least 64); the peer's WSH may raise it up to 1024. */
  replayWindow?: number;
  /** SSRCs with state per direction (default 16). */
  maxStreams?: number;
}

/**
 * The options of the context that unprotects with the peer's key: its replay window is
 * `window`, raised by the peer's WSH hint (RFC 4568 §6.3.6) up to {@link MAX_HINTED_WINDOW}.
 * Throws like {@link srtpContextOptions}.
 */
export function srtpReceiveOptions(remote: SdesCrypto, window = REPLAY_WINDOW): SrtpContextOptions {
  const hinted = Math.min(Math.max(window, remote.windowSizeHint ?? 0), MAX_HINTED_WINDOW);
  return { ...srtpContextOptions(remote), replayWindow: Math.max(window, hinted) };
}

/**
 * The context options of the single key of an `a=crypto` attribute. Throws RangeError when it
 * carries several keys (MKI re-keying), which {@link answerSdesOffer} never accepts.
 */
export function srtpContextOptions(crypto: SdesCrypto): SrtpContextOptions {
  if (crypto.keys.length !== 1) throw new RangeError(`a=crypto tag ${crypto.tag} has ${crypto.keys.length} keys, one is supported`);
  const key = crypto.keys[0]!;
  return {
    suite: crypto.suite,
    masterKey: key.masterKey,
    masterSalt: key.masterSalt,
    ...(key.lifetime === undefined ? {} : { lifetime: key.lifetime }),
    ...(key.mki ? { mki: mkiBytes(key.mki) } : {}),
  };
}

/**
 * Protect / unprotect for one leg. Each call returns a new buffer or a refusal
 * (`{ ok: false, code, reason }`) that the caller counts, logs at debug and drops; nothing
 * throws on packet content. A re-key (new SDES keys in a re-INVITE, RFC 4568 §7.1.4) is a new
 * SrtpSession.
 */
export class SrtpSession {
  readonly send: SrtpContext;
  readonly receive: SrtpContext;

  /** Throws RangeError on unusable keys (see {@link srtpContextOptions}). */
  constructor(opts: SrtpSessionOptions) {
    const base = opts.maxStreams === undefined ? {} : { maxStreams: opts.maxStreams };
    this.send = new SrtpContext({ ...srtpContextOptions(opts.local), ...base });
    this.receive = new SrtpContext({ ...srtpReceiveOptions(opts.remote, opts.replayWindow), ...base });
  }

  /** RTP from the gateway → SRTP for the wire. */
  protectRtp(packet: Uint8Array): SrtpResult {
    return this.send.protectRtp(packet);
  }

  /** SRTP from the wire → RTP, or a refusal (auth failure, replay, too short ...). */
  unprotectRtp(packet: Uint8Array): SrtpResult {
    return this.receive.unprotectRtp(packet);
  }

  /** RTCP (compound, starting with SR or RR) from the gateway → SRTCP. */
  protectRtcp(packet: Uint8Array): SrtpResult {
    return this.send.protectRtcp(packet);
  }

  /** SRTCP from the wire → RTCP, or a refusal. */
  unprotectRtcp(packet: Uint8Array): SrtpResult {
    return this.receive.unprotectRtcp(packet);
  }

  /** Counters of both directions, for status and metrics. */
  get counters(): { send: SrtpCounters; receive: SrtpCounters } {
    return { send: this.send.counters, receive: this.receive.counters };
  }
}
