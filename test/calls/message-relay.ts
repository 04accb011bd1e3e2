/**
 * Instant messages (RFC 3428 MESSAGE) through the gateway, in memory: the real stack, UAS core
 * and relay, phones and a trunk played by the test. Routing and the status the sender gets,
 * digest auth, the size limit, forking to several phones, trunks both ways with their
 * challenges, the device's inbox and echo.
 */
import t from 'tap';
import { chooseFailure } from '../../src/calls/fork-set.ts';
import { DialPlan } from '../../src/calls/dialplan.ts';
import { MessageInbox } from '../../src/calls/message-inbox.ts';
import { MessageRelay, messageFailure, type MessageOrigin } from '../../src/calls/message-relay.ts';
import { DigestClient } from '../../src/sip/auth/digest-client.ts';
import { DigestServer } from '../../src/sip/auth/digest-server.ts';
import { buildRequest } from '../../src/sip/dialog/request-builder.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message/message.ts';
import type { ServerTransaction } from '../../src/sip/transaction/types.ts';
import { ExtensionCredentials, RequestAuthenticator } from '../../src/sip/ua/request-authenticator.ts';
import { UasCore } from '../../src/sip/ua/uas-core.ts';
import { DOMAIN, GW, SipHarness, TRUNK_ADDRESS, type Phone } from '../helpers/sip-harness.ts';

const LIMIT = 200;

/** The harness's stack and phones, with a UAS core that hands MESSAGE to a relay. */
function setUp(opts: { keep?: number; device?: boolean } = {}) {
  const h = new SipHarness();
  const inbox = new MessageInbox({ logger: h.logger.child('messages'), keep: () => opts.keep ?? 20 });
  const dialplan = new DialPlan([{ match: '*43', to: 'echo' }, { match: '0x.', to: 'trunk:itsp', strip: 1 }, { match: '555', to: 'peer' }], {
    extensions: ['101', '102', '103', '104'],
    deviceExtension: '100',
    trunks: ['itsp'],
    emergencyNumbers: ['112'],
  });
  const relay = new MessageRelay({
    transactions: h.stack.transactions,
    clock: h.clock,
    random: h.random,
    logger: h.logger,
    userAgent: 'hookswitch-test',
    domain: DOMAIN,
    localEndpoint: () => ({ address: GW.address, port: GW.port }),
    registrar: { lookup: (user) => h.bindings.get(user) ?? [] },
    dialplan,
    deviceExtension: '100',
    trunks: [h.trunk],
    extensions: { '101': { name: 'Alice' }, '102': { name: 'Bob' } },
    ...(opts.device === false ? {} : { device: inbox }),
  });
  const digest = new DigestServer({ realm: DOMAIN, secret: Buffer.alloc(32, 3), clock: h.clock, random: h.random, algorithms: ['MD5'] });
  const passwords: Record<string, { password: string }> = {};
  for (const ext of ['100', '101', '102', '103', '104']) passwords[ext] = { password: `pw${ext}` };
  const core = new UasCore({
    logger: h.logger,
    auth: new RequestAuthenticator({ digest, credentials: new ExtensionCredentials(passwords), logger: h.logger }),
    userAgent: 'hookswitch-test',
    calls: h.b2bua,
    messages: { maxBytes: () => LIMIT, message: (req, tx, from) => relay.receive(req, tx, from) },
    trunkFor: (source) => (source.address === TRUNK_ADDRESS ? 'itsp' : undefined),
  });
  h.stack.transactions.setUser(core);
  const alice = h.phone('101', '192.0.2.11');
  const bob = h.phone('102', '192.0.2.12');
  h.bind(bob);
  const trunk = h.phone('itsp', TRUNK_ADDRESS, 5060);
  return { h, inbox, relay, alice, bob, trunk };
}

let seq = 0;

/**
 * `from` sends a MESSAGE to `to` and, unless `auth` is false or it comes from the trunk, answers
 * the 407 with its password. Returns the last request sent.
 */
