/**
 * The door station ("intercom") behaviour: the call button calls a list of targets, incoming
 * calls are answered by themselves, a DTMF code from the far end pulses the door relay, and two
 * LEDs show what the station is doing. Pure: it drives a {@link PhoneLine} and a
 * {@link HardwareBackend}, reads time and sets timers only through the injected {@link Clock}.
 *
 * Parallel calling: a {@link PhoneLine} places one call at a time, so `mode: 'parallel'` dials
 * `groupNumber`, a number the dial plan forks to several phones (an extension with several
 * registered phones, or a dial-plan rule that forks). Without a group number the targets are
 * called in sequence, and a warning says so at start.
 */
import { ConfigError } from '../config/config.ts';
import type { DtmfDigit } from '../media/dtmf/types.ts';
import type { HardwareBackend, OutputRole, OutputState } from '../hardware/types.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { DEFAULT_DOOR_CODE_CONFIG, DoorCode, doorCodeConfigProblems, type DoorCodeConfig } from './door-code.ts';
import type { Caller, LineEvents, PhoneLine } from './types.ts';

/** One number the call button calls; `timeoutMs` overrides {@link IntercomConfig.targetTimeoutMs}. */
export interface IntercomTarget {
  number: string;
  timeoutMs?: number;
}

/** Door station settings. {@link DEFAULT_INTERCOM_CONFIG} holds the defaults. */
export interface IntercomConfig {
  /** Whom the call button calls, in order (1-6 numbers, as the dial plan takes them). */
  targets: readonly (string | IntercomTarget)[];
  /** `sequence`: one after the other; `parallel`: `groupNumber` at once (see the module note). */
  mode: 'sequence' | 'parallel';
  /** The number the dial plan forks to every target, for `parallel`. */
  groupNumber?: string;
  /** How long the group number may ring before the station gives up, ms. */
  groupTimeoutMs: number;
  /** How long each target may take to answer before the next is called, ms (default 20 s). */
  targetTimeoutMs: number;
  /** The call button while calling or connected: ignored, or hangs up. */
  buttonWhileBusy: 'ignore' | 'hangup';
  /** Whether incoming calls are answered by themselves (the button answers them otherwise). */
  autoAnswer: boolean;
  /** Delay before an incoming call is answered, ms (0-5000). */
  autoAnswerDelayMs: number;
  /** Length of the announcement beep after the station answers an incoming call, ms; 0 = no beep. */
  announceMs: number;
  /** Callers (SIP user parts, exact) whose calls are taken; others are refused. Undefined = all. */
  callerWhitelist?: readonly string[];
  /** How long the door relay is pulsed, ms (default 3 s). */
  relayMs: number;
  /** The door code check. */
  door: DoorCodeConfig;
}

/** Defaults: sequence, 20 s per target, 1 s auto-answer delay, 1 s beep, 3 s relay, button ignored when busy. */
export const DEFAULT_INTERCOM_CONFIG: IntercomConfig = {
  targets: [],
  mode: 'sequence',
  groupTimeoutMs: 30_000,
  targetTimeoutMs: 20_000,
  buttonWhileBusy: 'ignore',
  autoAnswer: true,
  autoAnswerDelayMs: 1_000,
  announceMs: 1_000,
  relayMs: 3_000,
  door: DEFAULT_DOOR_CODE_CONFIG,
};

/** How many numbers the call button may call (door stations call up to six). */
export const MAX_INTERCOM_TARGETS = 6;

/** An intercom config with every key optional, `door` included. */
export type IntercomConfigInput = Partial<Omit<IntercomConfig, 'door'>> & { door?: Partial<DoorCodeConfig> };

/** Fills the defaults into a partial config (`door` merged key by key). */
export function withIntercomDefaults(partial: IntercomConfigInput): IntercomConfig {
  return { ...DEFAULT_INTERCOM_CONFIG, ...partial, door: { ...DEFAULT_DOOR_CODE_CONFIG, ...partial.door } };
}

