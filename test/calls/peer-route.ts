/**
 * Calls between hookswitch peers: which peer a dialled number or name reaches (the dial plan's
 * `peer` target), the INVITE sent there with credentials derived from discovery.secret, and how
 * the called box admits (or refuses, with 403 and a reason in the log) those credentials.
 */
import t from 'tap';
import { DialPlan, type DialRule } from '../../src/calls/dialplan.ts';
import { PeerAuthenticator } from '../../src/calls/peer-authenticator.ts';
import { isPeerUsername, peerInstanceId, peerPassword, peerUsername, PeerCredentials } from '../../src/calls/peer-credentials.ts';
import { PeerRoute, type PeerDirectory } from '../../src/calls/peer-route.ts';
import { ConfigError, resolveConfig } from '../../src/config/config.ts';
import { parseControlRequest } from '../../src/control/control-protocol.ts';
import { PeerTable, type Peer } from '../../src/discovery/peer-table.ts';
import type { ServiceSighting } from '../../src/discovery/dns-sd-records.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { SeededRandom } from '../../src/runtime/random.ts';
import { DigestClient } from '../../src/sip/auth/digest-client.ts';
import { DigestServer } from '../../src/sip/auth/digest-server.ts';
import type { SipRequest } from '../../src/sip/message/message.ts';
import { parseMessage } from '../../src/sip/message/parser.ts';
import { ExtensionCredentials } from '../../src/sip/ua/request-authenticator.ts';

const SECRET = 'correct horse battery';
const SELF_ID = '4d9a0c3e-1f2b-4c5d-8e6f-a1b2c3d4e5f6';

function sighting(name: string, id: string | undefined, address: string, opts: { exts?: string; dev?: string; product?: string; contactHost?: string } = {}): ServiceSighting {
  const txt = new Map<string, string | true>([
    ['txtvers', '1'],
    ['product', opts.product ?? 'hookswitch'],
    ['exts', opts.exts ?? ''],
  ]);
  if (id !== undefined) txt.set('instance_id', id);
  if (opts.dev !== undefined) txt.set('dev', opts.dev);
  txt.set('contact', `<sip:${opts.dev ?? 'x'}@${opts.contactHost ?? address}:5060>`);
  return { type: 'sipuri', instance: name, host: `${name.replace(/\W/g, '')}.local`, port: 5060, addresses: [address], txt, ttlSeconds: 120 };
}

/** Kitchen (dev 100, exts 101,102), garage (dev 200, ext 102 too), a baresip that is no hookswitch. */
function lan(): PeerTable {
  const table = new PeerTable({ clock: new ManualClock(), selfInstanceId: SELF_ID });
  table.seen(sighting('hookswitch on kitchen', 'aaaaaaaa-0000-4000-8000-000000000001', '10.0.0.2', { exts: '101,102', dev: '100' }));
  table.seen(sighting('hookswitch on garage', 'aaaaaaaa-0000-4000-8000-000000000002', '10.0.0.3', { exts: '102', dev: '200' }));
  table.seen(sighting('Alice Blink', 'e7a3c0de-0000-4000-8000-00000000a11c', '10.0.0.9', { product: '' }));
  table.seen(sighting('hookswitch on hall', 'aaaaaaaa-0000-4000-8000-000000000003', '10.0.0.4', { exts: '' }));
  return table;
}

function harness(opts: { secret?: string; table?: PeerDirectory | undefined } = {}) {
  const logger = new MemoryLogger();
  const table = 'table' in opts ? opts.table : lan();
  const route = new PeerRoute({
    peers: () => table,
    secret: () => ('secret' in opts ? opts.secret : SECRET),
    instanceId: () => (table ? SELF_ID : undefined),
    localEndpoint: (_t, remote) => ({ address: remote.startsWith('10.') ? '10.0.0.1' : '192.0.2.1', port: 5070 }),
    random: new SeededRandom(1),
    logger,
  });
  return { route, logger, table };
}

const TIMER: [string, string][] = [['Supported', 'timer']];
const caller = { user: '300', display: 'Hall phone' };