async function message(
  from: Phone,
  to: string,
  body: string | Buffer,
  opts: { auth?: boolean; contentType?: string | null; maxForwards?: number; fromUser?: string } = {},
): Promise<SipRequest> {
  const callId = `msg-${++seq}`;
  const build = (cseq: number, extra: [string, string][]) =>
    buildRequest({
      method: 'MESSAGE',
      requestUri: `sip:${to}@${DOMAIN}`,
      from: `<sip:${opts.fromUser ?? from.ext}@${DOMAIN}>;tag=mt-${seq}`,
      to: `<sip:${to}@${DOMAIN}>`,
      callId,
      cseq,
      random: from.h.random,
      via: from.via(),
      maxForwards: opts.maxForwards ?? 70,
      extraHeaders: [...(opts.contentType === null ? [] : ([['Content-Type', opts.contentType ?? 'text/plain;charset=utf-8']] as [string, string][])), ['Date', 'Sat, 13 Nov 2010 23:29:00 GMT'], ...extra],
      body: Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'),
    }).request;
  let req = build(1, []);
  await from.send(req);
  if (opts.auth === false || from.endpoint.address === TRUNK_ADDRESS) return req;
  const challenge = from.take((m) => m.kind === 'response' && m.status === 407 && m.headers.get('Call-ID') === callId) as SipResponse | undefined;
  if (!challenge) return req;
  const client = new DigestClient({ username: from.ext, password: `pw${from.ext}`, random: from.h.random });
  const value = client.authorize({ challenges: challenge.headers.getAll('Proxy-Authenticate'), method: 'MESSAGE', uri: req.uri })!;
  req = build(2, [['Proxy-Authorization', value]]);
  await from.send(req);
  return req;
}

/** The final response `p` got for `req` (matched by Call-ID and CSeq), taken from its inbox. */
function finalFor(p: Phone, req: SipRequest): SipResponse | undefined {
  return p.take(
    (m) => m.kind === 'response' && m.status >= 200 && m.headers.get('Call-ID') === req.headers.get('Call-ID') && m.headers.get('CSeq') === req.headers.get('CSeq'),
  ) as SipResponse | undefined;
}

t.test('extension to extension: a new request to the registered contact, the 2xx relayed back', async (t) => {
  const { alice, bob } = setUp();
  const sent = await message(alice, '102', 'hello Bob ☺');
  const got = bob.takeRequest('MESSAGE')!;
  t.ok(got, 'Bob gets a MESSAGE');
  t.equal(got.uri, 'sip:102@192.0.2.12:5062', 'Request-URI: the binding\'s contact');
  t.match(got.headers.get('From'), /^"Alice" <sip:101@pbx\.test>;tag=/, 'From: the extension and its configured name, our tag');
  t.notMatch(got.headers.get('From'), /mt-/, 'not the sender\'s tag (B2BUA, not a proxy)');
  t.equal(got.headers.get('To'), '<sip:102@pbx.test>');
  t.not(got.headers.get('Call-ID'), sent.headers.get('Call-ID'), 'a Call-ID of its own');
  t.equal(got.headers.get('Max-Forwards'), '69', 'Max-Forwards one less');
  t.equal(got.headers.getAll('Via').length, 1, 'only our Via');
  t.match(got.headers.get('Via'), /^SIP\/2\.0\/UDP 192\.0\.2\.1:5060;branch=z9hG4bK/);
  t.equal(got.headers.get('Content-Type'), 'text/plain;charset=utf-8', 'Content-Type carried as is');
  t.equal(got.headers.get('Date'), 'Sat, 13 Nov 2010 23:29:00 GMT', 'Date carried (RFC 3428 §4)');
  t.notOk(got.headers.has('Contact'), 'no Contact (RFC 3428 §4)');
  t.equal(got.body.toString('utf8'), 'hello Bob ☺', 'the body byte for byte');
  t.same(alice.statuses(), [], 'no answer before Bob\'s');
  await bob.reply(got, 200);
  t.equal(finalFor(alice, sent)?.status, 200, 'Alice gets the 200');
});

