/**
 * The media half of a B2BUA call: two offer/answer exchanges (RFC 3264), one per leg, glued to one
 * RTP relay; when the legs end up with different codecs (the gateway offers the codecs it can
 * transcode to after the caller's own, see `transcode-plan.ts`) the relay transcodes. Leg 'a' is the caller, leg 'b' the callee; either may offer
 * (initial INVITE, re-INVITE, UPDATE). The gateway is the SDP author on both legs: its c= and
 * m= port are its own address and relay port facing that leg, and each leg has its own o= line
 * (what the gateway wrote on each leg, and its payload numbers, are kept in `leg-sdp.ts`).
 */
import type { LegName, MediaRelay, RelayPeer, RtpRelayFactory } from './rtp-relay.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import type { AudioCodec } from './codec/codec.ts';
import type { ResamplerFactory } from './resample/types.ts';
import { RelayRouting, TRANSCODE_PTIME, type Transcoding } from './relay/relay-routing.ts';
import { chooseMedia, codecFor, formatsToOffer } from './transcode-plan.ts';
import type { CodecCatalog, TranscodingSupport } from './transcode-plan.ts';
import {
  codecKey,
  intersection,
  isSupportedCodec,
  isSupportedTelephoneEvent,
  isTelephoneEvent,
  isUnspecifiedAddress,
  mirrorDirection,
  parseSdp,
  SdpError,
} from './sdp.ts';
import type { Codec, Direction, ParsedSdp } from './sdp.ts';
import type { LegMediaStats } from '../calls/types.ts';
import { SessionSrtp, type PendingSrtp, type SdpSrtp } from './session-srtp.ts';
import { adoptNumbers, newLegState, numberFor, renderLeg, type LegState } from './leg-sdp.ts';
import type { LegPeer, LegSecurity } from './srtp-policy.ts';

export type SdpResult = { ok: true; sdp: string } | { ok: false; status: 488 | 400; reason: string };

/**
 * What the B2BUA uses for a call's media. SDP strings in and out; a failure is a SIP status to
 * answer the offer (or the answer's transaction) with. Created by a {@link MediaSessionFactory},
 * it owns one relay; `close()` releases it (idempotent).
 */
export interface MediaSession {
  /**
   * The address written into c= for this leg (the gateway's address facing that leg). Set it
   * before the first SDP for the leg is written: offer/answer/reoffer throw without it.
   */
  setLocalAddress(leg: LegName, address: string): void;
  /** An offer arrived from `from` (initial INVITE or re-INVITE/UPDATE): returns the offer to send to the other leg. */
  offer(from: LegName, sdp: string): SdpResult;
  /**
   * The answer to the last offer arrived from `from`: returns the answer to send to the other leg.
   * The same leg may answer again before a new offer (SDP in a 18x, then in the 2xx): the newer
   * answer replaces the earlier one.
   * After {@link reoffer} there is nothing to send on: the result then carries the gateway's
   * current (unchanged) description of the other leg.
   */
  answer(from: LegName, sdp: string): SdpResult;
  /**
   * Echo target: answers `sdp` from `from` directly and turns the relay into an echo. Later offers
   * from that leg (hold, refresh) go through answerLocally too: there is no other leg to offer to.
   */
  answerLocally(from: LegName, sdp: string): SdpResult;
  /**
   * A fresh offer for leg `to` describing the current media (used after a transfer re-targets leg
   * b, and for re-INVITEs the gateway starts). While the other leg's offer is still unanswered it
   * is that offer again (to send it to a new target). Throws when no media was ever offered.
   */
  reoffer(to: LegName): string;
  /**
   * Who is on the leg and over which transports its signalling runs: decides the leg's SRTP
   * policy and whether SDES keys may travel there (`srtp-policy.ts`). Set before the leg's first
   * SDP; a leg never set has no SRTP.
   */
  setLegPeer?(leg: LegName, peer: LegPeer): void;
  /** Milliseconds since RTP last arrived on the leg (relay.idleMs). */
  idleMs(leg: LegName): number;
  /** The leg's codec, packet counts, its phone's RTCP figures and, while keyed, its SRTP suite and refusals, for `status`. */
  stats?(leg: LegName): LegMediaStats;
  close(): void;
}