t.test('the peer credentials: username from the instance id, password an HMAC of the secret', async (t) => {
  const user = peerUsername(SELF_ID);
  t.equal(user, `peer-${SELF_ID}`);
  // Computed independently: python3 hmac.new(secret, b"hookswitch-peer:" + user, sha256), base64url without padding.
  t.equal(peerPassword(SECRET, user), 'eT926NWJR95Y93kyldswrrIeLpC93sS2QeiZIL__vBA');
  t.not(peerPassword(SECRET, user), peerPassword(`${SECRET}!`, user), 'another secret, another password');
  t.not(peerPassword(SECRET, user), peerPassword(SECRET, peerUsername('other')), 'each username its own password');
  t.notMatch(peerPassword(SECRET, user), SECRET, 'the secret itself is not the password');
  const names: [string, boolean][] = [
    [user, true],
    ['peer-x', true],
    ['peer-', false],
    ['101', false],
    ['peer-a b', false],
    [`peer-${'a'.repeat(65)}`, false],
    ['Peer-x', false],
  ];
  for (const [name, ok] of names) t.equal(isPeerUsername(name), ok, `${JSON.stringify(name)} is ${ok ? '' : 'not '}a peer username`);
  t.equal(peerInstanceId(user), SELF_ID);
  t.equal(peerInstanceId('101'), undefined);

  const ext = new ExtensionCredentials({ '101': { password: 'pw-101' } });
  let secret: string | undefined = SECRET;
  const store = new PeerCredentials(ext, () => secret);
  t.equal(store.password('101'), 'pw-101', 'extensions as before');
  t.equal(store.password('102'), undefined);
  t.equal(store.password(user), peerPassword(SECRET, user), 'a peer username while the secret is set');
  secret = undefined;
  t.equal(store.password(user), undefined, 'no peers without a secret');
});

t.test('a number after the prefix reaches the one peer advertising that extension', async (t) => {
  type Reached = { label: string; address: string; user: string };
  type Case = [name: string, number: string, expected: Reached | number, logged?: RegExp];
  const cases: Case[] = [
    ['a device extension', '100', { label: 'hookswitch on kitchen', address: '10.0.0.2', user: '100' }],
    ['another extension of the peer', '101', { label: 'hookswitch on kitchen', address: '10.0.0.2', user: '101' }],
    ['the other peer\'s device', '200', { label: 'hookswitch on garage', address: '10.0.0.3', user: '200' }],
    ['advertised by two peers: 485 listing both', '102', 485, /hookswitch on garage \(200,102\), hookswitch on kitchen \(100,101,102\)/],
    ['nobody has it: 404 listing the hookswitch peers', '555', 404, /hookswitch on garage \(200,102\), hookswitch on hall \(\), hookswitch on kitchen \(100,101,102\)/],
  ];
  for (const [name, number, expected, logged] of cases) {
    const { route, logger } = harness();
    const out = route.forks({ target: { kind: 'peer' }, number, rule: 0 }, caller, 69, TIMER);
    if (typeof expected === 'object') {
      t.ok(Array.isArray(out), name);
      if (!Array.isArray(out)) continue;
      const { label, address, user } = expected;
      t.equal(out.length, 1);
      t.same(out[0]!.flow, { transport: 'udp', address, port: 5060 }, `${name}: sent to the peer`);
      t.equal(out[0]!.invite.requestUri, `sip:${user}@${address}:5060`);
      t.equal(out[0]!.invite.to, `<sip:${user}@${address}>`);
      t.equal(out[0]!.invite.from, '"Hall phone" <sip:300@10.0.0.1>', 'From: the caller at our LAN address');
      t.equal(out[0]!.invite.label, `peer ${label}`);
      t.equal(out[0]!.invite.maxForwards, 69);
      t.same(out[0]!.invite.headers, TIMER);
      t.same(out[0]!.local, { address: '10.0.0.1', port: 5070 }, 'our address facing the peer');
    } else {
      t.same(out, { status: expected, reason: expected === 485 ? 'Ambiguous' : 'Not Found (no peer has that extension)' }, name);
      t.match(logger.records.at(-1), { level: 'warn', fields: { number, candidates: logged } }, `${name}: the log lists the candidates`);
    }
  }
});

