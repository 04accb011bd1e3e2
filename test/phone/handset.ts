import t, { type Test } from 'tap';
import type { HardwareBackend, OutputRole, OutputState } from '../../src/hardware/types.ts';
import type { ToneName } from '../../src/media/tone/tone-sets.ts';
import { DigitMap } from '../../src/phone/digit-map.ts';
import { Handset, HANDSET_DEFAULTS, resolveHandsetConfig, type HandsetConfig, type HandsetState, type PhoneEvent } from '../../src/phone/handset.ts';
import type { RingerDrive } from '../../src/phone/ringer.ts';
import type { LineEvents, PhoneLine } from '../../src/phone/types.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';

type DialResult = Awaited<ReturnType<PhoneLine['dial']>>;
type DialBehaviour = 'ok' | 'pending' | 'reject' | { status: number };

/** Records every call the handset makes on the line and the board, with the time, in one list. */
class Recorder {
  readonly log: string[] = [];
  constructor(private readonly clock: ManualClock) {}
  add(entry: string): void {
    this.log.push(`${this.clock.now()} ${entry}`);
  }
}

class FakeLine implements PhoneLine {
  events: LineEvents | undefined;
  answerResult = true;
  pendingDial: ((result: DialResult) => void) | undefined;
  constructor(
    private readonly rec: Recorder,
    private readonly behaviour: DialBehaviour,
  ) {}
  dial(number: string): Promise<DialResult> {
    this.rec.add(`dial ${number}`);
    const b = this.behaviour;
    if (b === 'ok') return Promise.resolve({ ok: true });
    if (b === 'reject') return Promise.reject(new Error('no route'));
    if (b === 'pending') return new Promise((resolve) => (this.pendingDial = resolve));
    return Promise.resolve({ ok: false, status: b.status, reason: 'refused' });
  }
  holdResult = true;
  resumeResult = true;
  answer(call?: string): boolean {
    this.rec.add(call === undefined ? 'answer' : `answer ${call}`);
    return this.answerResult;
  }
  hangup(call?: string): void {
    this.rec.add(call === undefined ? 'hangup' : `hangup ${call}`);
  }
  hold(): boolean {
    this.rec.add('hold');
    return this.holdResult;
  }
  resume(): boolean {
    this.rec.add('resume');
    return this.resumeResult;
  }
  sendDigits(digits: string): void {
    this.rec.add(`send ${digits}`);
  }
  playTone(name: ToneName | undefined): void {
    this.rec.add(`tone ${name ?? '-'}`);
  }
  listen(events: LineEvents): void {
    if (this.events) throw new Error('listen called twice');
    this.events = events;
  }
}

/** A board with some output roles (others ignored), optionally ringing by itself. */
class FakeBoard implements Pick<HardwareBackend, 'setOutput' | 'ring'> {
  ring?: (cadence: readonly number[] | undefined) => boolean;
  constructor(
    private readonly rec: Recorder,
    private readonly roles: readonly OutputRole[],
    ringsItself?: boolean,
  ) {
    if (ringsItself !== undefined) {
      this.ring = (cadence) => {
        this.rec.add(`ring ${cadence ? cadence.join('/') : 'off'}`);
        return ringsItself;
      };
    }
  }
  setOutput(role: OutputRole, state: OutputState): void {
    if (this.roles.includes(role)) this.rec.add(`out ${role} ${state.mode === 'blink' ? `blink ${state.onMs}/${state.offMs}` : state.mode}`);
  }
}

const SLIC: OutputRole[] = ['ringMode', 'forwardReverse'];
const BELL: OutputRole[] = ['bell'];

const DIGIT_MAP = new DigitMap({
  rules: [{ match: '0[1-9]x.' }, { match: '*43' }, { match: '*21*x.#' }],
  extensions: ['101', '102', '1234'],
  emergencyNumbers: ['112', '911'],
});

