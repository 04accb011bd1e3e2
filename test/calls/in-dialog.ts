/**
 * What happens inside an established call: re-INVITE hold/resume and glare, INFO pass-through,
 * blind transfer by REFER, session timers (RFC 4028), RTP inactivity, and trunk legs (Digest on
 * 401, inbound routing).
 */
import t from 'tap';
import type { SipRequest, SipResponse } from '../../src/sip/message/message.ts';
import { SipHarness, TRUNK_ADDRESS, sdp, sdpLabel, type Phone } from '../helpers/sip-harness.ts';

async function connected(opts: ConstructorParameters<typeof SipHarness>[0] = {}, bobHeaders: [string, string][] = []) {
  const h = new SipHarness(opts);
  const alice = h.phone('101', '192.0.2.11');
  const bob = h.phone('102', '192.0.2.12');
  h.bind(bob);
  await alice.call('102');
  const inv = bob.takeRequest('INVITE')!;
  await bob.reply(inv, 200, { sdp: sdp('bob'), headers: bobHeaders });
  bob.takeRequest('ACK');
  const ok = alice.takeResponse(200)!;
  await alice.ack2xx(ok);
  alice.inbox.length = 0;
  bob.inbox.length = 0;
  return { h, alice, bob, ok };
}

function finalOf(p: Phone): SipResponse | undefined {
  return p.inbox.find((m): m is SipResponse => m.kind === 'response' && m.status >= 200);
}

t.test('re-INVITE for hold passes through with its direction; ACKed on both legs', async (t) => {
  const { h, alice, bob } = await connected();
  await alice.request('INVITE', { sdp: sdp('alice-hold', 'sendonly') });
  const reinvite = bob.takeRequest('INVITE')!;
  t.ok(reinvite, 'relayed to the other leg');
  t.equal(sdpLabel(reinvite), 'gw-offer-to-b');
  t.match(reinvite.body.toString(), /a=sendonly/, 'the hold direction passes through');
  t.match(reinvite.headers.get('Contact'), /sip:gw@192\.0\.2\.1/);
  await bob.reply(reinvite, 200, { sdp: sdp('bob-held', 'recvonly') });
  t.ok(bob.takeRequest('ACK'), 'the gateway ACKs the other leg\'s 2xx');
  const ok = alice.takeResponse(200)!;
  t.equal(sdpLabel(ok), 'gw-answer-to-a');
  t.match(ok.body.toString(), /a=recvonly/);
  await alice.ack2xx(ok);
  await h.advance(4000);
  t.equal(alice.takeResponse(200), undefined, 'ACKed: no retransmission');
  // Resume.
  await alice.request('INVITE', { sdp: sdp('alice-resume') });
  const resume = bob.takeRequest('INVITE')!;
  t.match(resume.body.toString(), /a=sendrecv/);
  await bob.reply(resume, 200, { sdp: sdp('bob-resumed') });
  t.ok(alice.takeResponse(200), 'resumed');
});

t.test('glare: a re-INVITE while one is pending gets 491 (§14.2)', async (t) => {
  const { alice, bob } = await connected();
  await alice.request('INVITE', { sdp: sdp('alice-2') });
  t.ok(bob.takeRequest('INVITE'));
  await bob.request('INVITE', { sdp: sdp('bob-2') });
  t.ok(bob.takeResponse(491), '491 Request Pending');
});

t.test('UPDATE without SDP is a session refresh answered by the gateway', async (t) => {
  const { alice, bob } = await connected();
  await alice.request('UPDATE', { headers: [['Session-Expires', '1800;refresher=uac'], ['Supported', 'timer']] });
  const ok = alice.takeResponse(200)!;
  t.match(ok.headers.get('Session-Expires'), /^1800;refresher=uac$/, 'refresher kept with the peer');
  t.same(bob.methods(), [], 'nothing relayed');
  await alice.request('UPDATE', { headers: [['Session-Expires', '30']] });
  const tooSmall = alice.takeResponse(422);
  t.equal(tooSmall?.headers.get('Min-SE'), '90', '422 with Min-SE (RFC 4028 §9)');
});

