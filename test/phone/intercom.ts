import t from 'tap';
import { ConfigError } from '../../src/config/config.ts';
import type { HardwareBackend, OutputRole, OutputState } from '../../src/hardware/types.ts';
import type { ToneName } from '../../src/media/tone/tone-sets.ts';
import { Intercom, INTERCOM_INDICATIONS, withIntercomDefaults, type IntercomConfigInput, type IntercomState } from '../../src/phone/intercom.ts';
import type { LineEvents, PhoneLine } from '../../src/phone/types.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';

/** A line that records what the intercom asks of it, stamped with the clock. */
class FakeLine implements PhoneLine {
  calls: string[] = [];
  events!: LineEvents;
  /** Numbers whose dial is refused before a call exists. */
  refuse = new Set<string>();
  /** What hangup does: report `ended` at once, or leave it to the test. */
  endOnHangup: 'sync' | 'never' = 'sync';
  answerable = true;
  constructor(private readonly clock: ManualClock) {}
  private rec(s: string): void {
    this.calls.push(`${s} @${this.clock.now()}`);
  }
  async dial(number: string): Promise<{ ok: true } | { ok: false; status: number; reason: string }> {
    this.rec(`dial ${number}`);
    return this.refuse.has(number) ? { ok: false, status: 404, reason: 'Not Found' } : { ok: true };
  }
  answer(): boolean {
    this.rec('answer');
    return this.answerable;
  }
  hangup(): void {
    this.rec('hangup');
    if (this.endOnHangup === 'sync') this.events.ended('local hangup', undefined, 'c1');
  }
  hold(): boolean {
    this.rec('hold');
    return false;
  }
  resume(): boolean {
    this.rec('resume');
    return false;
  }
  sendDigits(digits: string): void {
    this.rec(`send ${digits}`);
  }
  playTone(name: ToneName | undefined): void {
    this.rec(`tone ${name ?? 'off'}`);
  }
  listen(events: LineEvents): void {
    this.events = events;
  }
}

/** Hardware that records pulses and output writes and keeps the current output states. */
class FakeHardware implements HardwareBackend {
  readonly name = 'fake';
  pulses: string[] = [];
  writes: string[] = [];
  outputs = new Map<OutputRole, OutputState>();
  constructor(private readonly clock: ManualClock) {}
  async start(): Promise<void> {}
  setOutput(role: OutputRole, state: OutputState): void {
    this.outputs.set(role, state);
    this.writes.push(`${role} ${show(state)}`);
  }
  pulse(role: OutputRole, ms: number): void {
    this.pulses.push(`${role} ${ms} @${this.clock.now()}`);
  }
  async stop(): Promise<void> {}
  leds(): string {
    return `green ${show(this.outputs.get('ledGreen'))}, red ${show(this.outputs.get('ledRed'))}`;
  }
}

