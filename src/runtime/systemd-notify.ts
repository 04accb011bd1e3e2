/**
 * Telling systemd how the service is doing (sd_notify(3)): `READY=1` once serving, `STATUS=`
 * lines, `RELOADING=1` / `STOPPING=1`, and `WATCHDOG=1` pings for `WatchdogSec=`.
 *
 * Node has no AF_UNIX datagram sockets, so each message is sent by running
 * `/usr/bin/systemd-notify KEY=VALUE...` (execFile, an argument array, never a shell). That
 * process, not ours, is the sender systemd sees: systemd-notify 252 tries to pass our PID in the
 * credentials, which the kernel refuses without CAP_SYS_ADMIN, and then sends with its own.
 * With the default `NotifyAccess=main` systemd would drop every message, so the unit sets
 * `NotifyAccess=all` (`systemd-notify --pid=` does not help: it only adds a `MAINPID=` field).
 * systemd-notify waits (BARRIER=1, up to 5 s) until the manager has processed the message, so
 * the sender still exists when systemd looks up its cgroup to find our unit.
 */
import { execFile } from 'node:child_process';
import type { Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import { NotifyQueue, type NotifyQueueStats, type NotifyTransport, readNotifyEnvironment } from './notify-queue.ts';

/** Where Debian (and Raspberry Pi OS) install systemd-notify; /bin is a symlink to it (usrmerge). */
export const SYSTEMD_NOTIFY = '/usr/bin/systemd-notify';

export interface SystemdNotifierOptions {
  logger: Logger;
  clock: Clock;
  /** Our PID, compared with `$WATCHDOG_PID`; default `process.pid`. */
  pid?: number;
  /** The systemd-notify binary; default {@link SYSTEMD_NOTIFY}. */
  command?: string;
  /** A systemd-notify still running after this long is killed (its barrier waits 5 s); default 10000. */
  timeoutMs?: number;
  /** CLOCK_MONOTONIC in microseconds, sent with `RELOADING=1`; default from `process.hrtime`. */
  monotonicUsec?: () => bigint;
}

/** A STATUS= value on one line: sd_notify fields are newline-separated. */
function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/** A {@link NotifyTransport} that runs systemd-notify with `NOTIFY_SOCKET` set, and nothing else. */
class SystemdNotifyProcess implements NotifyTransport {
  constructor(
    private readonly command: string,
    private readonly socket: string,
    private readonly timeoutMs: number,
  ) {}

  send(fields: readonly string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(
        this.command,
        [...fields],
        { env: { NOTIFY_SOCKET: this.socket }, timeout: this.timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' },
        (error, _stdout, stderr) => {
          if (!error) return resolve();
          const detail = stderr.trim().split('\n')[0] || error.message;
          const code = (error as NodeJS.ErrnoException).code;
          reject(new Error(typeof code === 'string' ? `${this.command}: ${code} (${error.message})` : `${this.command}: ${detail}`));
        },
      );
    });
  }
}

/**
 * The composition root's handle on systemd. Created by {@link SystemdNotifier.fromEnv}; when the
 * process was not started with `$NOTIFY_SOCKET` (a terminal, a test, a container) every method
 * does nothing and no process is ever spawned. Methods never throw and never block: messages are
 * queued and sent in order, one systemd-notify at a time; failures are logged, never fatal.
 */
export class SystemdNotifier {
  private constructor(
    private readonly queue: NotifyQueue | undefined,
    private readonly monotonicUsec: () => bigint,
    /** The watchdog interval systemd asked for, in ms (undefined: no watchdog). */
    readonly watchdogMs: number | undefined,
  ) {}

  /**
   * Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID` from `env` (sd_watchdog_enabled(3)).
   * Does not modify `env`; the caller may delete those variables afterwards so that other
   * children (arecord, aplay) do not inherit them.
   */
  static fromEnv(env: Readonly<Record<string, string | undefined>>, options: SystemdNotifierOptions): SystemdNotifier {
    const pid = options.pid ?? process.pid;
    const found = readNotifyEnvironment(env, pid);
    const logger = options.logger;
    if (found.watchdogIgnored !== undefined) logger.warn('systemd watchdog not used', { reason: found.watchdogIgnored });
    const monotonic = options.monotonicUsec ?? (() => process.hrtime.bigint() / 1000n);
    if (found.socket === undefined) return new SystemdNotifier(undefined, monotonic, undefined);
    const transport = new SystemdNotifyProcess(options.command ?? SYSTEMD_NOTIFY, found.socket, options.timeoutMs ?? 10_000);
    const queue = new NotifyQueue(transport, { clock: options.clock, logger, watchdogMs: found.watchdogMs });
    logger.debug('systemd notification enabled', { socket: found.socket, watchdogMs: found.watchdogMs });
    return new SystemdNotifier(queue, monotonic, found.watchdogMs);
  }

  /** Whether a service manager is listening (`$NOTIFY_SOCKET` was set). */
  get enabled(): boolean {
    return this.queue !== undefined;
  }

  /** Delivery counters (all zero when disabled). */
  get stats(): Readonly<NotifyQueueStats> {
    return this.queue?.stats ?? { delivered: 0, failed: 0, pings: 0, pingsSkipped: 0, dropped: 0 };
  }

  /** Start-up (or a reload) finished: `READY=1`, with a status line if given. */
  ready(status?: string): void {
    this.send(['READY=1'], status);
  }

  /** A free-form status line for `systemctl status` (`STATUS=`); control characters become spaces. */
  status(text: string): void {
    this.send([], text);
  }

  /**
   * A reload began (`RELOADING=1`); call {@link ready} when it is done. `MONOTONIC_USEC=` is
   * included because systemd 253+ requires it for `Type=notify-reload`; 252 ignores it.
   */
  reloading(status?: string): void {
    this.send(['RELOADING=1', `MONOTONIC_USEC=${this.monotonicUsec()}`], status);
  }

  /** Shutdown began (`STOPPING=1`). */
  stopping(status?: string): void {
    this.send(['STOPPING=1'], status);
  }

  /**
   * Pings `WATCHDOG=1` now and every half `WatchdogSec=` from a timer on the event loop, until
   * {@link close}. Returns whether the watchdog is active (false without `$WATCHDOG_USEC`).
   */
  startWatchdog(): boolean {
    return this.queue?.startWatchdog() ?? false;
  }

  /** Stops the watchdog and resolves when queued messages were delivered (bounded by the timeout). */
  close(): Promise<void> {
    return this.queue?.close() ?? Promise.resolve();
  }

  private send(fields: string[], status: string | undefined): void {
    if (this.queue === undefined) return;
    const line = status === undefined ? '' : oneLine(status);
    this.queue.post(line === '' ? fields : [...fields, `STATUS=${line}`]);
  }
}
