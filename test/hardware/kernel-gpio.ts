import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import t from 'tap';
import { EV_KEY, EV_SYN, SYN_DROPPED, encodeInputEvent, type EvdevFs, type InputEvent, type InputEventSize } from '../../src/hardware/backends/evdev-reader.ts';
import { KernelGpioBackend, KernelGpioError, type KernelGpioOptions } from '../../src/hardware/backends/kernel-gpio.ts';
import type { LedFs } from '../../src/hardware/backends/led-class.ts';
import type { HardwareEvents, InputRole } from '../../src/hardware/types.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';

/** KEY_* codes from input-event-codes.h, as a board profile would pick them. */
const KEY_H = 35;
const KEY_P = 25;
const KEY_O = 24;
const KEY_B = 48;

/** Wall clock = test clock + OFFSET, so kernel stamps map back exactly. */
const OFFSET = 1_700_000_000_000;

function stamp(clockMs: number, type: number, code: number, value: number): InputEvent {
  const ms = clockMs + OFFSET;
  return { sec: Math.floor(ms / 1000), usec: Math.round((ms % 1000) * 1000), type, code, value };
}

function records(size: InputEventSize, events: readonly InputEvent[]): Buffer {
  return Buffer.concat(events.map((e) => encodeInputEvent(e, size)));
}

function tempDir(t: { teardown(fn: () => void): void }, prefix: string): string {
  const dir = fs.mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A directory laid out like /sys/class/leds/NAME (regular files standing in for attributes). */
function makeLed(ledsDir: string, name: string, maxBrightness = 1): void {
  const dir = join(ledsDir, name);
  fs.mkdirSync(dir, { recursive: true });
  const attrs: Record<string, string> = { brightness: '0\n', max_brightness: `${maxBrightness}\n`, trigger: '[none] timer heartbeat\n', delay_on: '500\n', delay_off: '500\n' };
  for (const [attr, value] of Object.entries(attrs)) fs.writeFileSync(join(dir, attr), value);
}

function readLed(ledsDir: string, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const attr of ['brightness', 'trigger', 'delay_on', 'delay_off']) out[attr] = fs.readFileSync(join(ledsDir, name, attr), 'utf8').trim();
  return out;
}

/** node:fs with every LED attribute write recorded as `name/attr=value`. */
function recordingLedFs(ledsDir: string, writes: string[]): LedFs {
  return {
    writeFileSync: (path, data) => {
      writes.push(`${relative(ledsDir, path)}=${data}`);
      fs.writeFileSync(path, data);
    },
    readFileSync: (path, enc) => fs.readFileSync(path, enc),
    accessSync: (path, mode) => fs.accessSync(path, mode),
  };
}

interface Recorder extends HardwareEvents {
  inputs: [InputRole, boolean, number][];
  connections: string[];
}

function recorder(): Recorder {
  const r: Recorder = {
    inputs: [],
    connections: [],
    input: (role, active, atMs) => void r.inputs.push([role, active, atMs]),
    key: () => {},
    connection: (up, reason) => void r.connections.push(up ? 'up' : `down ${reason}`),
  };
  return r;
}

