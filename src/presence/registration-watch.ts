/**
 * Turns the registrar's bindings into "registered or not" per user, for the `presence` package
 * (RFC 3856: basic `open` while the user has a registration). The registrar keeps no timers of
 * its own (an expired binding simply stops being returned), so this watch looks again after each
 * REGISTER of a user and when the user's earliest binding expires, and reports only changes.
 * Pure: time from the injected Clock, bindings read through a callback.
 */
import type { Clock, TimerHandle } from '../runtime/clock.ts';

/** Everything {@link RegistrationWatch} needs. */
export interface RegistrationWatchOptions {
  clock: Clock;
  /**
   * The wall-clock expiry (ms since the epoch, `Binding.expiresAt`) of each live binding of
   * `user`; empty when the user has none.
   */
  expiries(user: string): readonly number[];
  /** `user`'s registration appeared (`open`) or went away. Called synchronously. */
  changed(user: string, open: boolean): void;
}

/** See the module comment. One per gateway; {@link close} at shutdown. */
export class RegistrationWatch {
  private readonly open = new Set<string>();
  private readonly timers = new Map<string, TimerHandle>();
  private closed = false;

  constructor(private readonly opts: RegistrationWatchOptions) {}

  /** Takes the current state of `users` (bindings restored at start) without reporting it. */
  seed(users: Iterable<string>): void {
    for (const user of users) this.check(user, false);
  }

  /** A REGISTER of `user` was processed (added, refreshed or removed bindings): look again. */
  touched(user: string): void {
    this.check(user, true);
  }

  /** Whether `user` had a live binding when last looked at. */
  isOpen(user: string): boolean {
    return this.open.has(user);
  }

  /** Stops the expiry timers; later calls do nothing. */
  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
  }

  private check(user: string, report: boolean): void {
    if (this.closed) return;
    this.timers.get(user)?.cancel();
    this.timers.delete(user);
    const expiries = this.opts.expiries(user);
    const now = this.opts.clock.wallNow();
    const live = expiries.filter((e) => e > now);
    const isOpen = live.length > 0;
    const wasOpen = this.open.has(user);
    if (isOpen) this.open.add(user);
    else this.open.delete(user);
    if (isOpen) {
      const next = Math.min(...live);
      this.timers.set(
        user,
        this.opts.clock.setTimer(next - now, () => this.check(user, true), `registration expiry ${user}`),
      );
    }
    if (report && isOpen !== wasOpen) this.opts.changed(user, isOpen);
  }
}
