/**
 * Call-progress tones for the device (ringback while the far end rings, busy and congestion when
 * a call fails), from the country's tone set (`tones.country`) at the sound card's rate.
 */
import { ToneGenerator } from '../media/tone/tone-generator.ts';
import { toneSet, type ToneName } from '../media/tone/tone-sets.ts';

/** A playing tone: the next `samples` samples of it. */
export interface ProgressTone {
  next(samples: number): Int16Array;
}

export class CallProgressTones {
  constructor(
    private readonly country: string,
    private readonly sampleRate: number,
  ) {}

  /** A fresh tone from the start of its cadence. */
  start(name: ToneName): ProgressTone {
    return new ToneGenerator(toneSet(this.country).tones[name], this.sampleRate);
  }
}
