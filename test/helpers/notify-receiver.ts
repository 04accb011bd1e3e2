/**
 * A fake systemd notify socket for tests: `/usr/bin/python3` runs `script` (given the socket path
 * and `args`), which binds a unix datagram socket and prints one JSON object per datagram. The
 * returned `messages()` parses what arrived so far, without systemd-notify's `BARRIER=1`
 * handshakes. The child is killed by `defer`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { until } from './wait.ts';

export const PYTHON = '/usr/bin/python3';

export async function notifyReceiver<T extends { fields: string[] }>(
  script: string,
  path: string,
  args: string[],
  defer: (fn: () => void) => void,
): Promise<{ path: string; messages(): T[] }> {
  const child = spawn(PYTHON, ['-c', script, path, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  defer(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  if (!(await until(() => existsSync(path), 5000))) throw new Error(`the receiver did not bind ${path}`);
  return {
    path,
    messages: () =>
      out
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as T)
        .filter((m) => !(m.fields.length === 1 && m.fields[0] === 'BARRIER=1')),
  };
}