t.test('gpio-keys events become role inputs with polarity and kernel times', async (t) => {
  for (const size of [24, 16] as InputEventSize[]) {
    const dir = tempDir(t, 'kgpio-in-');
    const hookPath = join(dir, 'platform-hook-event');
    const dialPath = join(dir, 'platform-dial-event');
    execFileSync('mkfifo', [hookPath]);
    execFileSync('mkfifo', [dialPath]);
    const hook = fs.openSync(hookPath, 'r+');
    const dial = fs.openSync(dialPath, 'r+');
    const clock = new ManualClock(0);
    const logger = new MemoryLogger();
    const backend = new KernelGpioBackend({
      inputs: {
        hook: { path: hookPath, code: KEY_H },
        pulse: { path: dialPath, code: KEY_P, invert: true },
        offNormal: { path: dialPath, code: KEY_O },
      },
      recordSize: size,
      littleEndian: true,
      pollMs: 10,
      clock,
      logger,
    });
    const ev = recorder();
    await backend.start(ev);
    fs.writeSync(hook, records(size, [stamp(10, EV_SYN, 0, 0)]));
    fs.writeSync(dial, records(size, [stamp(10, EV_SYN, 0, 0)]));
    clock.advance(10);
    t.same(ev.inputs, [], `${size}: EV_SYN alone reports nothing`);
    clock.advance(290);

    fs.writeSync(hook, records(size, [stamp(95.5, EV_KEY, KEY_H, 1), stamp(95.5, EV_SYN, 0, 0)]));
    fs.writeSync(
      dial,
      records(size, [
        stamp(120, EV_KEY, KEY_O, 1),
        stamp(120, EV_SYN, 0, 0),
        stamp(150.25, EV_KEY, KEY_P, 1),
        stamp(150.25, EV_SYN, 0, 0),
        stamp(210.5, EV_KEY, KEY_P, 0),
        stamp(210.5, EV_SYN, 0, 0),
        stamp(211, EV_KEY, KEY_P, 2),
        stamp(212, EV_KEY, KEY_B, 1),
        stamp(250, EV_KEY, KEY_O, 0),
      ]),
    );
    clock.advance(10);
    t.same(
      ev.inputs,
      [
        ['hook', true, 95.5],
        ['offNormal', true, 120],
        ['pulse', false, 150.25],
        ['pulse', true, 210.5],
        ['offNormal', false, 250],
      ],
      `${size}: press/release per role, inverted pulse contact, autorepeat and unknown codes ignored`,
    );
    fs.writeSync(hook, records(size, [stamp(305, EV_SYN, SYN_DROPPED, 0)]));
    clock.advance(10);
    t.match(
      logger.records.filter((r) => r.level === 'warn'),
      [{ msg: 'kernel dropped input events (reader too slow); input state may be stale until the next change', fields: { path: hookPath } }],
      `${size}: SYN_DROPPED is logged`,
    );
    t.equal(ev.inputs.length, 5);
    await backend.stop();
    await backend.stop();
    t.same(clock.pending(), [], `${size}: stop leaves no timers`);
    fs.closeSync(hook);
    fs.closeSync(dial);
  }
});

