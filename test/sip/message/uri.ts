import t from 'tap';
import { prng } from '../../helpers/prng.ts';
import { SipParseError } from '../../../src/sip/message/errors.ts';
import type { SipUri } from '../../../src/sip/message/types.ts';
import { formatHostPort, isIpv6Reference, parseUri, serializeUri } from '../../../src/sip/message/uri.ts';
import { uriEquals } from '../../../src/sip/message/uri-equals.ts';

/** A SipUri as a plain object for deep comparison (Maps become entry arrays). */
function plain(u: SipUri): Record<string, unknown> {
  return { ...u, params: [...u.params], headers: [...u.headers] };
}

type Expect = {
  scheme?: string;
  user?: string;
  password?: string;
  host?: string;
  port?: number;
  params?: [string, string | null][];
  headers?: [string, string][];
};

const valid: [name: string, input: string, expect: Expect][] = [
  ['plain sip URI', 'sip:alice@atlanta.com', { scheme: 'sip', user: 'alice', host: 'atlanta.com', params: [], headers: [] }],
  ['sips with port, scheme and host lower-cased', 'SIPS:Bob@Biloxi.COM:5061', { scheme: 'sips', user: 'Bob', host: 'biloxi.com', port: 5061 }],
  ['host only', 'sip:registrar.example.com', { user: undefined, host: 'registrar.example.com' }],
  ['IPv4 host with port', 'sip:192.0.2.4:5070', { host: '192.0.2.4', port: 5070 }],
  ['password part (§19.1.1)', 'sip:alice:secretword@atlanta.com;transport=tcp', { user: 'alice', password: 'secretword', params: [['transport', 'tcp']] }],
  ['uri-parameters: flag, value, keys lower-cased', 'sip:proxy.example.com;LR;Transport=TCP;maddr=239.255.255.1;ttl=15', {
    params: [['lr', null], ['transport', 'TCP'], ['maddr', '239.255.255.1'], ['ttl', '15']],
  }],
  ['headers after ?', 'sip:alice@atlanta.com?subject=project%20x&priority=urgent', {
    headers: [['subject', 'project x'], ['priority', 'urgent']],
  }],
  // RFC 4475 §3.1.1.9 semiuri: the user part may hold ';'
  ['user parameters in the user part (semiuri)', 'sip:user;par=u%40example.net@example.com', { user: 'user;par=u@example.net', host: 'example.com', params: [] }],
  ['user parameter without escapes', 'sip:user;par=u@example.net', { user: 'user;par=u', host: 'example.net' }],
  ['telephone-subscriber user with user=phone', 'sip:+1-212-555-1212:1234@gateway.com;user=phone', { user: '+1-212-555-1212', password: '1234', params: [['user', 'phone']] }],
  // RFC 4475 §3.1.1.3 esc01
  ['esc01 Request-URI: escaped : and @ in user', 'sip:sips%3Auser%40example.com@example.net', { user: 'sips:user@example.com', host: 'example.net' }],
  ['esc01 To: escaped letters decoded', 'sip:%75se%72@example.com', { user: 'user' }],
  ['esc01 escaped spaces', 'sip:I%20have%20spaces@example.net', { user: 'I have spaces' }],
  ['esc01 Contact: value%25%34%31 unescaped once only → value%41', 'sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31', {
    user: 'caller', params: [['lr', null], ['name', 'value%41']],
  }],
  // RFC 4475 §3.1.1.4 escnull
  ['escnull: %00 kept, not truncated', 'sip:null-%00-null@example.com', { user: 'null-\u0000-null' }],
  ['escnull: two NULs', 'sip:%00%00@host5.example.com', { user: '\u0000\u0000' }],
  // RFC 4475 §3.1.1.2 intmeth
  ['intmeth: unusual user and password characters', "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com", {
    user: "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*", password: "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)", host: 'example.com',
  }],
  // RFC 4475 §3.1.2.11 escruri: accepted liberally, headers decoded
  ['escruri: escaped Route header in URI headers', 'sip:user@example.com?Route=%3Csip:example.com%3E', { headers: [['Route', '<sip:example.com>']] }],
  ['wsinv: unknown flag param', 'sip:vivekg@chair-dnrc.example.com;unknownparam', { params: [['unknownparam', null]] }],
  // RFC 5118
  ['IPv6 reference (§4.1 ipv6-good)', 'sip:[2001:db8::10]', { host: '[2001:db8::10]', port: undefined }],
  ['IPv6 reference with port (§4.3 port-unambiguous)', 'sip:[2001:db8::10]:5070', { host: '[2001:db8::10]', port: 5070 }],
  ['IPv6 ending in :5070 is part of the address (§4.3 port-ambiguous)', 'sip:[2001:db8::10:5070]', { host: '[2001:db8::10:5070]', port: undefined }],
  ['IPv6 with user', 'sip:user@[2001:db8::10]', { user: 'user', host: '[2001:db8::10]' }],
  ['IPv6 with embedded IPv4 (§4.4 2 colons)', 'sip:user@[2001:db8::192.0.2.1]', { host: '[2001:db8::192.0.2.1]' }],
  ['IPv6 3-colon ABNF-bug form tolerated (§4.4)', 'sip:user@[2001:db8:::192.0.2.1]', { host: '[2001:db8:::192.0.2.1]' }],
  ['IPv4-mapped IPv6 (§4.6)', 'sip:ted@[::ffff:192.0.2.2]', { user: 'ted', host: '[::ffff:192.0.2.2]' }],
  ['IPv6 reference lower-cased', 'sip:[2001:DB8::A]', { host: '[2001:db8::a]' }],
  // RFC 3966 tel
  ['tel global number', 'tel:+1-201-555-0123', { scheme: 'tel', user: '+1-201-555-0123', host: '', params: [] }],
  ['tel local number with phone-context', 'tel:7042;phone-context=example.com', { scheme: 'tel', user: '7042', params: [['phone-context', 'example.com']] }],
  ['tel with ext and isub', 'tel:+1-201-555-0123;ext=1234;isub=5', { params: [['ext', '1234'], ['isub', '5']] }],
];