t.test('INFO (DTMF) is relayed with its body and the final status comes back', async (t) => {
  const { alice, bob } = await connected();
  await alice.request('INFO', { body: 'Signal=5\r\nDuration=160\r\n', contentType: 'application/dtmf-relay' });
  const info = bob.takeRequest('INFO')!;
  t.ok(info, 'INFO relayed');
  t.equal(info.headers.get('Content-Type'), 'application/dtmf-relay');
  t.equal(info.body.toString(), 'Signal=5\r\nDuration=160\r\n');
  await bob.reply(info, 200);
  t.equal(finalOf(alice)?.status, 200);
  await bob.request('INFO', { body: 'x', contentType: 'application/x-unknown' });
  const back = alice.takeRequest('INFO')!;
  await alice.reply(back, 415);
  t.equal(finalOf(bob)?.status, 415, 'a failure status is relayed too');
});

t.test('REFER: blind transfer by the callee to 103', async (t) => {
  const { h, alice, bob } = await connected();
  const carol = h.phone('103', '192.0.2.13');
  h.bind(carol);
  await bob.request('REFER', { headers: [['Refer-To', '<sip:103@pbx.test>'], ['Contact', bob.contact]] });
  t.ok(bob.takeResponse(202), '202 Accepted');
  const trying = bob.takeRequest('NOTIFY')!;
  t.equal(trying.body.toString(), 'SIP/2.0 100 Trying\r\n');
  t.equal(trying.headers.get('Event'), 'refer');
  t.match(trying.headers.get('Subscription-State'), /^active/);
  t.match(trying.headers.get('Content-Type'), /^message\/sipfrag/);
  await bob.reply(trying, 200);
  const inv = carol.takeRequest('INVITE')!;
  t.ok(inv, 'the target is called');
  t.equal(sdpLabel(inv), 'gw-reoffer-to-b', 'with a fresh offer for the transferor\'s slot');
  t.match(inv.headers.get('From'), /"Alice" <sip:101@pbx\.test>/, 'from the party who stays');
  await carol.reply(inv, 180);
  await carol.reply(inv, 200, { sdp: sdp('carol') });
  t.ok(carol.takeRequest('ACK'));
  t.ok(h.media.last.log.includes('answer b carol'), 'the target\'s answer goes to the media session');
  const done = bob.takeRequest('NOTIFY')!;
  t.equal(done.body.toString(), 'SIP/2.0 200 OK\r\n');
  t.match(done.headers.get('Subscription-State'), /^terminated/);
  t.ok(bob.takeRequest('BYE'), 'the transferor is hung up');
  t.same(alice.methods(), [], 'the caller notices nothing');
  await alice.request('BYE');
  t.ok(carol.takeRequest('BYE'), 'the caller now talks to the target');
  t.same(h.b2bua.calls(), []);
});

t.test('REFER to a target that fails: NOTIFY with the failure, the call stays', async (t) => {
  const { h, alice, bob } = await connected();
  const dave = h.phone('104', '192.0.2.14');
  h.bind(dave);
  await alice.request('REFER', { headers: [['Refer-To', '<sip:104@pbx.test>']] });
  t.ok(alice.takeResponse(202));
  alice.take('NOTIFY');
  const inv = dave.takeRequest('INVITE')!;
  t.equal(sdpLabel(inv), 'gw-reoffer-to-a');
  await dave.reply(inv, 486);
  const notify = alice.takeRequest('NOTIFY')!;
  t.equal(notify.body.toString(), 'SIP/2.0 486 Busy Here\r\n');
  t.equal(h.b2bua.calls().length, 1, 'the original call stays up');
  await bob.request('BYE');
  t.ok(alice.takeRequest('BYE'), 'and still connects the original parties');

  const { alice: a2 } = await connected();
  await a2.request('REFER', { headers: [['Refer-To', '<sip:999@pbx.test>']] });
  t.ok(a2.takeResponse(202));
  const bodies = a2.inbox.flatMap((m) => (m.kind === 'request' && m.method === 'NOTIFY' ? [m.body.toString()] : []));
  t.same(bodies, ['SIP/2.0 100 Trying\r\n', 'SIP/2.0 404 Not Found\r\n'], 'an unroutable target: 404 in the NOTIFY');
});