t.test('LED class outputs: steady, blinking with the timer trigger, pulses, stop', async (t) => {
  const ledsDir = tempDir(t, 'kgpio-leds-');
  makeLed(ledsDir, 'ring-fr');
  makeLed(ledsDir, 'door', 1);
  makeLed(ledsDir, 'status', 255);
  const writes: string[] = [];
  const clock = new ManualClock(0);
  const backend = new KernelGpioBackend({
    outputs: { forwardReverse: { led: 'ring-fr' }, relay: { led: 'door' }, ledGreen: { led: 'status' } },
    ledsDir,
    clock,
    logger: new MemoryLogger(),
    ledFs: recordingLedFs(ledsDir, writes),
  });
  await backend.start(recorder());
  t.same(writes.sort(), ['door/brightness=0', 'door/trigger=none', 'ring-fr/brightness=0', 'ring-fr/trigger=none', 'status/brightness=0', 'status/trigger=none'], 'start drives every output off');

  const steps: { name: string; act: () => void; writes: string[]; led: string; state: Record<string, string> }[] = [
    {
      name: 'on uses max_brightness',
      act: () => backend.setOutput('ledGreen', { mode: 'on' }),
      writes: ['status/trigger=none', 'status/brightness=255'],
      led: 'status',
      state: { brightness: '255', trigger: 'none', delay_on: '500', delay_off: '500' },
    },
    {
      name: '20 Hz ring toggling: timer trigger, then delays',
      act: () => backend.setOutput('forwardReverse', { mode: 'blink', onMs: 25, offMs: 25 }),
      writes: ['ring-fr/trigger=timer', 'ring-fr/delay_on=25', 'ring-fr/delay_off=25'],
      led: 'ring-fr',
      state: { brightness: '0', trigger: 'timer', delay_on: '25', delay_off: '25' },
    },
    {
      name: 'the same blink again is not rewritten (keeps the phase)',
      act: () => backend.setOutput('forwardReverse', { mode: 'blink', onMs: 25, offMs: 25 }),
      writes: [],
      led: 'ring-fr',
      state: { brightness: '0', trigger: 'timer', delay_on: '25', delay_off: '25' },
    },
    {
      name: '25 Hz with rounding',
      act: () => backend.setOutput('forwardReverse', { mode: 'blink', onMs: 20.2, offMs: 19.6 }),
      writes: ['ring-fr/trigger=timer', 'ring-fr/delay_on=20', 'ring-fr/delay_off=20'],
      led: 'ring-fr',
      state: { brightness: '0', trigger: 'timer', delay_on: '20', delay_off: '20' },
    },
    {
      name: 'off removes the trigger',
      act: () => backend.setOutput('forwardReverse', { mode: 'off' }),
      writes: ['ring-fr/trigger=none', 'ring-fr/brightness=0'],
      led: 'ring-fr',
      state: { brightness: '0', trigger: 'none', delay_on: '20', delay_off: '20' },
    },
    {
      name: 'a blink without on-time is off',
      act: () => backend.setOutput('forwardReverse', { mode: 'blink', onMs: 0, offMs: 100 }),
      writes: [],
      led: 'ring-fr',
      state: { brightness: '0', trigger: 'none', delay_on: '20', delay_off: '20' },
    },
    {
      name: 'a role the board lacks is ignored',
      act: () => backend.setOutput('bell', { mode: 'on' }),
      writes: [],
      led: 'ring-fr',
      state: { brightness: '0', trigger: 'none', delay_on: '20', delay_off: '20' },
    },
  ];
  for (const s of steps) {
    writes.length = 0;
    s.act();
    t.same(writes, s.writes, `${s.name}: writes`);
    t.same(readLed(ledsDir, s.led), s.state, `${s.name}: files`);
  }

  t.test('pulse: on, then off after the time on the injected clock', async (t) => {
    writes.length = 0;
    backend.pulse('relay', 3000);
    t.equal(readLed(ledsDir, 'door').brightness, '1');
    clock.advance(2999);
    t.equal(readLed(ledsDir, 'door').brightness, '1', 'still on 1 ms before');
    clock.advance(1);
    t.equal(readLed(ledsDir, 'door').brightness, '0', 'off after 3000 ms');
    t.same(writes, ['door/trigger=none', 'door/brightness=1', 'door/trigger=none', 'door/brightness=0']);

    backend.pulse('relay', 1000);
    clock.advance(600);
    backend.pulse('relay', 1000);
    clock.advance(999);
    t.equal(readLed(ledsDir, 'door').brightness, '1', 'a second pulse extends the first');
    clock.advance(1);
    t.equal(readLed(ledsDir, 'door').brightness, '0');

    backend.pulse('relay', 1000);
    backend.setOutput('relay', { mode: 'on' });
    clock.advance(5000);
    t.equal(readLed(ledsDir, 'door').brightness, '1', 'setOutput cancels a pending pulse end');
    backend.pulse('bell', 100);
    t.same(clock.pending(), [], 'pulsing a missing role does nothing');
  });

  t.test('stop turns every output off so kernel blinking does not outlive the process', async (t) => {
    backend.setOutput('forwardReverse', { mode: 'blink', onMs: 25, offMs: 25 });
    await backend.stop();
    for (const name of ['ring-fr', 'door', 'status']) t.match(readLed(ledsDir, name), { brightness: '0', trigger: 'none' }, name);
    writes.length = 0;
    await backend.stop();
    backend.setOutput('relay', { mode: 'on' });
    t.same(writes, [], 'after stop nothing is written');
  });
});

