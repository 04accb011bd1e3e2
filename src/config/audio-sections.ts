/**
 * Validation of the device's audio settings (`audio`, `dtmf`, `tones`, and the media keys of
 * `device` and `media` that issue 4 added), in the style of sections.ts: one problem line per
 * bad key, naming it.
 */
import type { Config } from './config.ts';
import { isObject, show, wholeNumber } from './sections.ts';

type Json = unknown;

/** The device's sound card (`audio`). */
export interface AudioConfig {
  /** `alsa` (arecord/aplay), `file` (WAV in, WAV out) or `null` (silence, nothing played). */
  backend: 'alsa' | 'file' | 'null';
  /** ALSA capture device (`plughw:CARD=Device,DEV=0`, `pulse`, `default`) or, for `file`, a WAV path. */
  capture: string;
  /** ALSA playback device, or for `file` the WAV file written. */
  playback: string;
  /** The sound card's sample rate. */
  rate: 8000 | 16000 | 32000 | 44100 | 48000;
  /** ALSA period (ms): the capture frame that paces the device. */
  periodMs: number;
  /** ALSA buffer (ms). */
  bufferMs: number;
  /** Jitter buffer delay bounds (ms). */
  jitterMinMs: number;
  jitterMaxMs: number;
}

/** DTMF the device sends (`dtmf`). */
export interface DtmfConfig {
  /** `rfc4733` (falls back to INFO when the far end takes no telephone-event) or `info`. */
  send: 'rfc4733' | 'info';
  durationMs: number;
  /** Pause between digits; some door openers need 500 ms. */
  gapMs: number;
  /** Detect DTMF sent as audio (for far ends without telephone-event). */
  inband: boolean;
}

export const AUDIO_DEFAULTS: { audio: AudioConfig; dtmf: DtmfConfig; tones: { country: string; ringtone?: string } } = {
  audio: { backend: 'null', capture: 'default', playback: 'default', rate: 48000, periodMs: 20, bufferMs: 80, jitterMinMs: 20, jitterMaxMs: 200 },
  dtmf: { send: 'rfc4733', durationMs: 100, gapMs: 100, inband: true },
  tones: { country: 'us' },
};

/** Codec names `media.codecs` accepts, with an optional `/rate` for L16. */
export const CODEC_NAMES = ['opus', 'G722', 'PCMU', 'PCMA', 'L16', 'L16/8000', 'L16/16000', 'L16/48000'];
export const DEFAULT_CODECS = ['G722', 'opus', 'PCMU', 'PCMA', 'L16/16000'];

const RATES = [8000, 16000, 32000, 44100, 48000];
/** ALSA device names: letters, digits and the punctuation of `plughw:CARD=Name,DEV=0`. */
const ALSA_DEVICE = /^[A-Za-z0-9_:=,.\-]{1,100}$/;

function unknownKeys(obj: Record<string, Json>, name: string, keys: readonly string[], problems: string[]): void {
  for (const k of Object.keys(obj)) if (!keys.includes(k)) problems.push(`${name}.${k} is not a known setting`);
}

