import t from 'tap';
import { prng } from '../../helpers/prng.ts';
import { SipParseError } from '../../../src/sip/message/errors.ts';
import { parseMessage } from '../../../src/sip/message/parser.ts';
import { serializeMessage } from '../../../src/sip/message/serialize.ts';
import { fixture, fixtureNames } from '../../helpers/fixtures.ts';

/**
 * Framing and start-line verdicts for every torture message parsed as one UDP datagram. `ok`
 * messages must parse; the others must fail with the named code and status. Semantic verdicts
 * (mandatory headers, CSeq, URI scheme, 420/415/...) are checked by validation and server tests.
 */
const DATAGRAM_VERDICTS: Record<string, 'ok' | { code: string; status: number }> = {
  // RFC 4475 §3.1.2.2: Content-Length larger than the datagram.
  clerr: { code: 'content-length-too-large', status: 400 },
  // §3.1.2.3: negative Content-Length.
  ncl: { code: 'bad-content-length', status: 400 },
  // §3.3.9: two different Content-Length values.
  mcl01: { code: 'multiple-content-length', status: 400 },
  // §3.1.2.8: LWS inside the Request-URI splits the request line into four parts.
  lwsruri: { code: 'bad-request-line', status: 400 },
  // §3.1.2.9: several SP between request-line elements.
  lwsstart: { code: 'bad-request-line', status: 400 },
  // §3.1.2.10: SP after the SIP-Version.
  trws: { code: 'bad-request-line', status: 400 },
  // §3.1.2.16: SIP/7.0.
  badvers: { code: 'unsupported-version', status: 505 },
  // §3.1.2.19: a four-digit status code.
  bigcode: { code: 'bad-status-code', status: 400 },
  // §3.1.2.15 as archived: the header section has no terminating empty line.
  baddn: { code: 'unterminated-headers', status: 400 },
  // Archive file "test": no SIP-Version on the request line, a header line without a colon.
  test: { code: 'bad-header', status: 400 },
  // RFC 5118 §4.6, deliberately strict: its Content-Length (268) exceeds the CRLF body (251
  // bytes) as the RFC's own archive has it; a datagram shorter than its Content-Length is
  // truncated, the same rule as RFC 4475 clerr.
  'ipv6-in-sdp': { code: 'content-length-too-large', status: 400 },
};

for (const corpus of ['rfc4475', 'rfc5118'] as const) {
  t.test(`${corpus}: every message gets its datagram framing verdict`, async (t) => {
    for (const name of fixtureNames(corpus)) {
      const expected = DATAGRAM_VERDICTS[name] ?? 'ok';
      const bytes = fixture(corpus, name);
      if (expected === 'ok') {
        const msg = parseMessage(bytes);
        t.ok(msg.headers.size > 0, `${name} parses`);
      } else {
        t.throws(() => parseMessage(bytes), { code: expected.code, status: expected.status }, `${name} is rejected`);
      }
    }
  });
}

t.test('fields RFC 4475 singles out', async (t) => {
  const esc02 = parseMessage(fixture('rfc4475', 'esc02'));
  t.equal(esc02.kind === 'request' && esc02.method, 'RE%47IST%45R', 'esc02: the method is not REGISTER');
  t.equal(esc02.headers.getAll('contact').length, 2, 'esc02: C%6Fntact is not Contact, two contacts');
  t.equal(esc02.headers.get('C%6Fntact'), '<sip:alias2@host2.example.com>', 'esc02: unknown header kept');

  const wsinv = parseMessage(fixture('rfc4475', 'wsinv'));
  t.equal(wsinv.headers.get('call-id'), 'wsinv.ndaksdj@192.0.2.1', 'wsinv: compact i = Call-ID');
  t.equal(wsinv.headers.get('NewFangledHeader'), 'newfangled value continued newfangled value', 'wsinv: folding undone');
  t.equal(wsinv.headers.get('UnknownHeaderWithUnusualValue'), ';;,,;;,;', 'wsinv: unusual value kept opaque');
  t.equal(wsinv.headers.getAll('via').length, 3, 'wsinv: three Via values across fields and commas');

  const semiuri = parseMessage(fixture('rfc4475', 'semiuri'));
  t.equal(semiuri.kind === 'request' && semiuri.uri, 'sip:user;par=u%40example.net@example.com', 'semiuri: R-URI kept');

  const dblreq = parseMessage(fixture('rfc4475', 'dblreq'));
  t.equal(dblreq.kind === 'request' && dblreq.method, 'REGISTER', 'dblreq: the REGISTER is the message');
  t.equal(dblreq.body.length, 0, 'dblreq: trailing INVITE octets ignored');

  const noreason = parseMessage(fixture('rfc4475', 'noreason'));
  t.same(noreason.kind === 'response' && [noreason.status, noreason.reason], [100, ''], 'noreason: empty phrase');

  const unreason = parseMessage(fixture('rfc4475', 'unreason'));
  t.equal(
    unreason.kind === 'response' && Buffer.from(unreason.reason, 'latin1').toString('utf8'),
    '= 2**3 * 5**2 но сто девяносто девять - простое',
    'unreason: UTF-8 reason phrase intact',
  );

  const inv2543 = parseMessage(fixture('rfc4475', 'inv2543'));
  t.ok(inv2543.body.length > 0, 'inv2543: no Content-Length, the body is the rest of the datagram');

  const intmeth = parseMessage(fixture('rfc4475', 'intmeth'));
  t.equal(intmeth.kind === 'request' && intmeth.method, '!interesting-Method0123456789_*+`.%indeed\'~', 'intmeth: method');
});

