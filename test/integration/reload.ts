/**
 * Configuration reload of the running gateway (a child process, all on 127.0.0.1):
 * - A call between two baresip phones survives a reload that adds extension 103 and raises the
 *   log level: RTP keeps flowing both ways, no BYE, the phones do not register again; 103 can
 *   then register with its password, call 101, and be called... by way of the new dial plan.
 * - An invalid edit (a trunk port of 70000) is refused with the validator's one-line message and
 *   the gateway keeps serving on the configuration it had.
 * - SIGHUP with one of two trunks moved to another SIPp registrar: only that trunk un-registers
 *   (SIPp verifies the Expires: 0 request) and registers with the new one; the other trunk's
 *   SIPp sees nothing until the gateway stops.
 * - A changed `sip.port` is reported as needing a restart; the gateway stays on its port.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { registeredPhone, type Baresip } from '../helpers/baresip.ts';
import { findExecutable, freePort, probeOptions, REPO_ROOT, startGateway } from '../helpers/gateway-process.ts';
import { logLines } from '../helpers/logfmt.ts';
import { scratch } from '../helpers/scratch.ts';
import { spawnSipp, type SippProcess } from '../helpers/sipp.ts';
import { sleep, until } from '../helpers/wait.ts';

const sippBin = findExecutable('sipp');
if (!sippBin) throw new Error('sipp is not installed: run scripts/ci-deps.sh');
if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const { dir: work, defer } = scratch('reload');
const MAIN = join(REPO_ROOT, 'src', 'cli', 'main.ts');
const GW_RTP: [number, number] = [27000, 27199];
const password = (ext: string) => `phone-${ext}-secret`;
const ext = (...numbers: string[]) => Object.fromEntries(numbers.map((n) => [n, { password: password(n) }]));

function writeConfig(file: string, doc: unknown): void {
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
}

/** `hookswitch reload` against the daemon whose state directory is `stateDir`. */
function cliReload(stateDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, 'reload', '--state-dir', stateDir], { cwd: REPO_ROOT, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The JSON list the CLI printed as `key: [...]`. */
function listField(stdout: string, key: string): string[] | undefined {
  const m = new RegExp(`^${key}: (.*)$`, 'm').exec(stdout);
  return m ? (JSON.parse(m[1]!) as string[]) : undefined;
}

/** RTP packets the phone has received from its peer so far (its RTCP member statistics). */
async function received(p: Baresip): Promise<number> {
  return Number(/rcvd=(\d+)/.exec((await p.command('audio_debug')).data)?.[1] ?? NaN);
}

await t.test('a reload during a call: the call and the registrations stay, 103 becomes usable', async (t) => {
  const file = join(work, 'phones.json');
  const base = {
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions: ext('101', '102'),
    media: { rtpPorts: GW_RTP, bind: '127.0.0.1' },
    registrar: { qualifySeconds: 0 },
    log: { level: 'info' },
  };
  writeConfig(file, base);
  const gw = await startGateway({ args: ['--config', file] });
  defer(() => gw.stop());
  const phone = (n: string, rtp: number) =>
    registeredPhone({ ext: n, password: password(n), gateway: gw, defer, autoAnswer: true, rtpPorts: [rtp, rtp + 39] });
  const [p101, p102] = await Promise.all([phone('101', 27200), phone('102', 27240)]);
  const registered = (p: Baresip) => p.events.filter((e) => e.type === 'REGISTER_OK').length;
  const regs = [registered(p101), registered(p102)];

  const since = [p101.events.length, p102.events.length];
  await p101.dial(`sip:102@127.0.0.1:${gw.port}`);
  await Promise.all([p101.waitEvent('CALL_ESTABLISHED', { since: since[0] }), p102.waitEvent('CALL_ESTABLISHED', { since: since[1] })]);
  await sleep(500);

  writeConfig(file, { ...base, extensions: ext('101', '102', '103'), log: { level: 'debug' } });
  const reply = await cliReload(gw.stateDir);
  t.equal(reply.code, 0, 'hookswitch reload succeeds', { stderr: reply.stderr });
  t.same(listField(reply.stdout, 'applied')?.sort(), ['extensions', 'log.level'], 'it applied the extensions and the log level');
  t.same(listField(reply.stdout, 'restartNeeded'), [], 'nothing needs a restart');
  t.same(logLines(gw.log(), 'config reloaded').at(-1), { level: 'info', cat: 'hookswitch', msg: 'config reloaded', applied: 'extensions,log.level', restartNeeded: '' });

  const before = await Promise.all([received(p101), received(p102)]);
  await sleep(1000);
  const after = await Promise.all([received(p101), received(p102)]);
  t.ok(after[0] - before[0] > 25 && after[1] - before[1] > 25, `RTP flows both ways after the reload (${after[0] - before[0]} and ${after[1] - before[1]} packets in 1 s)`);
  t.notOk([...p101.events.slice(since[0]), ...p102.events.slice(since[1])].some((e) => e.type === 'CALL_CLOSED'), 'no BYE: the call is up');
  t.same([registered(p101), registered(p102)], regs, 'the phones did not register again');

  const reloadAt = gw.log().lastIndexOf('config reloaded');
  const p103 = await phone('103', 27280);
  t.ok(p103.events.some((e) => e.type === 'REGISTER_OK'), '103 registers with its password');
  t.notMatch(gw.log().slice(0, reloadAt), /level=debug /, 'no debug lines before the reload');
  t.match(gw.log().slice(reloadAt), /level=debug cat=hookswitch\.sip\S* msg="transaction state"/, 'debug lines of the SIP layer after it');
  await p101.hangup();
  await Promise.all([p101.waitEvent('CALL_CLOSED', { since: since[0] }), p102.waitEvent('CALL_CLOSED', { since: since[1] })]);

  // The new dial plan routes to 103; 102's binding from before the reload still routes to it.
  for (const [from, to] of [[p101, p103], [p103, p102]] as const) {
    const s = [from.events.length, to.events.length];
    await from.dial(`sip:${to.name}@127.0.0.1:${gw.port}`);
    await Promise.all([from.waitEvent('CALL_ESTABLISHED', { since: s[0] }), to.waitEvent('CALL_ESTABLISHED', { since: s[1] })]);
    t.pass(`${from.name} calls ${to.name}`);
    await from.hangup();
    await to.waitEvent('CALL_CLOSED', { since: s[1] });
  }

  writeConfig(file, { ...base, trunks: [{ name: 'x', host: '127.0.0.1', port: 70000, username: 'u', password: 'p' }] });
  const refused = await cliReload(gw.stateDir);
  t.equal(refused.code, 1, 'an invalid edit is refused');
  t.equal(refused.stderr, 'hookswitch: config: trunks[0].port must be <= 65535 (got 70000)\n', 'with the one-line problem');
  t.match(gw.log(), /level=error .*msg="config reload refused; the running configuration stays" problem="trunks\[0\]\.port must be <= 65535 \(got 70000\)"/);
  t.equal((await probeOptions('127.0.0.1', gw.port))?.status, 200, 'the gateway still answers');
  t.ok(gw.alive(), 'and runs');
});

/** One SIPp registrar (test/sipp/register-challenge-uas.xml) for the trunk user on a free port. */
async function sippRegistrar(): Promise<{ port: number; run: SippProcess; done: () => boolean }> {
  const port = await freePort();
  const run = spawnSipp(sippBin!, ['-sf', join(REPO_ROOT, 'test', 'sipp', 'register-challenge-uas.xml'), '-m', '1', '-i', '127.0.0.1', '-p', String(port), '-set', 'user', 'trunkuser', '-set', 'pass', 'trunk-pass'], 40_000, { log: true });
  defer(() => run.kill());
  let finished = false;
  void run.result.finally(() => (finished = true));
  return { port, run, done: () => finished };
}

await t.test('trunks: only the changed one registers again; sip.port needs a restart', async (t) => {
  const [a, b1, b2] = await Promise.all([sippRegistrar(), sippRegistrar(), sippRegistrar()]);
  const trunk = (name: string, port: number) => ({ name, host: '127.0.0.1', port, username: 'trunkuser', password: 'trunk-pass', expires: 300 });
  const sipPort = await freePort();
  const file = join(work, 'trunks.json');
  const stateDir = join(work, 'trunks-state');
  const base = { sip: { bind: '127.0.0.1', port: sipPort }, media: { rtpPorts: GW_RTP, bind: '127.0.0.1' }, registrar: { qualifySeconds: 0 }, stateDir };
  writeConfig(file, { ...base, trunks: [trunk('a', a.port), trunk('b', b1.port)] });
  await sleep(300);
  // Started directly: with --sip-port (as startGateway passes) the file's sip.port would not count.
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', '--config', file], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  defer(() => child.kill('SIGKILL'));
  const registeredLines = (name: string) => logLines(log, 'registration state changed').filter((l) => l.trunk === name && l.state === 'registered').length;
  t.ok(await until(() => registeredLines('a') === 1 && registeredLines('b') === 1, 15_000), 'both trunks register', { log: log.slice(-3000) });

  writeConfig(file, { ...base, trunks: [trunk('a', a.port), trunk('b', b2.port)] });
  child.kill('SIGHUP');
  t.ok(await until(() => logLines(log, 'config reloaded').length === 1, 5000), 'SIGHUP reloads', { log: log.slice(-4000) });
  await sleep(500);
  t.equal(logLines(log, 'config reloaded').length, 1, 'one SIGHUP, one reload (nothing re-raises the signal)');
  t.same(logLines(log, 'config reloaded')[0]?.applied, 'trunks');
  const oldB = await Promise.race([b1.run.result, sleep(8000).then(() => undefined)]);
  t.equal(oldB?.exitCode, 0, 'the old registrar of b verified its un-REGISTER (Expires: 0)', { output: oldB?.output, log: log.slice(-3000) });
  t.ok(await until(() => registeredLines('b') === 2, 8000), 'b registers with its new registrar', { log: log.slice(-3000) });
  t.equal(registeredLines('a'), 1, 'a did not register again');
  t.notOk(a.done(), "a's registrar saw no un-REGISTER");

  writeConfig(file, { ...base, sip: { ...base.sip, port: await freePort() }, trunks: [trunk('a', a.port), trunk('b', b2.port)] });
  const reply = await cliReload(stateDir);
  t.equal(reply.code, 0, 'the reload replies', { stderr: reply.stderr });
  t.same([listField(reply.stdout, 'applied'), listField(reply.stdout, 'restartNeeded')], [[], ['sip.port']], 'sip.port needs a restart');
  t.equal((await probeOptions('127.0.0.1', sipPort))?.status, 200, 'the gateway stays on its port');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'the gateway stops');
  const [endA, endB] = await Promise.all([a.run.result, b2.run.result]);
  t.same([endA.exitCode, endB.exitCode], [0, 0], 'on stop, a and the new b registrar each got a verified un-REGISTER', { a: endA.output, b: endB.output });
});
