import t from 'tap';
import {
  parseAuthInfo,
  parseAuthValue,
  parseAuthValues,
  quoteString,
  serializeAuthInfo,
  serializeAuthValue,
} from '../../../src/sip/auth/auth-header.ts';
import { SipParseError } from '../../../src/sip/message/errors.ts';

const entries = (m: Map<string, string>) => [...m.entries()];

const PARSE_CASES: { name: string; input: string; scheme: string; params: [string, string][] }[] = [
  {
    name: 'RFC 2617 §3.5 challenge with folded LWS',
    input:
      'Digest\r\n  realm="testrealm@host.com",\r\n  qop="auth,auth-int",\r\n  nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n  opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    scheme: 'Digest',
    params: [
      ['realm', 'testrealm@host.com'],
      ['qop', 'auth,auth-int'],
      ['nonce', 'dcd98b7102dd2f0e8b11d0f600bfb0c093'],
      ['opaque', '5ccc069c403ebaf9f0171e9517f40e41'],
    ],
  },
  {
    name: 'commas and equals signs inside a quoted-string do not split parameters',
    input: 'Digest realm="a, b=c", nonce="x,y"',
    scheme: 'Digest',
    params: [
      ['realm', 'a, b=c'],
      ['nonce', 'x,y'],
    ],
  },
  {
    name: 'quoted-pairs are undone',
    input: 'Digest realm="say \\"hi\\" \\\\ ok", nonce="\\a"',
    scheme: 'Digest',
    params: [
      ['realm', 'say "hi" \\ ok'],
      ['nonce', 'a'],
    ],
  },
  {
    name: 'LWS around "=" and "," (RFC 3261 EQUAL and COMMA allow SWS)',
    input: 'Digest realm = "x" ,\tnonce=  abc , algorithm =MD5',
    scheme: 'Digest',
    params: [
      ['realm', 'x'],
      ['nonce', 'abc'],
      ['algorithm', 'MD5'],
    ],
  },
  {
    name: 'unquoted base64 nonce as deployed servers send it',
    input: 'Digest nonce=abc/def+==, realm=example.com',
    scheme: 'Digest',
    params: [
      ['nonce', 'abc/def+=='],
      ['realm', 'example.com'],
    ],
  },
  {
    name: 'parameter names are case-insensitive and lower-cased; scheme kept as received',
    input: 'dIgEsT REALM="x", Nonce="y"',
    scheme: 'dIgEsT',
    params: [
      ['realm', 'x'],
      ['nonce', 'y'],
    ],
  },
  {
    name: 'unknown scheme and unknown parameters are kept (RFC 7235 §4.1 example)',
    input: 'Newauth realm="apps", type=1, title="Login to \\"apps\\""',
    scheme: 'Newauth',
    params: [
      ['realm', 'apps'],
      ['type', '1'],
      ['title', 'Login to "apps"'],
    ],
  },
  {
    name: 'token68 credentials are stored under the empty key',
    input: 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==',
    scheme: 'Basic',
    params: [['', 'QWxhZGRpbjpvcGVuIHNlc2FtZQ==']],
  },
  { name: 'a scheme without parameters', input: 'Negotiate', scheme: 'Negotiate', params: [] },
  {
    name: 'UTF-8 octets inside a quoted-string survive as bytes',
    input: 'Digest username="J\xc3\xa4s\xc3\xb8n Doe", realm="r"',
    scheme: 'Digest',
    params: [
      ['username', 'J\xc3\xa4s\xc3\xb8n Doe'],
      ['realm', 'r'],
    ],
  },
  {
    name: 'empty list elements are skipped (RFC 7230 §7)',
    input: 'Digest realm="x",, nonce="y",',
    scheme: 'Digest',
    params: [
      ['realm', 'x'],
      ['nonce', 'y'],
    ],
  },
  {
    name: 'empty quoted-string value',
    input: 'Digest realm="", nonce="y"',
    scheme: 'Digest',
    params: [
      ['realm', ''],
      ['nonce', 'y'],
    ],
  },
];

t.test('parseAuthValue reads one challenge or credentials value', async (t) => {
  for (const c of PARSE_CASES) {
    const v = parseAuthValue(c.input);
    t.equal(v.scheme, c.scheme, `${c.name}: scheme`);
    t.same(entries(v.params), c.params, `${c.name}: params`);
  }
});

t.test('parseAuthValues splits several challenges in one field (RFC 7235 §4.1)', async (t) => {
  const cases: { name: string; input: string; expected: [string, [string, string][]][] }[] = [
    {
      name: 'Newauth then Basic',
      input: 'Newauth realm="apps", type=1, title="Login", Basic realm="simple"',
      expected: [
        ['Newauth', [['realm', 'apps'], ['type', '1'], ['title', 'Login']]],
        ['Basic', [['realm', 'simple']]],
      ],
    },
    {
      name: 'a quoted qop list is not mistaken for a scheme',
      input: 'Digest realm="a", qop="auth, auth-int", nonce="n", Digest realm="b", nonce="m"',
      expected: [
        ['Digest', [['realm', 'a'], ['qop', 'auth, auth-int'], ['nonce', 'n']]],
        ['Digest', [['realm', 'b'], ['nonce', 'm']]],
      ],
    },
    {
      name: 'token68 followed by another challenge',
      input: 'Basic abc==, Negotiate, Digest realm="r"',
      expected: [
        ['Basic', [['', 'abc==']]],
        ['Negotiate', []],
        ['Digest', [['realm', 'r']]],
      ],
    },
  ];
  for (const c of cases) {
    const got = parseAuthValues(c.input).map((v) => [v.scheme, entries(v.params)]);
    t.same(got, c.expected, c.name);
  }
  t.throws(() => parseAuthValue('Basic realm="a", Digest realm="b"'), { code: 'bad-auth-header' }, 'parseAuthValue wants exactly one');
  t.throws(() => parseAuthValue('Digest realm="a", nonce'), { code: 'bad-auth-header' }, 'a bare token after a comma starts a second value');
});

