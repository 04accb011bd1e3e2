/**
 * Runs kamailio 5.6 in the foreground for integration tests and the benchmark, with the config
 * in test/kamailio/registrar.cfg: a registrar with digest authentication (passwords held in an
 * htable filled from the generated config, usrloc in memory), or a stateful proxy. Everything
 * lives in a private temporary directory (working dir, runtime dir, pid file, ctl socket); no
 * root, no database, loopback only.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, findExecutable, freePort, probeOptions } from './gateway-process.ts';

export interface KamailioOptions {
  /** UDP and TCP port on 127.0.0.1; default a free port. */
  port?: number;
  /** Users and their digest passwords. */
  users?: Record<string, string>;
  /** Worker processes per listener (`-n`); default 2. */
  workers?: number;
  mode: 'registrar' | 'proxy';
  /** Digest realm; default "kamailio.test". */
  realm?: string;
  /** registrar mode: Request-URI users starting with this go to `trunkTarget`; default "9". */
  trunkPrefix?: string;
  /** registrar mode: `host:port` of the SIPp UAS for calls out of the trunk. */
  trunkTarget?: string;
  /** proxy mode: `host:port` where every new request is relayed. */
  proxyTarget?: string;
  /** proxy mode: challenge INVITEs (407) before relaying them. */
  proxyInviteAuth?: boolean;
  /** Longest registration granted, in seconds (registrar max_expires); default 3600. */
  maxExpires?: number;
  /** Shared memory in MB; default 64. */
  sharedMemoryMb?: number;
  /** kamailio's log level (`debug=`): 2 (info, default) or 3 (debug). */
  debug?: number;
  /** Milliseconds to wait for kamailio to answer OPTIONS; default 10000. */
  startTimeoutMs?: number;
}

