/**
 * Call set-up through the B2BUA, in memory: two legs joined by the gateway (INVITE, 100,
 * 180/183, 200, ACK, BYE), forking, CANCEL, failure mapping, timeouts, authentication and
 * source checks, routing outcomes.
 */
import t from 'tap';
import type { SipRequest, SipResponse } from '../../src/sip/message/message.ts';
import { SipHarness, TRUNK_ADDRESS, sdp, sdpLabel, type Phone } from '../helpers/sip-harness.ts';

async function setUp(opts: ConstructorParameters<typeof SipHarness>[0] = {}) {
  const h = new SipHarness(opts);
  const alice = h.phone('101', '192.0.2.11');
  const bob = h.phone('102', '192.0.2.12');
  h.bind(bob);
  return { h, alice, bob };
}

/** Alice calls 102; Bob rings and answers; Alice ACKs. Returns Bob's INVITE. */
async function connect(h: SipHarness, alice: Phone, bob: Phone): Promise<SipRequest> {
  await alice.call('102');
  const inv = bob.takeRequest('INVITE')!;
  await bob.reply(inv, 180);
  await bob.reply(inv, 200, { sdp: sdp('bob') });
  const ok = alice.takeResponse(200)!;
  await alice.ack2xx(ok);
  return inv;
}

t.test('basic call: 100 at once, 180 relayed, 200 with the relayed answer, ACKs on both legs, BYE from the caller', async (t) => {
  const { h, alice, bob } = await setUp();
  await alice.call('102');
  t.same(alice.statuses(), [100], '100 Trying to the caller at once');
  const inv = bob.takeRequest('INVITE')!;
  t.ok(inv, 'the callee gets an INVITE');
  t.equal(inv.uri, 'sip:102@192.0.2.12:5062', 'Request-URI is the registered contact');
  t.equal(inv.headers.get('Max-Forwards'), '69', 'Max-Forwards is the caller\'s minus one');
  t.match(inv.headers.get('From'), /^"Alice" <sip:101@pbx\.test>;tag=/, 'From: caller name and extension');
  t.not(inv.headers.get('Call-ID'), alice.invite!.headers.get('Call-ID'), 'a new Call-ID on the B leg');
  t.match(inv.headers.get('Session-Expires'), /^1800;refresher=uac$/, 'session timer offered');
  t.match(inv.headers.get('Supported'), /timer/);
  t.equal(sdpLabel(inv), 'gw-offer-to-b', 'the B leg carries the media session\'s offer');
  t.equal(h.media.last.local.a, '192.0.2.1', 'local address set for the A leg');

  await bob.reply(inv, 180);
  const ringing = alice.takeResponse(180);
  t.ok(ringing, '180 relayed');
  t.match(ringing?.headers.get('To'), /;tag=/, 'with our To tag');

  await bob.reply(inv, 200, { sdp: sdp('bob') });
  t.ok(bob.takeRequest('ACK'), 'the gateway ACKs the callee\'s 2xx');
  const ok = alice.takeResponse(200)!;
  t.equal(sdpLabel(ok), 'gw-answer-to-a', 'the caller gets the media session\'s answer');
  t.same(h.media.last.log, ['offer a phone-101', 'answer b bob']);
  t.match(ok.headers.get('Contact'), /^<sip:gw@192\.0\.2\.1:5060>$/);
  t.match(ok.headers.get('Session-Expires'), /^\d+;refresher=(uas|uac)$/);
  t.equal(h.b2bua.calls()[0]?.state, 'connected');
  t.equal(h.b2bua.calls()[0]?.from, '101');
  t.equal(h.b2bua.calls()[0]?.to, '102');

  await h.advance(500);
  t.ok(alice.takeResponse(200), '2xx retransmitted to the caller until the ACK (§13.3.1.4)');
  await alice.ack2xx(ok);
  await h.advance(4000);
  t.equal(alice.takeResponse(200), undefined, 'no retransmission after the ACK');

  await alice.request('BYE');
  t.ok(alice.takeResponse(200), 'BYE answered 200');
  const bye = bob.takeRequest('BYE')!;
  t.ok(bye, 'BYE sent to the callee');
  t.equal(bye.uri, 'sip:102@192.0.2.12:5062');
  await bob.reply(bye, 200);
  t.same(h.b2bua.calls(), [], 'the call is gone');
  t.ok(h.media.last.closed, 'media closed');
});

