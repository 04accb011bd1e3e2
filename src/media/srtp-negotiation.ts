/**
 * SDES (RFC 4568) offer/answer for the two legs of a relayed call, under each leg's
 * {@link LegSecurity}: what the gateway answers to an offer's `a=crypto`, what it offers, what
 * it takes from an answer, and the keys each leg ends up with. Pure: the media session
 * (`media-session.ts`) calls it while it writes SDP and hands the settled keys to the relay.
 *
 * Each leg has its own keys (RFC 4568 §5.1.1: "each endpoint determines its own transmission
 * keys"), so SRTP legs are re-keyed by the relay (decrypt, encrypt) and an SRTP leg bridges to a
 * plain one. The gateway keeps its sending key on a leg across exchanges while the suite stays
 * (RFC 4568 §7.1.4 lets an offerer keep its key): the relay then keeps the sending context and
 * its packet index, so a refresh re-INVITE never restarts a keystream.
 */
import type { Random } from '../runtime/random.ts';
import { answerSdesOffer, formatSdesCrypto, generateSdesOffer, parseSdesCrypto, type SdesCrypto } from './srtp/sdes.ts';
import { isSecureProfile } from './sdp.ts';
import type { LegSecurity } from './srtp-policy.ts';

/** The keys of one SRTP leg: ours (what the gateway sends) and the peer's (what it receives). */
export interface LegKeys {
  local: SdesCrypto;
  remote: SdesCrypto;
}

/** What the SDP side of a leg says about SRTP: the m-line's protocol and its `a=crypto` values. */
export interface CryptoSdp {
  protocol: string;
  crypto: readonly string[];
}

/** A refusal of an exchange: 488 with a reason for the response and the log (never key material). */
export interface SrtpRefusal {
  ok: false;
  status: 488;
  reason: string;
  /** The refusal protects keys from plain signalling (RFC 4568 §8.1): worth a warning. */
  plainSignalling: boolean;
}

/** The gateway's answer to an offer on a leg: keys when SRTP, and the `a=crypto` to write. */
export interface AnswerPlan {
  ok: true;
  keys: LegKeys | undefined;
  crypto: string[];
}

/** The gateway's offer on a leg: the attributes offered (to match the answer) and the profile. */
export interface OfferPlan {
  ok: true;
  offered: SdesCrypto[];
  crypto: string[];
  /** RTP/SAVP(F) rather than RTP/AVP(F). */
  secureProfile: boolean;
}

/** The keys an answer settles on a leg (undefined: plain RTP). */
export type AnswerKeys = { ok: true; keys: LegKeys | undefined } | SrtpRefusal;

const refuse = (reason: string, plainSignalling = false): SrtpRefusal => ({ ok: false, status: 488, reason, plainSignalling });
const PLAIN_ANSWER: AnswerPlan = { ok: true, keys: undefined, crypto: [] };

/**
 * The answer to an offer arriving on a leg with security `sec` (`current`: the leg's keys so far):
 *
 * | offer                | off        | optional                  | mandatory                 |
 * |----------------------|------------|---------------------------|---------------------------|
 * | RTP/AVP              | plain      | plain                     | 488                       |
 * | RTP/AVP + a=crypto   | plain      | SRTP (plain without TLS)  | SRTP (488 without TLS)    |
 * | RTP/SAVP + a=crypto  | 488        | SRTP (488 without TLS)    | SRTP (488 without TLS)    |
 *
 * "Without TLS" means keys are not allowed on the leg. An offer whose attributes are all unusable
 * is answered plain when that is allowed (RTP/AVP, not mandatory), else refused (RFC 4568 §7.1.2:
 * "it MUST reject the media stream").
 */
export function answerOffer(offer: CryptoSdp, sec: LegSecurity, random: Random, current?: LegKeys): AnswerPlan | SrtpRefusal {
  const secure = isSecureProfile(offer.protocol);
  const hasCrypto = offer.crypto.length > 0;
  if (sec.policy === 'off') return secure ? refuse(`${offer.protocol} offered but SRTP is off for this leg`) : PLAIN_ANSWER;
  if (!sec.keysAllowed && (hasCrypto || secure)) {
    if (secure || sec.policy === 'mandatory') {
      return refuse(`SRTP keys (SDES) refused over ${sec.transport} signalling: keys travel only over TLS (media.srtpOverPlainSignalling allows it)`, true);
    }
    return PLAIN_ANSWER;
  }
  if (!hasCrypto) {
    if (sec.policy === 'mandatory') return refuse('SRTP is mandatory for this leg but the offer has no a=crypto');
    return secure ? refuse(`${offer.protocol} offered without a=crypto (only SDES keying is supported)`) : PLAIN_ANSWER;
  }
  const chosen = answerSdesOffer(offer.crypto, random);
  if (!chosen.ok) {
    if (secure || sec.policy === 'mandatory') return refuse(`no usable a=crypto: ${chosen.reasons.join('; ')}`);
    return PLAIN_ANSWER;
  }
  const local = keepOrFresh(current, chosen.remote, chosen.local);
  return { ok: true, keys: { local, remote: chosen.remote }, crypto: [formatSdesCrypto(local)] };
}