t.test('a peer by name: a rule\'s "peer", or a name dialled from the CLI', async (t) => {
  const { route } = harness();
  const cases: [dialled: string, expected: ReturnType<PeerRoute['byName']>][] = [
    ['kitchen', { target: { kind: 'peer', peer: 'kitchen' }, number: '', rule: -1 }],
    ['@kitchen', { target: { kind: 'peer', peer: 'kitchen' }, number: '', rule: -1 }],
    ['@Hookswitch on garage', { target: { kind: 'peer', peer: 'Hookswitch on garage' }, number: '', rule: -1 }],
    ['8100', undefined],
    ['*43', undefined],
    ['@', undefined],
  ];
  for (const [dialled, expected] of cases) t.same(route.byName(dialled), expected, JSON.stringify(dialled));

  type Case = [name: string, peer: string, digits: string, expected: string | { status: number; reason: string }, logged?: RegExp];
  const forks: Case[] = [
    ['the short name: its device extension', 'kitchen', '', 'sip:100@10.0.0.2:5060'],
    ['the full name, case ignored', 'HOOKSWITCH ON GARAGE', '', 'sip:200@10.0.0.3:5060'],
    ['a unique prefix', 'kit', '', 'sip:100@10.0.0.2:5060'],
    ['digits left after strip: that extension on the peer', 'kitchen', '101', 'sip:101@10.0.0.2:5060'],
    ['the instance id', 'aaaaaaaa-0000-4000-8000-000000000002', '', 'sip:200@10.0.0.3:5060'],
    ['unknown: 404 listing every peer', 'cellar', '', { status: 404, reason: 'Not Found (no such peer)' }, /^Alice Blink, hookswitch on garage, hookswitch on hall, hookswitch on kitchen$/],
    ['ambiguous prefix: 485 listing the matches', 'hookswitch on', '', { status: 485, reason: 'Ambiguous' }, /^hookswitch on garage, hookswitch on hall, hookswitch on kitchen$/],
    ['a SIP service that is no hookswitch: 404', 'alice', '', { status: 404, reason: 'Not Found (not a hookswitch peer)' }],
    ['a peer without a device and no digits: 404', 'hall', '', { status: 404, reason: 'Not Found (peer has no device extension)' }],
  ];
  for (const [name, peer, digits, expected, logged] of forks) {
    const h = harness();
    const out = h.route.forks({ target: { kind: 'peer', peer }, number: digits, rule: 2 }, caller, 70, []);
    if (typeof expected === 'string') t.equal(Array.isArray(out) ? out[0]!.invite.requestUri : out, expected, name);
    else {
      t.same(out, expected, name);
      if (logged) t.match(h.logger.records.at(-1)?.fields, { peer, candidates: logged }, `${name}: candidates logged`);
    }
  }
});

t.test('the INVITE answers the peer\'s challenge with the derived credentials, never the secret', async (t) => {
  const { route, logger } = harness();
  const out = route.forks({ target: { kind: 'peer', peer: 'kitchen' }, number: '', rule: 0 }, caller, 70, []);
  if (!Array.isArray(out)) throw new Error('expected a fork');
  const digest = out[0]!.invite.digest!;
  t.ok(digest, 'a digest client for 401/407');
  const server = new DigestServer({ realm: 'kitchen.test', secret: Buffer.alloc(32, 2), clock: new ManualClock(), random: new SeededRandom(2), algorithms: ['SHA-256'] });
  const value = digest.authorize({ challenges: server.challenge(), method: 'INVITE', uri: 'sip:100@10.0.0.2:5060' })!;
  t.match(value, `username="peer-${SELF_ID}"`);
  const verified = server.verify({
    method: 'INVITE',
    authorization: value,
    lookup: (u) => (u === peerUsername(SELF_ID) ? { password: peerPassword(SECRET, u) } : undefined),
  });
  t.equal(verified.ok, true, 'the called box verifies it with the password derived from its own secret');
  const logged = JSON.stringify(logger.records);
  t.notMatch(logged, SECRET, 'the secret is not logged');
  t.notMatch(logged, peerPassword(SECRET, peerUsername(SELF_ID)), 'nor the derived password');
});

t.test('peer calls are refused without a secret or without discovery, and peers without an address', async (t) => {
  const noSecret = harness({ secret: undefined });
  t.same(noSecret.route.forks({ target: { kind: 'peer' }, number: '100', rule: 0 }, caller, 70, []), { status: 403, reason: 'Forbidden (peer calls need discovery.secret)' });
  t.match(noSecret.logger.records.at(-1)?.msg, /set the same discovery\.secret on both boxes/);
  const off = harness({ table: undefined });
  t.same(off.route.forks({ target: { kind: 'peer' }, number: '100', rule: 0 }, caller, 70, []), { status: 404, reason: 'Not Found (discovery is off)' });
  const lonely: PeerDirectory = {
    lookup: () => ({ peer: bare }),
    list: () => [bare],
  };
  const bare: Peer = { name: 'ghost', host: 'ghost.local', addresses: [], port: 5060, isHookswitch: true, extensions: [], deviceExtension: '100', types: ['sip'], lastSeen: 0 };
  t.same(harness({ table: lonely }).route.forks({ target: { kind: 'peer', peer: 'ghost' }, number: '', rule: 0 }, caller, 70, []), { status: 480, reason: 'Temporarily Unavailable (peer has no address)' });
});

