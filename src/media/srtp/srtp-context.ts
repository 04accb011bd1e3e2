/**
 * The SRTP cryptographic context of one master key (RFC 3711 §3.2), for the
 * AES_CM_128_HMAC_SHA1_80 and _32 suites: it protects outgoing RTP/RTCP into SRTP/SRTCP and
 * unprotects incoming SRTP/SRTCP, keeping per SSRC the rollover counter, highest sequence number
 * and replay lists. Pure: bytes in, bytes or a refusal out; no I/O, no clock, no logging.
 *
 * SDES gives each side its own master key for what it sends (RFC 4568 §5.1.1), so a call leg
 * uses two contexts: one with the local key for {@link SrtpContext.protectRtp} /
 * {@link SrtpContext.protectRtcp}, one with the peer's key for the unprotect calls
 * (`srtp-session.ts` pairs them). Several SSRCs may share a context (RFC 4568 §6.4.2); an SSRC
 * gets receive state only once one of its packets authenticated (late binding, RFC 4568 §6.4.1:
 * "authentication MUST succeed; otherwise, the crypto context is not instantiated").
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { AesCm, writeCounterBlock } from './aes-cm.ts';
import { deriveSessionKeys } from './key-derivation.ts';
import { packetIndex, RocTracker } from './packet-index.ts';
import { ReplayWindow } from './replay-window.ts';
import { SRTP_SUITES, type SrtpSuite, type SrtpSuiteName } from './srtp-suites.ts';

/** Why a packet was refused; stable, one counter each in {@link SrtpCounters.errors}. */
export type SrtpErrorCode =
  | 'SRTP_TOO_SHORT'
  | 'SRTP_MALFORMED'
  | 'SRTP_AUTH_FAILED'
  | 'SRTP_REPLAYED'
  | 'SRTP_INDEX_REUSED'
  | 'SRTP_KEY_EXHAUSTED'
  | 'SRTP_MKI_MISMATCH'
  | 'SRTP_TOO_MANY_STREAMS';

/** The outcome of a protect or unprotect: a new buffer, or a refusal to count and log. */
export type SrtpResult = { ok: true; packet: Buffer } | { ok: false; code: SrtpErrorCode; reason: string };

/** Packets through a context and refusals by code. */
export interface SrtpCounters {
  rtpProtected: number;
  rtpUnprotected: number;
  rtcpProtected: number;
  rtcpUnprotected: number;
  errors: Record<SrtpErrorCode, number>;
}

/** What a context needs: the suite and one master key with its SDES policy. */
export interface SrtpContextOptions {
  suite: SrtpSuiteName;
  /** 16 octets. */
  masterKey: Uint8Array;
  /** 14 octets. */
  masterSalt: Uint8Array;
  /**
   * SDES lifetime: packets this key may protect, counted separately for SRTP and SRTCP
   * (RFC 4568 §6.1); capped by the suite's 2^48 / 2^31.
   */
  lifetime?: number;
  /** MKI octets carried in every packet (RFC 3711 §3.1), when the key has one. */
  mki?: Uint8Array;
  /** Replay window in packets, at least 64 (RFC 3711 §3.3.2); default 128. */
  replayWindow?: number;
  /**
   * SSRCs with state per direction; default 16. Past it a new receive SSRC makes the context
   * forget the oldest one (its ROC and replay list go with it), while a new send SSRC is refused:
   * forgetting a sender's index would let a keystream be used twice.
   */
  maxStreams?: number;
}

interface RtpStream {
  roc: RocTracker;
  window: ReplayWindow;
}

interface RtcpStream {
  window: ReplayWindow;
  nextIndex: number;
}

/** Length of the RTP fixed header (RFC 3550 §5.1) and of the RTCP header + sender SSRC. */
const RTP_HEADER = 12;
const RTCP_HEADER = 8;
/** The E flag and SRTCP index word (RFC 3711 §3.4). */
const SRTCP_INDEX_LENGTH = 4;
const E_FLAG = 0x80000000;
const MAX_SRTCP_INDEX = 0x7fffffff;

const readU32 = (p: Uint8Array, at: number): number => ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;

/**
 * One master key's context; see the module comment. Every method returns a result and never
 * throws on packet content; the constructor throws RangeError on key material of the wrong
 * length, an unknown suite or a window below 64 (configuration errors, not network input).
 */
