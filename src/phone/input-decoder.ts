/**
 * The phone logic's single view of the inputs: raw hardware events in, phone events out.
 */
import type { HardwareEvents, InputRole } from '../hardware/types.ts';
import type { Clock } from '../runtime/clock.ts';
import { nullLogger, type Logger } from '../runtime/logger.ts';
import { HookDecoder, type HookOptions, type HookStats } from './hook-decoder.ts';
import { EdgeDebouncer, RotaryDecoder, type RotaryOptions, type RotaryStats } from './rotary-decoder.ts';

/** What the phone logic receives. `atMs` is when it happened (edge timestamp, monotonic clock scale). */
export type PhoneInputEvent =
  | { type: 'offHook'; atMs: number }
  /** The handset went down at `atMs` and stayed down longer than the flash maximum. */
  | { type: 'onHook'; atMs: number }
  | { type: 'flash'; atMs: number; durationMs: number }
  /** A dialled key: from the rotary dial (`0`-`9`) or a device keypad (`0`-`9`, `*`, `#`, `A`-`D`). */
  | { type: 'digit'; digit: string; source: 'rotary' | 'keypad'; atMs: number }
  /** The call button (intercom) went down or up, debounced. */
  | { type: 'button'; pressed: boolean; atMs: number };

/** Options; every field has a default. */
export interface InputDecoderOptions {
  rotary?: Partial<RotaryOptions>;
  /** `pulseDebounceMs` defaults to the rotary debounce time. */
  hook?: Partial<HookOptions>;
  /** The call button's glitch filter (default 20 ms). */
  buttonDebounceMs?: number;
}

/** Counters for diagnostics. */
export interface InputDecoderStats {
  rotary: RotaryStats;
  hook: HookStats;
  /** `key` events that named no dial key, dropped. */
  badKeys: number;
}

const KEYPAD = /^[0-9*#A-D]$/;

/**
 * Owns a {@link HookDecoder}, a {@link RotaryDecoder} and the button's debouncer, and is handed to
 * a hardware backend as its {@link HardwareEvents}. Emits each {@link PhoneInputEvent} once,
 * synchronously from the input call or a clock timer. Rotary trains that are not digits are logged
 * (warning, by the rotary decoder) and counted in `stats.rotary.rejected`, never emitted. With
 * `hook.pulsesOnHook`, on-hook breaks
 * of pulse length are decoded as rotary pulses. Keys from the device (`KEY x`, `DIGIT n`) pass
 * straight through as digits; anything that is not a dial key is logged and dropped.
 */
export class InputDecoder implements HardwareEvents {
  readonly hook: HookDecoder;
  readonly rotary: RotaryDecoder;
  private readonly button: EdgeDebouncer;
  private badKeys = 0;

  constructor(
    clock: Clock,
    private readonly emit: (event: PhoneInputEvent) => void,
    options: InputDecoderOptions = {},
    private readonly log: Logger = nullLogger,
  ) {
    this.rotary = new RotaryDecoder(
      clock,
      {
        digit: (d) => this.emit({ type: 'digit', digit: d.digit, source: 'rotary', atMs: d.endMs }),
        rejected: () => {},
      },
      options.rotary,
      log.child('rotary'),
    );
    this.hook = new HookDecoder(
      clock,
      {
        offHook: (atMs) => this.emit({ type: 'offHook', atMs }),
        onHook: (atMs) => this.emit({ type: 'onHook', atMs }),
        flash: (atMs, durationMs) => this.emit({ type: 'flash', atMs, durationMs }),
        pulse: (isBreak, atMs) => this.rotary.input('pulse', isBreak, atMs),
        pulsesAbandoned: () => this.rotary.reset(),
      },
      { pulseDebounceMs: this.rotary.options.debounceMs, ...options.hook },
      log.child('hook'),
    );
    this.button = new EdgeDebouncer(clock, options.buttonDebounceMs ?? 20, (pressed, atMs) => this.emit({ type: 'button', pressed, atMs }), false, 'button.debounce');
  }

  get stats(): InputDecoderStats {
    return { rotary: this.rotary.stats, hook: this.hook.stats, badKeys: this.badKeys };
  }

  input(role: InputRole, active: boolean, atMs: number): void {
    switch (role) {
      case 'hook':
        this.hook.input(active, atMs);
        return;
      case 'pulse':
      case 'offNormal':
        this.rotary.input(role, active, atMs);
        return;
      case 'button':
        this.button.input(active, atMs);
        return;
    }
  }

  key(key: string, atMs: number): void {
    const k = key.toUpperCase();
    if (!KEYPAD.test(k)) {
      this.badKeys++;
      this.log.warn('key from the device is not a dial key; dropped', { key });
      return;
    }
    this.emit({ type: 'digit', digit: k, source: 'keypad', atMs });
  }
}
