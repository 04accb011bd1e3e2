import t from 'tap';
import { canAdvance, encodeDialogInfo, type DialogInfoDocument, type DialogInfoState } from '../../src/presence/dialog-info.ts';
import { encodePidf, tupleIdFor } from '../../src/presence/pidf.ts';
import { escapeXml } from '../../src/presence/xml-escape.ts';
import { formatSubscriptionState, grantExpires, type SubscriptionStateValue } from '../../src/presence/subscription.ts';

/** An element of the small XML 1.0 checker below. */
interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9._:-]*/;

function decodeRefs(s: string, where: number): string {
  if (/[<]/.test(s)) throw new Error(`'<' in character data or attribute near ${where}`);
  return s.replace(/&([^;]*);|&/g, (m, ref: string | undefined) => {
    if (ref === undefined) throw new Error(`bare '&' near ${where}`);
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (ref in named) return named[ref]!;
    const num = /^#(x[0-9A-Fa-f]+|[0-9]+)$/.exec(ref);
    if (!num) throw new Error(`unknown entity ${m} near ${where}`);
    return String.fromCodePoint(num[1]!.startsWith('x') ? parseInt(num[1]!.slice(1), 16) : parseInt(num[1]!, 10));
  });
}

/**
 * Parses a document the way an XML 1.0 processor checks well-formedness (§2.1): one root,
 * properly nested and matching tags, unique quoted attributes, only the predefined entities and
 * character references, no forbidden characters. Enough for the documents under test.
 */
function parseXml(doc: string): XmlElement {
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(doc)) throw new Error('character not allowed in XML 1.0');
  let i = 0;
  const decl = /^<\?xml version="1\.0"( encoding="UTF-8")?\?>\s*/.exec(doc);
  if (decl) i = decl[0].length;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (i < doc.length) {
    if (doc.startsWith('</', i)) {
      const m = /^<\/([A-Za-z_][A-Za-z0-9._:-]*)\s*>/.exec(doc.slice(i));
      if (!m) throw new Error(`bad end tag at ${i}`);
      const open = stack.pop();
      if (open?.name !== m[1]) throw new Error(`</${m[1]}> closes <${open?.name}> at ${i}`);
      i += m[0].length;
      continue;
    }
    if (doc[i] === '<') {
      i += 1;
      const name = NAME.exec(doc.slice(i))?.[0];
      if (!name) throw new Error(`bad start tag at ${i}`);
      i += name.length;
      const el: XmlElement = { name, attrs: {}, children: [], text: '' };
      for (;;) {
        const ws = /^\s*/.exec(doc.slice(i))![0];
        i += ws.length;
        if (doc.startsWith('/>', i) || doc[i] === '>') break;
        if (ws.length === 0) throw new Error(`no space before attribute at ${i}`);
        const a = /^([A-Za-z_][A-Za-z0-9._:-]*)\s*=\s*("([^"]*)"|'([^']*)')/.exec(doc.slice(i));
        if (!a) throw new Error(`bad attribute at ${i}`);
        if (a[1]! in el.attrs) throw new Error(`attribute ${a[1]} repeated at ${i}`);
        el.attrs[a[1]!] = decodeRefs(a[3] ?? a[4]!, i);
        i += a[0].length;
      }
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) throw new Error(`second root element <${name}>`);
      else root = el;
      if (doc.startsWith('/>', i)) i += 2;
      else {
        i += 1;
        stack.push(el);
      }
      continue;
    }
    const end = doc.indexOf('<', i);
    const chunk = doc.slice(i, end === -1 ? doc.length : end);
    const top = stack[stack.length - 1];
    if (top) top.text += decodeRefs(chunk, i);
    else if (chunk.trim() !== '') throw new Error(`text outside the root at ${i}`);
    i += chunk.length;
  }
  if (stack.length > 0) throw new Error(`<${stack[stack.length - 1]!.name}> not closed`);
  if (!root) throw new Error('no root element');
  return root;
}