t.test('parseUri accepts valid URIs', async (t) => {
  for (const [name, input, expect] of valid) {
    const u = parseUri(input);
    const got: Record<string, unknown> = plain(u);
    const want: Record<string, unknown> = {};
    for (const k of Object.keys(expect) as (keyof Expect)[]) want[k] = got[k];
    t.strictSame(want, expect, name);
  }
});

t.test('serializeUri round-trips: parse → serialize → parse gives equal structures', async (t) => {
  for (const [name, input] of valid) {
    const a = parseUri(input);
    const text = serializeUri(a);
    const b = parseUri(text);
    t.same(plain(b), plain(a), `${name}: ${text}`);
    t.equal(serializeUri(b), text, `${name}: serialisation is stable`);
  }
});

t.test('serializeUri writes canonical text and escapes what needs it', async (t) => {
  const cases: [string, SipUri, string][] = [
    ['minimal', { scheme: 'sip', host: 'example.com', params: new Map(), headers: new Map() }, 'sip:example.com'],
    ['user with space and @ escaped', { scheme: 'sip', user: 'a b@c', host: 'h', params: new Map(), headers: new Map() }, 'sip:a%20b%40c@h'],
    ['user : escaped so it is not read as a password', { scheme: 'sip', user: 'a:b', host: 'h', params: new Map(), headers: new Map() }, 'sip:a%3Ab@h'],
    ['bare IPv6 host gets brackets', { scheme: 'sip', host: '2001:db8::1', port: 5060, params: new Map(), headers: new Map() }, 'sip:[2001:db8::1]:5060'],
    ['params and headers', {
      scheme: 'sips', user: 'bob', host: 'b.example', params: new Map<string, string | null>([['lr', null], ['x', 'a;b']]),
      headers: new Map([['Subject', 'hi & bye']]),
    }, 'sips:bob@b.example;lr;x=a%3Bb?Subject=hi%20%26%20bye'],
    ['%41 in a decoded value is escaped back as %25', { scheme: 'sip', user: 'value%41', host: 'h', params: new Map(), headers: new Map() }, 'sip:value%2541@h'],
    ['tel', { scheme: 'tel', user: '+1-555', host: '', params: new Map([['phone-context', 'x']]), headers: new Map() }, 'tel:+1-555;phone-context=x'],
  ];
  for (const [name, uri, text] of cases) {
    t.equal(serializeUri(uri), text, name);
  }
});

