import t from 'tap';
import { StreamFramer, type FramerEvent, type StreamFramerOptions } from '../../../src/sip/transport/stream-framer.ts';

const INVITE_HEAD =
  'INVITE sip:bob@example.com SIP/2.0\r\n' +
  'Via: SIP/2.0/TCP pc33.example.com;branch=z9hG4bK776asdhds\r\n' +
  'Call-ID: a84b4c76e66710\r\n' +
  'CSeq: 314159 INVITE\r\n';

const OPTIONS_NO_BODY = 'OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n';
const RESPONSE_NO_BODY = 'SIP/2.0 200 OK\r\nCall-ID: 2\r\nl:0\r\n\r\n';
const binaryBody = Buffer.from([0x00, 0x0d, 0x0a, 0x0d, 0x0a, 0xff, 0xfe, 0x00, 0x41]);

const bin = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Renders events so that a whole table row compares with one `same`. */
function render(events: FramerEvent[]): string[] {
  return events.map((e) =>
    e.type === 'message' ? `msg:${e.bytes.toString('hex')}` : e.type === 'keepalive' ? 'ping' : `error:${e.error.code}`,
  );
}
const msg = (b: Buffer | string): string => `msg:${(typeof b === 'string' ? bin(b) : b).toString('hex')}`;

function feed(chunks: Buffer[], opts?: StreamFramerOptions): string[] {
  const framer = new StreamFramer(opts);
  const out: FramerEvent[] = [];
  for (const c of chunks) out.push(...framer.push(c));
  return render(out);
}

interface Case {
  name: string;
  input: Buffer;
  expect: string[];
  opts?: StreamFramerOptions;
}

const withBody = Buffer.concat([bin(INVITE_HEAD + 'Content-Length: 9\r\n\r\n'), binaryBody]);

