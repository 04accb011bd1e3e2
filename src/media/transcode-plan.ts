/**
 * Codec choice for a B2BUA that can transcode (pure; used by `media-session.ts`): which formats
 * to offer the other leg, and, once it answered, whether the call is relayed untouched or
 * transcoded between two different codecs.
 */
import type { AudioCodec } from './codec/codec.ts';
import { codecId } from './codec/codec.ts';
import type { ResamplerFactory } from './resample/types.ts';
import { codecKey, isTelephoneEvent } from './sdp.ts';
import type { Codec } from './sdp.ts';

/** The codecs the gateway can decode and encode, in preference order (a `CodecRegistry`). */
export interface CodecCatalog {
  /** The codec for an SDP identity (name case-insensitive), if the gateway has it. */
  find(name: string, clockRate: number, channels?: number): AudioCodec | undefined;
  /** Every codec, most preferred first. */
  list(): readonly AudioCodec[];
}

/** What the media session needs to transcode: codecs and, between sample rates, resamplers. */
export interface TranscodingSupport {
  codecs: CodecCatalog;
  /** Without it only codecs of equal sample rate are transcoded into each other. */
  resamplers?: ResamplerFactory;
}

/** The outcome of an answer: relay `codecs` (answerer numbering) or transcode. */
export type MediaChoice =
  | { kind: 'relay'; codecs: Codec[] }
  | {
      kind: 'transcode';
      /** The offerer's format the gateway sends and receives on the offerer's leg (offerer numbering). */
      offerer: Codec;
      /** The answerer's chosen format (answerer numbering). */
      answerer: Codec;
      /** telephone-event on both legs at one clock rate (relayed), else undefined (dropped). */
      events?: { offerer: Codec; answerer: Codec };
    }
  | { kind: 'none'; reason: string };

/** The dynamic payload type range (RFC 3551 §6). */
export const DYNAMIC_PAYLOAD_TYPES: readonly number[] = Array.from({ length: 32 }, (_, i) => 96 + i);

/** The catalog's codec for an SDP format. */
export function codecFor(support: TranscodingSupport, c: Codec): AudioCodec | undefined {
  const found = support.codecs.find(c.name, c.rate, c.channels ?? 1);
  return found !== undefined && codecId(found.info) === codecKey(c) ? found : undefined;
}

/** Whether PCM decoded from `from` can be encoded as `to` (same rate, or a resampler exists). */
export function canTranscode(support: TranscodingSupport, from: AudioCodec, to: AudioCodec): boolean {
  return from.info.sampleRate === to.info.sampleRate || support.resamplers !== undefined;
}

/** An SDP format for a catalog codec, numbered with its static type or a number not in `taken`. */
function formatOf(codec: AudioCodec, taken: ReadonlySet<number>): Codec | undefined {
  const { name, clockRate, channels, staticPayloadType, fmtp } = codec.info;
  const pt = staticPayloadType !== undefined && !taken.has(staticPayloadType) ? staticPayloadType : DYNAMIC_PAYLOAD_TYPES.find((n) => !taken.has(n));
  if (pt === undefined) return undefined;
  const c: Codec = { pt, name, rate: clockRate };
  if (channels !== 1) c.channels = channels;
  if (fmtp !== undefined) c.fmtp = fmtp;
  return c;
}

/**
 * The audio formats to offer the other leg: `relayable` (pass-through, in the offer's order and
 * numbering) first, then every catalog codec the gateway can transcode one of them into. Numbers
 * in `taken` (the offer's, telephone-event included) are not reused for the added codecs.
 */
export function formatsToOffer(relayable: readonly Codec[], taken: readonly number[], support: TranscodingSupport | undefined): Codec[] {
  if (support === undefined) return [...relayable];
  const sources = relayable.map((c) => codecFor(support, c)).filter((c): c is AudioCodec => c !== undefined);
  const out = [...relayable];
  if (sources.length === 0) return out;
  const have = new Set(relayable.map(codecKey));
  const used = new Set([...taken, ...relayable.map((c) => c.pt)]);
  for (const codec of support.codecs.list()) {
    if (have.has(codecId(codec.info)) || !sources.some((s) => canTranscode(support, s, codec))) continue;
    const format = formatOf(codec, used);
    if (format === undefined) continue;
    have.add(codecId(codec.info));
    used.add(format.pt);
    out.push(format);
  }
  return out;
}