function child(el: XmlElement, name: string): XmlElement {
  const c = el.children.find((x) => x.name === name);
  if (!c) throw new Error(`<${el.name}> has no <${name}>`);
  return c;
}

t.test('the checker refuses documents that are not well-formed', async (t) => {
  const bad: [string, string][] = [
    ['unclosed root', '<a><b></b>'],
    ['crossed tags', '<a><b></a></b>'],
    ['two roots', '<a/><b/>'],
    ['bare ampersand', '<a>x & y</a>'],
    ['unknown entity', '<a>&nbsp;</a>'],
    ['repeated attribute', '<a x="1" x="2"/>'],
    ['unquoted attribute', '<a x=1/>'],
    ['less-than in attribute', '<a x="<"/>'],
    ['control character', '<a>\u0001</a>'],
  ];
  for (const [name, doc] of bad) t.throws(() => parseXml(doc), name);
  t.same(parseXml('<a x="&amp;&#60;"><b>&#x41;&apos;</b></a>').children[0]!.text, "A'");
});

// Adapted from the first example of RFC 4235 §5 (Alice's INVITE in "trying"), in this encoder's
// layout: one attribute list per line, an encoding declaration.
const RFC4235_TRYING = `<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774" direction="initiator">
    <state>trying</state>
  </dialog>
</dialog-info>
`;

// A confirmed dialog with both participants and a rejected one (RFC 4235 §4.1.2 event/code,
// §4.1.3 duration, §4.1.6 local/remote), hand-written.
const CONFIRMED_AND_REJECTED = `<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="full" entity="sip:101@hookswitch.local">
  <dialog id="call-1" call-id="c1@x" local-tag="lt" remote-tag="rt" direction="recipient">
    <state>confirmed</state>
    <duration>42</duration>
    <local>
      <identity display="Door">sip:101@hookswitch.local</identity>
      <target uri="sip:101@192.0.2.1:5060"/>
    </local>
    <remote>
      <identity display="Bob &amp; &quot;Co&quot; &lt;x&gt;">sip:102@hookswitch.local</identity>
    </remote>
  </dialog>
  <dialog id="call-2" direction="initiator">
    <state event="rejected" code="486">terminated</state>
  </dialog>
</dialog-info>
`;

t.test('dialog-info documents encode like the hand-written ones (RFC 4235 §4, §5)', async (t) => {
  const cases: { name: string; doc: DialogInfoDocument; expected: string }[] = [
    {
      name: 'RFC 4235 §5 trying',
      doc: {
        entity: 'sip:alice@example.com',
        version: 0,
        state: 'full',
        dialogs: [{ id: 'as7d900as8', callId: 'a84b4c76e66710', localTag: '1928301774', direction: 'initiator', state: 'trying' }],
      },
      expected: RFC4235_TRYING,
    },
    {
      name: 'confirmed with participants, rejected with code',
      doc: {
        entity: 'sip:101@hookswitch.local',
        version: 7,
        state: 'full',
        dialogs: [
          {
            id: 'call-1',
            callId: 'c1@x',
            localTag: 'lt',
            remoteTag: 'rt',
            direction: 'recipient',
            state: 'confirmed',
            durationSeconds: 42.9,
            local: { identity: 'sip:101@hookswitch.local', display: 'Door', target: 'sip:101@192.0.2.1:5060' },
            remote: { identity: 'sip:102@hookswitch.local', display: 'Bob & "Co" <x>' },
          },
          { id: 'call-2', direction: 'initiator', state: 'terminated', event: 'rejected', code: 486 },
        ],
      },
      expected: CONFIRMED_AND_REJECTED,
    },
    {
      name: 'no dialogs: an empty full document',
      doc: { entity: 'sip:device@hookswitch.local', version: 3, state: 'full', dialogs: [] },
      expected: `<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:device@hookswitch.local"/>
`,
    },
  ];
  for (const c of cases) {
    const xml = encodeDialogInfo(c.doc);
    t.equal(xml, c.expected, c.name);
    const root = parseXml(xml);
    t.equal(root.name, 'dialog-info', `${c.name}: root`);
    t.equal(root.attrs.version, String(c.doc.version), `${c.name}: version`);
    t.same(
      root.children.map((d) => [d.attrs.id, child(d, 'state').text]),
      c.doc.dialogs.map((d) => [d.id, d.state]),
      `${c.name}: dialogs and states parse back`,
    );
  }
  const remote = child(child(parseXml(CONFIRMED_AND_REJECTED).children[0]!, 'remote'), 'identity');
  t.equal(remote.attrs.display, 'Bob & "Co" <x>', 'the display name parses back unchanged');
});

