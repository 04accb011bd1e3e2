/**
 * The signalling path in one process, with no sockets and no real time: bytes into SipStack,
 * through validation and the transaction layer to the UAS core, and the responses that come
 * back out. Covers OPTIONS capabilities, digest challenges and registration, INVITE
 * authentication, CANCEL, 481 for unknown dialogs, stateless rejections and Via stamping.
 */
import t from 'tap';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { MemoryLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { DigestClient } from '../../../src/sip/auth/digest-client.ts';
import { DigestServer } from '../../../src/sip/auth/digest-server.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/message/message.ts';
import { buildResponse } from '../../../src/sip/dialog/request-builder.ts';
import { parseMessage } from '../../../src/sip/message/parser.ts';
import { SipStack } from '../../../src/sip/stack.ts';
import type { ServerTransaction } from '../../../src/sip/transaction/types.ts';
import type { Endpoint, SendOptions } from '../../../src/sip/transport/transport.ts';
import { ExtensionCredentials, RequestAuthenticator } from '../../../src/sip/ua/request-authenticator.ts';
import { UasCore, type CallHandler } from '../../../src/sip/ua/uas-core.ts';
import { Registrar } from '../../../src/registrar/registrar.ts';

const PHONE: Endpoint = { transport: 'udp', address: '192.0.2.10', port: 5062 };
const PASSWORD = 'secret-101';

function harness(opts: { calls?: CallHandler } = {}) {
  const clock = new ManualClock();
  const random = new SeededRandom(7);
  const logger = new MemoryLogger();
  const sent: { res: SipResponse; dest: Endpoint; opts?: SendOptions }[] = [];
  const digest = new DigestServer({ realm: 'test.local', secret: Buffer.alloc(32, 1), clock, random, algorithms: ['SHA-256', 'MD5'] });
  const auth = new RequestAuthenticator({ digest, credentials: new ExtensionCredentials({ '101': { password: PASSWORD } }), logger });
  const registrar = new Registrar({ clock });
  const core = new UasCore({ logger, auth, userAgent: 'hookswitch-test', registrar, ...(opts.calls ? { calls: opts.calls } : {}) });
  const transport = {
    send: async (bytes: Buffer, dest: Endpoint, o?: SendOptions) => {
      const msg = parseMessage(bytes);
      if (msg.kind !== 'response') throw new Error('the gateway only answers here');
      sent.push({ res: msg, dest, ...(o ? { opts: o } : {}) });
    },
  };
  const stack = new SipStack({ clock, random, logger, transport }, core);
  const receive = async (text: string, from: Endpoint = PHONE, connection?: string) => {
    const before = sent.length;
    stack.receive(Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1'), from, connection);
    await new Promise((r) => setImmediate(r));
    return sent.slice(before);
  };
  return { clock, stack, sent, receive, registrar, logger };
}

function request(method: string, opts: { uri?: string; callId?: string; cseq?: number; branch?: string; to?: string; extra?: string; body?: string; via?: string } = {}) {
  const body = opts.body ?? '';
  return (
    `${method} ${opts.uri ?? 'sip:test.local'} SIP/2.0\n` +
    `Via: ${opts.via ?? `SIP/2.0/UDP 192.0.2.10:5062;branch=${opts.branch ?? `z9hG4bK-${method}-${opts.cseq ?? 1}`};rport`}\n` +
    `Max-Forwards: 70\n` +
    `From: <sip:101@test.local>;tag=ft1\n` +
    `To: ${opts.to ?? '<sip:101@test.local>'}\n` +
    `Call-ID: ${opts.callId ?? 'call-1'}\n` +
    `CSeq: ${opts.cseq ?? 1} ${method}\n` +
    `Contact: <sip:101@192.0.2.10:5062>\n` +
    (opts.extra ?? '') +
    `Content-Length: ${Buffer.byteLength(body)}\n\n${body}`
  );
}

t.test('OPTIONS to the gateway: 200 with capabilities, Via stamped, retransmission absorbed', async (t) => {
  const h = harness();
  const [out] = await h.receive(request('OPTIONS'));
  t.equal(out?.res.status, 200);
  t.equal(out?.res.headers.get('allow'), 'INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, SUBSCRIBE, UPDATE, INFO, REFER, NOTIFY');
  t.equal(out?.res.headers.get('accept'), 'application/sdp');
  t.ok(out?.res.headers.has('supported'), 'Supported present');
  t.match(out?.res.headers.get('to'), /;tag=\w+/, 'To tag added');
  t.match(out?.res.headers.get('via'), /;rport=5062;received=192\.0\.2\.10$/, 'rport and received filled in (RFC 3581)');
  t.same(out?.dest, { transport: 'udp', address: '192.0.2.10', port: 5062 });
  const again = await h.receive(request('OPTIONS'));
  t.equal(again.length, 1, 'the retransmission gets the response again');
  t.same(again[0]?.res.headers.get('to'), out?.res.headers.get('to'), 'with the same To tag');
});

t.test('REGISTER: challenge, answer, binding; wrong password and unknown user look alike', async (t) => {
  const h = harness();
  const [challenge] = await h.receive(request('REGISTER', { extra: 'Expires: 600\n' }));
  t.equal(challenge?.res.status, 401);
  const offered = challenge!.res.headers.getAll('www-authenticate');
  t.equal(offered.length, 2, 'SHA-256 and MD5 offered');
  t.match(offered[0], /algorithm=SHA-256/);
  t.match(offered[1], /algorithm=MD5/);

  const client = new DigestClient({ username: '101', password: PASSWORD, random: new SeededRandom(3) });
  const authorization = client.authorize({ challenges: offered, method: 'REGISTER', uri: 'sip:test.local' })!;
  const [ok] = await h.receive(request('REGISTER', { cseq: 2, extra: `Expires: 600\nAuthorization: ${authorization}\n` }));
  t.equal(ok?.res.status, 200);
  t.match(ok?.res.headers.get('contact'), /<sip:101@192\.0\.2\.10:5062>;expires=600/);
  t.equal(h.registrar.lookup('101').length, 1, 'the registrar holds the binding');

  const wrong = new DigestClient({ username: '101', password: 'not-it', random: new SeededRandom(4) });
  const badAuth = wrong.authorize({ challenges: offered, method: 'REGISTER', uri: 'sip:test.local' })!;
  const [denied] = await h.receive(request('REGISTER', { cseq: 3, extra: `Authorization: ${badAuth}\n` }));
  const stranger = new DigestClient({ username: '999', password: 'whatever', random: new SeededRandom(5) });
  const strangerAuth = stranger.authorize({ challenges: offered, method: 'REGISTER', uri: 'sip:test.local' })!;
  const [unknown] = await h.receive(request('REGISTER', { cseq: 4, extra: `Authorization: ${strangerAuth}\n` }));
  t.equal(denied?.res.status, 401, 'wrong password: challenged again');
  t.equal(unknown?.res.status, 401, 'unknown user: challenged again');
  const shape = (r?: SipResponse) => r?.headers.getAll('www-authenticate').map((v) => v.replace(/nonce="[^"]*"/, 'nonce=N'));
  t.same(shape(denied?.res), shape(unknown?.res), 'the two challenges are indistinguishable');

  const other = client.authorize({ challenges: offered, method: 'REGISTER', uri: 'sip:test.local' })!;
  const [forbidden] = await h.receive(
    request('REGISTER', { cseq: 5, callId: 'call-2', to: '<sip:102@test.local>', extra: `Authorization: ${other}\n` }),
  );
  t.equal(forbidden?.res.status, 403, '101 may not register 102');
});

t.test('INVITE: 407 challenge, then the call layer; 480 when there is none', async (t) => {
  const h = harness();
  const sdp = 'v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 4000 RTP/AVP 0\n';
  const invite = (cseq: number, extra = '') =>
    request('INVITE', { uri: 'sip:100@test.local', cseq, to: '<sip:100@test.local>', extra: `Content-Type: application/sdp\n${extra}`, body: sdp });
  const [challenge] = await h.receive(invite(1));
  t.equal(challenge?.res.status, 407);
  const client = new DigestClient({ username: '101', password: PASSWORD, random: new SeededRandom(9) });
  const credentials = client.authorize({ challenges: challenge!.res.headers.getAll('proxy-authenticate'), method: 'INVITE', uri: 'sip:100@test.local' })!;
  const [unrouted] = await h.receive(invite(2, `Proxy-Authorization: ${credentials}\n`));
  t.equal(unrouted?.res.status, 480);

  const pending: ServerTransaction[] = [];
  const cancelledCalls: string[] = [];
  const h2 = harness({
    calls: {
      invite: (_req, tx) => void pending.push(tx),
      inviteFromTrunk: () => undefined,
      ownsDialog: () => false,
      inDialog: () => undefined,
      ack: () => undefined,
      cancel: (inv) => void cancelledCalls.push(inv.headers.get('cseq') ?? ''),
      strayResponse: () => undefined,
    },
  });
  const [c2] = await h2.receive(invite(1));
  const cred2 = new DigestClient({ username: '101', password: PASSWORD, random: new SeededRandom(10) }).authorize({
    challenges: c2!.res.headers.getAll('proxy-authenticate'),
    method: 'INVITE',
    uri: 'sip:100@test.local',
  })!;
  await h2.receive(invite(2, `Proxy-Authorization: ${cred2}\n`));
  t.equal(pending.length, 1, 'the authenticated INVITE reaches the call layer');
  h2.clock.advance(200);
  await new Promise((r) => setImmediate(r));
  t.equal(h2.sent.at(-1)?.res.status, 100, '100 Trying after 200 ms without an answer (§17.2.1)');
  const cancelled = await h2.receive(request('CANCEL', { uri: 'sip:100@test.local', cseq: 2, branch: 'z9hG4bK-INVITE-2', to: '<sip:100@test.local>' }));
  t.same(cancelled.map((s) => [s.res.status, s.res.headers.get('cseq')]), [[200, '2 CANCEL'], [487, '2 INVITE']], 'CANCEL: 200, INVITE: 487');
  t.same(cancelledCalls, ['2 INVITE'], 'the call layer learns of the CANCEL');
});

t.test('requests for dialogs and transactions that do not exist get 481', async (t) => {
  const h = harness();
  const [bye] = await h.receive(request('BYE', { to: '<sip:100@test.local>;tag=gone' }));
  t.equal(bye?.res.status, 481);
  const [cancel] = await h.receive(request('CANCEL', { branch: 'z9hG4bK-nothing' }));
  t.equal(cancel?.res.status, 481);
  const [reinvite] = await h.receive(request('INVITE', { to: '<sip:100@test.local>;tag=gone' }));
  t.equal(reinvite?.res.status, 481);
});

t.test('rejections are stateless, carry the reason, and never answer an ACK', async (t) => {
  const h = harness();
  const [bad] = await h.receive(request('OPTIONS', { extra: 'Max-Forwards: 70\n' }));
  t.equal(bad?.res.status, 400, 'a repeated Max-Forwards');
  t.match(bad?.res.headers.get('warning'), /^399 hookswitch "/);
  const [unknown] = await h.receive(request('FROBNICATE'));
  t.equal(unknown?.res.status, 501);
  t.equal(unknown?.res.headers.get('allow'), 'INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, SUBSCRIBE, UPDATE, INFO, REFER, NOTIFY');
  const [subscribe] = await h.receive(request('SUBSCRIBE'));
  t.equal(subscribe?.res.status, 405, 'known but not served: 405 with Allow');
  const ack = await h.receive(request('ACK', { extra: 'CSeq: 9 ACK\n' }));
  t.same(ack, [], 'a broken ACK is dropped');
  const garbage = await h.receive('\u0000\u0001 not SIP at all\n\n');
  t.same(garbage, [], 'unreadable bytes are dropped');
  t.equal(h.stack.counters.rejected, 5);
  const response = await h.receive('SIP/2.0 200 OK\nVia: SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKx\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>\nCall-ID: r\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n');
  t.same(response, [], 'a stray response is not answered');
});

t.test('over TCP the response goes back on the same connection', async (t) => {
  const h = harness();
  const tcp: Endpoint = { transport: 'tcp', address: '192.0.2.10', port: 40001 };
  const [out] = await h.receive(request('OPTIONS', { via: 'SIP/2.0/TCP 192.0.2.10:5062;branch=z9hG4bK-tcp' }), tcp, 'tcp-7');
  t.equal(out?.res.status, 200);
  t.equal(out?.dest.transport, 'tcp');
  t.equal(out?.opts?.connectionId, 'tcp-7');
});

t.test('calls, trunks and the source guard', async (t) => {
  const seen: string[] = [];
  const calls: CallHandler = {
    invite: (req, tx, user) => {
      seen.push(`invite ${user}`);
      tx.respond(buildResponse(req, 486));
    },
    inviteFromTrunk: (_req, _tx, trunk) => void seen.push(`trunk ${trunk}`),
    ownsDialog: (req) => req.headers.get('call-id') === 'owned',
    inDialog: (req) => void seen.push(`in-dialog ${req.method}`),
    ack: (ack) => void seen.push(`ack ${ack.headers.get('call-id')}`),
    cancel: () => undefined,
    strayResponse: (res) => void seen.push(`stray ${res.status}`),
  };
  const clock = new ManualClock();
  const random = new SeededRandom(1);
  const logger = new MemoryLogger();
  const failures: string[] = [];
  const successes: string[] = [];
  // A fake authenticator: `failed` marks wrong credentials (as opposed to none).
  let authResult: { ok: true; username: string } | { ok: false; failed: boolean } = { ok: false, failed: true };
  const auth = {
    check: (req: SipRequest) => (authResult.ok ? authResult : { ...authResult, response: buildResponse(req, 407) }),
  } as unknown as RequestAuthenticator;
  const sent: SipResponse[] = [];
  const core = new UasCore({
    logger,
    auth,
    userAgent: 'x',
    calls,
    guard: { isAllowed: (a) => a.startsWith('192.0.2.'), authFailed: (a) => void failures.push(a), authSucceeded: (a) => void successes.push(a) },
    trunkFor: (s) => (s.address === '198.51.100.5' ? 'itsp' : undefined),
  });
  const stack = new SipStack(
    {
      clock,
      random,
      logger,
      transport: {
        send: async (bytes: Buffer) => {
          const msg = parseMessage(bytes);
          if (msg.kind === 'response') sent.push(msg);
        },
      },
    },
    core,
  );
  const receive = async (text: string, from: Endpoint = PHONE) => {
    const before = sent.length;
    stack.receive(Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1'), from);
    await new Promise((r) => setImmediate(r));
    return sent.slice(before).map((r) => r.status);
  };
  const invite = (extra: { callId?: string; to?: string; via?: string } = {}) =>
    request('INVITE', { uri: 'sip:102@test.local', to: extra.to ?? '<sip:102@test.local>', callId: extra.callId ?? 'c', ...(extra.via ? { via: extra.via } : {}) });

  t.same(await receive(invite(), { transport: 'udp', address: '203.0.113.9', port: 5060 }), [403], 'source not allowed: 403');
  t.same(failures, []);
  t.same(await receive(invite()), [407], 'wrong credentials: challenged');
  t.same(failures, ['192.0.2.10'], 'and the guard counts a failure');
  t.same(await receive(invite()), [407], 'a retransmission of the same request: challenged again');
  t.same(failures, ['192.0.2.10'], 'but not counted again (same branch from the same source)');
  t.same(await receive(invite({ via: 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-second-try' })), [407], 'a new attempt');
  t.same(failures, ['192.0.2.10', '192.0.2.10'], 'is a second failure');
  authResult = { ok: true, username: '101' };
  t.same(await receive(invite({ callId: 'c2' })), [486], 'authenticated: the call layer answers');
  t.same(successes, ['192.0.2.10']);
  const trunkVia = 'SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK-trunk';
  authResult = { ok: false, failed: false };
  await receive(invite({ callId: 'c3', via: trunkVia }), { transport: 'udp', address: '198.51.100.5', port: 5060 });
  t.ok(seen.includes('trunk itsp'), 'an INVITE from the trunk is not challenged');
  t.same(await receive(request('BYE', { callId: 'owned', to: '<sip:102@test.local>;tag=x', cseq: 5 }), { transport: 'udp', address: '203.0.113.9', port: 5060 }), [], 'in-dialog requests of owned dialogs pass (the call layer answers)');
  t.ok(seen.includes('in-dialog BYE'));
  t.same(await receive(request('BYE', { callId: 'other', to: '<sip:102@test.local>;tag=x', cseq: 6 })), [481], 'others: 481');
  await receive(request('ACK', { callId: 'owned', to: '<sip:102@test.local>;tag=x', cseq: 5 }));
  t.ok(seen.includes('ack owned'), 'ACKs go to the call layer');
  await receive('SIP/2.0 200 OK\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKgone\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\nCall-ID: r\nCSeq: 1 INVITE\nContent-Length: 0\n\n');
  t.ok(seen.includes('stray 200'), 'stray 2xx to INVITE go to the call layer');
});

t.test('REGISTER answered asynchronously by the registrar; a rejection is a 500', async (t) => {
  const clock = new ManualClock();
  const random = new SeededRandom(2);
  const logger = new MemoryLogger();
  const sent: SipResponse[] = [];
  let fail = false;
  const core = new UasCore({
    logger,
    auth: { check: () => ({ ok: true, username: '101' }) } as unknown as RequestAuthenticator,
    userAgent: 'x',
    registrar: {
      register: (req) => (fail ? Promise.reject(new Error('disk full')) : Promise.resolve(buildResponse(req, 200))),
    },
  });
  const stack = new SipStack({ clock, random, logger, transport: { send: async (b: Buffer) => void sent.push(parseMessage(b) as SipResponse) } }, core);
  stack.receive(Buffer.from(request('REGISTER').replace(/\n/g, '\r\n')), PHONE);
  await new Promise((r) => setImmediate(r));
  fail = true;
  stack.receive(Buffer.from(request('REGISTER', { cseq: 2, callId: 'r2' }).replace(/\n/g, '\r\n')), PHONE);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.same(sent.map((r) => r.status), [200, 500]);
});