/**
 * The gateway's offer on a leg with security `sec`: nothing when SRTP is off or keys may not
 * travel (488 when mandatory: the leg cannot be secured), else one `a=crypto` per suite (RFC 4568
 * §5.1.1), the leg's current sending key kept for its suite. RTP/SAVP when mandatory or when the
 * leg's SRTP was settled on RTP/SAVP (`savp`), else RTP/AVP (best effort).
 */
export function makeOffer(sec: LegSecurity, random: Random, current?: LegKeys, savp = false): OfferPlan | SrtpRefusal {
  if (sec.policy === 'off') return { ok: true, offered: [], crypto: [], secureProfile: false };
  if (!sec.keysAllowed) {
    if (sec.policy === 'mandatory') {
      return refuse(`SRTP is mandatory towards this leg but its signalling is ${sec.transport}, not TLS: SDES keys are not sent there`, true);
    }
    return { ok: true, offered: [], crypto: [], secureProfile: false };
  }
  const offered = generateSdesOffer(random).map((c) => (current !== undefined && current.local.suite === c.suite ? { ...current.local, tag: c.tag } : c));
  return { ok: true, offered, crypto: offered.map(formatSdesCrypto), secureProfile: sec.policy === 'mandatory' || savp };
}

/**
 * The keys an answer settles on a leg the gateway offered `plan` to (RFC 4568 §7.1.3: the
 * answer holds one `a=crypto` whose tag and suite name an offered one; §5.1.2 "the answerer
 * MUST NOT include more than one"). No `a=crypto` is plain RTP, unless the offer was RTP/SAVP.
 */
export function acceptAnswer(answer: CryptoSdp, plan: OfferPlan | undefined): AnswerKeys {
  const offered = plan?.offered ?? [];
  if (offered.length === 0) {
    return isSecureProfile(answer.protocol) ? refuse(`${answer.protocol} answer to an offer without SRTP`) : { ok: true, keys: undefined };
  }
  if (answer.crypto.length === 0) {
    return plan!.secureProfile ? refuse('the answer to an RTP/SAVP offer has no a=crypto') : { ok: true, keys: undefined };
  }
  if (answer.crypto.length > 1) return refuse(`the answer has ${answer.crypto.length} a=crypto attributes (RFC 4568 §5.1.2 allows one)`);
  const parsed = parseSdesCrypto(answer.crypto[0]!);
  if (!parsed.ok) return refuse(`unusable a=crypto in the answer: ${parsed.reason}`);
  const remote = parsed.crypto;
  const local = offered.find((c) => c.tag === remote.tag && c.suite === remote.suite);
  if (local === undefined) return refuse(`the answer's a=crypto tag ${remote.tag} ${remote.suite} was not offered`);
  if (remote.keys.length !== 1) return refuse(`the answer's a=crypto has ${remote.keys.length} keys, one is supported`);
  return { ok: true, keys: { local, remote } };
}

/** `protocol` as RTP/SAVP(F) or RTP/AVP(F) (RFC 3711 §12, RFC 5124), keeping feedback. */
export function rtpProfile(protocol: string, secure: boolean): string {
  const feedback = /F$/i.test(protocol) ? 'F' : '';
  return `RTP/${secure ? 'S' : ''}AVP${feedback}`;
}

/**
 * Our key for an answer: the leg's current one when its suite is the chosen one and it differs
 * from the offered key (RFC 4568 §5.1.2: "MUST be different from those in the offer"), else the
 * fresh one; always with the offer's tag.
 */
function keepOrFresh(current: LegKeys | undefined, remote: SdesCrypto, fresh: SdesCrypto): SdesCrypto {
  const mine = current?.local;
  if (mine === undefined || mine.suite !== remote.suite || mine.keys.length !== 1) return fresh;
  const same = mine.keys[0]!.masterKey.equals(remote.keys[0]!.masterKey);
  return same ? fresh : { ...mine, tag: remote.tag };
}
