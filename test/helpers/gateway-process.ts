/**
 * Runs the real gateway as a child process for integration tests and the PROTOS runner: picks a
 * free loopback port, starts `hookswitch run`, waits for its "listening" log line, and stops it
 * with SIGTERM. Also a minimal, independent SIP OPTIONS prober (regexes, not our parser, so it
 * checks the gateway rather than agreeing with it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/helpers/gateway-process.ts). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface StartOptions {
  /** Loopback address to bind; default 127.0.0.1. */
  host?: string;
  /** Run `dist/hookswitch.mjs` instead of the TypeScript sources (build it first). */
  bundle?: boolean;
  /**
   * A different entry script; default `$HOOKSWITCH_ENTRY` if set (e.g. `dist/hookswitch.mjs`, to
   * run the integration tests against the bundle), else src/cli/main.ts.
   */
  entry?: string;
  /** Extra arguments after `run --bind H --sip-port N --state-dir D`. */
  args?: string[];
  /** Milliseconds to wait for the listening line; default 15000. */
  startTimeoutMs?: number;
  /** Extra environment for the child. */
  env?: NodeJS.ProcessEnv;
  /**
   * Use this state directory (e.g. a previous run's, to test persistence) instead of a fresh
   * temporary one; a given directory is left in place when the child exits.
   */
  stateDir?: string;
  /** Use this SIP port instead of a free one (no retry on a bind race then). */
  port?: number;
  /** Keep the child's stdin and stdout as pipes (`run --sim`): {@link GatewayProcess.send}, `stdout()`. */
  interactive?: boolean;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running gateway. Call `stop()` (or at least `kill()`) in a teardown. */
export interface GatewayProcess {
  readonly pid: number;
  readonly host: string;
  /** The SIP port, on UDP and TCP. */
  readonly port: number;
  readonly stateDir: string;
  /** Everything the child wrote to stderr so far (the log). */
  log(): string;
  /** True until the child exits. */
  alive(): boolean;
  /** Resolves when the child exits, however that happens. */
  readonly exited: Promise<ExitStatus>;
  /**
   * Sends SIGTERM and waits up to `timeoutMs` (default 5000) for the exit; past that, SIGKILLs
   * it and reports `signal: 'SIGKILL'`. A temporary state directory is removed whenever the child
   * exits (one passed as `StartOptions.stateDir` is kept).
   */
  stop(timeoutMs?: number): Promise<ExitStatus>;
  /** SIGKILL without waiting; safe to call after exit. */
  kill(): void;
  /** Writes a line to the child's stdin (with `interactive`). */
  send(line: string): void;
  /** Everything the child wrote to stdout so far (with `interactive`). */
  stdout(): string;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * A port free on both UDP and TCP at `host`: binds UDP port 0, then checks TCP on the same
 * number. Another process can still take it before the gateway binds; `startGateway` retries.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, host, () => resolve(udp.address().port));
    });
    const tcpFree = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, host, () => srv.close(() => resolve(true)));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcpFree) return port;
  }
  throw new Error(`no port free on both UDP and TCP at ${host} after 20 attempts`);
}

const LISTENING = /msg="?listening"?/;
/** Ready when it has said it listens on UDP and on TCP, or that it has started. */
function isReady(lines: string[]): boolean {
  if (lines.some((l) => /msg="?started"?/.test(l))) return true;
  const listening = lines.filter((l) => LISTENING.test(l));
  return listening.some((l) => /transport=\S*udp/i.test(l)) && listening.some((l) => /transport=\S*tcp/i.test(l));
}

/**
 * Starts `hookswitch run` on a free port and resolves once it has logged that it is listening
 * on UDP and TCP (or that it has started).
 * Rejects with the child's stderr if it exits first or does not get there in time; a bind
 * failure (exit 2, the port was taken meanwhile) is retried on another port.
 */
export async function startGateway(opts: StartOptions = {}): Promise<GatewayProcess> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      lastError = e as Error;
      if (!(e instanceof BindRace)) throw e;
    }
  }
  throw lastError!;
}

class BindRace extends Error {}

