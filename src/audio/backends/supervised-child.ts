import { spawn as nodeSpawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';

/** The part of a `node:child_process` ChildProcess the audio backends use (a fake in tests). */
export interface ChildProcessLike {
  /** Undefined when the process could not be spawned (then an `error` event follows). */
  readonly pid?: number | undefined;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  kill(signal?: NodeJS.Signals): boolean;
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** Starts a program with an argument vector (never through a shell). */
export type SpawnFunction = (
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdio: ['pipe' | 'ignore', 'pipe' | 'ignore', 'pipe'] },
) => ChildProcessLike;

/** `node:child_process` spawn, as a {@link SpawnFunction}. */
export const defaultSpawn: SpawnFunction = (command, args, options) => nodeSpawn(command, [...args], options);

/** Restart pacing after failures: `initialMs` doubling up to `maxMs`; reset after `resetAfterMs` of health. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  resetAfterMs: number;
}

/** What a {@link SupervisedChild} runs and how it watches it. */
export interface SupervisedChildOptions {
  /** Program name as logged (`arecord`, `aplay`). */
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Pipe our data into the child's stdin (playback). */
  stdin: boolean;
  /** Read the child's stdout (capture); also enables stall detection. */
  stdout: boolean;
  /** With `stdout`: a child that produces nothing for this long is killed and restarted. */
  stallMs: number;
  backoff: BackoffOptions;
  /** SIGTERM, then SIGKILL after this long. */
  killTimeoutMs: number;
  /** After a stdin write error, how long to wait for the exit status before declaring the failure. */
  exitGraceMs: number;
  spawn: SpawnFunction;
  clock: Clock;
  logger: Logger;
  /** A child is running: wire its stdin (playback). */
  onUp?(child: ChildProcessLike): void;
  /** Bytes from the child's stdout. */
  onData?(chunk: Buffer): void;
  /** The running child failed (exit, stall, stdin error); a restart is scheduled. */
  onDown?(): void;
  /** Each complete line the running child writes to stderr (xrun reports included). */
  onLine?(line: string): void;
}

/** `overrun!!!` (arecord) and `underrun!!!` (aplay), as printed by alsa-utils' xrun(). */
const XRUN_LINE = /(?:overrun|underrun)!!!/;
/** The banner alsa-utils print at start (`Playing raw data 'stdin' : ...`), not worth quoting. */
const BANNER_LINE = /^(?:Playing|Recording) /;
const MAX_STDERR_LINE = 200;

/**
 * Keeps one child process of an audio backend running: spawns it, reads its stderr (counting
 * xruns, remembering the last message), and when it exits, stops producing output for `stallMs`,
 * or its stdin breaks (EPIPE), tells the owner (`onDown`), logs exactly one warning naming the
 * child, what happened and the restart delay, and respawns it after an exponential backoff. A
 * failing child that was replaced is still killed (SIGTERM, then SIGKILL) and awaited by `stop`.
 */
export class SupervisedChild {
  xruns = 0;
  restarts = 0;
  private current: ChildProcessLike | undefined;
  private readonly abandoned = new Set<ChildProcessLike>();
  private readonly exitWaiters = new Map<ChildProcessLike, Array<() => void>>();
  private startedAt = 0;
  private lastDataAt = 0;
  private attempt = 0;
  private lastStderr = '';
  private stderrPartial = '';
  private stdinError: Error | undefined;
  private restartTimer: TimerHandle | undefined;
  private watchTimer: TimerHandle | undefined;
  private graceTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly opts: SupervisedChildOptions) {}

  /** The running child, if any (for its pid in tests and stdin wiring). */
  get child(): ChildProcessLike | undefined {
    return this.current;
  }

  /** Starts the first child. */
  start(): void {
    if (this.stopped || this.current) return;
    this.spawnNow();
  }

  /** Kills every child (SIGTERM, then SIGKILL) and resolves once all have exited. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.restartTimer?.cancel();
    this.watchTimer?.cancel();
    this.graceTimer?.cancel();
    const all = [...this.abandoned];
    if (this.current) all.push(this.current);
    this.current = undefined;
    await Promise.all(all.map((c) => this.terminate(c)));
  }

  private spawnNow(): void {
    const o = this.opts;
    this.startedAt = o.clock.now();
    let child: ChildProcessLike;
    try {
      child = o.spawn(o.command, o.args, { env: o.env, stdio: [o.stdin ? 'pipe' : 'ignore', o.stdout ? 'pipe' : 'ignore', 'pipe'] });
    } catch (err) {
      this.fail(`spawn failed: ${errorText(err)}`, {});
      return;
    }
    this.current = child;
    this.lastDataAt = this.startedAt;
    this.stdinError = undefined;
    this.lastStderr = '';
    this.stderrPartial = '';
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    child.on('error', (err) => {
      if (child.pid === undefined) this.onExit(child, null, null, err);
      else o.logger.debug('child process error', { child: o.name, error: err.message });
    });
    child.stderr?.on('data', (chunk: Buffer) => this.onStderr(child, chunk));
    child.stdin?.on('error', (err) => this.onStdinError(child, err));
    if (o.stdout) {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (child !== this.current) return;
        this.lastDataAt = o.clock.now();
        o.onData?.(chunk);
      });
      this.watch();
    }
    o.onUp?.(child);
  }

  private onExit(child: ChildProcessLike, code: number | null, signal: NodeJS.Signals | null, err?: Error): void {
    const waiters = this.exitWaiters.get(child);
    this.exitWaiters.delete(child);
    this.abandoned.delete(child);
    if (waiters) for (const w of waiters) w();
    if (child !== this.current || this.stopped) return;
    const fields: Record<string, string | number | undefined> = {
      code: code ?? undefined,
      signal: signal ?? undefined,
      error: err?.message ?? (this.stdinError ? `stdin: ${this.stdinError.message}` : undefined),
      stderr: this.lastStderr || undefined,
    };
    this.current = undefined;
    this.fail(err ? 'failed to start' : 'exited', fields);
  }

  private onStdinError(child: ChildProcessLike, err: Error): void {
    if (child !== this.current || this.stopped || this.stdinError) return;
    this.stdinError = err;
    this.graceTimer = this.opts.clock.setTimer(
      this.opts.exitGraceMs,
      () => {
        if (child !== this.current || this.stopped) return;
        this.abandon(child);
        this.fail('stdin write failed', { error: err.message, stderr: this.lastStderr || undefined });
      },
      `audio.${this.opts.name}.exit-grace`,
    );
  }

  private watch(): void {
    const period = Math.max(10, this.opts.stallMs / 4);
    this.watchTimer = this.opts.clock.setTimer(
      period,
      () => {
        const child = this.current;
        if (!child || this.stopped) return;
        const silentMs = this.opts.clock.now() - this.lastDataAt;
        if (silentMs > this.opts.stallMs) {
          this.abandon(child);
          this.fail('stopped producing data', { silentMs: Math.round(silentMs) });
          return;
        }
        this.watch();
      },
      `audio.${this.opts.name}.watchdog`,
    );
  }

  /** Detaches a failing child: it is killed in the background and no longer reported. */
  private abandon(child: ChildProcessLike): void {
    this.current = undefined;
    this.abandoned.add(child);
    void this.terminate(child);
  }

  /** The one warning line per failure, `onDown`, and the restart after the backoff delay. */
  private fail(what: string, fields: Record<string, string | number | undefined>): void {
    const o = this.opts;
    this.watchTimer?.cancel();
    this.graceTimer?.cancel();
    if (o.clock.now() - this.startedAt >= o.backoff.resetAfterMs) this.attempt = 0;
    const delay = Math.min(o.backoff.maxMs, o.backoff.initialMs * 2 ** this.attempt);
    this.attempt++;
    o.logger.warn(`${o.name} ${what}; restarting in ${delay} ms`, { child: o.name, ...fields, restartInMs: delay, attempt: this.attempt });
    o.onDown?.();
    this.restartTimer = o.clock.setTimer(
      delay,
      () => {
        if (this.stopped) return;
        this.restarts++;
        this.spawnNow();
      },
      `audio.${o.name}.restart`,
    );
  }

  private onStderr(child: ChildProcessLike, chunk: Buffer): void {
    const text = this.stderrPartial + chunk.toString('utf8');
    const lines = text.split('\n');
    this.stderrPartial = (lines.pop() ?? '').slice(-MAX_STDERR_LINE);
    for (const raw of lines) {
      const line = raw.trim();
      if (child === this.current) this.opts.onLine?.(line);
      if (XRUN_LINE.test(line)) {
        this.xruns++;
        this.opts.logger.debug('xrun', { child: this.opts.name, detail: line.slice(0, MAX_STDERR_LINE) });
      } else if (line && !BANNER_LINE.test(line) && child === this.current) {
        this.lastStderr = line.slice(0, MAX_STDERR_LINE);
      }
    }
  }

  /** SIGTERM, SIGKILL after `killTimeoutMs`; resolves on exit (at once if it never started). */
  private terminate(child: ChildProcessLike): Promise<void> {
    return new Promise<void>((resolve) => {
      const list = this.exitWaiters.get(child) ?? [];
      let killTimer: TimerHandle | undefined;
      list.push(() => {
        killTimer?.cancel();
        resolve();
      });
      this.exitWaiters.set(child, list);
      child.stdin?.destroy();
      if (!safeKill(child, 'SIGTERM')) {
        this.exitWaiters.delete(child);
        resolve();
        return;
      }
      killTimer = this.opts.clock.setTimer(this.opts.killTimeoutMs, () => safeKill(child, 'SIGKILL'), `audio.${this.opts.name}.kill`);
    });
  }
}

/** Sends a signal; false when there is no process to signal (never spawned, or already reaped). */
function safeKill(child: ChildProcessLike, signal: NodeJS.Signals): boolean {
  if (child.pid === undefined) return false;
  try {
    return child.kill(signal);
  } catch {
    return false;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
