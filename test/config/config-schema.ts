import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvFormats, { type FormatsPlugin } from 'ajv-formats';
import t from 'tap';
import { ConfigError, DEFAULT_CONFIG, resolveConfig } from '../../src/config/config.ts';
import { AJV_OPTIONS, CONFIG_SCHEMA, maskSecrets, schemaAt, schemaProblems, type JsonSchema } from '../../src/config/config-schema.ts';
import { configProblems, parseKeyPath } from '../../src/config/config-store.ts';
import { HANDSET_DEFAULTS } from '../../src/phone/handset.ts';
import { withIntercomDefaults } from '../../src/phone/intercom.ts';

const trunk = { name: 'provider', host: 'sip.provider.example', username: '4930123', password: 'secret' };

function resolveProblems(input: unknown): string[] {
  try {
    resolveConfig(input);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}
const schemaLines = (doc: unknown): string[] => schemaProblems(doc).map((p) => p.line);

/** Every node of the schema with its path (`items` as [0], a map's values as `.<key>`). */
function* walk(node: JsonSchema, path: string): Generator<[string, JsonSchema]> {
  yield [path, node];
  for (const [k, v] of Object.entries(node.properties ?? {})) yield* walk(v, path ? `${path}.${k}` : k);
  if (typeof node.additionalProperties === 'object') yield* walk(node.additionalProperties, `${path}.<key>`);
  if (typeof node.items === 'object') yield* walk(node.items, `${path}[0]`);
  for (const [i, v] of (node.prefixItems ?? []).entries()) yield* walk(v, `${path}[${i}]`);
  for (const v of [...(node.anyOf ?? []), ...(node.else ? [node.else] : [])]) yield* walk(v, path);
}

t.test('the schema compiles under ajv strict mode without a warning', async (t) => {
  const warnings: unknown[] = [];
  const log = (...args: unknown[]) => warnings.push(args);
  const ajv = new Ajv2020({ ...AJV_OPTIONS, strict: true, logger: { log, warn: log, error: log } });
  (ajvFormats as unknown as { default: FormatsPlugin }).default(ajv, ['ipv4', 'ipv6']);
  t.type(ajv.compile(CONFIG_SCHEMA), 'function');
  t.same(warnings, []);
});

t.test('every object in the schema refuses unknown keys', async (t) => {
  let objects = 0;
  for (const [path, node] of walk(CONFIG_SCHEMA, '')) {
    if (node.type !== 'object') continue;
    objects++;
    t.not(node.additionalProperties ?? true, true, `${path || '(root)'} has additionalProperties false or a value schema`);
    if (typeof node.additionalProperties === 'object') t.ok(node.propertyNames ?? node.additionalProperties, `${path} is a map`);
  }
  t.ok(objects >= 23, `${objects} objects checked`);
});

t.test('the schema accepts the defaults, and its defaults are the ones resolveConfig and the phone modules use', async (t) => {
  t.same(schemaLines(DEFAULT_CONFIG), [], 'DEFAULT_CONFIG');
  t.same(schemaLines(resolveConfig({})), [], 'resolveConfig({})');
  t.same(schemaLines(resolveConfig({ trunks: [trunk] })), [], 'a resolved trunk');
  const plain = resolveConfig({}) as unknown as Record<string, unknown>;
  // Defaults inside a list entry or an optional object show once the entry exists.
  const filled = resolveConfig({ trunks: [trunk], dialplan: [{ match: '1', to: 'echo' }], sip: { tls: { cert: '/c', key: '/k' } } }) as unknown as Record<string, unknown>;
  const phone: Record<string, unknown> = { handset: HANDSET_DEFAULTS, intercom: withIntercomDefaults({}) };
  // DialPlan applies these when a rule leaves them out (src/calls/dialplan.ts).
  const ruleDefaults: Record<string, unknown> = { 'dialplan[0].strip': 0, 'dialplan[0].prepend': '' };
  let compared = 0;
  for (const [path, node] of walk(CONFIG_SCHEMA, '')) {
    if (node.default === undefined || path.includes('<key>')) continue;
    const [section] = path.split(/[.[]/);
    const source = section! in phone ? phone : /\[0\]|\.tls\./.test(path) ? filled : plain;
    let value: unknown = source;
    for (const seg of parseKeyPath(path)) value = (value as Record<string | number, unknown> | undefined)?.[seg];
    if (path in ruleDefaults) value = ruleDefaults[path];
    t.same(node.default, value, `default of ${path}`);
    compared++;
  }
  t.ok(compared >= 60, `${compared} defaults compared`);
});

t.test('every key of DEFAULT_CONFIG has a schema and every schema section is in DEFAULT_CONFIG', async (t) => {
  const keys = (o: object, prefix: string): string[] =>
    Object.entries(o).flatMap(([k, v]) => {
      const key = prefix ? `${prefix}.${k}` : k;
      return typeof v === 'object' && v !== null && !Array.isArray(v) && !['extensions', 'hardware.inputPaths'].includes(key) ? [key, ...keys(v, key)] : [key];
    });
  for (const key of keys(DEFAULT_CONFIG, '')) t.ok(schemaAt(parseKeyPath(key)), key);
  t.same(Object.keys(CONFIG_SCHEMA.properties!).sort(), Object.keys(DEFAULT_CONFIG).sort());
});

t.test('docs/config.md: every example validates and every documented key has a schema', async (t) => {
  const doc = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
  const examples = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as unknown);
  t.ok(examples.length >= 10, `${examples.length} examples`);
  for (const [i, example] of examples.entries()) {
    t.same(resolveProblems(example), [], `example ${i + 1}: resolveConfig accepts it`);
    t.same(schemaLines(example), [], `example ${i + 1}: the schema accepts it`);
  }
  let section = '';
  let inKeyTable = false;
  let documented = 0;
  for (const line of doc.split('\n')) {
    const heading = /^## `(\w+)`/.exec(line);
    if (heading) section = heading[1]!;
    if (!line.startsWith('|')) inKeyTable = false;
    if (line.startsWith('| key ')) inKeyTable = true;
    const cell = /^\| ((?:`[^`]+`(?:, )?)+) \|/.exec(line);
    if (!cell || !inKeyTable) continue;
    for (const [, name] of cell[1]!.matchAll(/`([^`]+)`/g)) {
      const prefix = section === 'trunks' ? 'trunks[0].' : section === 'dialplan' ? 'dialplan[0].' : '';
      const key = prefix + name!;
      t.ok(schemaAt(parseKeyPath(key)), `documented key ${key}`);
      documented++;
    }
  }
  t.ok(documented >= 70, `${documented} documented keys`);
});

t.test('an unknown key is an error at every level', async (t) => {
  const cases: [at: string, doc: Record<string, unknown>][] = [
    ['', { dialPlan: [] }],
    ['sip', { sip: { dialPlan: 1 } }],
    ['sip.tls', { sip: { tls: { cert: '/c', key: '/k', dialPlan: 1 } } }],
    ['extensions.101', { extensions: { 101: { password: 'long-enough', dialPlan: 1 } } }],
    ['trunks[0]', { trunks: [{ ...trunk, dialPlan: 1 }] }],
    ['log', { log: { dialPlan: 1 } }],
    ['device', { device: { dialPlan: 1 } }],
    ['audio', { audio: { dialPlan: 1 } }],
    ['dtmf', { dtmf: { dialPlan: 1 } }],
    ['tones', { tones: { dialPlan: 1 } }],
    ['hardware', { hardware: { dialPlan: 1 } }],
    ['hardware.inputPaths', { hardware: { inputPaths: { dialPlan: '/dev/input/event0' } } }],
    ['handset', { handset: { dialPlan: 1 } }],
    ['intercom', { intercom: { dialPlan: 1 } }],
    ['intercom.door', { intercom: { door: { dialPlan: 1 } } }],
    ['dialplan[0]', { dialplan: [{ match: '1', to: 'echo', dialPlan: 1 }] }],
    ['media', { media: { dialPlan: 1 } }],
    ['security', { security: { dialPlan: 1 } }],
    ['registrar', { registrar: { dialPlan: 1 } }],
    ['calls', { calls: { dialPlan: 1 } }],
    ['discovery', { discovery: { dialPlan: 1 } }],
    ['metrics', { metrics: { dialPlan: 1 } }],
  ];
  for (const [at, doc] of cases) {
    const key = at ? `${at}.dialPlan` : 'dialPlan';
    t.ok(schemaLines(doc).includes(`${key} is not a known setting`), `schema: ${key}`);
    const lines = configProblems(doc);
    t.equal(lines.length, 1, `one line for ${key}: ${lines.join(' | ')}`);
    t.match(lines[0], new RegExp(`^${key.replace(/[.[\]]/g, '\\$&')}( is not a known setting| is not an input role)`));
    if (resolveProblems(doc).length === 0) t.comment(`resolveConfig accepts ${key}; the schema alone reports it`);
  }
});

// A value resolveConfig rejects; `schema: false` marks a rule JSON Schema cannot state (one value
// bounded by another, references between sections), left to resolveConfig.
const bad: [name: string, doc: unknown, schema?: false][] = [
  ['root not an object', []],
  ['sip.port too big', { sip: { port: 70000 } }],
  ['sip.port negative', { sip: { port: -1 } }],
  ['sip.port a string', { sip: { port: '5060' } }],
  ['sip.port fractional', { sip: { port: 5060.5 } }],
  ['sip.bind empty', { sip: { bind: '' } }],
  ['sip.domain with a space', { sip: { domain: 'a b' } }],
  ['sip.transports empty', { sip: { transports: [] } }],
  ['sip.transports tls', { sip: { transports: ['tls'] } }],
  ['sip.authAlgorithms twice', { sip: { authAlgorithms: ['MD5', 'MD5'] } }],
  ['sip.authAlgorithms unknown', { sip: { authAlgorithms: ['SHA-512'] } }],
  ['sip.userAgent two lines', { sip: { userAgent: 'a\nb' } }],
  ['sip.connectionIdleSeconds 0', { sip: { connectionIdleSeconds: 0 } }],
  ['sip.tls without key', { sip: { tls: { cert: '/c' } } }],
  ['sip.tls.port too big', { sip: { tls: { cert: '/c', key: '/k', port: 65536 } } }],
  ['extension number with letters', { extensions: { abc: { password: 'long-enough' } } }],
  ['extension password short', { extensions: { 101: { password: 'short' } } }],
  ['extension without password', { extensions: { 101: { name: 'Kitchen' } } }],
  ['extension name a number', { extensions: { 101: { password: 'long-enough', name: 5 } } }],
  ['trunks not a list', { trunks: {} }],
  ['trunk without host', { trunks: [{ name: 'p', username: 'u', password: 'x' }] }],
  ['trunk port too big', { trunks: [{ ...trunk, port: 70000 }] }],
  ['trunk transport sctp', { trunks: [{ ...trunk, transport: 'sctp' }] }],
  ['trunk name with a space', { trunks: [{ ...trunk, name: 'my provider' }] }],
  ['trunk empty password', { trunks: [{ ...trunk, password: '' }] }],
  ['trunk register "yes"', { trunks: [{ ...trunk, register: 'yes' }] }],
  ['trunk expires 59', { trunks: [{ ...trunk, expires: 59 }] }],
  ['trunk keepAlive 3601', { trunks: [{ ...trunk, keepAliveSeconds: 3601 }] }],
  ['trunk retry 0', { trunks: [{ ...trunk, retrySeconds: 0 }] }],
  ['trunk domain with _', { trunks: [{ ...trunk, domain: 'a_b' }] }],
  ['trunk names twice', { trunks: [trunk, trunk] }, false],
  ['trunk maxRetry below retry', { trunks: [{ ...trunk, retrySeconds: 60, maxRetrySeconds: 30 }] }, false],
  ['stateDir a number', { stateDir: 1 }],
  ['log.level trace', { log: { level: 'trace' } }],
  ['device.extension a number', { device: { extension: 100 } }],
  ['device.autoAnswer "no"', { device: { autoAnswer: 'no' } }],
  ['emergency number with a letter', { emergencyNumbers: ['11a'] }],
  ['media.rtpPorts three', { media: { rtpPorts: [10000, 10001, 10002] } }],
  ['media.rtpPorts below 1024', { media: { rtpPorts: [80, 2000] } }],
  ['media.rtpPorts reversed', { media: { rtpPorts: [20000, 10000] } }, false],
  ['media.rtpPorts 3 ports', { media: { rtpPorts: [10000, 10002] } }, false],
  ['media.bind a name', { media: { bind: 'localhost' } }],
  ['media.bind 256.0.0.1', { media: { bind: '256.0.0.1' } }],
  ['media.publicAddress with a space', { media: { publicAddress: 'a b' } }],
  ['media.stunServer with a path', { media: { stunServer: 'stun:/x' } }],
  ['media.stunServer port 0', { media: { stunServer: 'stun.example:0' } }, false],
  ['media.codecs empty', { media: { codecs: [] } }],
  ['media.codecs unknown', { media: { codecs: ['G729'] } }],
  ['media.rtpTimeoutSeconds 0', { media: { rtpTimeoutSeconds: 0 } }],
  ['security.allowedSources empty', { security: { allowedSources: [] } }],
  ['security.allowedSources a name', { security: { allowedSources: ['lan'] } }],
  ['security.allowedSources /33', { security: { allowedSources: ['10.0.0.0/33'] } }, false],
  ['security.maxAuthFailures 0', { security: { maxAuthFailures: 0 } }],
  ['security.banSeconds too long', { security: { banSeconds: 2_592_001 } }],
  ['registrar.qualifySeconds 3601', { registrar: { qualifySeconds: 3601 } }],
  ['registrar min above max', { registrar: { minExpires: 600, maxExpires: 300 } }, false],
  ['calls.minSessionExpires 89 (RFC 4028 §5)', { calls: { minSessionExpires: 89 } }],
  ['calls.sessionExpires below min', { calls: { sessionExpires: 100, minSessionExpires: 200 } }, false],
  ['audio.backend oss', { audio: { backend: 'oss' } }],
  ['audio.rate 22050', { audio: { rate: 22050 } }],
  ['audio.periodMs 101', { audio: { periodMs: 101 } }],
  ['audio.periodMs 7', { audio: { periodMs: 7 } }, false],
  ['audio.bufferMs below two periods', { audio: { bufferMs: 30 } }, false],
  ['audio.capture a shell string for alsa', { audio: { backend: 'alsa', capture: 'hw:0;reboot' } }],
  ['audio.capture empty', { audio: { capture: '' } }],
  ['dtmf.send inband', { dtmf: { send: 'inband' } }],
  ['dtmf.durationMs 39', { dtmf: { durationMs: 39 } }],
  ['dtmf.inband 1', { dtmf: { inband: 1 } }],
  ['tones.country DE', { tones: { country: 'DE' } }],
  ['board with a space', { board: 'pi intercom' }],
  ['hardware.backend sysfs', { hardware: { backend: 'sysfs' } }],
  ['hardware.inputPaths outside /dev', { hardware: { inputPaths: { hook: '/tmp/x' } } }],
  ['hardware.serialPort relative', { hardware: { serialPort: 'ttyUSB0' } }],
  ['handset.interDigitMs 499', { handset: { interDigitMs: 499 } }],
  ['handset.hotline with a letter', { handset: { hotline: '10a' } }],
  ['handset.ringFrequencyHz 60', { handset: { ringFrequencyHz: 60 } }],
  ['intercom.targets a number', { intercom: { targets: [101] } }],
  ['dialplan not a list', { dialplan: {} }],
  ['dialplan rule without to', { dialplan: [{ match: '1' }] }],
  ['dialplan to nowhere', { dialplan: [{ match: '1', to: 'voicemail' }] }],
  ['dialplan to a trunk not configured', { dialplan: [{ match: '1', to: 'trunk:other' }] }, false],
  ['dialplan bad digit map', { dialplan: [{ match: '0[1-9', to: 'echo' }] }, false],
  ['dialplan strip -1', { dialplan: [{ match: '1', to: 'echo', strip: -1 }] }],
  ['dialplan prepend letters', { dialplan: [{ match: '1', to: 'echo', prepend: 'ab' }] }],
  ['dialplan peer name empty', { dialplan: [{ match: '1', to: 'peer', peer: '' }] }],
  ['dialplan peer name without to peer', { dialplan: [{ match: '1', to: 'echo', peer: 'kitchen' }] }, false],
  ['tones.ringtone relative', { tones: { ringtone: 'ring.wav' } }],
  ['discovery.enabled "yes"', { discovery: { enabled: 'yes' } }],
  ['discovery.name with a dot', { discovery: { name: 'hall.way' } }],
  ['discovery.name 64 characters', { discovery: { name: 'x'.repeat(64) } }],
  ['discovery.name 63 characters but 126 bytes', { discovery: { name: 'ü'.repeat(63) } }, false],
  ['discovery.interface IPv6', { discovery: { interface: 'fe80::1' } }],
  ['discovery.interface loopback', { discovery: { interface: '127.0.0.1' } }, false],
  ['discovery.secret short', { discovery: { secret: 'short' } }],
  ['discovery.secret two lines', { discovery: { secret: 'long-enough\nsecret' } }],
  ['metrics.port too big', { metrics: { port: 65536 } }],
  ['metrics.bind a name', { metrics: { bind: 'localhost' } }],
  ['metrics.enabled 1', { metrics: { enabled: 1 } }],
];

t.test('the schema and resolveConfig agree on bad values', async (t) => {
  const disagreements: string[] = [];
  for (const [name, doc, schema] of bad) {
    const fromResolve = resolveProblems(doc);
    const fromSchema = schemaLines(doc);
    t.not(fromResolve.length, 0, `resolveConfig rejects: ${name}`);
    if (schema === false) t.same(fromSchema, [], `only resolveConfig can judge: ${name}`);
    else if (fromSchema.length === 0) disagreements.push(`${name}: resolveConfig says ${fromResolve.join(' | ')}; the schema accepts it`);
    t.same(configProblems(doc), fromResolve, `the store reports resolveConfig's lines: ${name}`);
  }
  for (const d of disagreements) t.comment(d);
  t.same(disagreements, [], 'no bad value passes the schema');
});

t.test('values both accept', async (t) => {
  const good: [name: string, doc: Record<string, unknown>][] = [
    ['IPv6 bind', { media: { bind: '::' } }],
    ['IPv4-mapped IPv6 bind', { media: { bind: '::ffff:192.0.2.1' } }],
    ['public address as a name', { media: { publicAddress: 'home.example.net' } }],
    ['stun [IPv6]:port', { media: { stunServer: '[2001:db8::1]:3478' } }],
    ['codecs in any case', { media: { codecs: ['g722', 'Opus', 'l16/16000'] } }],
    ['IPv6 sources', { security: { allowedSources: ['::/0', '2001:db8::/32', '198.51.100.7'] } }],
    ['alsa device by card name', { audio: { backend: 'alsa', capture: 'plughw:CARD=Device,DEV=0', playback: 'default' } }],
    ['file backend path', { audio: { backend: 'file', capture: '/tmp/in put.wav' } }],
    ['tls trunk without port', { trunks: [{ ...trunk, transport: 'tls' }] }],
    ['intercom in full', {
      intercom: {
        targets: ['101', { number: '102', timeoutMs: 15000 }], mode: 'parallel', groupNumber: '199', buttonWhileBusy: 'hangup',
        autoAnswer: false, autoAnswerDelayMs: 0, announceMs: 0, callerWhitelist: ['101'], relayMs: 500,
        door: { code: '12AB', perCaller: { 101: '9' }, allowedCallers: ['101'], maxWrong: 5, lockoutMs: 0, interDigitMs: 3000 },
      },
    }],
    ['handset in full', { handset: { interDigitMs: 3000, offHookWarningMs: 60000, failureToneMs: 20000, hotline: '*43', ringFrequencyHz: 25 } }],
    ['hardware in full', { hardware: { backend: 'gpiod', inputPaths: { hook: '/dev/input/event3' }, serialPort: '/dev/ttyUSB0' } }],
    ['discovery in full', { discovery: { enabled: false, name: 'Küche', interface: '192.168.1.20', secret: 'a shared LAN secret' } }],
    ['metrics in full', { metrics: { enabled: true, port: 0, bind: '::1' } }],
    ['a ringtone and a peer rule', { tones: { ringtone: '/usr/share/sounds/ring.wav' }, dialplan: [{ match: '8x', to: 'peer', peer: 'Hallway' }] }],
  ];
  for (const [name, doc] of good) {
    t.same(resolveProblems(doc), [], `resolveConfig: ${name}`);
    t.same(schemaLines(doc), [], `schema: ${name}`);
  }
});

t.test('intercom settings the schema checks for the intercom module', async (t) => {
  const cases: [doc: Record<string, unknown>, line: string][] = [
    [{ intercom: { mode: 'ring-all' } }, 'intercom.mode must be one of sequence, parallel (got "ring-all")'],
    [{ intercom: { targets: ['1', '2', '3', '4', '5', '6', '7'] } }, 'intercom.targets must have at most 6 entries (got ["1","2","3","4","5","6","7"])'],
    [{ intercom: { relayMs: 99 } }, 'intercom.relayMs must be >= 100 (got 99)'],
    [{ intercom: { door: { code: '12*4' } } }, 'intercom.door.code must be 1-8 keys of 0-9 and A-D'],
    [{ intercom: { door: { maxWrong: 0 } } }, 'intercom.door.maxWrong must be >= 1 (got 0)'],
    [{ intercom: { targets: [{ number: '101', timeoutMs: 999 }] } }, 'intercom.targets[0].timeoutMs must be >= 1000 (got 999)'],
    [{ intercom: { groupTimeoutMs: 300_001 } }, 'intercom.groupTimeoutMs must be <= 300000 (got 300001)'],
  ];
  for (const [doc, line] of cases) t.same(configProblems(doc), [line], line);
});

t.test('secrets are masked wherever they sit', async (t) => {
  const doc = {
    extensions: { 101: { password: 'kitchen-secret', name: 'Kitchen' } },
    trunks: [{ ...trunk }],
    intercom: { door: { code: '1234', perCaller: { 101: '99' } } },
    discovery: { name: 'Kitchen', secret: 'a shared LAN secret' },
  };
  t.same(maskSecrets(doc, CONFIG_SCHEMA), {
    extensions: { 101: { password: '***', name: 'Kitchen' } },
    trunks: [{ ...trunk, password: '***' }],
    intercom: { door: { code: '***', perCaller: { 101: '***' } } },
    discovery: { name: 'Kitchen', secret: '***' },
  });
  t.same(maskSecrets('secret', schemaAt(parseKeyPath('trunks[3].password'))), '***');
  t.same(schemaLines({ extensions: { 101: { password: 'short-1' } } }), ['extensions.101.password must be at least 8 characters long'], 'no password in a problem line');
  t.same(schemaLines({ discovery: { secret: 'short' } }), ['discovery.secret must be at least 12 characters long'], 'no secret in a problem line');
});