/** Creates media sessions; `create()` rejects when no RTP ports are left. */
export interface MediaSessionFactory {
  create(): Promise<MediaSession>;
}

type Pending =
  | { kind: 'relay'; from: LegName; offer: ParsedSdp; sent: Codec[]; srtp: PendingSrtp }
  | { kind: 'reoffer'; from: LegName; sent: Codec[]; srtp: PendingSrtp };

const other = (leg: LegName): LegName => (leg === 'a' ? 'b' : 'a');
const fail = (status: 400 | 488, reason: string): SdpResult => ({ ok: false, status, reason });

/** `c` with `fmtp` instead of its own (none when undefined). */
function withFmtp(c: Codec, fmtp: string | undefined): Codec {
  const { fmtp: _own, ...rest } = c;
  return fmtp === undefined ? rest : { ...rest, fmtp };
}

function failure(err: unknown): SdpResult {
  if (err instanceof SdpError) return fail(err.status, err.message);
  throw err;
}

/** The offer's supported audio codecs (relayed, or known to `support`) and telephone-event formats. */
function relayable(offer: ParsedSdp, support?: TranscodingSupport): { codecs: Codec[]; events: Codec[] } {
  return {
    codecs: offer.audio.codecs.filter((c) => isSupportedCodec(c) || (support !== undefined && codecFor(support, c) !== undefined)),
    events: offer.audio.telephoneEvents.filter(isSupportedTelephoneEvent),
  };
}

/** Options of a {@link RelayedMediaSession} beyond its relay and random source. */
export interface MediaSessionOptions {
  /** With it the gateway offers codecs it can transcode to and transcodes when the legs differ. */
  support?: TranscodingSupport;
  logger?: Logger;
  /** The SRTP policy of a leg from its peer (see `srtp-policy.ts`); without it no leg has SRTP. */
  srtp?: (peer: LegPeer) => LegSecurity;
}

/** A {@link MediaSession} over one {@link MediaRelay}: relaying, or transcoding when the legs share no codec. */
export class RelayedMediaSession implements MediaSession {
  private readonly legs: Record<LegName, LegState> = { a: newLegState(), b: newLegState() };
  private pending: Pending | undefined;
  /** The last answered offer and the leg that answered it. */
  private answered: { pending: Pending; by: LegName } | undefined;
  /** Identities of the formats both legs agreed on, in preference order (relaying). */
  private negotiated: string[] | undefined;
  /** The codec of each leg (transcoding). */
  private transcoding: Transcoding | undefined;
  private readonly routing: RelayRouting;
  private readonly srtp: SessionSrtp;
  private closed = false;

  constructor(
    private readonly relay: MediaRelay,
    private readonly random: Random,
    private readonly username = 'hookswitch',
    private readonly options: MediaSessionOptions = {},
  ) {
    this.routing = new RelayRouting(relay, random, options.support, options.logger);
    this.srtp = new SessionSrtp(relay, random, options.srtp, options.logger);
  }

  setLocalAddress(leg: LegName, address: string): void {
    this.legs[leg].localAddress = address;
  }

  setLegPeer(leg: LegName, peer: LegPeer): void {
    this.srtp.setPeer(leg, peer);
  }

  stats(leg: LegName): LegMediaStats {
    const own = this.relay.stats(leg);
    const out: LegMediaStats = { packetsIn: own.received, packetsOut: this.relay.stats(other(leg)).forwarded };
    const codec = this.codecOf(leg);
    if (codec !== undefined) out.codec = `${codec.name}/${codec.rate}`;
    const report = this.relay.report?.(leg);
    if (report !== undefined) {
      out.lossPercent = report.fractionLostPercent;
      out.lost = report.cumulativeLost;
      // RFC 3550 §6.4.1: jitter is "expressed in timestamp units", the codec's RTP clock.
      if (codec !== undefined) out.jitterMs = (report.jitterUnits * 1000) / codec.rate;
      if (report.rttMs !== undefined) out.rttMs = report.rttMs;
    }
    const suite = this.srtp.suite(leg);
    if (suite !== undefined) {
      const d = own.srtp;
      out.srtp = { suite, authFailed: d?.authFailed ?? 0, replayed: d?.replayed ?? 0, other: (d?.invalid ?? 0) + (d?.protectFailed ?? 0) };
    }
    return out;
  }

