/**
 * SDP (RFC 4566) reading and writing for the offer/answer model (RFC 3264), via `sdp-transform`.
 * Pure: strings in, strings out. Only what a relaying B2BUA needs: the first usable audio stream
 * of a description, the codecs it lists, and a writer for the gateway's own descriptions.
 */
import { parse as parseSdpText, write as writeSdpText } from 'sdp-transform';
import type { MediaDescription, SessionDescription } from 'sdp-transform';

/** One payload format of an audio m-line: its RTP payload type number and what it means. */
export interface Codec {
  pt: number;
  /** Encoding name as written in `a=rtpmap` (or the RFC 3551 static name). */
  name: string;
  /** RTP clock rate. */
  rate: number;
  /** Encoding parameters of `a=rtpmap` (audio channels), when written. */
  channels?: number;
  /** The `a=fmtp` parameters for this payload type, verbatim. */
  fmtp?: string;
}

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/** The first usable audio stream of a session description. */
export interface AudioDescription {
  /** The connection address (c=, media level before session level), without a TTL suffix. */
  address: string;
  port: number;
  /** `a=rtcp` (RFC 3605) port, when present. */
  rtcpPort?: number;
  /** Audio codecs in the m-line's order of preference, telephone-event excluded. */
  codecs: Codec[];
  /** The first telephone-event format (RFC 4733), if any. */
  telephoneEvent?: Codec;
  /** All telephone-event formats (an opus offer often lists /48000 and /8000). */
  telephoneEvents: Codec[];
  /**
   * The stream direction (media-level attribute, then session-level, default sendrecv). A
   * c=0.0.0.0 (RFC 3264 §8.4, the RFC 2543 way to hold) removes the receive half.
   */
  direction: Direction;
  /** `a=ptime` in milliseconds. */
  ptime?: number;
  /** The m-line's transport protocol (RTP/AVP or RTP/AVPF; RTP/SAVP or RTP/SAVPF when parsed with `srtp`). */
  protocol: string;
  /** The values of the stream's `a=crypto` attributes (RFC 4568 §9.1), verbatim and in order. */
  crypto: string[];
}

/** One m-line reduced to what a rejecting answer must repeat (RFC 3264 §6). */
export interface MediaLine {
  type: string;
  port: number;
  protocol: string;
  /** The fmt list as written. */
  formats: string;
}

/** A whole description: every m-line (to mirror them in an answer) and the chosen audio one. */
export interface ParsedSdp {
  media: MediaLine[];
  /** Index in `media` of the audio stream described by `audio`. */
  audioIndex: number;
  audio: AudioDescription;
}

/**
 * An SDP body that cannot be used. `status` is the SIP response for it: 400 when the body is not
 * SDP at all, 488 (Not Acceptable Here) when it is SDP without a stream the gateway can relay.
 */
export class SdpError extends Error {
  constructor(
    public readonly code: 'SDP_MALFORMED' | 'SDP_NOT_ACCEPTABLE',
    message: string,
    public readonly status: 400 | 488 = code === 'SDP_MALFORMED' ? 400 : 488,
  ) {
    super(message);
    this.name = 'SdpError';
  }
}

const malformed = (msg: string): SdpError => new SdpError('SDP_MALFORMED', msg);
const notAcceptable = (msg: string): SdpError => new SdpError('SDP_NOT_ACCEPTABLE', msg);

/** RFC 3551 §6 static audio payload types, used when an m-line lists one without `a=rtpmap`. */
const STATIC_PAYLOADS: ReadonlyMap<number, { name: string; rate: number }> = new Map([
  [0, { name: 'PCMU', rate: 8000 }],
  [3, { name: 'GSM', rate: 8000 }],
  [4, { name: 'G723', rate: 8000 }],
  [8, { name: 'PCMA', rate: 8000 }],
  [9, { name: 'G722', rate: 8000 }],
  [13, { name: 'CN', rate: 8000 }],
  [18, { name: 'G729', rate: 8000 }],
]);

/** Codecs the relay passes through (no transcoding): identity keys as built by {@link codecKey}. */
const SUPPORTED_CODECS: ReadonlySet<string> = new Set(['pcmu/8000/1', 'pcma/8000/1', 'g722/8000/1', 'opus/48000/2']);
const SUPPORTED_EVENTS: ReadonlySet<string> = new Set(['telephone-event/8000/1', 'telephone-event/48000/1']);

/**
 * A codec's identity independent of its payload type number: encoding name (case-insensitive,
 * RFC 4566 §6 rtpmap), clock rate and channel count (default 1, RFC 4566 §6 "encoding parameters").
 */
