/**
 * The SRTP side of one relayed media session (`media-session.ts`): each leg's security (from
 * its peer), the keys it settled, and the SDES plans of the exchange in progress; settled keys go
 * to the relay (`MediaRelay.setSrtp`). The decisions themselves are in `srtp-negotiation.ts`.
 * Pure apart from the relay call and one warning per refusal.
 */
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import type { LegName, MediaRelay } from './rtp-relay.ts';
import type { AudioDescription } from './sdp.ts';
import { isSecureProfile } from './sdp.ts';
import { acceptAnswer, answerOffer, makeOffer, type AnswerPlan, type LegKeys, type OfferPlan, type SrtpRefusal } from './srtp-negotiation.ts';
import { NO_SRTP, type LegPeer, type LegSecurity } from './srtp-policy.ts';

/** The SDES plans of one exchange, kept with the media session's pending offer. */
export interface PendingSrtp {
  /** The gateway's answer on the leg whose offer it relayed (absent for the gateway's own re-offers). */
  answer?: AnswerPlan & { secure: boolean };
  /** The gateway's offer on the other leg, or why the leg could not get one. */
  offer: OfferPlan | SrtpRefusal;
}

/** The `a=crypto` and, for an offer, the profile the gateway writes on a leg; a refused offer plan writes plain RTP. */
export type SdpSrtp = { crypto: readonly string[]; secureProfile?: boolean } | { ok: false };

/** A refusal as the media session returns it (a SIP status and reason). */
export type SrtpFailure = { ok: false; status: 488; reason: string };

const other = (leg: LegName): LegName => (leg === 'a' ? 'b' : 'a');

/** See the module comment. */
export class SessionSrtp {
  private readonly security: Partial<Record<LegName, LegSecurity>> = {};
  private readonly keys: Record<LegName, LegKeys | undefined> = { a: undefined, b: undefined };
  /** The leg's SRTP was settled on RTP/SAVP: later offers keep that profile. */
  private readonly savp: Record<LegName, boolean> = { a: false, b: false };

  constructor(
    private readonly relay: Pick<MediaRelay, 'setSrtp'>,
    private readonly random: Random,
    private readonly resolve: ((peer: LegPeer) => LegSecurity) | undefined,
    private readonly logger: Logger | undefined,
  ) {}

  /** The leg's peer; its security is fixed from here on (a transfer sets the new target's). */
  setPeer(leg: LegName, peer: LegPeer): void {
    this.security[leg] = this.resolve === undefined ? NO_SRTP : this.resolve(peer);
  }

  /** An offer arrived on `from`: the gateway's answer there and its offer to the other leg, or the refusal. */
  exchange(from: LegName, audio: AudioDescription): ({ ok: true } & PendingSrtp) | SrtpFailure {
    const answer = answerOffer(audio, this.securityOf(from), this.random, this.keys[from]);
    if (!answer.ok) return this.refused(from, answer);
    const offer = this.offerTo(other(from));
    if (!offer.ok) return { ok: false, status: 488, reason: offer.reason };
    return { ok: true, answer: { ...answer, secure: isSecureProfile(audio.protocol) }, offer };
  }

  /** The gateway's offer to `to` (a refusal is logged; the offer is then written without SRTP). */
  offerTo(to: LegName): OfferPlan | SrtpRefusal {
    const plan = makeOffer(this.securityOf(to), this.random, this.keys[to], this.savp[to]);
    if (!plan.ok) this.refused(to, plan);
    return plan;
  }

  /** The keys an answer from `from` settles under the exchange's plans, or the refusal. */
  answered(from: LegName, audio: AudioDescription, pending: PendingSrtp): { ok: true; keys: LegKeys | undefined } | SrtpFailure {
    if (!pending.offer.ok) return { ok: false, status: 488, reason: pending.offer.reason };
    const keys = acceptAnswer(audio, pending.offer);
    return keys.ok ? keys : this.refused(from, keys);
  }

  /** The exchange completed: `from` answered with `keys`; the offering leg gets the answer's keys. */
  settle(from: LegName, keys: LegKeys | undefined, pending: PendingSrtp): void {
    this.use(from, keys, pending.offer.ok && pending.offer.secureProfile);
    if (pending.answer !== undefined) this.use(other(from), pending.answer.keys, pending.answer.secure);
  }

  /** The suite the gateway sends to `leg` with while the leg is keyed; undefined for plain RTP. */
  suite(leg: LegName): string | undefined {
    return this.keys[leg]?.local.suite;
  }

  /** An offer on `from` answered by the gateway itself (echo): settled at once. */
  answerLocally(from: LegName, audio: AudioDescription): ({ ok: true; answer: AnswerPlan }) | SrtpFailure {
    const answer = answerOffer(audio, this.securityOf(from), this.random, this.keys[from]);
    if (!answer.ok) return this.refused(from, answer);
    this.use(from, answer.keys, isSecureProfile(audio.protocol));
    return { ok: true, answer };
  }

  private use(leg: LegName, keys: LegKeys | undefined, savp: boolean): void {
    this.keys[leg] = keys;
    this.savp[leg] = keys !== undefined && savp;
    this.relay.setSrtp?.(leg, keys);
  }

  private securityOf(leg: LegName): LegSecurity {
    return this.security[leg] ?? (this.resolve === undefined ? NO_SRTP : this.resolve({ transports: [] }));
  }

  private refused(leg: LegName, r: SrtpRefusal): SrtpFailure {
    const sec = this.securityOf(leg);
    const msg = r.plainSignalling ? 'SRTP keys refused over plain signalling' : 'SRTP negotiation refused';
    this.logger?.warn(msg, { leg, policy: sec.policy, transport: sec.transport, reason: r.reason });
    return { ok: false, status: 488, reason: r.reason };
  }
}