/** Problems with an intercom config, each naming the key; empty when valid. */
export function intercomConfigProblems(cfg: IntercomConfig): string[] {
  const problems: string[] = [];
  const range = (key: string, v: number, min: number, max: number): void => {
    if (!(Number.isFinite(v) && v >= min && v <= max)) problems.push(`intercom.${key} must be ${min}-${max} (got ${v})`);
  };
  if (cfg.targets.length > MAX_INTERCOM_TARGETS) problems.push(`intercom.targets holds at most ${MAX_INTERCOM_TARGETS} numbers (got ${cfg.targets.length})`);
  cfg.targets.forEach((t, i) => {
    const target = typeof t === 'string' ? { number: t } : t;
    if (!/^[0-9A-Za-z*#+._-]{1,32}$/.test(target.number)) problems.push(`intercom.targets[${i}] is not a number to dial (got ${JSON.stringify(target.number)})`);
    if (target.timeoutMs !== undefined) range(`targets[${i}].timeoutMs`, target.timeoutMs, 1_000, 300_000);
  });
  if (cfg.mode !== 'sequence' && cfg.mode !== 'parallel') problems.push(`intercom.mode must be sequence or parallel (got ${String(cfg.mode)})`);
  if (cfg.buttonWhileBusy !== 'ignore' && cfg.buttonWhileBusy !== 'hangup') problems.push(`intercom.buttonWhileBusy must be ignore or hangup (got ${String(cfg.buttonWhileBusy)})`);
  range('targetTimeoutMs', cfg.targetTimeoutMs, 1_000, 300_000);
  range('groupTimeoutMs', cfg.groupTimeoutMs, 1_000, 300_000);
  range('autoAnswerDelayMs', cfg.autoAnswerDelayMs, 0, 5_000);
  range('announceMs', cfg.announceMs, 0, 5_000);
  range('relayMs', cfg.relayMs, 100, 60_000);
  return [...problems, ...doorCodeConfigProblems(cfg.door)];
}

/** What the station shows; `doorOpen` overlays the others while the relay is pulsed. */
export type IntercomIndication = 'idle' | 'calling' | 'ringing' | 'connected' | 'doorOpen';

const ON: OutputState = { mode: 'on' };
const OFF: OutputState = { mode: 'off' };
const SLOW: OutputState = { mode: 'blink', onMs: 500, offMs: 500 };
const FAST: OutputState = { mode: 'blink', onMs: 100, offMs: 100 };

/** The LED for each indication; `doorOpen` sets only the green LED and keeps the red one as it was. */
export const INTERCOM_INDICATIONS: Readonly<Record<IntercomIndication, Partial<Record<OutputRole, OutputState>>>> = {
  idle: { ledGreen: ON, ledRed: OFF },
  calling: { ledGreen: SLOW, ledRed: OFF },
  ringing: { ledGreen: OFF, ledRed: SLOW },
  connected: { ledGreen: OFF, ledRed: ON },
  doorOpen: { ledGreen: FAST },
};

/** The station's state as seen from outside. */
export type IntercomState = 'idle' | 'calling' | 'ringing' | 'connected';

/** An input event; only `{ type: 'button', pressed }` is acted upon, other types are ignored. */
export interface IntercomInput {
  readonly type: string;
  readonly pressed?: boolean;
}

/** What the intercom needs; the composition root builds it. */
export interface IntercomOptions {
  config: IntercomConfig;
  line: PhoneLine;
  hardware: HardwareBackend;
  clock: Clock;
  log: Logger;
  /** Rings while an incoming call waits to be answered (bell output, or the speaker's ringtone). */
  ringer?: { start(): void; stop(): void };
}

type Phase =
  | { kind: 'idle' }
  | { kind: 'calling'; plan: Required<IntercomTarget>[]; index: number; attempt: number; timer: TimerHandle }
  | { kind: 'ringing'; caller: string; timer?: TimerHandle }
  | { kind: 'connected'; peer: string }
  | { kind: 'releasing'; attempt: number; shows: IntercomState; then: () => void; guard: TimerHandle };

/** How long to wait for `ended` after hanging up before going on anyway, ms. */
const RELEASE_GUARD_MS = 2_000;

/**
 * One door station. {@link start} subscribes to the line and shows `idle`; {@link input} takes
 * button events from the input decoder; {@link stop} cancels timers and turns the LEDs off. The
 * station handles one call at a time: the line is single-call, so events that do not fit the
 * current phase are logged and ignored.
 */
export class Intercom {
  private phase: Phase = { kind: 'idle' };
  private attemptSeq = 0;
  private readonly doorCode: DoorCode;
  private announceTimer: TimerHandle | undefined;
  private doorTimer: TimerHandle | undefined;
  private readonly shown = new Map<OutputRole, string>();
  private readonly cfg: IntercomConfig;
  private stopped = false;

  constructor(private readonly opts: IntercomOptions) {
    const problems = intercomConfigProblems(opts.config);
    if (problems.length) throw new ConfigError(problems);
    this.cfg = opts.config;
    this.doorCode = new DoorCode(opts.config.door, opts.clock, opts.log.child('door'));
  }

  /** The current state (`releasing` shows the state it leads to). */
  get state(): IntercomState {
    return this.phase.kind === 'releasing' ? this.phase.shows : this.phase.kind;
  }

  /** Subscribes to the line (once) and shows `idle`. */
  start(): void {
    if (this.cfg.mode === 'parallel' && !this.cfg.groupNumber) {
      this.opts.log.warn('parallel calling needs intercom.groupNumber (a number the dial plan forks); calling the targets in sequence');
    }
    const live =
      <A extends unknown[]>(fn: (...args: A) => void) =>
      (...args: A): void => {
        if (!this.stopped) fn(...args);
      };
    const events: LineEvents = {
      incoming: live((caller: Caller) => this.onIncoming(caller)),
      ringing: live(() => this.opts.log.debug('far end rings')),
      connected: live(() => this.onConnected()),
      ended: live((cause: string, status?: number) => this.onEnded(cause, status)),
      digit: live((digit: DtmfDigit) => this.onDigit(digit)),
    };
    this.opts.line.listen(events);
    this.indicate();
  }

  /** Writes every LED again (after the hardware came back, e.g. a serial device reopened). */
  refreshOutputs(): void {
    if (this.stopped) return;
    this.shown.clear();
    this.indicate();
  }

  /** Cancels every timer and turns the LEDs off; a call in progress is hung up; later events are ignored. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.opts.ringer?.stop();
    this.cancelPhaseTimers();
    this.announceTimer?.cancel();
    this.doorTimer?.cancel();
    this.doorTimer = undefined;
    const busy = this.phase.kind !== 'idle';
    this.phase = { kind: 'idle' };
    if (busy) this.opts.line.hangup();
    this.doorCode.endCall();
    for (const role of ['ledGreen', 'ledRed'] as const) this.opts.hardware.setOutput(role, OFF);
    this.shown.clear();
  }

  /** An input event; a button press (not its release) acts. */
  input(event: IntercomInput): void {
    if (this.stopped || event.type !== 'button' || event.pressed !== true) return;
    const phase = this.phase;
    switch (phase.kind) {
      case 'idle':
        this.startCalling();
        return;
      case 'ringing':
        phase.timer?.cancel();
        this.answer(phase.caller);
        return;
      case 'calling':
      case 'connected':
        if (this.cfg.buttonWhileBusy === 'ignore') {
          this.opts.log.debug('button ignored while busy', { state: phase.kind });
          return;
        }
        this.opts.log.info('hanging up on button press', { state: phase.kind });
        this.release('idle', () => this.toIdle());
        return;
      case 'releasing':
        return;
    }
  }

  private plan(): Required<IntercomTarget>[] {
    if (this.cfg.mode === 'parallel' && this.cfg.groupNumber) return [{ number: this.cfg.groupNumber, timeoutMs: this.cfg.groupTimeoutMs }];
    return this.cfg.targets.map((t) => (typeof t === 'string' ? { number: t, timeoutMs: this.cfg.targetTimeoutMs } : { number: t.number, timeoutMs: t.timeoutMs ?? this.cfg.targetTimeoutMs }));
  }

  private startCalling(): void {
    const plan = this.plan();
    if (plan.length === 0) {
      this.opts.log.warn('call button pressed but intercom.targets is empty');
      return;
    }
    this.dialTarget(plan, 0);
  }

  private dialTarget(plan: Required<IntercomTarget>[], index: number): void {
    const target = plan[index]!;
    const attempt = ++this.attemptSeq;
    const timer = this.opts.clock.setTimer(target.timeoutMs, () => this.onTargetTimeout(attempt), 'intercom-target');
    this.phase = { kind: 'calling', plan, index, attempt, timer };
    this.indicate();
    this.opts.log.info('calling', { to: target.number, target: index + 1, of: plan.length, timeoutMs: target.timeoutMs });
    this.opts.line.dial(target.number).then(
      (r) => this.onDialResult(attempt, r.ok ? undefined : `${r.status} ${r.reason}`),
      (err: unknown) => this.onDialResult(attempt, err instanceof Error ? err.message : String(err)),
    );
  }

  private onDialResult(attempt: number, failure: string | undefined): void {
    const phase = this.phase;
    if (phase.kind === 'releasing' && phase.attempt === attempt && failure === undefined) {
      this.opts.line.hangup();
      return;
    }
    if (phase.kind !== 'calling' || phase.attempt !== attempt || failure === undefined) return;
    phase.timer.cancel();
    this.opts.log.info('call not placed', { to: phase.plan[phase.index]!.number, reason: failure });
    this.nextTarget(phase.plan, phase.index);
  }

  private onTargetTimeout(attempt: number): void {
    const phase = this.phase;
    if (phase.kind !== 'calling' || phase.attempt !== attempt) return;
    this.opts.log.info('no answer in time', { to: phase.plan[phase.index]!.number, timeoutMs: phase.plan[phase.index]!.timeoutMs });
    this.release('calling', () => this.nextTarget(phase.plan, phase.index));
  }

  private nextTarget(plan: Required<IntercomTarget>[], index: number): void {
    if (index + 1 < plan.length) {
      this.dialTarget(plan, index + 1);
      return;
    }
    this.opts.log.info('nobody answered', { targets: plan.length });
    this.toIdle();
  }

  /** Hangs up and waits for the line's `ended` (or a guard timeout) before `then`. */
  private release(shows: IntercomState, then: () => void): void {
    this.cancelPhaseTimers();
    const attempt = this.phase.kind === 'calling' ? this.phase.attempt : 0;
    const guard = this.opts.clock.setTimer(
      RELEASE_GUARD_MS,
      () => {
        this.opts.log.warn('line did not report the end of the call; going on', { waitedMs: RELEASE_GUARD_MS });
        this.finishRelease();
      },
      'intercom-release',
    );
    this.phase = { kind: 'releasing', attempt, shows, then, guard };
    this.doorCode.endCall();
    this.indicate();
    this.opts.line.hangup();
  }

  private finishRelease(): void {
    const phase = this.phase;
    if (phase.kind !== 'releasing') return;
    phase.guard.cancel();
    this.phase = { kind: 'idle' };
    phase.then();
  }

  private onIncoming(caller: Caller): void {
    const from = caller.user;
    if (this.phase.kind !== 'idle') {
      this.opts.log.warn('incoming call while busy ignored', { from, state: this.phase.kind });
      return;
    }
    const list = this.cfg.callerWhitelist;
    if (list && !list.includes(from)) {
      this.opts.log.info('incoming call refused: caller not on the whitelist', { from });
      this.opts.line.hangup();
      return;
    }
    this.opts.log.info('incoming call', { from, autoAnswer: this.cfg.autoAnswer, delayMs: this.cfg.autoAnswerDelayMs });
    const timer = this.cfg.autoAnswer ? this.opts.clock.setTimer(this.cfg.autoAnswerDelayMs, () => this.answer(from), 'intercom-auto-answer') : undefined;
    this.phase = timer ? { kind: 'ringing', caller: from, timer } : { kind: 'ringing', caller: from };
    this.opts.ringer?.start();
    this.indicate();
  }

  private answer(from: string): void {
    if (this.phase.kind !== 'ringing') return;
    if (!this.opts.line.answer()) {
      this.opts.log.warn('incoming call could not be answered', { from });
      this.toIdle();
      return;
    }
    this.connect(from, true);
  }

  private onConnected(): void {
    const phase = this.phase;
    if (phase.kind === 'calling') {
      phase.timer.cancel();
      this.connect(phase.plan[phase.index]!.number, false);
    } else if (phase.kind !== 'connected') {
      this.opts.log.debug('connected ignored', { state: phase.kind });
    }
  }

  private connect(peer: string, announce: boolean): void {
    this.opts.ringer?.stop();
    this.phase = { kind: 'connected', peer };
    this.doorCode.beginCall(peer);
    this.indicate();
    this.opts.log.info('connected', { peer });
    if (announce && this.cfg.announceMs > 0) {
      this.opts.line.playTone('callWaiting');
      this.announceTimer = this.opts.clock.setTimer(this.cfg.announceMs, () => this.stopAnnouncement(), 'intercom-announce');
    }
  }

  private stopAnnouncement(): void {
    if (!this.announceTimer) return;
    this.announceTimer.cancel();
    this.announceTimer = undefined;
    this.opts.line.playTone(undefined);
  }

  private onEnded(cause: string, status: number | undefined): void {
    const phase = this.phase;
    switch (phase.kind) {
      case 'releasing':
        this.finishRelease();
        return;
      case 'calling':
        phase.timer.cancel();
        this.opts.log.info('target did not take the call', { to: phase.plan[phase.index]!.number, cause, status });
        this.nextTarget(phase.plan, phase.index);
        return;
      case 'ringing':
      case 'connected':
        this.opts.log.info('call ended', { cause, status });
        this.toIdle();
        return;
      case 'idle':
        return;
    }
  }

  private onDigit(digit: DtmfDigit): void {
    if (this.phase.kind !== 'connected') return;
    const result = this.doorCode.digit(digit.digit);
    if (result.kind === 'open') {
      this.opts.hardware.pulse('relay', this.cfg.relayMs);
      this.doorTimer?.cancel();
      this.doorTimer = this.opts.clock.setTimer(
        this.cfg.relayMs,
        () => {
          this.doorTimer = undefined;
          this.indicate();
        },
        'intercom-door-open',
      );
      this.indicate();
    } else if (result.kind === 'refused') {
      this.opts.log.debug('door code digit refused', { reason: result.reason });
    }
  }

  private toIdle(): void {
    this.opts.ringer?.stop();
    this.cancelPhaseTimers();
    this.stopAnnouncement();
    this.doorCode.endCall();
    this.phase = { kind: 'idle' };
    this.indicate();
  }

  private cancelPhaseTimers(): void {
    const phase = this.phase;
    if (phase.kind === 'calling') phase.timer.cancel();
    if (phase.kind === 'ringing') phase.timer?.cancel();
    if (phase.kind === 'releasing') phase.guard.cancel();
  }

  /** Drives the LEDs from {@link INTERCOM_INDICATIONS}, writing only the outputs that change. */
  private indicate(): void {
    const wanted = { ...INTERCOM_INDICATIONS[this.state], ...(this.doorTimer ? INTERCOM_INDICATIONS.doorOpen : {}) };
    for (const [role, state] of Object.entries(wanted) as [OutputRole, OutputState][]) {
      const key = JSON.stringify(state);
      if (this.shown.get(role) === key) continue;
      this.shown.set(role, key);
      this.opts.hardware.setOutput(role, state);
    }
  }
}
