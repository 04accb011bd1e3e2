/**
 * A test file's scratch space: a temporary directory and a list of clean-ups (processes to stop,
 * peers to kill) run in reverse order when the root test ends, then the directory removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

export interface Scratch {
  readonly dir: string;
  /** Runs `fn` at the end of the test file (last registered first). */
  defer(fn: () => unknown): void;
}

export function scratch(prefix: string): Scratch {
  const dir = mkdtempSync(join(tmpdir(), `hookswitch-${prefix}-`));
  const cleanups: (() => unknown)[] = [];
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, defer: (fn) => cleanups.push(fn) };
}
