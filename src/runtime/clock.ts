/**
 * Time, injected. Protocol code never calls `Date.now()` or `setTimeout` itself: it receives a
 * Clock from the composition root (`src/app/gateway.ts`), and tests pass a {@link ManualClock}.
 */
export interface TimerHandle {
  /** Cancels the timer. Calling it after the timer fired, or twice, does nothing. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic scale (not wall-clock time). */
  now(): number;
  /** Wall-clock time in milliseconds since the epoch (for Date headers, nonces, persisted expiries). */
  wallNow(): number;
  /** Calls `fn` once after `ms` milliseconds. `label` names the timer in logs and tests. */
  setTimer(ms: number, fn: () => void, label?: string): TimerHandle;
}

/** The real clock: `performance.now()` and `setTimeout`. Only the composition root creates one. */
export class SystemClock implements Clock {
  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const handle = setTimeout(fn, Math.max(0, ms));
    handle.unref?.();
    return { cancel: () => clearTimeout(handle) };
  }
}

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
  label: string;
  cancelled: boolean;
}

/**
 * A clock that moves only when told to. `advance(ms)` fires every due timer in time order, each
 * seeing `now()` equal to its own due time, so a 64-second Timer B test runs in a millisecond.
 */
export class ManualClock implements Clock {
  private current: number;
  private wallOffset: number;
  private seq = 0;
  private timers: PendingTimer[] = [];

  constructor(start = 0, wallStart = 1_700_000_000_000) {
    this.current = start;
    this.wallOffset = wallStart - start;
  }

  now(): number {
    return this.current;
  }

  wallNow(): number {
    return this.current + this.wallOffset;
  }

  setTimer(ms: number, fn: () => void, label = 'timer'): TimerHandle {
    const timer: PendingTimer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, label, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Labels of the timers still pending, soonest first (for assertions). */
  pending(): string[] {
    return this.live().map((t) => t.label);
  }

  /** Moves time forward by `ms`, firing due timers in order (timers set while firing included). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const next = this.live()[0];
      if (!next || next.at > target) break;
      this.current = next.at;
      next.cancelled = true;
      next.fn();
    }
    this.current = target;
    this.timers = this.timers.filter((t) => !t.cancelled);
  }

  private live(): PendingTimer[] {
    return this.timers.filter((t) => !t.cancelled).sort((a, b) => a.at - b.at || a.seq - b.seq);
  }
}
