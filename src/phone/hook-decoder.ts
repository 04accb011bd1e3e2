/**
 * Hook switch decoding: raw hook edges in, `offHook` / `onHook` / `flash` out, with dial pulses
 * sent through the hook handed on to a pulse decoder when the phone dials that way. Pure: time
 * comes from the edges' timestamps and an injected {@link Clock}.
 */
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import { nullLogger, type Logger } from '../runtime/logger.ts';
import { EdgeDebouncer } from './rotary-decoder.ts';

/** Hook timing. All durations in milliseconds. */
export interface HookOptions {
  /** The hook must stay off-hook this long to count as lifted; in normal mode also the glitch filter (default 30). */
  debounceMs: number;
  /** Shortest on-hook that is a flash (issue 5: "on-hook 100-600 ms, configurable"). */
  flashMinMs: number;
  /** Longest on-hook that is a flash; longer is a hang-up. */
  flashMaxMs: number;
  /**
   * The rotary dial pulses through the hook switch (one line for both). On-hook breaks shorter
   * than `flashMinMs` are then dial pulses, handed on through {@link HookEvents.pulse}; raise
   * `flashMinMs` above the dial's break (a slow dial at 7 pps and 70 % break opens for 100 ms).
   */
  pulsesOnHook: boolean;
  /** The glitch filter in `pulsesOnHook` mode; must be shorter than a make between pulses (default 8). */
  pulseDebounceMs: number;
  /** On-hook excursions starting this soon after the lift are switch bounce: no pulse, no flash (default 150). */
  settleMs: number;
}

/** Defaults: issue 5's flash window; the debounce and settle times are this decoder's choice. */
export const DEFAULT_HOOK_OPTIONS: Readonly<HookOptions> = {
  debounceMs: 30,
  flashMinMs: 100,
  flashMaxMs: 600,
  pulsesOnHook: false,
  pulseDebounceMs: 8,
  settleMs: 150,
};

/** What the decoder reports; handlers must not throw. Times are edge timestamps. */
export interface HookEvents {
  /** The handset was lifted at `atMs` (reported once the lift held for `debounceMs`). */
  offHook(atMs: number): void;
  /** The handset was put down at `atMs` (reported once it stayed down longer than `flashMaxMs`). */
  onHook(atMs: number): void;
  /** A hook flash: on-hook from `atMs` for `durationMs`, within `flashMinMs`-`flashMaxMs`. */
  flash(atMs: number, durationMs: number): void;
  /**
   * `pulsesOnHook` only: a raw hook edge while off-hook and settled, as a pulse-contact edge
   * (`isBreak` = on-hook), for a pulse decoder that debounces it itself.
   */
  pulse?(isBreak: boolean, atMs: number): void;
  /** `pulsesOnHook` only: the on-hook outlasted any pulse; the pulse decoder should drop its train. */
  pulsesAbandoned?(): void;
}

/** Counters for diagnostics. */
export interface HookStats {
  flashes: number;
  /** On-hook excursions too short for a flash (and, in `pulsesOnHook` mode, left to the pulse decoder). */
  shortBreaks: number;
  /** Lifts or breaks discarded as switch bounce (too short a lift, or within `settleMs` of it). */
  bounces: number;
  duplicateEdges: number;
  glitches: number;
}

type State = 'onHook' | 'lifting' | 'offHook' | 'break';

/**
 * Decodes the hook switch (the `hook` role: active = off-hook). Starts on-hook.
 *
 * - Lift: off-hook confirmed once it held `debounceMs` → `offHook`.
 * - Put down: an on-hook break is judged by its length d: d < `flashMinMs` → ignored (or a dial
 *   pulse in `pulsesOnHook` mode); `flashMinMs` ≤ d ≤ `flashMaxMs` → `flash` when the hook comes
 *   back; d > `flashMaxMs` → `onHook`, reported as soon as that is certain.
 * - Bounce never yields an event: excursions shorter than the glitch filter vanish, lifts shorter
 *   than `debounceMs` are dropped, and breaks starting within `settleMs` of the lift are ignored
 *   unless they turn into a hang-up.
 */
export class HookDecoder {
  readonly options: Readonly<HookOptions>;
  private readonly line: EdgeDebouncer;
  private state: State = 'onHook';
  private liftAt = 0;
  private offHookAt = -Infinity;
  private breakAt = 0;
  private decision: TimerHandle | undefined;
  private abandon: TimerHandle | undefined;
  private readonly counts = { flashes: 0, shortBreaks: 0, bounces: 0 };

