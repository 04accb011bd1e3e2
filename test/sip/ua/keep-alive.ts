import t from 'tap';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { MemoryLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { parseVia } from '../../../src/sip/message/header-values.ts';
import type { Destination } from '../../../src/sip/transaction/types.ts';
import { buildOptionsPing, KeepAlive, type KeepAliveOptions } from '../../../src/sip/ua/keep-alive.ts';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A keep-alive whose pings resolve as `outcome` says; records pings and failures. */
function setup(transport: Destination['transport'], outcome: () => Promise<boolean>, extra: Partial<KeepAliveOptions> = {}) {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const calls: string[] = [];
  const failures: string[] = [];
  const ka = new KeepAlive({
    intervalSeconds: 30,
    transport,
    destination: { transport, address: '192.0.2.1', port: 5060 },
    clock,
    random: new SeededRandom(3),
    logger,
    sendOptions: () => (calls.push('OPTIONS'), outcome()),
    sendCrlf: () => (calls.push('CRLF'), outcome()),
    onFailure: (reason) => failures.push(reason),
    ...extra,
  });
  return { clock, logger, calls, failures, ka };
}

t.test('UDP pings with OPTIONS, TCP and TLS with CRLF (RFC 5626 §4.4.1), each 80-100 % of the interval', async (t) => {
  for (const [transport, kind] of [['udp', 'OPTIONS'], ['tcp', 'CRLF'], ['tls', 'CRLF']] as const) {
    const { clock, calls, failures, ka } = setup(transport, () => Promise.resolve(true));
    ka.start();
    const times: number[] = [];
    let last = 0;
    for (let i = 0; i < 20; i++) {
      while (calls.length === i) clock.advance(100);
      times.push(clock.now() - last);
      last = clock.now();
      await flush();
    }
    t.ok(calls.every((c) => c === kind), `${transport}: every ping is ${kind}`);
    t.ok(times.every((d) => d >= 24_000 && d <= 30_100), `${transport}: gaps within 24-30 s (${Math.min(...times)}-${Math.max(...times)} ms)`);
    t.ok(new Set(times).size > 1, `${transport}: gaps are randomised`);
    t.same(failures, [], `${transport}: no failure`);
    t.ok(ka.running, `${transport}: still running`);
  }
});

t.test('a failed ping stops the keep-alive and reports once', async (t) => {
  const never = () => new Promise<boolean>(() => {});
  const cases = [
    { name: 'OPTIONS without response', transport: 'udp' as const, outcome: () => Promise.resolve(false), reason: 'OPTIONS ping got no answer', after: 0 },
    { name: 'CRLF write error', transport: 'tcp' as const, outcome: () => Promise.reject(new Error('EPIPE')), reason: 'CRLF ping failed: EPIPE', after: 0 },
    { name: 'sendCrlf throws', transport: 'tls' as const, outcome: () => { throw new Error('not connected'); }, reason: 'CRLF ping failed: not connected', after: 0 },
    { name: 'no outcome within the own timeout', transport: 'udp' as const, outcome: never, reason: 'no answer within 2000 ms', after: 2_000 },
  ];
  for (const c of cases) {
    const { clock, calls, failures, ka, logger } = setup(c.transport, c.outcome, { timeoutMs: 2_000 });
    ka.start();
    while (calls.length === 0 && clock.now() < 30_000) clock.advance(100);
    t.equal(calls.length, 1, `${c.name}: pinged`);
    await flush();
    if (c.after > 0) {
      // The ping went out at most 100 ms ago.
      clock.advance(c.after - 100);
      t.same(failures, [], `${c.name}: not before the timeout`);
      clock.advance(100);
    }
    t.same(failures, [c.reason], `${c.name}: onFailure once with the reason`);
    t.notOk(ka.running, `${c.name}: stopped itself`);
    t.ok(logger.records.some((r) => r.level === 'warn' && r.msg === 'keep-alive failed'), `${c.name}: logged`);
    clock.advance(300_000);
    await flush();
    t.equal(calls.length, 1, `${c.name}: no further pings`);
    t.same(clock.pending(), [], `${c.name}: no timers left`);
  }
});

t.test('stop() ignores an outstanding ping; start() restarts the interval', async (t) => {
  let settle: (ok: boolean) => void = () => {};
  const { clock, calls, failures, ka } = setup('udp', () => new Promise<boolean>((r) => (settle = r)));
  ka.start();
  clock.advance(30_000);
  t.equal(calls.length, 1);
  ka.stop();
  settle(false);
  await flush();
  clock.advance(10_000);
  t.same(failures, [], 'the outcome after stop() is ignored, so is the timeout');
  t.same(clock.pending(), [], 'no timers left');

  ka.start();
  clock.advance(20_000);
  ka.start();
  clock.advance(20_000);
  t.equal(calls.length, 1, 'a second start() re-armed the interval');
  clock.advance(10_000);
  t.equal(calls.length, 2, 'then pings');
  t.throws(() => new KeepAlive({ ...setupOptions(), intervalSeconds: 0 }), /interval must be positive/, 'interval 0 is the caller\'s "off", not a KeepAlive');
});

function setupOptions(): KeepAliveOptions {
  return {
    intervalSeconds: 30,
    transport: 'udp',
    destination: { transport: 'udp', address: '192.0.2.1', port: 5060 },
    clock: new ManualClock(),
    random: new SeededRandom(1),
    logger: new MemoryLogger(),
    sendOptions: () => Promise.resolve(true),
    sendCrlf: () => Promise.resolve(true),
    onFailure: () => {},
  };
}

t.test('the OPTIONS ping is an out-of-dialog request from our AOR to the trunk domain (RFC 3261 §11)', async (t) => {
  const req = buildOptionsPing({
    requestUri: 'sip:example.net;transport=tcp',
    aor: 'sip:gw@example.net',
    domain: 'example.net',
    local: { address: '2001:db8::5', port: 5062 },
    transport: 'tcp',
    branch: 'z9hG4bKping1',
    random: new SeededRandom(5),
    userAgent: 'hookswitch',
  });
  t.equal(req.method, 'OPTIONS');
  t.equal(req.uri, 'sip:example.net;transport=tcp');
  t.equal(req.headers.get('to'), '<sip:example.net>');
  t.match(req.headers.get('from'), /^<sip:gw@example\.net>;tag=[a-z0-9]{16}$/);
  t.equal(req.headers.get('cseq'), '1 OPTIONS');
  t.equal(req.headers.get('max-forwards'), '70');
  t.equal(req.headers.get('user-agent'), 'hookswitch');
  t.match(req.headers.get('call-id'), /^[a-z0-9]{24}$/);
  const via = parseVia(req.headers.get('via')!);
  t.same([via.transport, via.host, via.port, via.branch, via.rport], ['TCP', '[2001:db8::5]', 5062, 'z9hG4bKping1', null], 'Via: IPv6 reference in brackets, branch, rport');
});