t.test('a failed LED write is logged and retried on the next request, never thrown', async (t) => {
  const ledsDir = tempDir(t, 'kgpio-leds-');
  makeLed(ledsDir, 'bell');
  let failing = false;
  const logger = new MemoryLogger();
  const ledFs: LedFs = {
    writeFileSync: (path, data) => {
      if (failing) throw Object.assign(new Error('EIO'), { code: 'EIO' });
      fs.writeFileSync(path, data);
    },
    readFileSync: (path, enc) => fs.readFileSync(path, enc),
    accessSync: (path, mode) => fs.accessSync(path, mode),
  };
  const backend = new KernelGpioBackend({ outputs: { bell: { led: 'bell' } }, ledsDir, clock: new ManualClock(), logger, ledFs });
  await backend.start(recorder());
  failing = true;
  backend.setOutput('bell', { mode: 'on' });
  t.match(logger.records.filter((r) => r.level === 'warn'), [{ msg: 'LED write failed', fields: { led: 'bell', value: 'none', error: 'EIO' } }]);
  failing = false;
  backend.setOutput('bell', { mode: 'on' });
  t.equal(readLed(ledsDir, 'bell').brightness, '1', 'written once the device answers again');
  await backend.stop();
});

t.test('a missing or inaccessible device is one line naming the role, the path and the fix', async (t) => {
  const dir = tempDir(t, 'kgpio-missing-');
  const ledsDir = join(dir, 'leds');
  makeLed(ledsDir, 'ok-led');
  const eacces = Object.assign(new Error('permission denied'), { code: 'EACCES' });
  const deniedEvdev: EvdevFs = {
    openSync: () => {
      throw eacces;
    },
    readSync: () => 0,
    closeSync: () => {},
    statSync: () => ({ dev: 0, ino: 0 }),
    fstatSync: () => ({ dev: 0, ino: 0 }),
  };
  const deniedLeds: LedFs = {
    writeFileSync: () => {},
    readFileSync: () => '1',
    accessSync: () => {
      throw eacces;
    },
  };
  const hookPath = join(dir, 'by-path', 'platform-hook-event');
  const cases: { name: string; opts: Partial<KernelGpioOptions>; code: string; role: string; message: string }[] = [
    {
      name: 'missing gpio-keys device',
      opts: { inputs: { hook: { path: hookPath, code: KEY_H, gpio: 17 } }, outputs: { ledGreen: { led: 'ok-led' } } },
      code: 'HW_ERR_INPUT_MISSING',
      role: 'hook',
      message: `input 'hook': ${hookPath} not found; add "dtoverlay=gpio-key,gpio=17,keycode=35,label=hook" to config.txt, reboot, and check ls /dev/input/by-path/`,
    },
    {
      name: 'missing shared device names both roles',
      opts: { inputs: { pulse: { path: hookPath, code: KEY_P, gpio: 22 }, offNormal: { path: hookPath, code: KEY_O } } },
      code: 'HW_ERR_INPUT_MISSING',
      role: 'pulse',
      message: `input 'pulse, offNormal': ${hookPath} not found; add "dtoverlay=gpio-key,gpio=22,keycode=25,label=pulse" and "dtoverlay=gpio-key,gpio=<pin>,keycode=24,label=offNormal" to config.txt, reboot, and check ls /dev/input/by-path/`,
    },
    {
      name: 'profile-supplied overlay line',
      opts: { inputs: { button: { path: hookPath, code: KEY_B, overlay: 'dtoverlay=gpio-key,gpio=5,active_low=0,gpio_pull=1,label=button,keycode=48' } } },
      code: 'HW_ERR_INPUT_MISSING',
      role: 'button',
      message: `input 'button': ${hookPath} not found; add "dtoverlay=gpio-key,gpio=5,active_low=0,gpio_pull=1,label=button,keycode=48" to config.txt, reboot, and check ls /dev/input/by-path/`,
    },
    {
      name: 'device without permission',
      opts: { inputs: { hook: { path: '/dev/input/event3', code: KEY_H } }, evdevFs: deniedEvdev },
      code: 'HW_ERR_INPUT_ACCESS',
      role: 'hook',
      message: `input 'hook': cannot open /dev/input/event3 (EACCES); add the service user to the 'input' group`,
    },
    {
      name: 'missing LED',
      opts: { outputs: { ledGreen: { led: 'ok-led' }, forwardReverse: { led: 'ring-fr', gpio: 27 } } },
      code: 'HW_ERR_OUTPUT_MISSING',
      role: 'forwardReverse',
      message: `output 'forwardReverse': LED ${join(ledsDir, 'ring-fr')} not found; add "dtoverlay=gpio-led,gpio=27,label=ring-fr" to config.txt and reboot`,
    },
    {
      name: 'missing leds directory',
      opts: { outputs: { relay: { led: 'door' } }, ledsDir: join(dir, 'no-such-dir') },
      code: 'HW_ERR_OUTPUT_MISSING',
      role: 'relay',
      message: `output 'relay': LED ${join(dir, 'no-such-dir', 'door')} not found; add "dtoverlay=gpio-led,gpio=<pin>,label=door" to config.txt and reboot`,
    },
    {
      name: 'LED not writable',
      opts: { outputs: { bell: { led: 'ok-led' } }, ledFs: deniedLeds },
      code: 'HW_ERR_OUTPUT_ACCESS',
      role: 'bell',
      message: `output 'bell': cannot write ${join(ledsDir, 'ok-led', 'brightness')} (EACCES); run as root or add a udev rule granting write access to /sys/class/leds/ok-led`,
    },
  ];
  for (const c of cases) {
    const clock = new ManualClock();
    const backend = new KernelGpioBackend({ ledsDir, clock, logger: new MemoryLogger(), ...c.opts });
    const err = await backend.start(recorder()).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof KernelGpioError, `${c.name}: a KernelGpioError`);
    t.match(err, { code: c.code, role: c.role, message: c.message }, c.name);
    t.notMatch((err as Error).message, /\n/, `${c.name}: one line`);
    t.same(clock.pending(), [], `${c.name}: nothing left running`);
  }
});