t.test('the address called: the contact\'s host when advertised, else IPv4 before IPv6', async (t) => {
  const cases: [name: string, addresses: string[], contact: string | undefined, expected: string][] = [
    ['contact host among the addresses', ['10.0.0.7', '10.0.0.2'], 'sip:100@10.0.0.2:5060', 'sip:100@10.0.0.2:5060'],
    ['contact host not advertised: first IPv4', ['fe80::1', '10.0.0.7'], 'sip:100@192.0.2.99:5060', 'sip:100@10.0.0.7:5060'],
    ['IPv6 only: in brackets', ['fd00::2'], undefined, 'sip:100@[fd00::2]:5060'],
  ];
  for (const [name, addresses, contact, expected] of cases) {
    const peer: Peer = { name: 'p', host: 'p.local', addresses, port: 5060, isHookswitch: true, extensions: [], deviceExtension: '100', types: ['sip'], lastSeen: 0, ...(contact ? { contact } : {}) };
    const out = harness({ table: { lookup: () => ({ peer }), list: () => [peer] } }).route.forks({ target: { kind: 'peer', peer: 'p' }, number: '', rule: 0 }, caller, 70, []);
    t.equal(Array.isArray(out) ? out[0]!.invite.requestUri : out, expected, name);
  }
});

t.test('a call from a peer shows the peer\'s name as the caller', async (t) => {
  const { route } = harness();
  const from = { displayName: 'Kitchen phone', uri: { scheme: 'sip', user: '100', host: '10.0.0.2', params: new Map(), headers: new Map() }, params: new Map() } as never;
  t.same(route.caller('peer-aaaaaaaa-0000-4000-8000-000000000001', from), { user: '100', display: 'hookswitch on kitchen' }, 'known peer: its advertised name');
  t.same(route.caller('peer-unknown-id', from), { user: '100', display: 'Kitchen phone' }, 'not (yet) seen: the From display name');
  t.equal(route.caller('101', from), undefined, 'an extension is no peer');
});

t.test('dial plan: "to": "peer" with an optional "peer" name', async (t) => {
  const rules: DialRule[] = [
    { match: '8x.', to: 'peer', strip: 1 },
    { match: '*7', to: 'peer', peer: 'kitchen' },
    { match: '*7x.', to: 'peer', peer: 'kitchen', strip: 2 },
  ];
  const plan = new DialPlan(rules, { extensions: ['101'], deviceExtension: '100', trunks: [], emergencyNumbers: [] });
  t.same(plan.route('8200'), { target: { kind: 'peer' }, number: '200', rule: 0 });
  t.same(plan.route('*7'), { target: { kind: 'peer', peer: 'kitchen' }, number: '*7', rule: 1 }, 'not digits: peer-route.ts calls the device extension');
  t.same(plan.route('*7101'), { target: { kind: 'peer', peer: 'kitchen' }, number: '101', rule: 2 });
  t.throws(() => new DialPlan([{ match: '1', to: 'echo', peer: 'x' }], { extensions: [], deviceExtension: '100', trunks: [], emergencyNumbers: [] }), {
    message: 'dialplan[0].peer needs "to": "peer" (got "echo")',
  });

  const problems = (dialplan: unknown): string[] => {
    try {
      resolveConfig({ dialplan });
      return [];
    } catch (e) {
      return e instanceof ConfigError ? e.problems : [String(e)];
    }
  };
  t.same(problems([{ match: '*7', to: 'peer', peer: 'kitchen' }]), [], 'a peer name is accepted');
  t.same(problems([{ match: '*7', to: 'echo', peer: 'kitchen' }]), ['dialplan[0].peer needs "to": "peer" (got "echo")']);
  t.same(problems([{ match: '*7', to: 'peer', peer: '' }]), ['dialplan[0].peer must be a peer\'s name of 1 to 63 characters (got "")']);
  t.same(problems([{ match: '*7', to: 'peer', peer: 5 }]), ['dialplan[0].peer must be a peer\'s name of 1 to 63 characters (got 5)']);
});

