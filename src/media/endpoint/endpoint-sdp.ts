/**
 * Offer/answer (RFC 3264) for a media endpoint that terminates the stream itself: the device.
 * Pure: SDP strings in and out, the chosen codec, the far end's transport address and the SRTP
 * keys as result. The gateway writes one description per call: its own o= line, versioned per
 * RFC 3264 §8. SRTP keyed by SDES (RFC 4568) follows the far leg's {@link LegSecurity} with the
 * same decisions as relayed legs (`srtp-negotiation.ts`): RTP/AVP + `a=crypto` when optional,
 * RTP/SAVP + `a=crypto` when mandatory, keys only where the signalling allows them.
 */
import type { AudioCodec } from '../codec/codec.ts';
import type { Random } from '../../runtime/random.ts';
import { buildSdp, codecKey, isSecureProfile, isUnspecifiedAddress, mirrorDirection, parseSdp, SdpError } from '../sdp.ts';
import type { Codec, Direction, MediaLine, ParsedSdp, SdpOrigin } from '../sdp.ts';
import { acceptAnswer, answerOffer as answerSdes, makeOffer, type LegKeys, type OfferPlan } from '../srtp-negotiation.ts';
import { NO_SRTP, type LegSecurity } from '../srtp-policy.ts';

/** What a completed exchange settled: how to send, what arrives, where to. */
export interface NegotiatedMedia {
  codec: AudioCodec;
  /** Payload type we send the codec with (the peer's number for it). */
  sendPt: number;
  /** Payload types the peer may send us, and what each carries. */
  receive: Map<number, { kind: 'audio' } | { kind: 'event'; rate: number } | { kind: 'cn' }>;
  /** telephone-event payload type and clock rate we send DTMF with, when the peer takes them. */
  event?: { pt: number; rate: number };
  /** The far end's RTP address; undefined while it said "send nothing" (c=0.0.0.0). */
  remote?: { address: string; port: number; rtcpPort?: number };
  /** Our direction: whether we send and/or receive. */
  direction: Direction;
  /** Packetisation time we send with (ms). */
  ptime: number;
  /** SDES keys when the stream is SRTP (RFC 3711): ours protect what we send; absent for plain RTP. */
  srtp?: LegKeys;
}

/**
 * The outcome of one step of an exchange. A refusal carries the SIP status for it; `srtp` marks
 * a refusal by the SRTP policy, whose reason the caller logs once (it never holds key material).
 */
export type EndpointSdpResult = { ok: true; sdp: string; media: NegotiatedMedia } | { ok: false; status: 400 | 488; reason: string; srtp?: true };

/** Static payload types of RFC 3551 table 4 that we may write. */
const STATIC: ReadonlyMap<string, number> = new Map([
  ['pcmu/8000/1', 0],
  ['pcma/8000/1', 8],
  ['g722/8000/1', 9],
]);
const CN: Codec = { pt: 13, name: 'CN', rate: 8000 };
const EVENT_FMTP = '0-16';

function codecOf(c: AudioCodec, pt: number): Codec {
  const out: Codec = { pt, name: c.info.name, rate: c.info.clockRate };
  if (c.info.channels !== 1) out.channels = c.info.channels;
  if (c.info.fmtp !== undefined) out.fmtp = c.info.fmtp;
  return out;
}

function keyOf(c: AudioCodec): string {
  return codecKey({ name: c.info.name, rate: c.info.clockRate, channels: c.info.channels });
}

const fail = (status: 400 | 488, reason: string): EndpointSdpResult => ({ ok: false, status, reason });
const srtpFail = (reason: string): EndpointSdpResult => ({ ok: false, status: 488, reason, srtp: true });

/**
 * The device's side of the offer/answer exchanges of one call, under the far leg's
 * {@link LegSecurity} (constructor or {@link setSecurity}; default no SRTP).
 */
export class EndpointSdp {
  private origin: SdpOrigin | undefined;
  private lastContent: string | undefined;
  /** Our payload numbers (offer) by codec key. */
  private ourPts = new Map<string, number>();
  private media: MediaLine[] = [{ type: 'audio', port: 0, protocol: 'RTP/AVP', formats: '' }];
  private audioIndex = 0;
  private outstanding: Codec[] | undefined;
  /** The SDES part of the outstanding offer. */
  private outstandingSdes: OfferPlan | undefined;
  /** The stream was settled on RTP/SAVP: re-offers keep the profile (RFC 3264 §8: same transport). */
  private savp = false;
  /** Why the outstanding offer could carry no keys: every answer to it is refused. */
  private unanswerable: string | undefined;
  private current: NegotiatedMedia | undefined;