t.test('BYE from the callee ends both legs', async (t) => {
  const { h, alice, bob } = await setUp();
  await connect(h, alice, bob);
  bob.inbox.length = 0;
  await bob.request('BYE');
  t.ok(bob.takeResponse(200), 'callee\'s BYE answered');
  const bye = alice.takeRequest('BYE')!;
  t.ok(bye, 'caller gets BYE');
  t.match(bye.headers.get('To'), /tag-101/, 'in the caller\'s dialog');
  await alice.reply(bye, 200);
  t.same(h.b2bua.calls(), []);
});

t.test('forking: every contact rings, the first 200 wins, the others are CANCELled', async (t) => {
  const { h, alice, bob } = await setUp();
  const bob2 = h.phone('102', '192.0.2.22');
  const bob3 = h.phone('102', '192.0.2.23');
  h.bind(bob2);
  h.bind(bob3);
  await alice.call('102');
  const invites = [bob, bob2, bob3].map((p) => p.takeRequest('INVITE')!);
  t.equal(invites.filter(Boolean).length, 3, 'three INVITEs');
  await bob.reply(invites[0]!, 180);
  await bob2.reply(invites[1]!, 180);
  // bob3 has sent nothing yet: its CANCEL must wait for a provisional (§9.1).
  await bob2.reply(invites[1]!, 200, { sdp: sdp('bob2') });
  t.ok(bob2.takeRequest('ACK'), 'winner ACKed');
  t.ok(bob.takeRequest('CANCEL'), 'ringing fork CANCELled');
  t.equal(bob3.takeRequest('CANCEL'), undefined, 'no CANCEL before a provisional');
  await bob3.reply(invites[2]!, 180);
  const cancel3 = bob3.takeRequest('CANCEL');
  t.ok(cancel3, 'CANCEL once the provisional arrives');
  await bob3.reply(cancel3!, 200);
  await bob3.reply(invites[2]!, 487);
  const ok = alice.takeResponse(200)!;
  t.equal(sdpLabel(ok), 'gw-answer-to-a');
  await alice.ack2xx(ok);
  // A late 200 from a cancelled fork is ACKed and hung up.
  await bob.reply(invites[0]!, 200, { sdp: sdp('bob1') });
  t.ok(bob.takeRequest('ACK'), 'late 2xx ACKed');
  t.ok(bob.takeRequest('BYE'), 'and hung up');
  t.equal(h.b2bua.calls().length, 1, 'the call stays up with the winner');
  await alice.request('BYE');
  t.ok(bob2.takeRequest('BYE'), 'BYE reaches the winner only');
});

t.test('CANCEL from the caller: 200 and 487 to the caller, CANCEL to the callee', async (t) => {
  const { h, alice, bob } = await setUp();
  await alice.call('102');
  const inv = bob.takeRequest('INVITE')!;
  await bob.reply(inv, 180);
  alice.inbox.length = 0;
  await alice.cancel();
  t.same(alice.statuses(), [200, 487]);
  const cancel = bob.takeRequest('CANCEL')!;
  t.ok(cancel, 'CANCEL to the callee');
  await bob.reply(cancel, 200);
  await bob.reply(inv, 487);
  t.ok(bob.takeRequest('ACK'), 'the 487 is ACKed by the transaction');
  t.same(h.b2bua.calls(), []);
  t.ok(h.media.last.closed);
});