t.test('malformed values throw SipParseError bad-auth-header', async (t) => {
  const cases: [string, string][] = [
    ['empty', ''],
    ['whitespace only', '  \t '],
    ['separators only', ' , ,'],
    ['unterminated quoted-string', 'Digest realm="unterminated, nonce="x'],
    ['backslash at the end of a quoted-string', 'Digest realm="a\\'],
    ['parameter without "="', 'Digest realm "a"'],
    ['parameter with an empty bare value', 'Digest nonce="x", realm='],
    ['missing comma between parameters', 'Digest realm="a" nonce="b"'],
    ['duplicated parameter (RFC 7235 §2.1)', 'Digest realm="a", REALM="b"'],
    ['leading "="', '=x'],
    ['garbage characters', 'Digest ???'],
    ['quoted scheme', '"Digest" realm="a"'],
    ['control character in a quoted-string', 'Digest realm="a\x01b"'],
    ['CRLF escaped by quoted-pair', 'Digest realm="a\\\nb"'],
    ['scheme glued to a quote', 'Digest"realm"'],
    ['more than 64 parameters', `Digest ${Array.from({ length: 65 }, (_, i) => `p${i}=1`).join(', ')}`],
  ];
  for (const [name, input] of cases) {
    t.throws(() => parseAuthValues(input), SipParseError, name);
    try {
      parseAuthValues(input);
    } catch (err) {
      t.equal((err as SipParseError).code, 'bad-auth-header', `${name}: code`);
    }
  }
});

t.test('serializeAuthValue uses the quoting the Digest grammar requires', async (t) => {
  const challenge = {
    scheme: 'Digest',
    params: new Map([
      ['realm', 'a "quoted" \\ realm'],
      ['nonce', 'abc'],
      ['algorithm', 'SHA-256'],
      ['qop', 'auth'],
      ['stale', 'true'],
    ]),
  };
  t.equal(
    serializeAuthValue(challenge, 'challenge'),
    'Digest realm="a \\"quoted\\" \\\\ realm", nonce="abc", algorithm=SHA-256, qop="auth", stale=true',
    'challenge: qop-options is a quoted list, algorithm and stale are tokens',
  );
  const credentials = {
    scheme: 'Digest',
    params: new Map([
      ['username', 'bob'],
      ['uri', 'sip:x@y'],
      ['qop', 'auth'],
      ['nc', '00000001'],
      ['cnonce', 'c'],
      ['custom', 'needs quoting'],
      ['flag', 'tok'],
    ]),
  };
  t.equal(
    serializeAuthValue(credentials, 'credentials'),
    'Digest username="bob", uri="sip:x@y", qop=auth, nc=00000001, cnonce="c", custom="needs quoting", flag=tok',
    'credentials: message-qop and nc are tokens, unknown values quoted only when not tokens',
  );
  t.equal(serializeAuthValue({ scheme: 'Basic', params: new Map([['', 'QWxh==']]) }, 'credentials'), 'Basic QWxh==');
  t.equal(serializeAuthValue({ scheme: 'Negotiate', params: new Map() }, 'challenge'), 'Negotiate');
  t.throws(() => serializeAuthValue({ scheme: 'Di gest', params: new Map() }, 'challenge'), RangeError, 'bad scheme');
  t.throws(() => quoteString('a\r\nb'), RangeError, 'CRLF cannot be quoted');
  t.throws(() => serializeAuthValue({ scheme: 'Digest', params: new Map([['bad name', 'x']]) }, 'challenge'), RangeError, 'bad param name');
});

t.test('parse → serialise → parse round-trips every fixture', async (t) => {
  for (const c of PARSE_CASES) {
    const first = parseAuthValue(c.input);
    for (const kind of ['challenge', 'credentials'] as const) {
      const again = parseAuthValue(serializeAuthValue(first, kind));
      t.same(entries(again.params), entries(first.params), `${c.name} (${kind})`);
      t.equal(again.scheme, first.scheme);
    }
  }
});

t.test('Authentication-Info is a parameter list without a scheme (RFC 3261 §20.6)', async (t) => {
  const info = parseAuthInfo('nextnonce="47364c23432d2e131a5fb210812c", qop=auth, rspauth="6629fae4", cnonce="0a4f113b", nc=00000001');
  t.same(entries(info), [
    ['nextnonce', '47364c23432d2e131a5fb210812c'],
    ['qop', 'auth'],
    ['rspauth', '6629fae4'],
    ['cnonce', '0a4f113b'],
    ['nc', '00000001'],
  ]);
  t.equal(
    serializeAuthInfo(info),
    'nextnonce="47364c23432d2e131a5fb210812c", qop=auth, rspauth="6629fae4", cnonce="0a4f113b", nc=00000001',
  );
  t.throws(() => parseAuthInfo('abc=='), { code: 'bad-auth-header' }, 'token68 is not an ainfo list');
  t.throws(() => parseAuthInfo('nextnonce="x'), { code: 'bad-auth-header' }, 'unterminated quote');
});