t.test('a MESSAGE without credentials is challenged with 407 and goes nowhere', async (t) => {
  const { alice, bob } = setUp();
  const sent = await message(alice, '102', 'hi', { auth: false });
  const res = finalFor(alice, sent);
  t.equal(res?.status, 407);
  t.match(res?.headers.get('Proxy-Authenticate'), /^Digest realm="pbx\.test"/);
  t.same(bob.methods(), [], 'Bob gets nothing');
});

const refusals: { name: string; to: string; body?: string | Buffer; contentType?: string | null; maxForwards?: number; auth?: boolean; expect: number; reason?: RegExp }[] = [
  { name: 'an unknown number: 404', to: '999', expect: 404 },
  { name: 'an extension without a registered phone: 480', to: '103', expect: 480, reason: /not registered/ },
  { name: 'a LAN peer target: 404', to: '555', expect: 404, reason: /peers/ },
  { name: 'Max-Forwards 0: 483 (RFC 3261 §16.3)', to: '102', maxForwards: 0, expect: 483 },
  { name: `a body of ${LIMIT + 1} bytes: 413 before any challenge`, to: '102', body: Buffer.alloc(LIMIT + 1, 0x61), auth: false, expect: 413 },
  { name: 'a body without Content-Type: 400', to: '102', contentType: null, auth: false, expect: 400 },
  { name: 'a malformed Content-Type: 400', to: '102', contentType: 'text', auth: false, expect: 400 },
];

t.test('refusals: the status for each unusable target or request', async (t) => {
  for (const c of refusals) {
    const { alice, bob } = setUp();
    const sent = await message(alice, c.to, c.body ?? 'x', {
      ...(c.contentType !== undefined ? { contentType: c.contentType } : {}),
      ...(c.maxForwards !== undefined ? { maxForwards: c.maxForwards } : {}),
      ...(c.auth !== undefined ? { auth: c.auth } : {}),
    });
    const res = finalFor(alice, sent);
    t.equal(res?.status, c.expect, c.name);
    if (c.reason) t.match(res?.reason, c.reason, `${c.name}: reason`);
    t.same(bob.methods(), [], `${c.name}: nothing relayed`);
  }
});

t.test(`a body of exactly ${LIMIT} bytes is relayed`, async (t) => {
  const { alice, bob } = setUp();
  await message(alice, '102', Buffer.alloc(LIMIT, 0x62));
  t.equal(bob.takeRequest('MESSAGE')?.body.length, LIMIT);
});

t.test('several phones on one extension: each gets it, the first 2xx answers, a late one is ignored', async (t) => {
  const { h, alice, bob } = setUp();
  const desk = h.phone('102', '192.0.2.22');
  h.bind(desk);
  const sent = await message(alice, '102', 'to all of you');
  const a = bob.takeRequest('MESSAGE')!;
  const b = desk.takeRequest('MESSAGE')!;
  t.ok(a && b, 'both phones get it');
  await bob.reply(a, 486);
  t.same(alice.statuses(), [], 'a failure waits for the other phone');
  await desk.reply(b, 202);
  t.equal(finalFor(alice, sent)?.status, 202, 'the 2xx is the answer');
  const sent2 = await message(alice, '102', 'again');
  const a2 = bob.takeRequest('MESSAGE')!;
  const b2 = desk.takeRequest('MESSAGE')!;
  await bob.reply(a2, 200);
  await desk.reply(b2, 200);
  t.equal(finalFor(alice, sent2)?.status, 200);
  t.same(alice.statuses(), [], 'one final response only');
});

