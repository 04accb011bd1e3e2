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
} from '../../../src/sip/ua/registration-client.ts';
import type { RegistrationClientOptions, RegistrationTrunk } from '../../../src/sip/ua/registration-options.ts';

const PASSWORD = 'trunk-secret-9';
const TRUNK: RegistrationTrunk = {
  name: 'provider',
  host: 'sip.example.net',
  port: 5060,
  transport: 'udp',
  username: 'gw42',
  password: PASSWORD,
  expires: 600,
  keepAliveSeconds: 0,
};
const LOCAL = { address: '192.0.2.10', port: 5070 };
const CONTACT_URI = 'sip:gw42@192.0.2.10:5070;transport=udp';

interface Sent {
  request: SipRequest;
  dest: Destination;
  handlers: ClientTransactionHandlers;
}

type Extra = Partial<Pick<RegistrationClientOptions, 'initialRetryMs' | 'maxRetryMs' | 'destinations' | 'sendRaw' | 'connectionTo' | 'keepAliveTimeoutMs'>>;

function setup(trunk: Partial<RegistrationTrunk> = {}, extra: Extra = {}) {
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

t.test('401 is answered once with Digest credentials; 200 registers and schedules a refresh at 90-100 % of half the granted time', async (t) => {
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

  clock.advance(53_999);
  t.equal(sent.length, 2, 'no refresh before 90 % of half the lifetime');
  clock.advance(6_001);
  t.equal(sent.length, 3, 'refreshed by 60 s (jitter only ever makes it earlier)');
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
  const refreshes = sent.length;
  last().handlers.onTransportError(new Error('ICMP port unreachable'));
  t.equal(sent.length, refreshes + 1, 'a failed refresh registers again at once');
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

// ---- Robustness: keep-alives, re-registration, local address changes, failover ----

/** Lets promise callbacks (keep-alive outcomes) run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));
const registers = (sent: Sent[]) => sent.filter((s) => s.request.method === 'REGISTER');
const pings = (sent: Sent[]) => sent.filter((s) => s.request.method === 'OPTIONS');
const lastOf = (list: Sent[]) => list[list.length - 1]!;
const answer = (s: Sent, status: number, headers: [string, string][] = []) =>
  s.handlers.onResponse(buildResponse(s.request, status, undefined, { headers }));
const OK_600: [string, string][] = [['Contact', `<${CONTACT_URI}>;expires=600`]];

/** Advances in steps until `sent` grows; returns the time it took. */
function waitForSend(clock: ManualClock, sent: Sent[], limitMs = 3_600_000): number {
  const before = sent.length;
  const start = clock.now();
  while (sent.length === before && clock.now() - start < limitMs) clock.advance(250);
  return clock.now() - start;
}

t.test('UDP keep-alive: an OPTIONS every 24-30 s while registered; any response counts as alive', async (t) => {
  const { client, sent, reply, clock } = setup({ keepAliveSeconds: 30 });
  client.start();
  reply(200, OK_600);
  clock.advance(23_999);
  t.equal(pings(sent).length, 0, 'no ping before 80 % of the interval (RFC 5626 §4.4.1)');
  clock.advance(6_001);
  t.equal(pings(sent).length, 1, 'one ping by 30 s');
  const ping = lastOf(pings(sent));
  const reg = sent[0]!;
  t.equal(ping.request.uri, 'sip:sip.example.net', 'Request-URI: the registrar');
  t.equal(h(ping, 'to'), '<sip:sip.example.net>', 'To: the trunk domain');
  t.match(h(ping, 'from'), /^<sip:gw42@sip\.example\.net>;tag=\w+$/, 'From: our AOR with a tag');
  t.equal(h(ping, 'max-forwards'), '70');
  t.equal(h(ping, 'cseq'), '1 OPTIONS');
  const via = parseVia(h(ping, 'via')!);
  t.same([via.transport, via.host, via.port, via.rport], ['UDP', '192.0.2.10', 5070, null], 'Via with rport');
  t.not(via.branch, parseVia(h(reg, 'via')!).branch, 'a new branch');
  t.same(ping.dest, reg.dest, 'to the registrar');
  answer(ping, 404);
  await flush();
  clock.advance(30_000);
  t.equal(pings(sent).length, 2, 'a 404 still proves the server is alive: pinging goes on');
  t.equal(client.status().state, 'registered');
});

t.test('keep-alive failure: re-register at once, then back off 30 s → 60 s → ... ≤ 600 s with jitter; success resets', async (t) => {
  const { client, sent, reply, clock, states } = setup({ keepAliveSeconds: 30 });
  client.start();
  reply(200, OK_600);
  waitForSend(clock, sent);
  t.equal(lastOf(sent).request.method, 'OPTIONS');
  // waitForSend stops at most 250 ms after the ping went out.
  clock.advance(4_750);
  t.equal(client.status().state, 'registered', 'still registered before the ping timeout');
  clock.advance(250);
  t.same(states(), ['registering', 'registered', 'failed', 'registering'], 'failed, then registering again at once');
  t.equal(lastOf(sent).request.method, 'REGISTER', 'REGISTER sent without waiting');
  t.match(client.status().lastError, /^keep-alive failed: no answer within 5000 ms/);
  lastOf(pings(sent)).handlers.onTimeout();
  t.equal(registers(sent).length, 2, 'the late end of the ping transaction changes nothing');

  const bases = [30, 60, 120, 240, 480, 600, 600].map((x) => x * 1000);
  const delays: number[] = [];
  for (let i = 0; i < bases.length; i++) {
    lastOf(sent).handlers.onTimeout();
    delays.push(waitForSend(clock, sent));
  }
  t.same(pings(sent).length, 1, 'no pings while not registered');
  delays.forEach((d, i) => t.ok(d > bases[i]! * 0.75 - 250 && d <= bases[i]!, `retry ${i + 1} after ${d} ms, within 75-100 % of ${bases[i]} ms`));

  answer(lastOf(sent), 200, OK_600);
  t.equal(client.status().state, 'registered');
  t.ok(waitForSend(clock, sent) <= 30_000, 'keep-alive resumes after re-registration');
  answer(lastOf(pings(sent)), 200);
  await flush();
  waitForSend(clock, sent);
  clock.advance(5_000);
  t.equal(lastOf(sent).request.method, 'REGISTER', 'second keep-alive failure: registering again at once');
  lastOf(sent).handlers.onTimeout();
  t.ok(waitForSend(clock, sent) <= 30_000, 'backoff restarted at 30 s after the success');
});

t.test('a failed refresh registers again at once; Retry-After is honoured; a second failure backs off', async (t) => {
  const cases: { name: string; fail: (s: Sent) => void; immediate: boolean }[] = [
    { name: 'refresh timeout', fail: (s) => s.handlers.onTimeout(), immediate: true },
    { name: 'refresh 500', fail: (s) => answer(s, 500), immediate: true },
    { name: 'refresh 403 after being registered', fail: (s) => answer(s, 403), immediate: true },
    { name: 'refresh 404', fail: (s) => answer(s, 404), immediate: true },
    { name: 'refresh 503 with Retry-After 120', fail: (s) => answer(s, 503, [['Retry-After', '120']]), immediate: false },
  ];
  for (const c of cases) {
    const { client, sent, reply, clock } = setup();
    client.start();
    reply(200, OK_600);
    waitForSend(clock, sent);
    const refreshes = sent.length;
    c.fail(lastOf(sent));
    if (c.immediate) {
      t.equal(sent.length, refreshes + 1, `${c.name}: REGISTER again at once`);
      t.equal(client.status().state, 'registering', `${c.name}: registering`);
      lastOf(sent).handlers.onTimeout();
      t.equal(client.status().state, 'failed', `${c.name}: the second failure is a failure`);
      const d = waitForSend(clock, sent);
      t.ok(d > 22_000 && d <= 30_000, `${c.name}: then retried after the 30 s backoff (${d} ms)`);
    } else {
      t.equal(client.status().state, 'failed', `${c.name}: failed`);
      t.equal(waitForSend(clock, sent), 120_000, `${c.name}: retried after Retry-After`);
    }
  }
});

t.test('setLocal: a new address or port re-registers at once with the new Contact', async (t) => {
  const { client, sent, reply, logger, clock } = setup({ keepAliveSeconds: 30 });
  client.start();
  reply(200, OK_600);
  client.setLocal({ address: '192.0.2.10', port: 5070 });
  t.equal(sent.length, 1, 'the same address changes nothing');
  client.setLocal({ address: '198.51.100.20', port: 5070 });
  t.equal(sent.length, 2, 'REGISTER sent at once');
  t.equal(h(lastOf(sent), 'contact'), '<sip:gw42@198.51.100.20:5070;transport=udp>', 'with the new Contact');
  t.equal(h(lastOf(sent), 'expires'), '600', 'a registration, not an un-registration of the old Contact');
  t.equal(parseVia(h(lastOf(sent), 'via')!).host, '198.51.100.20', 'Via has the new address');
  t.equal(client.status().state, 'registering');
  t.ok(logger.records.some((r) => r.msg === 'local address changed' && r.fields.from === '192.0.2.10:5070' && r.fields.to === '198.51.100.20:5070'), 'logged');
  clock.advance(60_000);
  t.equal(pings(sent).length, 0, 'no keep-alive until registered again');
  client.setLocal({ address: '198.51.100.20', port: 5072 });
  const stale = sent[1]!;
  t.equal(h(lastOf(sent), 'contact'), '<sip:gw42@198.51.100.20:5072;transport=udp>', 'a port change too');
  answer(stale, 200, OK_600);
  t.equal(client.status().state, 'registering', 'the answer to the abandoned REGISTER is ignored');
  answer(lastOf(sent), 200, [['Contact', '<sip:gw42@198.51.100.20:5072;transport=udp>;expires=600']]);
  t.equal(client.status().state, 'registered', 'the new Contact is granted');

  const early = setup();
  early.client.setLocal({ address: '203.0.113.4', port: 5060 });
  t.equal(early.sent.length, 0, 'before start() nothing is sent');
  early.client.start();
  t.equal(h(early.last(), 'contact'), '<sip:gw42@203.0.113.4:5060;transport=udp>', 'the first REGISTER uses it');
});

t.test('keep-alive stops with stop(); setLocal after stop() sends nothing', async (t) => {
  const { client, sent, reply, clock } = setup({ keepAliveSeconds: 30 });
  client.start();
  reply(200, OK_600);
  const done = client.stop();
  reply(200);
  await done;
  t.notOk(clock.pending().includes('keep-alive'), 'no keep-alive timer left');
  clock.advance(600_000);
  client.setLocal({ address: '198.51.100.20', port: 5070 });
  t.same(sent.map((s) => s.request.method), ['REGISTER', 'REGISTER'], 'only the REGISTER and the un-REGISTER');
});

t.test('TCP and TLS keep-alives are CRLFCRLF written to the registrar; a failed write re-registers', async (t) => {
  const raw: { bytes: Buffer; dest: Destination }[] = [];
  let failWrite = false;
  const sendRaw = (bytes: Buffer, dest: Destination) => {
    raw.push({ bytes, dest });
    return failWrite ? Promise.reject(new Error('connect ECONNREFUSED')) : Promise.resolve();
  };
  const { client, sent, reply, clock, states } = setup({ transport: 'tcp', keepAliveSeconds: 30 }, { sendRaw });
  client.start();
  reply(200, OK_600);
  clock.advance(30_000);
  await flush();
  t.equal(raw.length, 1, 'one ping');
  t.equal(raw[0]!.bytes.toString('latin1'), '\r\n\r\n', 'CRLFCRLF (RFC 5626 §4.4.1)');
  t.same(raw[0]!.dest, { transport: 'tcp', address: 'sip.example.net', port: 5060 });
  t.equal(pings(sent).length, 0, 'no OPTIONS over TCP');
  failWrite = true;
  clock.advance(30_000);
  await flush();
  t.equal(raw.length, 2);
  t.same(states().slice(-2), ['failed', 'registering'], 'a failed write means the connection is gone');
  t.equal(registers(sent).length, 2, 're-registered at once');
  t.match(client.status().lastError, /CRLF ping failed: connect ECONNREFUSED/);

  let connection: string | undefined = 'tcp-1';
  const flow = setup({ transport: 'tcp', keepAliveSeconds: 30 }, { sendRaw: () => Promise.resolve(), connectionTo: () => connection });
  flow.client.start();
  flow.reply(200, OK_600);
  flow.clock.advance(30_000);
  await flush();
  t.equal(flow.client.status().state, 'registered', 'the same connection: alive');
  connection = undefined;
  flow.clock.advance(30_000);
  await flush();
  t.equal(registers(flow.sent).length, 2, 'the connection that carried the registration closed: re-registered at once');
  t.match(flow.client.status().lastError, /connection that carried the registration closed/);

  const noRaw = setup({ transport: 'tls', port: 5061, keepAliveSeconds: 30 });
  noRaw.client.start();
  noRaw.reply(200, OK_600);
  noRaw.clock.advance(30_000);
  t.equal(pings(noRaw.sent).length, 1, 'without sendRaw, TLS keep-alives are OPTIONS');
  t.equal(parseVia(h(lastOf(pings(noRaw.sent)), 'via')!).transport, 'TLS');
});

t.test('several resolved servers: a REGISTER that times out goes to the next (RFC 3263 §4.3)', async (t) => {
  const A: Destination = { transport: 'udp', address: '192.0.2.1', port: 5060 };
  const B: Destination = { transport: 'udp', address: '192.0.2.2', port: 5060 };
  const { client, sent, clock } = setup({ keepAliveSeconds: 30 }, { destinations: [A, B] });
  client.start();
  t.same(sent[0]!.dest, A, 'the most preferred first');
  sent[0]!.handlers.onTimeout();
  t.equal(sent.length, 2, 'at once to the next');
  t.same(sent[1]!.dest, B);
  t.equal(h(sent[1]!, 'call-id'), h(sent[0]!, 'call-id'), 'same Call-ID');
  t.equal(cseqOf(sent[1]!), 2, 'next CSeq');
  t.not(parseVia(h(sent[1]!, 'via')!).branch, parseVia(h(sent[0]!, 'via')!).branch, 'new branch');
  t.equal(client.status().state, 'registering', 'not a failure yet');
  answer(sent[1]!, 200, OK_600);
  waitForSend(clock, sent);
  t.same(lastOf(sent).dest, B, 'keep-alives go to the server that holds the binding');

  const r = setup({}, { destinations: [A, B] });
  r.client.start();
  r.last().handlers.onTimeout();
  r.reply(200, OK_600);
  waitForSend(r.clock, r.sent);
  t.same(r.last().dest, B, 'so does the refresh');
  r.last().handlers.onTransportError(new Error('ICMP'));
  t.same(r.last().dest, A, 'the refresh to B failed: the refresh tries the other server');
  t.equal(r.client.status().state, 'registered', 'still within the refresh attempt');
  r.last().handlers.onTimeout();
  t.equal(r.client.status().state, 'registering', 'no server answered the refresh: registering afresh at once');
  t.same(r.last().dest, A, 'from the first server');
  r.last().handlers.onTimeout();
  t.same(r.last().dest, B, 'then the next');
  const before = r.sent.length;
  r.last().handlers.onTimeout();
  t.equal(r.sent.length, before, 'every server tried: the attempt failed');
  t.equal(r.client.status().state, 'failed');
  waitForSend(r.clock, r.sent);
  t.same(r.last().dest, A, 'the retry after the backoff starts at the first server again');
});

t.test('trunk settings: domain, retrySeconds and maxRetrySeconds', async (t) => {
  const { client, last } = setup({ domain: 'example.net', port: 5080 });
  client.start();
  t.equal(last().request.uri, 'sip:example.net', 'Request-URI: the domain without the host port');
  t.equal(h(last(), 'to'), '<sip:gw42@example.net>', 'To: AOR in the domain');
  t.match(h(last(), 'from'), /^<sip:gw42@example\.net>;tag=/, 'From: AOR in the domain');
  t.same(last().dest, { transport: 'udp', address: 'sip.example.net', port: 5080 }, 'sent to host:port');

  const r = setup({ retrySeconds: 10, maxRetrySeconds: 20 });
  r.client.start();
  const delays: number[] = [];
  for (let i = 0; i < 3; i++) {
    r.last().handlers.onTimeout();
    delays.push(waitForSend(r.clock, r.sent));
  }
  const bases = [10_000, 20_000, 20_000];
  delays.forEach((d, i) => t.ok(d > bases[i]! * 0.75 - 250 && d <= bases[i]!, `retry ${i + 1} after ${d} ms, within 75-100 % of ${bases[i]} ms`));
});