t.test('an input device deleted and recreated mid-run is reopened', async (t) => {
  const dir = tempDir(t, 'kgpio-reopen-');
  const path = join(dir, 'platform-hook-event');
  execFileSync('mkfifo', [path]);
  let writer = fs.openSync(path, 'r+');
  const clock = new ManualClock(0);
  const logger = new MemoryLogger();
  const backend = new KernelGpioBackend({
    inputs: { hook: { path, code: KEY_H } },
    recordSize: 24,
    pollMs: 10,
    reopenBackoff: { initialMs: 250, maxMs: 1000 },
    clock,
    logger,
  });
  const ev = recorder();
  await backend.start(ev);
  fs.writeSync(writer, records(24, [stamp(5, EV_KEY, KEY_H, 1)]));
  clock.advance(10);

  fs.unlinkSync(path);
  fs.closeSync(writer);
  clock.advance(10);
  clock.advance(600);
  execFileSync('mkfifo', [path]);
  writer = fs.openSync(path, 'r+');
  clock.advance(1000);
  fs.writeSync(writer, records(24, [stamp(1600, EV_KEY, KEY_H, 0)]));
  clock.advance(100);

  t.same(ev.inputs, [
    ['hook', true, 10],
    ['hook', false, 1600 + 5],
  ], 'events before and after, on one timeline');
  t.same(ev.connections, [`down ${path}: device file removed`, 'up']);
  const lines = logger.records.filter((r) => r.level !== 'debug' && r.msg.startsWith('input device'));
  t.match(lines, [
    { level: 'warn', msg: 'input device lost; reopening in 250 ms', fields: { path } },
    { level: 'info', msg: 'input device reopened', fields: { path } },
  ], 'one warning when it vanished, one line when it came back');
  await backend.stop();
  fs.closeSync(writer);
});