t.test('session timer: no refresh from the peer that refreshes ends the call with BYE on both legs', async (t) => {
  const { h, alice, bob } = await connected({}, [['Session-Expires', '120;refresher=uas'], ['Require', 'timer']]);
  // §10: BYE before expiry minus min(32 s, interval/3) = 88 s.
  await h.advance(87_000);
  t.same(bob.methods(), []);
  await h.advance(1000);
  const bye = bob.takeRequest('BYE')!;
  t.ok(bye, 'BYE to the leg that did not refresh');
  t.match(bye.headers.get('Reason'), /Session expired/);
  t.ok(alice.takeRequest('BYE'), 'and to the other leg');
  t.same(h.b2bua.calls(), []);
});

t.test('session timer: the gateway refreshes at half the interval (UPDATE if allowed, else re-INVITE)', async (t) => {
  const { h, alice, bob } = await connected({ sessionExpires: 600 });
  await h.advance(300_000);
  const update = alice.takeRequest('UPDATE')!;
  t.ok(update, 'UPDATE to the caller, who allows it');
  t.equal(update.body.length, 0, 'without SDP');
  t.match(update.headers.get('Session-Expires'), /^600;refresher=uac$/);
  await alice.reply(update, 200, { headers: [['Session-Expires', '600;refresher=uac']] });
  const reinvite = bob.takeRequest('INVITE')!;
  t.ok(reinvite, 're-INVITE to the callee, whose Allow lacks UPDATE');
  t.equal(sdpLabel(reinvite), 'gw-reoffer-to-b', 'with the current media');
  await bob.reply(reinvite, 200, { sdp: sdp('bob-refresh') });
  t.ok(bob.takeRequest('ACK'));
  await h.advance(299_000);
  t.equal(h.b2bua.calls().length, 1, 'refreshed: still up');
  await h.advance(1000);
  t.ok(alice.takeRequest('UPDATE'), 'next refresh');
  await h.advance(300_000);
  t.ok(alice.takeRequest('BYE'), 'a refresh that is never answered ends the call');
});

t.test('RTP inactivity ends the call unless it is on hold', async (t) => {
  const { h, alice, bob } = await connected({ rtpTimeoutSeconds: 30 });
  const media = h.media.last;
  media.idle.b = 29_000;
  await h.advance(30_000);
  t.same(bob.methods(), [], 'within the limit');
  media.idle.b = 31_000;
  await h.advance(5000);
  const bye = bob.takeRequest('BYE')!;
  t.equal(bye.headers.get('Reason'), 'SIP;cause=408;text="RTP timeout"');
  t.equal(alice.takeRequest('BYE')?.headers.get('Reason'), 'SIP;cause=408;text="RTP timeout"');

  const held = await connected({ rtpTimeoutSeconds: 30 });
  await held.alice.request('INVITE', { sdp: sdp('alice-hold', 'sendonly') });
  const reinvite = held.bob.takeRequest('INVITE')!;
  await held.bob.reply(reinvite, 200, { sdp: sdp('bob-held', 'recvonly') });
  await held.alice.ack2xx(held.alice.takeResponse(200)!);
  held.h.media.last.idle.a = 120_000;
  held.h.media.last.idle.b = 120_000;
  await held.h.advance(10_000);
  t.equal(held.bob.takeRequest('BYE'), undefined, 'silence on hold is expected');
});