interface Scenario {
  name: string;
  steps: string[];
  log: string[];
  state: HandsetState;
  config?: Partial<HandsetConfig>;
  board?: { roles: OutputRole[]; ringsItself?: boolean; drive?: RingerDrive };
  dial?: DialBehaviour;
  answer?: boolean;
  hold?: boolean;
  resume?: boolean;
  digitMap?: DigitMap;
}

/**
 * Steps: `off`, `on`, `flash`, `button`, `keys 0#1` (one digit event per key), `event <json>`,
 * `wait <ms>`, and line events `incoming <user> [call]`, `waiting <user> <call>`, `ringing`,
 * `connected [call]`, `ended <cause> [status|-] [call]`, `far-digit <d>`, `resolve` (a pending
 * dial() resolves ok). Calls are named `c1` unless a step names one.
 */
async function run(s: Scenario) {
  const clock = new ManualClock();
  const rec = new Recorder(clock);
  const line = new FakeLine(rec, s.dial ?? 'ok');
  line.answerResult = s.answer ?? true;
  line.holdResult = s.hold ?? true;
  line.resumeResult = s.resume ?? true;
  const board = new FakeBoard(rec, s.board?.roles ?? SLIC, s.board?.ringsItself);
  const logger = new MemoryLogger();
  const handset = new Handset({
    line,
    hardware: board,
    digitMap: s.digitMap ?? DIGIT_MAP,
    clock,
    logger,
    config: resolveHandsetConfig(s.config ?? {}),
    ...(s.board?.drive ? { ringerDrive: s.board.drive } : {}),
  });
  const events = line.events!;
  const input = (e: PhoneEvent) => handset.input(e);
  for (const step of s.steps) {
    const [verb, ...args] = step.split(' ');
    const arg = args.join(' ');
    if (verb === 'off') input({ type: 'offHook' });
    else if (verb === 'on') input({ type: 'onHook' });
    else if (verb === 'flash') input({ type: 'flash' });
    else if (verb === 'button') input({ type: 'button' });
    else if (verb === 'keys') for (const digit of arg) input({ type: 'digit', digit });
    else if (verb === 'event') input(JSON.parse(arg) as PhoneEvent);
    else if (verb === 'wait') clock.advance(Number(arg));
    else if (verb === 'incoming') events.incoming({ user: args[0]! }, args[1] ?? 'c1');
    else if (verb === 'waiting') events.waiting!({ user: args[0]! }, args[1]!);
    else if (verb === 'ringing') events.ringing();
    else if (verb === 'connected') events.connected(args[0] ?? 'c1');
    else if (verb === 'ended') events.ended(args[0]!, args[1] === undefined || args[1] === '-' ? undefined : Number(args[1]), args[2] ?? 'c1');
    else if (verb === 'far-digit') events.digit({ digit: arg, durationMs: 100, source: 'rfc4733' });
    else if (verb === 'resolve') line.pendingDial!({ ok: true });
    else throw new Error(`bad step ${step}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { handset, rec, clock, logger };
}

async function table(t: Test, scenarios: Scenario[]): Promise<void> {
  for (const s of scenarios) {
    const { handset, rec } = await run(s);
    t.same(rec.log, s.log, `${s.name}: line and board calls`);
    t.equal(handset.state, s.state, `${s.name}: state`);
  }
}

t.test('config defaults and validation', async (t) => {
  t.same(resolveHandsetConfig(), { ...HANDSET_DEFAULTS });
  t.same(resolveHandsetConfig({}), { interDigitMs: 4000, offHookWarningMs: 45_000, failureToneMs: 30_000, ringFrequencyHz: 20, country: 'us' });
  t.equal(resolveHandsetConfig({ country: 'DE' }).ringFrequencyHz, 25, 'Europe rings at 25 Hz');
  t.equal(resolveHandsetConfig({ country: 'DE' }).country, 'de');
  t.equal(resolveHandsetConfig({ country: 'gb', ringFrequencyHz: 20 }).ringFrequencyHz, 20, 'explicit frequency wins');
  t.equal(resolveHandsetConfig({ hotline: '*43' }).hotline, '*43');
  const bad: [Partial<HandsetConfig>, RegExp][] = [
    [{ interDigitMs: 0 }, /interDigitMs must be a positive number \(got 0\)/],
    [{ offHookWarningMs: -1 }, /offHookWarningMs/],
    [{ failureToneMs: Number.NaN }, /failureToneMs/],
    [{ ringFrequencyHz: 0 }, /ringFrequencyHz/],
    [{ hotline: '' }, /hotline must be 1 to 64 digits/],
    [{ hotline: '12a' }, /hotline must be 1 to 64 digits, \*, # or \+ \(got "12a"\)/],
  ];
  for (const [input, message] of bad) t.throws(() => resolveHandsetConfig(input), { message }, JSON.stringify(input));
});

t.test('lifting and dialling', async (t) => {
  await table(t, [
    { name: 'dial tone on lift', steps: ['off'], log: ['0 tone dial'], state: 'dialTone' },
    {
      name: 'a complete extension is dialled at once; the first digit stops the dial tone',
      steps: ['off', 'wait 1000', 'keys 1', 'wait 500', 'keys 01'],
      log: ['0 tone dial', '1000 tone -', '1500 dial 101'],
      state: 'calling',
    },
    { name: 'an emergency number is dialled at once', steps: ['off', 'keys 911'], log: ['0 tone dial', '0 tone -', '0 dial 911'], state: 'calling' },
    { name: 'a star code is dialled at once', steps: ['off', 'keys *43'], log: ['0 tone dial', '0 tone -', '0 dial *43'], state: 'calling' },
    {
      name: 'an open-ended number is dialled at the inter-digit timeout (4 s after the last digit)',
      steps: ['off', 'keys 030', 'wait 2000', 'keys 12', 'wait 3999', 'wait 1'],
      log: ['0 tone dial', '0 tone -', '6000 dial 03012'],
      state: 'calling',
    },
    {
      name: 'the inter-digit timeout is configurable',
      config: { interDigitMs: 2500 },
      steps: ['off', 'keys 01', 'wait 2500'],
      log: ['0 tone dial', '0 tone -', '2500 dial 01'],
      state: 'calling',
    },
    {
      name: 'a prefix that matches nothing yet is unobtainable at the timeout',
      steps: ['off', 'keys 12', 'wait 4000'],
      log: ['0 tone dial', '0 tone -', '4000 tone congestion'],
      state: 'failed',
    },
    { name: '# sends an open-ended number at once', steps: ['off', 'keys 0301#'], log: ['0 tone dial', '0 tone -', '0 dial 0301'], state: 'calling' },
    { name: '# sends even a prefix (the dial plan will refuse it)', steps: ['off', 'keys 12#'], log: ['0 tone dial', '0 tone -', '0 dial 12'], state: 'calling' },
    { name: '# inside a number the dial plan knows is a digit', steps: ['off', 'keys *21*0301#'], log: ['0 tone dial', '0 tone -', '0 dial *21*0301#'], state: 'calling' },
    {
      name: '# is the send key even with a regex rule in the plan',
      digitMap: new DigitMap({ rules: [{ match: '/0[0-9]+/' }] }),
      steps: ['off', 'keys 0301#'],
      log: ['0 tone dial', '0 tone -', '0 dial 0301'],
      state: 'calling',
    },
    {
      name: 'with a regex rule a number is dialled at the timeout when it matches',
      digitMap: new DigitMap({ rules: [{ match: '/0[0-9]+/' }] }),
      steps: ['off', 'keys 0301', 'wait 4000'],
      log: ['0 tone dial', '0 tone -', '4000 dial 0301'],
      state: 'calling',
    },
    { name: '# with nothing dialled is ignored', steps: ['off', 'keys #', 'wait 1000'], log: ['0 tone dial'], state: 'dialTone' },
    {
      name: 'a number no pattern can match is unobtainable at once',
      steps: ['off', 'wait 300', 'keys 5'],
      log: ['0 tone dial', '300 tone -', '300 tone congestion'],
      state: 'failed',
    },
    { name: 'a digit that cannot be dialled is ignored', steps: ['off', 'event {"type":"digit","digit":"x"}', 'event {"type":"digit"}'], log: ['0 tone dial'], state: 'dialTone' },
    { name: 'the call button means nothing to a handset', steps: ['off', 'button'], log: ['0 tone dial'], state: 'dialTone' },
    { name: 'digits while on-hook are ignored', steps: ['keys 101'], log: [], state: 'idle' },
    { name: 'a repeated off-hook changes nothing', steps: ['off', 'off'], log: ['0 tone dial'], state: 'dialTone' },
    { name: 'hotline: lifting dials the number at once, no dial tone', config: { hotline: '102' }, steps: ['off'], log: ['0 dial 102'], state: 'calling' },
    {
      name: 'hotline: ringback and connection as for any call',
      config: { hotline: '0301234' },
      steps: ['off', 'wait 200', 'ringing', 'wait 3000', 'connected'],
      log: ['0 dial 0301234', '200 tone ringback', '3200 tone -'],
      state: 'connected',
    },
  ]);
});

t.test('call progress of a call placed from the handset', async (t) => {
  const placed = ['off', 'keys 101'];
  const start = ['0 tone dial', '0 tone -', '0 dial 101'];
  await table(t, [
    { name: 'ringback when the far end rings, silence once connected', steps: [...placed, 'wait 100', 'ringing', 'wait 5000', 'connected'], log: [...start, '100 tone ringback', '5100 tone -'], state: 'connected' },
    { name: 'a second 18x does not restart the ringback', steps: [...placed, 'ringing', 'ringing'], log: [...start, '0 tone ringback'], state: 'calling' },
    { name: 'connected without ringing (early answer)', steps: [...placed, 'connected'], log: start, state: 'connected' },
    { name: 'busy tone after 486 Busy Here', steps: [...placed, 'ringing', 'wait 1000', 'ended rejected 486'], log: [...start, '0 tone ringback', '1000 tone busy'], state: 'failed' },
    { name: 'busy tone after 600 Busy Everywhere', steps: [...placed, 'ended rejected 600'], log: [...start, '0 tone busy'], state: 'failed' },
    { name: 'congestion tone after 404', steps: [...placed, 'ended rejected 404'], log: [...start, '0 tone congestion'], state: 'failed' },
    { name: 'congestion tone after 503', steps: [...placed, 'ended rejected 503'], log: [...start, '0 tone congestion'], state: 'failed' },
    { name: 'congestion tone when a call ends with no status', steps: [...placed, 'ended timeout'], log: [...start, '0 tone congestion'], state: 'failed' },
    { name: 'dial() refused with 486 gives busy', dial: { status: 486 }, steps: placed, log: [...start, '0 tone busy'], state: 'failed' },
    { name: 'dial() refused with 404 gives congestion', dial: { status: 404 }, steps: placed, log: [...start, '0 tone congestion'], state: 'failed' },
    { name: 'dial() throwing gives congestion', dial: 'reject', steps: placed, log: [...start, '0 tone congestion'], state: 'failed' },
    { name: 'busy tone when the far end hangs up', steps: [...placed, 'connected', 'wait 60000', 'ended bye'], log: [...start, '60000 tone busy'], state: 'failed' },
    { name: 'digits during a call go out as DTMF', steps: [...placed, 'connected', 'keys 1#'], log: [...start, '0 send 1', '0 send #'], state: 'connected' },
    { name: 'digits while the far end rings are not sent', steps: [...placed, 'ringing', 'keys 1'], log: [...start, '0 tone ringback'], state: 'calling' },
    { name: 'far-end DTMF means nothing to a handset', steps: [...placed, 'connected', 'far-digit 5'], log: start, state: 'connected' },
    { name: 'on-hook during the call hangs up', steps: [...placed, 'connected', 'wait 9000', 'on'], log: [...start, '9000 hangup'], state: 'idle' },
    { name: 'on-hook while the far end rings hangs up and stops the ringback', steps: [...placed, 'ringing', 'on'], log: [...start, '0 tone ringback', '0 hangup', '0 tone -'], state: 'idle' },
    { name: 'on-hook during a failure tone silences it (no call to hang up)', steps: [...placed, 'ended rejected 486', 'on'], log: [...start, '0 tone busy', '0 tone -'], state: 'idle' },
    { name: 'on-hook with dial tone silences it', steps: ['off', 'wait 2000', 'on'], log: ['0 tone dial', '2000 tone -'], state: 'idle' },
    { name: 'a line event for no call is ignored', steps: ['ringing', 'connected', 'ended bye'], log: [], state: 'idle' },
    {
      name: 'a call placed after the handset was put down is hung up when dial() resolves',
      dial: 'pending',
      steps: [...placed, 'wait 100', 'on', 'wait 100', 'resolve'],
      log: [...start, '100 hangup', '200 hangup'],
      state: 'idle',
    },
    { name: 'a slow dial() that resolves ok changes nothing', dial: 'pending', steps: [...placed, 'ringing', 'resolve'], log: [...start, '0 tone ringback'], state: 'calling' },
    {
      name: 'a call placed late is not hung up when a call is ringing in meanwhile',
      dial: 'pending',
      steps: [...placed, 'on', 'incoming bob', 'resolve'],
      log: [...start, '0 hangup', '0 out ringMode on', '0 out forwardReverse blink 25/25'],
      state: 'ringing',
    },
  ]);
});

t.test('off-hook warning', async (t) => {
  await table(t, [
    { name: 'after 45 s of dial tone', steps: ['off', 'wait 44999', 'wait 1'], log: ['0 tone dial', '45000 tone offHookWarning'], state: 'warning' },
    { name: 'configurable (30 s)', config: { offHookWarningMs: 30_000 }, steps: ['off', 'wait 30000'], log: ['0 tone dial', '30000 tone offHookWarning'], state: 'warning' },
    { name: 'not while digits are being dialled', steps: ['off', 'wait 40000', 'keys 03', 'wait 3000', 'keys 0', 'wait 3000'], log: ['0 tone dial', '40000 tone -'], state: 'collecting' },
    { name: 'after a busy tone ran 30 s', steps: ['off', 'keys 101', 'ended rejected 486', 'wait 29999', 'wait 1'], log: ['0 tone dial', '0 tone -', '0 dial 101', '0 tone busy', '30000 tone offHookWarning'], state: 'warning' },
    { name: 'after an unobtainable tone ran 30 s', steps: ['off', 'keys 5', 'wait 30000'], log: ['0 tone dial', '0 tone -', '0 tone congestion', '30000 tone offHookWarning'], state: 'warning' },
    { name: 'the howler lasts until on-hook', steps: ['off', 'wait 45000', 'wait 600000', 'on'], log: ['0 tone dial', '45000 tone offHookWarning', '645000 tone -'], state: 'idle' },
    { name: 'on-hook cancels the pending warning', steps: ['off', 'wait 1000', 'on', 'wait 100000'], log: ['0 tone dial', '1000 tone -'], state: 'idle' },
    { name: 'digits are ignored once the howler plays', steps: ['off', 'wait 45000', 'keys 101'], log: ['0 tone dial', '45000 tone offHookWarning'], state: 'warning' },
  ]);
});

t.test('hook flash outside a call', async (t) => {
  await table(t, [
    { name: 'while dialling it gives a fresh dial tone and forgets the digits', steps: ['off', 'keys 10', 'flash', 'keys 102'], log: ['0 tone dial', '0 tone -', '0 tone dial', '0 tone -', '0 dial 102'], state: 'calling' },
    { name: 'after a failed call it gives a fresh dial tone', steps: ['off', 'keys 5', 'flash'], log: ['0 tone dial', '0 tone -', '0 tone congestion', '0 tone dial'], state: 'dialTone' },
    { name: 'on-hook it means nothing', steps: ['flash'], log: [], state: 'idle' },
    { name: 'while calling (no call held) it is ignored', steps: ['off', 'keys 101', 'flash'], log: ['0 tone dial', '0 tone -', '0 dial 101'], state: 'calling' },
  ]);
});

// Hold, swap and call waiting on hook flash, as an ATA's FXS port does (Telcordia GR-506 / GR-571).
t.test('hook flash: hold, second call, swap', async (t) => {
  const inCall = ['off', 'keys 101', 'connected c1'];
  const inCallLog = ['0 tone dial', '0 tone -', '0 dial 101'];
  await table(t, [
    { name: 'flash in a call holds it and gives a second dial tone', steps: [...inCall, 'flash'], log: [...inCallLog, '0 hold', '0 tone dial'], state: 'dialTone' },
    {
      name: 'the second call is dialled while the first is held',
      steps: [...inCall, 'flash', 'keys 102', 'connected c2'],
      log: [...inCallLog, '0 hold', '0 tone dial', '0 tone -', '0 dial 102'],
      state: 'connected',
    },
    {
      name: 'flash with a call held swaps',
      steps: [...inCall, 'flash', 'keys 102', 'connected c2', 'flash', 'flash'],
      log: [...inCallLog, '0 hold', '0 tone dial', '0 tone -', '0 dial 102', '0 resume', '0 resume'],
      state: 'connected',
    },
    {
      name: 'flash while dialling the second call takes the held call back',
      steps: [...inCall, 'flash', 'keys 10', 'flash'],
      log: [...inCallLog, '0 hold', '0 tone dial', '0 tone -', '0 resume'],
      state: 'connected',
    },
    {
      name: 'flash while the second call rings drops it and takes the held call back',
      steps: [...inCall, 'flash', 'keys 102', 'ringing', 'flash'],
      log: [...inCallLog, '0 hold', '0 tone dial', '0 tone -', '0 dial 102', '0 tone ringback', '0 hangup', '0 tone -', '0 resume'],
      state: 'connected',
    },
    {
      name: 'a busy second call: flash takes the held call back',
      steps: [...inCall, 'flash', 'keys 102', 'ended rejected 486 c2', 'flash'],
      log: [...inCallLog, '0 hold', '0 tone dial', '0 tone -', '0 dial 102', '0 tone busy', '0 tone -', '0 resume'],
      state: 'connected',
    },
    {
      name: 'the second party hangs up: busy tone, flash takes the held call back',
      steps: [...inCall, 'flash', 'keys 102', 'connected c2', 'ended bye - c2', 'flash'],
      log: [...inCallLog, '0 hold', '0 tone dial', '0 tone -', '0 dial 102', '0 tone busy', '0 tone -', '0 resume'],
      state: 'connected',
    },
    {
      name: 'on-hook with a call held rings the handset again (recall); lifting takes it back',
      steps: [...inCall, 'flash', 'keys 102', 'connected c2', 'on', 'ended bye - c2', 'wait 100', 'off'],
      log: [...inCallLog, '0 hold', '0 tone dial', '0 tone -', '0 dial 102', '0 hangup', '0 out ringMode on', '0 out forwardReverse blink 25/25', '100 out forwardReverse off', '100 out ringMode off', '100 resume'],
      state: 'connected',
    },
    {
      name: 'the held party hangs up during the recall ring: ringing stops',
      steps: [...inCall, 'flash', 'on', 'ended bye - c1'],
      log: [...inCallLog, '0 hold', '0 tone dial', '0 tone -', '0 out ringMode on', '0 out forwardReverse blink 25/25', '0 out forwardReverse off', '0 out ringMode off'],
      state: 'idle',
    },
    {
      name: 'the held party hangs up while the second call goes on',
      steps: [...inCall, 'flash', 'keys 102', 'connected c2', 'ended bye - c1', 'flash'],
      log: [...inCallLog, '0 hold', '0 tone dial', '0 tone -', '0 dial 102', '0 hold', '0 tone dial'],
      state: 'dialTone',
    },
    { name: 'a refused hold leaves the call as it is', hold: false, steps: [...inCall, 'flash'], log: [...inCallLog, '0 hold'], state: 'connected' },
  ]);
});

t.test('hook flash: call waiting', async (t) => {
  const inCall = ['off', 'keys 101', 'connected c1'];
  const inCallLog = ['0 tone dial', '0 tone -', '0 dial 101'];
  await table(t, [
    { name: 'a second call plays the call-waiting tone', steps: [...inCall, 'waiting 555 w1'], log: [...inCallLog, '0 tone callWaiting'], state: 'connected' },
    {
      name: 'flash holds the call and answers the waiting one; flash again swaps',
      steps: [...inCall, 'waiting 555 w1', 'flash', 'connected w1', 'flash'],
      log: [...inCallLog, '0 tone callWaiting', '0 hold', '0 tone -', '0 answer w1', '0 resume'],
      state: 'connected',
    },
    {
      name: 'the waiting caller gives up: the tone stops',
      steps: [...inCall, 'waiting 555 w1', 'ended cancelled - w1', 'flash'],
      log: [...inCallLog, '0 tone callWaiting', '0 tone -', '0 hold', '0 tone dial'],
      state: 'dialTone',
    },
    {
      name: 'on-hook with a call waiting: the waiting call rings, lifting answers it',
      steps: [...inCall, 'waiting 555 w1', 'on', 'ended bye - c1', 'off'],
      log: [...inCallLog, '0 tone callWaiting', '0 hangup', '0 tone -', '0 out ringMode on', '0 out forwardReverse blink 25/25', '0 out forwardReverse off', '0 out ringMode off', '0 answer w1'],
      state: 'connected',
    },
    {
      name: 'a third call is refused while one is waiting',
      steps: [...inCall, 'waiting 555 w1', 'waiting 666 w2'],
      log: [...inCallLog, '0 tone callWaiting', '0 hangup w2'],
      state: 'connected',
    },
    {
      name: 'a second call while dialling is refused',
      steps: ['off', 'keys 10', 'waiting 555 w1'],
      log: ['0 tone dial', '0 tone -', '0 hangup w1'],
      state: 'collecting',
    },
    {
      name: 'the far end hangs up with a call waiting: busy tone; flash answers the waiting call',
      steps: [...inCall, 'waiting 555 w1', 'ended bye - c1', 'flash'],
      log: [...inCallLog, '0 tone callWaiting', '0 tone busy', '0 tone -', '0 answer w1'],
      state: 'connected',
    },
  ]);
});

t.test('incoming calls', async (t) => {
  await table(t, [
    {
      name: 'us SLIC rings 2 s on / 4 s off with FR at 20 Hz; lifting answers and stops ringing',
      board: { roles: SLIC },
      steps: ['incoming alice', 'wait 6500', 'off'],
      log: [
        '0 out ringMode on', '0 out forwardReverse blink 25/25',
        '2000 out forwardReverse off', '2000 out ringMode off',
        '6000 out ringMode on', '6000 out forwardReverse blink 25/25',
        '6500 out forwardReverse off', '6500 out ringMode off', '6500 answer c1',
      ],
      state: 'connected',
    },
    {
      name: 'gb bell rings 0.4/0.2/0.4/2.0',
      config: { country: 'gb' },
      board: { roles: BELL, drive: 'bell' },
      steps: ['incoming alice', 'wait 3100', 'off'],
      log: ['0 out bell on', '400 out bell off', '600 out bell on', '1000 out bell off', '3000 out bell on', '3100 out bell off', '3100 answer c1'],
      state: 'connected',
    },
    {
      name: 'de SLIC rings 1 s / 4 s with FR at 25 Hz',
      config: { country: 'de' },
      board: { roles: SLIC, drive: 'slic' },
      steps: ['incoming alice', 'wait 5000', 'off'],
      log: [
        '0 out ringMode on', '0 out forwardReverse blink 20/20',
        '1000 out forwardReverse off', '1000 out ringMode off',
        '5000 out ringMode on', '5000 out forwardReverse blink 20/20',
        '5000 out forwardReverse off', '5000 out ringMode off', '5000 answer c1',
      ],
      state: 'connected',
    },
    {
      name: 'de bell',
      config: { country: 'de' },
      board: { roles: BELL },
      steps: ['incoming alice', 'wait 5500', 'ended cancelled 487'],
      log: ['0 out bell on', '1000 out bell off', '5000 out bell on', '5500 out bell off'],
      state: 'idle',
    },
    {
      name: 'a board that rings by itself gets the cadence, and the stop on answer',
      config: { country: 'gb' },
      board: { roles: [...SLIC, ...BELL], ringsItself: true },
      steps: ['incoming alice', 'wait 10000', 'off'],
      log: ['0 ring 400/200/400/2000', '10000 ring off', '10000 answer c1'],
      state: 'connected',
    },
    {
      name: 'a board whose ring() returns false is rung through its outputs',
      board: { roles: BELL, ringsItself: false },
      steps: ['incoming alice', 'wait 2000'],
      log: ['0 ring 2000/4000', '0 out bell on', '2000 out bell off'],
      state: 'ringing',
    },
    {
      name: 'ringing stops when the caller gives up',
      board: { roles: BELL },
      steps: ['incoming alice', 'wait 1000', 'ended cancelled', 'wait 10000'],
      log: ['0 out bell on', '1000 out bell off'],
      state: 'idle',
    },
    {
      name: 'after the caller gave up, lifting gives dial tone',
      board: { roles: BELL },
      steps: ['incoming alice', 'ended cancelled', 'off'],
      log: ['0 out bell on', '0 out bell off', '0 tone dial'],
      state: 'dialTone',
    },
    {
      name: 'a call gone just as the handset is lifted gives dial tone',
      board: { roles: BELL },
      answer: false,
      steps: ['incoming alice', 'off'],
      log: ['0 out bell on', '0 out bell off', '0 answer c1', '0 tone dial'],
      state: 'dialTone',
    },
    {
      name: 'an answered call ends with on-hook',
      board: { roles: BELL },
      steps: ['incoming alice', 'off', 'connected', 'wait 1000', 'on'],
      log: ['0 out bell on', '0 out bell off', '0 answer c1', '1000 hangup'],
      state: 'idle',
    },
    {
      name: 'a repeated incoming does not restart the cadence',
      board: { roles: BELL },
      steps: ['incoming alice', 'wait 1000', 'incoming alice', 'wait 1000'],
      log: ['0 out bell on', '2000 out bell off'],
      state: 'ringing',
    },
    { name: 'incoming while off-hook is refused, no ring', board: { roles: BELL }, steps: ['off', 'incoming alice'], log: ['0 tone dial', '0 hangup c1'], state: 'dialTone' },
    { name: 'incoming during a failure tone is refused', board: { roles: BELL }, steps: ['off', 'keys 5', 'incoming alice'], log: ['0 tone dial', '0 tone -', '0 tone congestion', '0 hangup c1'], state: 'failed' },
    {
      name: 'incoming during a call is left to the line (never hangs up our call)',
      board: { roles: BELL },
      steps: ['off', 'keys 101', 'connected', 'incoming alice'],
      log: ['0 tone dial', '0 tone -', '0 dial 101'],
      state: 'connected',
    },
    {
      name: 'a call answered elsewhere stops the ringing',
      board: { roles: BELL },
      steps: ['incoming alice', 'wait 100', 'connected'],
      log: ['0 out bell on', '100 out bell off'],
      state: 'idle',
    },
  ]);
});

t.test('close stops the ringer and the timers', async (t) => {
  const { handset, rec, clock } = await run({ name: 'close', board: { roles: BELL }, steps: ['incoming alice', 'wait 100'], log: [], state: 'ringing' });
  handset.close();
  clock.advance(60_000);
  t.same(rec.log, ['0 out bell on', '100 out bell off']);
  t.same(clock.pending(), []);
});