t.test('bytes survive a parse/serialise round trip', async (t) => {
  for (const name of ['intmeth', 'mpart01', 'unreason', 'wsinv', 'esc01', 'longreq']) {
    const first = parseMessage(fixture('rfc4475', name));
    const wire = serializeMessage(first);
    const second = parseMessage(wire);
    t.same(serializeMessage(second), wire, `${name}: serialise(parse(serialise(m))) is stable`);
    t.same(second.body, first.body, `${name}: body bytes intact`);
    for (const f of first.headers) t.equal(second.headers.get(f.key), first.headers.get(f.key), `${name}: ${f.name}`);
  }
  const mpart = parseMessage(fixture('rfc4475', 'mpart01'));
  t.ok(mpart.body.includes(0), 'mpart01: binary body keeps its NUL bytes');
});

t.test('stream framing rules', async (t) => {
  const noLength = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n');
  t.throws(() => parseMessage(noLength, { stream: true }), { code: 'missing-content-length' });
  t.equal(parseMessage(noLength).body.length, 0, 'datagram: no Content-Length is allowed');
  const leading = Buffer.from('\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n');
  t.equal(parseMessage(leading, { stream: true }).kind, 'request', 'CRLFs before the start line are ignored');
});

t.test('bounds and malformed input give precise errors, never other exceptions', async (t) => {
  const cases: [string, Buffer, string, number][] = [
    ['oversized', Buffer.alloc(70_000, 0x41), 'message-too-large', 513],
    ['empty', Buffer.from('\r\n\r\n'), 'empty', 400],
    ['no empty line', Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: x'), 'unterminated-headers', 400],
    [
      'too many headers',
      Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n' + 'X-A: 1\r\n'.repeat(300) + '\r\n'),
      'too-many-headers',
      400,
    ],
    ['long line', Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`), 'line-too-long', 400],
    ['bad status', Buffer.from('SIP/2.0 20 OK\r\n\r\n'), 'bad-status-code', 400],
    ['header without colon', Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia SIP/2.0/UDP h\r\n\r\n'), 'bad-header', 400],
  ];
  for (const [name, bytes, code, status] of cases) {
    t.throws(() => parseMessage(bytes), { code, status }, name);
  }
  // A malformed header still leaves the readable fields for addressing the 400.
  try {
    parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nbroken\r\nCall-ID: c1\r\n\r\n'));
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof SipParseError);
    t.equal((e as SipParseError).partial?.headers.get('call-id'), 'c1', 'partial message keeps Call-ID');
  }
  // Random garbage: only SipParseError, ever.
  const random = prng(12345);
  const rnd = () => Math.floor(random() * 256);
  let others = 0;
  for (let i = 0; i < 2000; i++) {
    const len = rnd() + 1;
    const bytes = Buffer.alloc(len);
    for (let j = 0; j < len; j++) bytes[j] = rnd() % 3 === 0 ? [0x0d, 0x0a, 0x3a, 0x20][rnd() % 4]! : rnd();
    try {
      parseMessage(bytes);
    } catch (e) {
      if (!(e instanceof SipParseError)) others++;
    }
  }
  t.equal(others, 0, 'garbage only ever raises SipParseError');
});

t.test('serialisation is canonical: long names, one line per field, unknown headers verbatim', async (t) => {
  const wire = serializeMessage(parseMessage(fixture('rfc4475', 'wsinv'))).toString('latin1');
  const head = wire.slice(0, wire.indexOf('\r\n\r\n'));
  const names = head.split('\r\n').slice(1).map((l) => l.slice(0, l.indexOf(':')));
  t.same(
    names.filter((n) => ['To', 'From', 'Max-Forwards', 'Call-ID', 'CSeq', 'Via', 'Content-Type'].includes(n)).sort(),
    ['CSeq', 'Call-ID', 'Content-Type', 'From', 'Max-Forwards', 'To', 'Via', 'Via'],
    'wsinv: TO, i, v, Max-Forwards in any case are written canonically',
  );
  t.ok(names.includes('NewFangledHeader'), 'unknown header name kept');
  t.ok(names.includes('UnknownHeaderWithUnusualValue'));
  t.notOk(/\r\n[ \t]/.test(head), 'no folded lines');
  t.match(head, /\r\nContent-Length: \d+$/, 'Content-Length recomputed, last');
  const esc02 = serializeMessage(parseMessage(fixture('rfc4475', 'esc02'))).toString('latin1');
  t.match(esc02, /\r\nC%6Fntact: <sip:alias2@host2\.example\.com>\r\n/, 'esc02: C%6Fntact is not Contact and stays as it was');
});
