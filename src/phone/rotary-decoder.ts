/**
 * Rotary dial pulse decoding: debounced pulse-contact (and optional off-normal contact)
 * transitions in, digits out. Pure: time comes from the edges' timestamps and an injected
 * {@link Clock}; timers only flush a decision when no further edge arrives.
 *
 * Timing figures are those of issue 5 ("about 60/40 ms break/make at 10 pps; accept 7-12 pps and
 * 55-70 % break; 10 pulses = 0; inter-digit pause over 300 ms"), widened by the tolerances in
 * {@link RotaryOptions}.
 */
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import { nullLogger, type Logger } from '../runtime/logger.ts';

/**
 * A glitch filter for one contact. A level counts only once the raw input has stayed there for
 * `holdMs`; the confirmed transition is dated at the first edge of its bounce burst (contacts
 * bounce after they really moved), so pulse widths are measured exactly through bounce. A raw
 * edge that repeats the current raw level (a duplicate) is ignored and counted.
 *
 * Edge timestamps must be on the clock's `now()` scale. Edges are settled lazily by their
 * timestamps when the next edge arrives and by a timer otherwise, so a batch of late-delivered
 * edges is judged exactly as if it had arrived on time.
 */
export class EdgeDebouncer {
  private stable: boolean;
  private raw: boolean;
  private lastRawAt = -Infinity;
  private burstStart: number | undefined;
  private settleTimer: TimerHandle | undefined;
  /** Raw edges ignored because they repeated the raw level. */
  duplicates = 0;
  /** Bursts that returned to the confirmed level before `holdMs` (no transition). */
  glitches = 0;

  constructor(
    private readonly clock: Clock,
    readonly holdMs: number,
    private readonly onEdge: (active: boolean, atMs: number) => void,
    initial = false,
    private readonly label = 'debounce',
  ) {
    this.stable = initial;
    this.raw = initial;
  }

  /** The confirmed level. */
  get level(): boolean {
    return this.stable;
  }

  /** When the unconfirmed burst began, if the raw input has left the confirmed level. */
  get pendingSince(): number | undefined {
    return this.burstStart;
  }

  /** Feeds one raw edge; returns false when it was a duplicate. */
  input(active: boolean, atMs: number): boolean {
    const at = Math.max(atMs, this.lastRawAt);
    this.settleIfDue(at);
    if (active === this.raw) {
      this.duplicates++;
      return false;
    }
    this.raw = active;
    this.lastRawAt = at;
    if (this.raw !== this.stable && this.burstStart === undefined) this.burstStart = at;
    this.settleTimer?.cancel();
    this.settleTimer = this.clock.setTimer(Math.max(0, at + this.holdMs - this.clock.now()), () => this.settle(), this.label);
    return true;
  }

  /** Confirms or discards the current burst if the raw level has held for `holdMs` by `nowMs`. */
  settleIfDue(nowMs: number): void {
    if (this.settleTimer && nowMs - this.lastRawAt >= this.holdMs) this.settle();
  }

  /** Forgets everything and takes `level` as confirmed (used when the contact's meaning is reset). */
  reset(level: boolean): void {
    this.settleTimer?.cancel();
    this.settleTimer = undefined;
    this.stable = level;
    this.raw = level;
    this.burstStart = undefined;
  }

  /**
   * Calls `decide` once no transition beginning before `deadline` (or at it, when `inclusive`) can
   * still be confirmed: first at `deadline + holdMs` on the clock, later again while such a burst
   * is still bouncing. Transitions settled meanwhile reach `onEdge` first, which may cancel this.
   */
  decideAfter(deadline: number, inclusive: boolean, decide: () => void, label: string): TimerHandle {
    let done = false;
    let handle: TimerHandle;
    const check = (): void => {
      if (done) return;
      this.settleIfDue(this.clock.now());
      if (done) return;
      const since = this.burstStart;
      if (since !== undefined && (inclusive ? since <= deadline : since < deadline)) {
        handle = this.clock.setTimer(Math.max(0, this.lastRawAt + this.holdMs - this.clock.now()), check, label);
        return;
      }
      done = true;
      decide();
    };
    handle = this.clock.setTimer(Math.max(0, deadline + this.holdMs - this.clock.now()), check, label);
    return {
      cancel: () => {
        done = true;
        handle.cancel();
      },
    };
  }

