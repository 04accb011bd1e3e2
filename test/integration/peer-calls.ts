/**
 * Two hookswitch boxes on one (virtual) LAN call each other with no PBX: two gateway processes in
 * two network namespaces joined by a veth pair (mDNS never advertises loopback, and the gateway
 * skips discovery when SIP listens on loopback). Each has the `file` audio backend as its device
 * (a tone WAV microphone, an earpiece WAV) and the same discovery.secret.
 * - alpha lists beta in `hookswitch peers --json`;
 * - alpha's device calls beta's device by prefix (`hookswitch call 8100`, dial plan `8x.` → peer),
 *   beta answers by itself, and each earpiece hears the other's tone; beta shows alpha's name;
 * - beta restarted with another secret refuses the call with 403 and says why in its log.
 * Needs root and iproute2; fails (never skips) without them.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { Peer } from '../../src/discovery/peer-table.ts';
import { REPO_ROOT } from '../helpers/gateway-process.ts';
import { createNamespacePair } from '../helpers/netns.ts';
import { logLines } from '../helpers/logfmt.ts';
import { scratch } from '../helpers/scratch.ts';
import { dominantFrequency, readWav, steadyPart, writeToneWav } from '../helpers/wav.ts';
import { until } from '../helpers/wait.ts';

const run = promisify(execFile);
const SECRET = 'kitchen-and-garage-2024';
const ALPHA_TONE = 1000;
const BETA_TONE = 440;
const CALL_MS = 2500;
const CARD_RATE = 16000;
const START_MS = 20_000;
const DISCOVERY_MS = 15_000;
const CALL_SETUP_MS = 10_000;

const { dir: work, defer } = scratch('peer-calls');

interface Box {
  name: string;
  ns: string;
  address: string;
  stateDir: string;
  config: string;
  ear: string;
  child?: ChildProcess;
  log: string;
  exited: boolean;
}

function box(name: string, ns: string, address: string, tone: number, device: string, extension: string, secret: string): Box {
  const dir = join(work, name);
  mkdirSync(join(dir, 'state'), { recursive: true });
  const mic = join(dir, 'mic.wav');
  writeToneWav(mic, { rate: CARD_RATE, seconds: 60, frequency: tone });
  const b: Box = { name, ns, address, stateDir: join(dir, 'state'), config: join(dir, 'hookswitch.json'), ear: join(dir, 'ear.wav'), log: '', exited: true };
  writeConfig(b, mic, device, extension, secret);
  boxes.push(b);
  return b;
}

function writeConfig(b: Box, mic: string, device: string, extension: string, secret: string): void {
  writeFileSync(
    b.config,
    JSON.stringify({
      log: { level: 'debug' },
      sip: { domain: `${b.name}.test` },
      extensions: { [extension]: { password: `phone-${extension}-secret` } },
      device: { extension: device, autoAnswer: true },
      media: { rtpPorts: [30000, 30099], bind: b.address, rtpTimeoutSeconds: 10, codecs: ['PCMU'] },
      audio: { backend: 'file', capture: mic, playback: b.ear, rate: CARD_RATE },
      registrar: { qualifySeconds: 0 },
      discovery: { name: `hookswitch on ${b.name}`, secret },
      dialplan: [{ match: '8x.', to: 'peer', strip: 1 }],
    }),
  );
}

/** Starts the gateway inside the box's namespace; resolves once it logged "started". */
async function start(b: Box): Promise<void> {
  b.log = '';
  b.exited = false;
  const child = spawn(
    'ip',
    ['netns', 'exec', b.ns, process.execPath, '--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), 'run', '--config', b.config, '--bind', b.address, '--sip-port', '5060', '--state-dir', b.stateDir],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  b.child = child;
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    b.log = (b.log + d).slice(-2_000_000);
  });
  child.on('exit', () => {
    b.exited = true;
  });
  if (!(await until(() => b.exited || /msg="?started"?/.test(b.log), START_MS)) || b.exited) {
    throw new Error(`${b.name} did not start:\n${b.log.slice(-4000)}`);
  }
}

async function stop(b: Box): Promise<void> {
  if (b.exited || !b.child) return;
  b.child.kill('SIGTERM');
  if (!(await until(() => b.exited, 6000))) b.child.kill('SIGKILL');
  await until(() => b.exited, 2000);
}

