/**
 * The handset state machine: what an ATA's FXS port does for an analog phone. It takes phone
 * events (hook, flash, digits from a rotary or keypad dial) and line events, and drives the
 * {@link PhoneLine} (dial, answer, hang up, call-progress tones) and the {@link Ringer}. Pure: time
 * comes from the injected {@link Clock}.
 *
 * ```
 * idle ──offHook──▶ dialTone ──digit──▶ collecting ──complete/#/timeout──▶ calling ──connected──▶ connected
 *  │ ▲                 │ (hotline: straight to calling)   │ none                │ ended(status)       │ ended
 *  │ └──── onHook (from any off-hook state; hangs up) ────┴──▶ failed ◀────────┴─────────────────────┘
 *  incoming ─▶ ringing ──offHook──▶ connected              (busy/congestion tone, then warning howler)
 * ```
 *
 * One call at a time: the device endpoint holds one call, so hook flash during a call is logged
 * and ignored; hold, swap and call waiting need a second call on the line (a later PhoneLine).
 * Outside a call a flash gives a fresh dial tone, as re-lifting would.
 */
import type { HardwareBackend } from '../hardware/types.ts';
import type { DtmfDigit } from '../media/dtmf/types.ts';
import type { ToneName } from '../media/tone/tone-sets.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { DigitMap } from './digit-map.ts';
import { Ringer, type RingerDrive } from './ringer.ts';
import type { Caller, LineEvents, PhoneLine } from './types.ts';

/**
 * One input from the phone, as `src/phone/input-decoder.ts` produces it: the hook went up or
 * down, a hook flash, a dialled digit (`digit` holds `0`-`9`, `*`, `#` or `A`-`D`), or the
 * intercom call button (which a handset ignores).
 */
export interface PhoneEvent {
  type: 'offHook' | 'onHook' | 'flash' | 'digit' | 'button';
  digit?: string;
}

/** The handset's settings. */
export interface HandsetConfig {
  /** How long to wait for another digit before dialling what matches (ms). */
  interDigitMs: number;
  /** Off-hook without dialling this long gives the off-hook warning howler (ms; 30-60 s is usual). */
  offHookWarningMs: number;
  /** How long a busy, congestion or unobtainable tone plays before the howler (ms). */
  failureToneMs: number;
  /** A number dialled at once when the handset is lifted (a hotline phone has no dial tone). */
  hotline?: string;
  /** Ring frequency (Hz). */
  ringFrequencyHz: number;
  /** ISO 3166-1 alpha-2 country: ring cadence (tones come from the line's own `tones.country`). */
  country: string;
}

/** The defaults (North America: `us`, 20 Hz ringing). */
export const HANDSET_DEFAULTS: Readonly<HandsetConfig> = {
  interDigitMs: 4000,
  offHookWarningMs: 45_000,
  failureToneMs: 30_000,
  ringFrequencyHz: 20,
  country: 'us',
};

/** Countries that ring at 20 Hz (North American Numbering Plan practice); the rest ring at 25 Hz. */
const TWENTY_HZ = new Set(['us', 'ca']);

/**
 * Fills in the defaults of a partial config; without `ringFrequencyHz` the country decides
 * (20 Hz for us/ca, 25 Hz elsewhere). Throws an Error with a one-line message on a bad value.
 */