  offer(from: LegName, sdp: string): SdpResult {
    let offer: ParsedSdp;
    try {
      offer = parseSdp(sdp, { srtp: true });
    } catch (err) {
      return failure(err);
    }
    const { codecs, events } = relayable(offer, this.options.support);
    // An offer without a codec the gateway can relay or decode cannot be met.
    if (codecs.length === 0) return fail(488, 'no supported audio codec in the offer');
    const to = other(from);
    const srtp = this.srtp.exchange(from, offer.audio);
    if (!srtp.ok) return srtp;
    this.setRemote(from, offer);
    const sent = numberFor(this.legs[to], this.toOffer(codecs, events, offer));
    const body = this.render(to, undefined, sent, offer.audio.direction, offer.audio.ptime, srtp.offer);
    this.pending = { kind: 'relay', from, offer, sent, srtp };
    this.answered = undefined;
    return { ok: true, sdp: body };
  }

  answer(from: LegName, sdp: string): SdpResult {
    // An answer seen early (18x) may come again in the 2xx: it is applied to the same offer.
    const pending = this.pending ?? (this.answered?.by === from ? this.answered.pending : undefined);
    if (pending === undefined || pending.from === from) return fail(400, `no offer outstanding towards leg ${from}`);
    let answer: ParsedSdp;
    try {
      answer = parseSdp(sdp, { srtp: true });
    } catch (err) {
      // Includes RFC 3264 §6 rejection of the audio stream (port 0): nothing left to relay.
      return failure(err);
    }
    const keys = this.srtp.answered(from, answer.audio, pending.srtp);
    if (!keys.ok) return keys;
    // RFC 3264 §6.1: the answer lists a subset of the offered formats, possibly renumbered.
    const all = intersection(pending.sent, [...answer.audio.codecs, ...answer.audio.telephoneEvents]);
    const offerer = pending.from;
    const offererFormats = pending.kind === 'relay' ? [...pending.offer.audio.codecs, ...pending.offer.audio.telephoneEvents] : this.legs[offerer].peer;
    const choice = chooseMedia(offererFormats, all, this.options.support);
    if (choice.kind === 'none') return fail(488, choice.reason);
    this.pending = undefined;
    this.answered = { pending, by: from };
    this.srtp.settle(from, keys.keys, pending.srtp);
    this.setRemote(from, answer);
    const answerer = this.legs[from];
    answerer.peerDirection = answer.audio.direction;
    answerer.peerPtime = answer.audio.ptime;
    if (choice.kind === 'transcode') {
      const { support } = this.options;
      const codecOf = (c: Codec): AudioCodec => codecFor(support!, c)!;
      // Its events stay known even when not relayed, so that they are dropped knowingly.
      answerer.peer = [choice.answerer, ...all.filter(isTelephoneEvent)];
      const keys = { [offerer]: codecKey(choice.offerer), [from]: codecKey(choice.answerer) } as Record<LegName, string>;
      const codecs = { [offerer]: codecOf(choice.offerer), [from]: codecOf(choice.answerer) } as Record<LegName, AudioCodec>;
      this.transcoding = { keys, codecs, event: choice.events === undefined ? undefined : codecKey(choice.events.answerer) };
      this.negotiated = undefined;
      if (pending.kind === 'reoffer') {
        this.updatePayloadMaps();
        return { ok: true, sdp: this.legs[offerer].lastSdp ?? '' };
      }
      // The offerer's leg is answered with the codec the gateway transcodes to and from there.
      const back: Codec[] = [withFmtp(choice.offerer, codecs[offerer].info.fmtp)];
      if (choice.events !== undefined) back.push(withFmtp(choice.events.offerer, choice.events.answerer.fmtp));
      const state = this.legs[offerer];
      state.peer = back;
      state.peerDirection = pending.offer.audio.direction;
      state.peerPtime = pending.offer.audio.ptime;
      adoptNumbers(this.legs[offerer], back);
      const body = this.render(offerer, pending.offer, back, answer.audio.direction, TRANSCODE_PTIME, pending.srtp.answer);
      this.updatePayloadMaps();
      return { ok: true, sdp: body };
    }
    const answered = choice.codecs;
    answerer.peer = answered;
    this.negotiated = answered.map(codecKey);
    this.transcoding = undefined;

    if (pending.kind === 'reoffer') {
      this.updatePayloadMaps();
      return { ok: true, sdp: this.legs[offerer].lastSdp ?? '' };
    }
    // The offering leg gets back its own numbers for what the answerer chose, with the answerer's
    // fmtp (they state what the answerer accepts).
    const offered = [...pending.offer.audio.codecs, ...pending.offer.audio.telephoneEvents];
    const back = answered.map((c) => ({ ...c, pt: offered.find((o) => codecKey(o) === codecKey(c))!.pt }));
    const state = this.legs[offerer];
    state.peer = intersection(answered, offered);
    state.peerDirection = pending.offer.audio.direction;
    state.peerPtime = pending.offer.audio.ptime;
    adoptNumbers(this.legs[offerer], back);
    // The answer states the answerer's direction: it already reads from the answering side.
    const body = this.render(offerer, pending.offer, back, answer.audio.direction, answer.audio.ptime, pending.srtp.answer);
    this.updatePayloadMaps();
    return { ok: true, sdp: body };
  }

