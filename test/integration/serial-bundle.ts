/**
 * The serial board from the built bundle: `scripts/build.mjs` into an empty folder (serialport's
 * native binding from the `prebuilds/` copied beside the bundle, no node_modules), the
 * `serial-handset` profile on one end of a socat pty pair and a scripted microcontroller on the
 * other: the handshake completes, the handset's hook and keypad drive a call attempt.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SerialPort } from 'serialport';
import { findExecutable, freePort, REPO_ROOT } from '../helpers/gateway-process.ts';
import { until } from '../helpers/wait.ts';

if (!findExecutable('socat')) throw new Error('socat is required (scripts/ci-deps.sh installs it)');

const dir = mkdtempSync(join(tmpdir(), 'hookswitch-serial-bundle-'));
const HOST = join(dir, 'host-pty');
const MCU = join(dir, 'mcu-pty');
const children: ChildProcess[] = [];
t.teardown(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

t.test('the bundled gateway drives a serial handset through serialport prebuilds', async (t) => {
  const out = join(dir, 'app', 'dist', 'hookswitch.mjs');
  const build = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs'), '--outfile', out], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  t.equal(build.status, 0, 'the bundle builds', { stderr: build.stderr });
  t.ok(existsSync(join(dir, 'app', 'dist', 'prebuilds', 'linux-x64')), 'with the serialport prebuilds beside it');
  cpSync(join(REPO_ROOT, 'board'), join(dir, 'app', 'board'), { recursive: true });

  const socat = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${HOST}`, `pty,raw,echo=0,link=${MCU}`], { stdio: 'ignore' });
  children.push(socat);
  t.ok(await until(() => existsSync(HOST) && existsSync(MCU), 5000), 'socat made the pty pair');

  // The microcontroller: answers HELLO and PING, records commands.
  const mcu = new SerialPort({ path: MCU, baudRate: 115200 });
  const seen: string[] = [];
  let pending = '';
  mcu.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    const lines = pending.split(/\r?\n/);
    pending = lines.pop()!;
    for (const line of lines.filter(Boolean)) {
      seen.push(line);
      if (line.startsWith('HELLO')) mcu.write('HELLO 1 scripted-mcu/1.0\r\nHOOK ON\r\n');
      else if (line.startsWith('PING')) mcu.write(`PONG${line.slice(4)}\r\n`);
      else mcu.write('OK\r\n');
    }
  });
  t.teardown(() => new Promise<void>((r) => (mcu.isOpen ? mcu.close(() => r()) : r())));

  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ board: 'serial-handset', hardware: { serialPort: HOST }, tones: { country: 'de' } }));
  const gw = spawn(process.execPath, [out, 'run', '--config', config, '--bind', '127.0.0.1', '--sip-port', String(await freePort()), '--state-dir', join(dir, 'state')], {
    cwd: join(dir, 'app'),
    env: { ...process.env, NODE_PATH: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(gw);
  const exited = new Promise<number | null>((resolve) => gw.once('exit', (c) => resolve(c)));
  let log = '';
  gw.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  t.ok(await until(() => /msg="phone started" board=serial-handset mode=handset hardware=serial/.test(log), 15_000), 'the phone starts on the serial board', { log });
  t.ok(await until(() => seen.some((l) => l.startsWith('HELLO 1')), 5000), 'the host said HELLO over the pty', { seen, log });
  mcu.write('HOOK OFF\r\n');
  await new Promise((r) => setTimeout(r, 300));
  mcu.write('KEY 9\r\nKEY #\r\n');
  t.ok(await until(() => /msg="dialling" to=9/.test(log), 5000), 'lifting and the keypad make the handset dial', { log: log.slice(-3000) });
  mcu.write('HOOK ON\r\n');
  t.ok(await until(() => /msg="on-hook"/.test(log), 5000), 'putting it down is seen');
  t.notMatch(log, /native binding did not load/, 'the native binding loaded from the prebuilds');
  gw.kill('SIGTERM');
  const code = await exited;
  t.equal(code, 0, 'SIGTERM stops it with exit 0');
  t.ok(seen.includes('RING OFF'), 'and the ringer was told to stop on the way out');
});
