/**
 * Digest authentication of incoming requests (RFC 3261 §22): which refusals count as failed
 * attempts for the source guard, and that the challenge never tells an unknown user from a
 * wrong password.
 */
import t from 'tap';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { MemoryLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { DigestClient } from '../../../src/sip/auth/digest-client.ts';
import { DigestServer } from '../../../src/sip/auth/digest-server.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/message/message.ts';
import { parseMessage } from '../../../src/sip/message/parser.ts';
import { ExtensionCredentials, RequestAuthenticator, type AuthOutcome } from '../../../src/sip/ua/request-authenticator.ts';

const PASSWORD = 'secret-101';

function harness() {
  const clock = new ManualClock();
  const digest = new DigestServer({ realm: 'test.local', secret: Buffer.alloc(32, 1), clock, random: new SeededRandom(7), algorithms: ['MD5'] });
  const auth = new RequestAuthenticator({ digest, credentials: new ExtensionCredentials({ '101': { password: PASSWORD } }), logger: new MemoryLogger() });
  return { clock, digest, auth };
}

function register(authorization?: string, header = 'Authorization', method = 'REGISTER'): SipRequest {
  const text =
    `${method} sip:test.local SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-1\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:101@test.local>;tag=a\r\nTo: <sip:101@test.local>\r\n` +
    `Call-ID: c1\r\nCSeq: 1 ${method}\r\n` +
    (authorization === undefined ? '' : `${header}: ${authorization}\r\n`) +
    `Content-Length: 0\r\n\r\n`;
  const msg = parseMessage(Buffer.from(text, 'latin1'));
  if (msg.kind !== 'request') throw new Error('expected a request');
  return msg;
}

function answer(challenges: string[], username: string, password: string, uri = 'sip:test.local', method = 'REGISTER'): string {
  return new DigestClient({ username, password, random: new SeededRandom(3) }).authorize({ challenges, method, uri })!;
}

const refusal = (o: AuthOutcome) => (o.ok ? { ok: true } : { ok: false, status: o.response.status, failed: o.failed, stale: /stale=true/i.test(o.response.headers.getAll('www-authenticate').join() + o.response.headers.getAll('proxy-authenticate').join()) });

t.test('a refusal is counted as a failure only when credentials for our realm did not verify', async (t) => {
  type Case = [name: string, build: (h: ReturnType<typeof harness>, challenges: string[]) => SipRequest, expected: object];
  const cases: Case[] = [
    ['no credentials: a first challenge, not a failure', () => register(), { ok: false, status: 401, failed: false, stale: false }],
    ['correct password: accepted', (_h, c) => register(answer(c, '101', PASSWORD)), { ok: true }],
    ['wrong password: a failure', (_h, c) => register(answer(c, '101', 'guess')), { ok: false, status: 401, failed: true, stale: false }],
    ['unknown user: a failure', (_h, c) => register(answer(c, '999', 'guess')), { ok: false, status: 401, failed: true, stale: false }],
    ['digest uri is not the Request-URI (RFC 3261 §22.4): a failure', (_h, c) => register(answer(c, '101', PASSWORD, 'sip:elsewhere.example')), { ok: false, status: 401, failed: true, stale: false }],
    ['a nonce that is not ours: a failure', (_h, c) => register(answer(c, '101', PASSWORD).replace(/nonce="[^"]+"/, 'nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"')), { ok: false, status: 401, failed: true, stale: false }],
    ['malformed answer naming our realm: a failure', () => register('Digest username="101", realm="test.local", nonce="x", uri="sip:test.local"'), { ok: false, status: 401, failed: true, stale: false }],
    ['malformed answer without our realm: not a failure', () => register('Digest username="101"'), { ok: false, status: 401, failed: false, stale: false }],
    ['credentials for another realm only: a first challenge', (_h, c) => register(answer(c, '101', PASSWORD).replace('realm="test.local"', 'realm="other.example"')), { ok: false, status: 401, failed: false, stale: false }],
    [
      'correct password on an expired nonce (RFC 7616 §3.3 stale): not a failure',
      (h, c) => {
        h.clock.advance(300_001);
        return register(answer(c, '101', PASSWORD));
      },
      { ok: false, status: 401, failed: false, stale: true },
    ],
    [
      'a replayed nonce-count (RFC 7616 §3.4): a failure',
      (h, c) => {
        const once = answer(c, '101', PASSWORD);
        t.equal(h.auth.check(register(once), 'registrar').ok, true, 'the first use is accepted');
        return register(once);
      },
      { ok: false, status: 401, failed: true, stale: true },
    ],
  ];
  for (const [name, build, expected] of cases) {
    const h = harness();
    const challenges = h.digest.challenge();
    t.same(refusal(h.auth.check(build(h, challenges), 'registrar')), expected, name);
  }
});

t.test('proxy role: 407, and wrong Proxy-Authorization counts as a failure', async (t) => {
  const h = harness();
  const first = h.auth.check(register(undefined, 'Proxy-Authorization', 'INVITE'), 'proxy');
  t.same(refusal(first), { ok: false, status: 407, failed: false, stale: false }, 'first INVITE: challenged');
  const bad = answer(h.digest.challenge(), '101', 'guess', 'sip:test.local', 'INVITE');
  t.same(refusal(h.auth.check(register(bad, 'Proxy-Authorization', 'INVITE'), 'proxy')), { ok: false, status: 407, failed: true, stale: false }, 'wrong password: counted');
});

t.test('unknown user and wrong password get indistinguishable challenges', async (t) => {
  const shape = (r: SipResponse) => ({
    status: r.status,
    reason: r.reason,
    challenges: r.headers.getAll('www-authenticate').map((v) => v.replace(/nonce="[^"]*"/, 'nonce=N')),
  });
  const h = harness();
  const wrong = h.auth.check(register(answer(h.digest.challenge(), '101', 'guess')), 'registrar');
  const unknown = h.auth.check(register(answer(h.digest.challenge(), '999', 'guess')), 'registrar');
  if (wrong.ok || unknown.ok) throw new Error('both must be refused');
  t.same(shape(wrong.response), shape(unknown.response));
  t.equal(wrong.failed, unknown.failed, 'both count the same');
});
