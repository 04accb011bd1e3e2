/**
 * The pure half of the systemd integration: what the service manager asked for (read from the
 * environment), and a queue that delivers sd_notify messages one at a time and keeps the
 * watchdog fed from a timer on the injected {@link Clock}. The edge adapter
 * (`systemd-notify.ts`) supplies the {@link NotifyTransport} that actually reaches the socket.
 */
import type { Clock, TimerHandle } from './clock.ts';
import type { Logger } from './logger.ts';

/** What the service manager passed in the environment, checked. */
export interface NotifyEnvironment {
  /** `$NOTIFY_SOCKET`; undefined when not started by a service manager (no messages at all). */
  readonly socket: string | undefined;
  /** The watchdog interval in milliseconds (`$WATCHDOG_USEC` / 1000), if the watchdog is ours. */
  readonly watchdogMs: number | undefined;
  /** Why `$WATCHDOG_USEC` / `$WATCHDOG_PID` were present but not used (for one warning). */
  readonly watchdogIgnored?: string;
}

/**
 * Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` as sd_notify(3) and
 * sd_watchdog_enabled(3) define them: the watchdog is enabled when `WATCHDOG_USEC` is a positive
 * decimal number of microseconds and `WATCHDOG_PID`, if set, equals `pid` (otherwise the
 * variables were meant for another process, e.g. inherited by a child). Never throws.
 */
export function readNotifyEnvironment(env: Readonly<Record<string, string | undefined>>, pid: number): NotifyEnvironment {
  const socket = env.NOTIFY_SOCKET || undefined;
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || usec === '') return { socket, watchdogMs: undefined };
  if (!/^\d+$/.test(usec) || Number(usec) === 0) {
    return { socket, watchdogMs: undefined, watchdogIgnored: `WATCHDOG_USEC is not a positive number of microseconds (got ${JSON.stringify(usec)})` };
  }
  const wpid = env.WATCHDOG_PID;
  if (wpid !== undefined && wpid !== '' && wpid !== String(pid)) {
    return { socket, watchdogMs: undefined, watchdogIgnored: `WATCHDOG_PID is ${JSON.stringify(wpid)}, not this process (${pid})` };
  }
  if (socket === undefined) return { socket, watchdogMs: undefined, watchdogIgnored: 'WATCHDOG_USEC is set but NOTIFY_SOCKET is not' };
  return { socket, watchdogMs: Number(usec) / 1000 };
}

/**
 * Delivers one sd_notify message (its `KEY=VALUE` fields, in order) to the service manager.
 * Resolves once delivered; rejects with an Error whose message says why when it was not.
 * The queue never calls it again before the previous promise settled.
 */
export interface NotifyTransport {
  send(fields: readonly string[]): Promise<void>;
}

/** Counters, for tests and `status`. */
export interface NotifyQueueStats {
  /** Messages the transport delivered. */
  delivered: number;
  /** Messages the transport failed to deliver. */
  failed: number;
  /** Watchdog pings sent to the transport (delivered or not). */
  pings: number;
  /** Watchdog ticks that found a ping still queued or in flight, so sent none. */
  pingsSkipped: number;
  /** Messages dropped because the queue was full. */
  dropped: number;
}

export interface NotifyQueueOptions {
  clock: Clock;
  logger: Logger;
  /** The watchdog interval from {@link readNotifyEnvironment}; no watchdog when undefined. */
  watchdogMs?: number | undefined;
  /** Most messages waiting behind the one in flight; default 32. */
  maxQueued?: number;
}

const PING = 'WATCHDOG=1';

const isStatusOnly = (fields: readonly string[]): boolean => fields.every((f) => f.startsWith('STATUS='));

/**
 * Sends sd_notify messages through a {@link NotifyTransport}, strictly in order and never more
 * than one at a time (so at most one `systemd-notify` process exists).
 *
 * - A status-only message waiting in the queue is replaced by a newer status-only one (only the
 *   latest status matters); messages with state changes (`READY=1`, `RELOADING=1`, ...) are never
 *   merged, because systemd applies the fields of one datagram in its own order, not ours.
 * - Watchdog: {@link startWatchdog} sends `WATCHDOG=1` at once and then every half interval, as
 *   sd_watchdog_enabled(3) recommends, each ping scheduled by the previous tick. A blocked event
 *   loop therefore delays the pings, which is the point: systemd then kills and restarts the
 *   service. A tick that finds the previous ping still queued or in flight sends none.
 * - A failed delivery is logged as a warning the first time and at debug level after that;
 *   it never throws and never stops the queue.
 * - {@link close} stops the watchdog, drops queued pings and resolves when the rest was sent.
 */
