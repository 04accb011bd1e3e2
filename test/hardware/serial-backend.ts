/**
 * The serial backend end to end: the real `serialport` binding on one end of a socat pty pair, a
 * scripted microcontroller speaking docs/serial-protocol.md on the other; then the pty vanishes
 * mid-call and comes back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import t from 'tap';
import { BINDING_ERROR, SerialBackend } from '../../src/hardware/backends/serial.ts';
import { LineFramer, formatDeviceMessage, parseHostLine, type DeviceMessage } from '../../src/hardware/serial/serial-protocol.ts';
import type { HardwareEvents } from '../../src/hardware/types.ts';
import { SystemClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { findExecutable } from '../helpers/gateway-process.ts';
import { sleep, until } from '../helpers/wait.ts';

if (!findExecutable('socat')) throw new Error('socat is required for the serial backend test (apt-get install socat)');

const dir = mkdtempSync(join(tmpdir(), 'hookswitch-serial-'));
const HOST = join(dir, 'A');
const MCU = join(dir, 'B');

/** Starts `socat` linking two ptys at HOST and MCU; resolves once both links exist. */
async function startSocat(): Promise<ChildProcess> {
  const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${HOST}`, `pty,raw,echo=0,link=${MCU}`], { stdio: 'ignore' });
  if (!(await until(() => existsSync(HOST) && existsSync(MCU), 5000))) throw new Error('socat did not create the pty links');
  return child;
}

async function stopSocat(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** A microcontroller as a test script: answers HELLO, PING and commands per the protocol; records commands. */
class ScriptedMcu {
  readonly commands: string[] = [];
  hellos = 0;
  private port: SerialPort | undefined;
  private readonly framer = new LineFramer();

  async open(): Promise<void> {
    this.framer.reset();
    const port = new SerialPort({ path: MCU, baudRate: 115200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    port.on('data', (chunk: Buffer) => this.onData(chunk));
    port.on('error', () => {});
    this.port = port;
  }

  /** Sends protocol messages, or raw text (for garbage). */
  send(...lines: (DeviceMessage | string)[]): void {
    for (const l of lines) this.port?.write(`${typeof l === 'string' ? l : formatDeviceMessage(l)}\r\n`, 'latin1');
  }

  async close(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }

  private onData(chunk: Buffer): void {
    for (const frame of this.framer.push(chunk)) {
      if (frame.kind === 'overlong') {
        this.send({ type: 'err', code: 'TOOLONG', text: '' });
        continue;
      }
      const cmd = parseHostLine(frame.bytes);
      const line = Buffer.from(frame.bytes).toString('latin1');
      if (cmd.type === 'invalid') this.send({ type: 'err', code: 'BADARG', text: cmd.reason.slice(0, 60) });
      else if (cmd.type === 'hello') {
        this.hellos++;
        this.send({ type: 'hello', version: 1, firmware: 'scripted-mcu/1.0', fields: {} }, { type: 'hook', offHook: false });
      } else if (cmd.type === 'ping') this.send(cmd.token === undefined ? { type: 'pong' } : { type: 'pong', token: cmd.token });
      else if (cmd.type === 'relay' && cmd.index === 9) {
        this.commands.push(line);
        this.send({ type: 'err', code: 'NOTSUP', text: 'no relay 9' });
      } else {
        this.commands.push(line);
        this.send({ type: 'ok' });
      }
    }
  }
}

t.test('serial backend over a socat pty pair', async (t) => {
  let socat = await startSocat();
  const mcu = new ScriptedMcu();
  await mcu.open();
  const logger = new MemoryLogger();
  const events: string[] = [];
  const connections: { up: boolean; at: number }[] = [];
  const hw: HardwareEvents = {
    input: (role, active) => events.push(`input ${role} ${active}`),
    key: (key) => events.push(`key ${key}`),
    connection: (up) => connections.push({ up, at: performance.now() }),
  };
  // The host maps two roles onto relays so that one of them can be refused by the device.
  const backend = new SerialBackend({ path: HOST, clock: new SystemClock(), logger, relays: { relay: 1, bell: 9 } });
  t.teardown(async () => {
    await backend.stop();
    await mcu.close();
    await stopSocat(socat);
    rmSync(dir, { recursive: true, force: true });
  });

  await backend.start(hw);
  t.ok(await until(() => connections.length === 1, 5000), 'handshake completes');
  t.same(connections.map((c) => c.up), [true]);
  t.ok(await until(() => events.length === 1, 2000), 'the device reports its hook state after HELLO');

  mcu.send(
    { type: 'hook', offHook: true },
    { type: 'digit', digit: '5' },
    { type: 'key', key: '#' },
    { type: 'button', index: 1, down: true },
    '#$% garbage',
    '\x00\xff\xfeHOOK OFF',
    'HOOK SIDEWAYS',
    'x'.repeat(300),
    'ERR TOOLONG unsolicited',
    'FUTURE 1 2 3',
    { type: 'button', index: 1, down: false },
  );
  t.ok(await until(() => events.length === 6, 3000), 'all events arrive');
  t.same(events, ['input hook false', 'input hook true', 'key 5', 'key #', 'input button true', 'input button false'], 'events in order, garbage skipped');

  t.equal(backend.ring([2000, 4000]), true, 'the device rings by itself');
  backend.pulse('relay', 3000);
  backend.setOutput('ledGreen', { mode: 'blink', onMs: 500, offMs: 500 });
  backend.setOutput('ledRed', { mode: 'on' });
  backend.setOutput('bell', { mode: 'on' });
  t.ok(await until(() => mcu.commands.length >= 6, 3000), 'commands arrive');
  t.same(mcu.commands.slice(0, 6), ['RING OFF', 'RING 2000,4000', 'RELAY 1 PULSE 3000', 'LED 1 BLINK 500,500', 'LED 2 ON', 'RELAY 9 ON'], 'commands as the device sees them');
  t.ok(await until(() => logger.records.some((r) => r.msg === 'device error reply' && r.fields.code === 'NOTSUP'), 2000), 'the ERR reply is logged');
  const err = logger.records.find((r) => r.msg === 'device error reply' && r.fields.code === 'NOTSUP');
  t.equal(err?.fields.command, 'RELAY 9 ON', 'naming the refused command');
  const warnings = logger.records.filter((r) => r.level === 'warn').map((r) => r.msg);
  t.same(
    warnings.filter((m) => m !== 'device error reply'),
    ['malformed line from the device, ignored', 'malformed line from the device, ignored', 'malformed line from the device, ignored', 'line too long from the device, dropped'],
    'garbage, a bad byte, a bad argument and an overlong line are each logged once',
  );

  // The pty vanishes mid-call (the USB cable is pulled) while the bell rings, and comes back.
  const commandsBefore = mcu.commands.length;
  await stopSocat(socat);
  await mcu.close();
  t.ok(await until(() => connections.length === 2, 3000), 'the loss is reported');
  t.equal(connections[1]?.up, false);
  await sleep(500);
  socat = await startSocat();
  const back = performance.now();
  await mcu.open();
  t.ok(await until(() => connections.length === 3, 5000), 'the device is back');
  const tookMs = (connections[2]?.at ?? Infinity) - back;
  t.ok(tookMs < 5000, `back within 5 s of the pty returning (${Math.round(tookMs)} ms)`);
  t.ok(mcu.hellos >= 2, 'a new HELLO handshake');
  t.ok(await until(() => mcu.commands.length >= commandsBefore + 5, 2000), 'state replayed');
  t.same(
    mcu.commands.slice(commandsBefore, commandsBefore + 5),
    ['RING 2000,4000', 'LED 1 BLINK 500,500', 'LED 2 ON', 'RELAY 1 OFF', 'RELAY 9 ON'],
    'ringing and LEDs resume; the pulsed relay is only set off, never pulsed again',
  );
  t.equal(logger.records.filter((r) => r.msg === 'serial port closed; reopening').length, 1, 'one log line for the loss');
  t.equal(logger.records.filter((r) => r.msg === 'serial port reopened').length, 1, 'one log line for the return');

  mcu.send({ type: 'hook', offHook: false }, { type: 'digit', digit: '7' });
  t.ok(await until(() => events.length === 8, 2000), 'events flow again');
  t.same(events.slice(6), ['input hook false', 'key 7']);

  const count = mcu.commands.length;
  await backend.stop();
  t.ok(await until(() => mcu.commands.length > count, 2000), 'stop silences the ringer');
  t.equal(mcu.commands.at(-1), 'RING OFF');
  await backend.stop();
});

t.test('start names the port and the fix when the device is missing', async (t) => {
  const backend = new SerialBackend({ path: join(dir, 'missing'), clock: new SystemClock(), logger: new MemoryLogger() });
  await t.rejects(backend.start({ input() {}, key() {} }), /^serial board: cannot open .*missing: .*ls \/dev\/serial\/by-id\//);
  await backend.stop();
  const unbundled = new SerialBackend({
    path: '/dev/serial/by-id/usb-x',
    clock: new SystemClock(),
    logger: new MemoryLogger(),
    openPort: () => Promise.reject(Object.assign(new Error('the serialport native binding did not load: No native build was found'), { code: BINDING_ERROR })),
  });
  await t.rejects(unbundled.start({ input() {}, key() {} }), /^serial board: the serialport native binding did not load: .*prebuilds\//, 'a missing native addon is named as such');
});
