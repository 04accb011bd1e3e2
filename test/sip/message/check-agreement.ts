import t from 'tap';
import { checkNameAddr, parseNameAddr } from '../../../src/sip/message/header-values.ts';
import { firstListValue, splitList } from '../../../src/sip/message/headers.ts';
import { parseMessage } from '../../../src/sip/message/parser.ts';
import { checkUri, parseUri } from '../../../src/sip/message/uri.ts';
import { fixture, fixtureNames } from '../../helpers/fixtures.ts';

/**
 * The validation-only scanners (checkNameAddr, checkUri, firstListValue) exist for speed; they
 * must accept and reject exactly what the building parsers do, with the same error, and agree
 * on what they return. Compared over hand-written values, every name-addr, URI and list value
 * of the RFC 4475 / RFC 5118 torture messages, and every prefix of each (truncations reach the
 * error paths).
 */

/** What a call did: its result, or the error's code, status and message. */
function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (e) {
    const err = e as { code?: string; status?: number; message?: string };
    return { code: err.code, status: err.status, message: err.message };
  }
}

const HAND_WRITTEN = [
  '"Alice" <sip:alice@atlanta.com>;tag=1928301774',
  '"\\"quoted\\" name" <sip:a@b>',
  '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8',
  'Bob  Smith <sip:bob@biloxi.com>',
  'caller<sip:caller@example.com>;tag=323',
  "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u00d1\u0080\";tag=_token~1'+`*%!-.",
  '<sip:carol@chicago.com;lr>',
  'sip:+19725552222@gw1.example.net;unknownparam',
  ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n',
  'sip:user@[2001:db8::10]',
  '<sip:a@192.0.2.1:5060;ob>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1',
  'sip:user@example.com?Route=%3Csip:sip.example.com%3E',
  '<tel:+1-201-555-0123>;tag=x',
  '<sip:a@b>;TAG=one;tag=two',
  '<sip:a@b>;tag;tag=two',
  '<SIP:A@Example.COM:5060;Transport=UDP>;Tag=X',
  '"Mr. J. User <sip:j.user@example.com>',
  '"Watson, Thomas" < sip:t.watson@example.org >',
  '<sip:a@b >',
  '<sip:a@ b>',
  '<sip:a@<b>',
  'Bell, Alexander <sip:a.g.bell@example.com>;tag=43',
  'Display Name sip:user@example.com',
  '"Alice" sip:a@b',
  '<sip:a@b>;tag=1 x',
  '<sip:a@b>, <sip:c@d>',
  '<sip:a@b>;tag=',
  '<>',
  '<sip:2001:db8::1>',
  '<sip:a..b>',
  '<sip:-a.b>',
  '<sip:a@b:99999>',
  '<sip:%zz@b>',
  'isbn:2983792873',
  '<http://www.example.com>;tag=3234233',
  '<http://www.exa mple.com>',
  '<name:John_Smith>',
];

/** Every value of the headers that hold name-addrs, and every Request-URI, in the fixtures. */
function fixtureValues(): { nameAddrs: string[]; uris: string[]; lists: string[] } {
  const nameAddrs: string[] = [];
  const uris: string[] = [];
  const lists: string[] = [];
  for (const corpus of ['rfc4475', 'rfc5118'] as const) {
    for (const name of fixtureNames(corpus)) {
      let msg;
      try {
        msg = parseMessage(fixture(corpus, name));
      } catch (e) {
        msg = (e as { partial?: ReturnType<typeof parseMessage> }).partial;
      }
      if (!msg) continue;
      if (msg.kind === 'request') uris.push(msg.uri);
      for (const f of msg.headers) {
        lists.push(f.value);
        if (['from', 'to', 'contact', 'route', 'record-route'].includes(f.key)) nameAddrs.push(...splitList(f.value));
      }
    }
  }
  return { nameAddrs, uris, lists };
}

const prefixes = (values: string[]): string[] => values.flatMap((v) => Array.from({ length: v.length + 1 }, (_, i) => v.slice(0, i)));

const fromFixtures = fixtureValues();

t.test('checkNameAddr accepts and rejects what parseNameAddr does, and finds the same tag', async (t) => {
  const inputs = [...new Set(prefixes([...HAND_WRITTEN, ...fromFixtures.nameAddrs]))];
  t.ok(fromFixtures.nameAddrs.length > 100, 'the fixtures supply name-addr values');
  let disagreements = 0;
  for (const input of inputs) {
    const parsed = outcome(() => parseNameAddr(input).params.get('tag'));
    const checked = outcome(() => checkNameAddr(input));
    if (JSON.stringify(parsed) !== JSON.stringify(checked)) {
      disagreements++;
      t.same(checked, parsed, `same verdict for ${JSON.stringify(input)}`);
    }
  }
  t.equal(disagreements, 0, `${inputs.length} inputs, no disagreement`);
  // The RFC 4475 failures the validator must still catch.
  t.throws(() => checkNameAddr('"Mr. J. User <sip:j.user@example.com>'), { code: 'bad-name-addr' }, 'quotbal');
  t.throws(() => checkNameAddr('"Watson, Thomas" < sip:t.watson@example.org >'), { code: 'bad-name-addr' }, 'badaspec');
  t.throws(() => checkNameAddr('Bell, Alexander <sip:a.g.bell@example.com>;tag=43'), { code: 'bad-name-addr' }, 'baddn');
});

t.test('checkUri accepts and rejects what parseUri does', async (t) => {
  const uriParts = HAND_WRITTEN.map((v) => v.slice(v.indexOf('<') + 1, v.includes('>') ? v.indexOf('>') : undefined));
  const inputs = [...new Set(prefixes([...uriParts, ...fromFixtures.uris]))];
  let disagreements = 0;
  for (const input of inputs) {
    const parsed = outcome(() => (parseUri(input), true));
    const checked = outcome(() => (checkUri(input), true));
    if (JSON.stringify(parsed) !== JSON.stringify(checked)) {
      disagreements++;
      t.same(checked, parsed, `same verdict for ${JSON.stringify(input)}`);
    }
  }
  t.equal(disagreements, 0, `${inputs.length} inputs, no disagreement`);
});

t.test('firstListValue is the first element splitList gives', async (t) => {
  const inputs = [...fromFixtures.lists, '', ' , ', ', a', '"x, y" <sip:a>, b', '<sip:a,b>, c', ' ,, v ,w'];
  let disagreements = 0;
  for (const input of inputs) {
    if (firstListValue(input) !== splitList(input)[0]) {
      disagreements++;
      t.equal(firstListValue(input), splitList(input)[0], JSON.stringify(input));
    }
  }
  t.equal(disagreements, 0, `${inputs.length} inputs, no disagreement`);
});