  constructor(
    /** Our codecs, most preferred first. */
    private readonly codecs: readonly AudioCodec[],
    private readonly random: Random,
    private readonly local: { address(): string; port(): number },
    private readonly username = 'hookswitch',
    private security: LegSecurity = NO_SRTP,
  ) {
    let dynamic = 96;
    for (const c of codecs) this.ourPts.set(keyOf(c), STATIC.get(keyOf(c)) ?? dynamic++);
    this.ourPts.set('telephone-event/8000/1', 101);
    this.ourPts.set('telephone-event/48000/1', 102);
  }

  /** The media of the last completed exchange. */
  get negotiated(): NegotiatedMedia | undefined {
    return this.current;
  }

  /** The far leg's SRTP security, once the call layer knows who and where it is; before the first exchange. */
  setSecurity(security: LegSecurity): void {
    this.security = security;
  }

  /** Why the policy forbids an offer (mandatory SRTP, keys not allowed on the far leg's signalling); undefined when it allows one. */
  get offerRefusal(): string | undefined {
    const plan = makeOffer(this.security, this.random, this.current?.srtp, this.savp);
    return plan.ok ? undefined : plan.reason;
  }

  /**
   * Our offer: every codec in preference order, telephone-event and CN (RFC 3389), 20 ms, with
   * `a=crypto` and the profile the policy asks for. When {@link offerRefusal} says no, the offer
   * is RTP/SAVP without `a=crypto`: no key leaves, the far end must reject the stream (RFC 4568
   * §7.1.2 "it MUST reject the media stream") and any answer to it is refused.
   */
  offer(direction: Direction = 'sendrecv'): string {
    const formats = this.codecs.map((c) => codecOf(c, this.ourPts.get(keyOf(c))!));
    const rates = new Set(formats.map((f) => f.rate));
    for (const rate of [8000, 48000]) {
      if (rates.has(rate)) formats.push({ pt: this.ourPts.get(`telephone-event/${rate}/1`)!, name: 'telephone-event', rate, fmtp: EVENT_FMTP });
    }
    formats.push(CN);
    const plan = makeOffer(this.security, this.random, this.current?.srtp, this.savp);
    this.outstanding = formats;
    if (!plan.ok) {
      this.outstandingSdes = { ok: true, offered: [], crypto: [], secureProfile: true };
      this.unanswerable = plan.reason;
      return this.render(formats, direction, 20, 'RTP/SAVP');
    }
    this.outstandingSdes = plan;
    this.unanswerable = undefined;
    return this.render(formats, direction, 20, plan.secureProfile ? 'RTP/SAVP' : 'RTP/AVP', plan.crypto);
  }

  /** The peer's answer to our {@link offer}. */
  takeAnswer(sdp: string): EndpointSdpResult {
    const offered = this.outstanding;
    if (offered === undefined) return fail(400, 'no offer outstanding');
    if (this.unanswerable !== undefined) return srtpFail(this.unanswerable);
    let answer: ParsedSdp;
    try {
      answer = parseSdp(sdp, { srtp: true });
    } catch (err) {
      return failure(err);
    }
    const keys = new Set(offered.map(codecKey));
    const chosen = answer.audio.codecs.filter((c) => keys.has(codecKey(c)));
    const media = this.settle(chosen, answer, mirrorDirection(answer.audio.direction));
    if (media === undefined) return fail(488, 'the answer holds no offered codec');
    // RFC 4568 §7.1.3: the answer's a=crypto names one of ours; none is plain RTP unless we offered RTP/SAVP.
    const sdes = acceptAnswer(answer.audio, this.outstandingSdes);
    if (!sdes.ok) return srtpFail(sdes.reason);
    if (sdes.keys) media.srtp = sdes.keys;
    this.savp = sdes.keys !== undefined && this.outstandingSdes?.secureProfile === true;
    this.current = media;
    // An answer repeated in the 2xx after a 183 settles the same exchange.
    return { ok: true, sdp: this.lastSdp ?? '', media };
  }

