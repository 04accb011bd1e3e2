import t from 'tap';
import { checkDiscoverySection, DEFAULT_DISCOVERY, type DiscoveryConfig } from '../../src/config/discovery-section.ts';

function check(discovery: unknown): { cfg: DiscoveryConfig; problems: string[] } {
  const cfg = { discovery: structuredClone(DEFAULT_DISCOVERY) };
  const problems: string[] = [];
  checkDiscoverySection(discovery === undefined ? {} : { discovery }, cfg, problems);
  return { cfg: cfg.discovery, problems };
}

t.test('absent section keeps the defaults: enabled, default name, every interface, no secret', async (t) => {
  t.same(check(undefined), { cfg: { enabled: true, name: '' }, problems: [] });
  t.same(check({}), { cfg: { enabled: true, name: '' }, problems: [] });
});

t.test('good values are taken', async (t) => {
  const cases: [string, Record<string, unknown>, DiscoveryConfig][] = [
    ['disabled', { enabled: false }, { enabled: false, name: '' }],
    ['a name with spaces and UTF-8', { name: 'Küche – Wandtelefon' }, { enabled: true, name: 'Küche – Wandtelefon' }],
    ['63 bytes of name', { name: 'x'.repeat(63) }, { enabled: true, name: 'x'.repeat(63) }],
    ['an empty name means the default', { name: '' }, { enabled: true, name: '' }],
    ['an interface address', { interface: '192.168.1.20' }, { enabled: true, name: '', interface: '192.168.1.20' }],
    ['a secret', { secret: 'correct horse battery' }, { enabled: true, name: '', secret: 'correct horse battery' }],
    [
      'everything',
      { enabled: true, name: 'Hall', interface: '10.0.0.2', secret: 'twelve chars' },
      { enabled: true, name: 'Hall', interface: '10.0.0.2', secret: 'twelve chars' },
    ],
  ];
  for (const [name, input, expected] of cases) {
    const r = check(input);
    t.same(r.problems, [], `${name}: no problems`);
    t.same(r.cfg, expected, name);
  }
});

t.test('bad values: one line naming the key, the rule and the value; the default stays', async (t) => {
  const cases: [string, unknown, string][] = [
    ['not an object', 'yes', 'discovery must be an object (got "yes")'],
    ['unknown key', { enable: true }, 'discovery.enable is not a known setting'],
    ['enabled not boolean', { enabled: 'yes' }, 'discovery.enabled must be true or false (got "yes")'],
    ['name not a string', { name: 7 }, 'discovery.name must be a string (got 7)'],
    ['name too long', { name: 'é'.repeat(32) }, `discovery.name must be at most 63 bytes of UTF-8 (got "${'é'.repeat(32)}")`],
    ['name with a control character', { name: 'a\nb' }, 'discovery.name must not contain control characters (got "a\\nb")'],
    ['name with a dot', { name: 'hall.phone' }, 'discovery.name must not contain "." (got "hall.phone")'],
    ['interface a host name', { interface: 'eth0' }, 'discovery.interface must be an IPv4 address of this box (got "eth0")'],
    ['interface IPv6', { interface: 'fe80::1' }, 'discovery.interface must be an IPv4 address of this box (got "fe80::1")'],
    ['interface loopback', { interface: '127.0.0.1' }, 'discovery.interface must be a LAN address, not loopback or the wildcard (got "127.0.0.1")'],
    ['interface wildcard', { interface: '0.0.0.0' }, 'discovery.interface must be a LAN address, not loopback or the wildcard (got "0.0.0.0")'],
    ['secret too short', { secret: 'short' }, 'discovery.secret must be a one-line string of at least 12 characters (got 5 characters)'],
    ['secret not a string', { secret: 123456789012 }, 'discovery.secret must be a one-line string of at least 12 characters (got 123456789012)'],
  ];
  for (const [name, input, expected] of cases) {
    const r = check(input);
    t.same(r.problems, [expected], name);
    t.same(r.cfg, DEFAULT_DISCOVERY, `${name}: defaults kept`);
  }
});

t.test('a rejected secret is never echoed', async (t) => {
  const r = check({ secret: 'line one\nline two' });
  t.equal(r.problems.length, 1);
  t.notMatch(r.problems[0]!, /line one/);
});