/**
 * Decides from the answerer's first audio format (RFC 3264 §6.1: the answerer's preference):
 * when the offerer offered it too the legs share it and the call is relayed with the formats of
 * the answer that the offerer also has; otherwise the offerer's leg gets the first of its formats
 * the gateway can transcode. RFC 4733 §2.1: telephone-event is relayed only when both legs have
 * it at one clock rate, that of the offerer's chosen codec.
 */
export function chooseMedia(offerer: readonly Codec[], answered: readonly Codec[], support: TranscodingSupport | undefined): MediaChoice {
  const first = answered.find((c) => !isTelephoneEvent(c));
  if (first === undefined) return { kind: 'none', reason: 'the answer holds no offered codec' };
  const keys = new Set(offerer.map(codecKey));
  if (keys.has(codecKey(first))) return { kind: 'relay', codecs: answered.filter((c) => keys.has(codecKey(c))) };
  const target = support === undefined ? undefined : codecFor(support, first);
  if (support === undefined || target === undefined) return { kind: 'none', reason: `the gateway cannot transcode to ${first.name}/${first.rate}` };
  const source = offerer.find((c) => {
    if (isTelephoneEvent(c)) return false;
    const codec = codecFor(support, c);
    return codec !== undefined && canTranscode(support, codec, target) && canTranscode(support, target, codec);
  });
  if (source === undefined) return { kind: 'none', reason: `no offered codec transcodes to ${first.name}/${first.rate}` };
  const eventA = offerer.find((c) => isTelephoneEvent(c) && c.rate === source.rate);
  const eventB = eventA === undefined ? undefined : answered.find((c) => isTelephoneEvent(c) && c.rate === eventA.rate);
  const choice: MediaChoice = { kind: 'transcode', offerer: source, answerer: first };
  if (eventA !== undefined && eventB !== undefined) choice.events = { offerer: eventA, answerer: eventB };
  return choice;
}

/** What the media session knows of one leg's numbering (its `LegState`). */
export interface LegNumbering {
  /** Formats in the peer's own numbering. */
  peer: readonly Codec[];
  /** The gateway's numbers on the leg, by codec identity. */
  gatewayPts: ReadonlyMap<string, number>;
}

/** The payload numbers of one transcoding direction, and a signature to tell plans apart. */
export interface DirectionPlan {
  input: number[];
  output: number;
  events: { payloadTypes: number[]; payloadType?: number };
  signature: string;
}

/**
 * Payload numbers for transcoding `fromKey` arriving on one leg into `toKey` on the other. Packets
 * from a leg carry its own numbers or the gateway's on it (RFC 3264 §6.1 wants the latter; both
 * are accepted); packets towards a leg carry what it declared it receives (RFC 3264 §5.1). Every
 * telephone-event number of the incoming leg is listed, so that events are relayed (`eventKey`
 * given) or knowingly dropped.
 */
export function directionPlan(from: LegNumbering, to: LegNumbering, fromKey: string, toKey: string, eventKey: string | undefined): DirectionPlan {
  const numbers = (leg: LegNumbering, key: string): { in: number[]; out: number | undefined } => {
    const own = leg.peer.find((c) => codecKey(c) === key)?.pt;
    const viaGateway = leg.gatewayPts.get(key);
    return { in: [...new Set([own, viaGateway].filter((n): n is number => n !== undefined))], out: own ?? viaGateway };
  };
  const input = numbers(from, fromKey).in;
  const output = numbers(to, toKey).out;
  if (output === undefined) throw new Error(`transcoding to ${toKey} without a payload number`);
  const eventPts = new Set(from.peer.filter(isTelephoneEvent).map((c) => c.pt));
  for (const [key, pt] of from.gatewayPts) if (key.startsWith('telephone-event/')) eventPts.add(pt);
  const events: DirectionPlan['events'] = { payloadTypes: [...eventPts] };
  const eventOut = eventKey === undefined ? undefined : numbers(to, eventKey).out;
  if (eventOut !== undefined) events.payloadType = eventOut;
  return { input, output, events, signature: JSON.stringify([fromKey, toKey, input, output, events]) };
}