const cases: Case[] = [
  { name: 'message without body', input: bin(OPTIONS_NO_BODY), expect: [msg(OPTIONS_NO_BODY)] },
  {
    name: 'binary body containing NUL and CRLFCRLF is taken by Content-Length, not by delimiter',
    input: withBody,
    expect: [msg(withBody)],
  },
  {
    name: 'compact form l, no space after colon',
    input: bin(RESPONSE_NO_BODY),
    expect: [msg(RESPONSE_NO_BODY)],
  },
  {
    name: 'header name is case-insensitive, LWS around the colon',
    input: bin(INVITE_HEAD + 'CONTENT-length \t:  \t5 \r\n\r\nhello'),
    expect: [msg(INVITE_HEAD + 'CONTENT-length \t:  \t5 \r\n\r\nhello')],
  },
  {
    name: 'folded Content-Length value (RFC 3261 §7.3.1)',
    input: bin(INVITE_HEAD + 'Content-Length:\r\n   3\r\n\r\nabc'),
    expect: [msg(INVITE_HEAD + 'Content-Length:\r\n   3\r\n\r\nabc')],
  },
  {
    name: 'repeated equal Content-Length values are accepted',
    input: bin(INVITE_HEAD + 'Content-Length: 2\r\nl: 2\r\n\r\nok'),
    expect: [msg(INVITE_HEAD + 'Content-Length: 2\r\nl: 2\r\n\r\nok')],
  },
  {
    name: 'X-Content-Length and Content-Length-Foo are not Content-Length',
    input: bin('OPTIONS sip:a SIP/2.0\r\nX-Content-Length: 9\r\nContent-Length-Foo: 9\r\nContent-Length: 1\r\n\r\nz'),
    expect: [msg('OPTIONS sip:a SIP/2.0\r\nX-Content-Length: 9\r\nContent-Length-Foo: 9\r\nContent-Length: 1\r\n\r\nz')],
  },
  {
    name: 'two messages in one chunk, in order',
    input: Buffer.concat([bin(OPTIONS_NO_BODY), withBody]),
    expect: [msg(OPTIONS_NO_BODY), msg(withBody)],
  },
  {
    name: 'leading and separating lone CRLFs are ignored',
    input: bin('\r\n' + OPTIONS_NO_BODY + '\r\n' + RESPONSE_NO_BODY),
    expect: [msg(OPTIONS_NO_BODY), msg(RESPONSE_NO_BODY)],
  },
  {
    name: 'CRLFCRLF between messages is a keep-alive ping (RFC 5626 §4.4.1)',
    input: bin(OPTIONS_NO_BODY + '\r\n\r\n' + RESPONSE_NO_BODY),
    expect: [msg(OPTIONS_NO_BODY), 'ping', msg(RESPONSE_NO_BODY)],
  },
  { name: 'two pings in a row', input: bin('\r\n\r\n\r\n\r\n'), expect: ['ping', 'ping'] },
  { name: 'a lone CRLF alone yields nothing', input: bin('\r\n'), expect: [] },
  { name: 'three CRLFs are one ping and an ignored CRLF', input: bin('\r\n\r\n\r\n'), expect: ['ping'] },
  {
    name: 'missing Content-Length is a framing error (RFC 3261 §18.3)',
    input: bin(INVITE_HEAD + '\r\n' + OPTIONS_NO_BODY),
    expect: ['error:FRAMING_MISSING_CONTENT_LENGTH'],
  },
  {
    name: 'negative Content-Length is a framing error',
    input: bin(INVITE_HEAD + 'Content-Length: -1\r\n\r\n'),
    expect: ['error:FRAMING_INVALID_CONTENT_LENGTH'],
  },
  {
    name: 'non-numeric Content-Length is a framing error',
    input: bin(INVITE_HEAD + 'l: 12abc\r\n\r\n'),
    expect: ['error:FRAMING_INVALID_CONTENT_LENGTH'],
  },
  {
    name: 'empty Content-Length is a framing error',
    input: bin(INVITE_HEAD + 'Content-Length:\r\n\r\n'),
    expect: ['error:FRAMING_INVALID_CONTENT_LENGTH'],
  },
  {
    name: 'differing Content-Length values are a framing error',
    input: bin(INVITE_HEAD + 'Content-Length: 2\r\nl: 3\r\n\r\nabc'),
    expect: ['error:FRAMING_CONFLICTING_CONTENT_LENGTH'],
  },
  {
    name: 'a message before a framing error is still delivered; nothing after it',
    input: bin(OPTIONS_NO_BODY + INVITE_HEAD + '\r\n' + OPTIONS_NO_BODY),
    expect: [msg(OPTIONS_NO_BODY), 'error:FRAMING_MISSING_CONTENT_LENGTH'],
  },
  {
    name: 'header section over the limit is a framing error',
    input: bin(INVITE_HEAD + 'Content-Length: 0\r\n\r\n'),
    opts: { maxHeaderBytes: 64 },
    expect: ['error:FRAMING_HEADER_TOO_LARGE'],
  },
  {
    name: 'endless header section without CRLFCRLF is cut at the limit',
    input: bin('X'.repeat(300)),
    opts: { maxHeaderBytes: 128 },
    expect: ['error:FRAMING_HEADER_TOO_LARGE'],
  },
  {
    name: 'header section exactly at the limit is accepted',
    input: bin(OPTIONS_NO_BODY),
    opts: { maxHeaderBytes: OPTIONS_NO_BODY.length },
    expect: [msg(OPTIONS_NO_BODY)],
  },
  {
    name: 'Content-Length over the body limit is a framing error',
    input: bin(INVITE_HEAD + 'Content-Length: 11\r\n\r\n01234567890'),
    opts: { maxBodyBytes: 10 },
    expect: ['error:FRAMING_BODY_TOO_LARGE'],
  },
  {
    name: 'Content-Length of ten digits is over any body limit',
    input: bin(INVITE_HEAD + 'Content-Length: 9999999999\r\n\r\n'),
    expect: ['error:FRAMING_BODY_TOO_LARGE'],
  },
  {
    name: 'Content-Length of eleven digits is invalid',
    input: bin(INVITE_HEAD + 'Content-Length: 99999999999\r\n\r\n'),
    expect: ['error:FRAMING_INVALID_CONTENT_LENGTH'],
  },
];