t.test('dialog-info refuses caller bugs with a precise error', async (t) => {
  const base: DialogInfoDocument = { entity: 'sip:a@b', version: 0, state: 'full', dialogs: [] };
  const bad: [string, DialogInfoDocument, RegExp][] = [
    ['negative version', { ...base, version: -1 }, /not an unsigned 32-bit integer/],
    ['version past 32 bits', { ...base, version: 2 ** 32 }, /not an unsigned 32-bit integer/],
    ['fractional version', { ...base, version: 1.5 }, /not an unsigned 32-bit integer/],
    ['empty id', { ...base, dialogs: [{ id: '', state: 'trying' }] }, /id is empty/],
    ['repeated id', { ...base, dialogs: [{ id: 'x', state: 'trying' }, { id: 'x', state: 'early' }] }, /appears twice/],
    ['code 99', { ...base, dialogs: [{ id: 'x', state: 'terminated', code: 99 }] }, /not a SIP status/],
  ];
  for (const [name, doc, message] of bad) t.throws(() => encodeDialogInfo(doc), { message }, name);
  t.equal(encodeDialogInfo({ ...base, version: 2 ** 32 - 1 }).includes('version="4294967295"'), true, 'the largest version encodes');
});

t.test('the dialog FSM only moves forward (RFC 4235 §3.7.1)', async (t) => {
  const states: DialogInfoState[] = ['trying', 'proceeding', 'early', 'confirmed', 'terminated'];
  const allowed = new Set([
    'trying>trying', 'trying>proceeding', 'trying>early', 'trying>confirmed', 'trying>terminated',
    'proceeding>proceeding', 'proceeding>early', 'proceeding>confirmed', 'proceeding>terminated',
    'early>early', 'early>confirmed', 'early>terminated',
    'confirmed>confirmed', 'confirmed>terminated',
  ]);
  for (const from of states) {
    for (const to of states) t.equal(canAdvance(from, to), allowed.has(`${from}>${to}`), `${from} -> ${to}`);
  }
});

t.test('XML escaping covers the five entities, line ends and forbidden characters', async (t) => {
  const cases: [string, string, string][] = [
    ['plain', 'sip:101@example.com', 'sip:101@example.com'],
    ['markup', `<a href="x">'&'</a>`, '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;'],
    ['line ends and tab', 'a\tb\nc\rd', 'a&#9;b&#10;c&#13;d'],
    ['NUL and ESC', 'a\u0000b\u001bc', 'a\uFFFDb\uFFFDc'],
    ['lone surrogates', 'x\uD800y\uDC00z', 'x\uFFFDy\uFFFDz'],
    ['pair kept', 'smile \uD83D\uDE00', 'smile \uD83D\uDE00'],
    ['U+FFFF', 'a\uFFFF', 'a\uFFFD'],
  ];
  for (const [name, input, expected] of cases) {
    t.equal(escapeXml(input), expected, name);
    const back = parseXml(`<a v="${escapeXml(input)}">${escapeXml(input)}</a>`);
    t.equal(back.text, back.attrs.v, `${name}: content and attribute decode alike`);
  }
  t.equal(parseXml(`<a v="${escapeXml('a\tb\nc')}"/>`).attrs.v, 'a\tb\nc', 'whitespace in attributes survives');
});

