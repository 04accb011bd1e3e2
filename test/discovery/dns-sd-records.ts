import t from 'tap';
import {
  buildTxt,
  decodeTxt,
  instanceName,
  mdnsHostName,
  peerInfo,
  sipUri,
  txtFromObject,
  truncateUtf8,
  type AdvertisedIdentity,
  type ServiceSighting,
} from '../../src/discovery/dns-sd-records.ts';

const enc = new TextEncoder();
const strings = (...s: string[]): Uint8Array[] => s.map((x) => enc.encode(x));
const byteLength = (s: string): number => enc.encode(s).length;

const identity: AdvertisedIdentity = {
  instanceName: 'hookswitch on kitchen',
  instanceId: '6f1c1d2e-4b7a-4e0f-9a51-2f0e8c7d1a10',
  version: '0.6.0',
  port: 5060,
  contact: 'sip:100@192.168.1.20:5060',
  extensions: ['102', '101', '1000'],
  deviceExtension: '100',
};

t.test('instance names: configured, default from the host name, dots and length', async (t) => {
  const cases: [string, string, string, string][] = [
    ['configured wins', 'Hall phone', 'pi', 'Hall phone'],
    ['default from the host name', '', 'kitchen', 'hookswitch on kitchen'],
    ['only the first label of a dotted host name', '', 'kitchen.home.arpa', 'hookswitch on kitchen'],
    ['odd host name characters become dashes', '', 'my_pi', 'hookswitch on my-pi'],
    ['an empty host name still gives a name', '', '', 'hookswitch on hookswitch'],
    ['dots become dashes as bonjour-service publishes them', 'v1.2', 'pi', 'v1-2'],
    ['cut to 63 bytes', '', 'a'.repeat(80), `hookswitch on ${'a'.repeat(49)}`],
    ['cut on a character boundary', 'ü'.repeat(40), 'pi', 'ü'.repeat(31)],
  ];
  for (const [name, configured, host, expected] of cases) {
    const got = instanceName(configured, host);
    t.equal(got, expected, name);
    t.ok(byteLength(got) <= 63, `${name}: at most 63 bytes`);
  }
  t.equal(truncateUtf8('añb', 2), 'a', 'a two-byte character that does not fit is left out whole');
});

t.test('host target and SIP URIs', async (t) => {
  t.equal(mdnsHostName('kitchen.home.arpa'), 'kitchen.local');
  t.equal(mdnsHostName('vm'), 'vm.local');
  t.equal(sipUri('100', '10.0.0.1', 5060), 'sip:100@10.0.0.1:5060');
  t.equal(sipUri('100', 'fe80::1', 5062), 'sip:100@[fe80::1]:5062');
  t.equal(sipUri('100', '[fe80::1]', 5062), 'sip:100@[fe80::1]:5062');
});

t.test('the TXT record: sipsimple keys first, hookswitch keys, no secrets', async (t) => {
  const txt = buildTxt(identity);
  t.same(Object.keys(txt), ['txtvers', 'name', 'contact', 'instance_id', 'product', 'version', 'exts', 'dev']);
  t.same(txt, {
    txtvers: '1',
    name: 'hookswitch on kitchen',
    contact: '<sip:100@192.168.1.20:5060>',
    instance_id: identity.instanceId,
    product: 'hookswitch',
    version: '0.6.0',
    exts: '101,102,1000',
    dev: '100',
  });
  const { deviceExtension: _d, ...noDevice } = identity;
  t.notOk('dev' in buildTxt(noDevice), 'no dev key without a device');
  t.equal(buildTxt({ ...identity, extensions: [] }).exts, '', 'no extensions: empty list');
});

t.test('each TXT string stays within 255 bytes (RFC 6763 §6.1)', async (t) => {
  const many = Array.from({ length: 200 }, (_, i) => String(1000 + i));
  const txt = buildTxt({ ...identity, extensions: many, instanceName: 'n'.repeat(63) });
  for (const [k, v] of Object.entries(txt)) t.ok(byteLength(`${k}=${v}`) <= 255, `${k} fits`);
  const listed = txt.exts!.split(',');
  t.same(listed, many.slice(0, listed.length), 'whole numbers, lowest first, none cut in half');
  t.equal(listed.length, 50, '50 four-digit numbers fit in "exts=" plus 250 bytes');
});