/** Checks `audio`, `dtmf` and `tones`; the caller has already checked top-level key names. */
export function checkAudioSections(input: Record<string, Json>, cfg: Config, problems: string[]): void {
  const audio = input.audio;
  if (audio !== undefined) {
    if (!isObject(audio)) problems.push(`audio must be an object (got ${show(audio)})`);
    else {
      unknownKeys(audio, 'audio', ['backend', 'capture', 'playback', 'rate', 'periodMs', 'bufferMs', 'jitterMinMs', 'jitterMaxMs'], problems);
      if (audio.backend !== undefined) {
        if (audio.backend !== 'alsa' && audio.backend !== 'file' && audio.backend !== 'null') problems.push(`audio.backend must be "alsa", "file" or "null" (got ${show(audio.backend)})`);
        else cfg.audio.backend = audio.backend;
      }
      for (const key of ['capture', 'playback'] as const) {
        const v = audio[key];
        if (v === undefined) continue;
        // A file path for the file backend; an ALSA name (never a shell string) for alsa.
        if (typeof v !== 'string' || v === '' || v.length > 4096 || (cfg.audio.backend === 'alsa' && !ALSA_DEVICE.test(v))) {
          problems.push(`audio.${key} must be ${cfg.audio.backend === 'alsa' ? 'an ALSA device name like plughw:CARD=Device,DEV=0' : 'a device name or file path'} (got ${show(v)})`);
        } else cfg.audio[key] = v;
      }
      if (audio.rate !== undefined) {
        if (!RATES.includes(audio.rate as number)) problems.push(`audio.rate must be one of ${RATES.join(', ')} (got ${show(audio.rate)})`);
        else cfg.audio.rate = audio.rate as AudioConfig['rate'];
      }
      const ranges: Record<string, [number, number]> = { periodMs: [5, 100], bufferMs: [10, 1000], jitterMinMs: [0, 1000], jitterMaxMs: [20, 2000] };
      for (const [k, [lo, hi]] of Object.entries(ranges)) {
        if (audio[k] === undefined) continue;
        const n = wholeNumber(audio[k], `audio.${k}`, lo, hi, problems);
        if (n !== undefined) (cfg.audio as unknown as Record<string, number>)[k] = n;
      }
      if (cfg.audio.periodMs % 5 !== 0) problems.push(`audio.periodMs must be a multiple of 5 (got ${cfg.audio.periodMs})`);
      if (cfg.audio.bufferMs < 2 * cfg.audio.periodMs) problems.push(`audio.bufferMs must be at least twice audio.periodMs (got ${cfg.audio.bufferMs} < ${2 * cfg.audio.periodMs})`);
      if (cfg.audio.jitterMinMs > cfg.audio.jitterMaxMs) problems.push(`audio.jitterMinMs must be <= audio.jitterMaxMs (got ${cfg.audio.jitterMinMs} > ${cfg.audio.jitterMaxMs})`);
    }
  }

  const dtmf = input.dtmf;
  if (dtmf !== undefined) {
    if (!isObject(dtmf)) problems.push(`dtmf must be an object (got ${show(dtmf)})`);
    else {
      unknownKeys(dtmf, 'dtmf', ['send', 'durationMs', 'gapMs', 'inband'], problems);
      if (dtmf.send !== undefined) {
        if (dtmf.send !== 'rfc4733' && dtmf.send !== 'info') problems.push(`dtmf.send must be "rfc4733" or "info" (got ${show(dtmf.send)})`);
        else cfg.dtmf.send = dtmf.send;
      }
      if (dtmf.durationMs !== undefined) {
        const n = wholeNumber(dtmf.durationMs, 'dtmf.durationMs', 40, 5000, problems);
        if (n !== undefined) cfg.dtmf.durationMs = n;
      }
      if (dtmf.gapMs !== undefined) {
        const n = wholeNumber(dtmf.gapMs, 'dtmf.gapMs', 40, 5000, problems);
        if (n !== undefined) cfg.dtmf.gapMs = n;
      }
      if (dtmf.inband !== undefined) {
        if (typeof dtmf.inband !== 'boolean') problems.push(`dtmf.inband must be true or false (got ${show(dtmf.inband)})`);
        else cfg.dtmf.inband = dtmf.inband;
      }
    }
  }

  const tones = input.tones;
  if (tones !== undefined) {
    if (!isObject(tones)) problems.push(`tones must be an object (got ${show(tones)})`);
    else {
      unknownKeys(tones, 'tones', ['country', 'ringtone'], problems);
      if (tones.ringtone !== undefined) {
        if (typeof tones.ringtone !== 'string' || !tones.ringtone.startsWith('/')) problems.push(`tones.ringtone must be the absolute path of a 16-bit mono WAV file (got ${show(tones.ringtone)})`);
        else cfg.tones.ringtone = tones.ringtone;
      }
      if (tones.country !== undefined) {
        if (typeof tones.country !== 'string' || !/^[a-z]{2}$/.test(tones.country)) problems.push(`tones.country must be a two-letter country code like "de" (got ${show(tones.country)})`);
        else cfg.tones.country = tones.country;
      }
    }
  }
}

/** `media.codecs`: a non-empty list of known codec names, most preferred first. */
export function checkCodecList(v: Json, problems: string[]): string[] | undefined {
  if (!Array.isArray(v) || v.length === 0) {
    problems.push(`media.codecs must be a non-empty list of codec names (got ${show(v)})`);
    return undefined;
  }
  const known = new Map(CODEC_NAMES.map((n) => [n.toLowerCase(), n]));
  const out: string[] = [];
  for (let i = 0; i < v.length; i++) {
    const name = typeof v[i] === 'string' ? known.get((v[i] as string).toLowerCase()) : undefined;
    if (name === undefined) {
      problems.push(`media.codecs[${i}] must be one of ${CODEC_NAMES.join(', ')} (got ${show(v[i])})`);
      return undefined;
    }
    out.push(name);
  }
  return out;
}
