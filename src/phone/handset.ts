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
 * Hook flash (Telcordia GR-506 custom calling features, as ATAs implement them): in a call it
 * holds the call and gives a second dial tone; with a call held, it swaps; with a call waiting
 * (its tone mixed into the conversation) it holds the call and answers the waiting one. While
 * dialling a second call, flash abandons it and takes the held call back. Putting the handset
 * down with a call held rings the phone again (recall) and lifting it takes the call back; with
 * a call waiting, the waiting call rings. Outside a call a flash gives a fresh dial tone.
 */
import type { HardwareBackend } from '../hardware/types.ts';
import type { DtmfDigit } from '../media/dtmf/types.ts';
import type { ToneName } from '../media/tone/tone-sets.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { DigitMap } from './digit-map.ts';
import type { HandsetConfig } from './handset-config.ts';
export { HANDSET_DEFAULTS, resolveHandsetConfig, type HandsetConfig } from './handset-config.ts';
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
  /** The connected call's id, and the one ringing the handset. */
  private activeCall: string | undefined;
  private ringingCall: string | undefined;
  /** The call on hold, and the second call waiting (call waiting). */
  private heldCall: string | undefined;
  private waitingCall: { id: string; caller: Caller } | undefined;
  /** The handset rings to give a held call back (put down with a call on hold). */
  private recall = false;

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
      incoming: (caller, call) => this.incoming(caller, call),
      waiting: (caller, call) => this.waiting(caller, call),
      ringing: () => this.farEndRinging(),
      connected: (call) => this.connected(call),
      ended: (cause, status, call) => this.ended(cause, status, call),
      digit: (digit) => this.farEndDigit(digit),
    };
    opts.line.listen(events);
  }

  get state(): HandsetState {
    return this.current;
  }

  /** The calls besides the active one: held, waiting. */
  get calls(): { held?: string; waiting?: string } {
    return { ...(this.heldCall ? { held: this.heldCall } : {}), ...(this.waitingCall ? { waiting: this.waitingCall.id } : {}) };
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
    if (this.recall) {
      this.recall = false;
      if (this.opts.line.resume()) {
        this.takeBackHeld();
        return;
      }
      this.heldCall = undefined;
      this.log.info('held call gone before it was taken back');
      return this.startDialling();
    }
    if (this.opts.line.answer(this.ringingCall)) {
      this.activeCall = this.ringingCall;
      this.ringingCall = undefined;
      this.enter('connected');
      this.log.info('answered');
      return;
    }
    // The caller gave up just as the handset was lifted: a lift like any other.
    this.ringingCall = undefined;
    this.log.info('call gone before it was answered');
    this.startDialling();
  }

  private onHook(): void {
    if (this.current === 'idle' || this.current === 'ringing') return;
    if (this.current === 'calling') this.abandoned = this.attempt;
    if (this.current === 'calling' || this.current === 'connected') this.opts.line.hangup();
    this.activeCall = undefined;
    this.cancelTimer();
    this.tone(undefined);
    this.digits = '';
    this.enter('idle');
    this.log.info('on-hook');
    // A second call is not lost by hanging up the first: it rings the handset.
    if (this.waitingCall) {
      const { id, caller } = this.waitingCall;
      this.waitingCall = undefined;
      this.incoming(caller, id);
    } else if (this.heldCall) {
      this.recall = true;
      this.enter('ringing');
      this.log.info('recall: a call is on hold', { call: this.heldCall });
      this.ringer.start();
    }
  }

  private flash(): void {
    switch (this.current) {
      case 'connected':
        return this.flashInCall();
      case 'calling':
      case 'dialTone':
      case 'collecting':
      case 'failed':
      case 'warning':
        if (this.heldCall) return this.abandonSecondCall();
        if (this.waitingCall && this.current !== 'calling') return this.answerWaiting();
        if (this.current === 'calling') {
          this.log.info('hook flash while calling ignored');
          return;
        }
        this.log.info('hook flash: fresh dial tone', { state: this.current });
        return this.startDialling();
      case 'idle':
      case 'ringing':
        this.log.debug('hook flash while on-hook ignored');
        return;
    }
  }

  /** Flash in a connected call: answer the waiting call, swap with the held one, or hold and dial. */
  private flashInCall(): void {
    if (this.waitingCall) {
      if (!this.heldCall && !this.opts.line.hold()) return this.flashRefused('hold');
      if (this.heldCall) {
        this.log.info('hook flash: a call is held already, the waiting call keeps waiting');
        return;
      }
      this.heldCall = this.activeCall;
      return this.answerWaiting();
    }
    if (this.heldCall) {
      if (!this.opts.line.resume()) return this.flashRefused('swap');
      const back = this.heldCall;
      this.heldCall = this.activeCall;
      this.activeCall = back;
      this.log.info('hook flash: calls swapped', { active: back, held: this.heldCall });
      return;
    }
    if (!this.opts.line.hold()) return this.flashRefused('hold');
    this.heldCall = this.activeCall;
    this.activeCall = undefined;
    this.log.info('hook flash: call held, second dial tone', { held: this.heldCall });
    this.startDialling();
  }

  private flashRefused(what: string): void {
    this.log.warn(`hook flash: ${what} not possible now`, { state: this.current });
  }

  /** Answers the waiting call (the active one, if any, is held already). */
  private answerWaiting(): void {
    const waiting = this.waitingCall!;
    this.waitingCall = undefined;
    this.cancelTimer();
    this.tone(undefined);
    if (!this.opts.line.answer(waiting.id)) {
      this.log.info('waiting call gone before it was answered');
      if (this.heldCall) return this.abandonSecondCall();
      return this.startDialling();
    }
    this.activeCall = waiting.id;
    this.digits = '';
    this.enter('connected');
    this.log.info('hook flash: waiting call answered', { from: waiting.caller.user, held: this.heldCall });
  }

  /** Flash while dialling a second call: drop the attempt, take the held call back. */
  private abandonSecondCall(): void {
    if (this.current === 'calling') {
      this.abandoned = this.attempt;
      this.opts.line.hangup();
    }
    this.cancelTimer();
    this.tone(undefined);
    this.digits = '';
    if (!this.opts.line.resume()) {
      this.log.warn('hook flash: the held call cannot be taken back', { call: this.heldCall });
      return this.startDialling();
    }
    this.takeBackHeld();
  }

  private takeBackHeld(): void {
    this.activeCall = this.heldCall;
    this.heldCall = undefined;
    this.enter('connected');
    this.log.info('held call taken back', { call: this.activeCall });
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

  private incoming(caller: Caller, call: string): void {
    switch (this.current) {
      case 'idle':
        this.ringingCall = call;
        this.enter('ringing');
        this.log.info('ringing', { from: caller.user, ...(caller.display ? { name: caller.display } : {}) });
        this.ringer.start();
        return;
      case 'ringing':
        return;
      case 'calling':
      case 'connected':
        // The device endpoint sends a second call through waiting() or refuses it itself.
        this.log.warn('incoming call while in a call ignored', { from: caller.user, state: this.current });
        return;
      default:
        this.log.info('incoming call refused: the handset is off-hook', { from: caller.user, state: this.current });
        this.opts.line.hangup(call);
    }
  }

  /** A second call while in a call: the call-waiting tone, flash answers (GR-571 call waiting). */
  private waiting(caller: Caller, call: string): void {
    if (this.current !== 'connected' || this.waitingCall || this.heldCall) {
      this.log.info('second call refused: busy', { from: caller.user, state: this.current });
      this.opts.line.hangup(call);
      return;
    }
    this.waitingCall = { id: call, caller };
    this.log.info('call waiting', { from: caller.user, ...(caller.display ? { name: caller.display } : {}) });
    this.tone('callWaiting');
  }

  private farEndRinging(): void {
    if (this.current === 'calling') this.tone('ringback');
  }

  private connected(call: string): void {
    if (this.current === 'calling') {
      this.activeCall = call;
      this.tone(undefined);
      this.enter('connected');
      this.log.info('connected');
    } else if (this.current === 'ringing') {
      this.log.warn('the ringing call was answered elsewhere');
      this.ringer.stop();
      this.enter('idle');
    }
  }

  private ended(cause: string, status: number | undefined, call: string): void {
    if (call === this.heldCall) return this.heldEnded(cause);
    if (call === this.waitingCall?.id) {
      this.waitingCall = undefined;
      this.log.info('waiting caller gave up', { reason: cause });
      if (this.playing === 'callWaiting') this.tone(undefined);
      return;
    }
    if (this.current === 'ringing' && call !== this.ringingCall) {
      this.log.debug('end of a call not ringing ignored', { call, reason: cause });
      return;
    }
    if (this.activeCall !== undefined && call !== this.activeCall && this.current !== 'calling') {
      this.log.debug('end of another call ignored', { call, reason: cause });
      return;
    }
    this.activeCall = undefined;
    switch (this.current) {
      case 'ringing':
        this.ringingCall = undefined;
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

  /** The held party hung up: forget it; a recall ring for it stops. */
  private heldEnded(cause: string): void {
    this.heldCall = undefined;
    this.log.info('held call ended', { reason: cause });
    if (this.recall) {
      this.recall = false;
      this.ringer.stop();
      this.enter('idle');
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