  constructor(
    clock: Clock,
    private readonly events: HookEvents,
    options: Partial<HookOptions> = {},
    private readonly log: Logger = nullLogger,
  ) {
    this.options = { ...DEFAULT_HOOK_OPTIONS, ...options };
    const o = this.options;
    if (!(o.flashMinMs > 0 && o.flashMaxMs >= o.flashMinMs)) {
      throw new Error(`hook: flash window ${o.flashMinMs}-${o.flashMaxMs} ms is empty`);
    }
    const hold = o.pulsesOnHook ? Math.min(o.pulseDebounceMs, o.debounceMs) : o.debounceMs;
    this.line = new EdgeDebouncer(clock, hold, (offHook, at) => this.onLevel(offHook, at), false, 'hook.debounce');
  }

  /** Whether the decoder currently takes the handset as lifted (a break in progress still counts as lifted). */
  get isOffHook(): boolean {
    return this.state === 'offHook' || this.state === 'break';
  }

  get stats(): HookStats {
    return { ...this.counts, duplicateEdges: this.line.duplicates, glitches: this.line.glitches };
  }

  /** A raw hook edge (`active` = off-hook), from `HardwareEvents.input`. */
  input(offHook: boolean, atMs: number): void {
    if (!this.line.input(offHook, atMs)) return;
    const o = this.options;
    if (o.pulsesOnHook && this.isOffHook && atMs - this.offHookAt >= o.settleMs) this.events.pulse?.(!offHook, atMs);
  }

  private onLevel(offHook: boolean, at: number): void {
    const o = this.options;
    switch (this.state) {
      case 'onHook':
        if (!offHook) return;
        this.state = 'lifting';
        this.liftAt = at;
        if (this.line.holdMs >= o.debounceMs) this.lifted();
        else this.decision = this.line.decideAfter(at + o.debounceMs, false, () => this.lifted(), 'hook.lift');
        return;
      case 'lifting':
        if (offHook) return;
        this.cancelTimers();
        this.counts.bounces++;
        this.log.debug('lift shorter than the debounce time ignored', { ms: at - this.liftAt });
        this.state = 'onHook';
        return;
      case 'offHook':
        if (offHook) return;
        this.state = 'break';
        this.breakAt = at;
        if (o.pulsesOnHook) this.abandon = this.line.decideAfter(at + o.flashMinMs, false, () => this.abandonPulses(), 'hook.pulseMax');
        this.decision = this.line.decideAfter(at + o.flashMaxMs, true, () => this.hungUp(), 'hook.flashMax');
        return;
      case 'break': {
        if (!offHook) return;
        this.cancelTimers();
        const d = at - this.breakAt;
        if (d > o.flashMaxMs) {
          this.hungUp();
          this.onLevel(true, at);
          return;
        }
        this.state = 'offHook';
        if (this.breakAt - this.offHookAt < o.settleMs) {
          this.counts.bounces++;
          this.log.debug('on-hook bounce after the lift ignored', { ms: d });
        } else if (d >= o.flashMinMs) {
          // Issue 5: "Hook flash (on-hook 100-600 ms, configurable)".
          if (o.pulsesOnHook) this.events.pulsesAbandoned?.();
          this.counts.flashes++;
          this.log.debug('hook flash', { ms: d });
          this.events.flash(this.breakAt, d);
        } else {
          this.counts.shortBreaks++;
        }
        return;
      }
    }
  }

  private lifted(): void {
    this.decision = undefined;
    this.state = 'offHook';
    this.offHookAt = this.liftAt;
    if (this.options.pulsesOnHook) this.events.pulsesAbandoned?.();
    this.log.debug('off-hook');
    this.events.offHook(this.liftAt);
  }

  private abandonPulses(): void {
    this.abandon = undefined;
    this.events.pulsesAbandoned?.();
  }

  private hungUp(): void {
    this.cancelTimers();
    this.state = 'onHook';
    if (this.options.pulsesOnHook) this.events.pulsesAbandoned?.();
    this.log.debug('on-hook');
    this.events.onHook(this.breakAt);
  }

  private cancelTimers(): void {
    this.decision?.cancel();
    this.decision = undefined;
    this.abandon?.cancel();
    this.abandon = undefined;
  }
}
