/**
 * Where the daemon's control socket is, for the daemon and for the CLI commands that talk to it.
 * Under systemd the socket lives in the service's `RuntimeDirectory=` (`/run/hookswitch`, group
 * `hookswitch`, mode 0660, so members of the group may use the CLI); otherwise in the state
 * directory, mode 0600.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The service's socket (systemd `RuntimeDirectory=hookswitch`). */
export const SERVICE_SOCKET = '/run/hookswitch/control.sock';

/** The state directory: systemd's `STATE_DIRECTORY`, else `~/.local/state/hookswitch`. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.STATE_DIRECTORY?.split(':')[0] || join(homedir(), '.local', 'state', 'hookswitch');
}

/** Where the daemon listens, and with which mode. */
export function daemonSocket(stateDir: string, env: NodeJS.ProcessEnv = process.env): { path: string; mode: number } {
  const runtime = env.RUNTIME_DIRECTORY?.split(':')[0];
  return runtime ? { path: join(runtime, 'control.sock'), mode: 0o660 } : { path: join(stateDir, 'control.sock'), mode: 0o600 };
}

/**
 * The socket a CLI command talks to: `--socket`, else `--state-dir`'s, else the service's when it
 * exists, else the default state directory's.
 */
export function clientSocket(opts: { socket?: string; stateDir?: string }, env: NodeJS.ProcessEnv = process.env): string {
  if (opts.socket) return opts.socket;
  if (opts.stateDir) return join(opts.stateDir, 'control.sock');
  const runtime = env.RUNTIME_DIRECTORY?.split(':')[0];
  if (runtime) return join(runtime, 'control.sock');
  if (existsSync(SERVICE_SOCKET)) return SERVICE_SOCKET;
  return join(defaultStateDir(env), 'control.sock');
}
