import t from 'tap';
import type { HardwareBackend, OutputRole, OutputState } from '../../src/hardware/types.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { nullLogger } from '../../src/runtime/logger.ts';
import { ringCadence, Ringer, type RingerDrive } from '../../src/phone/ringer.ts';

/** A board with some output roles; records what reaches them (roles it lacks are ignored). */
class FakeBoard implements Pick<HardwareBackend, 'setOutput' | 'ring'> {
  readonly writes: string[] = [];
  readonly rings: (readonly number[] | undefined)[] = [];
  /** Present only when `ringsItself` is given (a board without `ring()` otherwise). */
  ring?: (cadence: readonly number[] | undefined) => boolean;
  constructor(
    private readonly clock: ManualClock,
    private readonly roles: readonly OutputRole[],
    ringsItself?: boolean,
  ) {
    if (ringsItself !== undefined) {
      this.ring = (cadence) => {
        this.rings.push(cadence);
        return ringsItself;
      };
    }
  }
  setOutput(role: OutputRole, state: OutputState): void {
    if (!this.roles.includes(role)) return;
    this.writes.push(`${this.clock.now()} ${role} ${state.mode === 'blink' ? `blink ${state.onMs}/${state.offMs}` : state.mode}`);
  }
}

const SLIC: OutputRole[] = ['ringMode', 'forwardReverse', 'ledGreen'];
const BELL: OutputRole[] = ['bell', 'relay'];

t.test('ring cadences per country (us 2/4 s, gb 0.4/0.2/0.4/2.0 s, de 1/4 s)', async (t) => {
  const cases: [country: string, cadence: number[]][] = [
    ['us', [2000, 4000]],
    ['gb', [400, 200, 400, 2000]],
    ['UK', [400, 200, 400, 2000]],
    ['de', [1000, 4000]],
    ['zz', [1000, 4000]],
  ];
  for (const [country, cadence] of cases) t.same(ringCadence(country), cadence, country);
});

t.test('outputs follow the cadence over one and a half cycles', async (t) => {
  const cases: [name: string, country: string, hz: number, roles: OutputRole[], drive: RingerDrive | undefined, ringsItself: boolean | undefined, runMs: number, writes: string[]][] = [
    ['us SLIC at 20 Hz', 'us', 20, SLIC, undefined, undefined, 8000, [
      '0 ringMode on', '0 forwardReverse blink 25/25',
      '2000 forwardReverse off', '2000 ringMode off',
      '6000 ringMode on', '6000 forwardReverse blink 25/25',
      '8000 forwardReverse off', '8000 ringMode off',
    ]],
    ['de SLIC at 25 Hz whose ring() returns false', 'de', 25, SLIC, 'slic', false, 6000, [
      '0 ringMode on', '0 forwardReverse blink 20/20',
      '1000 forwardReverse off', '1000 ringMode off',
      '5000 ringMode on', '5000 forwardReverse blink 20/20',
      '6000 forwardReverse off', '6000 ringMode off',
    ]],
    ['gb SLIC at 25 Hz, double ring', 'gb', 25, SLIC, undefined, undefined, 3400, [
      '0 ringMode on', '0 forwardReverse blink 20/20',
      '400 forwardReverse off', '400 ringMode off',
      '600 ringMode on', '600 forwardReverse blink 20/20',
      '1000 forwardReverse off', '1000 ringMode off',
      '3000 ringMode on', '3000 forwardReverse blink 20/20',
      '3400 forwardReverse off', '3400 ringMode off',
    ]],
    ['us bell', 'us', 20, BELL, 'bell', undefined, 8000, ['0 bell on', '2000 bell off', '6000 bell on', '8000 bell off']],
    ['gb bell', 'gb', 25, BELL, undefined, undefined, 3400, ['0 bell on', '400 bell off', '600 bell on', '1000 bell off', '3000 bell on', '3400 bell off']],
    ['de bell', 'de', 25, BELL, 'bell', undefined, 6000, ['0 bell on', '1000 bell off', '5000 bell on', '6000 bell off']],
    ['a board that rings by itself gets no output writes', 'gb', 25, [...SLIC, ...BELL], undefined, true, 10_000, []],
  ];
  for (const [name, country, hz, roles, drive, ringsItself, runMs, writes] of cases) {
    const clock = new ManualClock();
    const board = new FakeBoard(clock, roles, ringsItself);
    const ringer = new Ringer({ backend: board, clock, logger: nullLogger, country, frequencyHz: hz, ...(drive ? { drive } : {}) });
    ringer.start();
    clock.advance(runMs - 1);
    t.equal(ringer.ringing, true, `${name}: ringing`);
    clock.advance(1);
    t.same(board.writes, writes, `${name}: outputs`);
  }
});

