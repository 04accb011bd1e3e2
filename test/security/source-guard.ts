/**
 * The source guard: the allow-list, bans after repeated authentication failures within a
 * sliding window, trusted trunk addresses, and bounded memory. Manual clock, no sockets.
 */
import t from 'tap';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { DEFAULT_ALLOWED_SOURCES } from '../../src/security/cidr.ts';
import { SourceGuard, type SourceGuardOptions } from '../../src/security/source-guard.ts';

const WALL_START = 1_700_000_000_000;

function guard(opts: Partial<Omit<SourceGuardOptions, 'clock' | 'logger'>> = {}) {
  const clock = new ManualClock(0, WALL_START);
  const logger = new MemoryLogger();
  const g = new SourceGuard({
    allowedSources: DEFAULT_ALLOWED_SOURCES,
    maxAuthFailures: 3,
    banSeconds: 120,
    windowSeconds: 60,
    ...opts,
    clock,
    logger,
  });
  const fail = (address: string, times = 1) => {
    for (let i = 0; i < times; i++) g.authFailed(address);
  };
  return { g, clock, logger, fail };
}

t.test('isAllowed: allowed ranges and trusted trunk addresses pass, everything else does not', async (t) => {
  const { g } = guard({ trusted: () => ['203.0.113.5', '2001:db8::5060'] });
  const cases: [address: string, allowed: boolean, why: string][] = [
    ['192.168.1.20', true, 'inside an allowed range'],
    ['::ffff:10.1.1.1', true, 'IPv4-mapped inside an allowed range'],
    ['203.0.113.5', true, 'a trunk, outside the ranges'],
    ['::ffff:203.0.113.5', true, 'the trunk seen on a dual-stack socket'],
    ['2001:DB8:0::5060', true, 'the IPv6 trunk in another spelling'],
    ['203.0.113.6', false, 'next to the trunk'],
    ['8.8.8.8', false, 'public, not a trunk'],
    ['not-an-address', false, 'not an IP address'],
  ];
  for (const [address, allowed, why] of cases) t.equal(g.isAllowed(address), allowed, `${address}: ${why}`);
});

t.test('maxAuthFailures failures within the window ban the address for banSeconds, per address only', async (t) => {
  const { g, clock, logger, fail } = guard();
  fail('127.0.0.2', 2);
  t.notOk(g.isBanned('127.0.0.2'), 'two failures: not yet');
  t.equal(logger.records.length, 0, 'nothing logged below the limit');
  clock.advance(1000);
  fail('127.0.0.2');
  t.ok(g.isBanned('127.0.0.2'), 'the third failure bans');
  t.notOk(g.isAllowed('127.0.0.2'), 'a banned address is not allowed');
  t.ok(g.isBanned('::ffff:127.0.0.2'), 'the same host on a dual-stack socket is banned too');
  t.notOk(g.isBanned('127.0.0.3'), 'a neighbour in the same range is not banned');
  t.ok(g.isAllowed('127.0.0.3'), 'and is still allowed');
  t.same(logger.records, [
    { level: 'warn', category: 'test', msg: 'source banned', fields: { address: '127.0.0.2', failures: 3, seconds: 120 } },
  ]);
  t.same(g.banned(), [{ address: '127.0.0.2', until: WALL_START + 1000 + 120_000 }], 'banned() reports wall-clock expiry');

  fail('127.0.0.2', 5);
  t.equal(logger.records.length, 1, 'failures while banned do not log or restart the ban');
  clock.advance(119_999);
  t.ok(g.isBanned('127.0.0.2'), 'still banned 1 ms before the end');
  clock.advance(1);
  t.notOk(g.isBanned('127.0.0.2'), 'the ban ends after banSeconds');
  t.ok(g.isAllowed('127.0.0.2'), 'and the address is allowed again');
  t.same(logger.records[1], { level: 'info', category: 'test', msg: 'source ban lifted', fields: { address: '127.0.0.2', failures: 3 } });
  t.same(g.banned(), []);
  fail('127.0.0.2', 2);
  t.notOk(g.isBanned('127.0.0.2'), 'the count starts afresh after a ban');
});