  /** Answers the peer's offer with our most preferred codec it lists. */
  answerOffer(sdp: string): EndpointSdpResult {
    let offer: ParsedSdp;
    try {
      offer = parseSdp(sdp, { srtp: true });
    } catch (err) {
      return failure(err);
    }
    const byKey = new Map(offer.audio.codecs.map((c) => [codecKey(c), c] as const));
    const preferred = this.codecs.map((c) => byKey.get(keyOf(c))).filter((c): c is Codec => c !== undefined);
    const direction = mirrorDirection(offer.audio.direction);
    const media = this.settle(preferred, offer, direction);
    if (media === undefined) return fail(488, 'no codec of the offer is supported');
    // RFC 4568 §7.1.2: one of the offer's a=crypto answered with our own key, or plain, or 488.
    const sdes = answerSdes(offer.audio, this.security, this.random, this.current?.srtp);
    if (!sdes.ok) return srtpFail(sdes.reason);
    if (sdes.keys) media.srtp = sdes.keys;
    this.savp = sdes.keys !== undefined && isSecureProfile(offer.audio.protocol);
    this.current = media;
    this.outstanding = undefined;
    this.outstandingSdes = undefined;
    // RFC 3264 §6.1: the answer uses the offerer's payload numbers; "MUST contain exactly the
    // same number of "m=" lines as the offer".
    this.media = offer.media;
    this.audioIndex = offer.audioIndex;
    const first = preferred[0]!;
    const formats: Codec[] = [first];
    if (media.event !== undefined) formats.push(offer.audio.telephoneEvents.find((e) => e.pt === media.event!.pt)!);
    const cn = offer.audio.codecs.find((c) => codecKey(c) === 'cn/8000/1');
    if (cn !== undefined) formats.push(cn);
    // The answer repeats the offer's profile (RFC 3264 §6.1), RTP/SAVP included.
    return { ok: true, sdp: this.render(formats, direction, media.ptime, offer.audio.protocol, sdes.crypto), media };
  }

  private lastSdp: string | undefined;

  /** The negotiated media for the first usable codec of `chosen` (in the peer's numbering). */
  private settle(chosen: readonly Codec[], peer: ParsedSdp, direction: Direction): NegotiatedMedia | undefined {
    // The first format we can code: an answer may list CN (RFC 3389) before the audio codec.
    const first = chosen.find((f) => this.codecs.some((c) => keyOf(c) === codecKey(f)));
    const codec = first === undefined ? undefined : this.codecs.find((c) => keyOf(c) === codecKey(first));
    if (first === undefined || codec === undefined) return undefined;
    const receive: NegotiatedMedia['receive'] = new Map();
    // The stream has one decoder: other codecs of the answer would be decoded as this one (noise).
    for (const c of chosen) if (codecKey(c) === keyOf(codec)) receive.set(c.pt, { kind: 'audio' });
    // What we declared for the same codec may also arrive (RFC 3264 §6.1 has the answerer use the offerer's numbers).
    receive.set(this.ourPts.get(keyOf(codec))!, { kind: 'audio' });
    for (const e of peer.audio.telephoneEvents) receive.set(e.pt, { kind: 'event', rate: e.rate });
    for (const c of peer.audio.codecs) if (codecKey(c) === 'cn/8000/1') receive.set(c.pt, { kind: 'cn' });
    // RFC 4733 §2.1: events use the clock rate of the audio they accompany; take another when that is all there is.
    const events = peer.audio.telephoneEvents;
    const event = events.find((e) => e.rate === codec.info.clockRate) ?? events[0];
    const { address, port, rtcpPort } = peer.audio;
    const media: NegotiatedMedia = {
      codec,
      sendPt: first.pt,
      receive,
      direction,
      ptime: 20,
    };
    if (event !== undefined) media.event = { pt: event.pt, rate: event.rate };
    if (!isUnspecifiedAddress(address)) media.remote = { address, port, ...(rtcpPort === undefined ? {} : { rtcpPort }) };
    return media;
  }

  private render(formats: readonly Codec[], direction: Direction, ptime: number, protocol = 'RTP/AVP', crypto: readonly string[] = []): string {
    const address = this.local.address();
    const port = this.local.port();
    this.origin ??= { username: this.username, sessionId: String(this.random.bytes(6).readUIntBE(0, 6)), version: 1, address };
    const audio = { port, protocol, codecs: formats, direction, rtcpPort: port + 1, ptime, crypto };
    const spec = { address, media: this.media, audioIndex: this.audioIndex, audio };
    let sdp = buildSdp({ ...spec, origin: this.origin });
    const content = sdp.replace(/^o=.*\r\n/m, '');
    if (this.lastContent !== undefined && content !== this.lastContent) {
      // RFC 3264 §8: "the version in the origin field MUST increment by one from the previous SDP".
      this.origin = { ...this.origin, version: this.origin.version + 1 };
      sdp = buildSdp({ ...spec, origin: this.origin });
    }
    this.lastContent = content;
    this.lastSdp = sdp;
    return sdp;
  }
}

function failure(err: unknown): EndpointSdpResult {
  if (err instanceof SdpError) return fail(err.status, err.message);
  throw err;
}
