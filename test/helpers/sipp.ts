/**
 * Runs SIPp for integration tests: argv arrays only (no shell), a private working directory,
 * a hard time limit, and its logs collected for assertions and diagnostics.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SippResult {
  /** 0: every call succeeded; 1: at least one failed; 97/99/255: aborted or nothing ran. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** What the scenario's <log> actions wrote (with `log: true`). */
  log: string;
  /** SIPp's -trace_stat CSV (with `stat: true`). */
  stat: string;
  /** The command, the tail of SIPp's screen and its error log, for diagnostics. */
  output: string;
}

export interface SippProcess {
  result: Promise<SippResult>;
  /** SIGKILL, if still running. */
  kill(): void;
}

const running = new Set<SippProcess>();
process.on('exit', () => {
  for (const p of running) p.kill();
});

/**
 * Starts `sipp` with `args` (scenario, target, rates...), killed after `timeoutMs`. SIPp's own
 * `-timeout` is set a little shorter so that it normally ends by itself.
 */
export function spawnSipp(sipp: string, args: string[], timeoutMs: number, want: { log?: boolean; stat?: boolean } = {}): SippProcess {
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-sipp-'));
  const logFile = join(dir, 'scenario.log');
  const statFile = join(dir, 'stat.csv');
  const errFile = join(dir, 'errors.log');
  const argv = [
    ...args,
    '-nostdin',
    '-timeout', `${Math.max(1, Math.floor(timeoutMs / 1000) - 2)}s`,
    '-timeout_error',
    '-trace_err', '-error_file', errFile,
    ...(want.log ? ['-trace_logs', '-log_file', logFile] : []),
    ...(want.stat ? ['-trace_stat', '-stf', statFile, '-fd', '60'] : []),
  ];
  const child = spawn(sipp, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let screen = '';
  child.stdout.setEncoding('latin1').on('data', (d: string) => (screen = (screen + d).slice(-20_000)));
  child.stderr.setEncoding('latin1').on('data', (d: string) => (screen = (screen + d).slice(-20_000)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const read = (f: string) => {
    try {
      return readFileSync(f, 'latin1');
    } catch {
      return '';
    }
  };
  const proc: SippProcess = {
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    result: new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, sig) => resolve([code, sig]));
    })
      .then(([exitCode, signal]) => ({
        exitCode,
        signal,
        timedOut,
        log: read(logFile),
        stat: read(statFile),
        output: `sipp ${argv.join(' ')}\n${screen.slice(-3_000)}\n--- sipp error log ---\n${read(errFile).slice(0, 3_000)}`,
      }))
      .finally(() => {
        clearTimeout(timer);
        running.delete(proc);
        rmSync(dir, { recursive: true, force: true });
      }),
  };
  running.add(proc);
  return proc;
}
