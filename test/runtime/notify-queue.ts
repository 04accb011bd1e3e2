import t from 'tap';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { NotifyQueue, type NotifyTransport, readNotifyEnvironment } from '../../src/runtime/notify-queue.ts';

/** A transport whose deliveries the test settles by hand, recording when each one started. */
class HeldTransport implements NotifyTransport {
  readonly started: { at: number; fields: string[] }[] = [];
  private pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  constructor(private readonly clock: ManualClock) {}
  send(fields: readonly string[]): Promise<void> {
    this.started.push({ at: this.clock.now(), fields: [...fields] });
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  get inFlight(): number {
    return this.pending.length;
  }
  /** Settles the delivery in flight and lets the queue's promise callbacks run. */
  async finish(error?: Error): Promise<void> {
    const p = this.pending.shift();
    if (!p) throw new Error('nothing in flight');
    if (error) p.reject(error);
    else p.resolve();
    await new Promise((r) => setImmediate(r));
  }
  async finishAll(): Promise<void> {
    while (this.pending.length > 0) await this.finish();
  }
}

function setup(watchdogMs?: number) {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const transport = new HeldTransport(clock);
  const queue = new NotifyQueue(transport, { clock, logger, watchdogMs, maxQueued: 4 });
  return { clock, logger, transport, queue };
}

t.test('the environment is read as sd_watchdog_enabled(3) defines it', async (t) => {
  const cases: { name: string; env: Record<string, string>; socket?: string; watchdogMs?: number; ignored?: RegExp }[] = [
    { name: 'not under systemd', env: {} },
    { name: 'empty NOTIFY_SOCKET counts as unset', env: { NOTIFY_SOCKET: '' } },
    { name: 'socket without watchdog', env: { NOTIFY_SOCKET: '/run/systemd/notify' }, socket: '/run/systemd/notify' },
    { name: 'abstract socket', env: { NOTIFY_SOCKET: '@/org/x' }, socket: '@/org/x' },
    { name: 'watchdog for us, no WATCHDOG_PID', env: { NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '30000000' }, socket: '/n', watchdogMs: 30000 },
    { name: 'watchdog for our pid', env: { NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '400000', WATCHDOG_PID: '4242' }, socket: '/n', watchdogMs: 400 },
    { name: 'watchdog for another pid', env: { NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '400000', WATCHDOG_PID: '1' }, socket: '/n', ignored: /WATCHDOG_PID is "1", not this process \(4242\)/ },
    { name: 'zero interval', env: { NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '0' }, socket: '/n', ignored: /not a positive number/ },
    { name: 'not a number', env: { NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '30s' }, socket: '/n', ignored: /got "30s"/ },
    { name: 'watchdog without a socket', env: { WATCHDOG_USEC: '400000' }, ignored: /NOTIFY_SOCKET is not/ },
  ];
  for (const c of cases) {
    const got = readNotifyEnvironment(c.env, 4242);
    t.equal(got.socket, c.socket, `${c.name}: socket`);
    t.equal(got.watchdogMs, c.watchdogMs, `${c.name}: watchdog`);
    if (c.ignored) t.match(got.watchdogIgnored, c.ignored, `${c.name}: reason`);
    else t.equal(got.watchdogIgnored, undefined, `${c.name}: nothing ignored`);
  }
});

t.test('messages go out in order, one at a time', async (t) => {
  const { transport, queue } = setup();
  queue.post(['READY=1', 'STATUS=up']);
  queue.post(['RELOADING=1']);
  queue.post(['READY=1']);
  t.equal(transport.inFlight, 1, 'one delivery in flight');
  t.same(transport.started.map((s) => s.fields), [['READY=1', 'STATUS=up']]);
  await transport.finishAll();
  t.same(transport.started.map((s) => s.fields), [['READY=1', 'STATUS=up'], ['RELOADING=1'], ['READY=1']], 'state changes are never merged');
  t.equal(queue.stats.delivered, 3);
});

t.test('a waiting status line is replaced by a newer one', async (t) => {
  const { transport, queue } = setup();
  queue.post(['STATUS=1 call']);
  queue.post(['STATUS=2 calls']);
  queue.post(['STATUS=3 calls']);
  queue.post(['STOPPING=1']);
  queue.post(['STATUS=stopping']);
  await transport.finishAll();
  t.same(
    transport.started.map((s) => s.fields),
    [['STATUS=1 call'], ['STATUS=3 calls'], ['STOPPING=1'], ['STATUS=stopping']],
    'the one in flight stays, the waiting one is replaced, none crosses a state change',
  );
});

t.test('a full queue drops the oldest status line first', async (t) => {
  const { transport, queue, logger } = setup();
  queue.post(['READY=1']); // in flight
  queue.post(['STATUS=a']);
  queue.post(['RELOADING=1']);
  queue.post(['READY=1']);
  queue.post(['RELOADING=1']);
  queue.post(['READY=1']); // fifth waiting: over maxQueued 4
  await transport.finishAll();
  t.same(transport.started.map((s) => s.fields[0]), ['READY=1', 'RELOADING=1', 'READY=1', 'RELOADING=1', 'READY=1']);
  t.equal(queue.stats.dropped, 1);
  t.equal(logger.records.filter((r) => r.level === 'warn').length, 1, 'the drop is logged');
});

t.test('the watchdog pings at once and then every half interval', async (t) => {
  const { clock, transport, queue } = setup(400);
  t.equal(queue.startWatchdog(), true);
  t.equal(queue.startWatchdog(), true, 'a second start changes nothing');
  for (let i = 0; i < 5; i++) {
    await transport.finishAll();
    clock.advance(200);
  }
  await transport.finishAll();
  t.same(
    transport.started.map((s) => s.at),
    [0, 200, 400, 600, 800, 1000],
    'pings at 0, 200, ... ms for WATCHDOG_USEC=400000',
  );
  t.ok(transport.started.every((s) => s.fields.length === 1 && s.fields[0] === 'WATCHDOG=1'));
  t.same(clock.pending(), ['systemd.watchdog'], 'exactly one ping timer');
});

t.test('a ping still in flight is not doubled', async (t) => {
  const { clock, transport, queue } = setup(400);
  queue.startWatchdog();
  clock.advance(200);
  clock.advance(200);
  t.equal(transport.inFlight, 1, 'the first ping hangs; no second process');
  t.equal(queue.stats.pingsSkipped, 2);
  await transport.finish();
  clock.advance(200);
  t.equal(transport.started.length, 2, 'pinging resumes once the hung one settled');
  t.equal(queue.stats.pings, 2);
});

t.test('without an interval there is no watchdog', async (t) => {
  const { clock, transport, queue } = setup(undefined);
  t.equal(queue.watchdogEnabled, false);
  t.equal(queue.startWatchdog(), false);
  clock.advance(60_000);
  t.equal(transport.started.length, 0);
  t.same(clock.pending(), []);
});

t.test('failures are logged once as a warning, then at debug level, and never stop the queue', async (t) => {
  const { transport, queue, logger } = setup();
  queue.post(['READY=1']);
  queue.post(['STATUS=a']);
  queue.post(['STOPPING=1']);
  await transport.finish(new Error('/usr/bin/systemd-notify: ENOENT'));
  await transport.finish(new Error('/usr/bin/systemd-notify: ENOENT'));
  await transport.finish();
  t.equal(queue.stats.failed, 2);
  t.equal(queue.stats.delivered, 1, 'the message after the failures was still sent');
  const warns = logger.records.filter((r) => r.level === 'warn');
  t.equal(warns.length, 1);
  t.match(warns[0]!.fields, { reason: /ENOENT/, fields: 'READY=1' });
  t.equal(logger.records.filter((r) => r.level === 'debug').length, 1);
});

t.test('a transport that throws synchronously counts as a failed delivery', async (t) => {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const queue = new NotifyQueue(
    {
      send() {
        throw new Error('spawn EAGAIN');
      },
    },
    { clock, logger },
  );
  queue.post(['READY=1']);
  await new Promise((r) => setImmediate(r));
  t.equal(queue.stats.failed, 1);
  t.match(logger.records[0]?.fields, { reason: 'spawn EAGAIN' });
});

t.test('close stops pinging, drops waiting pings and waits for the rest', async (t) => {
  const { clock, transport, queue } = setup(400);
  queue.post(['READY=1']); // in flight
  queue.startWatchdog(); // ping queued behind it
  queue.post(['STOPPING=1']);
  let closed = false;
  const done = queue.close().then(() => (closed = true));
  queue.post(['STATUS=after close']);
  await transport.finish();
  t.equal(closed, false, 'STOPPING=1 still to go');
  await transport.finish();
  await done;
  t.same(transport.started.map((s) => s.fields), [['READY=1'], ['STOPPING=1']], 'the ping and the late status were dropped');
  clock.advance(10_000);
  t.equal(transport.started.length, 2, 'no pings after close');
  t.same(clock.pending(), []);
  t.equal(queue.startWatchdog(), false, 'cannot restart after close');
  await queue.close();
  t.pass('closing twice resolves');
});
