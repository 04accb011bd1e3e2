import t from 'tap';
import { SimulatorBackend, type SimulatorChange } from '../../src/hardware/backends/simulator.ts';
import { BoardRegistry } from '../../src/hardware/board-registry.ts';
import type { HardwareEvents, InputRole } from '../../src/hardware/types.ts';
import { ManualClock } from '../../src/runtime/clock.ts';

const boards = new BoardRegistry();

function recorder(): { events: HardwareEvents; inputs: Array<[InputRole, boolean, number]>; keys: Array<[string, number]> } {
  const inputs: Array<[InputRole, boolean, number]> = [];
  const keys: Array<[string, number]> = [];
  return { inputs, keys, events: { input: (r, a, at) => inputs.push([r, a, at]), key: (k, at) => keys.push([k, at]) } };
}

/** Digits decoded from pulse edges the simple way: count breaks, a gap over 300 ms ends a digit. */
function decode(inputs: Array<[InputRole, boolean, number]>): string {
  let digits = '';
  let count = 0;
  let lastMake = -Infinity;
  for (const [role, active, at] of inputs) {
    if (role !== 'pulse') continue;
    if (active && count > 0 && at - lastMake > 300) {
      digits += String(count % 10);
      count = 0;
    }
    if (active) count++;
    else lastMake = at;
  }
  return count ? digits + String(count % 10) : digits;
}

t.test('hook, button and keys reach the events at the clock time', async (t) => {
  const clock = new ManualClock(1000);
  const sim = new SimulatorBackend({ clock });
  const rec = recorder();
  t.throws(() => sim.liftHandset(), /not started/);
  await sim.start(rec.events);
  sim.liftHandset();
  clock.advance(250);
  sim.pressKey('#');
  sim.pressButton();
  sim.releaseButton();
  sim.hangUp();
  t.same(rec.inputs, [['hook', true, 1000], ['button', true, 1250], ['button', false, 1250], ['hook', false, 1250]]);
  t.same(rec.keys, [['#', 1250]]);
  t.equal(sim.input('hook'), false);
});

t.test('a hook flash is on-hook for the given time, then off-hook', async (t) => {
  const clock = new ManualClock();
  const sim = new SimulatorBackend({ clock });
  const rec = recorder();
  await sim.start(rec.events);
  sim.liftHandset();
  const done = sim.flash(250);
  clock.advance(1000);
  await done;
  t.same(rec.inputs, [['hook', true, 0], ['hook', false, 0], ['hook', true, 250]]);
});

t.test('rotary dialling makes pulse trains with dial timing', async (t) => {
  const cases: Array<{ name: string; digits: string; pps?: number; breakRatio?: number; breakMs: number; makeMs: number }> = [
    { name: 'nominal 10 pps, 60/40', digits: '101', breakMs: 60, makeMs: 40 },
    { name: 'slow dial 7 pps, 55 % break', digits: '90', pps: 7, breakRatio: 0.55, breakMs: (1000 / 7) * 0.55, makeMs: (1000 / 7) * 0.45 },
    { name: 'fast dial 12 pps, 70 % break', digits: '0', pps: 12, breakRatio: 0.7, breakMs: (1000 / 12) * 0.7, makeMs: (1000 / 12) * 0.3 },
  ];
  for (const c of cases) {
    const clock = new ManualClock();
    const sim = new SimulatorBackend({ clock, profile: boards.load('pi-rotary-bell'), rotary: { ...(c.pps ? { pulsesPerSecond: c.pps } : {}), ...(c.breakRatio ? { breakRatio: c.breakRatio } : {}) } });
    const rec = recorder();
    await sim.start(rec.events);
    let finished = false;
    const done = sim.dialRotary(c.digits).then(() => (finished = true));
    clock.advance(60_000);
    await done;
    t.ok(finished, `${c.name}: resolves`);
    t.equal(decode(rec.inputs), c.digits, `${c.name}: digits`);
    const pulses = rec.inputs.filter(([r]) => r === 'pulse');
    const expectedPulses = [...c.digits].reduce((n, d) => n + (d === '0' ? 10 : Number(d)), 0);
    t.equal(pulses.length, 2 * expectedPulses, `${c.name}: one break and one make per pulse`);
    const breaks = pulses.filter((_, i) => i % 2 === 0).map(([, , at], i) => pulses[2 * i + 1]![2] - at);
    t.ok(breaks.every((b) => Math.abs(b - c.breakMs) < 1e-6), `${c.name}: break ${c.breakMs.toFixed(1)} ms`);
    const offNormal = rec.inputs.filter(([r]) => r === 'offNormal').map(([, a]) => a);
    t.same(offNormal, [...c.digits].flatMap(() => [true, false]), `${c.name}: off-normal per digit`);
    const firstDigitEnd = rec.inputs.findIndex(([r, a]) => r === 'offNormal' && !a);
    t.ok(rec.inputs.slice(0, firstDigitEnd).every(([r]) => r !== 'hook'), `${c.name}: no hook edges`);
    const makes = pulses.filter((_, i) => i % 2 === 1);
    const gap = pulses[2]?.[2] !== undefined && c.digits[0] !== '1' ? pulses[2]![2] - makes[0]![2] : undefined;
    if (gap !== undefined) t.ok(Math.abs(gap - c.makeMs) < 1e-6, `${c.name}: make ${c.makeMs.toFixed(1)} ms`);
  }
});