  answerLocally(from: LegName, sdp: string): SdpResult {
    let offer: ParsedSdp;
    try {
      offer = parseSdp(sdp, { srtp: true });
    } catch (err) {
      return failure(err);
    }
    const { codecs, events } = relayable(offer, this.options.support);
    const codec = codecs[0];
    if (codec === undefined) return fail(488, 'no supported audio codec in the offer');
    const srtp = this.srtp.answerLocally(from, offer.audio);
    if (!srtp.ok) return srtp;
    // RFC 4733 §2.1: events use the clock rate of the audio codec they accompany.
    const event = events.find((e) => e.rate === codec.rate);
    const chosen = event === undefined ? [codec] : [codec, event];
    this.pending = undefined;
    this.answered = undefined;
    this.setRemote(from, offer);
    this.relay.setPayloadMap(from, new Map());
    this.stopTranscoding();
    this.relay.setEcho(true);
    const state = this.legs[from];
    state.peer = chosen;
    state.peerDirection = offer.audio.direction;
    state.peerPtime = offer.audio.ptime;
    this.negotiated = chosen.map(codecKey);
    adoptNumbers(this.legs[from], chosen);
    return { ok: true, sdp: this.render(from, offer, chosen, mirrorDirection(offer.audio.direction), offer.audio.ptime, srtp.answer) };
  }

  reoffer(to: LegName): string {
    const from = other(to);
    const pending = this.pending;
    if (pending?.kind === 'relay' && pending.from === from) {
      const { codecs, events } = relayable(pending.offer, this.options.support);
      const sent = numberFor(this.legs[to], this.toOffer(codecs, events, pending.offer));
      pending.sent = sent;
      pending.srtp.offer = this.srtp.offerTo(to);
      return this.render(to, undefined, sent, pending.offer.audio.direction, pending.offer.audio.ptime, pending.srtp.offer);
    }
    const negotiated = this.negotiated;
    if (negotiated === undefined && this.transcoding === undefined) throw new Error(`reoffer(${to}) before any media was offered`);
    const source = this.legs[from];
    let current = negotiated === undefined ? source.peer : source.peer.filter((c) => negotiated.includes(codecKey(c)));
    if (this.options.support !== undefined) {
      const events = current.filter(isTelephoneEvent);
      current = [...formatsToOffer(current.filter((c) => !isTelephoneEvent(c)), events.map((c) => c.pt), this.options.support), ...events];
    }
    const sent = numberFor(this.legs[to], current);
    const srtp: PendingSrtp = { offer: this.srtp.offerTo(to) };
    // The gateway presents the other leg's media: its direction and packetisation.
    const body = this.render(to, undefined, sent, source.peerDirection, source.peerPtime, srtp.offer);
    this.pending = { kind: 'reoffer', from, sent, srtp };
    this.answered = undefined;
    return body;
  }

