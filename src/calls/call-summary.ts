/**
 * The one line logged when a call ends (`call summary`): who called whom, where the call went,
 * why it ended, how long it rang and talked, and each slot's codec, packets, loss, jitter,
 * round trip and SRTP. Pure: the call passes its facts and its media's figures; the same record goes to
 * the {@link CallObserver} (the metrics).
 */
import type { LogFields } from '../runtime/logger.ts';
import type { CallEndSummary, LegMediaStats, LegName } from './types.ts';

/** What the call knows when it ends. Times are wall-clock ms since the epoch. */
export interface CallEndFacts {
  id: string;
  from: string;
  to: string;
  /** The dial plan target kind (`extension`, `trunk`, `device`, `echo`, ...). */
  target: string;
  /** Why it ended, as the `call ended` line says. */
  reason: string;
  /** The final status of a call that never connected. */
  status?: number;
  cancelled: boolean;
  startedAt: number;
  answeredAt?: number;
  endedAt: number;
  /** Each slot's media figures, read just before the media closed. */
  media: Partial<Record<LegName, LegMediaStats>>;
}

const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** The end-of-call record for the observer (whole seconds, as the log line shows them). */
export function callEndSummary(facts: CallEndFacts): CallEndSummary {
  const answered = facts.answeredAt !== undefined;
  return {
    target: facts.target,
    answered,
    cancelled: facts.cancelled,
    seconds: Math.max(0, Math.round((facts.endedAt - facts.startedAt) / 1000)),
    talkSeconds: answered ? Math.max(0, Math.round((facts.endedAt - facts.answeredAt!) / 1000)) : 0,
    media: facts.media,
  };
}

/**
 * The `call summary` fields: `call from to target reason [status] answered seconds talkSeconds`,
 * then the headline media figures (`codec`: the slots' codecs, distinct, joined with `,`;
 * `lossPercent` and `jitterMs`: the worse slot), then per slot `aCodec aPacketsIn aPacketsOut
 * aLost aLossPercent aJitterMs aRttMs` (and `b...`), and for an SRTP slot `aSrtp` (the suite)
 * and `aSrtpDropped` (datagrams SRTP refused), omitting what is unknown.
 */
export function callSummaryFields(facts: CallEndFacts): LogFields {
  const s = callEndSummary(facts);
  const fields: LogFields = {
    call: facts.id,
    from: facts.from,
    to: facts.to,
    target: facts.target,
    reason: facts.reason,
    status: facts.status,
    answered: s.answered,
    seconds: s.seconds,
    talkSeconds: s.talkSeconds,
  };
  const slots = (['a', 'b'] as const).filter((slot) => facts.media[slot] !== undefined);
  const all = slots.map((slot) => facts.media[slot]!);
  const codecs = [...new Set(all.map((m) => m.codec).filter((c) => c !== undefined))];
  if (codecs.length > 0) fields.codec = codecs.join(',');
  const worst = (pick: (m: LegMediaStats) => number | undefined): number | undefined => {
    const values = all.map(pick).filter((v) => v !== undefined);
    return values.length === 0 ? undefined : Math.max(...values);
  };
  const loss = worst((m) => m.lossPercent);
  const jitter = worst((m) => m.jitterMs);
  if (loss !== undefined) fields.lossPercent = round(loss, 2);
  if (jitter !== undefined) fields.jitterMs = round(jitter, 1);
  for (const slot of slots) {
    const m = facts.media[slot]!;
    fields[`${slot}Codec`] = m.codec;
    fields[`${slot}PacketsIn`] = m.packetsIn;
    fields[`${slot}PacketsOut`] = m.packetsOut;
    fields[`${slot}Lost`] = m.lost;
    fields[`${slot}LossPercent`] = m.lossPercent === undefined ? undefined : round(m.lossPercent, 2);
    fields[`${slot}JitterMs`] = m.jitterMs === undefined ? undefined : round(m.jitterMs, 1);
    fields[`${slot}RttMs`] = m.rttMs === undefined ? undefined : round(m.rttMs, 1);
    if (m.srtp !== undefined) {
      fields[`${slot}Srtp`] = m.srtp.suite;
      fields[`${slot}SrtpDropped`] = m.srtp.authFailed + m.srtp.replayed + m.srtp.other;
    }
  }
  for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
  return fields;
}
