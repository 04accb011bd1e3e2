import t from 'tap';
import { ConfigError, DEFAULT_CONFIG, isCidr, isIpAddress, resolveConfig, type Config } from '../../src/config/config.ts';

const trunk = { name: 'provider', host: 'sip.provider.example', username: '4930123', password: 'secret' };
const ext = { password: 'long-enough-secret' };

function problems(input: unknown): string[] {
  try {
    resolveConfig(input);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

t.test('defaults of the call, media and security settings', async (t) => {
  const cfg = resolveConfig({});
  t.same(cfg.device, { extension: '100', autoAnswer: true });
  t.same(cfg.dialplan, [{ match: '*43', to: 'echo' }]);
  t.same(cfg.emergencyNumbers, ['112', '911', '999']);
  t.same(cfg.media, { rtpPorts: [10000, 10999], bind: '0.0.0.0', rtpTimeoutSeconds: 60, codecs: ['G722', 'opus', 'PCMU', 'PCMA', 'L16/16000'], srtp: 'optional', srtpOverPlainSignalling: false });
  t.same(cfg.audio, { backend: 'null', capture: 'default', playback: 'default', rate: 48000, periodMs: 20, bufferMs: 80, jitterMinMs: 20, jitterMaxMs: 200 });
  t.same(cfg.dtmf, { send: 'rfc4733', durationMs: 100, gapMs: 100, inband: true });
  t.same(cfg.tones, { country: 'us' });
  t.same(cfg.security, {
    allowedSources: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '127.0.0.0/8', '::1/128', 'fc00::/7', 'fe80::/10'],
    maxAuthFailures: 10,
    banSeconds: 900,
  });
  t.same(cfg.registrar, { minExpires: 60, maxExpires: 3600, defaultExpires: 3600, qualifySeconds: 30 });
  t.same(cfg.calls, { noAnswerSeconds: 60, sessionExpires: 1800, minSessionExpires: 90 });
  t.same(resolveConfig({ trunks: [trunk] }).trunks[0], {
    ...trunk, port: 5060, transport: 'udp', register: true, expires: 600, keepAliveSeconds: 30, retrySeconds: 30, maxRetrySeconds: 600,
  });
  t.not(cfg.security.allowedSources, DEFAULT_CONFIG.security.allowedSources, 'the defaults are copied, not shared');
});

t.test('good values are taken', async (t) => {
  const cases: [name: string, input: Record<string, unknown>, pick: (c: Config) => unknown, expected: unknown][] = [
    ['device extension', { device: { extension: '200' } }, (c) => c.device.extension, '200'],
    ['emergency numbers, duplicates dropped', { emergencyNumbers: ['110', '112', '110'] }, (c) => c.emergencyNumbers, ['110', '112']],
    ['no emergency numbers', { emergencyNumbers: [] }, (c) => c.emergencyNumbers, []],
    ['rtp ports: the smallest range', { media: { rtpPorts: [20000, 20003] } }, (c) => c.media.rtpPorts, [20000, 20003]],
    ['media bind IPv6', { media: { bind: '::' } }, (c) => c.media.bind, '::'],
    ['public address as IP', { media: { publicAddress: '203.0.113.7' } }, (c) => c.media.publicAddress, '203.0.113.7'],
    ['public address as host name', { media: { publicAddress: 'home.example.net' } }, (c) => c.media.publicAddress, 'home.example.net'],
    ['stun host:port', { media: { stunServer: 'stun.example.org:3478' } }, (c) => c.media.stunServer, 'stun.example.org:3478'],
    ['stun [IPv6]:port', { media: { stunServer: '[2001:db8::1]:3478' } }, (c) => c.media.stunServer, '[2001:db8::1]:3478'],
    ['rtp timeout', { media: { rtpTimeoutSeconds: 30 } }, (c) => c.media.rtpTimeoutSeconds, 30],
    ['allowed sources', { security: { allowedSources: ['0.0.0.0/0', '::/0', '2001:db8::/32', '::ffff:192.0.2.0/120', '198.51.100.7', '2001:db8::7'] } }, (c) => c.security.allowedSources, ['0.0.0.0/0', '::/0', '2001:db8::/32', '::ffff:192.0.2.0/120', '198.51.100.7', '2001:db8::7']],
    ['ban settings', { security: { maxAuthFailures: 3, banSeconds: 60 } }, (c) => [c.security.maxAuthFailures, c.security.banSeconds], [3, 60]],
    ['registrar lifetimes', { registrar: { minExpires: 120, maxExpires: 600, defaultExpires: 300, qualifySeconds: 0 } }, (c) => c.registrar, { minExpires: 120, maxExpires: 600, defaultExpires: 300, qualifySeconds: 0 }],
    ['call timers', { calls: { noAnswerSeconds: 20, sessionExpires: 600, minSessionExpires: 120 } }, (c) => c.calls, { noAnswerSeconds: 20, sessionExpires: 600, minSessionExpires: 120 }],
    ['trunk timers and domain', { trunks: [{ ...trunk, keepAliveSeconds: 0, retrySeconds: 5, maxRetrySeconds: 5, domain: 'Provider.Example' }] }, (c) => {
      const { keepAliveSeconds, retrySeconds, maxRetrySeconds, domain } = c.trunks[0]!;
      return { keepAliveSeconds, retrySeconds, maxRetrySeconds, domain };
    }, { keepAliveSeconds: 0, retrySeconds: 5, maxRetrySeconds: 5, domain: 'provider.example' }],
    ['a dial plan replaces the default rules', {
      trunks: [trunk],
      extensions: { '101': ext },
      dialplan: [
        { match: '*43', to: 'echo' },
        { match: '0[1-9]x.', to: 'trunk:provider', strip: 1 },
        { match: '00x.', to: 'trunk:provider', strip: 2, prepend: '+' },
        { match: '/7\\d{2}/', to: 'extension:101' },
        { match: '*0', to: 'extension:100' },
        { match: '*1', to: 'device' },
        { match: '*8', to: 'peer' },
      ],
    }, (c) => c.dialplan, [
      { match: '*43', to: 'echo' },
      { match: '0[1-9]x.', to: 'trunk:provider', strip: 1 },
      { match: '00x.', to: 'trunk:provider', strip: 2, prepend: '+' },
      { match: '/7\\d{2}/', to: 'extension:101' },
      { match: '*0', to: 'extension:100' },
      { match: '*1', to: 'device' },
      { match: '*8', to: 'peer' },
    ]],
    ['extension targets are not checked while extensions come from the generated defaults', { dialplan: [{ match: '9', to: 'extension:103' }] }, (c) => c.dialplan, [{ match: '9', to: 'extension:103' }]],
    ['an empty dial plan', { dialplan: [] }, (c) => c.dialplan, []],
  ];
  for (const [name, input, pick, expected] of cases) t.same(pick(resolveConfig(input)), expected, name);
});

t.test('bad values are reported one line each, naming the key, the rule and the value', async (t) => {
  const cases: [name: string, input: Record<string, unknown>, expected: string[]][] = [
    ['unknown section', { dialPlan: [] }, ['dialPlan is not a known setting']],
    ['device not an object', { device: '100' }, ['device must be an object (got "100")']],
    ['device unknown key', { device: { number: '1' } }, ['device.number is not a known setting']],
    ['device extension a number', { device: { extension: 100 } }, ['device.extension must be a string of 1 to 15 digits (got 100)']],
    ['device extension letters', { device: { extension: 'abc' } }, ['device.extension must be a string of 1 to 15 digits (got "abc")']],
    ['emergency numbers not a list', { emergencyNumbers: '112' }, ['emergencyNumbers must be a list of digit strings (got "112")']],
    ['emergency number not digits', { emergencyNumbers: ['112', 911] }, ['emergencyNumbers[1] must be a string of 1 to 15 digits (got 911)']],
    ['emergency number with plus', { emergencyNumbers: ['+112'] }, ['emergencyNumbers[0] must be a string of 1 to 15 digits (got "+112")']],
    ['media not an object', { media: [] }, ['media must be an object (got [])']],
    ['media unknown key', { media: { rtpPort: 1 } }, ['media.rtpPort is not a known setting']],
    ['rtp ports one number', { media: { rtpPorts: 10000 } }, ['media.rtpPorts must be two whole numbers [first, last] (got 10000)']],
    ['rtp ports three numbers', { media: { rtpPorts: [1, 2, 3] } }, ['media.rtpPorts must be two whole numbers [first, last] (got [1,2,3])']],
    ['rtp ports fractional', { media: { rtpPorts: [10000.5, 10010] } }, ['media.rtpPorts must be two whole numbers [first, last] (got [10000.5,10010])']],
    ['rtp ports privileged', { media: { rtpPorts: [1000, 2000] } }, ['media.rtpPorts must lie within 1024 to 65535 (got [1000,2000])']],
    ['rtp ports too high', { media: { rtpPorts: [60000, 70000] } }, ['media.rtpPorts must lie within 1024 to 65535 (got [60000,70000])']],
    ['rtp ports reversed', { media: { rtpPorts: [11000, 10000] } }, ['media.rtpPorts must list the lower port first (got [11000,10000])']],
    ['rtp ports equal', { media: { rtpPorts: [10000, 10000] } }, ['media.rtpPorts must list the lower port first (got [10000,10000])']],
    ['rtp ports too few', { media: { rtpPorts: [10000, 10002] } }, ['media.rtpPorts must span at least 4 ports (got [10000,10002])']],
    ['media bind host name', { media: { bind: 'localhost' } }, ['media.bind must be an IP address (got "localhost")']],
    ['media bind bad IPv4', { media: { bind: '10.0.0.256' } }, ['media.bind must be an IP address (got "10.0.0.256")']],
    ['public address with space', { media: { publicAddress: 'my host' } }, ['media.publicAddress must be an IP address or host name (got "my host")']],
    ['stun port out of range', { media: { stunServer: 'stun.example.org:70000' } }, ['media.stunServer must be host or host:port (got "stun.example.org:70000")']],
    ['stun with scheme', { media: { stunServer: 'stun:stun.example.org' } }, ['media.stunServer must be host or host:port (got "stun:stun.example.org")']],
    ['stun bad IPv6', { media: { stunServer: '[fe80::1::2]:3478' } }, ['media.stunServer must be host or host:port (got "[fe80::1::2]:3478")']],
    ['rtp timeout zero', { media: { rtpTimeoutSeconds: 0 } }, ['media.rtpTimeoutSeconds must be a whole number from 1 to 86400 (got 0)']],
    ['security unknown key', { security: { allowed: [] } }, ['security.allowed is not a known setting']],
    ['allowed sources empty', { security: { allowedSources: [] } }, ['security.allowedSources must be a non-empty list of CIDRs (got [])']],
    ['IPv4 prefix too long', { security: { allowedSources: ['10.0.0.0/8', '10.0.0.0/33'] } }, ['security.allowedSources[1] must be a CIDR like 192.168.0.0/16 or fe80::/10, or one address (got "10.0.0.0/33")']],
    ['IPv6 prefix too long', { security: { allowedSources: ['fe80::/129'] } }, ['security.allowedSources[0] must be a CIDR like 192.168.0.0/16 or fe80::/10, or one address (got "fe80::/129")']],
    ['prefix with a leading zero', { security: { allowedSources: ['10.0.0.0/08'] } }, ['security.allowedSources[0] must be a CIDR like 192.168.0.0/16 or fe80::/10, or one address (got "10.0.0.0/08")']],
    ['host name as source', { security: { allowedSources: ['example.org/32'] } }, ['security.allowedSources[0] must be a CIDR like 192.168.0.0/16 or fe80::/10, or one address (got "example.org/32")']],
    ['max auth failures zero', { security: { maxAuthFailures: 0 } }, ['security.maxAuthFailures must be a whole number from 1 to 1000 (got 0)']],
    ['ban seconds a string', { security: { banSeconds: '900' } }, ['security.banSeconds must be a whole number from 1 to 2592000 (got "900")']],
    ['registrar unknown key', { registrar: { expires: 60 } }, ['registrar.expires is not a known setting']],
    ['registrar min expires zero', { registrar: { minExpires: 0 } }, ['registrar.minExpires must be a whole number from 1 to 86400 (got 0)']],
    ['registrar min above max', { registrar: { minExpires: 4000 } }, ['registrar.minExpires must be <= registrar.maxExpires (got 4000 > 3600)']],
    ['registrar default below min', { registrar: { defaultExpires: 30 } }, ['registrar.defaultExpires must be from registrar.minExpires to registrar.maxExpires (got 30, range 60 to 3600)']],
    ['registrar default above max', { registrar: { maxExpires: 1800 } }, ['registrar.defaultExpires must be from registrar.minExpires to registrar.maxExpires (got 3600, range 60 to 1800)']],
    ['qualify negative', { registrar: { qualifySeconds: -1 } }, ['registrar.qualifySeconds must be a whole number from 0 to 3600 (got -1)']],
    ['calls unknown key', { calls: { timeout: 1 } }, ['calls.timeout is not a known setting']],
    ['no answer zero', { calls: { noAnswerSeconds: 0 } }, ['calls.noAnswerSeconds must be a whole number from 1 to 3600 (got 0)']],
    ['Min-SE below 90 (RFC 4028 §5)', { calls: { minSessionExpires: 60 } }, ['calls.minSessionExpires must be a whole number from 90 to 86400 (got 60)']],
    ['session expires below Min-SE', { calls: { sessionExpires: 100, minSessionExpires: 120 } }, ['calls.sessionExpires must be >= calls.minSessionExpires (got 100 < 120)']],
    ['trunk keep-alive negative', { trunks: [{ ...trunk, keepAliveSeconds: -1 }] }, ['trunks[0].keepAliveSeconds must be a whole number from 0 to 3600 (got -1)']],
    ['trunk retry zero', { trunks: [{ ...trunk, retrySeconds: 0 }] }, ['trunks[0].retrySeconds must be a whole number from 1 to 3600 (got 0)']],
    ['trunk max retry below retry', { trunks: [{ ...trunk, retrySeconds: 60, maxRetrySeconds: 30 }] }, ['trunks[0].maxRetrySeconds must be >= retrySeconds (got 30 < 60)']],
    ['trunk domain with a slash', { trunks: [{ ...trunk, domain: 'a/b' }] }, ['trunks[0].domain must be a host name (got "a/b")']],
    ['dial plan not a list', { dialplan: { match: '1' } }, ['dialplan must be a list of rules (got {"match":"1"})']],
    ['dial rule not an object', { dialplan: ['*43'] }, ['dialplan[0] must be an object with match and to (got "*43")']],
    ['dial rule unknown key', { dialplan: [{ match: '1', to: 'echo', target: 'x' }] }, ['dialplan[0].target is not a known setting']],
    ['dial rule without match', { dialplan: [{ to: 'echo' }] }, ['dialplan[0].match must be a digit map or /regex/ (got undefined)']],
    ['dial rule pattern does not compile', { dialplan: [{ match: '0[1-9', to: 'echo' }] }, ['dialplan[0].match: invalid dial pattern: "[" at position 2 is never closed (got "0[1-9")']],
    ['dial rule regex does not compile', { dialplan: [{ match: '/(/', to: 'echo' }] }, ['dialplan[0].match: invalid dial pattern: bad regular expression: Invalid regular expression: /(/: Unterminated group (got "/(/")']],
    ['dial rule without to', { dialplan: [{ match: '1' }] }, ['dialplan[0].to must be "extension:<number>", "device", "trunk:<name>", "echo" or "peer" (got undefined)']],
    ['dial rule to plain extension', { dialplan: [{ match: '1xx', to: 'extension' }] }, ['dialplan[0].to must be "extension:<number>", "device", "trunk:<name>", "echo" or "peer" (got "extension")']],
    ['dial rule to unknown trunk', { trunks: [trunk], dialplan: [{ match: '0x.', to: 'trunk:other' }] }, ['dialplan[0].to names trunk "other", which is not configured (got "trunk:other")']],
    ['dial rule to a trunk when there are none', { dialplan: [{ match: '0x.', to: 'trunk:provider' }] }, ['dialplan[0].to names trunk "provider", which is not configured (got "trunk:provider")']],
    ['dial rule to unknown extension', { extensions: { '101': ext }, dialplan: [{ match: '9', to: 'extension:102' }] }, ['dialplan[0].to names extension 102, which is not configured (got "extension:102")']],
    ['dial rule to a non-number extension', { dialplan: [{ match: '9', to: 'extension:bob' }] }, ['dialplan[0].to names an extension that is not a number (got "extension:bob")']],
    ['dial rule negative strip', { dialplan: [{ match: '9', to: 'echo', strip: -1 }] }, ['dialplan[0].strip must be a whole number >= 0 (got -1)']],
    ['dial rule fractional strip', { dialplan: [{ match: '9', to: 'echo', strip: 1.5 }] }, ['dialplan[0].strip must be a whole number >= 0 (got 1.5)']],
    ['dial rule prepend with letters', { dialplan: [{ match: '9', to: 'echo', prepend: 'sip:' }] }, ['dialplan[0].prepend must hold only digits, +, * and # (got "sip:")']],
    ['dial rule prepend a number', { dialplan: [{ match: '9', to: 'echo', prepend: 49 }] }, ['dialplan[0].prepend must hold only digits, +, * and # (got 49)']],
    ['a trunk with another mistake is still a known target', { trunks: [{ ...trunk, port: -1 }], dialplan: [{ match: '0x.', to: 'trunk:provider' }] }, ['trunks[0].port must be >= 0 (got -1)']],
    ['every problem is listed', { media: { rtpPorts: [1, 2], bind: 'x' }, dialplan: [{ match: '.', to: 'x' }] }, [
      'media.rtpPorts must lie within 1024 to 65535 (got [1,2])',
      'media.bind must be an IP address (got "x")',
      'dialplan[0].match: invalid dial pattern: "." at position 1 must follow a digit, "x" or a [class] (got ".")',
      'dialplan[0].to must be "extension:<number>", "device", "trunk:<name>", "echo" or "peer" (got "x")',
    ]],
  ];
  for (const [name, input, expected] of cases) t.same(problems(input), expected, name);
});

t.test('IP address and CIDR syntax (RFC 4291 §2.2 text forms for IPv6)', async (t) => {
  const addresses: [string, boolean][] = [
    ['0.0.0.0', true], ['255.255.255.255', true], ['1.2.3', false], ['1.2.3.4.5', false], ['01.2.3.4', false], ['256.1.1.1', false],
    ['::', true], ['::1', true], ['fe80::1', true], ['2001:db8:0:0:0:0:0:1', true], ['2001:db8::', true], ['::ffff:192.0.2.1', true],
    ['1:2:3:4:5:6:7', false], ['1:2:3:4:5:6:7:8:9', false], ['1::2::3', false], ['12345::', false], ['g::', false],
    ['1:2:3:4:5:6:7::', true], ['1:2:3:4:5:6:7:8::', false], ['::ffff:192.0.2', false], ['', false],
  ];
  for (const [a, ok] of addresses) t.equal(isIpAddress(a), ok, `address ${JSON.stringify(a)}`);
  const cidrs: [string, boolean][] = [
    ['10.0.0.0/8', true], ['0.0.0.0/0', true], ['192.168.1.7/32', true], ['10.0.0.0/33', false], ['10.0.0.0/08', false], ['10.0.0.0/', false],
    ['10.0.0.0', true], ['10.0.0', false], ['::/0', true], ['fe80::1%eth0/64', false], ['[::1]/128', false], ['fe80::/10', true], ['::1/128', true], ['::1/129', false], ['fe80::/-1', false], ['/8', false],
  ];
  for (const [c, ok] of cidrs) t.equal(isCidr(c), ok, `CIDR ${JSON.stringify(c)}`);
});

t.test('audio, DTMF, tone and codec settings: one line per bad key', async (t) => {
  const good = resolveConfig({
    audio: { backend: 'alsa', capture: 'plughw:CARD=Device,DEV=0', playback: 'pulse', rate: 44100, periodMs: 10, bufferMs: 60 },
    dtmf: { send: 'info', durationMs: 200, gapMs: 500, inband: false },
    tones: { country: 'de' },
    media: { codecs: ['pcma', 'L16/48000'] },
    device: { autoAnswer: false },
  });
  t.same(good.audio.capture, 'plughw:CARD=Device,DEV=0');
  t.equal(good.audio.rate, 44100);
  t.same(good.dtmf, { send: 'info', durationMs: 200, gapMs: 500, inband: false });
  t.equal(good.tones.country, 'de');
  t.same(good.media.codecs, ['PCMA', 'L16/48000']);
  t.equal(good.device.autoAnswer, false);
  const cases: [string, object, string][] = [
    ['unknown backend', { audio: { backend: 'oss' } }, 'config: audio.backend must be "alsa", "file" or "null" (got "oss")'],
    ['shell in an ALSA name', { audio: { backend: 'alsa', capture: 'hw:0;rm -rf /' } }, 'config: audio.capture must be an ALSA device name like plughw:CARD=Device,DEV=0 (got "hw:0;rm -rf /")'],
    ['odd rate', { audio: { rate: 22050 } }, 'config: audio.rate must be one of 8000, 16000, 32000, 44100, 48000 (got 22050)'],
    ['buffer under two periods', { audio: { periodMs: 20, bufferMs: 30 } }, 'config: audio.bufferMs must be at least twice audio.periodMs (got 30 < 40)'],
    ['unknown codec', { media: { codecs: ['G729'] } }, 'config: media.codecs[0] must be one of opus, G722, PCMU, PCMA, L16, L16/8000, L16/16000, L16/48000 (got "G729")'],
    ['dtmf gap too short', { dtmf: { gapMs: 10 } }, 'config: dtmf.gapMs must be a whole number from 40 to 5000 (got 10)'],
    ['country', { tones: { country: 'Germany' } }, 'config: tones.country must be a two-letter country code like "de" (got "Germany")'],
    ['ringtone', { tones: { ringtone: 'ring.wav' } }, 'config: tones.ringtone must be the absolute path of a 16-bit mono WAV file (got "ring.wav")'],
    ['autoAnswer', { device: { autoAnswer: 'yes' } }, 'config: device.autoAnswer must be true or false (got "yes")'],
    ['unknown audio key', { audio: { volume: 3 } }, 'config: audio.volume is not a known setting'],
  ];
  for (const [name, input, message] of cases) {
    t.throws(() => resolveConfig(input), { message }, name);
  }
});
