/**
 * The ringer: rings the phone's bell with the country's ring cadence while a call for the device
 * waits to be answered. Pure: it drives a {@link HardwareBackend}'s outputs on timers from the
 * injected {@link Clock}.
 *
 * Three ways to ring, chosen by what the board can do:
 * - the hardware rings by itself (`backend.ring(cadence)` returns true: a serial microcontroller);
 * - a SLIC (Ag1171/Ag1170): during each "on" period the ring-mode output `ringMode` is on and
 *   the forward/reverse output `forwardReverse` blinks at the ring frequency (the kernel's LED
 *   `timer` trigger or the MCU makes the waveform, not JS timers); during "off" periods both are
 *   off;
 * - a bell driver: the `bell` output is on during "on" periods and off otherwise.
 */
import type { HardwareBackend } from '../hardware/types.ts';
import { toneSet } from '../media/tone/tone-sets.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';

/** Which outputs the ringer drives when the hardware does not ring by itself. */
export type RingerDrive = 'slic' | 'bell';

/** What a {@link Ringer} needs. */
export interface RingerOptions {
  backend: Pick<HardwareBackend, 'setOutput' | 'ring'>;
  clock: Clock;
  logger: Logger;
  /** ISO 3166-1 alpha-2 country whose cadence to ring ({@link ringCadence}). */
  country: string;
  /** Ring frequency in Hz (20 in North America, 25 in most of Europe); the FR output toggles at it. */
  frequencyHz: number;
  /** Drive only these outputs; by default both sets (a role the board lacks is ignored). */
  drive?: RingerDrive;
}

/**
 * The ring cadence of `country`, ms on/off alternating, starting with "on". The ringing signal a
 * phone hears has the cadence of the ringback tone the caller hears (ITU-T E.180 Supp. 2 ringing
 * tone): us 2 s on / 4 s off, gb 0.4/0.2/0.4/2.0 s, de 1 s / 4 s; see `src/media/tone/tone-sets.ts`.
 */
export function ringCadence(country: string): readonly number[] {
  const cadence = toneSet(country).tones.ringback.cadence;
  return cadence && cadence.length >= 2 && cadence.length % 2 === 0 ? cadence : FALLBACK_CADENCE;
}

/** ITU-T E.180 §2: ringing tone about 1 s on, 4 s off, for a country without an even cadence. */
const FALLBACK_CADENCE: readonly number[] = [1000, 4000];

/**
 * Rings and stops. The handset calls {@link Ringer.start} when a call for the device arrives and
 * {@link Ringer.stop} when it is answered or the caller gives up. Both are idempotent; `stop`
 * leaves every output off.
 */
export class Ringer {
  private readonly cadence: readonly number[];
  private readonly halfPeriodMs: number;
  private mode: 'off' | 'hardware' | 'outputs' = 'off';
  private phase = 0;
  private timer: TimerHandle | undefined;

  constructor(private readonly opts: RingerOptions) {
    if (!(opts.frequencyHz > 0 && opts.frequencyHz <= 100)) throw new Error(`ring frequency must be between 0 and 100 Hz (got ${opts.frequencyHz})`);
    this.cadence = ringCadence(opts.country);
    // One cycle of the ring frequency is a forward and a reverse half: 20 Hz → 25 ms each.
    this.halfPeriodMs = Math.round(1000 / (2 * opts.frequencyHz));
  }

  /** True between {@link Ringer.start} and {@link Ringer.stop}. */
  get ringing(): boolean {
    return this.mode !== 'off';
  }

  /** Starts ringing at the start of the cadence ("on"). */
  start(): void {
    if (this.mode !== 'off') return;
    if (this.opts.backend.ring?.(this.cadence) === true) {
      this.mode = 'hardware';
      this.opts.logger.debug('ringing (by the hardware)', { cadence: this.cadence.join('/') });
      return;
    }
    this.mode = 'outputs';
    this.opts.logger.debug('ringing', { cadence: this.cadence.join('/'), hz: this.opts.frequencyHz });
    this.phase = 0;
    this.enter();
  }

  /** Stops ringing and turns the ringer outputs off. */
  stop(): void {
    if (this.mode === 'off') return;
    if (this.mode === 'hardware') this.opts.backend.ring?.(undefined);
    else {
      this.timer?.cancel();
      this.timer = undefined;
      this.outputs(false);
    }
    this.mode = 'off';
    this.opts.logger.debug('ringing stopped');
  }

  private enter(): void {
    this.outputs(this.phase % 2 === 0);
    this.timer = this.opts.clock.setTimer(this.cadence[this.phase]!, () => {
      this.phase = (this.phase + 1) % this.cadence.length;
      this.enter();
    }, 'ring-cadence');
  }

  private outputs(on: boolean): void {
    const { backend, drive } = this.opts;
    if (drive !== 'bell') {
      if (on) {
        backend.setOutput('ringMode', { mode: 'on' });
        backend.setOutput('forwardReverse', { mode: 'blink', onMs: this.halfPeriodMs, offMs: this.halfPeriodMs });
      } else {
        backend.setOutput('forwardReverse', { mode: 'off' });
        backend.setOutput('ringMode', { mode: 'off' });
      }
    }
    if (drive !== 'slic') backend.setOutput('bell', { mode: on ? 'on' : 'off' });
  }
}