t.test('the window slides: only failures younger than windowSeconds count', async (t) => {
  const cases: [name: string, failureTimesMs: number[], banned: boolean][] = [
    ['three within 60 s', [0, 30_000, 59_999], true],
    ['the first has left the window', [0, 30_000, 60_000], false],
    ['spread out, never three in a window', [0, 40_000, 70_000, 110_000, 150_000], false],
    ['the last three fit in a window', [0, 40_000, 70_000, 90_000], true],
  ];
  for (const [name, times, banned] of cases) {
    const { g, clock, fail } = guard();
    let now = 0;
    for (const at of times) {
      clock.advance(at - now);
      now = at;
      fail('192.168.5.5');
    }
    t.equal(g.isBanned('192.168.5.5'), banned, name);
  }
});

t.test('authSucceeded forgets the failures but does not lift a ban', async (t) => {
  const { g, fail } = guard();
  fail('10.0.0.7', 2);
  g.authSucceeded('10.0.0.7');
  fail('10.0.0.7', 2);
  t.notOk(g.isBanned('10.0.0.7'), 'success in between: two plus two failures do not ban');
  fail('10.0.0.7');
  t.ok(g.isBanned('10.0.0.7'), 'three in a row after the success do');
  g.authSucceeded('10.0.0.7');
  t.ok(g.isBanned('10.0.0.7'), 'a success does not reset the ban');
});

t.test('trusted addresses are never banned', async (t) => {
  let trunks = ['192.168.9.9'];
  const { g, fail, logger } = guard({ trusted: () => trunks });
  fail('192.168.9.9', 10);
  t.notOk(g.isBanned('192.168.9.9'), 'failures from a trunk are not counted');
  t.ok(g.isAllowed('192.168.9.9'));
  t.equal(logger.records.length, 0);
  trunks = [];
  fail('192.168.9.9', 2);
  t.notOk(g.isBanned('192.168.9.9'), 'once no longer a trunk, counting starts from zero');
});

t.test('maxAuthFailures 0 disables banning', async (t) => {
  const { g, fail } = guard({ maxAuthFailures: 0 });
  fail('10.0.0.1', 100);
  t.notOk(g.isBanned('10.0.0.1'));
  t.ok(g.isAllowed('10.0.0.1'));
});

t.test('memory is bounded: the least recently failing source is forgotten first', async (t) => {
  const { g, fail } = guard({ maxAuthFailures: 2, maxTrackedSources: 3 });
  fail('10.0.0.1');
  fail('10.0.0.2');
  fail('10.0.0.3');
  fail('10.0.0.1'); // bans 10.0.0.1 (its record was still there)
  t.ok(g.isBanned('10.0.0.1'));
  fail('10.0.0.4');
  fail('10.0.0.5'); // tracked now: .2 .3 .4 .5 → .2 forgotten
  fail('10.0.0.2');
  t.notOk(g.isBanned('10.0.0.2'), 'the forgotten source starts over');
  fail('10.0.0.5');
  t.ok(g.isBanned('10.0.0.5'), 'a remembered source is banned on its second failure');

  const bans = guard({ maxAuthFailures: 1, maxTrackedSources: 2 });
  bans.fail('10.1.0.1');
  bans.clock.advance(1);
  bans.fail('10.1.0.2');
  bans.clock.advance(1);
  bans.fail('10.1.0.3');
  t.same(bans.g.banned().map((b) => b.address), ['10.1.0.2', '10.1.0.3'], 'at most maxTrackedSources bans, the oldest dropped');
  t.ok(bans.logger.records.some((r) => r.msg === 'source ban dropped early: too many bans' && r.fields.address === '10.1.0.1'));
  t.same(bans.clock.pending().length, 2, "the dropped ban's timer is cancelled");
});

t.test('bad options are refused at construction', async (t) => {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const base = { allowedSources: ['10.0.0.0/8'], maxAuthFailures: 5, banSeconds: 60, clock, logger };
  const cases: [name: string, opts: SourceGuardOptions, message: RegExp][] = [
    ['bad range', { ...base, allowedSources: ['10.0.0.0/99'] }, /"10\.0\.0\.0\/99"/],
    ['negative failures', { ...base, maxAuthFailures: -1 }, /maxAuthFailures/],
    ['zero ban', { ...base, banSeconds: 0 }, /banSeconds/],
    ['zero window', { ...base, windowSeconds: 0 }, /windowSeconds/],
    ['zero tracked', { ...base, maxTrackedSources: 0 }, /maxTrackedSources/],
  ];
  for (const [name, opts, message] of cases) t.throws(() => new SourceGuard(opts), message, name);
});
