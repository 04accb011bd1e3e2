/**
 * The gateway's side of the SDP on one leg of a relayed media session (`media-session.ts`): what
 * it last wrote there (o= line and version, m-lines, profile), the payload numbers it uses and
 * what each ever meant (RFC 3264 §8.3.2), and what the peer on the leg negotiated. Pure: the
 * session owns one {@link LegState} per leg and calls these functions on it.
 */
import type { Random } from '../runtime/random.ts';
import type { LegName, MediaRelay } from './rtp-relay.ts';
import { buildSdp, codecKey } from './sdp.ts';
import type { Codec, Direction, MediaLine, ParsedSdp, SdpOrigin } from './sdp.ts';
import type { SdpSrtp } from './session-srtp.ts';
import { rtpProfile } from './srtp-negotiation.ts';
import { DYNAMIC_PAYLOAD_TYPES } from './transcode-plan.ts';

/** Per-leg state: what the gateway last said on the leg, and what the peer on it last said. */
export interface LegState {
  localAddress?: string;
  origin?: SdpOrigin;
  /** The gateway's last description on this leg without its o= version (RFC 3264 §8 comparison). */
  lastContent?: string;
  lastSdp?: string;
  /** m-lines of the gateway's last description on this leg (RFC 3264 §8: later ones keep them). */
  media: MediaLine[];
  audioIndex: number;
  protocol: string;
  /** Payload numbers the gateway uses on this leg, by codec identity (RFC 3264 §8.3.2). */
  gatewayPts: Map<string, number>;
  /** Every number the gateway ever wrote on this leg and the codec it meant (RFC 3264 §8.3.2). */
  ptMeaning: Map<number, string>;
  /** Negotiated formats in the peer's numbering (what it declared it receives). */
  peer: Codec[];
  peerDirection: Direction;
  peerPtime?: number;
}

/** The state of a leg nothing was said on yet. */
export function newLegState(): LegState {
  return { media: [], audioIndex: 0, protocol: 'RTP/AVP', gatewayPts: new Map(), ptMeaning: new Map(), peer: [], peerDirection: 'sendrecv' };
}

/** A description without its o= line: what RFC 3264 §8 compares to decide on a new version. */
const withoutOrigin = (sdp: string): string => sdp.replace(/^o=.*\r\n/m, '');

/**
 * The gateway's payload numbers on a leg for `codecs`. RFC 3264 §8.3.2: a number keeps its
 * meaning for the whole session, so a codec the gateway already numbered on this leg keeps its
 * number; a new one keeps the source's number when free there, else takes a free dynamic one.
 */
export function numberFor(state: LegState, codecs: readonly Codec[]): Codec[] {
  const meaning = new Map(state.ptMeaning);
  const out: Codec[] = [];
  for (const c of codecs) {
    const key = codecKey(c);
    const free = (pt: number): boolean => (meaning.get(pt) ?? key) === key;
    let pt = state.gatewayPts.get(key);
    if (pt === undefined || out.some((o) => o.pt === pt)) {
      pt = free(c.pt) ? c.pt : DYNAMIC_PAYLOAD_TYPES.find((n) => !meaning.has(n));
      if (pt === undefined) continue;
    }
    meaning.set(pt, key);
    out.push({ ...c, pt });
  }
  return out;
}

/** Records numbers the gateway uses on a leg (an answer reuses the offerer's, RFC 3264 §6.1). */
export function adoptNumbers(state: LegState, codecs: readonly Codec[]): void {
  const pts = state.gatewayPts;
  for (const c of codecs) {
    for (const [key, pt] of pts) if (pt === c.pt) pts.delete(key);
    pts.set(codecKey(c), c.pt);
  }
}

/** What {@link renderLeg} writes: the audio stream's formats, direction, packetisation and SRTP. */
export interface LegDescription {
  /** The offer answered (its m-lines are mirrored); undefined: the gateway offers. */
  offer: ParsedSdp | undefined;
  codecs: readonly Codec[];
  direction: Direction;
  ptime?: number | undefined;
  srtp?: SdpSrtp | undefined;
}

/** Where {@link renderLeg} takes the leg's relay port, the o= user name and new session ids from. */
export interface LegSdpContext {
  relay: Pick<MediaRelay, 'localPort'>;
  username: string;
  random: Random;
}

/**
 * Writes the gateway's description on `leg` and records it in `state`: an answer mirroring
 * `d.offer`'s m-lines, or (no offer) an offer keeping the m-lines of the gateway's previous
 * description on the leg. Throws when the leg has no local address yet.
 */
export function renderLeg(leg: LegName, state: LegState, d: LegDescription, ctx: LegSdpContext): string {
  const { offer, codecs, direction, ptime, srtp } = d;
  const address = state.localAddress;
  if (address === undefined) throw new Error(`no local address set for leg ${leg}`);
  if (offer !== undefined) {
    // RFC 3264 §6: "The answer MUST contain exactly the same number of "m=" lines as the offer."
    state.media = offer.media;
    state.audioIndex = offer.audioIndex;
    state.protocol = offer.audio.protocol;
  } else if (state.media.length === 0) {
    state.media = [{ type: 'audio', port: 0, protocol: 'RTP/AVP', formats: '' }];
    state.audioIndex = 0;
  }
  for (const c of codecs) {
    state.gatewayPts.set(codecKey(c), c.pt);
    state.ptMeaning.set(c.pt, codecKey(c));
  }
  const port = ctx.relay.localPort(leg);
  // RFC 3264 §6: an answer keeps the offer's profile; an offer takes the one the leg's policy asks for.
  const plan = srtp === undefined || 'crypto' in srtp ? srtp : { crypto: [], secureProfile: false };
  const protocol = offer !== undefined || plan?.secureProfile === undefined ? state.protocol : rtpProfile(state.protocol, plan.secureProfile);
  const crypto = plan?.crypto ?? [];
  const audio = { port, protocol, codecs, direction, rtcpPort: port + 1, ...(ptime === undefined ? {} : { ptime }), ...(crypto.length > 0 ? { crypto } : {}) };
  const spec = { address, media: state.media, audioIndex: state.audioIndex, audio };
  if (state.origin === undefined) {
    state.origin = { username: ctx.username, sessionId: newSessionId(ctx.random), version: 1, address };
  }
  let sdp = buildSdp({ ...spec, origin: state.origin });
  const content = withoutOrigin(sdp);
  if (state.lastContent !== undefined && content !== state.lastContent) {
    // RFC 3264 §8: "the version in the origin field MUST increment by one from the previous SDP.
    // If the version in the origin line does not increment, the SDP MUST be identical".
    state.origin = { ...state.origin, version: state.origin.version + 1 };
    sdp = buildSdp({ ...spec, origin: state.origin });
  }
  state.lastContent = content;
  state.lastSdp = sdp;
  return state.lastSdp;
}

/** RFC 4566 §5.2: a numeric session id; 48 random bits keep it a safe integer. */
function newSessionId(random: Random): string {
  return String(random.bytes(6).readUIntBE(0, 6));
}