export function resolveHandsetConfig(input: Partial<HandsetConfig> = {}): HandsetConfig {
  const country = (input.country ?? HANDSET_DEFAULTS.country).toLowerCase();
  const cfg: HandsetConfig = {
    interDigitMs: input.interDigitMs ?? HANDSET_DEFAULTS.interDigitMs,
    offHookWarningMs: input.offHookWarningMs ?? HANDSET_DEFAULTS.offHookWarningMs,
    failureToneMs: input.failureToneMs ?? HANDSET_DEFAULTS.failureToneMs,
    ringFrequencyHz: input.ringFrequencyHz ?? (TWENTY_HZ.has(country) ? 20 : 25),
    country,
    ...(input.hotline === undefined ? {} : { hotline: input.hotline }),
  };
  for (const key of ['interDigitMs', 'offHookWarningMs', 'failureToneMs', 'ringFrequencyHz'] as const) {
    if (!(Number.isFinite(cfg[key]) && cfg[key] > 0)) throw new Error(`handset ${key} must be a positive number (got ${cfg[key]})`);
  }
  if (cfg.hotline !== undefined && !/^[0-9*#+]{1,64}$/.test(cfg.hotline)) {
    throw new Error(`handset hotline must be 1 to 64 digits, *, # or + (got ${JSON.stringify(cfg.hotline)})`);
  }
  return cfg;
}

/** Where the handset is. */
export type HandsetState =
  | 'idle'
  | 'ringing'
  | 'dialTone'
  | 'collecting'
  | 'calling'
  | 'connected'
  | 'failed'
  | 'warning';

/** What a {@link Handset} needs; the composition root wires it. */
export interface HandsetOptions {
  line: PhoneLine;
  /** The board, for the ringer. */
  hardware: Pick<HardwareBackend, 'setOutput' | 'ring'>;
  /** Which ringer outputs the board has (both sets when absent; missing roles are ignored). */
  ringerDrive?: RingerDrive;
  digitMap: Pick<DigitMap, 'completion' | 'matches' | 'uses'>;
  clock: Clock;
  logger: Logger;
  config: HandsetConfig;
}

const DIAL_KEY = /^[0-9*#A-D]$/;

/**
 * The handset. The constructor subscribes to the line ({@link PhoneLine.listen}); feed phone
 * events to {@link Handset.input}. {@link Handset.close} stops the ringer and the timers.
 */
export class Handset {
  private current: HandsetState = 'idle';
  private digits = '';
  private playing: ToneName | undefined;
  private timer: TimerHandle | undefined;
  /** Counts dial attempts, so a late `dial()` result for an abandoned attempt is recognised. */
  private attempt = 0;
  /** The attempt the handset was put down during, before `dial()` had resolved. */
  private abandoned = 0;
  private readonly ringer: Ringer;
  private readonly log: Logger;
  private readonly cfg: HandsetConfig;

  constructor(private readonly opts: HandsetOptions) {
    this.log = opts.logger;
    this.cfg = opts.config;
    this.ringer = new Ringer({
      backend: opts.hardware,
      clock: opts.clock,
      logger: opts.logger.child('ringer'),
      country: this.cfg.country,
      frequencyHz: this.cfg.ringFrequencyHz,
      ...(opts.ringerDrive ? { drive: opts.ringerDrive } : {}),
    });
    const events: LineEvents = {
      incoming: (caller) => this.incoming(caller),
      ringing: () => this.farEndRinging(),
      connected: () => this.connected(),
      ended: (cause, status) => this.ended(cause, status),
      digit: (digit) => this.farEndDigit(digit),
    };
    opts.line.listen(events);
  }

  get state(): HandsetState {
    return this.current;
  }

  /** The digits collected so far for the next call. */
  get dialled(): string {
    return this.digits;
  }

  /** Stops the ringer and every timer (at shutdown); the line is left as it is. */
  close(): void {
    this.ringer.stop();
    this.cancelTimer();
  }

  /** One phone event. Never throws; events that make no sense in the current state are logged. */
  input(event: PhoneEvent): void {
    switch (event.type) {
      case 'offHook':
        return this.offHook();
      case 'onHook':
        return this.onHook();
      case 'flash':
        return this.flash();
      case 'digit':
        return this.digit(event.digit);
      case 'button':
        this.log.debug('call button ignored by a handset');
        return;
    }
  }

  // ---- phone events ----

  private offHook(): void {
    if (this.current === 'idle') return this.startDialling();
    if (this.current !== 'ringing') {
      this.log.debug('off-hook while already off-hook', { state: this.current });
      return;
    }
    this.ringer.stop();
    if (this.opts.line.answer()) {
      this.enter('connected');
      this.log.info('answered');
      return;
    }
    // The caller gave up just as the handset was lifted: a lift like any other.
    this.log.info('call gone before it was answered');
    this.startDialling();
  }

  private onHook(): void {
    if (this.current === 'idle' || this.current === 'ringing') return;
    if (this.current === 'calling') this.abandoned = this.attempt;
    if (this.current === 'calling' || this.current === 'connected') this.opts.line.hangup();
    this.cancelTimer();
    this.tone(undefined);
    this.digits = '';
    this.enter('idle');
    this.log.info('on-hook');
  }

  private flash(): void {
    switch (this.current) {
      case 'calling':
      case 'connected':
        this.log.info('hook flash ignored: the device holds one call (no hold, swap or call waiting)', { state: this.current });
        return;
      case 'dialTone':
      case 'collecting':
      case 'failed':
      case 'warning':
        this.log.info('hook flash: fresh dial tone', { state: this.current });
        return this.startDialling();
      case 'idle':
      case 'ringing':
        this.log.debug('hook flash while on-hook ignored');
        return;
    }
  }

  private digit(key: string | undefined): void {
    if (key === undefined || !DIAL_KEY.test(key)) {
      this.log.warn('bad digit from the phone ignored', { digit: key });
      return;
    }
    switch (this.current) {
      case 'dialTone':
      case 'collecting':
        return this.collect(key);
      case 'connected':
        this.opts.line.sendDigits(key);
        return;
      default:
        this.log.debug('digit ignored', { state: this.current, digit: key });
    }
  }

  // ---- dialling ----

  private startDialling(): void {
    this.cancelTimer();
    this.digits = '';
    if (this.cfg.hotline !== undefined) {
      this.log.info('hotline', { to: this.cfg.hotline });
      this.tone(undefined);
      return this.dial(this.cfg.hotline);
    }
    this.enter('dialTone');
    this.tone('dial');
    this.timer = this.opts.clock.setTimer(this.cfg.offHookWarningMs, () => this.warning(), 'off-hook-warning');
  }

  private collect(key: string): void {
    const map = this.opts.digitMap;
    if (key === '#' && !map.uses(`${this.digits}#`)) {
      // `#` is the send key unless the dial plan uses it in a number.
      if (this.digits === '') {
        this.log.debug('# with nothing dialled ignored');
        return;
      }
      return this.dial(this.digits);
    }
    if (this.current === 'dialTone') {
      this.cancelTimer();
      this.tone(undefined);
      this.enter('collecting');
    }
    this.digits += key;
    this.cancelTimer();
    switch (map.completion(this.digits)) {
      case 'complete':
        return this.dial(this.digits);
      case 'none':
        return this.fail('congestion', 'number unobtainable');
      case 'partial':
        this.timer = this.opts.clock.setTimer(this.cfg.interDigitMs, () => this.interDigitTimeout(), 'inter-digit');
    }
  }

  /** RFC 3435 §2.1.5: at the timer, what was collected is dialled when it matches a pattern. */
  private interDigitTimeout(): void {
    this.timer = undefined;
    if (this.opts.digitMap.matches(this.digits)) this.dial(this.digits);
    else this.fail('congestion', 'number unobtainable');
  }

  private dial(number: string): void {
    this.cancelTimer();
    this.enter('calling');
    const attempt = ++this.attempt;
    this.log.info('dialling', { to: number });
    this.opts.line.dial(number).then(
      (result) => {
        if (attempt === this.attempt && this.current === 'calling') {
          if (!result.ok) {
            this.log.info('call refused', { to: number, status: result.status, reason: result.reason });
            this.failedCall(result.status);
          }
          return;
        }
        const busyAgain = this.current === 'ringing' || this.current === 'calling' || this.current === 'connected';
        if (result.ok && attempt === this.abandoned && !busyAgain) {
          this.log.info('hanging up a call placed after the handset was put down', { to: number });
          this.opts.line.hangup();
        }
      },
      (err: unknown) => {
        this.log.error('dial failed', { to: number, reason: err instanceof Error ? err.message : String(err) });
        if (attempt === this.attempt && this.current === 'calling') this.fail('congestion', 'dial failed');
      },
    );
  }

  /**
   * A call we placed failed with `status`. RFC 3261 §21.4.7 486 Busy Here and §21.6.1 600 Busy
   * Everywhere mean the callee is busy: busy tone; any other failure: congestion tone.
   */
  private failedCall(status: number | undefined): void {
    const busy = status === 486 || status === 600;
    this.fail(busy ? 'busy' : 'congestion', busy ? 'busy' : 'call failed');
  }

  /** Plays a failure tone until on-hook; after `failureToneMs` the howler takes over. */
  private fail(tone: 'busy' | 'congestion', why: string): void {
    this.cancelTimer();
    this.enter('failed');
    this.log.info(why, { tone, dialled: this.digits });
    this.tone(tone);
    this.timer = this.opts.clock.setTimer(this.cfg.failureToneMs, () => this.warning(), 'failure-tone');
  }

  private warning(): void {
    this.timer = undefined;
    this.enter('warning');
    this.log.info('off-hook warning');
    this.tone('offHookWarning');
  }

  // ---- line events ----

  private incoming(caller: Caller): void {
    switch (this.current) {
      case 'idle':
        this.enter('ringing');
        this.log.info('ringing', { from: caller.user, ...(caller.display ? { name: caller.display } : {}) });
        this.ringer.start();
        return;
      case 'ringing':
        return;
      case 'calling':
      case 'connected':
        // The device endpoint answers 486 itself while it holds a call.
        this.log.warn('incoming call while in a call ignored', { from: caller.user, state: this.current });
        return;
      default:
        this.log.info('incoming call refused: the handset is off-hook', { from: caller.user, state: this.current });
        this.opts.line.hangup();
    }
  }

  private farEndRinging(): void {
    if (this.current === 'calling') this.tone('ringback');
  }

  private connected(): void {
    if (this.current === 'calling') {
      this.tone(undefined);
      this.enter('connected');
      this.log.info('connected');
    } else if (this.current === 'ringing') {
      this.log.warn('the ringing call was answered elsewhere');
      this.ringer.stop();
      this.enter('idle');
    }
  }

  private ended(cause: string, status: number | undefined): void {
    switch (this.current) {
      case 'ringing':
        this.log.info('caller gave up', { reason: cause });
        this.ringer.stop();
        this.enter('idle');
        return;
      case 'calling':
        this.log.info('call ended before it connected', { reason: cause, ...(status === undefined ? {} : { status }) });
        return this.failedCall(status);
      case 'connected':
        // The far end hung up first: busy tone until the handset is put down.
        return this.fail('busy', 'far end hung up');
      default:
        this.log.debug('call end ignored', { state: this.current, reason: cause });
    }
  }

  private farEndDigit(digit: DtmfDigit): void {
    this.log.debug('far-end digit', { digit: digit.digit, source: digit.source });
  }

  // ---- helpers ----

  private enter(state: HandsetState): void {
    if (state !== this.current) this.log.debug('state', { from: this.current, to: state });
    this.current = state;
  }

  private tone(name: ToneName | undefined): void {
    if (this.playing === name) return;
    this.playing = name;
    this.opts.line.playTone(name);
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