t.test('decoding TXT strings (RFC 6763 §6.3-6.5)', async (t) => {
  const cases: [string, Uint8Array[], [string, string | true][]][] = [
    ['key=value', strings('txtvers=1', 'contact=<sip:a@b>'), [['txtvers', '1'], ['contact', '<sip:a@b>']]],
    ['keys are case-insensitive', strings('Product=hookswitch'), [['product', 'hookswitch']]],
    ['the first of a repeated key wins', strings('a=1', 'A=2'), [['a', '1']]],
    ['a key without = is a boolean attribute', strings('secure'), [['secure', true]]],
    ['key= is an empty value', strings('name='), [['name', '']]],
    ['the value keeps later = signs', strings('x=a=b'), [['x', 'a=b']]],
    ['empty strings and empty keys are ignored', strings('', '=v', 'k=v'), [['k', 'v']]],
    ['UTF-8 values', strings('name=Küche'), [['name', 'Küche']]],
    ['invalid UTF-8 does not throw', [Uint8Array.of(0x6e, 0x3d, 0xff)], [['n', '\ufffd']]],
  ];
  for (const [name, input, expected] of cases) t.same([...decodeTxt(input)], expected, name);
  t.same([...txtFromObject({ TxtVers: '1', flag: true, n: 5 })], [['txtvers', '1'], ['flag', true], ['n', '5']], 'from an object');
});

function sighting(txt: Record<string, string>, over: Partial<ServiceSighting> = {}): ServiceSighting {
  return {
    type: 'sipuri',
    instance: 'hookswitch on hall',
    host: 'hall.local',
    port: 5060,
    addresses: ['10.0.0.2', '10.0.0.2'],
    txt: decodeTxt(strings(...Object.entries(txt).map(([k, v]) => `${k}=${v}`))),
    ttlSeconds: 120,
    ...over,
  };
}

t.test('our own TXT read back as a peer', async (t) => {
  const info = peerInfo(sighting(buildTxt(identity)));
  t.same(info, {
    name: 'hookswitch on hall',
    host: 'hall.local',
    addresses: ['10.0.0.2'],
    port: 5060,
    contact: 'sip:100@192.168.1.20:5060',
    instanceId: identity.instanceId,
    isHookswitch: true,
    version: '0.6.0',
    extensions: ['101', '102', '1000'],
    deviceExtension: '100',
  });
});

t.test('peer TXT from others and from the network at large', async (t) => {
  const cases: [string, Record<string, string>, Partial<ReturnType<typeof peerInfo>>][] = [
    [
      'a Blink client',
      { txtvers: '1', name: 'Alice', contact: '<sip:alice@10.0.0.7:5060;transport=udp>', instance_id: 'abc' },
      { contact: 'sip:alice@10.0.0.7:5060;transport=udp', instanceId: 'abc', isHookswitch: false, extensions: [] },
    ],
    ['a contact without brackets', { contact: 'sips:bob@host' }, { contact: 'sips:bob@host' }],
    ['a contact that is not a SIP URI is dropped', { contact: '<http://evil>' }, { contact: undefined }],
    ['a contact with spaces is dropped', { contact: '<sip:a b@c>' }, { contact: undefined }],
    ['product compared case-insensitively', { product: 'HookSwitch' }, { isHookswitch: true }],
    ['another product', { product: 'baresip' }, { isHookswitch: false }],
    ['non-digit extensions are dropped', { exts: '101,abc,,1;2,103' }, { extensions: ['101', '103'] }],
    ['at most 100 extensions', { exts: Array.from({ length: 150 }, (_, i) => String(i)).join(',') }, { extensions: Array.from({ length: 100 }, (_, i) => String(i)) }],
    ['a non-digit dev is dropped', { dev: 'x' }, { deviceExtension: undefined }],
    ['an overlong instance_id is dropped', { instance_id: 'x'.repeat(65) }, { instanceId: undefined }],
    ['a version with a control character is dropped', { version: '1\u0007' }, { version: undefined }],
  ];
  for (const [name, txt, expected] of cases) {
    const info = peerInfo(sighting(txt)) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(expected)) t.same(info[k], v, `${name}: ${k}`);
  }
});
