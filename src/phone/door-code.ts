/**
 * The door code check of a door station: DTMF digits the far end keys in during a connected call
 * are collected and compared with the door code (a global one, or one per caller); a right code
 * opens the door, wrong codes are counted and lock the caller out after a few tries. Pure: it
 * reads time from the injected {@link Clock} and never sets timers (the inter-digit timeout and
 * the lockout period are checked when the next digit arrives).
 *
 * Entry rules (a common door-station convention): digits are
 * collected; the entry is compared as soon as it has the length of the caller's code, or earlier
 * on `#`; `*` clears the entry; an entry idle for longer than the inter-digit timeout starts over.
 */
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';

/** Door code settings (part of `IntercomConfig`). */
export interface DoorCodeConfig {
  /** The code for every allowed caller: 1-8 keys of `0`-`9`, `A`-`D`; undefined = no global code. */
  code?: string;
  /** Codes per caller (SIP user part, exact match); they replace the global code for that caller. */
  perCaller: Readonly<Record<string, string>>;
  /** Callers allowed to open (exact user parts); undefined = everyone with a code may try. */
  allowedCallers?: readonly string[];
  /** Wrong codes before the call and the caller are locked out. */
  maxWrong: number;
  /** How long a locked-out caller stays locked out, and how long wrong tries are remembered, ms. */
  lockoutMs: number;
  /** A partial entry older than this is discarded when the next digit arrives, ms. */
  interDigitMs: number;
}

/** Defaults: 3 wrong codes, 5 min lockout, 5 s between digits, no code. */
export const DEFAULT_DOOR_CODE_CONFIG: DoorCodeConfig = {
  perCaller: {},
  maxWrong: 3,
  lockoutMs: 5 * 60_000,
  interDigitMs: 5_000,
};

/** A valid door code: 1-8 DTMF keys other than `*` and `#` (those two edit the entry). */
export const DOOR_CODE_PATTERN = /^[0-9A-D]{1,8}$/;

/** Problems with a door code config, each naming the key (`intercom.door.code`); empty when valid. */
export function doorCodeConfigProblems(cfg: DoorCodeConfig, prefix = 'intercom.door'): string[] {
  const problems: string[] = [];
  const checkCode = (key: string, code: string): void => {
    if (!DOOR_CODE_PATTERN.test(code)) problems.push(`${key} must be 1-8 keys of 0-9 and A-D (got ${JSON.stringify(code)})`);
  };
  if (cfg.code !== undefined) checkCode(`${prefix}.code`, cfg.code);
  for (const [caller, code] of Object.entries(cfg.perCaller)) checkCode(`${prefix}.perCaller.${caller}`, code);
  if (!Number.isInteger(cfg.maxWrong) || cfg.maxWrong < 1 || cfg.maxWrong > 100) problems.push(`${prefix}.maxWrong must be an integer 1-100 (got ${cfg.maxWrong})`);
  if (!(cfg.lockoutMs >= 0 && cfg.lockoutMs <= 86_400_000)) problems.push(`${prefix}.lockoutMs must be 0-86400000 (got ${cfg.lockoutMs})`);
  if (!(cfg.interDigitMs >= 500 && cfg.interDigitMs <= 60_000)) problems.push(`${prefix}.interDigitMs must be 500-60000 (got ${cfg.interDigitMs})`);
  return problems;
}

/**
 * What one digit led to:
 * - `collecting`: part of an entry (or an edit key); nothing decided yet.
 * - `open`: the right code; the caller should pulse the door relay.
 * - `wrong`: a wrong code; `remaining` tries before the lockout.
 * - `lockedOut`: this wrong code locked the call and the caller out until `untilMs` (monotonic).
 * - `refused`: the digit is ignored: `reason` says why (no call, no code for this caller, caller
 *   not allowed, locked out).
 */
export type DoorCodeResult =
  | { kind: 'collecting' }
  | { kind: 'open'; caller: string }
  | { kind: 'wrong'; caller: string; wrong: number; remaining: number }
  | { kind: 'lockedOut'; caller: string; untilMs: number }
  | { kind: 'refused'; reason: 'noCall' | 'noCode' | 'notAllowed' | 'lockedOut' };

interface CallerRecord {
  wrong: number;
  lastWrongAt: number;
  lockedUntil: number;
}

interface CallEntry {
  caller: string;
  entry: string;
  lastDigitAt: number;
  locked: boolean;
}

/** Callers whose wrong tries are remembered at once; the oldest record is dropped beyond this. */
const MAX_CALLER_RECORDS = 1000;

/**
 * Checks door codes for one station. The intercom calls {@link beginCall} when a call connects,
 * {@link digit} for each DTMF key of the far end and {@link endCall} when it ends. Openings and
 * lockouts are logged at info/warn with the caller and the wall-clock time (ISO 8601).
 */