export class NotifyQueue {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly watchdogMs: number | undefined;
  private readonly maxQueued: number;
  private readonly queue: (readonly string[])[] = [];
  private inFlight: readonly string[] | undefined;
  private pingTimer: TimerHandle | undefined;
  private closed = false;
  private warned = false;
  private drained: (() => void)[] = [];
  readonly stats: NotifyQueueStats = { delivered: 0, failed: 0, pings: 0, pingsSkipped: 0, dropped: 0 };

  constructor(
    private readonly transport: NotifyTransport,
    options: NotifyQueueOptions,
  ) {
    this.clock = options.clock;
    this.logger = options.logger;
    this.watchdogMs = options.watchdogMs;
    this.maxQueued = options.maxQueued ?? 32;
  }

  /** Whether a watchdog interval was given (so {@link startWatchdog} will ping). */
  get watchdogEnabled(): boolean {
    return this.watchdogMs !== undefined;
  }

  /** Queues one message. Ignored after {@link close}. */
  post(fields: readonly string[]): void {
    if (this.closed || fields.length === 0) return;
    const last = this.queue[this.queue.length - 1];
    if (last !== undefined && isStatusOnly(fields) && isStatusOnly(last)) {
      this.queue[this.queue.length - 1] = fields;
    } else {
      if (this.queue.length >= this.maxQueued) this.dropOne();
      this.queue.push(fields);
    }
    this.pump();
  }

  /**
   * Starts pinging (idempotent). Returns false, doing nothing, when there is no watchdog interval
   * or the queue is closed.
   */
  startWatchdog(): boolean {
    if (this.watchdogMs === undefined || this.closed) return false;
    if (this.pingTimer === undefined) this.tick();
    return true;
  }

  /** Stops pinging; queued pings are dropped. Resolves when everything else queued was sent. */
  close(): Promise<void> {
    this.closed = true;
    this.pingTimer?.cancel();
    this.pingTimer = undefined;
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.length === 1 && this.queue[i]![0] === PING) this.queue.splice(i, 1);
    if (this.inFlight === undefined && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private tick(): void {
    const half = this.watchdogMs! / 2;
    this.pingTimer = this.clock.setTimer(half, () => this.tick(), 'systemd.watchdog');
    const pending = this.inFlight?.includes(PING) === true || this.queue.some((m) => m.includes(PING));
    if (pending) {
      this.stats.pingsSkipped++;
      return;
    }
    this.stats.pings++;
    this.post([PING]);
  }

  /** Drops the oldest status-only message, else the oldest one. */
  private dropOne(): void {
    const i = this.queue.findIndex(isStatusOnly);
    const [dropped] = this.queue.splice(i >= 0 ? i : 0, 1);
    this.stats.dropped++;
    this.logger.warn('systemd notification queue full, message dropped', { fields: dropped!.join(' ') });
  }

  private pump(): void {
    if (this.inFlight !== undefined) return;
    const next = this.queue.shift();
    if (next === undefined) {
      for (const resolve of this.drained.splice(0)) resolve();
      return;
    }
    this.inFlight = next;
    let sent: Promise<void>;
    try {
      sent = this.transport.send(next);
    } catch (e) {
      sent = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    sent.then(
      () => {
        this.stats.delivered++;
        this.settle();
      },
      (e: unknown) => {
        this.stats.failed++;
        const fields = { fields: next.join(' '), reason: e instanceof Error ? e.message : String(e), failures: this.stats.failed };
        if (this.warned) this.logger.debug('systemd notification failed', fields);
        else this.logger.warn('systemd notification failed (further failures are logged at debug level)', fields);
        this.warned = true;
        this.settle();
      },
    );
  }

  private settle(): void {
    this.inFlight = undefined;
    this.pump();
  }
}