export class SrtpContext {
  readonly suite: SrtpSuite;
  readonly counters: SrtpCounters = {
    rtpProtected: 0,
    rtpUnprotected: 0,
    rtcpProtected: 0,
    rtcpUnprotected: 0,
    errors: {
      SRTP_TOO_SHORT: 0,
      SRTP_MALFORMED: 0,
      SRTP_AUTH_FAILED: 0,
      SRTP_REPLAYED: 0,
      SRTP_INDEX_REUSED: 0,
      SRTP_KEY_EXHAUSTED: 0,
      SRTP_MKI_MISMATCH: 0,
      SRTP_TOO_MANY_STREAMS: 0,
    },
  };
  private readonly rtpCipher: AesCm;
  private readonly rtcpCipher: AesCm;
  private readonly rtpSalt: Buffer;
  private readonly rtcpSalt: Buffer;
  private readonly rtpAuth: KeyObject;
  private readonly rtcpAuth: KeyObject;
  private readonly mki: Buffer;
  private readonly rtpLifetime: number;
  private readonly rtcpLifetime: number;
  /** Replay window in packets (a multiple of 32, at least 64). */
  readonly windowSize: number;
  private readonly maxStreams: number;
  private readonly sendRtp = new Map<number, RtpStream>();
  private readonly recvRtp = new Map<number, RtpStream>();
  private readonly sendRtcp = new Map<number, RtcpStream>();
  private readonly recvRtcp = new Map<number, RtcpStream>();
  private readonly iv = Buffer.alloc(16);
  private readonly rocBytes = Buffer.alloc(4);
  private rtpPackets = 0;
  private rtcpPackets = 0;

  constructor(opts: SrtpContextOptions) {
    const suite = SRTP_SUITES[opts.suite];
    if (!suite) throw new RangeError(`unknown SRTP suite ${String(opts.suite)}`);
    this.suite = suite;
    if (opts.masterKey.length !== suite.masterKeyLength) {
      throw new RangeError(`master key of ${opts.masterKey.length} octets, ${suite.name} needs ${suite.masterKeyLength}`);
    }
    const rtp = deriveSessionKeys(opts.masterKey, opts.masterSalt, 'rtp');
    const rtcp = deriveSessionKeys(opts.masterKey, opts.masterSalt, 'rtcp');
    this.rtpCipher = new AesCm(rtp.encryptionKey);
    this.rtcpCipher = new AesCm(rtcp.encryptionKey);
    this.rtpSalt = rtp.salt;
    this.rtcpSalt = rtcp.salt;
    this.rtpAuth = createSecretKey(rtp.authKey);
    this.rtcpAuth = createSecretKey(rtcp.authKey);
    this.mki = Buffer.from(opts.mki ?? []);
    const lifetime = opts.lifetime ?? Infinity;
    if (!(lifetime > 0)) throw new RangeError(`key lifetime ${lifetime} is not a positive packet count`);
    this.rtpLifetime = Math.min(lifetime, suite.srtpLifetime);
    this.rtcpLifetime = Math.min(lifetime, suite.srtcpLifetime);
    this.windowSize = new ReplayWindow(opts.replayWindow ?? 128).size;
    this.maxStreams = Math.max(1, opts.maxStreams ?? 16);
  }

  /**
   * RTP → SRTP (RFC 3711 §3.3 sender steps): encrypts the payload (everything after the header,
   * CSRCs and header extension) with the keystream of the packet index, appends the MKI if any and
   * the authentication tag over header, encrypted payload and ROC. Refuses a packet whose index
   * this context already protected or that lags more than the window behind (RFC 3711 §9.1:
   * a keystream must never encrypt two plaintexts).
   */
  protectRtp(packet: Uint8Array): SrtpResult {
    const len = packet.length;
    const headerLength = rtpHeaderLength(packet, len);
    if (headerLength < 0) return this.badRtpHeader(headerLength, len);
    if (this.rtpPackets >= this.rtpLifetime) return this.exhausted('SRTP');
    const ssrc = readU32(packet, 8);
    const seq = (packet[2]! << 8) | packet[3]!;
    const stream = this.rtpStream(this.sendRtp, ssrc);
    if (!stream) return this.tooManyStreams(ssrc);
    const roc = stream.roc.estimate(seq);
    const index = packetIndex(roc, seq);
    const verdict = stream.window.check(index);
    if (verdict !== 'fresh') {
      return this.fail(
        'SRTP_INDEX_REUSED',
        verdict === 'replayed'
          ? `RTP sequence ${seq} of SSRC ${ssrc} was protected already: its keystream must not be reused`
          : `RTP sequence ${seq} of SSRC ${ssrc} lags more than ${this.windowSize} packets behind the stream`,
      );
    }
    const tagLength = this.suite.srtpTagLength;
    const out = Buffer.allocUnsafe(len + this.mki.length + tagLength);
    out.set(packet.subarray(0, headerLength), 0);
    writeCounterBlock(this.iv, this.rtpSalt, ssrc, roc, seq);
    this.rtpCipher.xor(this.iv, packet.subarray(headerLength, len), out, headerLength);
    out.set(this.mki, len);
    this.rtpTag(out.subarray(0, len), roc).copy(out, len + this.mki.length, 0, tagLength);
    stream.roc.update(roc, seq);
    stream.window.accept(index);
    this.rtpPackets++;
    this.counters.rtpProtected++;
    return { ok: true, packet: out };
  }