export class DoorCode {
  private call: CallEntry | undefined;
  private readonly callers = new Map<string, CallerRecord>();

  constructor(
    private readonly cfg: DoorCodeConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Starts collecting for a connected call from `caller` (user part; '' when unknown). */
  beginCall(caller: string): void {
    this.call = { caller, entry: '', lastDigitAt: this.clock.now(), locked: false };
  }

  /** Stops collecting; a partial entry is dropped (wrong tries stay counted for the caller). */
  endCall(): void {
    this.call = undefined;
  }

  /** Whether `caller` is locked out now. */
  isLockedOut(caller: string): boolean {
    return (this.record(caller)?.lockedUntil ?? 0) > this.clock.now();
  }

  /** Handles one DTMF key (`0`-`9`, `*`, `#`, `A`-`D`) from the far end of the current call. */
  digit(key: string): DoorCodeResult {
    const call = this.call;
    if (!call) return { kind: 'refused', reason: 'noCall' };
    if (this.cfg.allowedCallers && !this.cfg.allowedCallers.includes(call.caller)) return { kind: 'refused', reason: 'notAllowed' };
    const code = this.codeFor(call.caller);
    if (code === undefined) return { kind: 'refused', reason: 'noCode' };
    const now = this.clock.now();
    if (call.locked || this.isLockedOut(call.caller)) return { kind: 'refused', reason: 'lockedOut' };

    if (now - call.lastDigitAt > this.cfg.interDigitMs) call.entry = '';
    call.lastDigitAt = now;
    const k = key.toUpperCase();
    if (k === '*') {
      call.entry = '';
      return { kind: 'collecting' };
    }
    if (k === '#') {
      if (call.entry === '') return { kind: 'collecting' };
      return this.compare(call, code);
    }
    if (!/^[0-9A-D]$/.test(k)) return { kind: 'collecting' };
    call.entry += k;
    return call.entry.length >= code.length ? this.compare(call, code) : { kind: 'collecting' };
  }

  private compare(call: CallEntry, code: string): DoorCodeResult {
    const entry = call.entry;
    call.entry = '';
    const now = this.clock.now();
    const at = new Date(this.clock.wallNow()).toISOString();
    if (sameCode(entry, code)) {
      this.callers.delete(call.caller);
      this.log.info('door opened', { caller: call.caller || 'anonymous', at });
      return { kind: 'open', caller: call.caller };
    }
    const rec = this.touch(call.caller, now);
    rec.wrong += 1;
    rec.lastWrongAt = now;
    if (rec.wrong >= this.cfg.maxWrong) {
      rec.lockedUntil = now + this.cfg.lockoutMs;
      call.locked = true;
      this.log.warn('door code locked out', { caller: call.caller || 'anonymous', wrong: rec.wrong, lockoutMs: this.cfg.lockoutMs, at });
      return { kind: 'lockedOut', caller: call.caller, untilMs: rec.lockedUntil };
    }
    this.log.info('wrong door code', { caller: call.caller || 'anonymous', wrong: rec.wrong, at });
    return { kind: 'wrong', caller: call.caller, wrong: rec.wrong, remaining: this.cfg.maxWrong - rec.wrong };
  }

  private codeFor(caller: string): string | undefined {
    return Object.hasOwn(this.cfg.perCaller, caller) ? this.cfg.perCaller[caller] : this.cfg.code;
  }

  /** The caller's record, forgetting it once both its lockout and its wrong-try memory expired. */
  private record(caller: string): CallerRecord | undefined {
    const rec = this.callers.get(caller);
    if (!rec) return undefined;
    const now = this.clock.now();
    if (rec.lockedUntil <= now && now - rec.lastWrongAt >= this.cfg.lockoutMs) {
      this.callers.delete(caller);
      return undefined;
    }
    return rec;
  }

  private touch(caller: string, now: number): CallerRecord {
    let rec = this.record(caller);
    if (rec && rec.lockedUntil > 0 && rec.lockedUntil <= now) {
      rec.wrong = 0;
      rec.lockedUntil = 0;
    }
    if (!rec) {
      if (this.callers.size >= MAX_CALLER_RECORDS) {
        const oldest = this.callers.keys().next().value;
        if (oldest !== undefined) this.callers.delete(oldest);
      }
      rec = { wrong: 0, lastWrongAt: now, lockedUntil: 0 };
      this.callers.set(caller, rec);
    }
    return rec;
  }
}

/** Compares without stopping at the first difference, so timing does not tell how much was right. */
function sameCode(entry: string, code: string): boolean {
  let diff = entry.length ^ code.length;
  for (let i = 0; i < code.length; i++) diff |= (entry.charCodeAt(i) || 0) ^ code.charCodeAt(i);
  return diff === 0;
}