  private settle(): void {
    this.settleTimer?.cancel();
    this.settleTimer = undefined;
    const since = this.burstStart;
    this.burstStart = undefined;
    if (since === undefined) return;
    if (this.raw === this.stable) {
      this.glitches++;
      return;
    }
    this.stable = this.raw;
    this.onEdge(this.stable, since);
  }
}

/** Rotary timing limits. All durations in milliseconds. */
export interface RotaryOptions {
  /** Slowest nominal dial speed accepted, pulses per second (issue 5: 7). */
  minPps: number;
  /** Fastest nominal dial speed accepted (issue 5: 12). */
  maxPps: number;
  /** Smallest nominal break share of a pulse period (issue 5: 0.55). */
  minBreakRatio: number;
  /** Largest nominal break share (issue 5: 0.70). */
  maxBreakRatio: number;
  /** Relative slack on the speed limits for measurement jitter and worn governors (default 0.05: 6.65-12.6 pps). */
  rateTolerance: number;
  /** Absolute slack on the break-ratio limits (default 0.03: 52-73 %). */
  ratioTolerance: number;
  /** A make at least this long ends the digit (issue 5: "inter-digit pause over 300 ms"). */
  interDigitMs: number;
  /** A contact level must hold this long to count; shorter excursions are bounce (default 8). */
  debounceMs: number;
}

/** Defaults: issue 5's figures with the tolerances above. */
export const DEFAULT_ROTARY_OPTIONS: Readonly<RotaryOptions> = {
  minPps: 7,
  maxPps: 12,
  minBreakRatio: 0.55,
  maxBreakRatio: 0.7,
  rateTolerance: 0.05,
  ratioTolerance: 0.03,
  interDigitMs: 300,
  debounceMs: 8,
};

/** A decoded digit. */
export interface RotaryDigit {
  /** `1`-`9`, or `0` for ten pulses. */
  digit: string;
  pulses: number;
  /** Mean speed and break share over the complete pulse periods (absent for a single pulse). */
  pps?: number;
  breakRatio?: number;
  /** Start of the first break and end of the last, on the edge timestamp scale. */
  startMs: number;
  endMs: number;
}

/** Why a pulse train was not accepted as a digit. */
export type RotaryRejectCode = 'tooManyPulses' | 'rate' | 'breakRatio' | 'breakWidth' | 'makeWidth';

/** A pulse train that was not a valid digit. */
export interface RotaryRejection {
  code: RotaryRejectCode;
  /** One line for logs, with the measured value and the accepted range. */
  reason: string;
  pulses: number;
  startMs: number;
  endMs: number;
}

/** What the decoder reports; handlers must not throw. */
export interface RotaryEvents {
  digit(digit: RotaryDigit): void;
  rejected(rejection: RotaryRejection): void;
}

/** Counters for diagnostics. */
export interface RotaryStats {
  digits: number;
  rejected: number;
  /** Lone too-short breaks with the dial at rest (line noise), dropped silently. */
  noise: number;
  duplicateEdges: number;
  glitches: number;
}

interface Pulse {
  start: number;
  end?: number;
}

interface Train {
  pulses: Pulse[];
  /** The off-normal contact was active during the train, so the dial really moved. */
  offNormal: boolean;
  /** The off-normal contact returned while a break was open: finish at that break's end. */
  finishAtMake: boolean;
}

const fmt = (n: number): string => (Math.round(n * 10) / 10).toString();

/**
 * Decodes rotary dial pulses. The owner feeds raw `pulse` (active = contact open, a break) and
 * `offNormal` (active = dial away from rest) edges through {@link input}; the decoder debounces
 * them and reports each digit once, when it has ended: when the make after the last break has
 * lasted `interDigitMs`, or at once when the off-normal contact returns to rest.
 *
 * Acceptance: 1-10 breaks (ten = `0`); every break and every make inside the train within the
 * widths a dial at the accepted speeds and ratios can produce; for two or more pulses, the mean
 * speed and break share within the limits. Anything else is reported through `rejected` (never as a
 * digit). A single too-short break with the dial at rest (no off-normal activity) is line noise
 * and dropped silently, so a glitch or a hook bounce never produces a digit or a rejection.
 */
