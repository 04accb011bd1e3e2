/**
 * What `hookswitch doctor` looks at (edge adapter): the tools it runs (argument arrays only, each
 * bounded by a timeout and killed past it), the files under /proc, /sys, /dev and /boot it reads,
 * a bind attempt on each SIP port, and the daemon's control socket. A missing tool or file is a
 * result ({@link CommandOutput.missing}), never an exception; doctor.ts judges the results.
 */
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Config } from '../config/config.ts';
import { controlRequest } from '../control/control-server.ts';
import { DEFAULT_CHIP_LABELS, parseGpiodetect } from '../hardware/backends/gpiod.ts';
import type { BoardProfile } from '../hardware/board-profile.ts';
import { BoardRegistry } from '../hardware/board-registry.ts';
import { audioTargets, boardPaths, type AudioProbe, type BoardProbe, type CommandOutput, type DoctorProbes, type PortProbe } from './doctor.ts';
import { parseAlsaList, parseSs, type Direction } from './doctor-parsers.ts';

/** What the probes need besides the machine itself. */
export interface ProbeOptions {
  config: Config;
  configSource: string;
  configProblems: string[];
  /** Control sockets to ask for `status`, in order; the first that exists is used. */
  sockets: string[];
  /** Per-command time limit (ms); the ALSA rate probe gets twice this. */
  timeoutMs?: number;
  /** `board/` folder (default: the shipped one). */
  registry?: BoardRegistry;
}

/** Raspberry Pi OS bookworm and later keep config.txt in /boot/firmware; older releases in /boot. */
const CONFIG_TXT = ['/boot/firmware/config.txt', '/boot/config.txt'];
const OUTPUT_LIMIT = 1 << 20;

/** Runs a program without a shell; resolves with what it printed, whatever happened. */
export function runTool(cmd: string, args: readonly string[], timeoutMs: number): Promise<CommandOutput> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: OUTPUT_LIMIT, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
      if (e.code === 'ENOENT') return resolve({ code: null, stdout: '', stderr: `${cmd}: not found`, missing: true });
      resolve({ code: typeof e.code === 'number' ? e.code : null, stdout, stderr: stderr || e.message, ...(e.killed ? { timedOut: true } : {}) });
    });
  });
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path).sort();
  } catch {
    return [];
  }
}

/** Tries to bind the port as the daemon would (no SO_REUSEADDR for UDP); resolves with the errno code or undefined. */
function tryBind(transport: 'udp' | 'tcp', host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const done = (code: string | undefined, close: () => void) => {
      close();
      resolve(code);
    };
    if (transport === 'udp') {
      const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message, () => s.close()));
      s.bind({ address: host, port, exclusive: true }, () => done(undefined, () => s.close()));
    } else {
      const srv = createServer();
      srv.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message, () => srv.close()));
      srv.listen({ host, port, exclusive: true }, () => done(undefined, () => srv.close()));
    }
  });
}

async function probePort(transport: PortProbe['transport'], bind: string, port: number, timeoutMs: number): Promise<PortProbe> {
  const kind = transport === 'udp' ? 'udp' : 'tcp';
  const bindError = await tryBind(kind, bind, port);
  const ss = bindError === 'EADDRINUSE' ? await runTool('ss', [`-Hl${kind === 'udp' ? 'u' : 't'}np`, `sport = :${port}`], timeoutMs) : { code: 0, stdout: '', stderr: '' };
  const cmdlines: Record<number, string[]> = {};
  for (const l of parseSs(ss.stdout)) {
    for (const p of l.processes) {
      const text = readText(`/proc/${p.pid}/cmdline`);
      if (text !== undefined) cmdlines[p.pid] = text.split('\0').filter((a) => a !== '');
    }
  }
  return { transport, bind, port, ...(bindError ? { bindError } : {}), ss, cmdlines };
}

function sipProbes(c: Config, timeoutMs: number): Promise<PortProbe>[] {
  const ports = c.sip.transports.map((t) => probePort(t, c.sip.bind, c.sip.port, timeoutMs));
  if (c.sip.tls) ports.push(probePort('tls', c.sip.bind, c.sip.tls.port, timeoutMs));
  return ports;
}

async function audioProbe(c: Config, timeoutMs: number): Promise<AudioProbe> {
  const [aplay, arecord] = await Promise.all([runTool('aplay', ['-l'], timeoutMs), runTool('arecord', ['-l'], timeoutMs)]);
  const procCards = readText('/proc/asound/cards');
  const targets = audioTargets(c, { playback: parseAlsaList(aplay.stdout), capture: parseAlsaList(arecord.stdout) });
  const streams: Record<number, string> = {};
  const hwParams: Partial<Record<Direction, CommandOutput>> = {};
  await Promise.all(
    (Object.entries(targets) as [Direction, { card: { index: number; id: string }; device: number }][]).map(async ([dir, t]) => {
      const stream = readText(`/proc/asound/card${t.card.index}/stream${t.device}`);
      if (stream !== undefined) {
        streams[t.card.index] = stream;
        return;
      }
      // The hw: device shows the card's own rates; S16_LE silence for one second at most if it opens.
      const dev = `hw:CARD=${t.card.id},DEV=${t.device}`;
      const args = ['-D', dev, '--dump-hw-params', '-d', '1', '-t', 'raw', '-f', 'S16_LE'];
      hwParams[dir] = await (dir === 'capture' ? runTool('arecord', [...args, '/dev/null'], 2 * timeoutMs) : runTool('aplay', [...args, '/dev/zero'], 2 * timeoutMs));
    }),
  );
  return { aplay, arecord, ...(procCards !== undefined ? { procCards } : {}), streams, hwParams };
}

