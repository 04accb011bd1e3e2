/**
 * The simulated phone hardware: a {@link HardwareBackend} driven by test hooks instead of wires,
 * for tests and `hookswitch run --sim`. Inputs are emitted as a real board would emit them (a
 * rotary digit becomes a train of pulse-contact edges with 10 pps, 60/40 break/make timing on the
 * injected clock); outputs, pulses and rings are recorded and reported to `onChange` for a UI.
 * One instance per test: no module state.
 */
import type { BoardProfile } from '../board-profile.ts';
import type { HardwareBackend, HardwareEvents, InputRole, OutputRole, OutputState } from '../types.ts';
import type { Clock, TimerHandle } from '../../runtime/clock.ts';

/** Rotary dial timing the simulator produces. */
export interface RotaryTiming {
  /** Pulses per second (a dial runs at 10 ± 1; the issue accepts 7-12). */
  pulsesPerSecond: number;
  /** Fraction of each pulse period the contact is open (about 0.6; accepted 0.55-0.70). */
  breakRatio: number;
  /** Off-normal closes this long before the first break (the dial starts running back). */
  offNormalLeadMs: number;
  /** Pause between digits (the finger moves to the next hole; decoders need over 300 ms). */
  interDigitMs: number;
  /** Extra 1 ms toggles before each contact transition, to test bounce immunity (0 = clean). */
  bounceEdges: number;
}

/** Defaults: a healthy dial, 10 pps with a 60 ms break and 40 ms make (the nominal values). */
export const DEFAULT_ROTARY: RotaryTiming = { pulsesPerSecond: 10, breakRatio: 0.6, offNormalLeadMs: 50, interDigitMs: 700, bounceEdges: 0 };

/** What changed, for a UI or a test's log. */
export type SimulatorChange =
  | { kind: 'input'; role: InputRole; active: boolean; atMs: number }
  | { kind: 'key'; key: string; atMs: number }
  | { kind: 'output'; role: OutputRole; state: OutputState; atMs: number }
  | { kind: 'ring'; cadence: readonly number[] | undefined; atMs: number };

/** A relay or output pulse the phone logic asked for. */
export interface PulseRecord {
  role: OutputRole;
  ms: number;
  atMs: number;
}

/** What a {@link SimulatorBackend} needs. */
export interface SimulatorOptions {
  clock: Clock;
  /** Limits the roles to the board's (a hook for a missing role throws); default: every role. */
  profile?: BoardProfile;
  /** `ring()` accepts cadences (a serial microcontroller); default: when the profile's ringer is `serial`. */
  ringsItself?: boolean;
  rotary?: Partial<RotaryTiming>;
  /** Called after every change the simulator emits or records. */
  onChange?: (change: SimulatorChange) => void;
  name?: string;
}

/**
 * A simulated board. `start` resolves at once; the hooks (`liftHandset`, `dialRotary`, ...) throw
 * before `start` and after `stop`. The record (`changes`, `pulses`, `rings`, `output()`) keeps
 * everything since construction.
 */
export class SimulatorBackend implements HardwareBackend {
  readonly name: string;
  /** Every change in order. */
  readonly changes: SimulatorChange[] = [];
  /** Every `pulse()` call. */
  readonly pulses: PulseRecord[] = [];
  /** Every accepted `ring()` call (undefined = ring off). */
  readonly rings: Array<readonly number[] | undefined> = [];
  onChange: ((change: SimulatorChange) => void) | undefined;
  private events: HardwareEvents | undefined;
  private stopped = false;
  private readonly inputs = new Map<InputRole, boolean>();
  private readonly outputs = new Map<OutputRole, OutputState>();
  private readonly pulseTimers = new Map<OutputRole, TimerHandle>();
  private readonly timers = new Set<TimerHandle>();
  private readonly rotary: RotaryTiming;
  private readonly ringsItself: boolean;
  private dialEndsAt = 0;
  private readonly pendingDials = new Set<() => void>();
  private ringing: readonly number[] | undefined;

  constructor(private readonly opts: SimulatorOptions) {
    this.name = opts.name ?? 'simulator';
    this.rotary = { ...DEFAULT_ROTARY, ...opts.rotary };
    this.ringsItself = opts.ringsItself ?? opts.profile?.ringer.mode === 'serial';
    this.onChange = opts.onChange;
  }

  async start(events: HardwareEvents): Promise<void> {
    if (this.stopped) throw new Error('simulator: start after stop');
    this.events = events;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    for (const resolve of this.pendingDials) resolve();
    this.pendingDials.clear();
    for (const t of this.pulseTimers.values()) t.cancel();
    this.pulseTimers.clear();
  }

  setOutput(role: OutputRole, state: OutputState): void {
    if (!this.hasOutput(role) || this.stopped) return;
    this.pulseTimers.get(role)?.cancel();
    this.pulseTimers.delete(role);
    this.recordOutput(role, state);
  }

  pulse(role: OutputRole, ms: number): void {
    if (!this.hasOutput(role) || this.stopped) return;
    this.pulses.push({ role, ms, atMs: this.opts.clock.now() });
    this.setOutput(role, { mode: 'on' });
    this.pulseTimers.set(
      role,
      this.opts.clock.setTimer(
        ms,
        () => {
          this.pulseTimers.delete(role);
          this.recordOutput(role, { mode: 'off' });
        },
        `sim.pulse.${role}`,
      ),
    );
  }

  ring(cadence: readonly number[] | undefined): boolean {
    if (!this.ringsItself) return false;
    this.ringing = cadence;
    this.rings.push(cadence);
    this.emit({ kind: 'ring', cadence, atMs: this.opts.clock.now() });
    return true;
  }

