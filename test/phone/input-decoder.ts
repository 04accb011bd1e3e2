import t from 'tap';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { InputDecoder, type InputDecoderOptions, type PhoneInputEvent } from '../../src/phone/input-decoder.ts';
import { numberTrain, pulseTrain, replay, transition, type Edge } from '../helpers/pulse-trains.ts';
import { prng } from '../helpers/prng.ts';

/** Short text for each event: `offHook`, `onHook`, `flash`, `digit:5`, `button:down`. */
function brief(e: PhoneInputEvent): string {
  switch (e.type) {
    case 'digit':
      return `digit:${e.digit}`;
    case 'button':
      return `button:${e.pressed ? 'down' : 'up'}`;
    default:
      return e.type;
  }
}

function run(edges: Edge[], options: InputDecoderOptions = {}): { events: PhoneInputEvent[]; seen: string[]; decoder: InputDecoder } {
  const clock = new ManualClock(0);
  const events: PhoneInputEvent[] = [];
  const decoder = new InputDecoder(clock, (e) => events.push(e), options);
  replay(clock, edges, (e) => decoder.input(e.role, e.active, e.at));
  return { events, seen: events.map(brief), decoder };
}

const onHookPulses: InputDecoderOptions = { hook: { pulsesOnHook: true } };

t.test('dialling through the hook switch (pulsesOnHook): every digit, with bounce', async (t) => {
  // At the default 100 ms flash minimum the break must stay under 100 ms: 7 pps at 70 % (100 ms) is covered below.
  const speeds: [pps: number, breakRatio: number][] = [
    [7, 0.55],
    [7, 0.6],
    [10, 0.55],
    [10, 0.6],
    [10, 0.7],
    [12, 0.55],
    [12, 0.6],
    [12, 0.7],
  ];
  let trains = 0;
  let correct = 0;
  for (const [pps, breakRatio] of speeds) {
    for (const bounce of [false, true]) {
      const rand = bounce ? prng(pps * 7 + breakRatio * 10) : undefined;
      const edges = [
        ...transition('hook', true, 1000, rand),
        ...numberTrain('0123456789', { pps, breakRatio, rand, viaHook: true }, 2000, (i) => 300 + 50 * i),
      ];
      const last = edges.reduce((m, e) => Math.max(m, e.at), 0);
      edges.push(...transition('hook', false, last + 2000, rand));
      const r = run(edges, onHookPulses);
      const want = ['offHook', ...[...'0123456789'].map((d) => `digit:${d}`), 'onHook'];
      t.same(r.seen, want, `${pps} pps, ${Math.round(breakRatio * 100)} % break${bounce ? ', bounce' : ''}`);
      trains += 10;
      correct += r.seen.filter((s, i) => s === want[i] && s.startsWith('digit')).length;
    }
  }
  t.equal(correct, trains);
  t.comment(`dialling through the hook: ${trains} trains in ${speeds.length * 2} numbers, ${correct} correct`);
});

t.test('pulsesOnHook: a slow dial with 100 ms breaks needs the flash minimum raised', async (t) => {
  const edges = [...transition('hook', true, 1000), ...pulseTrain({ digit: '3', pps: 7, breakRatio: 0.7, viaHook: true }, 2000).edges];
  t.same(run(edges, onHookPulses).seen, ['offHook', 'flash', 'flash', 'flash'], 'default 100 ms: each 100 ms break is a flash');
  t.same(run(edges, { hook: { pulsesOnHook: true, flashMinMs: 120 } }).seen, ['offHook', 'digit:3'], 'flashMinMs 120: a 3');
});

