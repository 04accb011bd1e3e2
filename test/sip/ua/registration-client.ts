import t from 'tap';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { MemoryLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { DigestServer } from '../../../src/sip/auth/digest-server.ts';
import { buildResponse } from '../../../src/sip/dialog/request-builder.ts';
import { parseCSeq, parseVia, tagOf } from '../../../src/sip/message/header-values.ts';
import { createResponse, type SipRequest } from '../../../src/sip/message/message.ts';
import { parseUri } from '../../../src/sip/message/uri.ts';
import type { ClientTransactionHandlers, Destination } from '../../../src/sip/transaction/types.ts';
import {
  grantedExpires,
  refreshDelaySeconds,
  RegistrationClient,
  splitHostPort,
  type RegistrationTrunk,
} from '../../../src/sip/ua/registration-client.ts';

const PASSWORD = 'trunk-secret-9';
const TRUNK: RegistrationTrunk = {
  name: 'provider',
  host: 'sip.example.net',
  port: 5060,
  transport: 'udp',
  username: 'gw42',
  password: PASSWORD,
  expires: 600,
};
const LOCAL = { address: '192.0.2.10', port: 5070 };
const CONTACT_URI = 'sip:gw42@192.0.2.10:5070;transport=udp';

interface Sent {
  request: SipRequest;
  dest: Destination;
  handlers: ClientTransactionHandlers;
}

function setup(trunk: Partial<RegistrationTrunk> = {}, extra: { initialRetryMs?: number; maxRetryMs?: number } = {}) {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const random = new SeededRandom(7);
  const sent: Sent[] = [];
  let branches = 0;
  const server = new DigestServer({ realm: 'example.net', secret: Buffer.alloc(32, 3), clock, random: new SeededRandom(9), algorithms: ['MD5'] });
  const client = new RegistrationClient({
    trunk: { ...TRUNK, ...trunk },
    local: LOCAL,
    transactions: {
      newBranch: () => `z9hG4bKtest${++branches}`,
      sendRequest: (request, dest, handlers) => {
        sent.push({ request, dest, handlers });
        return undefined;
      },
    },
    clock,
    random,
    logger,
    userAgent: 'hookswitch-test',
    ...extra,
  });
  const last = () => sent[sent.length - 1]!;
  /** Answers the latest request. */
  const reply = (status: number, headers: [string, string][] = []) => {
    const { request, handlers } = last();
    handlers.onResponse(buildResponse(request, status, undefined, { headers }));
  };
  const challenge = (kind: 401 | 407 = 401, opts: { stale?: boolean } = {}) =>
    reply(kind, server.challenge(opts).map((c) => [kind === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate', c] as [string, string]));
  const verify = (header = 'authorization', password = PASSWORD) =>
    server.verify({ method: 'REGISTER', authorization: last().request.headers.get(header), lookup: () => ({ password }) });
  const states = () => logger.records.filter((r) => r.msg === 'registration state changed').map((r) => r.fields.state);
  return { clock, logger, client, sent, last, reply, challenge, verify, states, server };
}

const h = (s: Sent, name: string) => s.request.headers.get(name);
const cseqOf = (s: Sent) => parseCSeq(h(s, 'cseq')!).seq;

t.test('the first REGISTER follows RFC 3261 §10.2', async (t) => {
  const { client, sent, last } = setup();
  client.start();
  t.equal(sent.length, 1, 'one request sent');
  const r = last();
  t.equal(r.request.method, 'REGISTER');
  t.equal(r.request.uri, 'sip:sip.example.net', 'Request-URI is the registrar domain without user part (§10.2)');
  t.equal(h(r, 'to'), '<sip:gw42@sip.example.net>', 'To is the address of record, without tag');
  t.match(h(r, 'from'), /^<sip:gw42@sip\.example\.net>;tag=\w+$/, 'From is the address of record with a tag');
  t.equal(h(r, 'contact'), `<${CONTACT_URI}>`, 'Contact is our bound endpoint');
  t.equal(h(r, 'expires'), '600', 'Expires is the configured lifetime');
  t.equal(h(r, 'cseq'), '1 REGISTER');
  t.equal(h(r, 'max-forwards'), '70');
  t.equal(h(r, 'user-agent'), 'hookswitch-test');
  t.notOk(r.request.headers.has('authorization'), 'no credentials before a challenge');
  const via = parseVia(h(r, 'via')!);
  t.same([via.transport, via.host, via.port, via.branch, via.rport], ['UDP', '192.0.2.10', 5070, 'z9hG4bKtest1', null], 'Via: our address, fresh branch, rport (RFC 3581)');
  t.same(r.dest, { transport: 'udp', address: 'sip.example.net', port: 5060 }, 'sent to the trunk');
  t.same(client.status(), { trunk: 'provider', state: 'registering' });
});

t.test('Request-URI, Contact and destination follow the trunk transport, port and outbound proxy', async (t) => {
  const cases = [
    { name: 'non-default port is kept in the Request-URI', trunk: { port: 5080 }, uri: 'sip:sip.example.net:5080', dest: { transport: 'udp', address: 'sip.example.net', port: 5080 }, via: 'UDP' },
    { name: 'tcp adds transport=tcp', trunk: { transport: 'tcp' as const }, uri: 'sip:sip.example.net;transport=tcp', dest: { transport: 'tcp', address: 'sip.example.net', port: 5060 }, via: 'TCP' },
    { name: 'tls default port 5061', trunk: { transport: 'tls' as const, port: 5061 }, uri: 'sip:sip.example.net;transport=tls', dest: { transport: 'tls', address: 'sip.example.net', port: 5061 }, via: 'TLS' },
    { name: 'outbound proxy host:port receives the request', trunk: { outboundProxy: 'proxy.example.net:5099' }, uri: 'sip:sip.example.net', dest: { transport: 'udp', address: 'proxy.example.net', port: 5099 }, via: 'UDP' },
    { name: 'outbound proxy without port uses 5060', trunk: { outboundProxy: '198.51.100.7' }, uri: 'sip:sip.example.net', dest: { transport: 'udp', address: '198.51.100.7', port: 5060 }, via: 'UDP' },
  ];
  for (const c of cases) {
    const { client, last } = setup(c.trunk);
    client.start();
    t.equal(last().request.uri, c.uri, `${c.name}: Request-URI`);
    t.same(last().dest, c.dest, `${c.name}: destination`);
    t.equal(parseVia(h(last(), 'via')!).transport, c.via, `${c.name}: Via transport`);
    t.match(h(last(), 'contact'), new RegExp(`;transport=${c.via.toLowerCase()}>$`), `${c.name}: Contact transport`);
  }
  t.same(splitHostPort('[2001:db8::1]:5062'), { host: '2001:db8::1', port: 5062 }, 'IPv6 reference with port');
  t.same(splitHostPort('[2001:db8::1]'), { host: '2001:db8::1' }, 'IPv6 reference without port');
});

t.test('401 is answered once with Digest credentials; 200 registers and schedules a refresh at half the granted time', async (t) => {
  const { client, sent, last, reply, challenge, verify, clock, states } = setup();
  client.start();
  const first = last();
  challenge(401);
  t.equal(sent.length, 2, 'REGISTER re-sent with credentials (§22.2)');
  const second = last();
  t.equal(h(second, 'call-id'), h(first, 'call-id'), 'same Call-ID (§10.2.4)');
  t.equal(cseqOf(second), cseqOf(first) + 1, 'CSeq incremented by one (§10.2.4)');
  t.not(parseVia(h(second, 'via')!).branch, parseVia(h(first, 'via')!).branch, 'new branch: a new transaction (§8.1.3.5)');
  t.equal(tagOf(h(second, 'from')!), tagOf(h(first, 'from')!), 'same From tag');
  t.match(verify(), { ok: true, username: 'gw42', uri: 'sip:sip.example.net' }, 'the DigestServer accepts the Authorization');

  reply(200, [['Contact', `<${CONTACT_URI}>;expires=120`], ['Expires', '3600']]);
  t.same(client.status(), { trunk: 'provider', state: 'registered', expiresAt: clock.wallNow() + 120_000 }, 'granted 120 s from the Contact expires param');
  t.same(states(), ['registering', 'registered']);

  clock.advance(59_999);
  t.equal(sent.length, 2, 'no refresh before half the lifetime');
  clock.advance(1);
  t.equal(sent.length, 3, 'refresh at 60 s');
  const refresh = last();
  t.equal(h(refresh, 'call-id'), h(first, 'call-id'), 'refresh keeps the Call-ID');
  t.equal(cseqOf(refresh), 3, 'refresh CSeq 3');
  t.match(h(refresh, 'authorization'), /nc=00000002/, 'refresh answers the known nonce pre-emptively with the next nonce count');
  t.match(verify(), { ok: true }, 'pre-emptive credentials verify');
  t.equal(client.status().state, 'registered', 'still registered while refreshing');
});

t.test('credentials refused: a second non-stale 401 fails the attempt and retries with backoff', async (t) => {
  const { client, sent, challenge, clock, states, logger } = setup({ password: 'wrong-password' });
  client.start();
  challenge(401);
  t.equal(sent.length, 2);
  challenge(401);
  t.equal(sent.length, 2, 'no third REGISTER for the same credentials');
  const st = client.status();
  t.equal(st.state, 'failed');
  t.match(st.lastError, /^401 Unauthorized: credentials refused/);
  t.same(states(), ['registering', 'failed']);
  t.notOk(JSON.stringify(logger.records).includes('wrong-password'), 'the password never appears in the log');
  clock.advance(22_499);
  t.equal(sent.length, 2, 'no retry before 75 % of 30 s');
  clock.advance(7_501);
  t.equal(sent.length, 3, 'retried within 30 s');
  t.equal(client.status().state, 'registering');
});

t.test('stale=true re-challenges are answered again (RFC 7616 §3.3), a looping server is not', async (t) => {
  const { client, sent, challenge, reply, verify } = setup();
  client.start();
  challenge(401);
  challenge(401, { stale: true });
  t.equal(sent.length, 3, 'stale challenge answered');
  t.match(verify(), { ok: true });
  reply(200, [['Contact', `<${CONTACT_URI}>;expires=600`]]);
  t.equal(client.status().state, 'registered');

  const loop = setup();
  loop.client.start();
  for (let i = 0; i < 5; i++) loop.challenge(401, { stale: true });
  t.equal(loop.sent.length, 4, 'one fresh and two stale answers, then give up');
  t.equal(loop.client.status().state, 'failed');
});

t.test('407 is answered with Proxy-Authorization, then a 401 with Authorization as well', async (t) => {
  const { client, challenge, last, reply, verify } = setup();
  client.start();
  challenge(407);
  t.ok(h(last(), 'proxy-authorization'), 'Proxy-Authorization sent');
  t.notOk(h(last(), 'authorization'), 'no Authorization yet');
  t.match(verify('proxy-authorization'), { ok: true });
  challenge(401);
  t.ok(h(last(), 'proxy-authorization'), 'Proxy-Authorization still sent');
  t.match(verify('authorization'), { ok: true }, 'Authorization for the registrar');
  reply(200);
  t.equal(client.status().state, 'registered');
  t.equal(client.status().expiresAt, 1_700_000_000_000 + 600_000, 'no Contact or Expires in the 200: the requested lifetime');
});

t.test('a challenge without a usable Digest scheme fails at once', async (t) => {
  const { client, sent, reply } = setup();
  client.start();
  reply(401, [['WWW-Authenticate', 'Basic realm="x"']]);
  t.equal(sent.length, 1);
  t.match(client.status().lastError, /no Digest challenge we can answer/);
});

t.test('423 Interval Too Brief: retry with Min-Expires (§10.2.8)', async (t) => {
  const { client, sent, last, reply } = setup();
  client.start();
  reply(423, [['Min-Expires', '1800']]);
  t.equal(sent.length, 2, 'retried at once');
  t.equal(h(last(), 'expires'), '1800', 'with the Min-Expires value');
  t.equal(cseqOf(last()), 2);
  reply(423, [['Min-Expires', '1800']]);
  t.equal(sent.length, 2, 'a 423 that does not raise the minimum is a failure');
  t.match(client.status(), { state: 'failed', lastError: '423 Interval Too Brief' });
});

t.test('failures back off exponentially from 30 s to 10 min with jitter; success resets it', async (t) => {
  const { client, sent, last, reply, clock } = setup();
  client.start();
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    const before = sent.length;
    const start = clock.now();
    last().handlers.onTimeout();
    while (sent.length === before) clock.advance(250);
    delays.push(clock.now() - start);
  }
  const bases = [30, 60, 120, 240, 480, 600, 600].map((s) => s * 1000);
  delays.forEach((d, i) => t.ok(d > bases[i]! * 0.75 - 250 && d <= bases[i]!, `retry ${i + 1} after ${d} ms, within 75-100 % of ${bases[i]} ms`));
  t.match(client.status().lastError, /^timeout/);
  reply(200);
  last().handlers.onTransportError(new Error('ICMP port unreachable'));
  t.equal(client.status().state, 'registered', 'a late outcome of an answered request is ignored');
  clock.advance(300_000);
  last().handlers.onTransportError(new Error('ICMP port unreachable'));
  t.match(client.status(), { state: 'failed', lastError: 'transport error: ICMP port unreachable' });
  const before = sent.length;
  clock.advance(30_000);
  t.equal(sent.length, before + 1, 'after a success the backoff restarts at 30 s');
});

t.test('503 with Retry-After is retried after that many seconds', async (t) => {
  const { client, sent, reply, clock } = setup();
  client.start();
  reply(503, [['Retry-After', '90 (maintenance)']]);
  t.match(client.status(), { state: 'failed', lastError: '503 Service Unavailable' });
  clock.advance(89_999);
  t.equal(sent.length, 1);
  clock.advance(1);
  t.equal(sent.length, 2);
});

t.test('stop() un-registers with Expires 0 in the same Call-ID, answering a challenge', async (t) => {
  const { client, sent, last, reply, challenge, verify, logger, clock } = setup();
  client.start();
  challenge(401);
  reply(200, [['Contact', `<${CONTACT_URI}>;expires=600`]]);
  const callId = h(last(), 'call-id');
  let stopped = false;
  const done = client.stop().then(() => (stopped = true));
  t.equal(client.status().state, 'stopped');
  t.equal(sent.length, 3, 'un-REGISTER sent');
  t.equal(h(last(), 'expires'), '0', 'Expires: 0 removes the binding (§10.2.2)');
  t.equal(h(last(), 'contact'), `<${CONTACT_URI}>`, 'for our Contact only');
  t.equal(h(last(), 'call-id'), callId);
  t.equal(cseqOf(last()), 3);
  t.match(verify(), { ok: true }, 'with pre-emptive credentials');
  challenge(401);
  t.equal(sent.length, 4, 'a fresh challenge is answered');
  t.equal(h(last(), 'expires'), '0');
  await Promise.resolve();
  t.notOk(stopped, 'stop() waits for the final response');
  reply(200);
  await done;
  t.ok(logger.records.some((r) => r.msg === 'unregistered'), 'logged');
  clock.advance(3_600_000);
  t.equal(sent.length, 4, 'no refresh after stop');
  await client.stop();
  t.equal(sent.length, 4, 'a second stop() sends nothing');
});

t.test('stop() while a REGISTER is outstanding un-registers and ignores the late answer', async (t) => {
  const { client, sent } = setup();
  client.start();
  const pending = sent[0]!;
  const done = client.stop();
  t.equal(sent.length, 2);
  pending.handlers.onResponse(buildResponse(pending.request, 200));
  t.equal(client.status().state, 'stopped', 'late 200 ignored');
  sent[1]!.handlers.onTimeout();
  await done;
  t.pass('stop() resolves on a timeout of the un-REGISTER');
});

t.test('stop() with no binding (failed, waiting to retry) sends nothing', async (t) => {
  const { client, sent, reply, clock } = setup();
  client.start();
  reply(403);
  await client.stop();
  clock.advance(600_000);
  t.equal(sent.length, 1);
  t.equal(client.status().state, 'stopped');
  t.throws(() => client.start(), /already started/, 'a stopped client cannot be restarted');
});

t.test('granted expiry: our Contact expires param, else Expires header, else requested (§10.2.4)', async (t) => {
  const ours = parseUri(CONTACT_URI);
  const cases: { name: string; headers: [string, string][]; want: number }[] = [
    { name: 'our contact among others', headers: [['Contact', '<sip:other@198.51.100.1>;expires=3600, <sip:gw42@192.0.2.10:5070;transport=UDP>;expires=300'], ['Expires', '999']], want: 300 },
    { name: 'no matching contact: Expires header', headers: [['Contact', '<sip:other@198.51.100.1>;expires=3600'], ['Expires', '999']], want: 999 },
    { name: 'matching contact without expires param: Expires header', headers: [['Contact', `<${CONTACT_URI}>`], ['Expires', '450']], want: 450 },
    { name: 'nothing: requested', headers: [], want: 600 },
    { name: 'malformed contact skipped', headers: [['Contact', '<sip:gw42@192.0.2.10:5070;transport=udp;expires=abc'], ['Expires', '77']], want: 77 },
  ];
  for (const c of cases) t.equal(grantedExpires(createResponse(200, 'OK', c.headers), ours, 600), c.want, c.name);
});

t.test('refresh at half the lifetime, at least 30 s unless the binding is shorter', async (t) => {
  const cases = [
    { granted: 3600, want: 1800 },
    { granted: 120, want: 60 },
    { granted: 60, want: 30 },
    { granted: 40, want: 30 },
    { granted: 20, want: 15 },
    { granted: 4, want: 2 },
  ];
  for (const c of cases) t.equal(refreshDelaySeconds(c.granted), c.want, `${c.granted} s → ${c.want} s`);
});

t.test('a 200 granting expires 0 is not a registration', async (t) => {
  const { client, reply } = setup();
  client.start();
  reply(200, [['Contact', `<${CONTACT_URI}>;expires=0`]]);
  t.match(client.status(), { state: 'failed', lastError: /expires 0/ });
});
