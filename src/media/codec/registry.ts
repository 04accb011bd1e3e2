/**
 * The codecs this gateway can encode and decode, found by their SDP identity (encoding name,
 * RTP clock rate, channels: RFC 4566 §6 `a=rtpmap`) and ordered by the configured preference.
 */
import { codecId, type AudioCodec } from './codec.ts';

/**
 * A fixed set of codecs. Constructed once by the composition root from the built-in list;
 * immutable afterwards.
 */
export class CodecRegistry {
  private readonly byId = new Map<string, AudioCodec>();
  private readonly codecs: readonly AudioCodec[];

  /** @throws Error when two codecs share an identity (`name/clockRate/channels`). */
  constructor(codecs: readonly AudioCodec[]) {
    for (const codec of codecs) {
      const id = codecId(codec.info);
      if (this.byId.has(id)) throw new Error(`codec ${id} registered twice`);
      this.byId.set(id, codec);
    }
    this.codecs = [...codecs];
  }

  /**
   * The codec for an `a=rtpmap` entry. Encoding names are case-insensitive (RFC 4855 §3);
   * `channels` defaults to 1 as an absent rtpmap encoding parameter does for audio
   * (RFC 4566 §6), so opus must be asked for as `('opus', 48000, 2)` (RFC 7587 §7).
   */
  find(name: string, clockRate: number, channels = 1): AudioCodec | undefined {
    return this.byId.get(codecId({ name, clockRate, channels }));
  }

  /** Every registered codec, in registration order. */
  list(): readonly AudioCodec[] {
    return this.codecs;
  }

  /**
   * The codecs named by `preference`, in its order. An entry is `name`, `name/rate` or
   * `name/rate/channels` (case-insensitive); a bare name matches every rate registered under it,
   * in registration order. Entries naming nothing registered are ignored, codecs no entry names
   * are left out, and a codec matched by several entries appears once, at its first.
   */
  ordered(preference: readonly string[]): AudioCodec[] {
    const result: AudioCodec[] = [];
    const taken = new Set<AudioCodec>();
    for (const entry of preference) {
      const [name = '', rate, channels] = entry.trim().toLowerCase().split('/');
      for (const codec of this.codecs) {
        if (taken.has(codec)) continue;
        const info = codec.info;
        if (info.name.toLowerCase() !== name) continue;
        if (rate !== undefined && String(info.clockRate) !== rate) continue;
        if (channels !== undefined && String(info.channels) !== channels) continue;
        taken.add(codec);
        result.push(codec);
      }
    }
    return result;
  }
}
