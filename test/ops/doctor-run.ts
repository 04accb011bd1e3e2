/**
 * `hookswitch doctor` run for real on this machine, as a process: a UDP port this test holds is a
 * FAIL naming node and this test's pid, a free port is OK, a missing sound card is a FAIL listing
 * the cards present (or saying there are none), a running gateway's port and control socket are
 * recognised, `--json` parses, and the exit code follows the FAILs.
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Check } from '../../src/ops/doctor.ts';
import { parseProcCards } from '../../src/ops/doctor-parsers.ts';
import { freePort, REPO_ROOT, startGateway } from '../helpers/gateway-process.ts';
import { scratch } from '../helpers/scratch.ts';

const dir = scratch('doctor').dir;
const ENTRY = join(REPO_ROOT, 'src', 'cli', 'doctor-command.ts');
const RUNNER = 'const { doctorCommand } = await import(process.argv[1]); process.exitCode = await doctorCommand(process.argv.slice(2));';

/** Runs `doctor ARGS` in a child process (main.ts wiring aside); at most 20 s. */
function doctor(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RUNNER, ENTRY, ...args], { cwd: REPO_ROOT, timeout: 20_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

/** Runs `doctor --json --config FILE` with `extra` (default: a control socket nobody listens on). */
async function doctorJson(config: object, extra: string[] = ['--socket', join(dir, 'control.sock')]): Promise<{ code: number | null; checks: Check[]; ok: boolean; ms: number }> {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  const r = await doctor(['--json', '--config', file, ...extra]);
  const parsed = JSON.parse(r.stdout) as { ok: boolean; checks: Check[] };
  return { code: r.code, ms: r.ms, ...parsed };
}

const named = (checks: Check[], name: string): Check => {
  const c = checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name} in ${checks.map((x) => x.name).join(', ')}`);
  return c;
};

function holdUdp(port: number): Promise<Socket> {
  const s = createSocket('udp4');
  return new Promise((resolve) => s.bind(port, '127.0.0.1', () => resolve(s)));
}

/** The sound cards of this machine as the kernel lists them (none on a CI container). */
function cardsHere(): string[] {
  try {
    return parseProcCards(readFileSync('/proc/asound/cards', 'utf8')).map((c) => c.id);
  } catch {
    return [];
  }
}

t.test('a UDP port held by this test is a FAIL naming node and its pid; TCP on it is free', async (t) => {
  const port = await freePort();
  const held = await holdUdp(port);
  t.teardown(() => held.close());
  const r = await doctorJson({ sip: { bind: '127.0.0.1', port } });
  const udp = named(r.checks, `sip port udp 127.0.0.1:${port}`);
  t.equal(udp.level, 'fail');
  t.equal(udp.detail, `in use by node (pid ${process.pid}) on 127.0.0.1`);
  t.match(udp.fix, new RegExp(`^stop node \\(sudo kill ${process.pid}, `));
  t.same(named(r.checks, `sip port tcp 127.0.0.1:${port}`), { name: `sip port tcp 127.0.0.1:${port}`, level: 'ok', detail: 'free' });
  t.equal(r.code, 1, 'a FAIL exits 1');
  t.equal(r.ok, false);
  t.ok(r.ms < 15_000, `doctor finished in ${Math.round(r.ms)} ms`);
});

t.test('a free port is OK; nothing fails on defaults with free ports: exit 0', async (t) => {
  const port = await freePort();
  const r = await doctorJson({ sip: { bind: '127.0.0.1', port } });
  t.same(named(r.checks, `sip port udp 127.0.0.1:${port}`), { name: `sip port udp 127.0.0.1:${port}`, level: 'ok', detail: 'free' });
  const fails = r.checks.filter((c) => c.level === 'fail').map((c) => c.name);
  t.same(fails.filter((n) => /^(config|sip|sound|audio|board|daemon)/.test(n)), [], 'defaults with a free port: no FAIL of the config, SIP, audio, board or daemon');
  t.equal(r.code, fails.length ? 1 : 0, `exit code follows the FAILs (${fails.join(', ') || 'none'})`);
  t.equal(r.ok, fails.length === 0);
  t.equal(named(r.checks, 'daemon').level, 'warn', 'no daemon is running for this state directory');
});

t.test('a config naming a missing card: FAIL with the cards present, or "no sound cards"', async (t) => {
  const port = await freePort();
  const r = await doctorJson({ sip: { bind: '127.0.0.1', port }, audio: { backend: 'alsa', capture: 'plughw:CARD=NoSuchCard,DEV=0', playback: 'plughw:CARD=NoSuchCard,DEV=0' } });
  const capture = named(r.checks, 'audio capture plughw:CARD=NoSuchCard,DEV=0');
  t.equal(capture.level, 'fail');
  t.equal(capture.detail, 'card NoSuchCard is not present');
  const cards = cardsHere();
  if (cards.length === 0) {
    t.match(capture.fix, /no sound cards/);
    t.equal(named(r.checks, 'sound cards').level, 'fail', 'the alsa backend with no card at all fails');
  } else for (const id of cards) t.match(capture.fix, id, `the fix names card ${id}`);
  t.equal(r.code, 1);
});

t.test('a board on a machine without its GPIO overlays: FAIL with the config.txt lines', async (t) => {
  const port = await freePort();
  const r = await doctorJson({ sip: { bind: '127.0.0.1', port }, board: 'pi-ag1171-handset' });
  const devices = named(r.checks, 'board devices');
  t.equal(devices.level, 'fail');
  t.match(devices.detail, 'hook /dev/input/by-path/platform-button@11-event');
  const overlays = named(r.checks, 'board overlays');
  t.equal(overlays.level, 'fail');
  t.match(overlays.fix, /dtoverlay=gpio-key|hardware\.backend to "gpiod"/);
});

t.test('a running gateway: its port is OK (held by hookswitch) and its control socket answers', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const r = await doctorJson({ sip: { bind: gw.host, port: gw.port } }, ['--state-dir', gw.stateDir]);
  const daemon = named(r.checks, 'daemon');
  t.equal(daemon.level, 'ok');
  t.match(daemon.detail, `running, answers on ${join(gw.stateDir, 'control.sock')} (pid ${gw.pid})`);
  for (const transport of ['udp', 'tcp']) {
    const port = named(r.checks, `sip port ${transport} ${gw.host}:${gw.port}`);
    t.equal(port.level, 'ok', `${transport}: OK`);
    t.equal(port.detail, `held by hookswitch (node, pid ${gw.pid}): the daemon is running`);
  }
});

t.test('the text report and usage errors', async (t) => {
  const port = await freePort();
  const file = join(dir, 'text.json');
  writeFileSync(file, JSON.stringify({ sip: { bind: '127.0.0.1', port } }));
  const r = await doctor(['--config', file, '--socket', join(dir, 'control.sock')]);
  const lines = r.stdout.trimEnd().split('\n');
  t.equal(lines[0], `OK   config  ${file}`);
  t.ok(lines.includes(`OK   sip port udp 127.0.0.1:${port}  free`), 'the port line');
  t.ok(lines.every((l) => /^(OK   |WARN |FAIL |     )\S/.test(l) || /^\d+ OK, \d+ WARN, \d+ FAIL$/.test(l)), 'every line is a verdict, an indented continuation or the summary');
  const failCount = Number(/(\d+) FAIL$/.exec(lines.at(-1) ?? '')?.[1]);
  t.equal(failCount, lines.filter((l) => l.startsWith('FAIL ')).length, 'the summary counts the FAIL lines');
  t.equal(r.code, failCount ? 1 : 0);
  const bad = await doctor(['--frobnicate']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /Unknown option '--frobnicate'/);
  const invalid = join(dir, 'invalid.json');
  writeFileSync(invalid, JSON.stringify({ sip: { port: 70000 } }));
  const inv = await doctor(['--config', invalid, '--socket', join(dir, 'control.sock')]);
  t.equal(inv.code, 1, 'an invalid config is a FAIL');
  t.match(inv.stdout, /^FAIL config  .*invalid\.json is invalid .*\n {5}config: sip\.port must be <= 65535 \(got 70000\)$/m);
});