  idleMs(leg: LegName): number {
    return this.relay.idleMs(leg);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.relay.close();
  }

  /** The formats offered on: the offer's relayable ones, then what the gateway transcodes to. */
  private toOffer(codecs: Codec[], events: Codec[], offer: ParsedSdp): Codec[] {
    const taken = [...offer.audio.codecs, ...offer.audio.telephoneEvents].map((c) => c.pt);
    return [...formatsToOffer(codecs, taken, this.options.support), ...events];
  }

  /** Points the relay at the peer's media, unless it said "send nothing" (c=0.0.0.0). */
  private setRemote(leg: LegName, sdp: ParsedSdp): void {
    const { address, port, rtcpPort } = sdp.audio;
    if (isUnspecifiedAddress(address)) return;
    const peer: RelayPeer = { address, port };
    if (rtcpPort !== undefined) peer.rtcpPort = rtcpPort;
    this.relay.setRemote(leg, peer);
  }

  /** Writes the gateway's description on `leg` (`leg-sdp.ts`): an answer to `offer`, or (none) an offer. */
  private render(leg: LegName, offer: ParsedSdp | undefined, codecs: readonly Codec[], direction: Direction, ptime?: number, srtp?: SdpSrtp): string {
    return renderLeg(leg, this.legs[leg], { offer, codecs, direction, ptime, srtp }, { relay: this.relay, username: this.username, random: this.random });
  }

  /** Programs the relay for what was negotiated: payload maps, or transcoders (`relay-routing.ts`). */
  private updatePayloadMaps(): void {
    if (this.transcoding !== undefined) this.routing.transcode(this.transcoding, this.legs);
    else this.routing.relay(this.negotiated ?? [], this.legs);
  }

  /** The audio codec on `leg` as its peer numbered it: its own when transcoding, else the first agreed. */
  private codecOf(leg: LegName): Codec | undefined {
    const key = this.transcoding?.keys[leg] ?? this.negotiated?.find((k) => !k.startsWith('telephone-event/'));
    return key === undefined ? undefined : this.legs[leg].peer.find((c) => codecKey(c) === key);
  }

  private stopTranscoding(): void {
    this.transcoding = undefined;
    this.routing.stop();
  }
}

/** Options of {@link relayedMediaFactory}. */
export interface RelayedMediaFactoryOptions {
  random: Random;
  /** The o= user name (default "hookswitch"; white space becomes "-"). */
  username?: string;
  /**
   * The codecs the gateway can decode and encode (a `CodecRegistry`, preference order). Without
   * it nothing is transcoded: an offer needs a codec the relay passes through, as before.
   */
  codecs?: CodecCatalog;
  /** Resamplers for transcoding between sample rates (else only equal-rate codecs are paired). */
  resamplers?: ResamplerFactory;
  /** Gets the transcoders' warnings (telephone-event that cannot be relayed) and the SRTP refusals. */
  logger?: Logger;
  /** The SRTP policy of a leg from its peer (`legSecurity` over the running config); without it no SRTP. */
  srtp?: (peer: LegPeer) => LegSecurity;
}

/**
 * Media sessions over RTP relays from `relays`: `create()` opens a relay (rejecting when the port
 * range is exhausted) and wraps it; the session's `close()` closes the relay.
 */
export function relayedMediaFactory(relays: Pick<RtpRelayFactory, 'open'>, opts: RelayedMediaFactoryOptions): MediaSessionFactory {
  const username = (opts.username ?? 'hookswitch').replace(/[\s]/g, '-') || '-';
  const options: MediaSessionOptions = {};
  if (opts.codecs !== undefined) options.support = opts.resamplers === undefined ? { codecs: opts.codecs } : { codecs: opts.codecs, resamplers: opts.resamplers };
  if (opts.logger !== undefined) options.logger = opts.logger;
  if (opts.srtp !== undefined) options.srtp = opts.srtp;
  return {
    async create(): Promise<MediaSession> {
      const relay = await relays.open();
      return new RelayedMediaSession(relay, opts.random, username, options);
    },
  };
}
