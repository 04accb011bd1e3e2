/**
 * Who may talk to the gateway: an allow-list of source ranges, plus temporary bans of source
 * addresses that keep failing digest authentication (password guessing, extension scanning
 * with sipvicious `svcrack`/`svwar`). Pure: time from the injected Clock.
 *
 * Bans are per IP address, never per port and never per range: a scanner on 127.0.0.2 does not
 * lock out 127.0.0.3. `::ffff:a.b.c.d` and `a.b.c.d` are the same source.
 */
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { AddressSet, normalizeAddress } from './cidr.ts';

/** Construction options of {@link SourceGuard}. */
export interface SourceGuardOptions {
  /** CIDR ranges (or bare addresses) that may send anything at all; see {@link AddressSet}. */
  allowedSources: readonly string[];
  /** Failures within the window that start a ban; 0 disables banning. */
  maxAuthFailures: number;
  /** How long a ban lasts, in seconds. */
  banSeconds: number;
  /** The sliding window over which failures are counted, in seconds (default 300). */
  windowSeconds?: number;
  clock: Clock;
  logger: Logger;
  /**
   * Addresses that are always allowed and never banned (the resolved addresses of configured
   * trunks). Called on each check, so it may change as DNS answers change.
   */
  trusted?: () => Iterable<string>;
  /**
   * Most source addresses with failures remembered, and separately most bans held (default
   * 10 000 each). Beyond it the least recently failing source is forgotten, then the ban that
   * ends first, so a flood of spoofed sources uses bounded memory.
   */
  maxTrackedSources?: number;
}

interface Ban {
  /** Wall-clock end (Clock.wallNow), for reporting. */
  wallUntil: number;
  failures: number;
  timer: TimerHandle;
}

/**
 * The gateway's source filter. The transport edge asks {@link isAllowed} for every datagram or
 * connection; the authenticator's caller reports {@link authFailed} / {@link authSucceeded}.
 */
export class SourceGuard {
  private allowed: AddressSet;
  private readonly windowMs: number;
  private readonly maxTracked: number;
  /** address → failure times (Clock.now), oldest first; Map order = least recently failing first. */
  private readonly failures = new Map<string, number[]>();
  /** address → ban; Map order = oldest ban first, and every ban has the same length. */
  private readonly bans = new Map<string, Ban>();

  constructor(private opts: SourceGuardOptions) {
    this.allowed = new AddressSet(opts.allowedSources);
    checkBanSettings(opts);
    const windowSeconds = opts.windowSeconds ?? 300;
    if (!(windowSeconds > 0)) throw new Error(`windowSeconds must be positive, got ${windowSeconds}`);
    this.windowMs = windowSeconds * 1000;
    this.maxTracked = opts.maxTrackedSources ?? 10_000;
    if (!(this.maxTracked >= 1)) throw new Error(`maxTrackedSources must be at least 1, got ${this.maxTracked}`);
  }

  /**
   * True when traffic from `address` may be processed: a trusted address, or one inside the
   * allowed ranges that is not banned. False for text that is not an IP address.
   */
  isAllowed(address: string): boolean {
    const key = normalizeAddress(address);
    if (key === undefined) return false;
    if (this.isTrusted(key)) return true;
    return this.allowed.has(key) && !this.bans.has(key);
  }

  /** True while `address` is banned. Trusted addresses are never banned. */
  isBanned(address: string): boolean {
    const key = keyOf(address);
    return this.bans.has(key) && !this.isTrusted(key);
  }

  /**
   * Records a failed authentication from `address` (credentials that did not verify, not a first
   * challenge). The `maxAuthFailures`-th failure within the window starts a ban.
   */
  authFailed(address: string): void {
    const key = keyOf(address);
    if (this.opts.maxAuthFailures === 0 || this.bans.has(key) || this.isTrusted(key)) return;
    const now = this.opts.clock.now();
    const times = (this.failures.get(key) ?? []).filter((at) => now - at < this.windowMs);
    times.push(now);
    this.failures.delete(key);
    if (times.length >= this.opts.maxAuthFailures) {
      this.ban(key, times.length);
      return;
    }
    this.failures.set(key, times);
    if (this.failures.size > this.maxTracked) {
      const oldest = this.failures.keys().next().value as string;
      this.failures.delete(oldest);
    }
  }

  /** Forgets the failures of `address` after a successful authentication. A ban stays. */
  authSucceeded(address: string): void {
    this.failures.delete(keyOf(address));
  }

  /**
   * Takes new settings (config reload) for the packets and failures that follow. Bans in force
   * keep their end time and failures already counted stay. Throws, changing nothing, on the
   * values the constructor refuses.
   */
  configure(settings: Pick<SourceGuardOptions, 'allowedSources' | 'maxAuthFailures' | 'banSeconds'>): void {
    checkBanSettings(settings);
    this.allowed = new AddressSet(settings.allowedSources);
    this.opts = { ...this.opts, ...settings };
  }

  /** Current bans, oldest first; `until` is wall-clock milliseconds since the epoch. */
  banned(): { address: string; until: number }[] {
    return [...this.bans].map(([address, ban]) => ({ address, until: ban.wallUntil }));
  }

  private ban(key: string, failures: number): void {
    const ms = this.opts.banSeconds * 1000;
    const timer = this.opts.clock.setTimer(ms, () => this.lift(key), 'source-ban');
    this.bans.set(key, { wallUntil: this.opts.clock.wallNow() + ms, failures, timer });
    this.opts.logger.warn('source banned', { address: key, failures, seconds: this.opts.banSeconds });
    if (this.bans.size > this.maxTracked) {
      const [oldest, old] = this.bans.entries().next().value as [string, Ban];
      old.timer.cancel();
      this.bans.delete(oldest);
      this.opts.logger.warn('source ban dropped early: too many bans', { address: oldest, limit: this.maxTracked });
    }
  }

  private lift(key: string): void {
    const ban = this.bans.get(key);
    if (!ban) return;
    this.bans.delete(key);
    this.opts.logger.info('source ban lifted', { address: key, failures: ban.failures });
  }

  private isTrusted(key: string): boolean {
    if (!this.opts.trusted) return false;
    for (const address of this.opts.trusted()) {
      if (keyOf(address) === key) return true;
    }
    return false;
  }
}

/** The map key of an address: its canonical text, or the text itself when it is not an IP. */
function keyOf(address: string): string {
  return normalizeAddress(address) ?? address.toLowerCase();
}

function checkBanSettings(opts: Pick<SourceGuardOptions, 'maxAuthFailures' | 'banSeconds'>): void {
  if (!Number.isInteger(opts.maxAuthFailures) || opts.maxAuthFailures < 0) {
    throw new Error(`maxAuthFailures must be a non-negative integer, got ${opts.maxAuthFailures}`);
  }
  if (!(opts.banSeconds > 0)) throw new Error(`banSeconds must be positive, got ${opts.banSeconds}`);
}