export function codecKey(c: Pick<Codec, 'name' | 'rate' | 'channels'>): string {
  return `${c.name.toLowerCase()}/${c.rate}/${c.channels ?? 1}`;
}

/** True for the audio codecs the gateway relays: PCMU/8000, PCMA/8000, G722/8000, opus/48000/2. */
export function isSupportedCodec(c: Codec): boolean {
  return SUPPORTED_CODECS.has(codecKey(c));
}

/** True for telephone-event/8000 and telephone-event/48000 (RFC 4733). */
export function isTelephoneEvent(c: Codec): boolean {
  return c.name.toLowerCase() === 'telephone-event';
}

/** True for the telephone-event rates the gateway relays. */
export function isSupportedTelephoneEvent(c: Codec): boolean {
  return SUPPORTED_EVENTS.has(codecKey(c));
}

/**
 * The formats of `answered` (in its order, with its payload numbers and fmtp) whose identity
 * appears in `offered`: RFC 3264 §6.1, an answer may only list formats from the offer, and the
 * payload numbers need not be the same on both sides.
 */
export function intersection(offered: readonly Codec[], answered: readonly Codec[]): Codec[] {
  const keys = new Set(offered.map(codecKey));
  const seen = new Set<string>();
  const out: Codec[] = [];
  for (const c of answered) {
    const key = codecKey(c);
    if (!keys.has(key) || seen.has(key)) continue;
    seen.add(key);
    out.push(c);
  }
  return out;
}

/**
 * Payload-type rewriting between two numberings of the same formats: for each codec of `from`
 * whose identity is in `to`, `from.pt → to.pt`. RFC 3264 §5.1: the numbers in an SDP are the ones
 * its author expects to receive, so packets towards a leg carry the numbers of that leg's SDP.
 */
export function payloadMap(from: readonly Codec[], to: readonly Codec[]): Map<number, number> {
  const target = new Map<string, number>();
  for (const c of to) if (!target.has(codecKey(c))) target.set(codecKey(c), c.pt);
  const map = new Map<number, number>();
  for (const c of from) {
    const pt = target.get(codecKey(c));
    if (pt !== undefined && !map.has(c.pt)) map.set(c.pt, pt);
  }
  return map;
}

/**
 * The direction an answerer states for a stream offered with `d` when it is willing to do all of
 * it (RFC 3264 §6.1): sendonly ↔ recvonly, sendrecv and inactive unchanged.
 */