  /**
   * SRTP → RTP (RFC 3711 §3.3 receiver steps 2-8): estimates the index (§3.3.1) from SSRC and
   * SEQ, refuses a replay (§3.3.2, step 5: "the packet MUST be discarded"), checks the MKI and the
   * tag (step 5: on "AUTHENTICATION FAILURE ... the packet MUST be discarded"), and only then
   * parses the header (CSRCs, extension), decrypts, and updates the ROC, s_l and replay list.
   */
  unprotectRtp(packet: Uint8Array): SrtpResult {
    const len = packet.length;
    const tagLength = this.suite.srtpTagLength;
    const authEnd = len - tagLength - this.mki.length;
    if (authEnd < RTP_HEADER) {
      return this.fail('SRTP_TOO_SHORT', `SRTP packet of ${len} octets cannot hold a header, MKI and ${tagLength}-octet tag`);
    }
    const ssrc = readU32(packet, 8);
    const seq = (packet[2]! << 8) | packet[3]!;
    const stream = this.recvRtp.get(ssrc);
    const roc = stream ? stream.roc.estimate(seq) : 0;
    const index = packetIndex(roc, seq);
    const verdict = stream ? stream.window.check(index) : 'fresh';
    if (verdict !== 'fresh') {
      return this.fail(
        'SRTP_REPLAYED',
        verdict === 'replayed'
          ? `SRTP sequence ${seq} of SSRC ${ssrc} (ROC ${roc}) was received already`
          : `SRTP sequence ${seq} of SSRC ${ssrc} (ROC ${roc}) is older than the ${this.windowSize}-packet replay window`,
      );
    }
    if (!this.mkiMatches(packet, authEnd)) return this.fail('SRTP_MKI_MISMATCH', `SRTP packet of SSRC ${ssrc} carries an unknown MKI`);
    if (this.rtpPackets >= this.rtpLifetime) return this.exhausted('SRTP');
    const tag = this.rtpTag(packet.subarray(0, authEnd), roc);
    if (!timingSafeEqual(tag.subarray(0, tagLength), packet.subarray(authEnd + this.mki.length, len))) {
      return this.fail('SRTP_AUTH_FAILED', `SRTP sequence ${seq} of SSRC ${ssrc} failed authentication`);
    }
    // Parsed only now: before authentication any header bit may be an attacker's.
    const headerLength = rtpHeaderLength(packet, authEnd);
    if (headerLength < 0) return this.badRtpHeader(headerLength, authEnd);
    const out = Buffer.allocUnsafe(authEnd);
    out.set(packet.subarray(0, headerLength), 0);
    writeCounterBlock(this.iv, this.rtpSalt, ssrc, roc, seq);
    this.rtpCipher.xor(this.iv, packet.subarray(headerLength, authEnd), out, headerLength);
    const state = stream ?? this.rtpStream(this.recvRtp, ssrc)!;
    state.roc.update(roc, seq);
    state.window.accept(index);
    this.rtpPackets++;
    this.counters.rtpUnprotected++;
    return { ok: true, packet: out };
  }

