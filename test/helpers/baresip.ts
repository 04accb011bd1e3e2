/**
 * Runs baresip 1.0.0 headless for media and call tests: writes a private config directory
 * (`baresip -f DIR`), plays a WAV file as the microphone (aufile), records what it hears
 * (sndfile), and drives it over ctrl_tcp (netstrings carrying JSON commands and events).
 *
 * Facts about baresip 1.0.0 (libre 1.x) that this helper encodes, found by experiment:
 * - `net_interface 127.0.0.1` (an address, not `lo`) keeps every socket on loopback;
 *   `sip_listen 127.0.0.1:P` opens UDP and TCP on P and TLS on P + 1.
 * - aufile plays a 16-bit WAV as the source; `ausrc_srate`/`ausrc_channels` are set to the
 *   file's format and baresip resamples from there to each codec (an 8000 Hz mono tone works
 *   for PCMU, PCMA, G722 and opus/48000/2). aufile loads the whole file when a call starts
 *   ("aufile: loaded N bytes"), so the tone must last longer than the call (default 60 s).
 * - The call commands (dial, hangup, accept) come from the menu module (`module_app menu.so`);
 *   without it ctrl_tcp answers "command not found".
 * - sndfile (an audio filter) writes each call into `snd_path` as `dump-<YYYY-MM-DD-hh-mm-ss>-enc.wav`
 *   (what it sent) and `...-dec.wav` (what it received, decoded), at the codec's rate and
 *   channels: 8000/1 for PCMU/PCMA, 16000/1 for G722, 48000/2 for opus (two calls started in
 *   the same second overwrite each other).
 * - A challenge offering SHA-256 digest makes its REGISTER fail with "Function not
 *   implemented" even when an MD5 challenge is also present: the gateway must offer MD5 only
 *   (`sip.authAlgorithms: ["MD5"]`) to baresip 1.0.0.
 * - `answermode=auto`, `audio_codecs=...`, `auth_pass=...`, `regint=...` are account parameters.
 * - The presence module's subscriber takes the first UA one second after the module loads and,
 *   finding none, retries only after 30 s ("presence: no UA found"): it is loaded with `insmod`
 *   after `uanew`, not from the config file. `contacts` then prints each contact's status
 *   (`Unknown`, `Online`, `Offline`, `Busy`, in ANSI colours); baresip raises no ctrl_tcp event
 *   for a change, it logs `<uri> changed status from X to Y`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, freePort } from './gateway-process.ts';
import { readWav, writeToneWav } from './wav.ts';

export type BaresipCodec = 'PCMU/8000/1' | 'PCMA/8000/1' | 'G722/16000/1' | 'opus/48000/2' | `L16/${8000 | 16000 | 48000}/${1 | 2}`;

export interface BaresipAccount {
  user: string;
  /** Digest password; omit for an account that does not register. */
  password?: string;
  /** `host:port` of the registrar (and the domain of the AOR); omit to not register. */
  registrar?: string;
  /** `tls` needs `sip_cafile` (or no verification) in `extraConfig`; the registrar port is then the TLS one. */
  transport?: 'udp' | 'tcp' | 'tls';
  /** Registration interval in seconds; default 600 (0 when there is no registrar). */
  regint?: number;
}

export interface BaresipOptions {
  /** A label for diagnostics. */
  name: string;
  /** Config directory; default a fresh temporary directory, removed on stop. */
  dir?: string;
  /** SIP port on 127.0.0.1 (TLS takes port + 1); default a free port whose successor is free too. */
  sipPort?: number;
  account: BaresipAccount;
  /** Offered codecs in preference order; default PCMU. */
  codecs?: BaresipCodec[];
  /** A 16-bit PCM WAV to play as the microphone; default a 1000 Hz tone at 8000 Hz, 60 s. */
  toneWav?: string;
  /** Directory where sndfile records each call (`<dir>/rec` when true); default no recording. */
  recordDir?: string | boolean;
  /** Answer incoming calls automatically. */
  autoAnswer?: boolean;
  /** RTP port range; default 40 ports picked from 30000-59999 by the SIP port. */
  rtpPorts?: [number, number];
  /** Extra config lines appended verbatim. */
  extraConfig?: string[];
  /** Extra account parameters (`dtmfmode=info`, ...). */
  accountParams?: string[];
  /**
   * Lines of the `contacts` file (`"Name" <sip:user@host>`). The contact module's `message <text>`
   * sends a MESSAGE to the current contact: the first one, then `contact_next`/`contact_prev`.
   */
  contacts?: string[];
  /**
   * Load the presence module (`insmod presence.so`) once the account exists: it subscribes
   * (RFC 3856) to each contact marked `;presence=p2p` and shows the result in `contacts`.
   */
  presence?: boolean;
}

