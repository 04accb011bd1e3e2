import t from 'tap';
import { ManualClock } from '../../src/runtime/clock.ts';
import { RegistrationWatch } from '../../src/presence/registration-watch.ts';

function setup() {
  const clock = new ManualClock(0, 1_000_000);
  const bindings = new Map<string, number[]>();
  const changes: string[] = [];
  const watch = new RegistrationWatch({
    clock,
    expiries: (user) => bindings.get(user) ?? [],
    changed: (user, open) => void changes.push(`${user} ${open ? 'open' : 'closed'}`),
  });
  /** A binding of `user` for `seconds` from now. */
  const bind = (user: string, seconds: number) => bindings.set(user, [...(bindings.get(user) ?? []), clock.wallNow() + seconds * 1000]);
  return { clock, bindings, changes, watch, bind };
}

t.test('reports a registration appearing, refreshed without a report, and going at its expiry', async (t) => {
  const { clock, bindings, changes, watch, bind } = setup();
  bind('101', 60);
  watch.touched('101');
  t.same(changes, ['101 open']);
  clock.advance(30_000);
  bindings.set('101', [clock.wallNow() + 60_000]);
  watch.touched('101');
  t.same(changes, ['101 open'], 'a refresh changes nothing');
  clock.advance(59_999);
  t.same(changes, ['101 open'], 'not before the refreshed expiry');
  clock.advance(1);
  t.same(changes, ['101 open', '101 closed'], 'closed when the last binding expired');
  t.equal(watch.isOpen('101'), false);
  t.same(clock.pending(), [], 'no timer left');
});

t.test('several bindings: open until the last goes; an unregister (Expires 0) reports at once', async (t) => {
  const { clock, bindings, changes, watch, bind } = setup();
  bind('102', 10);
  bind('102', 100);
  watch.touched('102');
  clock.advance(10_000);
  t.same(changes, ['102 open'], 'one binding left: still open');
  bindings.delete('102');
  watch.touched('102');
  t.same(changes, ['102 open', '102 closed']);
  clock.advance(200_000);
  t.same(changes, ['102 open', '102 closed'], 'the expiry timer was dropped');
});

t.test('seed takes restored bindings without reporting; close stops the timers', async (t) => {
  const { clock, changes, watch, bind } = setup();
  bind('103', 30);
  watch.seed(['103', '104']);
  t.same(changes, [], 'nothing reported for the restored state');
  t.equal(watch.isOpen('103'), true);
  clock.advance(30_000);
  t.same(changes, ['103 closed'], 'a restored binding expiring is reported');
  bind('104', 30);
  watch.touched('104');
  watch.close();
  clock.advance(60_000);
  watch.touched('104');
  t.same(changes, ['103 closed', '104 open'], 'nothing after close');
});
