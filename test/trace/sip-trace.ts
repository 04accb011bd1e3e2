import t from 'tap';
import type { TransportTraceEvent } from '../../src/sip/transport/transport-layer.ts';
import { formatSipTrace, redactDigestResponses } from '../../src/trace/sip-trace.ts';
import { TraceHub } from '../../src/trace/trace-hub.ts';

const CRLF = '\r\n';
const DIGEST = '6629fae49393a05397450978507c4ef1';

function message(headers: string[], body = ''): Buffer {
  return Buffer.from([...headers, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join(CRLF), 'utf8');
}

const REGISTER = [
  'REGISTER sip:gw SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1',
  'Call-ID: reg-1',
  'CSeq: 2 REGISTER',
];

t.test('redactDigestResponses: every response value blanked, same length, nothing else touched', async (t) => {
  const cases: { name: string; headers: string[]; body?: string; secrets: string[] }[] = [
    {
      name: 'Authorization, quoted',
      headers: [...REGISTER, `Authorization: Digest username="101", realm="gw", nonce="abc", uri="sip:gw", response="${DIGEST}", algorithm=MD5`],
      secrets: [DIGEST],
    },
    {
      name: 'Proxy-Authorization, response first, lower case names, no spaces',
      headers: [...REGISTER, `proxy-authorization:Digest response="${DIGEST}",username="101"`],
      secrets: [DIGEST],
    },
    { name: 'unquoted value', headers: [...REGISTER, `Authorization: Digest username="101", response=${DIGEST}`], secrets: [DIGEST] },
    { name: 'spaces around =, upper-case RESPONSE', headers: [...REGISTER, `AUTHORIZATION: Digest RESPONSE = "${DIGEST}"`], secrets: [DIGEST] },
    {
      name: 'folded header line (RFC 3261 §7.3.1)',
      headers: [...REGISTER, 'Authorization: Digest username="101",', `  response="${DIGEST}"`],
      secrets: [DIGEST],
    },
    {
      name: 'SHA-256 length digest and two credentials',
      headers: [...REGISTER, `Authorization: Digest username="101", response="${'a'.repeat(64)}"`, `Authorization: Digest username="101", response="${'b'.repeat(32)}"`],
      secrets: ['a'.repeat(64), 'b'.repeat(32)],
    },
  ];
  for (const c of cases) {
    const input = message(c.headers, c.body);
    const out = redactDigestResponses(input);
    t.equal(out.length, input.length, `${c.name}: same length`);
    for (const s of c.secrets) t.notOk(out.includes(s), `${c.name}: ${s.slice(0, 6)}… gone`);
    t.ok(out.toString('latin1').includes('x'.repeat(c.secrets[0]!.length)), `${c.name}: replaced by x`);
    const changed = [...out].filter((b, i) => b !== input[i]).length;
    t.equal(changed, c.secrets.reduce((n, s) => n + [...s].filter((ch) => ch !== 'x').length, 0), `${c.name}: only the value bytes changed`);
    t.not(out, input, `${c.name}: a copy, the input is untouched`);
  }
});

t.test('redactDigestResponses leaves other messages alone (and returns the same buffer)', async (t) => {
  const cases: { name: string; msg: Buffer }[] = [
    { name: 'no credentials', msg: message(REGISTER) },
    { name: 'a challenge', msg: message(['SIP/2.0 401 Unauthorized', 'WWW-Authenticate: Digest realm="gw", nonce="n", qop="auth"', 'Call-ID: x']) },
    { name: 'response= in another header', msg: message([...REGISTER, 'Subject: response="keep"', 'X-Note: response=keep']) },
    { name: 'response= in the body', msg: message([...REGISTER, 'Content-Type: text/plain'], `Authorization: Digest response="${DIGEST}"`) },
    { name: 'a username that mentions response', msg: message([...REGISTER, 'Authorization: Digest username="response=1"']) },
  ];
  for (const c of cases) t.equal(redactDigestResponses(c.msg), c.msg, c.name);
});

const event = (over: Partial<TransportTraceEvent> = {}): TransportTraceEvent => ({
  time: Date.UTC(2024, 0, 2, 3, 4, 5, 67),
  direction: 'in',
  transport: 'udp',
  local: { transport: 'udp', address: '127.0.0.1', port: 5060 },
  remote: { transport: 'udp', address: '::1', port: 5070 },
  bytes: message(['OPTIONS sip:gw SIP/2.0', 'Call-ID: o-1']),
  ...over,
});

t.test('formatSipTrace: full and summary forms', async (t) => {
  const cases: { name: string; e: TransportTraceEvent; mode: 'full' | 'summary'; text: string }[] = [
    {
      name: 'received, full',
      e: event(),
      mode: 'full',
      text: [
        'recv 59 bytes from udp/[::1]:5070 at 03:04:05.067 (local udp/127.0.0.1:5060):',
        `   ${'-'.repeat(72)}`,
        '   OPTIONS sip:gw SIP/2.0',
        '   Call-ID: o-1',
        '   Content-Length: 0',
        `   ${'-'.repeat(72)}`,
        '',
      ].join('\n'),
    },
    {
      name: 'sent over TCP, summary',
      e: event({ direction: 'out', transport: 'tcp', bytes: message(['SIP/2.0 200 OK', 'Call-ID: o-1']) }),
      mode: 'summary',
      text: '03:04:05.067 TCP 127.0.0.1:5060 -> [::1]:5070  SIP/2.0 200 OK\n',
    },
    {
      name: 'terminal control characters from the network are escaped',
      e: event({ bytes: Buffer.from('OPTIONS sip:\u001b[2Jgw\u0007 SIP/2.0\r\n\r\n', 'latin1') }),
      mode: 'summary',
      text: '03:04:05.067 UDP [::1]:5070 -> 127.0.0.1:5060  OPTIONS sip:\\x1b[2Jgw\\x07 SIP/2.0\n',
    },
    {
      name: 'UTF-8 display names shown as text, body included',
      e: event({ bytes: message(['MESSAGE sip:gw SIP/2.0', 'From: "Zoë" <sip:z@x>'], 'hé') }),
      mode: 'full',
      text: [
        `recv ${message(['MESSAGE sip:gw SIP/2.0', 'From: "Zoë" <sip:z@x>'], 'hé').length} bytes from udp/[::1]:5070 at 03:04:05.067 (local udp/127.0.0.1:5060):`,
        `   ${'-'.repeat(72)}`,
        '   MESSAGE sip:gw SIP/2.0',
        '   From: "Zoë" <sip:z@x>',
        '   Content-Length: 3',
        '   ',
        '   hé',
        `   ${'-'.repeat(72)}`,
        '',
      ].join('\n'),
    },
  ];
  for (const c of cases) t.equal(formatSipTrace(c.e, { mode: c.mode, utc: true }), c.text, c.name);
});

t.test('TraceHub: the tap is on only while someone listens; events are redacted and localised', async (t) => {
  const active: boolean[] = [];
  const hub = new TraceHub({ onActiveChange: (a) => active.push(a), localAddressFor: (remote) => (remote === '::1' ? '::1' : '192.0.2.1') });
  hub.publish(event());
  const seenA: TransportTraceEvent[] = [];
  const seenB: TransportTraceEvent[] = [];
  const offA = hub.subscribe((e) => seenA.push(e));
  const offThrow = hub.subscribe(() => {
    throw new Error('broken client');
  });
  const offB = hub.subscribe((e) => seenB.push(e));
  t.same(active, [true], 'activated once, by the first subscriber');
  const secret = event({
    local: { transport: 'udp', address: '0.0.0.0', port: 5060 },
    remote: { transport: 'udp', address: '10.9.8.7', port: 5070 },
    bytes: message([...REGISTER, `Authorization: Digest username="101", response="${DIGEST}"`]),
  });
  hub.publish(secret);
  t.equal(seenA.length, 1, 'delivered despite a throwing subscriber');
  t.equal(seenB.length, 1, 'every subscriber gets it');
  t.notOk(seenA[0]!.bytes.includes(DIGEST), 'digest response redacted before delivery');
  t.ok(secret.bytes.includes(DIGEST), "the transport's buffer is not modified");
  t.equal(seenA[0]!.local.address, '192.0.2.1', 'wildcard local address replaced');
  hub.publish(event({ local: { transport: 'udp', address: '127.0.0.1', port: 5060 } }));
  t.equal(seenA[1]!.local.address, '127.0.0.1', 'a specific local address is kept');
  offA();
  offA();
  offThrow();
  t.same(active, [true], 'still active with one subscriber');
  offB();
  t.same(active, [true, false], 'deactivated when the last one leaves');
  t.equal(hub.size, 0);
});