t.test('framing table: whole input, every two-way split, byte by byte', async (t) => {
  for (const c of cases) {
    t.same(feed([c.input], c.opts), c.expect, `${c.name} (whole)`);
    let splitsOk = true;
    for (let i = 1; i < c.input.length; i++) {
      const got = feed([c.input.subarray(0, i), c.input.subarray(i)], c.opts);
      if (JSON.stringify(got) !== JSON.stringify(c.expect)) {
        t.same(got, c.expect, `${c.name} (split at ${i})`);
        splitsOk = false;
        break;
      }
    }
    t.ok(splitsOk, `${c.name} (every split offset)`);
    const bytes: Buffer[] = [];
    for (let i = 0; i < c.input.length; i++) bytes.push(c.input.subarray(i, i + 1));
    t.same(feed(bytes, c.opts), c.expect, `${c.name} (1-byte chunks)`);
  }
});

t.test('each chunk reports what it completed; partial input is held', async (t) => {
  const framer = new StreamFramer();
  const whole = Buffer.concat([bin(OPTIONS_NO_BODY), withBody]);
  const cut = OPTIONS_NO_BODY.length + 10;
  t.same(render(framer.push(whole.subarray(0, cut))), [msg(OPTIONS_NO_BODY)]);
  t.equal(framer.buffered, 10, 'the start of the second message is held');
  t.same(render(framer.push(whole.subarray(cut))), [msg(withBody)]);
  t.equal(framer.buffered, 0);
  t.same(render(framer.push(bin('\r\n'))), [], 'first half of a ping');
  t.same(render(framer.push(bin('\r\n'))), ['ping'], 'ping completed across chunks');
});

t.test('delivered message is a copy that later input does not overwrite', async (t) => {
  const framer = new StreamFramer();
  const [first] = framer.push(bin(OPTIONS_NO_BODY));
  framer.push(bin(RESPONSE_NO_BODY));
  t.equal(first?.type === 'message' && first.bytes.toString('latin1'), OPTIONS_NO_BODY);
});

t.test('after a framing error the framer is dead', async (t) => {
  const framer = new StreamFramer();
  t.same(render(framer.push(bin(INVITE_HEAD + '\r\n'))), ['error:FRAMING_MISSING_CONTENT_LENGTH']);
  t.ok(framer.failed);
  t.same(render(framer.push(bin(OPTIONS_NO_BODY))), []);
  t.equal(framer.buffered, 0);
});

t.test('a large body in many chunks arrives intact', async (t) => {
  const body = Buffer.alloc(300_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
  const input = Buffer.concat([bin(INVITE_HEAD + `Content-Length: ${body.length}\r\n\r\n`), body, bin(OPTIONS_NO_BODY)]);
  const framer = new StreamFramer();
  const events: FramerEvent[] = [];
  for (let i = 0; i < input.length; i += 1000) events.push(...framer.push(input.subarray(i, i + 1000)));
  t.equal(events.length, 2);
  const first = events[0];
  t.ok(first?.type === 'message' && first.bytes.subarray(first.bytes.length - body.length).equals(body));
  t.same(render(events.slice(1)), [msg(OPTIONS_NO_BODY)]);
});

t.test('every torture message with a usable Content-Length frames identically at every split', async (t) => {
  const { fixture, fixtureNames } = await import('../../helpers/fixtures.ts');
  const { parseMessage } = await import('../../../src/sip/message/parser.ts');
  let framed = 0;
  for (const corpus of ['rfc4475', 'rfc5118'] as const) {
    for (const name of fixtureNames(corpus)) {
      const bytes = fixture(corpus, name);
      // What the framer must cut: the message as a stream parser reads it (the header section
      // plus exactly Content-Length bytes). Messages a stream cannot frame are covered above.
      let expected: Buffer;
      try {
        const msg = parseMessage(bytes, { stream: true });
        expected = bytes.subarray(0, bytes.indexOf('\r\n\r\n') + 4 + msg.body.length);
      } catch {
        continue;
      }
      const whole = feed([expected]);
      t.same(whole, [msg(expected)], `${corpus}/${name}: whole`);
      let mismatches = 0;
      for (let cut = 1; cut < expected.length; cut++) {
        const got = feed([expected.subarray(0, cut), expected.subarray(cut)]);
        if (got.length !== 1 || got[0] !== whole[0]) mismatches++;
      }
      t.equal(mismatches, 0, `${corpus}/${name}: all ${expected.length - 1} two-way splits`);
      framed++;
    }
  }
  t.ok(framed >= 30, `${framed} fixtures framed`);
});