t.test('every phone fails: the best failure is reported', async (t) => {
  const { h, alice, bob } = setUp();
  const desk = h.phone('102', '192.0.2.22');
  h.bind(desk);
  const sent = await message(alice, '102', 'x');
  await bob.reply(bob.takeRequest('MESSAGE')!, 486);
  await desk.reply(desk.takeRequest('MESSAGE')!, 603);
  t.equal(finalFor(alice, sent)?.status, 603, '6xx wins (RFC 3261 §16.7)');
});

t.test('no answer from the phone: 480 after Timer F, never 408 (RFC 4320 §4.2)', async (t) => {
  const { h, alice, bob } = setUp();
  const sent = await message(alice, '102', 'anyone?');
  t.ok(bob.takeRequest('MESSAGE'));
  await h.advance(31_000);
  t.same(alice.statuses(), [], 'nothing before 64*T1');
  await h.advance(1_500);
  const res = finalFor(alice, sent);
  t.equal(res?.status, 480);
  t.match(res?.reason, /no response/);
});

const choices: { name: string; failures: { status: number; reason: string; local?: boolean }[]; expect: number }[] = [
  { name: 'a single 486 is passed back', failures: [{ status: 486, reason: 'Busy Here' }], expect: 486 },
  { name: '6xx before anything else', failures: [{ status: 486, reason: 'Busy Here' }, { status: 603, reason: 'Decline' }], expect: 603 },
  { name: 'the lowest class otherwise, first of it', failures: [{ status: 500, reason: 'x' }, { status: 415, reason: 'y' }, { status: 404, reason: 'z' }], expect: 415 },
  { name: 'our timeout is 480, not 408', failures: [{ status: 408, reason: 'Request Timeout', local: true }], expect: 480 },
  { name: 'a phone\'s own 408 is 480 too', failures: [{ status: 408, reason: 'Request Timeout' }], expect: 480 },
  { name: 'a challenge we cannot answer is 403', failures: [{ status: 407, reason: 'Proxy Authentication Required' }], expect: 403 },
  { name: 'a redirect is 480', failures: [{ status: 302, reason: 'Moved' }], expect: 480 },
  { name: 'a remote 503 is 500 (RFC 3261 §16.7)', failures: [{ status: 503, reason: 'Service Unavailable' }], expect: 500 },
  { name: 'our transport error stays 503', failures: [{ status: 503, reason: 'Service Unavailable', local: true }], expect: 503 },
];

t.test('messageFailure: the status chosen when every target failed', async (t) => {
  for (const c of choices) t.equal(messageFailure(c.failures).status, c.expect, c.name);
  t.same(messageFailure([{ status: 486, reason: 'Busy Here' }]), chooseFailure([{ status: 486, reason: 'Busy Here' }]), 'the fork set\'s rule otherwise');
});

t.test('to a trunk: as the trunk account, the trunk\'s 407 answered with its credentials', async (t) => {
  const { h, alice, trunk } = setUp();
  const itsp = new DigestServer({ realm: 'itsp.example', secret: Buffer.alloc(32, 9), clock: h.clock, random: h.random, algorithms: ['MD5'] });
  const sent = await message(alice, '0301234', 'to the world');
  const first = trunk.takeRequest('MESSAGE')!;
  t.equal(first.uri, 'sip:301234@itsp.example', 'the number after the dial plan, at the trunk\'s domain');
  t.match(first.headers.get('From'), /^<sip:gwuser@itsp\.example>;tag=/, 'From: the trunk account');
  t.equal(first.headers.get('To'), '<sip:301234@itsp.example>');
  await trunk.reply(first, 407, { headers: itsp.challenge().map((c) => ['Proxy-Authenticate', c] as [string, string]) });
  const retry = trunk.takeRequest('MESSAGE')!;
  t.ok(retry, 'retried with credentials');
  t.equal(retry.headers.get('Call-ID'), first.headers.get('Call-ID'), 'same Call-ID (RFC 3261 §22.2)');
  t.match(retry.headers.get('CSeq'), /^2 MESSAGE$/, 'next CSeq');
  const verdict = itsp.verify({ method: 'MESSAGE', authorization: retry.headers.get('Proxy-Authorization'), lookup: (u) => (u === 'gwuser' ? { password: 'trunk-secret' } : undefined) });
  t.ok(verdict.ok, 'the trunk\'s password answers the challenge');
  t.equal(retry.body.toString(), 'to the world');
  await trunk.reply(retry, 202);
  t.equal(finalFor(alice, sent)?.status, 202, 'the trunk\'s 202 reaches the sender');
});

