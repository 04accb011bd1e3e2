/**
 * The per-leg fields of the relay's closing log line that only some relays have: transcoding
 * counters and SRTP refusals (pure formatting).
 */
import type { LegName } from '../rtp-relay.ts';
import type { PacketTranscoder } from '../transcoder.ts';
import type { RelayLeg } from './relay-leg.ts';

/** `aSrtpAuthFailed`, `aSrtpReplayed`, ... of a leg that had SRTP keys; nothing for a plain leg. */
export function srtpFields(leg: RelayLeg): Record<string, number> {
  if (!leg.srtpUsed) return {};
  const d = leg.srtpDrops;
  return { [`${leg.name}SrtpAuthFailed`]: d.authFailed, [`${leg.name}SrtpReplayed`]: d.replayed, [`${leg.name}SrtpInvalid`]: d.invalid, [`${leg.name}SrtpProtectFailed`]: d.protectFailed };
}

/** `aDecoded`, `aEncoded`, ... of the transcoder of a leg, if any. */
export function transcoderFields(leg: LegName, t: PacketTranscoder | undefined): Record<string, number> {
  if (t === undefined) return {};
  const s = t.stats;
  return { [`${leg}Decoded`]: s.decoded, [`${leg}Concealed`]: s.concealed, [`${leg}Encoded`]: s.sent, [`${leg}TranscodeDropped`]: s.dropped };
}