const failures: { name: string; answers: number[]; expect: number }[] = [
  { name: '486 Busy Here is passed back', answers: [486], expect: 486 },
  { name: '603 Decline is passed back', answers: [603], expect: 603 },
  { name: '404 is passed back', answers: [404], expect: 404 },
  { name: 'a 6xx wins over a 4xx (§16.7)', answers: [486, 603], expect: 603 },
  { name: 'the lowest class wins', answers: [500, 486], expect: 486 },
  { name: '503 becomes 500 (§16.7)', answers: [503], expect: 500 },
];
for (const c of failures) {
  t.test(`failure mapping: ${c.name}`, async (t) => {
    const h = new SipHarness();
    const alice = h.phone('101', '192.0.2.11');
    const phones = c.answers.map((_, i) => h.phone('102', `192.0.2.${30 + i}`));
    for (const p of phones) h.bind(p);
    await alice.call('102');
    for (let i = 0; i < phones.length; i++) {
      const inv = phones[i]!.takeRequest('INVITE')!;
      await phones[i]!.reply(inv, c.answers[i]!);
    }
    const final = alice.inbox.find((m): m is SipResponse => m.kind === 'response' && m.status >= 200);
    t.equal(final?.status, c.expect);
    t.same(h.b2bua.calls(), []);
  });
}

t.test('no answer within noAnswerSeconds: CANCEL the forks, 480 to the caller', async (t) => {
  const { h, alice, bob } = await setUp({ noAnswerSeconds: 20 });
  await alice.call('102');
  const inv = bob.takeRequest('INVITE')!;
  await bob.reply(inv, 180);
  await h.advance(19_999);
  t.equal(bob.takeRequest('CANCEL'), undefined, 'not yet');
  await h.advance(1);
  t.ok(bob.takeRequest('CANCEL'), 'CANCEL at the timeout');
  t.ok(alice.takeResponse(480), '480 to the caller');
});

t.test('authentication and sources: 407 for LAN phones, none from the trunk, 403 for strangers', async (t) => {
  const { h, alice } = await setUp();
  await alice.call('102', { auth: false });
  t.ok(alice.takeResponse(407), 'a LAN INVITE is challenged');
  t.equal(h.media.sessions.length, 0, 'no media before authentication');

  const trunk = h.phone('gwuser', TRUNK_ADDRESS, 5060);
  const dev = h.phone('100', '192.0.2.40');
  h.bind(dev);
  await trunk.call('gwuser', { auth: false });
  t.equal(trunk.takeResponse(407), undefined, 'no challenge from the trunk\'s address');
  t.ok(trunk.takeResponse(100));
  t.ok(dev.takeRequest('INVITE'), 'an unrouted trunk call rings the device');

  const stranger = h.phone('101', '203.0.113.66');
  await stranger.call('102', { auth: false });
  t.ok(stranger.takeResponse(403), 'a source outside allowedSources gets 403');

  const wrong = h.phone('103', '192.0.2.50');
  await wrong.call('102', { auth: false });
  const challenge = wrong.takeResponse(407)!;
  const { DigestClient } = await import('../../src/sip/auth/digest-client.ts');
  const bad = new DigestClient({ username: '103', password: 'guess', random: h.random }).authorize({
    challenges: challenge.headers.getAll('Proxy-Authenticate'),
    method: 'INVITE',
    uri: wrong.invite!.uri,
  })!;
  await wrong.call('102', { auth: false, headers: [['Proxy-Authorization', bad]] });
  t.ok(wrong.takeResponse(407), 'wrong credentials are challenged again');
});