t.test('trunk: outbound INVITE with the trunk identity, Digest retry on 401, answer relayed', async (t) => {
  const h = new SipHarness();
  const alice = h.phone('101', '192.0.2.11');
  const itsp = h.phone('itsp', TRUNK_ADDRESS, 5060);
  await alice.call('0123');
  const first = itsp.takeRequest('INVITE')!;
  t.equal(first.uri, 'sip:123@itsp.example', 'stripped number at the trunk domain');
  t.match(first.headers.get('From'), /^<sip:gwuser@itsp\.example>;tag=/);
  t.match(first.headers.get('Contact'), /203\.0\.113\.1/, 'public address on the trunk leg');
  t.equal(h.media.last.local.b, '203.0.113.1');
  await itsp.reply(first, 401, { headers: [['WWW-Authenticate', 'Digest realm="itsp", nonce="n1", qop="auth", algorithm=MD5']] });
  t.ok(itsp.takeRequest('ACK'), 'the 401 is ACKed');
  const second = itsp.takeRequest('INVITE') as SipRequest;
  t.ok(second, 'INVITE retried');
  t.equal(second.headers.get('Call-ID'), first.headers.get('Call-ID'), 'same Call-ID');
  t.match(second.headers.get('CSeq'), /^2 INVITE$/, 'next CSeq');
  t.match(second.headers.get('Authorization'), /^Digest username="gwuser", realm="itsp", nonce="n1"/);
  await itsp.reply(second, 401, { headers: [['WWW-Authenticate', 'Digest realm="itsp", nonce="n2", algorithm=MD5']] });
  t.equal(itsp.takeRequest('INVITE'), undefined, 'a second non-stale challenge is not answered');
  t.equal(finalOf(alice)?.status, 403, 'the caller learns the trunk refused');

  const h2 = new SipHarness();
  const a2 = h2.phone('101', '192.0.2.11');
  const t2 = h2.phone('itsp', TRUNK_ADDRESS, 5060);
  await a2.call('0456');
  const inv = t2.takeRequest('INVITE')!;
  await t2.reply(inv, 407, { headers: [['Proxy-Authenticate', 'Digest realm="itsp", nonce="p1", algorithm=MD5']] });
  t.ok(t2.takeRequest('ACK'), 'the 407 is ACKed');
  const retry = t2.takeRequest('INVITE')!;
  t.match(retry.headers.get('Proxy-Authorization'), /^Digest username="gwuser"/);
  await t2.reply(retry, 200, { sdp: sdp('itsp') });
  const ack = t2.takeRequest('ACK')!;
  t.match(ack.headers.get('Proxy-Authorization'), /^Digest/, 'the ACK carries the INVITE\'s credentials');
  t.ok(a2.takeResponse(200), 'answered');
});

t.test('trunk: inbound calls are routed by the dial plan; emergency numbers go to the first trunk', async (t) => {
  const h = new SipHarness();
  const bob = h.phone('102', '192.0.2.12');
  h.bind(bob);
  const itsp = h.phone('itsp', TRUNK_ADDRESS, 5060);
  await itsp.call('102', { auth: false });
  const inv = bob.takeRequest('INVITE')!;
  t.ok(inv, 'dialled number 102 rings extension 102');
  t.match(inv.headers.get('From'), /<sip:itsp@pbx\.test>/, 'caller ID from the trunk\'s From');
  await itsp.call('0999', { auth: false });
  t.equal(finalOf(itsp)?.status, 403, 'no trunk-to-trunk calls');

  const alice = h.phone('101', '192.0.2.11');
  await alice.call('112');
  t.ok(itsp.inbox.some((m) => m.kind === 'request' && m.method === 'INVITE' && m.uri === 'sip:112@itsp.example'), 'emergency to the trunk');
});