  /**
   * RTCP → SRTCP (RFC 3711 §3.4): encrypts the compound packet from its ninth octet, appends
   * E=1 with the SRTCP index, the MKI if any, and the 80-bit tag over all of it. The index starts
   * at 0 per SSRC: "The SRTCP index MUST be set to zero before the first SRTCP packet is sent, and
   * MUST be incremented by one, modulo 2^31, after each SRTCP packet is sent"; the key is spent
   * before the index would wrap (RFC 3711 §9.2 limits a key to 2^31 SRTCP packets).
   */
  protectRtcp(packet: Uint8Array): SrtpResult {
    const len = packet.length;
    if (len < RTCP_HEADER) return this.fail('SRTP_TOO_SHORT', `RTCP packet of ${len} octets is shorter than its 8-octet header`);
    if (packet[0]! >> 6 !== 2) return this.fail('SRTP_MALFORMED', `RTCP version ${packet[0]! >> 6}, expected 2`);
    const ssrc = readU32(packet, 4);
    const stream = this.rtcpStream(this.sendRtcp, ssrc);
    if (!stream) return this.tooManyStreams(ssrc);
    const index = stream.nextIndex;
    if (index > MAX_SRTCP_INDEX || this.rtcpPackets >= this.rtcpLifetime) return this.exhausted('SRTCP');
    const tagLength = this.suite.srtcpTagLength;
    const trailer = len + SRTCP_INDEX_LENGTH;
    const out = Buffer.allocUnsafe(trailer + this.mki.length + tagLength);
    out.set(packet.subarray(0, RTCP_HEADER), 0);
    writeCounterBlock(this.iv, this.rtcpSalt, ssrc, index >>> 16, index & 0xffff);
    this.rtcpCipher.xor(this.iv, packet.subarray(RTCP_HEADER, len), out, RTCP_HEADER);
    out.writeUInt32BE((E_FLAG | index) >>> 0, len);
    out.set(this.mki, trailer);
    this.rtcpTag(out.subarray(0, trailer)).copy(out, trailer + this.mki.length, 0, tagLength);
    stream.nextIndex = index + 1;
    this.rtcpPackets++;
    this.counters.rtcpProtected++;
    return { ok: true, packet: out };
  }

  /**
   * SRTCP → RTCP (RFC 3711 §3.4): reads E and the explicit index, refuses a replay against the
   * SSRC's SRTCP replay list ("a separate Replay List that is specific to SRTCP"), checks MKI and
   * tag, and decrypts when E is 1 ("In case the E-flag is 0, the payload is simply left
   * unmodified").
   */
  unprotectRtcp(packet: Uint8Array): SrtpResult {
    const len = packet.length;
    const tagLength = this.suite.srtcpTagLength;
    const authEnd = len - tagLength - this.mki.length;
    const rtcpEnd = authEnd - SRTCP_INDEX_LENGTH;
    if (rtcpEnd < RTCP_HEADER) {
      return this.fail('SRTP_TOO_SHORT', `SRTCP packet of ${len} octets cannot hold a header, index, MKI and ${tagLength}-octet tag`);
    }
    const ssrc = readU32(packet, 4);
    const word = readU32(packet, rtcpEnd);
    const encrypted = (word & E_FLAG) !== 0;
    const index = word & MAX_SRTCP_INDEX;
    const stream = this.recvRtcp.get(ssrc);
    const verdict = stream ? stream.window.check(index) : 'fresh';
    if (verdict !== 'fresh') {
      return this.fail(
        'SRTP_REPLAYED',
        verdict === 'replayed'
          ? `SRTCP index ${index} of SSRC ${ssrc} was received already`
          : `SRTCP index ${index} of SSRC ${ssrc} is older than the ${this.windowSize}-packet replay window`,
      );
    }
    if (!this.mkiMatches(packet, authEnd)) return this.fail('SRTP_MKI_MISMATCH', `SRTCP packet of SSRC ${ssrc} carries an unknown MKI`);
    if (this.rtcpPackets >= this.rtcpLifetime) return this.exhausted('SRTCP');
    const tag = this.rtcpTag(packet.subarray(0, authEnd));
    if (!timingSafeEqual(tag.subarray(0, tagLength), packet.subarray(authEnd + this.mki.length, len))) {
      return this.fail('SRTP_AUTH_FAILED', `SRTCP index ${index} of SSRC ${ssrc} failed authentication`);
    }
    if (packet[0]! >> 6 !== 2) return this.fail('SRTP_MALFORMED', `RTCP version ${packet[0]! >> 6}, expected 2`);
    const out = Buffer.allocUnsafe(rtcpEnd);
    out.set(packet.subarray(0, encrypted ? RTCP_HEADER : rtcpEnd), 0);
    if (encrypted) {
      writeCounterBlock(this.iv, this.rtcpSalt, ssrc, index >>> 16, index & 0xffff);
      this.rtcpCipher.xor(this.iv, packet.subarray(RTCP_HEADER, rtcpEnd), out, RTCP_HEADER);
    }
    (stream ?? this.rtcpStream(this.recvRtcp, ssrc)!).window.accept(index);
    this.rtcpPackets++;
    this.counters.rtcpUnprotected++;
    return { ok: true, packet: out };
  }

