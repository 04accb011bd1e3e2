/**
 * Call-progress tones for the device (ringback while the far end rings, busy and congestion when
 * a call fails), from the country's tone set (`tones.country`) at the sound card's rate, and the
 * ringtone a board without a ringer plays through its speaker (`tones.ringtone`, looped).
 */
import { ToneGenerator } from '../media/tone/tone-generator.ts';
import { toneSet, type ToneName } from '../media/tone/tone-sets.ts';

/** A playing tone: the next `samples` samples of it. */
export interface ProgressTone {
  next(samples: number): Int16Array;
}

/** What the device can play: a call-progress tone, or the ringtone. */
export type DeviceSound = ToneName | 'ringtone';

export class CallProgressTones {
  constructor(
    private readonly country: string,
    private readonly sampleRate: number,
    /** The ringtone at `sampleRate`; without it `ringtone` plays the country's ringback tone. */
    private readonly ringtone?: Int16Array,
  ) {}

  /** A fresh tone from the start of its cadence (a ringtone from its start, looping). */
  start(name: DeviceSound): ProgressTone {
    if (name === 'ringtone') {
      const pcm = this.ringtone;
      if (pcm && pcm.length > 0) return new LoopingSound(pcm);
      name = 'ringback';
    }
    return new ToneGenerator(toneSet(this.country).tones[name], this.sampleRate);
  }
}

/** Plays a recording over and over. */
class LoopingSound implements ProgressTone {
  private at = 0;
  constructor(private readonly pcm: Int16Array) {}
  next(samples: number): Int16Array {
    const out = new Int16Array(samples);
    for (let i = 0; i < samples; i++) {
      out[i] = this.pcm[this.at]!;
      this.at = (this.at + 1) % this.pcm.length;
    }
    return out;
  }
}