t.test('routing outcomes', async (t) => {
  const cases: { name: string; dial: string; expect: number; maxForwards?: number; sdp?: string; noPorts?: boolean; headers?: [string, string][] }[] = [
    { name: 'no dial plan match: 404', dial: '999', expect: 404 },
    { name: 'peer target: 404 for now', dial: '555', expect: 404 },
    { name: 'extension without bindings: 480', dial: '103', expect: 480 },
    { name: 'Max-Forwards 0: 483', dial: '102', expect: 483, maxForwards: 0 },
    { name: 'no common codec: 488', dial: '102', expect: 488, sdp: sdp('bad', 'sendrecv', '99') },
    { name: 'no RTP ports: 503', dial: '102', expect: 503, noPorts: true },
    { name: 'Session-Expires below Min-SE: 422 (RFC 4028 §9)', dial: '102', expect: 422, headers: [['Session-Expires', '30']] },
    { name: 'delayed offer (no SDP) is not supported yet: 488', dial: '102', expect: 488, sdp: '' },
  ];
  for (const c of cases) {
    const { h, alice } = await setUp();
    if (c.noPorts) h.media.exhausted = true;
    await alice.call(c.dial, {
      ...(c.maxForwards !== undefined ? { maxForwards: c.maxForwards } : {}),
      ...(c.sdp !== undefined ? { sdp: c.sdp } : {}),
      ...(c.headers ? { headers: c.headers } : {}),
    });
    const final = alice.inbox.find((m): m is SipResponse => m.kind === 'response' && m.status >= 200);
    t.equal(final?.status, c.expect, c.name);
    t.same(h.b2bua.calls(), [], `${c.name}: no call left`);
  }
});

t.test('echo target *43 answers locally with the echo SDP', async (t) => {
  const { h, alice } = await setUp();
  await alice.call('*43');
  const ok = alice.takeResponse(200)!;
  t.ok(ok, 'answered');
  t.equal(sdpLabel(ok), 'gw-echo');
  t.same(h.media.last.log, ['echo a phone-101']);
  await alice.ack2xx(ok);
  await alice.request('BYE');
  t.ok(alice.takeResponse(200));
  t.same(h.b2bua.calls(), []);
  t.ok(h.media.last.closed);
});

t.test('early media: a 183 with SDP reaches the caller as 183 with the relayed answer', async (t) => {
  const { h, alice, bob } = await setUp();
  await alice.call('102');
  const inv = bob.takeRequest('INVITE')!;
  await bob.reply(inv, 183, { sdp: sdp('bob-early') });
  const early = alice.takeResponse(183)!;
  t.equal(sdpLabel(early), 'gw-answer-to-a');
  await bob.reply(inv, 200, { sdp: sdp('bob-early') });
  const ok = alice.takeResponse(200)!;
  t.equal(sdpLabel(ok), 'gw-answer-to-a', 'same answer in the 200');
  t.same(h.media.last.log, ['offer a phone-101', 'answer b bob-early'], 'the same SDP is not applied twice');
});

t.test('a callee that never answers the INVITE: 408 to the caller (Timer B)', async (t) => {
  const { h, alice, bob } = await setUp();
  await alice.call('102');
  t.ok(bob.takeRequest('INVITE'));
  await h.advance(32_000);
  t.ok(alice.takeResponse(408));
});

t.test('shutdown hangs up every call with BYE', async (t) => {
  const { h, alice, bob } = await setUp();
  await connect(h, alice, bob);
  h.b2bua.close();
  await h.flush();
  t.ok(alice.takeRequest('BYE'));
  t.ok(bob.takeRequest('BYE'));
  t.same(h.b2bua.calls(), []);
});

t.test('no ACK for the 2xx within 64*T1: the call is hung up on both legs (§13.3.1.4)', async (t) => {
  const { h, alice, bob } = await setUp();
  await alice.call('102');
  const inv = bob.takeRequest('INVITE')!;
  await bob.reply(inv, 200, { sdp: sdp('bob') });
  await h.advance(31_999);
  t.ok(alice.statuses().filter((s) => s === 200).length >= 7, '2xx retransmitted with T1 doubling to T2');
  t.equal(bob.takeRequest('BYE'), undefined);
  await h.advance(1);
  t.ok(bob.takeRequest('BYE'), 'BYE to the callee');
  t.ok(alice.takeRequest('BYE'), 'BYE to the caller');
  t.same(h.b2bua.calls(), []);
});