/** One ctrl_tcp event: `type` such as REGISTER_OK, CALL_INCOMING, CALL_ESTABLISHED, CALL_CLOSED. */
export interface BaresipEvent {
  type: string;
  class?: string;
  accountaor?: string;
  direction?: string;
  peeruri?: string;
  id?: string;
  /** Event detail: for CALL_CLOSED the reason ("Connection reset by user", "603 Decline"...). */
  param?: string;
  /** When the event arrived (performance.now()). */
  at: number;
}

export interface BaresipResponse {
  ok: boolean;
  data: string;
}

export interface Baresip {
  readonly name: string;
  readonly pid: number;
  readonly dir: string;
  readonly sipPort: number;
  readonly ctrlPort: number;
  /** Where recordings go, if recording. */
  readonly recordDir: string | undefined;
  /** `sip:user@127.0.0.1:sipPort`: where to reach this phone directly. */
  readonly contactUri: string;
  /** Every event received so far, in order. */
  readonly events: readonly BaresipEvent[];
  /** Sends a ctrl_tcp command and resolves with its response (rejects after `timeoutMs`). */
  command(command: string, params?: string, timeoutMs?: number): Promise<BaresipResponse>;
  dial(uri: string): Promise<BaresipResponse>;
  hangup(): Promise<BaresipResponse>;
  accept(): Promise<BaresipResponse>;
  /**
   * Resolves with the first event of `type` (already received ones count, from index `since`)
   * that satisfies `match`; rejects after `timeoutMs` (default 10000) naming what arrived.
   */
  waitEvent(type: string, opts?: { timeoutMs?: number; since?: number; match?: (e: BaresipEvent) => boolean }): Promise<BaresipEvent>;
  /** WAV files sndfile wrote so far (absolute paths), `-dec` (received) and `-enc` (sent). */
  recordings(): { received: string[]; sent: string[] };
  /** baresip's stdout and stderr so far. */
  log(): string;
  alive(): boolean;
  /** Quits (SIGTERM, SIGKILL after 3 s) and removes a temporary config directory. */
  stop(): Promise<void>;
  kill(): void;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A free port P on 127.0.0.1 whose P + 1 is free on TCP as well (baresip's TLS listener). */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await freePort();
    if (p < 65535 && (await isFree(p + 1))) return p;
  }
  throw new Error('no free port pair for baresip SIP/TLS');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function configText(o: {
  sipPort: number;
  ctrlPort: number;
  tone: string;
  rate: number;
  channels: number;
  rtpPorts: [number, number];
  recordDir: string | undefined;
  extra: string[];
}): string {
  const lines = [
    'poll_method epoll',
    `sip_listen 127.0.0.1:${o.sipPort}`,
    'call_local_timeout 120',
    'call_max_calls 4',
    `audio_source aufile,${o.tone}`,
    'audio_player aufile,/dev/null',
    'audio_alert aufile,/dev/null',
    `ausrc_srate ${o.rate}`,
    `ausrc_channels ${o.channels}`,
    'audio_level no',
    'audio_buffer 20-160',
    `rtp_ports ${o.rtpPorts[0]}-${o.rtpPorts[1]}`,
    'rtcp_mux no',
    'jitter_buffer_delay 5-10',
    'net_interface 127.0.0.1',
    'module_path /usr/lib/baresip/modules',
    'module g711.so',
    'module g722.so',
    'module opus.so',
    'module l16.so',
    'module aufile.so',
    ...(o.recordDir ? ['module sndfile.so', `snd_path ${o.recordDir}`] : []),
    'module account.so',
    'module contact.so',
    // The commands (dial, hangup, accept...) live in the menu module; ctrl_tcp only carries them.
    'module_app menu.so',
    'module_app ctrl_tcp.so',
    `ctrl_tcp_listen 127.0.0.1:${o.ctrlPort}`,
    ...o.extra,
  ];
  return `${lines.join('\n')}\n`;
}

function accountLine(a: BaresipAccount, codecs: readonly string[], autoAnswer: boolean, extra: readonly string[] = []): string {
  const transport = a.transport ?? 'udp';
  const host = a.registrar ?? '127.0.0.1';
  const params = [
    ...(a.password !== undefined ? [`auth_pass=${a.password}`] : []),
    `regint=${a.registrar ? (a.regint ?? 600) : 0}`,
    `answermode=${autoAnswer ? 'auto' : 'manual'}`,
    `audio_codecs=${codecs.join(',')}`,
    ...extra,
  ];
  return `<sip:${a.user}@${host};transport=${transport}>;${params.join(';')}`;
}

/** Encodes one netstring (`<length>:<bytes>,`). */
function netstring(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length}:`, 'latin1'), body, Buffer.from(',', 'latin1')]);
}

/**
 * Starts baresip and resolves once ctrl_tcp accepts connections (and REGISTER is underway). A
 * port taken between choosing it and baresip binding it (another test file running at the same
 * time) is retried with fresh ports, unless the caller fixed them.
 */
export async function startBaresip(opts: BaresipOptions): Promise<Baresip> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startBaresipOnce(opts);
    } catch (err) {
      const raced = err instanceof Error && /Address already in use/.test(err.message) && opts.sipPort === undefined;
      if (!raced || attempt >= 3) throw err;
    }
  }
}

async function startBaresipOnce(opts: BaresipOptions): Promise<Baresip> {
  const bin = findExecutable('baresip');
  if (!bin) throw new Error('baresip is not installed (scripts/ci-deps.sh installs it: apt-get install baresip)');
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `hookswitch-baresip-${opts.name}-`));
  mkdirSync(dir, { recursive: true });
  const sipPort = opts.sipPort ?? (await freePortPair());
  const ctrlPort = await freePort();
  let tone = opts.toneWav;
  if (!tone) {
    tone = join(dir, 'tone.wav');
    writeToneWav(tone, { rate: 8000, seconds: 60, frequency: 1000, amplitude: 0.5 });
  }
  const wav = readWav(tone);
  const recordDir = opts.recordDir === true ? join(dir, 'rec') : opts.recordDir || undefined;
  if (recordDir) mkdirSync(recordDir, { recursive: true });
  const base = 30000 + ((sipPort * 7) % 700) * 40;
  const rtpPorts = opts.rtpPorts ?? [base, base + 39];
  writeFileSync(
    join(dir, 'config'),
    configText({ sipPort, ctrlPort, tone, rate: wav.rate, channels: wav.channels, rtpPorts, recordDir, extra: opts.extraConfig ?? [] }),
  );
  // The account is added over ctrl_tcp once connected (uanew), so that its REGISTER_OK or
  // REGISTER_FAIL event cannot happen before anyone listens.
  writeFileSync(join(dir, 'accounts'), '', { mode: 0o600 });
  writeFileSync(join(dir, 'contacts'), (opts.contacts ?? []).map((c) => `${c}\n`).join(''));

  // HOME points into the directory: baresip must never read or write the user's ~/.baresip.
  const child = spawn(bin, ['-f', dir], { cwd: dir, env: { ...process.env, HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  const append = (d: string) => (output = (output + d).slice(-200_000));
  child.stdout!.setEncoding('latin1').on('data', append);
  child.stderr!.setEncoding('latin1').on('data', append);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });

  const events: BaresipEvent[] = [];
  const waiters = new Set<() => void>();
  const pending = new Map<string, (r: BaresipResponse) => void>();
  let socket: Socket | undefined;
  const deadline = performance.now() + 10_000;
  while (!socket) {
    if (exited) {
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      throw new Error(`baresip ${opts.name} exited during start:\n${output}`);
    }
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`baresip ${opts.name}: ctrl_tcp on 127.0.0.1:${ctrlPort} did not accept within 10 s:\n${output}`);
    }
    socket = await new Promise<Socket | undefined>((resolve) => {
      const s = connect(ctrlPort, '127.0.0.1');
      s.once('connect', () => resolve(s));
      s.once('error', () => {
        s.destroy();
        setTimeout(() => resolve(undefined), 100);
      });
    });
  }
  const ctrl = socket;
  let buf = Buffer.alloc(0);
  ctrl.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (let guard = 0; guard < 1000; guard++) {
      const colon = buf.indexOf(0x3a);
      if (colon < 0) break;
      const len = Number(buf.toString('latin1', 0, colon));
      if (!Number.isInteger(len) || buf.length < colon + 2 + len) break;
      const body = buf.toString('utf8', colon + 1, colon + 1 + len);
      buf = buf.subarray(colon + 2 + len);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(body) as Record<string, unknown>;
      } catch {
        append(`\n[ctrl_tcp: unparsable ${body}]\n`);
        continue;
      }
      if (msg.event) {
        const e: BaresipEvent = { type: String(msg.type), at: performance.now() };
        for (const k of ['class', 'accountaor', 'direction', 'peeruri', 'id', 'param'] as const) {
          if (msg[k] !== undefined) e[k] = String(msg[k]);
        }
        events.push(e);
        for (const w of [...waiters]) w();
      } else if (msg.response) {
        const token = String(msg.token ?? '');
        const r = pending.get(token);
        pending.delete(token);
        r?.({ ok: Boolean(msg.ok), data: String(msg.data ?? '') });
      }
    }
  });
  ctrl.on('error', () => undefined);

  let tokens = 0;
  const command = (cmd: string, params?: string, timeoutMs = 5_000) =>
    new Promise<BaresipResponse>((resolve, reject) => {
      const token = `t${++tokens}`;
      const timer = setTimeout(() => {
        pending.delete(token);
        reject(new Error(`baresip ${opts.name}: no response to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(token, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      ctrl.write(netstring(JSON.stringify({ command: cmd, ...(params !== undefined ? { params } : {}), token })));
    });

  const waitEvent: Baresip['waitEvent'] = (type, o = {}) =>
    new Promise((resolve, reject) => {
      const timeoutMs = o.timeoutMs ?? 10_000;
      let from = o.since ?? 0;
      const check = () => {
        for (; from < events.length; from++) {
          const e = events[from]!;
          if (e.type === type && (!o.match || o.match(e))) {
            done();
            resolve(e);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`baresip ${opts.name}: no ${type} event within ${timeoutMs} ms; events: ${events.map((e) => `${e.type}(${e.param ?? ''})`).join(', ')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const added = await command('uanew', accountLine(opts.account, opts.codecs ?? ['PCMU/8000/1'], opts.autoAnswer ?? false, opts.accountParams));
  if (!added.ok) {
    child.kill('SIGKILL');
    throw new Error(`baresip ${opts.name}: uanew failed: ${added.data}\n${output}`);
  }
  if (opts.presence) {
    const loaded = await command('insmod', 'presence.so');
    if (!loaded.ok) {
      child.kill('SIGKILL');
      throw new Error(`baresip ${opts.name}: insmod presence.so failed: ${loaded.data}\n${output}`);
    }
  }

  const listRecordings = () => {
    const received: string[] = [];
    const sent: string[] = [];
    if (recordDir) {
      for (const f of readdirSync(recordDir).sort()) {
        if (f.endsWith('-dec.wav')) received.push(join(recordDir, f));
        else if (f.endsWith('-enc.wav')) sent.push(join(recordDir, f));
      }
    }
    return { received, sent };
  };

  const kill = () => {
    if (!exited) child.kill('SIGKILL');
  };
  return {
    name: opts.name,
    pid: child.pid!,
    dir,
    sipPort,
    ctrlPort,
    recordDir,
    contactUri: `sip:${opts.account.user}@127.0.0.1:${sipPort}`,
    events,
    command,
    dial: (uri) => command('dial', uri),
    hangup: () => command('hangup'),
    accept: () => command('accept'),
    waitEvent,
    recordings: listRecordings,
    log: () => output,
    alive: () => !exited,
    kill,
    stop: async () => {
      ctrl.destroy();
      if (!exited) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exit, new Promise<void>((r) => (timer = setTimeout(r, 3_000)))]);
      clearTimeout(timer);
      kill();
      await exit;
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A phone registered to a running gateway (see {@link registeredPhone}). */
export interface RegisteredPhoneOptions extends Omit<BaresipOptions, 'name' | 'account'> {
  ext: string;
  password: string;
  /** The gateway: its SIP port (the TLS one with `transport: 'tls'`), and its log for the diagnostics of a failed registration. */
  gateway: { port: number; log(): string };
  /** The account's transport (default udp). */
  transport?: 'udp' | 'tcp' | 'tls';
  /** Called with the stop function (a test file's clean-up list). */
  defer(fn: () => unknown): void;
}

/**
 * Starts baresip registered as `ext` to the gateway on 127.0.0.1 and resolves once REGISTER_OK
 * arrived; a failure carries the tail of both logs.
 */
export async function registeredPhone(o: RegisteredPhoneOptions): Promise<Baresip> {
  const { ext, password, gateway, defer, transport, ...rest } = o;
  const account = { user: ext, password, registrar: `127.0.0.1:${gateway.port}`, ...(transport === undefined ? {} : { transport }) };
  const p = await startBaresip({ ...rest, name: ext, account });
  defer(() => p.stop());
  await p.waitEvent('REGISTER_OK', { timeoutMs: 10_000 }).catch((e: Error) => {
    throw new Error(`${e.message}\n--- baresip ${ext} ---\n${p.log().slice(-3000)}\n--- gateway ---\n${gateway.log().slice(-3000)}`);
  });
  return p;
}
