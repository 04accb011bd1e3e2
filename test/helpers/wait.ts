/**
 * Waiting in integration tests: real time, bounded. Every wait ends by itself and reports
 * whether what it waited for happened.
 */
import { execFileSync } from 'node:child_process';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `what` every 100 ms until it holds or `timeoutMs` passed; resolves with its last value. */
export async function until(what: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (what()) return true;
    await sleep(100);
  }
  return what();
}

/** Whether something has bound UDP `port` (SIPp starting up), by `ss`, within `timeoutMs`. */
export function udpPortTaken(port: number, timeoutMs: number): Promise<boolean> {
  return until(() => {
    try {
      return execFileSync('ss', ['-Hlun', `sport = :${port}`], { encoding: 'utf8' }).trim().length > 0;
    } catch {
      return false;
    }
  }, timeoutMs);
}