  /** The current state of an output (off when never set). */
  output(role: OutputRole): OutputState {
    return this.outputs.get(role) ?? { mode: 'off' };
  }

  /** The current level of an input (after polarity: true = active). */
  input(role: InputRole): boolean {
    return this.inputs.get(role) ?? false;
  }

  /** The cadence the device rings by itself, if any. */
  get ringCadence(): readonly number[] | undefined {
    return this.ringing;
  }

  /** Hook switch goes off-hook now. */
  liftHandset(): void {
    this.setInput('hook', true);
  }

  /** Hook switch goes on-hook now. */
  hangUp(): void {
    this.setInput('hook', false);
  }

  /** A hook flash: on-hook for `ms` (default 300, within the 100-600 ms flash window), then off-hook. */
  flash(ms = 300): Promise<void> {
    this.setInput('hook', false);
    return new Promise<void>((resolve) => {
      this.pendingDials.add(resolve);
      this.at(ms, () => {
        this.pendingDials.delete(resolve);
        this.setInput('hook', true);
        resolve();
      });
    });
  }

  /** Call button pressed. */
  pressButton(): void {
    this.setInput('button', true);
  }

  /** Call button released. */
  releaseButton(): void {
    this.setInput('button', false);
  }

  /** A key decoded by the device itself (a keypad key, `*`, `#`). */
  pressKey(key: string): void {
    const events = this.live();
    const atMs = this.opts.clock.now();
    events.key(key, atMs);
    this.emit({ kind: 'key', key, atMs });
  }

  /**
   * Dials `digits` (0-9) on the rotary dial as contact edges on the clock: per digit, off-normal
   * becomes active (when the board has it), then n breaks (10 for 0) of `breakRatio` of the pulse
   * period each, then off-normal inactive and the inter-digit pause. Every edge is scheduled at
   * once, so one `ManualClock.advance` plays the whole train; a second call starts after the
   * first ends. Resolves after the last digit's pause (or at `stop`).
   */
  dialRotary(digits: string): Promise<void> {
    if (!/^[0-9]+$/.test(digits)) throw new Error(`simulator: dialRotary takes digits 0-9 (got ${JSON.stringify(digits)})`);
    this.requireInput('pulse');
    this.live();
    const { edges, totalMs } = this.rotaryEdges(digits);
    const now = this.opts.clock.now();
    const startAt = Math.max(now, this.dialEndsAt);
    this.dialEndsAt = startAt + totalMs;
    // Each edge carries its planned time, as the kernel's input_event timestamps do: a timer
    // that fires late (a loaded machine) delays the edge's delivery, not its time.
    for (const e of edges) this.at(startAt - now + e.t, () => this.setInput(e.role, e.active, startAt + e.t));
    return new Promise<void>((resolve) => {
      this.pendingDials.add(resolve);
      this.at(startAt - now + totalMs, () => {
        this.pendingDials.delete(resolve);
        resolve();
      });
    });
  }

  /** The edge train of `digits`, times relative to its start. */
  private rotaryEdges(digits: string): { edges: Array<{ t: number; role: InputRole; active: boolean }>; totalMs: number } {
    const r = this.rotary;
    const periodMs = 1000 / r.pulsesPerSecond;
    const breakMs = periodMs * r.breakRatio;
    const withOffNormal = this.hasInput('offNormal');
    const edges: Array<{ t: number; role: InputRole; active: boolean }> = [];
    let t = 0;
    const edge = (role: InputRole, active: boolean): void => {
      for (let i = 0; i < r.bounceEdges; i++) {
        edges.push({ t: t++, role, active }, { t: t++, role, active: !active });
      }
      edges.push({ t, role, active });
    };
    for (const ch of digits) {
      if (withOffNormal) {
        edge('offNormal', true);
        t += r.offNormalLeadMs;
      }
      for (let i = ch === '0' ? 10 : Number(ch); i > 0; i--) {
        edge('pulse', true);
        t += breakMs;
        edge('pulse', false);
        t += periodMs - breakMs;
      }
      if (withOffNormal) edge('offNormal', false);
      t += r.interDigitMs;
    }
    return { edges, totalMs: t };
  }

  private setInput(role: InputRole, active: boolean, atMs = this.opts.clock.now()): void {
    this.requireInput(role);
    const events = this.live();
    this.inputs.set(role, active);
    events.input(role, active, atMs);
    this.emit({ kind: 'input', role, active, atMs });
  }

  private recordOutput(role: OutputRole, state: OutputState): void {
    this.outputs.set(role, state);
    this.emit({ kind: 'output', role, state, atMs: this.opts.clock.now() });
  }

  private at(ms: number, fn: () => void): void {
    const handle = this.opts.clock.setTimer(
      ms,
      () => {
        this.timers.delete(handle);
        if (!this.stopped) fn();
      },
      'sim.input',
    );
    this.timers.add(handle);
  }

  private emit(change: SimulatorChange): void {
    this.changes.push(change);
    this.onChange?.(change);
  }

  private live(): HardwareEvents {
    if (!this.events) throw new Error('simulator: not started');
    if (this.stopped) throw new Error('simulator: stopped');
    return this.events;
  }

  private hasInput(role: InputRole): boolean {
    const p = this.opts.profile;
    return !p || p.connection === 'serial' || p.inputs[role] !== undefined;
  }

  private hasOutput(role: OutputRole): boolean {
    const p = this.opts.profile;
    return !p || p.connection === 'serial' || p.outputs[role] !== undefined;
  }

  private requireInput(role: InputRole): void {
    if (!this.hasInput(role)) throw new Error(`simulator: board ${this.opts.profile?.name} has no ${role} input`);
  }
}
