import t from 'tap';
import { DEFAULT_DOOR_CODE_CONFIG, DoorCode, doorCodeConfigProblems, type DoorCodeConfig } from '../../src/phone/door-code.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';

type Step = { call: string } | { keys: string } | { wait: number } | { end: true };

/** Runs steps; returns every result that is not `collecting`, written as `kind` or `kind:reason`. */
function run(cfg: Partial<DoorCodeConfig>, steps: Step[]): { outcomes: string[]; log: MemoryLogger; clock: ManualClock } {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const door = new DoorCode({ ...DEFAULT_DOOR_CODE_CONFIG, ...cfg }, clock, log);
  const outcomes: string[] = [];
  for (const step of steps) {
    if ('call' in step) door.beginCall(step.call);
    else if ('end' in step) door.endCall();
    else if ('wait' in step) clock.advance(step.wait);
    else {
      for (const key of step.keys) {
        const r = door.digit(key);
        if (r.kind === 'collecting') continue;
        outcomes.push(r.kind === 'refused' ? `refused:${r.reason}` : r.kind === 'wrong' ? `wrong:${r.remaining}` : r.kind);
      }
    }
  }
  return { outcomes, log, clock };
}

const MIN = 60_000;

const CASES: { name: string; cfg: Partial<DoorCodeConfig>; steps: Step[]; outcomes: string[] }[] = [
  { name: 'the right code opens once', cfg: { code: '1234' }, steps: [{ call: 'alice' }, { keys: '1234' }], outcomes: ['open'] },
  { name: 'a wrong code does not open', cfg: { code: '1234' }, steps: [{ call: 'alice' }, { keys: '1243' }], outcomes: ['wrong:2'] },
  { name: 'a one-key code', cfg: { code: '7' }, steps: [{ call: 'alice' }, { keys: '67' }], outcomes: ['wrong:2', 'open'] },
  { name: 'an eight-key code with A-D', cfg: { code: '12AB34CD' }, steps: [{ call: 'a' }, { keys: '12ab34cd' }], outcomes: ['open'] },
  {
    name: 'three wrong codes lock the call out; the right code is then refused',
    cfg: { code: '1234' },
    steps: [{ call: 'mallory' }, { keys: '0000' + '1111' + '2222' + '1234' }],
    outcomes: ['wrong:2', 'wrong:1', 'lockedOut', 'refused:lockedOut', 'refused:lockedOut', 'refused:lockedOut', 'refused:lockedOut'],
  },
  {
    name: 'the lockout outlives the call and ends after the lockout period',
    cfg: { code: '1234' },
    steps: [
      { call: 'mallory' }, { keys: '000011112222' }, { end: true },
      { call: 'mallory' }, { wait: 4 * MIN }, { keys: '1' }, { end: true },
      { call: 'mallory' }, { wait: MIN }, { keys: '1234' },
    ],
    outcomes: ['wrong:2', 'wrong:1', 'lockedOut', 'refused:lockedOut', 'open'],
  },
  {
    name: 'a lockout is per caller',
    cfg: { code: '1234' },
    steps: [{ call: 'mallory' }, { keys: '000011112222' }, { end: true }, { call: 'alice' }, { keys: '1234' }],
    outcomes: ['wrong:2', 'wrong:1', 'lockedOut', 'open'],
  },
  {
    name: 'wrong codes add up over calls within the lockout period',
    cfg: { code: '1234' },
    steps: [{ call: 'm' }, { keys: '00001111' }, { end: true }, { call: 'm' }, { keys: '2222' }],
    outcomes: ['wrong:2', 'wrong:1', 'lockedOut'],
  },
  {
    name: 'wrong codes are forgotten after the lockout period',
    cfg: { code: '1234' },
    steps: [{ call: 'm' }, { keys: '00001111' }, { end: true }, { wait: 5 * MIN }, { call: 'm' }, { keys: '2222' }],
    outcomes: ['wrong:2', 'wrong:1', 'wrong:2'],
  },
  {
    name: 'a right code clears the wrong count',
    cfg: { code: '1234' },
    steps: [{ call: 'm' }, { keys: '0000111112342222' }],
    outcomes: ['wrong:2', 'wrong:1', 'open', 'wrong:2'],
  },
  { name: 'maxWrong 1 locks at the first wrong code', cfg: { code: '12', maxWrong: 1 }, steps: [{ call: 'm' }, { keys: '1312' }], outcomes: ['lockedOut', 'refused:lockedOut', 'refused:lockedOut'] },
  {
    name: 'a per-caller code replaces the global one for that caller only',
    cfg: { code: '1234', perCaller: { alice: '99' } },
    steps: [{ call: 'alice' }, { keys: '1#' }, { keys: '99' }, { end: true }, { call: 'bob' }, { keys: '99#' }, { keys: '1234' }],
    outcomes: ['wrong:2', 'open', 'wrong:2', 'open'],
  },
  { name: 'per-caller codes without a global code: strangers have none', cfg: { perCaller: { alice: '99' } }, steps: [{ call: 'bob' }, { keys: '99' }], outcomes: ['refused:noCode', 'refused:noCode'] },
  {
    name: 'only allowed callers may open',
    cfg: { code: '1234', allowedCallers: ['alice'] },
    steps: [{ call: 'bob' }, { keys: '1' }, { end: true }, { call: 'alice' }, { keys: '1234' }],
    outcomes: ['refused:notAllowed', 'open'],
  },
  { name: '# compares a short entry at once', cfg: { code: '1234' }, steps: [{ call: 'a' }, { keys: '12#' }], outcomes: ['wrong:2'] },
  { name: '# on an empty entry does nothing', cfg: { code: '1234' }, steps: [{ call: 'a' }, { keys: '##1234' }], outcomes: ['open'] },
  { name: '* clears the entry', cfg: { code: '1234' }, steps: [{ call: 'a' }, { keys: '12*1234' }], outcomes: ['open'] },
  {
    name: 'an entry idle past the inter-digit timeout starts over',
    cfg: { code: '1234' },
    steps: [{ call: 'a' }, { keys: '12' }, { wait: 5_001 }, { keys: '1234' }, { keys: '99' }, { wait: 5_001 }, { keys: '34' }],
    outcomes: ['open'],
  },
  {
    name: 'digits within the inter-digit timeout keep the entry',
    cfg: { code: '1234' },
    steps: [{ call: 'a' }, { keys: '12' }, { wait: 5_000 }, { keys: '34' }],
    outcomes: ['open'],
  },
  { name: 'digits outside a call are refused', cfg: { code: '1234' }, steps: [{ keys: '1' }, { call: 'a' }, { end: true }, { keys: '2' }], outcomes: ['refused:noCall', 'refused:noCall'] },
  { name: 'a hook flash key is ignored', cfg: { code: '12' }, steps: [{ call: 'a' }, { keys: '1!2' }], outcomes: ['open'] },
];