t.test('the control socket takes a peer name for call', async (t) => {
  const cases: [number: string, ok: boolean][] = [
    ['8100', true],
    ['kitchen', true],
    ['@kitchen', true],
    ['@Küche oben', true],
    ['Küche', true],
    ['1kitchen', false],
    ['@', false],
    ['@a\nb', false],
    [`@${'a'.repeat(64)}`, false],
  ];
  for (const [number, ok] of cases) {
    const r = parseControlRequest(JSON.stringify({ cmd: 'call', number }));
    t.same(r, ok ? { cmd: 'call', number } : 'call needs a number of digits, *, # or + (up to 32), or a peer name (kitchen, @kitchen)', JSON.stringify(number));
  }
});

function invite(authorization?: string, method = 'INVITE'): SipRequest {
  const header = method === 'REGISTER' ? 'Authorization' : 'Proxy-Authorization';
  const text =
    `${method} sip:100@10.0.0.2:5060 SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:300@10.0.0.1>;tag=a\r\nTo: <sip:100@10.0.0.2>\r\n` +
    `Call-ID: c1\r\nCSeq: 1 ${method}\r\n` +
    (authorization === undefined ? '' : `${header}: ${authorization}\r\n`) +
    `Content-Length: 0\r\n\r\n`;
  const msg = parseMessage(Buffer.from(text, 'latin1'));
  if (msg.kind !== 'request') throw new Error('expected a request');
  return msg;
}

t.test('the called box admits peers holding the same secret; anything else gets 403 and a log line', async (t) => {
  const username = peerUsername(SELF_ID);
  const answer = (challenges: string[], password: string, user = username, method = 'INVITE') =>
    new DigestClient({ username: user, password, random: new SeededRandom(3) }).authorize({ challenges, method, uri: 'sip:100@10.0.0.2:5060' })!;
  type Case = [name: string, ourSecret: string | undefined, build: (challenges: string[]) => SipRequest, role: 'proxy' | 'registrar', expected: object, logged?: RegExp];
  const cases: Case[] = [
    ['the same secret: admitted as the peer', SECRET, (c) => invite(answer(c, peerPassword(SECRET, username))), 'proxy', { ok: true, username }],
    ['no credentials yet: the usual 407 challenge', SECRET, () => invite(), 'proxy', { ok: false, status: 407, failed: false }],
    ['another secret: 403, counted', SECRET, (c) => invite(answer(c, peerPassword('another secret!!', username))), 'proxy', { ok: false, status: 403, failed: true }, /do not match discovery\.secret; set the same discovery\.secret on both boxes/],
    ['no secret here: 403, not counted', undefined, (c) => invite(answer(c, peerPassword(SECRET, username))), 'proxy', { ok: false, status: 403, failed: false }, /discovery\.secret is not set on this box; set the same discovery\.secret on both boxes/],
    ['peer credentials on REGISTER: 403', SECRET, (c) => invite(answer(c, peerPassword(SECRET, username), username, 'REGISTER'), 'REGISTER'), 'registrar', { ok: false, status: 403, failed: true }, /peers may only call/],
    ['an extension as before', SECRET, (c) => invite(answer(c, 'pw-300', '300')), 'proxy', { ok: true, username: '300' }],
    ['an extension with a wrong password: 407 as before', SECRET, (c) => invite(answer(c, 'guess', '300')), 'proxy', { ok: false, status: 407, failed: true }],
  ];
  for (const [name, ourSecret, build, role, expected, logged] of cases) {
    const logger = new MemoryLogger();
    const digest = new DigestServer({ realm: 'kitchen.test', secret: Buffer.alloc(32, 1), clock: new ManualClock(), random: new SeededRandom(7), algorithms: ['MD5'] });
    const auth = new PeerAuthenticator({ digest, credentials: new ExtensionCredentials({ '300': { password: 'pw-300' } }), logger, secret: () => ourSecret });
    const out = auth.check(build(digest.challenge()), role);
    t.same(out.ok ? { ok: true, username: out.username } : { ok: false, status: out.response.status, failed: out.failed }, expected, name);
    if (logged) t.match(logger.records.map((r) => r.msg).join('\n'), logged, `${name}: logged`);
    const all = JSON.stringify(logger.records);
    t.notMatch(all, SECRET, `${name}: the secret is never logged`);
  }
});
