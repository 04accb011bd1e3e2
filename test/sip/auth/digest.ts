import { createHash, createHmac } from 'node:crypto';
import t from 'tap';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { parseAuthValue, serializeAuthValue } from '../../../src/sip/auth/auth-header.ts';
import { challengeIsStale, DigestClient } from '../../../src/sip/auth/digest-client.ts';
import { DigestServer, type CredentialLookup, type DigestServerOptions } from '../../../src/sip/auth/digest-server.ts';
import {
  computeDigestResponse,
  computeHa1,
  computeUserhash,
  DIGEST_ALGORITHMS,
  parseDigestAlgorithm,
  type DigestAlgorithm,
} from '../../../src/sip/auth/digest.ts';
import { byteString } from '../../../src/sip/message/headers.ts';

t.test('published request-digest vectors', async (t) => {
  const mufasa7616 = {
    ha1Input: ['Mufasa', 'http-auth@example.org', 'Circle of Life'] as const,
    nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
    uri: '/dir/index.html',
  };
  const cases: {
    name: string;
    algorithm: DigestAlgorithm;
    user: [string, string, string];
    nonce: string;
    cnonce: string;
    uri: string;
    expected: string;
  }[] = [
    {
      name: 'RFC 2617 §3.5 (MD5, qop=auth)',
      algorithm: 'MD5',
      user: ['Mufasa', 'testrealm@host.com', 'Circle Of Life'],
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      cnonce: '0a4f113b',
      uri: '/dir/index.html',
      expected: '6629fae49393a05397450978507c4ef1',
    },
    {
      // The RFC text is right for this one; some copies misquote its tail as "...eebdb49".
      name: 'RFC 7616 §3.9.1 MD5',
      algorithm: 'MD5',
      user: [...mufasa7616.ha1Input],
      nonce: mufasa7616.nonce,
      cnonce: mufasa7616.cnonce,
      uri: mufasa7616.uri,
      expected: '8ca523f5e9506fed4657c9700eebdbec',
    },
    {
      name: 'RFC 7616 §3.9.1 SHA-256',
      algorithm: 'SHA-256',
      user: [...mufasa7616.ha1Input],
      nonce: mufasa7616.nonce,
      cnonce: mufasa7616.cnonce,
      uri: mufasa7616.uri,
      expected: '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    },
    {
      // RFC 7616 erratum 4897 corrects the response printed in §3.9.2.
      name: 'RFC 7616 §3.9.2 SHA-512-256 with a UTF-8 username (erratum 4897)',
      algorithm: 'SHA-512-256',
      user: [byteString('J\u00e4s\u00f8n Doe'), 'api@example.org', 'Secret, or not?'],
      nonce: '5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK',
      cnonce: 'NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v',
      uri: '/doe.json',
      expected: '3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5',
    },
  ];
  for (const c of cases) {
    const ha1 = computeHa1(c.algorithm, ...c.user);
    const got = computeDigestResponse({
      algorithm: c.algorithm,
      ha1,
      nonce: c.nonce,
      method: 'GET',
      uri: c.uri,
      qop: 'auth',
      nc: '00000001',
      cnonce: c.cnonce,
    });
    t.equal(got, c.expected, c.name);
  }
  t.equal(
    computeUserhash('SHA-512-256', byteString('J\u00e4s\u00f8n Doe'), 'api@example.org'),
    '793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b',
    'RFC 7616 §3.4.4 userhash (erratum 4897)',
  );
  // RFC 2069 form, no qop: H(HA1:nonce:HA2), computed independently here.
  const ha1 = computeHa1('MD5', 'Mufasa', 'testrealm@host.com', 'Circle Of Life');
  t.equal(
    computeDigestResponse({ algorithm: 'MD5', ha1, nonce: 'n', method: 'GET', uri: '/' }),
    md5hex(`${ha1}:n:${md5hex('GET:/')}`),
    'no qop: H(HA1:nonce:HA2)',
  );
  t.equal(
    computeDigestResponse({ algorithm: 'MD5-sess', ha1, nonce: 'n', method: 'GET', uri: '/', qop: 'auth', nc: '00000001', cnonce: 'c' }),
    md5hex(`${md5hex(`${ha1}:n:c`)}:n:00000001:c:auth:${md5hex('GET:/')}`),
    '-sess: HA1 = H(H(user:realm:pass):nonce:cnonce)',
  );
  t.equal(
    computeDigestResponse({ algorithm: 'MD5', ha1, nonce: 'n', method: 'INVITE', uri: 'sip:a@b', qop: 'auth-int', nc: '00000001', cnonce: 'c', body: 'v=0\r\n' }),
    md5hex(`${ha1}:n:00000001:c:auth-int:${md5hex(`INVITE:sip:a@b:${md5hex('v=0\r\n')}`)}`),
    'auth-int: HA2 = H(method:uri:H(body))',
  );
  t.throws(() => computeDigestResponse({ algorithm: 'MD5', ha1, nonce: 'n', method: 'GET', uri: '/', qop: 'auth' }), TypeError);
});

function md5hex(s: string): string {
  return createHash('md5').update(Buffer.from(s, 'latin1')).digest('hex');
}

t.test('algorithm names', async (t) => {
  const cases: [string | undefined, DigestAlgorithm | undefined][] = [
    [undefined, 'MD5'],
    ['md5', 'MD5'],
    ['sha-256', 'SHA-256'],
    ['SHA-512-256-SESS', 'SHA-512-256-sess'],
    ['AKAv1-MD5', undefined],
    ['SHA-1', undefined],
  ];
  for (const [input, expected] of cases) t.equal(parseDigestAlgorithm(input), expected, String(input));
});

const PASSWORDS: Record<string, string> = { alice: 'secret', 'j\u00fcrgen': 'p\u00e4ss, "word"' };
const lookup: CredentialLookup = (username) => {
  const password = PASSWORDS[username];
  return password === undefined ? undefined : { password };
};

function setup(over: Partial<DigestServerOptions> = {}) {
  const clock = new ManualClock();
  const server = new DigestServer({
    realm: 'hookswitch',
    secret: Buffer.alloc(32, 7),
    clock,
    random: new SeededRandom(1),
    ...over,
  });
  return { clock, server };
}

function client(username = 'alice', password = 'secret', seed = 2): DigestClient {
  return new DigestClient({ username, password, random: new SeededRandom(seed) });
}

const REQ = { method: 'REGISTER', uri: 'sip:hookswitch.local' };

function mutate(authorization: string, fn: (p: Map<string, string>) => void): string {
  const v = parseAuthValue(authorization);
  fn(v.params);
  return serializeAuthValue(v, 'credentials');
}

t.test('client ↔ server round trip for every algorithm', async (t) => {
  for (const algorithm of DIGEST_ALGORITHMS) {
    const { server } = setup({ algorithms: [algorithm] });
    const challenges = server.challenge();
    t.equal(challenges.length, 1);
    const authorization = client().authorize({ challenges, ...REQ });
    t.ok(authorization, `${algorithm}: answered`);
    t.equal(parseAuthValue(authorization!).params.get('algorithm'), algorithm, `${algorithm}: echoes algorithm`);
    t.same(server.verify({ method: 'REGISTER', authorization, lookup }), { ok: true, username: 'alice', uri: REQ.uri, algorithm, qop: 'auth' }, `${algorithm}: verified`);
  }
  // Non-ASCII username and a password with quotes and commas.
  const { server } = setup();
  const authorization = client('j\u00fcrgen', 'p\u00e4ss, "word"').authorize({ challenges: server.challenge(), ...REQ });
  const result = server.verify({ method: 'REGISTER', authorization, lookup });
  t.same(result, { ok: true, username: 'j\u00fcrgen', uri: REQ.uri, algorithm: 'SHA-256', qop: 'auth' }, 'UTF-8 credentials');
  // HA1 stored instead of the password.
  const ha1Lookup: CredentialLookup = (u, realm, alg) => (u === 'alice' ? { ha1: computeHa1(alg, 'alice', realm, 'secret') } : undefined);
  const a2 = client().authorize({ challenges: server.challenge(), ...REQ });
  t.equal(server.verify({ method: 'REGISTER', authorization: a2, lookup: ha1Lookup }).ok, true, 'HA1 lookup');
  // The method is part of HA2: the same credentials do not authorize another method.
  const a3 = client().authorize({ challenges: server.challenge(), ...REQ });
  t.same(server.verify({ method: 'INVITE', authorization: a3, lookup }), { ok: false, reason: 'bad-response' }, 'method bound');
});

t.test('challenge values: one per algorithm in configured order, with qop, opaque, stale', async (t) => {
  const { server } = setup();
  const values = server.challenge().map(parseAuthValue);
  t.same(values.map((v) => v.params.get('algorithm')), ['SHA-256', 'MD5'], 'strongest first by default');
  t.same(values.map((v) => v.scheme), ['Digest', 'Digest']);
  t.equal(values[0]!.params.get('nonce'), values[1]!.params.get('nonce'), 'one nonce shared');
  for (const v of values) {
    t.equal(v.params.get('realm'), 'hookswitch');
    t.equal(v.params.get('qop'), 'auth');
    t.ok((v.params.get('opaque') ?? '').length < 64, 'opaque fits SIPp (64-byte buffer)');
    t.notOk(v.params.has('stale'));
  }
  t.match(server.challenge()[0], /qop="auth"/, 'qop-options quoted on the wire');
  const stale = server.challenge({ stale: true });
  t.ok(stale.every((v) => parseAuthValue(v).params.get('stale') === 'true'), 'stale=true on every value');
  t.ok(challengeIsStale(stale));
  t.notOk(challengeIsStale(server.challenge()));
  const md5First = setup({ algorithms: ['MD5', 'SHA-256'] }).server.challenge();
  t.match(md5First[0], /algorithm=MD5/, 'configurable order for first-challenge clients such as SIPp');
  const u = setup({ userhash: true }).server.challenge();
  t.match(u[0], /userhash=true/);
});

t.test('nonce layout: issue time, salt, HMAC-SHA256(secret, head | "|" realm); salts never repeat', async (t) => {
  for (const [name, secret] of [
    ['16-byte secret', Buffer.from('0123456789abcdef')],
    ['secret longer than the SHA-256 block (hashed first, RFC 2104)', Buffer.alloc(100, 7)],
  ] as const) {
    const { server, clock } = setup({ secret });
    const seen = new Set<string>();
    // More nonces than one draw of random salt covers, so the pool is refilled at least once.
    for (let i = 0; i < 300; i++) {
      const nonce = parseAuthValue(server.challenge()[0]!).params.get('nonce')!;
      const raw = Buffer.from(nonce, 'base64url');
      if (i === 0) {
        t.equal(raw.length, 48, `${name}: 48 bytes`);
        t.equal(Number(raw.readBigUInt64BE(0)), clock.wallNow(), `${name}: issue time first`);
        const mac = createHmac('sha256', secret).update(raw.subarray(0, 16)).update('|hookswitch').digest();
        t.same(raw.subarray(16), mac, `${name}: MAC is HMAC-SHA256 over head and realm`);
      }
      seen.add(raw.subarray(8, 16).toString('hex'));
    }
    t.equal(seen.size, 300, `${name}: 300 nonces, 300 different salts`);
  }
});

t.test('expired nonce with a correct response is stale (RFC 7616 §3.3)', async (t) => {
  const { server, clock } = setup({ nonceTtlMs: 300_000 });
  const c = client();
  const authorization = c.authorize({ challenges: server.challenge(), ...REQ });
  clock.advance(300_001);
  t.same(server.verify({ method: 'REGISTER', authorization, lookup }), { ok: false, reason: 'stale', stale: true });
  const wrong = client('alice', 'nope').authorize({ challenges: [], ...REQ });
  t.equal(wrong, undefined, 'no challenge, no answer');
  // An expired nonce with a wrong password is not stale: the client must not silently retry.
  const { server: s2, clock: c2 } = setup();
  const bad = client('alice', 'nope').authorize({ challenges: s2.challenge(), ...REQ });
  c2.advance(400_000);
  t.same(s2.verify({ method: 'REGISTER', authorization: bad, lookup }), { ok: false, reason: 'bad-response' });
  // The re-challenge carries stale=true and the client answers it.
  const retry = c.authorize({ challenges: server.challenge({ stale: true }), ...REQ });
  t.equal(server.verify({ method: 'REGISTER', authorization: retry, lookup }).ok, true, 'fresh nonce accepted');
  t.match(retry, /nc=00000001/, 'new nonce restarts the count');
});

t.test('nonce-count replay protection', async (t) => {
  const { server } = setup();
  const c = client();
  const challenges = server.challenge();
  const first = c.authorize({ challenges, ...REQ })!;
  const second = c.authorize({ challenges, ...REQ })!;
  t.equal(parseAuthValue(first).params.get('nc'), '00000001');
  t.equal(parseAuthValue(second).params.get('nc'), '00000002', 'nc increments on nonce reuse');
  t.not(parseAuthValue(first).params.get('cnonce'), parseAuthValue(second).params.get('cnonce'), 'fresh cnonce');
  t.equal(server.verify({ method: 'REGISTER', authorization: second, lookup }).ok, true, 'nc 2 first');
  t.same(server.verify({ method: 'REGISTER', authorization: first, lookup }), { ok: false, reason: 'replay', stale: true }, 'lower nc later');
  t.same(server.verify({ method: 'REGISTER', authorization: second, lookup }), { ok: false, reason: 'replay', stale: true }, 'same nc again');
  const third = c.authorize({ challenges, ...REQ });
  t.equal(server.verify({ method: 'REGISTER', authorization: third, lookup }).ok, true, 'nc 3 accepted');

  // Bounded memory: evicted nonces are refused rather than forgotten.
  const small = setup({ maxTrackedNonces: 2 });
  const answers: string[] = [];
  for (let i = 0; i < 3; i++) {
    const ch = small.server.challenge();
    small.clock.advance(1);
    const cl = client('alice', 'secret', 10 + i);
    t.equal(small.server.verify({ method: 'REGISTER', authorization: cl.authorize({ challenges: ch, ...REQ }), lookup }).ok, true, `nonce ${i}`);
    answers.push(cl.authorize({ challenges: ch, ...REQ })!);
  }
  t.same(small.server.verify({ method: 'REGISTER', authorization: answers[0], lookup }), { ok: false, reason: 'replay', stale: true }, 'evicted nonce refused');
  t.equal(small.server.verify({ method: 'REGISTER', authorization: answers[2], lookup }).ok, true, 'tracked nonce still counts');
  small.clock.advance(1);
  const fresh = client().authorize({ challenges: small.server.challenge(), ...REQ });
  t.equal(small.server.verify({ method: 'REGISTER', authorization: fresh, lookup }).ok, true, 'nonces issued after eviction work');
});

t.test('RFC 2069 clients (no qop) are accepted once per nonce', async (t) => {
  const { server } = setup({ algorithms: ['MD5'] });
  const nonce = parseAuthValue(server.challenge()[0]!).params.get('nonce')!;
  const response = computeDigestResponse({ algorithm: 'MD5', ha1: computeHa1('MD5', 'alice', 'hookswitch', 'secret'), nonce, method: 'REGISTER', uri: REQ.uri });
  const authorization = `Digest username="alice", realm="hookswitch", nonce="${nonce}", uri="${REQ.uri}", response="${response}"`;
  t.same(server.verify({ method: 'REGISTER', authorization, lookup }), { ok: true, username: 'alice', uri: REQ.uri, algorithm: 'MD5' });
  t.same(server.verify({ method: 'REGISTER', authorization, lookup }), { ok: false, reason: 'replay', stale: true });
});

t.test('SIPp-style MD5 qop=auth credentials verify', async (t) => {
  // SIPp answers the first challenge, writes no spaces after commas and leaves nc and qop bare.
  const { server } = setup({ algorithms: ['MD5', 'SHA-256'] });
  const ch = parseAuthValue(server.challenge()[0]!).params;
  const uri = 'sip:127.0.0.1:5060';
  const ha1 = computeHa1('MD5', 'alice', 'hookswitch', 'secret');
  const response = computeDigestResponse({ algorithm: 'MD5', ha1, nonce: ch.get('nonce')!, method: 'REGISTER', uri, qop: 'auth', nc: '00000001', cnonce: '6b8b4567' });
  const authorization =
    `Digest username="alice",realm="hookswitch",cnonce="6b8b4567",nc=00000001,qop=auth,uri="${uri}",` +
    `nonce="${ch.get('nonce')}",response="${response}",algorithm=MD5,opaque="${ch.get('opaque')}"`;
  t.same(server.verify({ method: 'REGISTER', authorization, lookup }), { ok: true, username: 'alice', uri, algorithm: 'MD5', qop: 'auth' });
});

t.test('unknown user and wrong password get the same challenge (no enumeration)', async (t) => {
  const a = setup();
  const b = setup();
  const wrong = client('alice', 'guess').authorize({ challenges: a.server.challenge(), ...REQ });
  const unknown = client('mallory', 'guess').authorize({ challenges: b.server.challenge(), ...REQ });
  t.same(a.server.verify({ method: 'REGISTER', authorization: wrong, lookup }), { ok: false, reason: 'bad-response' });
  t.same(b.server.verify({ method: 'REGISTER', authorization: unknown, lookup }), { ok: false, reason: 'unknown-user' });
  t.same(a.server.challenge(), b.server.challenge(), 'identical re-challenge');
});

t.test('userhash (RFC 7616 §3.4.4) round trip', async (t) => {
  const { server } = setup({ userhash: true });
  const authorization = client().authorize({ challenges: server.challenge(), ...REQ })!;
  const params = parseAuthValue(authorization).params;
  t.equal(params.get('userhash'), 'true');
  t.equal(params.get('username'), computeUserhash('SHA-256', 'alice', 'hookswitch'), 'hashed username sent');
  const lookupUserhash = (hash: string, realm: string, alg: DigestAlgorithm) =>
    Object.keys(PASSWORDS).find((u) => computeUserhash(alg, byteString(u), byteString(realm)) === hash);
  t.same(server.verify({ method: 'REGISTER', authorization, lookup, lookupUserhash }), { ok: true, username: 'alice', uri: REQ.uri, algorithm: 'SHA-256', qop: 'auth' });
  const again = client().authorize({ challenges: server.challenge(), ...REQ });
  t.same(server.verify({ method: 'REGISTER', authorization: again, lookup }), { ok: false, reason: 'unknown-user' }, 'no resolver');
});

t.test('bad credentials give a reason and never throw', async (t) => {
  const { server, clock } = setup();
  const good = () => client().authorize({ challenges: server.challenge(), ...REQ })!;
  const other = setup({ secret: Buffer.alloc(32, 9) }).server;
  const foreignNonce = parseAuthValue(other.challenge()[0]!).params.get('nonce')!;
  const future = setup({ clock: new ManualClock(0, 1_700_000_000_000 + 60_000) }).server;
  const futureNonce = parseAuthValue(future.challenge()[0]!).params.get('nonce')!;
  const cases: [string, string | undefined, string][] = [
    ['absent header', undefined, 'missing'],
    ['empty header', '  ', 'missing'],
    ['garbage', '%%% not a header', 'malformed'],
    ['unterminated quote', 'Digest username="alice, realm="hookswitch', 'malformed'],
    ['Basic scheme', 'Basic YWxpY2U6c2VjcmV0', 'malformed'],
    ['duplicated parameter', good().replace('username="alice"', 'username="alice", username="bob"'), 'malformed'],
    ...(['username', 'realm', 'nonce', 'uri', 'response'] as const).map(
      (k): [string, string, string] => [`missing ${k}`, mutate(good(), (p) => p.delete(k)), 'malformed'],
    ),
    ['qop without nc', mutate(good(), (p) => p.delete('nc')), 'malformed'],
    ['qop without cnonce', mutate(good(), (p) => p.delete('cnonce')), 'malformed'],
    ['nc not 8 hex digits', mutate(good(), (p) => p.set('nc', '1')), 'malformed'],
    ['nc zero', mutate(good(), (p) => p.set('nc', '00000000')), 'malformed'],
    ['unknown qop', mutate(good(), (p) => p.set('qop', 'auth-conf')), 'malformed'],
    ['response of the wrong length', mutate(good(), (p) => p.set('response', 'abcd')), 'malformed'],
    ['unknown algorithm', mutate(good(), (p) => p.set('algorithm', 'SHA-1')), 'algorithm'],
    ['algorithm not offered', mutate(good(), (p) => p.set('algorithm', 'SHA-512-256')), 'algorithm'],
    ['another realm', mutate(good(), (p) => p.set('realm', 'elsewhere')), 'realm-mismatch'],
    ['tampered nonce', mutate(good(), (p) => p.set('nonce', p.get('nonce')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')))), 'bad-nonce'],
    ['nonce of another secret', mutate(good(), (p) => p.set('nonce', foreignNonce)), 'bad-nonce'],
    ['nonce from the future', mutate(good(), (p) => p.set('nonce', futureNonce)), 'bad-nonce'],
    ['nonce with characters outside base64url', mutate(good(), (p) => p.set('nonce', 'abc+/def==')), 'bad-nonce'],
    ['nonce not base64url', mutate(good(), (p) => p.set('nonce', 'dcd98b7102dd2f0e8b11d0f600bfb0c093')), 'bad-nonce'],
    ['opaque changed', mutate(good(), (p) => p.set('opaque', 'x')), 'bad-nonce'],
    ['response flipped', mutate(good(), (p) => p.set('response', p.get('response')!.replace(/^./, (c) => (c === '0' ? '1' : '0')))), 'bad-response'],
    ['uri changed after signing', mutate(good(), (p) => p.set('uri', 'sip:evil')), 'bad-response'],
    ['unknown user', mutate(good(), (p) => p.set('username', 'nobody')), 'unknown-user'],
  ];
  for (const [name, authorization, reason] of cases) {
    let result;
    try {
      result = server.verify({ method: 'REGISTER', authorization, lookup });
    } catch (err) {
      t.fail(`${name}: threw ${String(err)}`);
      continue;
    }
    t.same(result, { ok: false, reason }, name);
  }
  const noOpaque = mutate(good(), (p) => p.delete('opaque'));
  t.equal(server.verify({ method: 'REGISTER', authorization: noOpaque, lookup }).ok, true, 'opaque omitted by the client is tolerated');
  clock.advance(1);
  t.equal(server.verify({ method: 'REGISTER', authorization: good().replace(/response="([0-9a-f]+)"/, (_m, r: string) => `response="${r.toUpperCase()}"`), lookup }).ok, true, 'upper-case hex response');
  const sess = setup({ algorithms: ['MD5-sess'] }).server;
  const sessAnswer = client().authorize({ challenges: sess.challenge(), ...REQ })!;
  t.equal(sess.verify({ method: 'REGISTER', authorization: sessAnswer, lookup }).ok, true, 'MD5-sess with qop');
  const sessNoQop = mutate(sessAnswer, (p) => ['qop', 'nc', 'cnonce'].forEach((k) => p.delete(k)));
  t.same(sess.verify({ method: 'REGISTER', authorization: sessNoQop, lookup }), { ok: false, reason: 'malformed' }, '-sess without qop');
  t.throws(() => setup({ secret: Buffer.alloc(8) }), RangeError, 'short secret refused');
  t.throws(() => setup({ algorithms: [] }), RangeError, 'no algorithms refused');
});

t.test('client chooses what to answer', async (t) => {
  const d = (realm: string, nonce: string, extra = '') => `Digest realm="${realm}", nonce="${nonce}"${extra}`;
  const cases: { name: string; challenges: string[]; expect?: { realm: string; nonce: string; algorithm: string; qop?: string } }[] = [
    {
      name: 'strongest algorithm wins regardless of order',
      challenges: [d('r', 'n1', ', algorithm=MD5, qop="auth"'), d('r', 'n2', ', algorithm=SHA-512-256, qop="auth"'), d('r', 'n3', ', algorithm=SHA-256, qop="auth"')],
      expect: { realm: 'r', nonce: 'n2', algorithm: 'SHA-512-256', qop: 'auth' },
    },
    {
      name: 'unknown algorithms and non-Digest schemes are ignored',
      challenges: ['Basic realm="r"', d('r', 'n1', ', algorithm=AKAv1-MD5'), d('r', 'n2', ', algorithm=SHA-1'), d('r', 'n3', ', algorithm=md5')],
      expect: { realm: 'r', nonce: 'n3', algorithm: 'MD5' },
    },
    { name: 'nothing answerable', challenges: ['Basic realm="r"', d('r', 'n', ', algorithm=SHA-1'), 'garbage "'] },
    { name: 'missing nonce', challenges: ['Digest realm="r"'] },
    { name: 'only an unknown qop', challenges: [d('r', 'n', ', qop="auth-conf"')] },
    { name: '-sess without qop has no cnonce to use', challenges: [d('r', 'n', ', algorithm=MD5-sess')] },
    {
      name: 'first answerable realm wins, then strongest within it',
      challenges: [d('a', 'n1', ', algorithm=MD5'), d('b', 'n2', ', algorithm=SHA-256'), d('a', 'n3', ', algorithm=SHA-256')],
      expect: { realm: 'a', nonce: 'n3', algorithm: 'SHA-256' },
    },
    {
      name: 'auth preferred over auth-int',
      challenges: [d('r', 'n', ', qop="auth-int, auth"')],
      expect: { realm: 'r', nonce: 'n', algorithm: 'MD5', qop: 'auth' },
    },
    {
      name: 'auth-int when it is the only qop',
      challenges: [d('r', 'n', ', qop="auth-int"')],
      expect: { realm: 'r', nonce: 'n', algorithm: 'MD5', qop: 'auth-int' },
    },
    {
      name: 'several challenges in one field, garbage field skipped',
      challenges: ['Digest realm="broken', `Basic realm="x", ${d('r', 'n', ', algorithm=SHA-256')}`],
      expect: { realm: 'r', nonce: 'n', algorithm: 'SHA-256' },
    },
  ];
  for (const c of cases) {
    const body = 'v=0\r\n';
    const out = client().authorize({ challenges: c.challenges, method: 'INVITE', uri: 'sip:bob@x', body });
    if (!c.expect) {
      t.equal(out, undefined, c.name);
      continue;
    }
    const p = parseAuthValue(out!).params;
    t.same(
      { realm: p.get('realm'), nonce: p.get('nonce'), algorithm: p.get('algorithm'), qop: p.get('qop') },
      c.expect,
      c.name,
    );
    const alg = c.expect.algorithm as DigestAlgorithm;
    const expected = computeDigestResponse({
      algorithm: alg,
      ha1: computeHa1(alg, 'alice', c.expect.realm, 'secret'),
      nonce: c.expect.nonce,
      method: 'INVITE',
      uri: 'sip:bob@x',
      qop: c.expect.qop as 'auth' | 'auth-int' | undefined,
      nc: p.get('nc'),
      cnonce: p.get('cnonce'),
      body,
    });
    t.equal(p.get('response'), expected, `${c.name}: response`);
    t.equal(p.has('nc'), c.expect.qop !== undefined, `${c.name}: nc only with qop`);
    if (c.expect.qop) t.match(out, new RegExp(`qop=${c.expect.qop}(,|$)`), `${c.name}: message-qop is a bare token`);
  }
  const counting = client();
  const first = (n: string) => parseAuthValue(counting.authorize({ challenges: [d('r', n, ', qop="auth"')], ...REQ })!).params.get('nc');
  t.equal(first('n0'), '00000001');
  t.equal(first('n0'), '00000002', 'count kept per nonce');
  for (let i = 1; i <= 32; i++) first(`n${i}`);
  t.equal(first('n0'), '00000001', 'counts of old nonces are forgotten (bounded memory)');
  const echoed = client().authorize({ challenges: [d('r', 'n', ', opaque="op\\"q"')], ...REQ })!;
  t.equal(parseAuthValue(echoed).params.get('opaque'), 'op"q', 'opaque echoed unchanged');
  t.match(echoed, /^Digest username="alice", realm="r", nonce="n", uri="sip:hookswitch.local", response="[0-9a-f]{32}", algorithm=MD5/);
});