export class RotaryDecoder {
  readonly options: Readonly<RotaryOptions>;
  private readonly pulse: EdgeDebouncer;
  private readonly offNormal: EdgeDebouncer;
  private train: Train | undefined;
  private digitTimer: TimerHandle | undefined;
  private readonly counts = { digits: 0, rejected: 0, noise: 0 };
  private readonly breakRange: readonly [number, number];
  private readonly makeRange: readonly [number, number];
  private readonly ppsRange: readonly [number, number];
  private readonly ratioRange: readonly [number, number];

  constructor(
    clock: Clock,
    private readonly events: RotaryEvents,
    options: Partial<RotaryOptions> = {},
    private readonly log: Logger = nullLogger,
  ) {
    this.options = { ...DEFAULT_ROTARY_OPTIONS, ...options };
    const o = this.options;
    if (!(o.minPps > 0 && o.maxPps >= o.minPps && o.minBreakRatio > 0 && o.maxBreakRatio < 1 && o.maxBreakRatio >= o.minBreakRatio)) {
      throw new Error(`rotary: bad timing limits (pps ${o.minPps}-${o.maxPps}, break ratio ${o.minBreakRatio}-${o.maxBreakRatio})`);
    }
    this.ppsRange = [o.minPps * (1 - o.rateTolerance), o.maxPps * (1 + o.rateTolerance)];
    this.ratioRange = [o.minBreakRatio - o.ratioTolerance, o.maxBreakRatio + o.ratioTolerance];
    const [slow, fast] = this.ppsRange.map((pps) => 1000 / pps) as [number, number];
    this.breakRange = [this.ratioRange[0] * fast, this.ratioRange[1] * slow];
    this.makeRange = [(1 - this.ratioRange[1]) * fast, (1 - this.ratioRange[0]) * slow];
    if (o.interDigitMs <= this.makeRange[1]) {
      throw new Error(`rotary: interDigitMs ${o.interDigitMs} must exceed the longest make in a digit (${fmt(this.makeRange[1])} ms)`);
    }
    this.pulse = new EdgeDebouncer(clock, o.debounceMs, (a, at) => this.onPulse(a, at), false, 'rotary.pulse.debounce');
    this.offNormal = new EdgeDebouncer(clock, o.debounceMs, (a) => this.onOffNormal(a), false, 'rotary.offNormal.debounce');
  }

  /** The accepted widths of one break and of one make inside a digit, in ms (derived from the options). */
  get limits(): { breakMs: readonly [number, number]; makeMs: readonly [number, number]; pps: readonly [number, number]; breakRatio: readonly [number, number] } {
    return { breakMs: this.breakRange, makeMs: this.makeRange, pps: this.ppsRange, breakRatio: this.ratioRange };
  }

  get stats(): RotaryStats {
    return {
      ...this.counts,
      duplicateEdges: this.pulse.duplicates + this.offNormal.duplicates,
      glitches: this.pulse.glitches + this.offNormal.glitches,
    };
  }

  /** A raw contact edge (the `HardwareEvents.input` stream for these two roles). */
  input(role: 'pulse' | 'offNormal', active: boolean, atMs: number): void {
    (role === 'pulse' ? this.pulse : this.offNormal).input(active, atMs);
  }

  /**
   * Drops any train in progress without a report and takes both contacts as at rest (used when
   * pulses come through the hook switch and the line went on-hook for longer than a pulse).
   */
  reset(): void {
    if (this.train) this.log.debug('pulse train abandoned', { pulses: this.train.pulses.length });
    this.train = undefined;
    this.digitTimer?.cancel();
    this.digitTimer = undefined;
    this.pulse.reset(false);
    this.offNormal.reset(false);
  }

  private onPulse(isBreak: boolean, at: number): void {
    const train = this.train;
    if (isBreak) {
      this.digitTimer?.cancel();
      this.digitTimer = undefined;
      const last = train?.pulses.at(-1);
      if (train && last?.end !== undefined && at - last.end >= this.options.interDigitMs) this.finish();
      if (!this.train) this.train = { pulses: [], offNormal: this.offNormal.level, finishAtMake: false };
      this.train.pulses.push({ start: at });
      return;
    }
    const open = train?.pulses.at(-1);
    if (!train || !open || open.end !== undefined) return;
    open.end = at;
    if (train.finishAtMake) {
      this.finish();
      return;
    }
    this.digitTimer = this.pulse.decideAfter(at + this.options.interDigitMs, false, () => this.finish(), 'rotary.interDigit');
  }