t.test('to a trunk that keeps refusing the credentials: 403 to the sender', async (t) => {
  const { h, alice, trunk } = setUp();
  const itsp = new DigestServer({ realm: 'itsp.example', secret: Buffer.alloc(32, 9), clock: h.clock, random: h.random, algorithms: ['MD5'] });
  const challenge = itsp.challenge().map((c) => ['Proxy-Authenticate', c] as [string, string]);
  const sent = await message(alice, '0301234', 'x');
  await trunk.reply(trunk.takeRequest('MESSAGE')!, 407, { headers: challenge });
  await trunk.reply(trunk.takeRequest('MESSAGE')!, 407, { headers: challenge });
  t.equal(trunk.takeRequest('MESSAGE'), undefined, 'a second, non-stale challenge is not answered');
  t.equal(finalFor(alice, sent)?.status, 403);
});

t.test('from a trunk: accepted by source address, routed by the dial plan, the caller ID kept', async (t) => {
  const { inbox, bob, trunk } = setUp();
  const toBob = await message(trunk, '102', 'from outside', { fromUser: '+4930123' });
  const got = bob.takeRequest('MESSAGE')!;
  t.ok(got, 'not challenged; relayed to Bob');
  t.match(got.headers.get('From'), /^<sip:\+4930123@pbx\.test>;tag=/);
  await bob.reply(got, 200);
  t.equal(finalFor(trunk, toBob)?.status, 200);
  const unrouted = await message(trunk, '4930555', 'to the box', { fromUser: '+4930123' });
  t.equal(finalFor(trunk, unrouted)?.status, 200, 'a number without a route goes to the device');
  t.equal(inbox.list()[0]?.from, '+4930123');
  const out = await message(trunk, '0301234', 'loop', { fromUser: '+4930123' });
  t.equal(finalFor(trunk, out)?.status, 403, 'never back out to a trunk');
  const echo = await message(trunk, '*43', 'echo', { fromUser: '+4930123' });
  t.equal(finalFor(trunk, echo)?.status, 403, 'nor echoed to a trunk');
});

t.test('to the device: 200, a log line without the text, the newest messages kept', async (t) => {
  const { h, inbox, alice } = setUp({ keep: 2 });
  for (const text of ['one', 'two', 'three ☺']) {
    const sent = await message(alice, '100', text);
    t.equal(finalFor(alice, sent)?.status, 200, `"${text}" delivered`);
  }
  const kept = inbox.list();
  t.same(kept.map((m) => m.text), ['two', 'three ☺'], 'the newest two');
  t.same(
    { from: kept[1]!.from, display: kept[1]!.display, to: kept[1]!.to, contentType: kept[1]!.contentType, bytes: kept[1]!.bytes },
    { from: '101', display: 'Alice', to: '100', contentType: 'text/plain', bytes: Buffer.byteLength('three ☺') },
  );
  t.equal(kept[1]!.at, h.clock.wallNow(), 'stamped with the wall clock');
  const records = h.logger.records.filter((r) => r.msg === 'message received');
  t.equal(records.length, 3, 'one log line per message');
  t.same(records[2], { level: 'info', category: 'test.messages', msg: 'message received', fields: { from: '101', to: '100', bytes: 9, type: 'text/plain' } });
  t.notMatch(JSON.stringify(h.logger.records), /three/, 'the text is never logged');
});

