/**
 * The registrar's bindings on disk: the I/O edge of the {@link BindingStore}. One JSON file in the
 * state directory, replaced atomically (write a temporary file, fsync, rename, fsync the
 * directory), so after a crash the file holds either the old or the new content, never a torn
 * one. Writes are grouped: while one write is in flight, every commit that arrives waits for the
 * next single write, so throughput does not drop to one fsync per REGISTER.
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SystemClock } from '../runtime/clock.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { BindingRecord, BindingStore } from './binding-store.ts';

/** The file's content. */
export interface BindingFileContent {
  version: 1;
  /** Wall-clock ms at which the snapshot was taken. */
  savedAt: number;
  bindings: BindingRecord[];
}

/** Writes `data` to `path` so that a crash leaves either the old or the new content. */
export type FileWriter = (path: string, data: string) => Promise<void>;

export interface BindingFileOptions {
  /** The file, e.g. `<stateDir>/bindings.json`. Its directory is created (mode 0700) when missing. */
  path: string;
  store: BindingStore;
  /** The `registrar.file` logger. */
  logger: Logger;
  /** A {@link markDirty} change is written within this many milliseconds (default 5000). */
  lazyFlushMs?: number;
  /** Timers for the lazy flush and `savedAt`; the system clock when omitted. */
  clock?: Clock;
  /** The atomic writer; {@link writeFileAtomic} when omitted (tests wrap it to count writes). */
  writer?: FileWriter;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Atomic replacement of a file: `<path>.tmp` is written with mode 0600 and fsynced, renamed over
 * `path`, and the directory is fsynced so the rename itself is durable. On failure the temporary
 * file is removed (best effort) and `path` is untouched.
 */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.chmod(0o600);
      await fh.writeFile(data, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Loads the bindings at start and keeps the file up to date afterwards. The registrar calls
 * {@link commit} for a new or removed binding and awaits it before answering 200, and
 * {@link markDirty} for a refresh. The gateway calls {@link load} before it accepts requests and
 * {@link close} on shutdown.
 */
export class BindingFile {
  private readonly path: string;
  private readonly store: BindingStore;
  private readonly logger: Logger;
  private readonly lazyFlushMs: number;
  private readonly clock: Clock;
  private readonly writer: FileWriter;
  /** Commits waiting for the next write (which has not taken its snapshot yet). */
  private waiting: Waiter[] = [];
  /** A change not yet on disk that nobody waits for. */
  private dirty = false;
  /** The lazy timer fired: write even though no commit waits. */
  private flushNow = false;
  private lazyTimer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private dirReady = false;
  private closed = false;
  private writes = 0;
  private failing = false;

  constructor(opts: BindingFileOptions) {
    this.path = opts.path;
    this.store = opts.store;
    this.logger = opts.logger;
    this.lazyFlushMs = opts.lazyFlushMs ?? 5000;
    this.clock = opts.clock ?? new SystemClock();
    this.writer = opts.writer ?? writeFileAtomic;
  }

  /**
   * Restores the store from the file and returns how many live bindings came back, each with
   * the lifetime it had left. A missing file gives 0. A file that is not valid JSON of the
   * expected shape is renamed to `<path>.corrupt-<ms>` with a warning and gives 0: a damaged
   * file never stops the gateway, nor does one that cannot be read (logged as an error). Individual bad or expired records are skipped by the store.
   */
  async load(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.logger.info('no saved bindings', { path: this.path });
      } else {
        this.logger.error('cannot read bindings file; starting empty', { path: this.path, error: errorText(err) });
      }
      return 0;
    }
    let records: unknown[];
    try {
      const content = JSON.parse(text) as Partial<BindingFileContent> | null;
      if (typeof content !== 'object' || content === null || content.version !== 1 || !Array.isArray(content.bindings)) {
        throw new Error('not a version 1 bindings file');
      }
      records = content.bindings;
    } catch (err) {
      const aside = `${this.path}.corrupt-${this.clock.wallNow()}`;
      try {
        await rename(this.path, aside);
      } catch (renameErr) {
        this.logger.error('cannot move the unreadable bindings file aside', { path: this.path, error: errorText(renameErr) });
      }
      this.logger.warn('bindings file unreadable; moved aside, starting empty', {
        path: this.path,
        movedTo: aside,
        error: errorText(err),
      });
      return 0;
    }
    const restored = this.store.restore(records);
    this.logger.info('bindings restored', { path: this.path, restored, skipped: records.length - restored });
    return restored;
  }

  /**
   * Resolves once a write that includes every change made to the store before this call is on
   * disk; rejects when that write failed (the old file is then still intact). At most one write
   * is in flight: commits made meanwhile share the next one.
   */
  commit(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.kick();
    });
  }

  /** Asks for a write within `lazyFlushMs` (a refresh, whose loss in a crash costs little). */
  markDirty(): void {
    if (this.closed) return;
    this.dirty = true;
    this.scheduleLazy();
  }

  /** How many writes completed successfully (for status and tests). */
  writeCount(): number {
    return this.writes;
  }

  /** Writes what is still dirty, waits for the write in flight and stops the lazy timer. */
  async close(): Promise<void> {
    this.closed = true;
    this.lazyTimer?.cancel();
    this.lazyTimer = undefined;
    if (this.dirty) await this.commit().catch(() => undefined);
    while (this.running) await this.running;
  }

  private scheduleLazy(): void {
    if (!this.dirty || this.closed || this.lazyTimer !== undefined) return;
    this.lazyTimer = this.clock.setTimer(
      this.lazyFlushMs,
      () => {
        this.lazyTimer = undefined;
        this.flushNow = true;
        this.kick();
      },
      'bindings-lazy-flush',
    );
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      // A commit (or the lazy timer) that came between the end of drain() and here.
      if (this.waiting.length > 0 || this.flushNow) this.kick();
      // Refreshes marked while the last write was in flight, or a failed write: retry lazily.
      else this.scheduleLazy();
    });
  }

  /** Writes until no commit waits. Each pass takes one snapshot for all its waiters. */
  private async drain(): Promise<void> {
    while (this.waiting.length > 0 || this.flushNow) {
      const batch = this.waiting;
      this.waiting = [];
      this.flushNow = false;
      this.dirty = false;
      this.lazyTimer?.cancel();
      this.lazyTimer = undefined;
      try {
        await this.writeSnapshot();
        this.writes++;
        if (this.failing) this.logger.info('bindings file writable again', { path: this.path });
        this.failing = false;
        for (const w of batch) w.resolve();
      } catch (err) {
        if (!this.failing) this.logger.error('could not write bindings file', { path: this.path, error: errorText(err) });
        this.failing = true;
        // What is in memory is still not on disk; it is retried lazily, not in a tight loop.
        this.dirty = true;
        for (const w of batch) w.reject(err);
      }
    }
  }

  private async writeSnapshot(): Promise<void> {
    // The snapshot is taken synchronously when the write starts, so it holds every change made
    // before the commits of this batch were called.
    const content: BindingFileContent = { version: 1, savedAt: this.clock.wallNow(), bindings: this.store.snapshot() };
    const data = `${JSON.stringify(content)}\n`;
    if (!this.dirReady) {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      this.dirReady = true;
    }
    await this.writer(this.path, data);
  }
}
