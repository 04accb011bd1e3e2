import t from 'tap';
import { ManualClock } from '../../src/runtime/clock.ts';
import { HookDecoder, type HookOptions } from '../../src/phone/hook-decoder.ts';
import { replay, transition, type Edge } from '../helpers/pulse-trains.ts';
import { prng } from '../helpers/prng.ts';

/** Runs hook edges through a fresh decoder; events as `name@atMs[:durationMs]`, with the clock time they were reported. */
function hook(edges: Edge[], options: Partial<HookOptions> = {}): { events: string[]; reportedAt: number[]; decoder: HookDecoder } {
  const clock = new ManualClock(0);
  const events: string[] = [];
  const reportedAt: number[] = [];
  const push = (e: string): void => {
    events.push(e);
    reportedAt.push(clock.now());
  };
  const decoder = new HookDecoder(
    clock,
    {
      offHook: (at) => push(`offHook@${at}`),
      onHook: (at) => push(`onHook@${at}`),
      flash: (at, d) => push(`flash@${at}:${d}`),
    },
    options,
  );
  replay(clock, edges, (e) => decoder.input(e.active, e.at));
  return { events, reportedAt, decoder };
}

/** Lift at `at` with bounce; the glitches (back on-hook) last `glitchMs` each. */
function bouncyLift(at: number, glitchMs: number[], gapMs = 3): Edge[] {
  const edges: Edge[] = [{ role: 'hook', active: true, at }];
  let x = at;
  for (const g of glitchMs) {
    x += gapMs;
    edges.push({ role: 'hook', active: false, at: x }, { role: 'hook', active: true, at: x + g });
    x += g;
  }
  return edges;
}

function bouncyHangUp(at: number, glitchMs: number[], gapMs = 3): Edge[] {
  return bouncyLift(at, glitchMs, gapMs).map((e) => ({ ...e, active: !e.active }));
}

t.test('hook bounce at lift and hang-up gives exactly one offHook and one onHook', async (t) => {
  const cases: [name: string, lift: Edge[], hangUp: Edge[]][] = [
    ['clean', transition('hook', true, 1000), transition('hook', false, 5000)],
    ['sub-5 ms glitches', transition('hook', true, 1000, prng(1)), transition('hook', false, 5000, prng(2))],
    ['glitches of 5-25 ms, within the 30 ms debounce', bouncyLift(1000, [5, 12, 25]), bouncyHangUp(5000, [8, 20, 25])],
    ['a 60 ms on-hook bounce 50 ms after the lift', bouncyLift(1000, [60], 50), bouncyHangUp(5000, [4, 2])],
    ['a 250 ms on-hook bounce 50 ms after the lift (within the settle time, so no flash)', bouncyLift(1000, [250], 50), bouncyHangUp(5000, [4, 2])],
  ];
  for (const [name, lift, hangUp] of cases) {
    const r = hook([...lift, ...hangUp]);
    t.same(r.events, ['offHook@1000', 'onHook@5000'], name);
  }
});

t.test('short lifts while on-hook are not an off-hook', async (t) => {
  for (const ms of [3, 12, 29]) {
    const r = hook([...transition('hook', true, 1000), ...transition('hook', false, 1000 + ms)]);
    t.same(r.events, [], `${ms} ms off-hook`);
  }
  t.same(hook([...transition('hook', true, 1000), ...transition('hook', false, 1030)]).events, ['offHook@1000', 'onHook@1030'], '30 ms is a lift');
});

t.test('flash timing boundaries (on-hook 100-600 ms)', async (t) => {
  const cases: [onHookMs: number, expected: string[]][] = [
    [99, ['offHook@1000']],
    [100, ['offHook@1000', 'flash@2000:100']],
    [350, ['offHook@1000', 'flash@2000:350']],
    [600, ['offHook@1000', 'flash@2000:600']],
    [601, ['offHook@1000', 'onHook@2000', 'offHook@2601']],
  ];
  for (const bounce of [false, true]) {
    for (const [ms, expected] of cases) {
      const rand = bounce ? prng(ms) : undefined;
      const edges = [...transition('hook', true, 1000, rand), ...transition('hook', false, 2000, rand), ...transition('hook', true, 2000 + ms, rand)];
      const r = hook(edges);
      t.same(r.events, expected, `${ms} ms on-hook${bounce ? ' with bounce' : ''}`);
      if (ms === 99) t.equal(r.decoder.stats.shortBreaks, 1, '99 ms counted as a short break');
    }
  }
});

t.test('the flash window is configurable', async (t) => {
  const options = { flashMinMs: 300, flashMaxMs: 1100 };
  const cases: [onHookMs: number, expected: string[]][] = [
    [200, ['offHook@1000']],
    [300, ['offHook@1000', 'flash@2000:300']],
    [1000, ['offHook@1000', 'flash@2000:1000']],
    [1200, ['offHook@1000', 'onHook@2000', 'offHook@3200']],
  ];
  for (const [ms, expected] of cases) {
    t.same(hook([...transition('hook', true, 1000), ...transition('hook', false, 2000), ...transition('hook', true, 2000 + ms)], options).events, expected, `${ms} ms`);
  }
  t.throws(() => hook([], { flashMinMs: 700, flashMaxMs: 600 }), /flash window 700-600 ms is empty/);
});

t.test('onHook is reported once the on-hook outlasts the flash maximum (plus the debounce)', async (t) => {
  const r = hook([...transition('hook', true, 1000), ...transition('hook', false, 2000)]);
  t.same(r.events, ['offHook@1000', 'onHook@2000']);
  t.same(r.reportedAt, [1030, 2630]);
});

t.test('a flash right after the lift is bounce', async (t) => {
  const r = hook([...transition('hook', true, 1000), ...transition('hook', false, 1100), ...transition('hook', true, 1300)]);
  t.same(r.events, ['offHook@1000']);
  t.equal(r.decoder.stats.bounces, 1);
});

t.test('duplicate edges are ignored', async (t) => {
  const edges: Edge[] = [1000, 1001, 2000, 2003, 2200, 2210].map((at, i) => ({ role: 'hook', active: [true, true, false, false, true, true][i]!, at }));
  const r = hook(edges);
  t.same(r.events, ['offHook@1000', 'flash@2000:200']);
  t.equal(r.decoder.stats.duplicateEdges, 3);
});