async function boardProbe(c: Config, registry: BoardRegistry, timeoutMs: number): Promise<BoardProbe> {
  let known: string[] = [];
  try {
    known = registry.names();
  } catch {
    known = [];
  }
  let profile: BoardProfile | undefined;
  let error: string | undefined;
  if (c.board) {
    try {
      profile = registry.load(c.board);
    } catch (e) {
      error = (e as Error).message;
    }
  }
  const configTxt = CONFIG_TXT.map((path) => ({ path, text: readText(path) })).find((x) => x.text !== undefined) as { path: string; text: string } | undefined;
  const exists: Record<string, boolean> = {};
  let serialWritable: boolean | undefined;
  let chips: BoardProbe['chips'];
  if (profile) {
    for (const { path } of boardPaths(profile, c)) exists[path] = existsSync(path);
    if (profile.connection === 'serial') {
      const path = boardPaths(profile, c)[0]?.path;
      if (path && exists[path]) serialWritable = await access(path, constants.R_OK | constants.W_OK).then(() => true, () => false);
    } else if (c.hardware.backend === 'gpiod') {
      const out = await runTool('gpiodetect', [], timeoutMs);
      if (!out.missing) chips = parseGpiodetect(out.stdout);
    }
  }
  return {
    ...(profile ? { profile } : {}),
    ...(error ? { error } : {}),
    known,
    ...(configTxt ? { configTxt } : {}),
    exists,
    ...(serialWritable !== undefined ? { serialWritable } : {}),
    serialById: listDir('/dev/serial/by-id'),
    ...(chips ? { chips } : {}),
    chipLabels: DEFAULT_CHIP_LABELS,
  };
}

async function wifiProbe(timeoutMs: number): Promise<DoctorProbes['wifi']> {
  const interfaces = listDir('/sys/class/net').filter((i) => existsSync(`/sys/class/net/${i}/wireless`) || existsSync(`/sys/class/net/${i}/phy80211`));
  const powerSave: Record<string, CommandOutput> = {};
  await Promise.all(interfaces.map(async (i) => (powerSave[i] = await runTool('iw', ['dev', i, 'get', 'power_save'], timeoutMs))));
  return { interfaces, powerSave };
}

async function daemonProbe(sockets: string[], timeoutMs: number): Promise<DoctorProbes['daemon']> {
  const socket = sockets.find((s) => existsSync(s)) ?? sockets[0] ?? '';
  if (!existsSync(socket)) return { socket, error: `no control socket at ${sockets.join(' or ')}` };
  const ss = await runTool('ss', ['-Hxlp', 'src', socket], timeoutMs);
  const pid = /pid=(\d+)/.exec(ss.stdout)?.[1];
  const base = { socket, ...(pid ? { pid: Number(pid) } : {}) };
  try {
    return { ...base, reply: (await controlRequest(socket, { cmd: 'status' }, timeoutMs)) as Record<string, unknown> };
  } catch (e) {
    return { ...base, error: (e as Error).message };
  }
}

/** Runs every probe, in parallel; resolves within about twice `timeoutMs` whatever the machine does. */
export async function runProbes(o: ProbeOptions): Promise<DoctorProbes> {
  const t = o.timeoutMs ?? 3000;
  const c = o.config;
  const [sip, audio, board, wifi, addr, route, timedatectl, chrony, avahi, mdnsSs, daemon] = await Promise.all([
    Promise.all(sipProbes(c, t)),
    audioProbe(c, t),
    boardProbe(c, o.registry ?? new BoardRegistry(), t),
    wifiProbe(t),
    runTool('ip', ['-j', 'addr'], t),
    runTool('ip', ['-j', 'route'], t),
    runTool('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], t),
    runTool('chronyc', ['-n', 'tracking'], t),
    runTool('pgrep', ['-x', 'avahi-daemon'], t),
    runTool('ss', ['-Hlunp', 'sport = :5353'], t),
    daemonProbe(o.sockets, t),
  ]);
  return {
    config: c,
    configSource: o.configSource,
    configProblems: o.configProblems,
    now: Date.now(),
    sip,
    audio,
    board,
    wifi,
    network: { addr, route },
    clock: { timedatectl, timesyncFlag: existsSync('/run/systemd/timesync/synchronized'), chrony },
    mdns: { avahi, ss: mdnsSs },
    daemon,
  };
}