export function mirrorDirection(d: Direction): Direction {
  if (d === 'sendonly') return 'recvonly';
  if (d === 'recvonly') return 'sendonly';
  return d;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/** True for an IPv4 dotted quad or an IPv6 literal (the forms a relay can send to). */
export function isIpLiteral(address: string): boolean {
  const m = IPV4.exec(address);
  if (m) return m.slice(1).every((o) => Number(o) <= 255);
  return address.includes(':') && IPV6.test(address);
}

/** 0.0.0.0 or :: — "do not send me anything" (RFC 3264 §8.4). */
export function isUnspecifiedAddress(address: string): boolean {
  return address === '0.0.0.0' || /^[0:]+$/.test(address);
}

function isDirection(v: unknown): v is Direction {
  return v === 'sendrecv' || v === 'sendonly' || v === 'recvonly' || v === 'inactive';
}

function isRtpProfile(protocol: string, srtp: boolean): boolean {
  const p = protocol.toUpperCase();
  // RFC 3711 §12: RTP/SAVP is the SRTP profile (RFC 5124: RTP/SAVPF with feedback).
  return p === 'RTP/AVP' || p === 'RTP/AVPF' || (srtp && (p === 'RTP/SAVP' || p === 'RTP/SAVPF'));
}

/** True for RTP/SAVP and RTP/SAVPF (RFC 3711 §12, RFC 5124). */
export function isSecureProfile(protocol: string): boolean {
  return /^RTP\/SAVPF?$/i.test(protocol);
}

/** The `a=crypto` values of the `index`-th m= section of `body` (sdp-transform keeps one session parameter only). */
function cryptoValues(body: string, index: number): string[] {
  const out: string[] = [];
  let section = -1;
  for (const line of body.split(/\r\n|\r|\n/)) {
    if (line.startsWith('m=')) section++;
    else if (section === index && line.startsWith('a=crypto:')) out.push(line.slice('a=crypto:'.length));
  }
  return out;
}

function readMediaLine(m: MediaDescription, index: number): MediaLine {
  const port: unknown = m.port;
  if (typeof m.type !== 'string' || m.type === '' || typeof port !== 'number' || !Number.isInteger(port) || port > 65535) {
    throw malformed(`m= line ${index + 1} is malformed`);
  }
  if (typeof m.protocol !== 'string' || m.protocol === '') throw malformed(`m= line ${index + 1} has no protocol`);
  return { type: m.type, port, protocol: m.protocol, formats: m.payloads === undefined ? '' : String(m.payloads) };
}

function readCodecs(m: MediaDescription, line: MediaLine): Codec[] {
  const out: Codec[] = [];
  for (const token of line.formats.split(' ')) {
    if (token === '') continue;
    if (!/^\d{1,3}$/.test(token) || Number(token) > 127) throw malformed(`RTP payload type "${token}" is not 0-127`);
    const pt = Number(token);
    const map = m.rtp.find((r) => r.payload === pt);
    const fmtp = m.fmtp.find((f) => f.payload === pt)?.config;
    let codec: Codec | undefined;
    if (map !== undefined) {
      if (typeof map.rate !== 'number' || typeof map.codec !== 'string') continue;
      codec = { pt, name: map.codec, rate: map.rate };
      if (typeof map.encoding === 'number') codec.channels = map.encoding;
    } else {
      // RFC 3551 §6: static types may be listed without rtpmap; an unmapped dynamic one means nothing.
      const known = STATIC_PAYLOADS.get(pt);
      if (known === undefined) continue;
      codec = { pt, name: known.name, rate: known.rate };
    }
    if (fmtp !== undefined) codec.fmtp = String(fmtp);
    out.push(codec);
  }
  return out;
}

function firstLine(body: string): string {
  const end = body.search(/\r\n|\r|\n/);
  return end < 0 ? body : body.slice(0, end);
}

/** Options of {@link parseSdp}. */
export interface ParseSdpOptions {
  /** Accept RTP/SAVP and RTP/SAVPF audio streams too (the caller handles their `a=crypto`). */
  srtp?: boolean;
}

/**
 * Parses a session description and picks its first usable audio stream: m=audio, non-zero port,
 * RTP/AVP or RTP/AVPF (and RTP/SAVP, RTP/SAVPF with `opts.srtp`). Throws {@link SdpError}: SDP_MALFORMED (400) when the body is not an SDP
 * (no leading v=0, no o=, bad m= line or payload type, no c= for the audio stream),
 * SDP_NOT_ACCEPTABLE (488) when there is no usable audio stream.
 */
export function parseSdp(body: string, opts: ParseSdpOptions = {}): ParsedSdp {
  if (typeof body !== 'string' || firstLine(body) !== 'v=0') throw malformed('SDP does not start with v=0');
  let session: SessionDescription;
  try {
    session = parseSdpText(body);
  } catch {
    throw malformed('SDP cannot be parsed');
  }
  const origin: unknown = session.origin;
  if (typeof origin !== 'object' || origin === null || typeof session.origin.address !== 'string') {
    throw malformed('SDP has no valid o= line');
  }
  const media = session.media.map(readMediaLine);
  let audioIndex = -1;
  let hadAudio = false;
  for (let i = 0; i < media.length; i++) {
    if (media[i]!.type !== 'audio') continue;
    hadAudio = true;
    if (media[i]!.port !== 0 && isRtpProfile(media[i]!.protocol, opts.srtp === true)) {
      audioIndex = i;
      break;
    }
  }
  if (audioIndex < 0) throw notAcceptable(hadAudio ? 'no active RTP/AVP audio stream' : 'no audio stream');
  const m = session.media[audioIndex]!;
  const line = media[audioIndex]!;
  const connection = m.connection ?? session.connection;
  if (connection === undefined || typeof connection.ip !== 'string') throw malformed('audio stream has no c= line');
  const address = connection.ip.split('/')[0]!;
  if (!isIpLiteral(address)) throw notAcceptable(`c= address "${address}" is not an IP address`);

  const all = readCodecs(m, line);
  const telephoneEvents = all.filter(isTelephoneEvent);
  let direction: Direction = isDirection(m.direction) ? m.direction : isDirection(session.direction) ? session.direction : 'sendrecv';
  if (isUnspecifiedAddress(address)) direction = direction === 'sendrecv' ? 'sendonly' : direction === 'recvonly' ? 'inactive' : direction;
  const audio: AudioDescription = {
    address,
    port: line.port,
    codecs: all.filter((c) => !isTelephoneEvent(c)),
    telephoneEvents,
    direction,
    protocol: line.protocol,
    crypto: cryptoValues(body, audioIndex),
  };
  if (telephoneEvents[0] !== undefined) audio.telephoneEvent = telephoneEvents[0];
  const rtcpPort: unknown = m.rtcp?.port;
  if (typeof rtcpPort === 'number' && Number.isInteger(rtcpPort) && rtcpPort > 0 && rtcpPort <= 65535) audio.rtcpPort = rtcpPort;
  const ptime: unknown = m.ptime;
  if (typeof ptime === 'number' && ptime > 0) audio.ptime = ptime;
  return { media, audioIndex, audio };
}

/** The first usable audio stream of an SDP body (see {@link parseSdp}); throws {@link SdpError}. */
export function parseAudio(body: string): AudioDescription {
  return parseSdp(body).audio;
}

/** The o= line of a description the gateway writes (RFC 4566 §5.2). */
export interface SdpOrigin {
  username: string;
  sessionId: string;
  /** RFC 3264 §8: incremented by one whenever the description changes. */
  version: number;
  address: string;
}

/** The gateway's audio stream in a description it writes. */
export interface AudioStream {
  port: number;
  protocol: string;
  /** Audio codecs then telephone-event formats, in preference order. */
  codecs: readonly Codec[];
  direction: Direction;
  ptime?: number;
  rtcpPort?: number;
  /** `a=crypto` values (RFC 4568 §9.1) to write, in order. */
  crypto?: readonly string[];
}

/** Everything {@link buildSdp} writes. */
export interface SdpSpec {
  origin: SdpOrigin;
  /** The c= address (the gateway's address facing the peer). */
  address: string;
  /** The m-lines; the one at `audioIndex` is written from `audio`, the others rejected (port 0). */
  media: readonly MediaLine[];
  audioIndex: number;
  audio: AudioStream;
}

/** IN IP4 or IN IP6 by the form of the address (RFC 4566 §5.7). */
export function ipVersion(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

/**
 * Writes a session description: v=0, o=, s=-, session-level c=, t=0 0, then the m-lines. Other
 * streams are written with port 0 and their formats, which is how an answer rejects a stream
 * (RFC 3264 §6) and how an offer keeps a stream that was rejected before (RFC 3264 §8.2).
 * Lines end with CRLF.
 */
export function buildSdp(spec: SdpSpec): string {
  const { origin, audio } = spec;
  const media = spec.media.map((line, i): MediaDescription => {
    if (i !== spec.audioIndex) {
      return { type: line.type, port: 0, protocol: line.protocol, payloads: line.formats === '' ? '0' : line.formats, rtp: [], fmtp: [] };
    }
    const m: MediaDescription = {
      type: 'audio',
      port: audio.port,
      protocol: audio.protocol,
      payloads: audio.codecs.map((c) => c.pt).join(' '),
      rtp: audio.codecs.map((c) => {
        const r: MediaDescription['rtp'][number] = { payload: c.pt, codec: c.name, rate: c.rate };
        if (c.channels !== undefined) r.encoding = c.channels;
        return r;
      }),
      fmtp: audio.codecs.filter((c) => c.fmtp !== undefined).map((c) => ({ payload: c.pt, config: c.fmtp! })),
      direction: audio.direction,
    };
    if (audio.rtcpPort !== undefined) m.rtcp = { port: audio.rtcpPort };
    if (audio.ptime !== undefined) m.ptime = audio.ptime;
    return m;
  });
  const text = writeSdpText({
    version: 0,
    origin: {
      username: origin.username,
      sessionId: origin.sessionId,
      sessionVersion: origin.version,
      netType: 'IN',
      ipVer: ipVersion(origin.address),
      address: origin.address,
    },
    name: '-',
    connection: { version: ipVersion(spec.address), ip: spec.address },
    timing: { start: 0, stop: 0 },
    media,
  });
  return audio.crypto === undefined || audio.crypto.length === 0 ? text : withCrypto(text, spec.audioIndex, audio.crypto);
}

/** `text` with `a=crypto:` lines after the `index`-th m= line (written verbatim: sdp-transform keeps one session parameter). */
function withCrypto(text: string, index: number, crypto: readonly string[]): string {
  const lines = text.split('\r\n');
  let section = -1;
  const at = lines.findIndex((l) => l.startsWith('m=') && ++section === index);
  lines.splice(at + 1, 0, ...crypto.map((c) => `a=crypto:${c}`));
  return lines.join('\r\n');
}
