/**
 * The SRTP policy of one call leg (`media.srtp`, overridden by `extensions.<n>.srtp` and
 * `trunks[i].srtp`) and whether SDES keys may travel on the leg's signalling. Pure.
 *
 * - `off`: plain RTP only; an RTP/SAVP offer is refused (488), `a=crypto` on RTP/AVP ignored.
 * - `optional` (the default): SRTP when the peer wants it, plain RTP otherwise; the gateway offers
 *   RTP/AVP with `a=crypto` (best effort, a plain phone ignores the attribute and answers plain).
 * - `mandatory`: the leg carries SRTP or no call: offers are RTP/SAVP, answers without keys and
 *   offers without `a=crypto` are refused (488).
 *
 * SDES puts the master key in the SDP in clear (RFC 4568 §8.1: "the SDP description MUST be
 * protected"), so keys are sent and accepted only on legs whose signalling is TLS, unless
 * `media.srtpOverPlainSignalling` allows it: without TLS an `optional` leg stays plain RTP and a
 * `mandatory` leg is refused with 488.
 */

/** A leg's SRTP policy as configured. */
export type SrtpPolicy = 'off' | 'optional' | 'mandatory';

/** The policies, for config checking and the schema. */
export const SRTP_POLICIES: readonly SrtpPolicy[] = ['off', 'optional', 'mandatory'];

/** The SIP transports a leg's signalling may use. */
export type SignallingTransport = 'udp' | 'tcp' | 'tls';

/** Who is on a leg and how its signalling travels, as the call layer knows it. */
export interface LegPeer {
  /** The caller's transport, or the transport of every fork towards the callee. */
  transports: readonly SignallingTransport[];
  /** The extension on the leg (a phone registered to the gateway). */
  extension?: string;
  /** The trunk the leg goes to or comes from. */
  trunk?: string;
}

/** What the media session applies to one leg. */
export interface LegSecurity {
  policy: SrtpPolicy;
  /** SDES keys may be sent and accepted: the signalling is TLS on every path, or plain signalling is allowed. */
  keysAllowed: boolean;
  /** The leg's transports for log lines (`tls`, `udp`, `udp,tls`). */
  transport: string;
}

/** The configuration the policy is read from (a subset of `Config`). */
export interface SrtpSettings {
  media: { srtp?: SrtpPolicy; srtpOverPlainSignalling?: boolean };
  extensions: Readonly<Record<string, { srtp?: SrtpPolicy }>>;
  trunks: readonly { name: string; srtp?: SrtpPolicy }[];
}

/** `media.srtp` when the config names none. */
export const DEFAULT_SRTP_POLICY: SrtpPolicy = 'optional';

/**
 * The security of a leg: the extension's or trunk's own policy, else `media.srtp`; keys allowed
 * when every transport is TLS (none known counts as plain) or `media.srtpOverPlainSignalling`.
 */
export function legSecurity(settings: SrtpSettings, peer: LegPeer): LegSecurity {
  const own = peer.trunk !== undefined ? settings.trunks.find((t) => t.name === peer.trunk)?.srtp : peer.extension !== undefined ? settings.extensions[peer.extension]?.srtp : undefined;
  const policy = own ?? settings.media.srtp ?? DEFAULT_SRTP_POLICY;
  const tls = peer.transports.length > 0 && peer.transports.every((t) => t === 'tls');
  const transport = [...new Set(peer.transports)].join(',') || 'unknown';
  return { policy, keysAllowed: tls || settings.media.srtpOverPlainSignalling === true, transport };
}

/** A leg the gateway knows nothing about: no SRTP (what a media session without a policy source does). */
export const NO_SRTP: LegSecurity = { policy: 'off', keysAllowed: false, transport: 'unknown' };