// Adapted from the PIDF example of RFC 3863 (entity pres:someone@example.com, one tuple, basic
// open, a contact), without the contact priority.
const PIDF_OPEN = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:someone@example.com">
  <tuple id="sg89ae">
    <status>
      <basic>open</basic>
    </status>
    <contact>tel:+09012345678</contact>
  </tuple>
</presence>
`;

t.test('PIDF documents (RFC 3863)', async (t) => {
  t.equal(encodePidf({ entity: 'pres:someone@example.com', tupleId: 'sg89ae', basic: 'open', contact: 'tel:+09012345678' }), PIDF_OPEN, 'RFC 3863 example');
  const closed = encodePidf({ entity: 'sip:101@h.local', tupleId: tupleIdFor('101'), basic: 'closed', note: 'Away & <busy>' });
  const root = parseXml(closed);
  t.equal(root.attrs.xmlns, 'urn:ietf:params:xml:ns:pidf', 'namespace');
  t.equal(child(child(child(root, 'tuple'), 'status'), 'basic').text, 'closed', 'basic closed');
  t.equal(child(child(root, 'tuple'), 'note').text, 'Away & <busy>', 'note escaped and parsed back');
  t.notOk(closed.includes('<contact>'), 'no contact when none is given');
  const ids: [string, string][] = [['101', 't-101'], ['door station', 't-door_station'], ['a:b/c', 't-a_b_c']];
  for (const [resource, id] of ids) t.equal(tupleIdFor(resource), id, `tuple id for ${resource}`);
  for (const bad of ['1abc', 'a:b', '', 'a b']) {
    t.throws(() => encodePidf({ entity: 'sip:a@b', tupleId: bad, basic: 'open' }), { message: /not an XML ID/ }, `tuple id ${JSON.stringify(bad)}`);
  }
});

t.test('granted durations (RFC 6665 §4.2.1.1, §4.2.1.4)', async (t) => {
  const limits = { minExpires: 60, maxExpires: 3600, defaultExpires: 3600 };
  const cases: [string, number | undefined, ReturnType<typeof grantExpires>][] = [
    ['absent: the package default', undefined, { ok: true, expires: 3600 }],
    ['within limits', 600, { ok: true, expires: 600 }],
    ['at the minimum', 60, { ok: true, expires: 60 }],
    ['too brief: 423', 59, { ok: false, minExpires: 60 }],
    ['one second: 423', 1, { ok: false, minExpires: 60 }],
    ['zero: unsubscribe or fetch', 0, { ok: true, expires: 0 }],
    ['too long: shortened, never lengthened', 86400, { ok: true, expires: 3600 }],
  ];
  for (const [name, requested, expected] of cases) t.same(grantExpires(requested, limits), expected, name);
  t.same(grantExpires(undefined, { ...limits, defaultExpires: 7200 }), { ok: true, expires: 3600 }, 'a default above the maximum is shortened');
});

t.test('Subscription-State values (RFC 6665 §8.2.3)', async (t) => {
  const cases: [SubscriptionStateValue, string][] = [
    [{ state: 'active', expires: 3600 }, 'active;expires=3600'],
    [{ state: 'terminated', reason: 'timeout' }, 'terminated;reason=timeout'],
    [{ state: 'terminated', reason: 'noresource' }, 'terminated;reason=noresource'],
    [{ state: 'terminated', reason: 'deactivated' }, 'terminated;reason=deactivated'],
    [{ state: 'terminated', reason: 'rejected' }, 'terminated;reason=rejected'],
  ];
  for (const [value, expected] of cases) t.equal(formatSubscriptionState(value), expected, expected);
});