t.test('contact bounce adds 1 ms toggles before each transition', async (t) => {
  const clock = new ManualClock();
  const sim = new SimulatorBackend({ clock, rotary: { bounceEdges: 2 } });
  const rec = recorder();
  await sim.start(rec.events);
  const done = sim.dialRotary('1');
  clock.advance(5000);
  await done;
  const pulse = rec.inputs.filter(([r]) => r === 'pulse').map(([, a, at]) => [a, at]);
  t.same(pulse.slice(0, 5), [[true, 54], [false, 55], [true, 56], [false, 57], [true, 58]], 'break with two bounces (after the bouncing off-normal edge and its 50 ms lead)');
  t.same(pulse.slice(5), [[false, 118], [true, 119], [false, 120], [true, 121], [false, 122]], 'make with two bounces, 60 ms after the break');
});

t.test('dial calls queue and hooks for missing roles throw', async (t) => {
  const clock = new ManualClock();
  const sim = new SimulatorBackend({ clock, profile: boards.load('pi-rotary-bell') });
  const rec = recorder();
  await sim.start(rec.events);
  const a = sim.dialRotary('2');
  const b = sim.dialRotary('3');
  clock.advance(10_000);
  await Promise.all([a, b]);
  t.equal(decode(rec.inputs), '23');
  t.throws(() => sim.pressButton(), /board pi-rotary-bell has no button input/);
  t.throws(() => sim.dialRotary('1a'), /digits 0-9/);
  const intercom = new SimulatorBackend({ clock, profile: boards.load('pi-intercom') });
  await intercom.start(recorder().events);
  t.throws(() => intercom.dialRotary('1'), /has no pulse input/);
});

t.test('outputs, pulses and rings are recorded and reported', async (t) => {
  const clock = new ManualClock();
  const changes: SimulatorChange[] = [];
  const sim = new SimulatorBackend({ clock, profile: boards.load('pi-intercom'), onChange: (c) => changes.push(c) });
  await sim.start(recorder().events);
  sim.setOutput('ledGreen', { mode: 'blink', onMs: 500, offMs: 500 });
  sim.setOutput('bell', { mode: 'on' });
  sim.pulse('relay', 3000);
  t.same(sim.output('relay'), { mode: 'on' });
  clock.advance(2999);
  t.same(sim.output('relay'), { mode: 'on' });
  clock.advance(1);
  t.same(sim.output('relay'), { mode: 'off' }, 'relay off after 3 s');
  t.same(sim.output('bell'), { mode: 'off' }, 'a role the board lacks is ignored');
  t.same(sim.pulses, [{ role: 'relay', ms: 3000, atMs: 0 }]);
  t.equal(sim.ring([2000, 4000]), false, 'a GPIO board does not ring by itself');
  t.same(
    changes.map((c) => (c.kind === 'output' ? [c.role, c.state.mode, c.atMs] : [c.kind])),
    [['ledGreen', 'blink', 0], ['relay', 'on', 0], ['relay', 'off', 3000]],
  );
  sim.pulse('relay', 3000);
  sim.setOutput('relay', { mode: 'on' });
  clock.advance(5000);
  t.same(sim.output('relay'), { mode: 'on' }, 'a later setOutput cancels the pulse end');
});

t.test('a serial board rings by itself', async (t) => {
  const clock = new ManualClock();
  const sim = new SimulatorBackend({ clock, profile: boards.load('serial-handset') });
  await sim.start(recorder().events);
  t.equal(sim.ring([400, 200, 400, 2000]), true);
  t.same(sim.ringCadence, [400, 200, 400, 2000]);
  t.equal(sim.ring(undefined), true);
  t.same(sim.rings, [[400, 200, 400, 2000], undefined]);
  sim.liftHandset();
  sim.pressKey('5');
  t.equal(sim.input('hook'), true);
});

t.test('stop cancels scheduled edges, resolves pending dials and is idempotent', async (t) => {
  const clock = new ManualClock();
  const sim = new SimulatorBackend({ clock });
  const rec = recorder();
  await sim.start(rec.events);
  const dial = sim.dialRotary('9');
  clock.advance(150);
  const before = rec.inputs.length;
  await sim.stop();
  await sim.stop();
  await dial;
  clock.advance(10_000);
  t.equal(rec.inputs.length, before, 'no edges after stop');
  t.throws(() => sim.liftHandset(), /stopped/);
  sim.setOutput('relay', { mode: 'on' });
  t.same(sim.output('relay'), { mode: 'off' }, 'outputs ignored after stop');
  await t.rejects(sim.start(rec.events), /start after stop/);
});