/** The `hookswitch` CLI run in the box's namespace against its control socket. */
async function cli(b: Box, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('ip', ['netns', 'exec', b.ns, process.execPath, '--import=tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args, '--state-dir', b.stateDir], { cwd: REPO_ROOT, timeout: 15_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

function heard(b: Box): { frequency: number; ratio: number; seconds: number } {
  const wav = readWav(b.ear);
  return { ...dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate), seconds: wav.samples.length / wav.rate };
}

const count = (b: Box, msg: string): number => logLines(b.log, msg).length;

const boxes: Box[] = [];
const pair = createNamespacePair('peer', '10.214.0');
const { ns: NS_A, address: ADDR_A } = pair.a;
const { ns: NS_B, address: ADDR_B } = pair.b;
defer(() => pair.remove());
// Also when a failure at the top level ends the file before tap's teardown runs.
process.on('exit', () => {
  for (const b of boxes) if (!b.exited) b.child?.kill('SIGKILL');
  pair.remove();
});

const alpha = box('alpha', NS_A, ADDR_A, ALPHA_TONE, '200', '201', SECRET);
const beta = box('beta', NS_B, ADDR_B, BETA_TONE, '100', '101', SECRET);
// Stopped before the namespaces go (deferred clean-ups run last first).
defer(() => stop(alpha));
defer(() => stop(beta));
t.teardown(() => {
  if (t.passing()) return;
  for (const b of [alpha, beta]) t.comment(`--- ${b.name} log ---\n${b.log.slice(-6000)}`);
});

const since = performance.now();
await Promise.all([start(alpha), start(beta)]);
t.comment(`both gateways started: ${Math.round(performance.now() - since)} ms`);

await t.test('alpha finds beta on the LAN: hookswitch peers --json', async (t) => {
  const from = performance.now();
  t.ok(await until(() => logLines(alpha.log, 'LAN peer found').some((l) => l.peer === 'hookswitch on beta'), DISCOVERY_MS), 'alpha logged beta as found');
  t.comment(`discovery: alpha found beta ${Math.round(performance.now() - from)} ms after both had started`);
  const out = await cli(alpha, 'peers', '--json');
  t.equal(out.code, 0, `peers exits 0 ${out.stderr}`);
  const reply = JSON.parse(out.stdout) as { peers: Peer[] };
  const found = reply.peers.find((p) => p.name === 'hookswitch on beta');
  t.match(found, { addresses: [ADDR_B], port: 5060, isHookswitch: true, deviceExtension: '100', extensions: ['101'], contact: `sip:100@${ADDR_B}:5060` }, 'beta with its address, device and extensions');
  t.notOk(reply.peers.some((p) => p.name === 'hookswitch on alpha'), 'alpha does not list itself');
});

await t.test('alpha\'s device calls beta\'s device by prefix: each earpiece hears the other', async (t) => {
  const from = performance.now();
  const out = await cli(alpha, 'call', '8100');
  const placed = performance.now();
  t.equal(out.code, 0, `call accepted: ${out.stdout}${out.stderr}`);
  t.ok(await until(() => count(alpha, 'device connected') > 0 && count(beta, 'device connected') > 0, CALL_SETUP_MS), 'both devices connected');
  const now = performance.now();
  t.comment(`call setup: ${Math.round(now - placed)} ms from the CLI's reply (INVITE sent) to both devices connected; ${Math.round(now - from)} ms including the CLI's start`);
  const ring = logLines(beta.log, 'device ringing').at(-1);
  t.match(ring, { from: '200', name: 'hookswitch on alpha' }, 'beta shows the caller as the peer alpha');
  t.match(logLines(alpha.log, 'calling peer').at(-1), { peer: 'hookswitch on beta', number: '100', address: `${ADDR_B}:5060` });
  t.notMatch(alpha.log + beta.log, SECRET, 'the secret is never logged');
  await new Promise((r) => setTimeout(r, CALL_MS));
  const closedA = count(alpha, 'audio device closed');
  const closedB = count(beta, 'audio device closed');
  const hang = await cli(alpha, 'hangup');
  t.equal(hang.code, 0, `hangup accepted ${hang.stderr}`);
  t.ok(await until(() => count(alpha, 'audio device closed') > closedA && count(beta, 'audio device closed') > closedB, 5000), 'both devices hung up and closed their sound cards');
  for (const [b, tone] of [[alpha, BETA_TONE], [beta, ALPHA_TONE]] as const) {
    const h = heard(b);
    t.ok(h.seconds > 1.5, `${b.name}'s earpiece WAV holds the call (${h.seconds.toFixed(1)} s)`);
    t.ok(h.frequency === tone && h.ratio > 0.8, `${b.name} heard the other box's ${tone} Hz (got ${h.frequency} Hz, ratio ${h.ratio.toFixed(3)})`);
  }
});

await t.test('beta with another secret refuses the call: 403, and its log says why', async (t) => {
  await stop(beta);
  t.ok(await until(() => logLines(alpha.log, 'LAN peer left').some((l) => l.peer === 'hookswitch on beta'), 5000), 'alpha saw beta\'s goodbye');
  writeConfig(beta, join(work, 'beta', 'mic.wav'), '100', '101', 'some-other-secret-1');
  await start(beta);
  const seen = logLines(alpha.log, 'LAN peer found').filter((l) => l.peer === 'hookswitch on beta').length;
  t.ok(seen >= 1 && (await until(() => logLines(alpha.log, 'LAN peer found').filter((l) => l.peer === 'hookswitch on beta').length > 1, DISCOVERY_MS)), 'alpha found beta again');
  const out = await cli(alpha, 'call', '8100');
  const ended = await until(() => logLines(alpha.log, 'device call ended').some((l) => l.status === '403'), CALL_SETUP_MS);
  t.ok(ended, `alpha's call ends with 403 (${out.stdout.trim()}${out.stderr.trim()})`);
  t.match(beta.log, /peer call refused: its credentials do not match discovery\.secret; set the same discovery\.secret on both boxes/, 'beta logs the reason and the fix');
  t.equal(count(beta, 'device ringing'), 0, 'beta\'s device never rang');
  t.notMatch(alpha.log + beta.log, /kitchen-and-garage-2024|some-other-secret-1/, 'neither secret is logged');
});