t.test('a short RTP timeout is checked at least twice per timeout: 3 s ends the call within 4.5 s', async (t) => {
  // A fixed 5 s check let a 3 s timeout fire only up to 8 s after the last packet.
  const { h, alice, bob } = await connected({ rtpTimeoutSeconds: 3 });
  const media = h.media.last;
  media.idle.b = 2_900;
  await h.advance(3_000);
  t.same(bob.methods(), [], 'within the limit');
  media.idle.b = 3_100;
  await h.advance(1_500);
  t.equal(bob.takeRequest('BYE')?.headers.get('Reason'), 'SIP;cause=408;text="RTP timeout"', 'BYE to the silent leg 1.5 s later');
  t.ok(alice.takeRequest('BYE'), 'and to the other leg');
});

t.test('RTP inactivity counts from the (re)start of the media: ringing and a long hold are not silence', async (t) => {
  // The relay's idle time runs from its opening (ringing included) and through a hold: a check
  // right after the answer or a resume, before the first packet, must not end the call.
  const { h, alice, bob } = await connected({ rtpTimeoutSeconds: 30 });
  const media = h.media.last;
  media.idle.a = 45_000;
  media.idle.b = 45_000;
  await h.advance(5_000);
  t.same(bob.methods(), [], 'no RTP yet 5 s after the answer, after 40 s of ringing: not a timeout');
  media.idle.a = 0;
  media.idle.b = 0;

  await alice.request('INVITE', { sdp: sdp('alice-hold', 'sendonly') });
  await bob.reply(bob.takeRequest('INVITE')!, 200, { sdp: sdp('bob-held', 'recvonly') });
  await alice.ack2xx(alice.takeResponse(200)!);
  media.idle.a = 120_000;
  media.idle.b = 120_000;
  await h.advance(120_000);
  t.same(bob.methods(), ['ACK'], 'two minutes on hold');

  await alice.request('INVITE', { sdp: sdp('alice-resume') });
  await bob.reply(bob.takeRequest('INVITE')!, 200, { sdp: sdp('bob-resume') });
  await alice.ack2xx(alice.takeResponse(200)!);
  bob.inbox.length = 0;
  await h.advance(5_000);
  t.same(bob.methods(), [], 'resumed, first packets not yet there: no timeout');
  await h.advance(30_000);
  t.equal(bob.takeRequest('BYE')?.headers.get('Reason'), 'SIP;cause=408;text="RTP timeout"', 'still silent 30 s after the resume: timeout');
});

t.test('the end of every call is logged with its cause', async (t) => {
  const ended = (h: SipHarness) => h.logger.records.filter((r) => r.msg === 'call ended').map((r) => r.fields.reason);
  const cases: { name: string; cause: string; run: (c: Awaited<ReturnType<typeof connected>>) => Promise<void> }[] = [
    { name: 'BYE from the caller', cause: 'BYE from leg a', run: async ({ alice }) => void (await alice.request('BYE')) },
    { name: 'BYE from the callee', cause: 'BYE from leg b', run: async ({ bob }) => void (await bob.request('BYE')) },
    {
      name: 'RTP timeout',
      cause: 'SIP;cause=408;text="RTP timeout"',
      run: async ({ h }) => {
        h.media.last.idle.a = 61_000;
        await h.advance(65_000);
      },
    },
  ];
  for (const c of cases) {
    const call = await connected();
    await c.run(call);
    t.same(ended(call.h), [c.cause], c.name);
  }

  const h = new SipHarness();
  const alice = h.phone('101', '192.0.2.11');
  const bob = h.phone('102', '192.0.2.12');
  h.bind(bob);
  await alice.call('102');
  await bob.reply(bob.takeRequest('INVITE')!, 486);
  await alice.call('102');
  await bob.reply(bob.takeRequest('INVITE')!, 180);
  await alice.cancel();
  t.same(ended(h), ['rejected 486', 'cancelled by the caller'], 'a busy callee, a cancelled call');
});