t.test('pulsesOnHook: hook bounce never yields a digit or a dial error', async (t) => {
  const glitchy = (at: number, active: boolean, widths: number[]): Edge[] => {
    const edges: Edge[] = [{ role: 'hook', active, at }];
    let x = at;
    for (const w of widths) {
      x += 4;
      edges.push({ role: 'hook', active: !active, at: x }, { role: 'hook', active, at: x + w });
      x += w;
    }
    return edges;
  };
  const cases: [name: string, edges: Edge[]][] = [
    ['sub-5 ms bounce at lift and hang-up', [...transition('hook', true, 1000, prng(1)), ...transition('hook', false, 4000, prng(2))]],
    ['10-45 ms on-hook bounces after the lift', [...glitchy(1000, true, [10, 20, 45]), ...transition('hook', false, 4000)]],
    ['a 60 ms on-hook bounce 40 ms after the lift', [...transition('hook', true, 1000), ...transition('hook', false, 1040), ...transition('hook', true, 1100), ...transition('hook', false, 4000)]],
    ['10-25 ms off-hook bounces at hang-up', [...transition('hook', true, 1000), ...glitchy(4000, false, [10, 25, 15])]],
    ['lone 12-30 ms on-hook glitches while talking', [...transition('hook', true, 1000), ...[1500, 2000, 2600].flatMap((at, i) => [...transition('hook', false, at), ...transition('hook', true, at + 12 + 9 * i)]), ...transition('hook', false, 4000)]],
    ['hang-up 100 ms after a digit', [...transition('hook', true, 1000), ...pulseTrain({ digit: '2', pps: 10, breakRatio: 0.6, viaHook: true }, 2000).edges.filter((e) => e.at < 2200), ...transition('hook', false, 2260)]],
  ];
  for (const [name, edges] of cases) {
    const r = run(edges, onHookPulses);
    t.same(r.seen, ['offHook', 'onHook'], name);
    t.equal(r.decoder.stats.rotary.rejected, 0, `${name}: no rejected train either`);
  }
});

t.test('pulsesOnHook: a flash between digits is a flash, not a digit', async (t) => {
  const first = pulseTrain({ digit: '4', pps: 10, breakRatio: 0.6, viaHook: true }, 2000);
  const second = pulseTrain({ digit: '2', pps: 10, breakRatio: 0.6, viaHook: true }, first.endMs + 1500);
  const edges = [
    ...transition('hook', true, 1000),
    ...first.edges,
    ...transition('hook', false, first.endMs + 600, prng(3)),
    ...transition('hook', true, first.endMs + 850, prng(4)),
    ...second.edges,
  ];
  t.same(run(edges, onHookPulses).seen, ['offHook', 'digit:4', 'flash', 'digit:2']);
});

t.test('hook bounce with a separate pulse contact: no digit, and dialling still works', async (t) => {
  const rand = prng(11);
  const edges = [
    ...transition('hook', true, 1000, rand),
    ...numberTrain('101', { pps: 10, breakRatio: 0.6, rand, offNormal: true }, 2000, () => 700),
    ...transition('hook', false, 6000, rand),
  ];
  t.same(run(edges).seen, ['offHook', 'digit:1', 'digit:0', 'digit:1', 'onHook']);
});

t.test('a rejected pulse train is logged and counted, not emitted', async (t) => {
  const clock = new ManualClock(0);
  const log = new MemoryLogger();
  const events: PhoneInputEvent[] = [];
  const decoder = new InputDecoder(clock, (e) => events.push(e), {}, log);
  replay(clock, pulseTrain({ digit: '5', pps: 20, breakRatio: 0.6 }, 1000).edges, (e) => decoder.input(e.role, e.active, e.at));
  t.same(events, []);
  t.equal(decoder.stats.rotary.rejected, 1);
  t.match(log.records.find((r) => r.level === 'warn'), { category: 'test.rotary', fields: { code: 'rate', reason: /^20 pps outside/ } });
});

t.test('keys from the device are digits; anything else is dropped and logged', async (t) => {
  const clock = new ManualClock(0);
  const log = new MemoryLogger();
  const events: PhoneInputEvent[] = [];
  const decoder = new InputDecoder(clock, (e) => events.push(e), {}, log);
  for (const [i, key] of ['5', '*', '#', 'a', 'D', 'x', '12', '', '!'].entries()) decoder.key(key, 100 + i);
  t.same(events, [
    { type: 'digit', digit: '5', source: 'keypad', atMs: 100 },
    { type: 'digit', digit: '*', source: 'keypad', atMs: 101 },
    { type: 'digit', digit: '#', source: 'keypad', atMs: 102 },
    { type: 'digit', digit: 'A', source: 'keypad', atMs: 103 },
    { type: 'digit', digit: 'D', source: 'keypad', atMs: 104 },
  ]);
  t.equal(decoder.stats.badKeys, 4);
  t.same(log.records.filter((r) => r.level === 'warn').map((r) => r.fields.key), ['x', '12', '', '!']);
});

t.test('the call button is debounced: one down and one up per press', async (t) => {
  const rand = prng(21);
  const edges = [
    ...transition('button', true, 1000, rand),
    ...transition('button', false, 1300, rand),
    ...transition('button', true, 2000),
    ...transition('button', false, 2010),
  ];
  const r = run(edges);
  t.same(r.events, [
    { type: 'button', pressed: true, atMs: 1000 },
    { type: 'button', pressed: false, atMs: 1300 },
  ], 'a 10 ms blip (under the 20 ms debounce) is no press');
});