  private onOffNormal(away: boolean): void {
    if (away) {
      // The dial left rest: whatever came before is a finished digit.
      if (this.train?.pulses.at(-1)?.end !== undefined) this.finish();
      if (this.train) this.train.offNormal = true;
      return;
    }
    const train = this.train;
    if (!train) return;
    if (train.pulses.at(-1)?.end === undefined) train.finishAtMake = true;
    else this.finish();
  }

  private finish(): void {
    const train = this.train;
    this.train = undefined;
    this.digitTimer?.cancel();
    this.digitTimer = undefined;
    if (!train || train.pulses.length === 0) return;
    const pulses = train.pulses;
    const startMs = pulses[0]!.start;
    const endMs = pulses.at(-1)!.end ?? startMs;
    const single = pulses.length === 1 ? endMs - startMs : undefined;
    if (single !== undefined && single < this.breakRange[0] && !train.offNormal) {
      this.counts.noise++;
      this.log.debug('lone short break ignored as noise', { breakMs: fmt(single) });
      return;
    }
    const verdict = this.judge(pulses);
    if ('code' in verdict) {
      this.counts.rejected++;
      const rejection: RotaryRejection = { ...verdict, pulses: pulses.length, startMs, endMs };
      this.log.warn('rotary pulse train rejected', { code: verdict.code, reason: verdict.reason, pulses: pulses.length });
      this.events.rejected(rejection);
      return;
    }
    this.counts.digits++;
    const digit: RotaryDigit = { digit: String(pulses.length % 10), pulses: pulses.length, ...verdict, startMs, endMs };
    this.log.debug('rotary digit', { digit: digit.digit, pps: verdict.pps, breakRatio: verdict.breakRatio });
    this.events.digit(digit);
  }

  private judge(pulses: Pulse[]): { pps?: number; breakRatio?: number } | { code: RotaryRejectCode; reason: string } {
    const n = pulses.length;
    if (n > 10) return { code: 'tooManyPulses', reason: `${n} pulses (a digit has 1-10)` };
    const range = (r: readonly [number, number], unit = ''): string => `${fmt(r[0])}-${fmt(r[1])}${unit}`;
    let pps: number | undefined;
    let breakRatio: number | undefined;
    if (n >= 2) {
      const span = pulses[n - 1]!.start - pulses[0]!.start;
      let broken = 0;
      for (let i = 0; i < n - 1; i++) broken += pulses[i]!.end! - pulses[i]!.start;
      pps = ((n - 1) * 1000) / span;
      breakRatio = broken / span;
      if (pps < this.ppsRange[0] || pps > this.ppsRange[1]) {
        return { code: 'rate', reason: `${fmt(pps)} pps outside ${range(this.ppsRange, ' pps')}` };
      }
      if (breakRatio < this.ratioRange[0] || breakRatio > this.ratioRange[1]) {
        return { code: 'breakRatio', reason: `break ${fmt(breakRatio * 100)} % outside ${range(this.ratioRange.map((r) => r * 100) as [number, number], ' %')}` };
      }
    }
    for (let i = 0; i < n; i++) {
      const p = pulses[i]!;
      const width = p.end! - p.start;
      if (width < this.breakRange[0] || width > this.breakRange[1]) {
        return { code: 'breakWidth', reason: `break ${i + 1} lasted ${fmt(width)} ms, outside ${range(this.breakRange, ' ms')}` };
      }
      if (i < n - 1) {
        const make = pulses[i + 1]!.start - p.end!;
        if (make < this.makeRange[0] || make > this.makeRange[1]) {
          return { code: 'makeWidth', reason: `make ${i + 1} lasted ${fmt(make)} ms, outside ${range(this.makeRange, ' ms')}` };
        }
      }
    }
    return pps === undefined ? {} : { pps, breakRatio };
  }
}
