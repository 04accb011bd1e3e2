/**
 * The contract every audio codec implements. Codecs are pure: 16-bit linear PCM (mono, at the
 * codec's own sample rate) in, RTP payload bytes out, and back. The registry (`registry.ts`)
 * finds them by SDP identity (encoding name, RTP clock rate, channels).
 */

/** What a codec is on the wire and in SDP. */
export interface CodecInfo {
  /** Encoding name as written in `a=rtpmap` (`PCMU`, `PCMA`, `G722`, `L16`, `opus`). */
  readonly name: string;
  /**
   * RTP clock rate (the timestamp unit and the rtpmap rate). Not always the sample rate: G.722
   * samples at 16 kHz but its RTP clock is 8000 (RFC 3551 §4.5.2).
   */
  readonly clockRate: number;
  /** Rate of the PCM the encoder takes and the decoder returns. */
  readonly sampleRate: number;
  /** The rtpmap encoding parameters (channels) written in SDP: 2 for opus (RFC 7587), else 1. */
  readonly channels: number;
  /** Static payload type (RFC 3551 table 4), when there is one. */
  readonly staticPayloadType?: number;
  /** The `a=fmtp` line we write for it, when any (opus: `useinbandfec=1; stereo=0; sprop-stereo=0`). */
  readonly fmtp?: string;
}

/** Encodes one packet's worth of PCM. Keeps state between calls (G.722, opus). */
export interface AudioEncoder {
  /**
   * `pcm` holds exactly `sampleRate * ptimeMs / 1000` mono samples (the ptime given to
   * {@link AudioCodec.createEncoder}); returns the RTP payload.
   */
  encode(pcm: Int16Array): Uint8Array;
  /** Frees native/wasm memory; the encoder is unusable afterwards. Idempotent. */
  close(): void;
}

/** Decodes RTP payloads back to PCM at the codec's sample rate. */
export interface AudioDecoder {
  /** Decodes one payload; a malformed payload yields an empty array, never an exception. */
  decode(payload: Uint8Array): Int16Array;
  /**
   * The codec's own loss concealment for `samples` missing samples (opus PLC; with `next`, the
   * payload that follows the gap, opus decodes the in-band FEC it carries). Codecs without one
   * leave it out and the caller conceals on the PCM (see `media/jitter`).
   */
  conceal?(samples: number, next?: Uint8Array): Int16Array;
  /** Frees native/wasm memory; idempotent. */
  close(): void;
}

/** A codec: its description and fresh encoder/decoder state per stream and direction. */
export interface AudioCodec {
  readonly info: CodecInfo;
  createEncoder(ptimeMs: number): AudioEncoder;
  createDecoder(): AudioDecoder;
}

/** The identity used to match SDP formats to codecs: `name/clockRate/channels`, lower case. */
export function codecId(info: Pick<CodecInfo, 'name' | 'clockRate' | 'channels'>): string {
  return `${info.name.toLowerCase()}/${info.clockRate}/${info.channels}`;
}