  /** The sender's rollover counter for `ssrc` (RFC 3711 §3.3.1), or undefined before its first packet. */
  sendRoc(ssrc: number): number | undefined {
    return this.sendRtp.get(ssrc >>> 0)?.roc.rolloverCounter;
  }

  /** The receiver's rollover counter for `ssrc`, or undefined before its first authenticated packet. */
  receiveRoc(ssrc: number): number | undefined {
    return this.recvRtp.get(ssrc >>> 0)?.roc.rolloverCounter;
  }

  /** HMAC-SHA1 over the authenticated portion and the ROC: RFC 3711 §4.2, "M = Authenticated Portion || ROC". */
  private rtpTag(authenticated: Uint8Array, roc: number): Buffer {
    this.rocBytes.writeUInt32BE(roc, 0);
    return createHmac('sha1', this.rtpAuth).update(authenticated).update(this.rocBytes).digest();
  }

  /** RFC 3711 §3.4: the SRTCP Authenticated Portion already ends with E and the index. */
  private rtcpTag(authenticated: Uint8Array): Buffer {
    return createHmac('sha1', this.rtcpAuth).update(authenticated).digest();
  }

  private mkiMatches(packet: Uint8Array, at: number): boolean {
    for (let i = 0; i < this.mki.length; i++) if (packet[at + i] !== this.mki[i]) return false;
    return true;
  }

  /** The state of `ssrc`, created when new; undefined when a send map is full (see `maxStreams`). */
  private rtpStream(map: Map<number, RtpStream>, ssrc: number): RtpStream | undefined {
    const s = map.get(ssrc);
    if (s) return s;
    return this.insert(map, ssrc, { roc: new RocTracker(), window: new ReplayWindow(this.windowSize) });
  }

  private rtcpStream(map: Map<number, RtcpStream>, ssrc: number): RtcpStream | undefined {
    const s = map.get(ssrc);
    if (s) return s;
    return this.insert(map, ssrc, { window: new ReplayWindow(this.windowSize), nextIndex: 0 });
  }

  private insert<T>(map: Map<number, T>, ssrc: number, s: T): T | undefined {
    if (map.size >= this.maxStreams) {
      if (map === this.sendRtp || map === this.sendRtcp) return undefined;
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
    }
    map.set(ssrc, s);
    return s;
  }

  private tooManyStreams(ssrc: number): SrtpResult {
    return this.fail('SRTP_TOO_MANY_STREAMS', `SSRC ${ssrc} would be stream ${this.maxStreams + 1} sent with this key`);
  }

  private badRtpHeader(problem: number, len: number): SrtpResult {
    if (problem === HEADER_BAD_VERSION) return this.fail('SRTP_MALFORMED', 'RTP version is not 2');
    return this.fail('SRTP_TOO_SHORT', `RTP header (CSRCs, extension) overruns the ${len}-octet packet`);
  }

  private exhausted(kind: 'SRTP' | 'SRTCP'): SrtpResult {
    const limit = kind === 'SRTP' ? this.rtpLifetime : this.rtcpLifetime;
    return this.fail('SRTP_KEY_EXHAUSTED', `master key reached its lifetime of ${limit} ${kind} packets; re-keying is needed`);
  }

  private fail(code: SrtpErrorCode, reason: string): SrtpResult {
    this.counters.errors[code]++;
    return { ok: false, code, reason };
  }
}

const HEADER_TOO_SHORT = -1;
const HEADER_BAD_VERSION = -2;

/**
 * Octets before the RTP payload within `packet[0, end)`: fixed header, CSRCs and the header
 * extension when X is set (RFC 3550 §5.1, §5.3.1), which SRTP leaves in the clear (RFC 3711
 * §3.1); negative when the header does not fit or V is not 2.
 */
function rtpHeaderLength(packet: Uint8Array, end: number): number {
  if (end < RTP_HEADER) return HEADER_TOO_SHORT;
  const b0 = packet[0]!;
  if (b0 >> 6 !== 2) return HEADER_BAD_VERSION;
  let length = RTP_HEADER + 4 * (b0 & 0x0f);
  if ((b0 & 0x10) !== 0) {
    if (end < length + 4) return HEADER_TOO_SHORT;
    length += 4 + 4 * ((packet[length + 2]! << 8) | packet[length + 3]!);
  }
  return end < length ? HEADER_TOO_SHORT : length;
}