function show(s: OutputState | undefined): string {
  return !s ? 'unset' : s.mode === 'blink' ? `blink ${s.onMs}/${s.offMs}` : s.mode;
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function rig(config: IntercomConfigInput, tweak?: (line: FakeLine) => void) {
  const clock = new ManualClock();
  const line = new FakeLine(clock);
  tweak?.(line);
  const hardware = new FakeHardware(clock);
  const log = new MemoryLogger();
  const intercom = new Intercom({ config: withIntercomDefaults(config), line, hardware, clock, log });
  intercom.start();
  return { clock, line, hardware, log, intercom };
}

type Act =
  | { press: true }
  | { release: true }
  | { wait: number }
  | { incoming: string }
  | { ringing: true }
  | { connected: true }
  | { ended: string; status?: number }
  | { digits: string };

/** One step: an action, the line calls it caused, and the state after it. */
type Step = [Act, string[], IntercomState];

async function act(r: ReturnType<typeof rig>, a: Act): Promise<void> {
  if ('press' in a) r.intercom.input({ type: 'button', pressed: true });
  else if ('release' in a) r.intercom.input({ type: 'button', pressed: false });
  else if ('wait' in a) r.clock.advance(a.wait);
  else if ('incoming' in a) r.line.events.incoming({ user: a.incoming }, 'c1');
  else if ('ringing' in a) r.line.events.ringing();
  else if ('connected' in a) r.line.events.connected('c1');
  else if ('ended' in a) r.line.events.ended(a.ended, a.status, 'c1');
  else for (const digit of a.digits) r.line.events.digit({ digit, durationMs: 100, source: 'rfc4733' });
  await flush();
}

const SCENARIOS: { name: string; config: IntercomConfigInput; tweak?: (l: FakeLine) => void; steps: Step[] }[] = [
  {
    name: 'sequence: each target gets its timeout, a busy target is skipped, the first answer wins',
    config: { targets: ['101', '102', { number: '103', timeoutMs: 5_000 }, '104'] },
    steps: [
      [{ press: true }, ['dial 101 @0'], 'calling'],
      [{ release: true }, [], 'calling'],
      [{ ringing: true }, [], 'calling'],
      [{ wait: 19_999 }, [], 'calling'],
      [{ wait: 1 }, ['hangup @20000', 'dial 102 @20000'], 'calling'],
      [{ wait: 1_000 }, [], 'calling'],
      [{ ended: 'busy', status: 486 }, ['dial 103 @21000'], 'calling'],
      [{ wait: 4_999 }, [], 'calling'],
      [{ connected: true }, [], 'connected'],
      [{ wait: 120_000 }, [], 'connected'],
      [{ press: true }, [], 'connected'],
      [{ ended: 'remote hangup' }, [], 'idle'],
    ],
  },
  {
    name: 'sequence: nobody answers, the station goes back to idle after the last target',
    config: { targets: ['101', '102'], targetTimeoutMs: 15_000 },
    steps: [
      [{ press: true }, ['dial 101 @0'], 'calling'],
      [{ wait: 15_000 }, ['hangup @15000', 'dial 102 @15000'], 'calling'],
      [{ wait: 15_000 }, ['hangup @30000'], 'idle'],
      [{ wait: 60_000 }, [], 'idle'],
      [{ press: true }, ['dial 101 @90000'], 'calling'],
    ],
  },
  {
    name: 'a dial refused before a call exists moves to the next target at once',
    config: { targets: ['101', '102', '103'] },
    tweak: (l) => {
      l.refuse.add('101');
      l.refuse.add('102');
    },
    steps: [
      [{ press: true }, ['dial 101 @0', 'dial 102 @0', 'dial 103 @0'], 'calling'],
      [{ connected: true }, [], 'connected'],
    ],
  },
  {
    name: 'the next target is dialled only once the line reports the end of the previous call',
    config: { targets: ['101', '102'] },
    tweak: (l) => (l.endOnHangup = 'never'),
    steps: [
      [{ press: true }, ['dial 101 @0'], 'calling'],
      [{ wait: 20_000 }, ['hangup @20000'], 'calling'],
      [{ press: true }, [], 'calling'],
      [{ wait: 300 }, [], 'calling'],
      [{ ended: 'local hangup' }, ['dial 102 @20300'], 'calling'],
    ],
  },
  {
    name: 'a line that never reports the end is given up on after 2 s',
    config: { targets: ['101', '102'] },
    tweak: (l) => (l.endOnHangup = 'never'),
    steps: [
      [{ press: true }, ['dial 101 @0'], 'calling'],
      [{ wait: 20_000 }, ['hangup @20000'], 'calling'],
      [{ wait: 2_000 }, ['dial 102 @22000'], 'calling'],
    ],
  },
  {
    name: 'parallel dials the group number with the group timeout',
    config: { targets: ['101', '102'], mode: 'parallel', groupNumber: '600', groupTimeoutMs: 25_000 },
    steps: [
      [{ press: true }, ['dial 600 @0'], 'calling'],
      [{ wait: 25_000 }, ['hangup @25000'], 'idle'],
    ],
  },
  {
    name: 'parallel without a group number calls in sequence',
    config: { targets: ['101', '102'], mode: 'parallel' },
    steps: [
      [{ press: true }, ['dial 101 @0'], 'calling'],
      [{ wait: 20_000 }, ['hangup @20000', 'dial 102 @20000'], 'calling'],
    ],
  },
  {
    name: 'the button hangs up while calling and while connected when so configured',
    config: { targets: ['101', '102'], buttonWhileBusy: 'hangup' },
    steps: [
      [{ press: true }, ['dial 101 @0'], 'calling'],
      [{ wait: 5_000 }, [], 'calling'],
      [{ press: true }, ['hangup @5000'], 'idle'],
      [{ wait: 60_000 }, [], 'idle'],
      [{ press: true }, ['dial 101 @65000'], 'calling'],
      [{ connected: true }, [], 'connected'],
      [{ press: true }, ['hangup @65000'], 'idle'],
    ],
  },
  {
    name: 'a whitelisted caller is answered after the delay with a 1 s announcement beep',
    config: { callerWhitelist: ['alice', '101'], autoAnswerDelayMs: 2_000 },
    steps: [
      [{ incoming: 'alice' }, [], 'ringing'],
      [{ wait: 1_999 }, [], 'ringing'],
      [{ wait: 1 }, ['answer @2000', 'tone callWaiting @2000'], 'connected'],
      [{ connected: true }, [], 'connected'],
      [{ wait: 999 }, [], 'connected'],
      [{ wait: 1 }, ['tone off @3000'], 'connected'],
      [{ ended: 'remote hangup' }, [], 'idle'],
    ],
  },
  {
    name: 'a delay of 0 answers on the next timer turn; a hang-up during the beep stops it',
    config: { autoAnswerDelayMs: 0 },
    steps: [
      [{ incoming: 'anyone' }, [], 'ringing'],
      [{ wait: 0 }, ['answer @0', 'tone callWaiting @0'], 'connected'],
      [{ wait: 500 }, [], 'connected'],
      [{ ended: 'remote hangup' }, ['tone off @500'], 'idle'],
      [{ wait: 5_000 }, [], 'idle'],
    ],
  },
  {
    name: 'a caller not on the whitelist is refused',
    config: { callerWhitelist: ['alice'] },
    steps: [
      [{ incoming: 'eve' }, ['hangup @0'], 'idle'],
      [{ wait: 10_000 }, [], 'idle'],
    ],
  },
  {
    name: 'a caller who gives up while ringing is not answered',
    config: { autoAnswerDelayMs: 3_000 },
    steps: [
      [{ incoming: 'bob' }, [], 'ringing'],
      [{ wait: 1_000 }, [], 'ringing'],
      [{ ended: 'cancelled', status: 487 }, [], 'idle'],
      [{ wait: 10_000 }, [], 'idle'],
    ],
  },
  {
    name: 'without auto-answer the button answers',
    config: { autoAnswer: false, announceMs: 0 },
    steps: [
      [{ incoming: 'bob' }, [], 'ringing'],
      [{ wait: 60_000 }, [], 'ringing'],
      [{ press: true }, ['answer @60000'], 'connected'],
    ],
  },
  {
    name: 'an answer the line cannot make leaves the station idle',
    config: { autoAnswerDelayMs: 1_000, announceMs: 0 },
    tweak: (l) => (l.answerable = false),
    steps: [
      [{ incoming: 'bob' }, [], 'ringing'],
      [{ wait: 1_000 }, ['answer @1000'], 'idle'],
    ],
  },
  {
    name: 'an incoming call while calling out is left to the line',
    config: { targets: ['101'] },
    steps: [
      [{ press: true }, ['dial 101 @0'], 'calling'],
      [{ incoming: 'bob' }, [], 'calling'],
      [{ wait: 5_000 }, [], 'calling'],
    ],
  },
];

t.test('line calls for event sequences', async (t) => {
  for (const s of SCENARIOS) {
    const r = rig(s.config, s.tweak);
    const seen: string[][] = [];
    const want: string[][] = [];
    for (const [a, calls, state] of s.steps) {
      const before = r.line.calls.length;
      await act(r, a);
      seen.push([...r.line.calls.slice(before), r.intercom.state]);
      want.push([...calls, state]);
    }
    t.same(seen, want, s.name);
  }
});

t.test('door relay from DTMF codes', async (t) => {
  const table: { name: string; config: IntercomConfigInput; setup: Act[]; digits: string; pulses: string[]; log?: RegExp }[] = [
    { name: 'code 1234 pulses the relay 3 s exactly once', config: {}, setup: [{ incoming: 'alice' }, { wait: 1_000 }], digits: '1234', pulses: ['relay 3000 @1000'] },
    { name: 'a wrong code does not pulse', config: {}, setup: [{ incoming: 'alice' }, { wait: 1_000 }], digits: '4321', pulses: [] },
    { name: 'after three wrong codes the right one is refused', config: {}, setup: [{ incoming: 'eve' }, { wait: 1_000 }], digits: '000011112222' + '1234', pulses: [], log: /door code locked out/ },
    { name: 'the relay time is configurable', config: { relayMs: 5_000 }, setup: [{ incoming: 'alice' }, { wait: 1_000 }], digits: '1234', pulses: ['relay 5000 @1000'] },
    { name: 'a code from the target that answered an outgoing call', config: { targets: ['101'] }, setup: [{ press: true }, { wait: 4_000 }, { connected: true }], digits: '1234', pulses: ['relay 3000 @4000'] },
    { name: 'a per-caller code', config: { door: { code: '1234', perCaller: { '101': '55' } } }, setup: [{ incoming: '101' }, { wait: 1_000 }], digits: '1234' + '55', pulses: ['relay 3000 @1000'] },
    { name: 'a caller not allowed to open', config: { door: { code: '1234', allowedCallers: ['alice'] } }, setup: [{ incoming: 'bob' }, { wait: 1_000 }], digits: '1234', pulses: [] },
    { name: 'digits before the call is answered are ignored', config: { autoAnswerDelayMs: 2_000 }, setup: [{ incoming: 'alice' }], digits: '1234', pulses: [] },
    { name: 'two right codes pulse twice', config: {}, setup: [{ incoming: 'alice' }, { wait: 1_000 }], digits: '12341234', pulses: ['relay 3000 @1000', 'relay 3000 @1000'] },
  ];
  for (const c of table) {
    const r = rig({ ...c.config, door: { code: '1234', ...c.config.door } });
    for (const a of c.setup) await act(r, a);
    await act(r, { digits: c.digits });
    t.same(r.hardware.pulses, c.pulses, c.name);
    const opened = r.log.records.filter((x) => x.msg === 'door opened');
    t.equal(opened.length, c.pulses.length, `${c.name}: one log line per opening`);
    for (const o of opened) t.match(o, { level: 'info', category: 'test.door', fields: { caller: String, at: /^\d{4}-\d\d-\d\dT[\d:.]+Z$/ } }, `${c.name}: caller and time logged`);
    if (c.log) t.ok(r.log.records.some((x) => c.log!.test(x.msg)), `${c.name}: logged`);
  }
});

t.test('LEDs follow the state table', async (t) => {
  const r = rig({ targets: ['101'], door: { code: '1234' } });
  const table: [Act | undefined, string][] = [
    [undefined, 'green on, red off'],
    [{ press: true }, 'green blink 500/500, red off'],
    [{ connected: true }, 'green off, red on'],
    [{ digits: '1234' }, 'green blink 100/100, red on'],
    [{ wait: 2_999 }, 'green blink 100/100, red on'],
    [{ wait: 1 }, 'green off, red on'],
    [{ ended: 'remote hangup' }, 'green on, red off'],
    [{ incoming: 'alice' }, 'green off, red blink 500/500'],
    [{ wait: 1_000 }, 'green off, red on'],
    [{ digits: '1234' }, 'green blink 100/100, red on'],
    [{ ended: 'remote hangup' }, 'green blink 100/100, red off'],
    [{ wait: 3_000 }, 'green on, red off'],
  ];
  for (const [a, leds] of table) {
    if (a) await act(r, a);
    t.equal(r.hardware.leds(), leds, a ? `after ${JSON.stringify(a)}` : 'at start');
  }
  const writes = r.hardware.writes.length;
  await act(r, { release: true });
  await act(r, { wait: 10_000 });
  t.equal(r.hardware.writes.length, writes, 'an unchanged state writes nothing');
  t.same(Object.keys(INTERCOM_INDICATIONS).sort(), ['calling', 'connected', 'doorOpen', 'idle', 'ringing'], 'every indication has an entry');
});

t.test('stop hangs up, cancels timers and turns the LEDs off', async (t) => {
  const r = rig({ targets: ['101'] });
  await act(r, { press: true });
  t.same(r.clock.pending(), ['intercom-target']);
  r.intercom.stop();
  t.same(r.clock.pending(), [], 'no timer left');
  t.equal(r.line.calls.at(-1), 'hangup @0');
  t.equal(r.hardware.leds(), 'green off, red off');
  t.equal(r.intercom.state, 'idle');
  const calls = r.line.calls.length;
  await act(r, { incoming: 'alice' });
  await act(r, { press: true });
  await act(r, { wait: 10_000 });
  t.equal(r.line.calls.length, calls, 'events after stop are ignored');
  t.equal(r.hardware.leds(), 'green off, red off', 'LEDs stay off after stop');
});

t.test('refreshOutputs writes the LEDs again', async (t) => {
  const r = rig({ targets: ['101'] });
  await act(r, { press: true });
  const before = r.hardware.writes.length;
  r.intercom.refreshOutputs();
  t.same(r.hardware.writes.slice(before), ['ledGreen blink 500/500', 'ledRed off'], 'both LEDs rewritten with the current state');
});

t.test('a bad config is one ConfigError listing every problem', async (t) => {
  const table: { name: string; config: IntercomConfigInput; problems: RegExp[] }[] = [
    { name: 'seven targets', config: { targets: ['1', '2', '3', '4', '5', '6', '7'] }, problems: [/^intercom\.targets holds at most 6/] },
    { name: 'auto-answer delay over 5 s', config: { autoAnswerDelayMs: 5_001 }, problems: [/^intercom\.autoAnswerDelayMs must be 0-5000/] },
    { name: 'a target that is not a number', config: { targets: ['10 1'] }, problems: [/^intercom\.targets\[0\]/] },
    { name: 'a target timeout too short', config: { targets: [{ number: '101', timeoutMs: 10 }] }, problems: [/^intercom\.targets\[0\]\.timeoutMs/] },
    { name: 'a bad code and a bad relay time', config: { relayMs: 0, door: { code: '123456789' } }, problems: [/^intercom\.relayMs/, /^intercom\.door\.code/] },
  ];
  for (const c of table) {
    const clock = new ManualClock();
    let error: unknown;
    try {
      new Intercom({ config: withIntercomDefaults(c.config), line: new FakeLine(clock), hardware: new FakeHardware(clock), clock, log: new MemoryLogger() });
    } catch (e) {
      error = e;
    }
    t.ok(error instanceof ConfigError, `${c.name}: ConfigError`);
    t.match((error as ConfigError).problems, c.problems, c.name);
    t.equal((error as ConfigError).problems.length, c.problems.length, `${c.name}: nothing else`);
  }
  const ok = withIntercomDefaults({ targets: ['101', '102', '103', '104', '105', '106'] });
  t.equal(ok.targetTimeoutMs, 20_000, 'default target timeout 20 s');
  t.equal(ok.relayMs, 3_000, 'default relay 3 s');
  t.equal(ok.door.maxWrong, 3, 'default 3 wrong codes');
  t.equal(ok.door.lockoutMs, 300_000, 'default lockout 5 min');
});

t.test('parallel without a group number warns once at start', async (t) => {
  const r = rig({ targets: ['101'], mode: 'parallel' });
  t.equal(r.log.records.filter((x) => x.level === 'warn' && /groupNumber/.test(x.msg)).length, 1);
});

t.test('the ringer rings while an incoming call waits, and stops when it is answered or gone', async (t) => {
  const cases: { name: string; config: IntercomConfigInput; acts: Act[]; rings: string[] }[] = [
    { name: 'auto-answer after the delay', config: { autoAnswerDelayMs: 2000 }, acts: [{ incoming: '200' }, { wait: 2000 }, { connected: true }], rings: ['start @0', 'stop @2000'] },
    { name: 'the caller gives up', config: { autoAnswer: false }, acts: [{ incoming: '200' }, { wait: 5000 }, { ended: 'cancelled', status: 487 }], rings: ['start @0', 'stop @5000'] },
    { name: 'the button answers', config: { autoAnswer: false }, acts: [{ incoming: '200' }, { wait: 1000 }, { press: true }, { release: true }], rings: ['start @0', 'stop @1000'] },
    { name: 'a refused caller never rings', config: { callerWhitelist: ['300'] }, acts: [{ incoming: '200' }], rings: [] },
  ];
  for (const c of cases) {
    const clock = new ManualClock();
    const line = new FakeLine(clock);
    const rings: string[] = [];
    const ringer = { start: () => rings.push(`start @${clock.now()}`), stop: () => rings.push(`stop @${clock.now()}`) };
    const intercom = new Intercom({ config: withIntercomDefaults(c.config), line, hardware: new FakeHardware(clock), clock, log: new MemoryLogger(), ringer });
    intercom.start();
    for (const a of c.acts) {
      if ('wait' in a) clock.advance(a.wait);
      else if ('incoming' in a) line.events.incoming({ user: a.incoming }, 'c1');
      else if ('connected' in a) line.events.connected('c1');
      else if ('ended' in a) line.events.ended(a.ended, a.status, 'c1');
      else if ('press' in a) intercom.input({ type: 'button', pressed: true });
      else if ('release' in a) intercom.input({ type: 'button', pressed: false });
      await flush();
    }
    t.same(rings.filter((r, i) => i === 0 || r !== rings[i - 1]).slice(0, 2), c.rings, c.name);
  }
});