t.test('a board that rings by itself gets the cadence and the stop', async (t) => {
  const clock = new ManualClock();
  const board = new FakeBoard(clock, SLIC, true);
  const ringer = new Ringer({ backend: board, clock, logger: nullLogger, country: 'gb', frequencyHz: 25 });
  ringer.start();
  ringer.start();
  clock.advance(10_000);
  ringer.stop();
  ringer.stop();
  t.same(board.rings, [[400, 200, 400, 2000], undefined]);
  t.same(board.writes, []);
  t.same(clock.pending(), [], 'no timers');
});

t.test('a board whose ring() returns false is driven by outputs, and ring() is not called to stop', async (t) => {
  const clock = new ManualClock();
  const board = new FakeBoard(clock, BELL, false);
  const ringer = new Ringer({ backend: board, clock, logger: nullLogger, country: 'de', frequencyHz: 25 });
  ringer.start();
  clock.advance(500);
  ringer.stop();
  t.same(board.rings, [[1000, 4000]]);
  t.same(board.writes, ['0 bell on', '500 bell off']);
});

t.test('stop turns the outputs off at once and cancels the cadence', async (t) => {
  const cases: [name: string, stopAt: number, writes: string[]][] = [
    ['during an on period', 700, ['0 ringMode on', '0 forwardReverse blink 25/25', '700 forwardReverse off', '700 ringMode off']],
    ['during an off period', 3000, ['0 ringMode on', '0 forwardReverse blink 25/25', '2000 forwardReverse off', '2000 ringMode off', '3000 forwardReverse off', '3000 ringMode off']],
  ];
  for (const [name, stopAt, writes] of cases) {
    const clock = new ManualClock();
    const board = new FakeBoard(clock, SLIC);
    const ringer = new Ringer({ backend: board, clock, logger: nullLogger, country: 'us', frequencyHz: 20 });
    ringer.start();
    clock.advance(stopAt);
    ringer.stop();
    clock.advance(20_000);
    t.equal(ringer.ringing, false, `${name}: not ringing`);
    t.same(board.writes, writes, `${name}: outputs`);
    t.same(clock.pending(), [], `${name}: no timers left`);
  }
});

t.test('ringing again starts at the beginning of the cadence', async (t) => {
  const clock = new ManualClock();
  const board = new FakeBoard(clock, BELL);
  const ringer = new Ringer({ backend: board, clock, logger: nullLogger, country: 'gb', frequencyHz: 25 });
  ringer.start();
  clock.advance(500);
  ringer.stop();
  clock.advance(100);
  ringer.start();
  clock.advance(400);
  t.same(board.writes, ['0 bell on', '400 bell off', '500 bell off', '600 bell on', '1000 bell off']);
});

t.test('a ring frequency out of range is refused', async (t) => {
  const clock = new ManualClock();
  for (const hz of [0, -20, 1000, Number.NaN]) {
    t.throws(() => new Ringer({ backend: new FakeBoard(clock, BELL), clock, logger: nullLogger, country: 'us', frequencyHz: hz }), { message: /ring frequency/ }, String(hz));
  }
});
