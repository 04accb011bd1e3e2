/**
 * The dialog states (RFC 4235 §3.7.1) the call layer reports per local user: through the B2BUA
 * in memory (calls between two extensions: answered and hung up by either side, cancelled,
 * rejected), and the reporter alone for the device's calls and calls with a trunk.
 */
import t from 'tap';
import type { DialogInfo } from '../../src/presence/dialog-info.ts';
import { DialogEventReporter, type ReportedCall } from '../../src/calls/dialog-events.ts';
import type { Route } from '../../src/calls/dialplan.ts';
import { createResponse } from '../../src/sip/message/message.ts';
import { Headers } from '../../src/sip/message/headers.ts';
import { SipHarness, sdp } from '../helpers/sip-harness.ts';

/** What a sink received, as `resource id state[/event][/code]` lines. */
function recorder() {
  const lines: string[] = [];
  const last = new Map<string, DialogInfo>();
  return {
    lines,
    last,
    sink: {
      dialogChanged: (resource: string, d: DialogInfo) => {
        last.set(resource, d);
        lines.push(`${resource} ${d.direction} ${d.state}${d.event ? `/${d.event}` : ''}${d.code ? `/${d.code}` : ''}`);
      },
    },
  };
}

async function setUp() {
  const rec = recorder();
  const h = new SipHarness({ presence: rec.sink });
  const alice = h.phone('101', '192.0.2.11');
  const bob = h.phone('102', '192.0.2.12');
  h.bind(bob);
  return { h, alice, bob, rec };
}

t.test('an answered call between two extensions: trying, early, confirmed, then local-bye for the side that hung up', async (t) => {
  for (const byeFrom of ['caller', 'callee'] as const) {
    const { alice, bob, rec } = await setUp();
    await alice.call('102');
    const inv = bob.takeRequest('INVITE')!;
    t.same(rec.lines, ['101 initiator trying', '102 recipient trying'], `${byeFrom}: both trying once routed`);
    await bob.reply(inv, 180);
    await bob.reply(inv, 200, { sdp: sdp('bob') });
    await alice.ack2xx(alice.takeResponse(200)!);
    if (byeFrom === 'caller') {
      await alice.request('BYE');
      await bob.reply(bob.takeRequest('BYE')!, 200);
    } else {
      await bob.request('BYE');
      await alice.reply(alice.takeRequest('BYE')!, 200);
    }
    const [callerEnd, calleeEnd] = byeFrom === 'caller' ? ['local-bye', 'remote-bye'] : ['remote-bye', 'local-bye'];
    t.same(
      rec.lines.slice(2),
      ['101 initiator early', '102 recipient early', '101 initiator confirmed', '102 recipient confirmed', `101 initiator terminated/${callerEnd}`, `102 recipient terminated/${calleeEnd}`],
      `BYE from the ${byeFrom}`,
    );
    const d = rec.last.get('101')!;
    t.match(d, { local: { identity: 'sip:101@pbx.test', display: 'Alice' }, remote: { identity: 'sip:102@pbx.test' } }, 'identities');
    t.not(rec.last.get('101')!.id, rec.last.get('102')!.id, 'one dialog id per participant');
  }
});

t.test('calls that never connect: cancelled by the caller, rejected with the callee status', async (t) => {
  const cases: { name: string; run: (x: Awaited<ReturnType<typeof setUp>>) => Promise<void>; end: string }[] = [
    {
      name: 'CANCEL from the caller',
      end: 'terminated/cancelled',
      run: async ({ alice, bob }) => {
        await alice.call('102');
        const inv = bob.takeRequest('INVITE')!;
        await bob.reply(inv, 180);
        await alice.cancel();
        await bob.reply(bob.takeRequest('CANCEL')!, 200);
        await bob.reply(inv, 487);
      },
    },
    {
      name: '486 from the callee',
      end: 'terminated/rejected/486',
      run: async ({ alice, bob }) => {
        await alice.call('102');
        await bob.reply(bob.takeRequest('INVITE')!, 486);
      },
    },
  ];
  for (const c of cases) {
    const x = await setUp();
    await c.run(x);
    t.same(
      x.rec.lines.filter((l) => l.includes('terminated')),
      [`101 initiator ${c.end}`, `102 recipient ${c.end}`],
      c.name,
    );
  }
});

const device: Route = { target: { kind: 'device' }, number: '100', rule: -1 };
const trunk: Route = { target: { kind: 'trunk', trunk: 'itsp' }, number: '0123', rule: 0 };

function call(id: string): ReportedCall {
  return { id, parties: { a: { user: '101', display: 'Alice' }, b: { user: '100' } } };
}
function provisional(withTag: boolean) {
  const h = new Headers();
  h.append('To', withTag ? '<sip:x@y>;tag=t1' : '<sip:x@y>');
  return createResponse(180, 'Ringing', h, Buffer.alloc(0));
}

t.test('the reporter alone: the device rings and hangs up, trunks are not resources, states only go forward', async (t) => {
  const rec = recorder();
  const r = new DialogEventReporter(rec.sink, 'hs.test', () => '100');
  const c1 = call('c1');
  r.routed(c1, '101', device);
  r.ringing(c1);
  r.answered(c1);
  r.provisional(c1, provisional(true));
  r.ended(c1, 'hung up by the device');
  r.ended(c1, 'hung up by the device');
  t.same(rec.lines, [
    '101 initiator trying',
    '100 recipient trying',
    '101 initiator early',
    '100 recipient early',
    '101 initiator confirmed',
    '100 recipient confirmed',
    '101 initiator terminated/remote-bye',
    '100 recipient terminated/local-bye',
  ], 'a late provisional and a second end change nothing');

  rec.lines.length = 0;
  const c2 = call('c2');
  r.routed(c2, undefined, device);
  r.provisional(c2, provisional(false));
  r.provisional(c2, provisional(true));
  r.provisional(c2, provisional(false));
  r.ended(c2, 'rejected 480');
  t.same(rec.lines, ['100 recipient trying', '100 recipient proceeding', '100 recipient early', '100 recipient terminated/rejected/480'], 'from a trunk: only the device; no To tag is proceeding');

  rec.lines.length = 0;
  const c3 = call('c3');
  r.routed(c3, '101', trunk);
  r.answered(c3);
  r.ended(c3, 'RTP timeout');
  t.same(rec.lines, ['101 initiator trying', '101 initiator confirmed', '101 initiator terminated/remote-bye'], 'to a trunk: only the caller; a hang-up by the gateway is remote');

  rec.lines.length = 0;
  r.routed(call('c4'), undefined, trunk);
  t.same(rec.lines, [], 'nothing local: nothing reported');
});