t.test('to the device without an inbox: its extension\'s phones get it', async (t) => {
  const { h, alice } = setUp({ device: false });
  const handset = h.phone('100', '192.0.2.30');
  h.bind(handset);
  const sent = await message(alice, '100', 'for the handset');
  const got = handset.takeRequest('MESSAGE')!;
  t.equal(got?.headers.get('To'), '<sip:100@pbx.test>');
  await handset.reply(got, 200);
  t.equal(finalFor(alice, sent)?.status, 200);
});

t.test('echo: 200, and the same body comes back from the echo number', async (t) => {
  const { h, alice } = setUp();
  h.bind(alice);
  const sent = await message(alice, '*43', 'ping', { contentType: 'text/plain' });
  t.equal(finalFor(alice, sent)?.status, 200);
  const back = alice.takeRequest('MESSAGE')!;
  t.ok(back, 'the echo arrives at the sender');
  t.match(back.headers.get('From'), /^<sip:\*43@pbx\.test>;tag=/);
  t.equal(back.headers.get('To'), '<sip:101@pbx.test>');
  t.equal(back.body.toString(), 'ping');
  await alice.reply(back, 200);
});

t.test('a peer box\'s credentials do not send messages; a reload changes the dial plan', async (t) => {
  const { h, relay, bob } = setUp();
  const responses: SipResponse[] = [];
  const fakeTx = (req: SipRequest): ServerTransaction => ({
    id: 'x',
    request: req,
    source: { transport: 'udp', address: '192.0.2.40', port: 5060 },
    responseDestination: { transport: 'udp', address: '192.0.2.40', port: 5060 },
    state: 'trying',
    lastResponse: undefined,
    respond: (r) => void responses.push(r),
  });
  const req = buildRequest({
    method: 'MESSAGE',
    requestUri: `sip:102@${DOMAIN}`,
    from: `<sip:101@${DOMAIN}>`,
    to: `<sip:102@${DOMAIN}>`,
    random: h.random,
    via: 'SIP/2.0/UDP 192.0.2.40:5060;branch=z9hG4bK-peer',
    body: Buffer.from('hi'),
    contentType: 'text/plain',
  }).request;
  const peer: MessageOrigin = { kind: 'user', username: 'peer-0123456789abcdef0123456789abcdef' };
  relay.receive(req, fakeTx(req), peer);
  t.equal(responses[0]?.status, 403, 'a LAN peer gets 403');
  relay.reconfigure({
    dialplan: new DialPlan([{ match: '7', to: 'extension:102' }], { extensions: ['102'], deviceExtension: '100', trunks: [], emergencyNumbers: [] }),
  });
  const seven = buildRequest({ method: 'MESSAGE', requestUri: `sip:7@${DOMAIN}`, from: `<sip:101@${DOMAIN}>`, to: `<sip:7@${DOMAIN}>`, random: h.random, via: 'SIP/2.0/UDP 192.0.2.40:5060;branch=z9hG4bK-seven', body: Buffer.from('x'), contentType: 'text/plain' }).request;
  relay.receive(seven, fakeTx(seven), { kind: 'user', username: '101' });
  await h.flush();
  const got = bob.takeRequest('MESSAGE');
  t.equal(got?.headers.get('To'), '<sip:102@pbx.test>', 'the new rule routes 7 to 102');
  await bob.reply(got!, 200);
  t.equal(responses[1]?.status, 200, 'Bob\'s 200 answers the sender');
});

t.test('a gateway without a message handler answers MESSAGE 405 with Allow', async (t) => {
  const h = new SipHarness();
  const alice = h.phone('101', '192.0.2.11');
  const sent = await message(alice, '102', 'x', { auth: false });
  const res = finalFor(alice, sent);
  t.equal(res?.status, 405);
  t.match(res?.headers.get('Allow'), /\bMESSAGE\b/, 'Allow lists what a full gateway serves');
});