t.test('door code entries', async (t) => {
  for (const c of CASES) {
    const { outcomes } = run(c.cfg, c.steps);
    t.same(outcomes, c.outcomes, c.name);
  }
});

t.test('every opening and every lockout is logged with the caller and the wall-clock time', async (t) => {
  const { log } = run({ code: '1234' }, [{ call: 'alice' }, { wait: 1_000 }, { keys: '1234' }, { end: true }, { call: '' }, { keys: '000011112222' }]);
  const opened = log.records.filter((r) => r.msg === 'door opened');
  t.equal(opened.length, 1, 'one opening logged');
  t.equal(opened[0]?.level, 'info');
  t.same(opened[0]?.fields, { caller: 'alice', at: new Date(1_700_000_001_000).toISOString() }, 'caller and ISO time of the opening');
  const locked = log.records.filter((r) => r.msg === 'door code locked out');
  t.equal(locked.length, 1, 'one lockout logged');
  t.equal(locked[0]?.level, 'warn');
  t.match(locked[0]?.fields, { caller: 'anonymous', wrong: 3, lockoutMs: 300_000 }, 'an unknown caller is logged as anonymous');
  t.equal(log.records.filter((r) => r.msg === 'wrong door code').length, 2, 'the two wrong codes before the lockout are logged');
});

t.test('isLockedOut follows the lockout period', async (t) => {
  const clock = new ManualClock();
  const door = new DoorCode({ ...DEFAULT_DOOR_CODE_CONFIG, code: '1', lockoutMs: 10_000 }, clock, new MemoryLogger());
  door.beginCall('m');
  for (const k of '222') door.digit(k);
  t.ok(door.isLockedOut('m'), 'locked after three wrong codes');
  t.notOk(door.isLockedOut('alice'), 'others are not');
  clock.advance(9_999);
  t.ok(door.isLockedOut('m'), 'still locked 1 ms before the end');
  clock.advance(1);
  t.notOk(door.isLockedOut('m'), 'unlocked at the end of the period');
});

t.test('config problems name the key', async (t) => {
  const table: { name: string; cfg: Partial<DoorCodeConfig>; problem?: RegExp }[] = [
    { name: 'defaults are valid', cfg: {} },
    { name: 'eight digits are valid', cfg: { code: '12345678' } },
    { name: 'nine digits are not', cfg: { code: '123456789' }, problem: /^intercom\.door\.code must be 1-8 keys/ },
    { name: 'an empty code is not', cfg: { code: '' }, problem: /^intercom\.door\.code/ },
    { name: '# cannot be in a code', cfg: { code: '12#' }, problem: /^intercom\.door\.code/ },
    { name: 'a bad per-caller code', cfg: { perCaller: { alice: 'x' } }, problem: /^intercom\.door\.perCaller\.alice/ },
    { name: 'maxWrong 0', cfg: { maxWrong: 0 }, problem: /^intercom\.door\.maxWrong/ },
    { name: 'negative lockout', cfg: { lockoutMs: -1 }, problem: /^intercom\.door\.lockoutMs/ },
    { name: 'inter-digit timeout too short', cfg: { interDigitMs: 10 }, problem: /^intercom\.door\.interDigitMs/ },
  ];
  for (const c of table) {
    const problems = doorCodeConfigProblems({ ...DEFAULT_DOOR_CODE_CONFIG, ...c.cfg });
    if (c.problem) t.match(problems, [c.problem], c.name);
    else t.same(problems, [], c.name);
  }
});
