import t from 'tap';
import { prng } from '../../helpers/prng.ts';
import { SipParseError } from '../../../src/sip/message/errors.ts';
import {
  parseContact,
  parseCSeq,
  parseNameAddr,
  parseParams,
  parseTokenList,
  parseUint,
  parseVia,
  quote,
  serializeContact,
  serializeCSeq,
  serializeNameAddr,
  serializeParams,
  serializeVia,
  tagOf,
  unquote,
} from '../../../src/sip/message/header-values.ts';
import type { NameAddr, Via } from '../../../src/sip/message/types.ts';
import { serializeUri } from '../../../src/sip/message/uri.ts';

/** A NameAddr as plain data: the URI as text, params as entries. */
function plainNA(n: NameAddr): Record<string, unknown> {
  return { displayName: n.displayName, uri: serializeUri(n.uri), params: [...n.params] };
}

function plainVia(v: Via): Record<string, unknown> {
  return { ...v, params: [...v.params] };
}

type P = [string, string | null][];

const nameAddrs: [name: string, input: string, display: string | undefined, uri: string, params: P][] = [
  ['name-addr with quoted display name', '"Alice" <sip:alice@atlanta.com>;tag=1928301774', 'Alice', 'sip:alice@atlanta.com', [['tag', '1928301774']]],
  ['quoted display name with escaped quotes', '"\\"quoted\\" name" <sip:a@b>', '"quoted" name', 'sip:a@b', []],
  ['wsinv From: escaped backslash and quote', '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8', 'J Rosenberg \\"', 'sip:jdrosen@example.com', [['tag', '98asjd8']]],
  ['wsinv Contact: LWS around ; and =', '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33', 'Quoted string ""', 'sip:jdrosen@example.com', [['newparam', 'newvalue'], ['secondparam', null], ['q', '0.33']]],
  ['token display name of several words', 'Bob  Smith <sip:bob@biloxi.com>', 'Bob Smith', 'sip:bob@biloxi.com', []],
  ['no LWS between display name and < (lwsdisp)', 'caller<sip:caller@example.com>;tag=323', 'caller', 'sip:caller@example.com', [['tag', '323']]],
  ['no LWS after quoted display name (longreq)', '"I have a user name"<sip:user@example.com:6000;unknownparam1=x>', 'I have a user name', 'sip:user@example.com:6000;unknownparam1=x', []],
  ['intmeth token display name with odd token chars', "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u00d1\u0080\";tag=_token~1'+`*%!-.", "token1~` token2'+_ token3*%!.-", 'sip:mundane@example.com', [["fromparam''~+*_!.-%", '"\u00d1\u0080"'], ['tag', "_token~1'+`*%!-."]]],
  ['intmeth quoted display name with control characters', '"BEL:\\\u0007 NUL:\\\u0000 DEL:\\\u007f" <sip:x@example.com>', 'BEL:\u0007 NUL:\u0000 DEL:\u007f', 'sip:x@example.com', []],
  ['empty quoted display name', '"" <sip:a@b>', '', 'sip:a@b', []],
  ['esc02 display name %Z%45 kept literally', '"%Z%45" <sip:resource@example.com>', '%Z%45', 'sip:resource@example.com', []],
  ['<uri> without display name', '<sip:carol@chicago.com;lr>', undefined, 'sip:carol@chicago.com;lr', []],
  ['URI params inside <> stay URI params (cparam02)', '<sip:+19725552222@gw1.example.net;unknownparam>', undefined, 'sip:+19725552222@gw1.example.net;unknownparam', []],
  ['addr-spec: params after the URI are header params (§20.10, cparam01)', 'sip:+19725552222@gw1.example.net;unknownparam', undefined, 'sip:+19725552222@gw1.example.net', [['unknownparam', null]]],
  ['addr-spec with tag (wsinv To)', ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n', undefined, 'sip:vivekg@chair-dnrc.example.com', [['tag', '1918181833n']]],
  ['addr-spec IPv6 (RFC 5118 To)', 'sip:user@[2001:db8::10]', undefined, 'sip:user@[2001:db8::10]', []],
  ['IPv4-mapped IPv6 contact (RFC 5118 §4.6)', '"T. desk phone" <sip:ted@[::ffff:192.0.2.2]>', 'T. desk phone', 'sip:ted@[::ffff:192.0.2.2]', []],
  ['quoted param value with <> (+sip.instance)', '<sip:a@192.0.2.1:5060;ob>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1', undefined, 'sip:a@192.0.2.1:5060;ob', [['+sip.instance', '"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"'], ['reg-id', '1']]],
  ['addr-spec with quoted param containing <>', 'sip:a@h;+sip.instance="<urn:uuid:1>"', undefined, 'sip:a@h', [['+sip.instance', '"<urn:uuid:1>"']]],
  ['regbadct: URI headers in an addr-spec accepted liberally', 'sip:user@example.com?Route=%3Csip:sip.example.com%3E', undefined, 'sip:user@example.com?Route=%3Csip:sip.example.com%3E', []],
  ['tel URI', '<tel:+1-201-555-0123>;tag=x', undefined, 'tel:+1-201-555-0123', [['tag', 'x']]],
  ['param keys lower-cased, first duplicate wins', '<sip:a@b>;TAG=one;tag=two', undefined, 'sip:a@b', [['tag', 'one']]],
];

t.test('parseNameAddr reads name-addr and addr-spec forms', async (t) => {
  for (const [name, input, display, uri, params] of nameAddrs) {
    t.strictSame(plainNA(parseNameAddr(input)), { displayName: display, uri, params }, name);
  }
});

t.test('serializeNameAddr round-trips', async (t) => {
  for (const [name, input] of nameAddrs) {
    const a = parseNameAddr(input);
    const text = serializeNameAddr(a);
    t.strictSame(plainNA(parseNameAddr(text)), plainNA(a), `${name}: ${JSON.stringify(text)}`);
  }
  t.equal(serializeNameAddr(parseNameAddr('sip:a@b;tag=1')), '<sip:a@b>;tag=1', 'addr-spec written in name-addr form');
  t.equal(serializeNameAddr(parseNameAddr('Bob <sip:b@h>')), '"Bob" <sip:b@h>', 'display name quoted');
  t.equal(serializeNameAddr(parseNameAddr('"a\\"b\\\\" <sip:b@h>')), '"a\\"b\\\\" <sip:b@h>', 'quote and backslash escaped');
});

t.test('parseNameAddr rejects malformed values', async (t) => {
  const cases: [string, string, string][] = [
    ['unterminated quoted string (quotbal)', '"Mr. J. User <sip:j.user@example.com>', 'bad-name-addr'],
    ['spaces inside <> (badaspec)', '"Watson, Thomas" < sip:t.watson@example.org >', 'bad-name-addr'],
    ['space before > inside <>', '<sip:a@b >', 'bad-name-addr'],
    ['non-token display name (baddn)', 'Bell, Alexander <sip:a.g.bell@example.com>;tag=43', 'bad-name-addr'],
    ['display name then addr-spec without <> (regbadct variant)', 'Display Name sip:user@example.com', 'bad-name-addr'],
    ['unterminated <', '<sip:a@b', 'bad-name-addr'],
    ['quoted display name without <>', '"Alice" sip:a@b', 'bad-name-addr'],
    ['display name without URI', 'Alice', 'bad-name-addr'],
    ['empty value', '  ', 'bad-name-addr'],
    ['garbage after params', '<sip:a@b>;tag=1 x', 'bad-name-addr'],
    ['two values', '<sip:a@b>, <sip:c@d>', 'bad-name-addr'],
    ['empty param name', '<sip:a@b>;;tag=1', 'bad-name-addr'],
    ['param with = but no value', '<sip:a@b>;tag=', 'bad-name-addr'],
    ['unterminated quoted param value', '<sip:a@b>;x="abc', 'bad-name-addr'],
    ['empty <>', '<>', 'bad-uri'],
    ['bad URI inside <>', '<sip:2001:db8::1>', 'bad-uri'],
  ];
  for (const [name, input, code] of cases) {
    t.throws(() => parseNameAddr(input), { name: 'SipParseError', code }, name);
  }
  for (const input of ['isbn:2983792873', '<http://www.example.com>;tag=3234233', '<name:John_Smith>']) {
    t.throws(() => parseNameAddr(input), { code: 'unsupported-uri-scheme', status: 416 }, `unksm2 ${input}`);
  }
});

t.test('parseContact', async (t) => {
  t.strictSame(parseContact('*'), { star: true }, 'star');
  t.strictSame(parseContact('  *  '), { star: true }, 'star with LWS');
  const c = parseContact('<sip:user@host129.example.com>\r\n  ;expires=280297596632815');
  t.equal(c.star, false);
  if (!c.star) {
    t.equal(c.params.get('expires'), '280297596632815', 'scalar02 contact expires kept as text');
    t.equal(serializeUri(c.uri), 'sip:user@host129.example.com');
  }
  t.equal(serializeContact({ star: true }), '*');
  t.equal(serializeContact(parseContact('<sip:a@b>;q=0.5')), '<sip:a@b>;q=0.5');
  t.throws(() => parseContact('*;q=1'), SipParseError, 'star with params is not a star');
  t.throws(() => parseContact('**'), SipParseError);
});

const vias: [name: string, input: string, expect: Record<string, unknown>][] = [
  ['ordinary UDP Via', 'SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds', {
    protocol: 'SIP/2.0', transport: 'UDP', host: 'pc33.atlanta.com', branch: 'z9hG4bK776asdhds', params: [['branch', 'z9hG4bK776asdhds']],
  }],
  ['wsinv: LWS around / and before params', 'SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw', {
    protocol: 'SIP/2.0', transport: 'UDP', host: '192.0.2.2', branch: '390skdjuw', params: [['branch', '390skdjuw']],
  }],
  ['wsinv: LWS around ; and =', 'SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8', {
    transport: 'TCP', host: 'spindle.example.com', branch: 'z9hG4bK9ikj8',
  }],
  ['LWS around : in sent-by', 'SIP/2.0/UDP host.example.com : 5060 ;branch=z9hG4bK1', { host: 'host.example.com', port: 5060 }],
  ['transport lower case is upper-cased, host lower-cased', 'sip/2.0/tls Host.Example.COM:5061;branch=z9hG4bKx', { protocol: 'SIP/2.0', transport: 'TLS', host: 'host.example.com', port: 5061 }],
  ['unknown transport (RFC 4475 transports)', 'SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en', { transport: 'UNKNOWN', host: 't4.example.com' }],
  ['SCTP transport', 'SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf', { transport: 'SCTP' }],
  ['no params (ltgtruri)', 'SIP/2.0/UDP 192.0.2.5', { host: '192.0.2.5', branch: undefined, params: [] }],
  ['IPv6 sent-by with port (RFC 5118 mult-ip-in-header)', 'SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111', { host: '[2001:db8::9:1]', port: 6050 }],
  ['IPv4-mapped IPv6 sent-by', 'SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19', { host: '[::ffff:192.0.2.10]', port: 19823 }],
  ['IPv6 sent-by with IPv4 received', 'SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200', { host: '[2001:db8::9:255]', received: '192.0.2.200' }],
  ['received IPv6 without brackets (RFC 5118 §4.5)', 'SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3', { received: '2001:db8::9:255', branch: 'z9hG4bKas3' }],
  ['received IPv6 with brackets (RFC 5118 §4.5)', 'SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111', { received: '[2001:db8::9:255]' }],
  ['rport flag (RFC 3581 request)', 'SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa', { rport: null, port: 5060 }],
  ['rport with value (RFC 3581 response)', 'SIP/2.0/UDP 10.0.0.1:5060;received=192.0.2.1;rport=6000;branch=z9hG4bKa', { rport: 6000, received: '192.0.2.1' }],
  ['maddr and ttl', 'SIP/2.0/UDP h;maddr=239.255.255.1;ttl=16;branch=z9hG4bKm', { maddr: '239.255.255.1', ttl: 16 }],
  ['esc02: % in branch token', 'SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234', { branch: 'z9hG4bK209%fzsnel234' }],
  ['intmeth: odd token chars in branch', "SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~", { branch: "z9hG4bK-.!%66*_+`'~" }],
  ['badbranch: bare magic cookie', 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK', { branch: 'z9hG4bK' }],
  ['extension params with quoted value', 'SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKx;alias;x="a b"', { transport: 'WSS', params: [['branch', 'z9hG4bKx'], ['alias', null], ['x', '"a b"']] }],
];

t.test('parseVia reads via-parm values', async (t) => {
  for (const [name, input, expect] of vias) {
    const got = plainVia(parseVia(input));
    const picked: Record<string, unknown> = {};
    for (const k of Object.keys(expect)) picked[k] = got[k];
    t.strictSame(picked, expect, name);
  }
});

t.test('serializeVia round-trips and prefers the typed fields', async (t) => {
  for (const [name, input] of vias) {
    const a = parseVia(input);
    const text = serializeVia(a);
    t.strictSame(plainVia(parseVia(text)), plainVia(a), `${name}: ${text}`);
  }
  t.equal(serializeVia(parseVia('SIP / 2.0 / UDP  h : 5060 ; branch = z9hG4bK1 ; rport')), 'SIP/2.0/UDP h:5060;branch=z9hG4bK1;rport', 'canonical spacing');
  const v = parseVia('SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa;foo=bar');
  v.rport = 5070;
  v.received = '192.0.2.9';
  t.equal(serializeVia(v), 'SIP/2.0/UDP 10.0.0.1:5060;rport=5070;branch=z9hG4bKa;foo=bar;received=192.0.2.9', 'rport filled in place, received appended');
  delete v.branch;
  t.equal(serializeVia(v), 'SIP/2.0/UDP 10.0.0.1:5060;rport=5070;foo=bar;received=192.0.2.9', 'cleared typed field is left out');
  const built: Via = { protocol: 'SIP/2.0', transport: 'TCP', host: '2001:db8::1', port: 5060, branch: 'z9hG4bKb', params: new Map() };
  t.equal(serializeVia(built), 'SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKb', 'built Via, bare IPv6 bracketed');
});

t.test('parseVia rejects malformed values with bad-via', async (t) => {
  const cases: [string, string][] = [
    ['empty', ''],
    ['missing transport', 'SIP/2.0 host'],
    ['missing sent-by', 'SIP/2.0/UDP'],
    ['missing sent-by before params', 'SIP/2.0/UDP ;branch=z9hG4bK1'],
    ['no LWS before sent-by', 'SIP/2.0/UDP;branch=x'],
    ['bare IPv6 sent-by', 'SIP/2.0/UDP 2001:db8::1;branch=z9hG4bK1'],
    ['unterminated IPv6 sent-by', 'SIP/2.0/UDP [2001:db8::1;branch=z9hG4bK1'],
    ['port out of range', 'SIP/2.0/UDP h:70000'],
    ['empty port', 'SIP/2.0/UDP h:;branch=z9hG4bK1'],
    ['rport not a number', 'SIP/2.0/UDP h;rport=abc'],
    ['rport too large', 'SIP/2.0/UDP h;rport=65536'],
    ['ttl too large', 'SIP/2.0/UDP h;ttl=256'],
    ['branch without value', 'SIP/2.0/UDP h;branch'],
    ['branch with empty value', 'SIP/2.0/UDP h;branch='],
    ['received without value', 'SIP/2.0/UDP h;received'],
    ['two values in one', 'SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b'],
    ['garbage after host', 'SIP/2.0/UDP h x'],
    ['empty param', 'SIP/2.0/UDP h;;branch=z9hG4bK1'],
  ];
  for (const [name, input] of cases) {
    t.throws(() => parseVia(input), { name: 'SipParseError', code: 'bad-via', status: 400 }, name);
  }
});

t.test('parseCSeq', async (t) => {
  t.strictSame(parseCSeq('4711 INVITE'), { seq: 4711, method: 'INVITE' });
  t.strictSame(parseCSeq('0009\r\n  INVITE'), { seq: 9, method: 'INVITE' }, 'wsinv: leading zeros, folded LWS');
  t.strictSame(parseCSeq('4294967295 BYE'), { seq: 4294967295, method: 'BYE' }, '2^32-1 accepted');
  t.strictSame(parseCSeq('0 ACK'), { seq: 0, method: 'ACK' }, 'zero accepted');
  t.strictSame(parseCSeq("139122385 !interesting-Method0123456789_*+`.%indeed'~"), { seq: 139122385, method: "!interesting-Method0123456789_*+`.%indeed'~" }, 'intmeth extension method');
  t.strictSame(parseCSeq('29344 RE%47IST%45R'), { seq: 29344, method: 'RE%47IST%45R' }, 'esc02: method is not unescaped');
  t.equal(serializeCSeq({ seq: 1, method: 'REGISTER' }), '1 REGISTER');
  const bad: [string, string][] = [
    ['2^32 rejected', '4294967296 INVITE'],
    ['scalar02 overlarge value', '36893488147419103232 REGISTER'],
    ['negative', '-1 INVITE'],
    ['no method', '1'],
    ['no number', 'INVITE'],
    ['no LWS', '1INVITE'],
    ['trailing garbage', '1 INVITE x'],
    ['non-token method', '1 INV@TE'],
    ['empty', ''],
  ];
  for (const [name, input] of bad) {
    t.throws(() => parseCSeq(input), { name: 'SipParseError', code: 'bad-cseq' }, name);
  }
});

t.test('parseUint (Max-Forwards, Expires, Content-Length)', async (t) => {
  t.equal(parseUint('70', 255), 70);
  t.equal(parseUint('0068', 255), 68, 'wsinv leading zeros');
  t.equal(parseUint(' 0 ', 255), 0, 'LWS trimmed');
  t.equal(parseUint('4294967295', 0xffffffff), 4294967295);
  t.throws(() => parseUint('300', 255), { code: 'bad-number' }, 'scalar02 Max-Forwards 300 > 255');
  t.throws(() => parseUint('1' + '0'.repeat(100), 0xffffffff), { code: 'bad-number' }, 'scalar02 huge Expires, no overflow');
  t.throws(() => parseUint('-999', 0xffffffff), { code: 'bad-number' }, 'ncl negative Content-Length');
  t.throws(() => parseUint('', 10), { code: 'bad-number' }, 'empty');
  t.throws(() => parseUint('1 2', 10), { code: 'bad-number' }, 'two numbers');
  t.throws(() => parseUint('0x10', 100), { code: 'bad-number' }, 'hex');
  t.throws(() => parseUint('12', 10, 'bad-max-forwards'), { code: 'bad-max-forwards' }, 'caller-chosen code');
});

t.test('parseTokenList (Allow, Supported, Require)', async (t) => {
  t.strictSame(parseTokenList('INVITE, ACK,CANCEL ,  BYE'), ['INVITE', 'ACK', 'CANCEL', 'BYE']);
  t.strictSame(parseTokenList(''), [], 'empty Supported');
  t.strictSame(parseTokenList('100rel,,timer,'), ['100rel', 'timer'], 'empty elements skipped');
  t.strictSame(parseTokenList('nothingSupported'), ['nothingSupported']);
  t.throws(() => parseTokenList('a b'), { code: 'bad-token-list' });
  t.throws(() => parseTokenList('a;b'), { code: 'bad-token-list' });
});

t.test('parseParams / serializeParams', async (t) => {
  const cases: [string, string, P, string][] = [
    ['leading ; with flag and values', ';tag=a;lr;q=0.5', [['tag', 'a'], ['lr', null], ['q', '0.5']], ';tag=a;lr;q=0.5'],
    ['leading ; optional', 'tag=a', [['tag', 'a']], ';tag=a'],
    ['empty', '', [], ''],
    ['LWS around ; and =', '  ;  Expires  =  60 ;  x ', [['expires', '60'], ['x', null]], ';expires=60;x'],
    ['quoted value kept with quotes', ';+sip.instance="<urn:uuid:f81d4fae>";reg-id=1', [['+sip.instance', '"<urn:uuid:f81d4fae>"'], ['reg-id', '1']], ';+sip.instance="<urn:uuid:f81d4fae>";reg-id=1'],
    ['quoted value with ; and escaped quote', ';x="a;\\"b"', [['x', '"a;\\"b"']], ';x="a;\\"b"'],
    ['IPv6 host value', ';received=[2001:db8::1]', [['received', '[2001:db8::1]']], ';received=[2001:db8::1]'],
  ];
  for (const [name, input, params, text] of cases) {
    const p = parseParams(input);
    t.strictSame([...p], params, name);
    t.equal(serializeParams(p), text, `${name}: serialised`);
    t.strictSame([...parseParams(serializeParams(p))], params, `${name}: round trip`);
  }
  t.equal(serializeParams(new Map([['x', 'a b'], ['y', '']])), ';x="a b";y=""', 'values that are not tokens get quoted');
  t.throws(() => parseParams(';a=b c'), { code: 'bad-params' });
  t.throws(() => parseParams(';="x"'), { code: 'bad-params' });
  t.throws(() => parseParams(';a=b,c'), { code: 'bad-params' }, 'a comma ends a list element, not parameters');
  t.equal(unquote('"a\\"b"'), 'a"b');
  t.equal(unquote('token'), 'token');
  t.equal(unquote('"unterminated'), '"unterminated');
  t.equal(quote('a"b\\c'), '"a\\"b\\\\c"');
});

t.test('tagOf reads the tag without parsing the URI', async (t) => {
  const cases: [string, string, string | undefined][] = [
    ['name-addr', '"Bob" <sip:bob@biloxi.com>;tag=a6c85cf', 'a6c85cf'],
    ['addr-spec', 'sip:user@example.com;tag=81x2', '81x2'],
    ['tag inside the URI is not the header tag', '<sip:a@b;tag=uri>', undefined],
    ['URI tag ignored, header tag found', '<sip:a@b;tag=uri>;tag=hdr', 'hdr'],
    ['tag text inside quoted display name ignored', '"x;tag=no>" <sip:a@b>;tag=yes', 'yes'],
    ['tag text inside quoted param ignored', '<sip:a@b>;x="y;tag=no";tag=yes', 'yes'],
    ['wsinv LWS', ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n', '1918181833n'],
    ['upper-case TAG', '<sip:a@b>;TAG=Up', 'Up'],
    ['no tag', '<sip:a@b>;lr', undefined],
    ['no params', 'sip:a@b', undefined],
    ['flag tag', '<sip:a@b>;tag', undefined],
    ['malformed params', '<sip:a@b>;;tag=x', undefined],
    ['unterminated <', '<sip:a@b;tag=x', undefined],
  ];
  for (const [name, input, tag] of cases) t.equal(tagOf(input), tag, name);
});


t.test('garbage and mutated input: only SipParseError is thrown, accepted values round-trip', async (t) => {
  const rnd = prng(4475);
  const junk = ' \t"\\<>;,=:@[]/%*\u0000\u00ff\u0100aZ09.-';
  const bases = [...nameAddrs.map((c) => c[1]), ...vias.map((c) => c[1])];
  const stats = { accepted: 0, rejected: 0, foreign: 0, roundTripFailures: 0, tagOfThrew: 0 };
  const parsers: [(s: string) => unknown, (v: never) => string, (v: never) => unknown][] = [
    [parseNameAddr, serializeNameAddr as (v: never) => string, plainNA as (v: never) => unknown],
    [parseVia, serializeVia as (v: never) => string, plainVia as (v: never) => unknown],
    [parseContact, serializeContact as (v: never) => string, (v: never) => JSON.stringify(v, (_k, x: unknown) => (x instanceof Map ? [...x] : x))],
    [parseCSeq, serializeCSeq as (v: never) => string, (v: never) => v],
  ];
  for (let n = 0; n < 2500; n++) {
    let s = bases[Math.floor(rnd() * bases.length)]!;
    const edits = 1 + Math.floor(rnd() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rnd() * (s.length + 1));
      const ch = junk[Math.floor(rnd() * junk.length)]!;
      const op = rnd();
      s = op < 0.4 ? s.slice(0, at) + ch + s.slice(at) : op < 0.7 ? s.slice(0, at) + s.slice(at + 1) : s.slice(0, at) + ch + s.slice(at + 1);
    }
    for (const [parse, serialize, view] of parsers) {
      try {
        const v = parse(s) as never;
        stats.accepted++;
        const again = parse(serialize(v)) as never;
        if (JSON.stringify(view(again)) !== JSON.stringify(view(v))) stats.roundTripFailures++;
      } catch (err) {
        if (err instanceof SipParseError) stats.rejected++;
        else stats.foreign++;
      }
    }
    try {
      const tag = tagOf(s);
      if (tag !== undefined && typeof tag !== 'string') stats.foreign++;
    } catch {
      stats.tagOfThrew++;
    }
  }
  t.equal(stats.foreign, 0, 'no exception other than SipParseError');
  t.equal(stats.roundTripFailures, 0, 'accepted values round-trip');
  t.equal(stats.tagOfThrew, 0, 'tagOf never throws');
  t.ok(stats.accepted > 100 && stats.rejected > 100, `both outcomes exercised (${stats.accepted} accepted, ${stats.rejected} rejected)`);
});

t.test('hostile long values are parsed in linear time', async (t) => {
  const start = process.hrtime.bigint();
  t.throws(() => parseNameAddr('"' + '\\'.repeat(100_001)), { code: 'bad-name-addr' }, 'unterminated quote with escapes');
  t.throws(() => parseNameAddr('a '.repeat(50_000)), { code: 'bad-name-addr' }, 'endless token display name');
  t.throws(() => parseNameAddr('<' + '<'.repeat(100_000)), { code: 'bad-name-addr' }, 'many <');
  t.equal(parseVia('SIP/2.0/UDP h' + ';a=b'.repeat(30_000)).params.size, 1, 'many duplicate params');
  t.equal(tagOf('<sip:a@b>' + ';x=1'.repeat(30_000) + ';tag=z'), 'z', 'tag after many params');
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  t.ok(ms < 1000, `took ${ms.toFixed(1)} ms`);
});

t.test('Content-Type, Event and Session-Expires: lead item and parameters', async (t) => {
  const { parseContentType, parseEvent, parseSessionExpires } = await import('../../../src/sip/message/value-headers.ts');
  const ct = parseContentType('Application/SDP ; charset=UTF-8');
  t.same([ct.type, ct.subtype, ct.params.get('charset')], ['application', 'sdp', 'UTF-8']);
  t.same([parseContentType('multipart/mixed;boundary="a b"').params.get('boundary')], ['"a b"'], 'quoted parameter kept quoted');
  const ev = parseEvent('presence.winfo;id=42');
  t.same([ev.event, ev.id], ['presence.winfo', '42']);
  t.same([parseEvent('dialog').event, parseEvent('dialog').id], ['dialog', undefined]);
  const se = parseSessionExpires('1800;refresher=UAC');
  t.same([se.seconds, se.refresher], [1800, 'uac']);
  t.equal(parseSessionExpires('90').refresher, undefined);
  const bad: [string, () => unknown, string][] = [
    ['type without subtype', () => parseContentType('application'), 'bad-content-type'],
    ['empty Content-Type', () => parseContentType(' '), 'bad-content-type'],
    ['space in event', () => parseEvent('dia log'), 'bad-event'],
    ['empty event template', () => parseEvent('presence.'), 'bad-event'],
    ['bad event params', () => parseEvent('dialog;;'), 'bad-event'],
    ['negative interval', () => parseSessionExpires('-5'), 'bad-session-expires'],
    ['unknown refresher', () => parseSessionExpires('90;refresher=proxy'), 'bad-session-expires'],
    ['interval beyond 2^32-1', () => parseSessionExpires('4294967296'), 'bad-session-expires'],
  ];
  for (const [name, fn, code] of bad) t.throws(fn, { code }, name);
});