const invalid: [name: string, input: string, code: string][] = [
  ['no scheme', 'alice@atlanta.com', 'bad-uri'],
  ['empty', '', 'bad-uri'],
  ['<> around the URI (RFC 4475 ltgtruri)', '<sip:user@example.com>', 'bad-uri'],
  ['embedded LWS (RFC 4475 lwsruri)', 'sip:user@example.com; lr', 'bad-uri'],
  ['space in user', 'sip:us er@example.com', 'bad-uri'],
  ['bare IPv6 without brackets (RFC 5118 §4.2 ipv6-bad)', 'sip:2001:db8::10', 'bad-uri'],
  ['bare IPv6 with user', 'sip:user@2001:db8::10', 'bad-uri'],
  ['unterminated IPv6 reference', 'sip:[2001:db8::10', 'bad-uri'],
  ['malformed IPv6 reference', 'sip:[2001:db8::10::1]', 'bad-uri'],
  ['non-hex in IPv6', 'sip:[2001:zb8::1]', 'bad-uri'],
  ['empty host', 'sip:user@', 'bad-uri'],
  ['empty host before port', 'sip::5060', 'bad-uri'],
  ['port out of range', 'sip:h:65536', 'bad-uri'],
  ['non-numeric port', 'sip:h:50a', 'bad-uri'],
  ['empty port', 'sip:h:', 'bad-uri'],
  ['bad escape', 'sip:a%4@h', 'bad-uri'],
  ['bad escape at the end of a header', 'sip:h?a=%', 'bad-uri'],
  ['empty user', 'sip:@h', 'bad-uri'],
  ['empty param name', 'sip:h;;lr', 'bad-uri'],
  ['header without =', 'sip:h?subject', 'bad-uri'],
  ['empty headers', 'sip:h?', 'bad-uri'],
  ['double dot host', 'sip:a..b', 'bad-uri'],
  ['tel with letters', 'tel:+1-CALL-NOW', 'bad-uri'],
  ['tel empty', 'tel:', 'bad-uri'],
  ['scheme starting with a digit', '1sip:h', 'bad-uri'],
];

t.test('parseUri rejects malformed URIs with SipParseError bad-uri (status 400)', async (t) => {
  for (const [name, input, code] of invalid) {
    t.throws(() => parseUri(input), { name: 'SipParseError', code, status: 400 }, name);
  }
});

t.test('other URI schemes are unsupported-uri-scheme with status 416 (RFC 3261 §8.2.2.1)', async (t) => {
  const cases: [string, string][] = [
    ['unkscm (RFC 4475 §3.3.2)', 'nobodyKnowsThisScheme:totallyopaquecontent'],
    ['novelsc (RFC 4475 §3.3.3)', 'soap.beep://192.0.2.103:3002'],
    ['unksm2 isbn', 'isbn:2983792873'],
    ['unksm2 http', 'http://www.example.com'],
    ['unksm2 name', 'name:John_Smith'],
    ['mailto', 'mailto:alice@example.com'],
  ];
  for (const [name, input] of cases) {
    t.throws(() => parseUri(input), { name: 'SipParseError', code: 'unsupported-uri-scheme', status: 416 }, name);
  }
});

t.test('uriEquals follows RFC 3261 §19.1.4', async (t) => {
  const equal: [string, string][] = [
    ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;security=on'],
    ['sip:carol@chicago.com;newparam=5', 'sip:carol@chicago.com;security=on'],
    ['sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com', 'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com'],
    ['sip:alice@atlanta.com?subject=project%20x&priority=urgent', 'sip:alice@atlanta.com?priority=urgent&subject=project%20x'],
    ['sip:alice@atlanta.com;lr', 'sip:alice@atlanta.com;LR'],
    ['sip:[2001:db8::10]', 'sip:[2001:DB8:0:0:0:0:0:10]'],
    ['sip:[::ffff:192.0.2.2]', 'sip:[::ffff:c000:202]'],
    ['sip:u@[2001:db8:::192.0.2.1]', 'sip:u@[2001:db8::192.0.2.1]'],
    ['tel:+1-201-555-0123', 'tel:+1.201.555.0123'],
    ['tel:7042;phone-context=example.com', 'tel:7042;Phone-Context=EXAMPLE.com'],
  ];
  const different: [string, string, string][] = [
    ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP', 'user is case-sensitive'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060', 'explicit default port differs from none'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp', 'transport present in one only'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp', 'port and transport'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting', 'headers are never ignored'],
    ['sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4', 'a host name never equals an address'],
    ['sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;security=off', 'a parameter in both must match'],
    ['sip:a@h;user=phone', 'sip:a@h', 'user param present in one only'],
    ['sip:a@h;maddr=1.2.3.4', 'sip:a@h;maddr=1.2.3.5', 'maddr differs'],
    ['sip:a@h;ttl=1', 'sip:a@h', 'ttl present in one only'],
    ['sip:a@h;method=INVITE', 'sip:a@h', 'method present in one only'],
    ['sip:a@h', 'sips:a@h', 'sip is not sips'],
    ['sip:a:p@h', 'sip:a@h', 'password present in one only'],
    ['sip:a@h?x=1', 'sip:a@h?x=2', 'header values differ'],
    ['sip:[2001:db8::10]', 'sip:[2001:db8::11]', 'different IPv6'],
    ['tel:+1-201-555-0123', 'tel:+1-201-555-0124', 'different numbers'],
    ['tel:7042;phone-context=a', 'tel:7042', 'tel params must be the same set'],
  ];
  for (const [a, b] of equal) {
    t.ok(uriEquals(parseUri(a), parseUri(b)), `${a} == ${b}`);
    t.ok(uriEquals(parseUri(b), parseUri(a)), `${b} == ${a} (symmetric)`);
  }
  for (const [a, b, why] of different) {
    t.notOk(uriEquals(parseUri(a), parseUri(b)), `${a} != ${b}: ${why}`);
    t.notOk(uriEquals(parseUri(b), parseUri(a)), `${b} != ${a}: ${why} (symmetric)`);
  }
});