export interface Kamailio {
  readonly pid: number;
  readonly port: number;
  /** `127.0.0.1:port`. */
  readonly address: string;
  readonly realm: string;
  readonly dir: string;
  /** Runs `kamcmd -s <ctl socket> ARGS` and returns its stdout (throws on failure). */
  kamcmd(...args: string[]): string;
  /** The contacts usrloc holds for `user` (from `kamcmd ul.lookup location s:USER`), [] when none. */
  contacts(user: string): string[];
  /** Everything kamailio logged so far. */
  log(): string;
  alive(): boolean;
  readonly exited: Promise<void>;
  /** SIGTERM, SIGKILL after 5 s; removes the directory. */
  stop(): Promise<void>;
  /** SIGKILL to the whole process group (kamailio forks its workers). */
  kill(): void;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) killGroup(c, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    // Spawned detached, so its pid is also its process group: this reaches every worker.
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/** A kamailio string define: a double-quoted value for `-A NAME="value"`. */
function quoted(v: string): string {
  if (/["\\\n]/.test(v)) throw new Error(`kamailio define value must not contain quotes or backslashes: ${v}`);
  return `"${v}"`;
}

/** The htable initialisation: one assignment per user, run once at start-up. */
function usersConfig(users: Record<string, string>): string {
  const lines = Object.entries(users).map(([name, pw]) => {
    if (!/^[A-Za-z0-9_.+-]+$/.test(name)) throw new Error(`kamailio user name not supported: ${name}`);
    return `\t$sht(users=>${name}) = ${quoted(pw)};`;
  });
  // kamailio refuses an empty route block: no users, no block.
  return lines.length === 0 ? '' : `event_route[htable:mod-init] {\n${lines.join('\n')}\n}\n`;
}

/** Starts kamailio and resolves once it answers SIP on its port. */
export async function startKamailio(opts: KamailioOptions): Promise<Kamailio> {
  const bin = findExecutable('kamailio') ?? ['/usr/sbin/kamailio', '/usr/local/sbin/kamailio'].find((p) => spawnSync(p, ['-v']).status === 0);
  if (!bin) throw new Error('kamailio is not installed (scripts/ci-deps.sh installs it: apt-get install kamailio)');
  const kamcmdBin = findExecutable('kamcmd') ?? '/usr/sbin/kamcmd';
  const port = opts.port ?? (await freePort());
  const realm = opts.realm ?? 'kamailio.test';
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-kamailio-'));
  const ctl = `unix:${join(dir, 'ctl.sock')}`;
  const defines: Record<string, string | true> = {
    REALM: quoted(realm),
    CTL_SOCKET: quoted(ctl),
    TRUNK_PREFIX: quoted(opts.trunkPrefix ?? '9'),
    TRUNK_TARGET: quoted(`sip:${opts.trunkTarget ?? '127.0.0.1:9'}`),
    PROXY_TARGET: quoted(`sip:${opts.proxyTarget ?? '127.0.0.1:9'}`),
    MAX_EXPIRES: String(Math.trunc(opts.maxExpires ?? 3600)),
  };
  if (opts.mode === 'proxy') {
    defines.MODE_PROXY = true;
    if (opts.proxyInviteAuth) defines.PROXY_INVITE_AUTH = true;
  } else {
    defines.MODE_REGISTRAR = true;
  }
  const main = [
    '#!KAMAILIO',
    ...Object.entries(defines).map(([k, v]) => (v === true ? `#!define ${k}` : `#!define ${k} ${v}`)),
    `include_file "${join(REPO_ROOT, 'test', 'kamailio', 'registrar.cfg')}"`,
    `include_file "${join(dir, 'users.cfg')}"`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'kamailio.cfg'), main);
  writeFileSync(join(dir, 'users.cfg'), usersConfig(opts.users ?? {}), { mode: 0o600 });

  const argv = [
    '-f', join(dir, 'kamailio.cfg'),
    '-DD', '-E',
    '-n', String(opts.workers ?? 2),
    '-l', `udp:127.0.0.1:${port}`,
    '-l', `tcp:127.0.0.1:${port}`,
    '-w', dir,
    '-Y', dir,
    '-P', join(dir, 'kamailio.pid'),
    '-m', String(opts.sharedMemoryMb ?? 64),
    '-M', '8',
    ...(opts.debug !== undefined ? ['--debug', String(opts.debug)] : []),
  ];
  const child = spawn(bin, argv, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  const append = (d: string) => (output = (output + d).slice(-500_000));
  child.stdout!.setEncoding('latin1').on('data', append);
  child.stderr!.setEncoding('latin1').on('data', append);
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      live.delete(child);
      resolve();
    });
  });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });

  const deadline = performance.now() + (opts.startTimeoutMs ?? 10_000);
  let up = false;
  while (!up && !done && performance.now() < deadline) {
    // The config answers OPTIONS to itself (no user part) 200 in both modes.
    up = (await probeOptions('127.0.0.1', port, 500))?.status === 200;
  }
  if (!up) {
    killGroup(child, 'SIGKILL');
    await exited;
    cleanup();
    throw new Error(`kamailio ${argv.join(' ')} did not come up${done ? ' (it exited)' : ''}:\n${output.slice(-5_000)}`);
  }

  const kamcmd = (...args: string[]) => {
    const r = spawnSync(kamcmdBin, ['-s', ctl, ...args], { encoding: 'utf8', timeout: 5_000 });
    if (r.status !== 0) throw new Error(`kamcmd ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  return {
    pid: child.pid!,
    port,
    address: `127.0.0.1:${port}`,
    realm,
    dir,
    kamcmd,
    contacts: (user) => {
      // `s:` keeps kamcmd from sending a numeric user name as an integer.
      const r = spawnSync(kamcmdBin, ['-s', ctl, 'ul.lookup', 'location', `s:${user}`], { encoding: 'utf8', timeout: 5_000 });
      if (r.status !== 0) return [];
      return [...r.stdout.matchAll(/^\s*Address:\s*(\S+)\s*$/gm)].map((m) => m[1]!);
    },
    log: () => output,
    alive: () => !done,
    exited,
    kill: () => {
      if (!done) killGroup(child, 'SIGKILL');
    },
    stop: async () => {
      if (!done) killGroup(child, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, 5_000)))]);
      clearTimeout(timer);
      if (!done) killGroup(child, 'SIGKILL');
      await exited;
      cleanup();
    },
  };
}