async function startOnce(opts: StartOptions): Promise<GatewayProcess> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'hookswitch-state-'));
  const entry = resolvePath(
    REPO_ROOT,
    opts.entry ?? (opts.bundle ? join('dist', 'hookswitch.mjs') : (process.env.HOOKSWITCH_ENTRY || join('src', 'cli', 'main.ts'))),
  );
  const nodeArgs = entry.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const argv = [...nodeArgs, entry, 'run', '--bind', host, '--sip-port', String(port), '--state-dir', stateDir, ...(opts.args ?? [])];
  const child = spawn(process.execPath, argv, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: opts.interactive ? ['pipe', 'pipe', 'pipe'] : ['ignore', 'ignore', 'pipe'],
  });
  live.add(child);

  let stderr = '';
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout = (stdout + chunk).slice(-1_000_000)));
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const listening = new Promise<void>((resolve) => {
    let pending = '';
    const seen: string[] = [];
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      // Keep the log bounded: a flood of warnings must not grow the test process without limit.
      stderr = (stderr + chunk).slice(-1_000_000);
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      seen.push(...lines.filter((l) => LISTENING.test(l) || /msg="?started"?/.test(l)));
      if (isReady(seen)) resolve();
    });
  });

  const timeoutMs = opts.startTimeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    listening.then(() => 'listening' as const),
    exited.then((s) => s),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    }),
  ]);
  clearTimeout(timer);

  const cleanupDir = () => {
    if (opts.stateDir === undefined) rmSync(stateDir, { recursive: true, force: true });
  };
  if (outcome !== 'listening') {
    child.kill('SIGKILL');
    await exited;
    cleanupDir();
    const what = outcome === 'timeout' ? `did not log "listening" within ${timeoutMs} ms` : `exited (code ${outcome.code}, signal ${outcome.signal})`;
    const message = `gateway ${argv.join(' ')} ${what}; stderr:\n${stderr}`;
    if (outcome !== 'timeout' && outcome.code === 2 && /EADDRINUSE|in use/i.test(stderr) && opts.port === undefined) throw new BindRace(message);
    throw new Error(message);
  }

  let exitStatus: ExitStatus | undefined;
  void exited.then((s) => {
    exitStatus = s;
    cleanupDir();
  });
  return {
    pid: child.pid!,
    host,
    port,
    stateDir,
    exited,
    log: () => stderr,
    stdout: () => stdout,
    send: (line: string) => {
      if (!child.stdin) throw new Error('send needs StartOptions.interactive');
      child.stdin.write(`${line}\n`);
    },
    alive: () => exitStatus === undefined,
    kill: () => {
      if (exitStatus === undefined) child.kill('SIGKILL');
    },
    stop: async (stopTimeoutMs = 5_000) => {
      if (exitStatus === undefined) child.kill('SIGTERM');
      let killTimer: NodeJS.Timeout | undefined;
      const status = await Promise.race([
        exited,
        new Promise<ExitStatus>((resolve) => {
          killTimer = setTimeout(() => {
            child.kill('SIGKILL');
            void exited.then(() => resolve({ code: null, signal: 'SIGKILL' }));
          }, stopTimeoutMs);
        }),
      ]);
      clearTimeout(killTimer);
      return status;
    },
  };
}

/** What an OPTIONS probe got back. */
export interface OptionsReply {
  status: number;
  /** Round-trip time of the exchange in milliseconds. */
  ms: number;
  /** The raw response (latin1). */
  text: string;
}

/**
 * Sends one OPTIONS over UDP from an ephemeral port and resolves with the final response to it
 * (matched by Call-ID and Via branch), or null if none arrives within `timeoutMs`. Retransmits
 * every 500 ms like RFC 3261 Timer E (T1 = 500 ms) so one lost datagram does not fail the probe.
 */