t.test('formatHostPort and isIpv6Reference', async (t) => {
  t.equal(formatHostPort('example.com'), 'example.com');
  t.equal(formatHostPort('example.com', 5060), 'example.com:5060');
  t.equal(formatHostPort('192.0.2.1', 0), '192.0.2.1:0', 'port 0 is written');
  t.equal(formatHostPort('2001:db8::1'), '[2001:db8::1]', 'bare IPv6 is bracketed');
  t.equal(formatHostPort('[2001:db8::1]', 5070), '[2001:db8::1]:5070', 'bracketed IPv6 kept');
  t.ok(isIpv6Reference('[::1]'));
  t.notOk(isIpv6Reference('::1'));
  t.notOk(isIpv6Reference('example.com'));
  t.notOk(isIpv6Reference('[]'));
});


t.test('garbage input: only SipParseError is thrown, and whatever parses round-trips', async (t) => {
  const rnd = prng(3261);
  const alphabet = 'sip:tel+@[]:;?&=%0aF.-_ <>"\\\u0000\u00ff\u0100,/#!~*';
  const seeds = ['sip:', 'sips:', 'tel:', 'sip:u@[', 'sip:a@h;', 'sip:a@h?'];
  let accepted = 0;
  let rejected = 0;
  let roundTripFailures = 0;
  let foreign = 0;
  for (let n = 0; n < 3000; n++) {
    let s: string;
    if (rnd() < 0.5) {
      // a valid URI with one to three random edits
      s = valid[Math.floor(rnd() * valid.length)]![1];
      const edits = 1 + Math.floor(rnd() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rnd() * (s.length + 1));
        const ch = alphabet[Math.floor(rnd() * alphabet.length)]!;
        s = rnd() < 0.5 ? s.slice(0, at) + ch + s.slice(at) : s.slice(0, at) + s.slice(at + 1);
      }
    } else {
      s = rnd() < 0.7 ? seeds[Math.floor(rnd() * seeds.length)]! : '';
      const len = Math.floor(rnd() * 24);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    }
    try {
      const u = parseUri(s);
      accepted++;
      const again = parseUri(serializeUri(u));
      if (!uriEquals(u, again) || JSON.stringify(plain(u)) !== JSON.stringify(plain(again))) roundTripFailures++;
    } catch (err) {
      if (err instanceof SipParseError) rejected++;
      else foreign++;
    }
  }
  t.equal(foreign, 0, 'no exception other than SipParseError');
  t.equal(roundTripFailures, 0, 'every accepted URI round-trips');
  t.ok(accepted > 100 && rejected > 100, `both outcomes exercised (${accepted} accepted, ${rejected} rejected)`);
});

t.test('hostile long input is parsed in linear time', async (t) => {
  const user = 'a%41'.repeat(50_000);
  const start = process.hrtime.bigint();
  const u = parseUri(`sip:${user}@h;${'p=1;'.repeat(20_000)}x`);
  t.throws(() => parseUri('sip:[' + ':'.repeat(100_000) + ']'), { code: 'bad-uri' });
  t.throws(() => parseUri('sip:h' + ';'.repeat(100_000)), { code: 'bad-uri' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  t.equal(u.user!.length, 100_000);
  t.ok(ms < 1000, `took ${ms.toFixed(1)} ms`);
});