export async function probeOptions(host: string, port: number, timeoutMs = 2_000): Promise<OptionsReply | null> {
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, host, () => resolve());
  });
  const local = sock.address();
  const id = randomBytes(8).toString('hex');
  const branch = `z9hG4bK-probe-${id}`;
  const callId = `probe-${id}@${host}`;
  const target = `sip:${host.includes(':') ? `[${host}]` : host}:${port}`;
  const request = Buffer.from(
    [
      `OPTIONS ${target} SIP/2.0`,
      `Via: SIP/2.0/UDP ${local.address}:${local.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:probe@${local.address}>;tag=${id.slice(0, 8)}`,
      `To: <${target}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 OPTIONS',
      'Accept: application/sdp',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
  const started = performance.now();
  try {
    return await new Promise<OptionsReply | null>((resolve) => {
      const send = () => sock.send(request, port, host);
      const retransmit = setInterval(send, 500);
      const deadline = setTimeout(() => {
        clearInterval(retransmit);
        resolve(null);
      }, timeoutMs);
      sock.on('message', (msg) => {
        const text = msg.toString('latin1');
        const status = /^SIP\/2\.0 (\d{3}) /.exec(text);
        if (!status || Number(status[1]) < 200) return;
        if (!new RegExp(`^(?:Call-ID|i)[ \\t]*:[ \\t]*${escapeRe(callId)}[ \\t]*\\r?$`, 'im').test(text)) return;
        if (!text.includes(branch)) return;
        clearInterval(retransmit);
        clearTimeout(deadline);
        resolve({ status: Number(status[1]), ms: performance.now() - started, text });
      });
      send();
    });
  } finally {
    sock.close();
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Resident set size of a process in kilobytes (Linux /proc/PID/status VmRSS), or null. */
export async function residentKb(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The absolute path of an executable found on PATH, or null (no shell involved). */
export function findExecutable(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** True when running under CI (`CI` set to anything but "false"/"0"/empty). */
export function inCI(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

/** SIPp's cumulative counters at the end of a run, from its -trace_stat CSV. */
export interface SippStats {
  created: number;
  successful: number;
  failed: number;
  retransmissions: number;
  /** FailedUnexpectedMessage(C): a response the scenario did not expect. */
  unexpected: number;
  /** Seconds from SIPp's start to the last statistics line (ElapsedTime(C)). */
  elapsedSeconds: number;
  /** Every non-zero Failed*(C) counter, e.g. FailedRegexpHdrNotFound. */
  failureKinds: Record<string, number>;
}

/** Parses the last line of SIPp's `-trace_stat` CSV (`;`-separated), or null without data. */
export function parseSippStats(csv: string): SippStats | null {
  const rows = csv
    .split('\n')
    .filter((l) => l.includes(';'))
    .map((l) => l.split(';'));
  if (rows.length < 2) return null;
  const head = rows[0]!;
  const last = rows[rows.length - 1]!;
  const get = (name: string) => Number(last[head.indexOf(name)] ?? NaN);
  const failureKinds: Record<string, number> = {};
  head.forEach((name, i) => {
    if (/^Failed.+\(C\)$/.test(name) && Number(last[i]) > 0) failureKinds[name] = Number(last[i]);
  });
  const elapsed = /(\d+):(\d+):(\d+)(?::(\d+))?/.exec(last[head.indexOf('ElapsedTime(C)')] ?? '');
  return {
    created: get('TotalCallCreated'),
    successful: get('SuccessfulCall(C)'),
    failed: get('FailedCall(C)'),
    retransmissions: get('Retransmissions(C)'),
    unexpected: get('FailedUnexpectedMessage(C)'),
    elapsedSeconds: elapsed ? Number(elapsed[1]) * 3600 + Number(elapsed[2]) * 60 + Number(elapsed[3]) + Number(elapsed[4] ?? 0) / 1_000_000 : NaN,
    failureKinds,
  };
}

/**
 * An injection file for test/sipp/register-csv-uac.xml: `SEQUENTIAL`, then one
 * `user;[authentication username=U password=P]` line per user (SIPp 3.6 cannot nest [field0]
 * inside [authentication], but expands a field that holds the whole keyword).
 */
export function sippUsersCsv(users: readonly (readonly [string, string])[]): string {
  for (const [u, p] of users) if (/[;\]\s]/.test(u + p)) throw new Error(`user or password unusable in a SIPp CSV: ${u}`);
  return `SEQUENTIAL\n${users.map(([u, p]) => `${u};[authentication username=${u} password=${p}]`).join('\n')}\n`;
}
