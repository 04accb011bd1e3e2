import t from 'tap';
import { checkMetricsSection, DEFAULT_METRICS, type MetricsConfig } from '../../src/config/metrics-section.ts';
import { ConfigError, resolveConfig } from '../../src/config/config.ts';

function check(metrics: unknown): { cfg: MetricsConfig; problems: string[] } {
  const cfg = { metrics: structuredClone(DEFAULT_METRICS) };
  const problems: string[] = [];
  checkMetricsSection(metrics === undefined ? {} : { metrics }, cfg, problems);
  return { cfg: cfg.metrics, problems };
}

t.test('absent section: off, port 9465, loopback', async (t) => {
  t.same(check(undefined), { cfg: { enabled: false, port: 9465, bind: '127.0.0.1' }, problems: [] });
  t.same(resolveConfig({}).metrics, { enabled: false, port: 9465, bind: '127.0.0.1' }, 'the embedded defaults carry it');
});

t.test('good values are taken', async (t) => {
  const cases: [string, Record<string, unknown>, MetricsConfig][] = [
    ['enabled', { enabled: true }, { enabled: true, port: 9465, bind: '127.0.0.1' }],
    ['another port', { port: 9100 }, { enabled: false, port: 9100, bind: '127.0.0.1' }],
    ['port 0: any free one', { port: 0 }, { enabled: false, port: 0, bind: '127.0.0.1' }],
    ['IPv6 loopback', { bind: '::1' }, { enabled: false, port: 9465, bind: '::1' }],
    ['a LAN address', { enabled: true, bind: '192.168.1.20', port: 9999 }, { enabled: true, port: 9999, bind: '192.168.1.20' }],
  ];
  for (const [name, input, expected] of cases) {
    const r = check(input);
    t.same(r.problems, [], `${name}: no problems`);
    t.same(r.cfg, expected, name);
  }
});

t.test('bad values: one line naming the key, the rule and the value; the default stays', async (t) => {
  const cases: [string, unknown, string][] = [
    ['not an object', true, 'metrics must be an object (got true)'],
    ['unknown key', { path: '/m' }, 'metrics.path is not a known setting'],
    ['enabled as a string', { enabled: 'yes' }, 'metrics.enabled must be true or false (got "yes")'],
    ['port too large', { port: 70000 }, 'metrics.port must be a whole number from 0 to 65535 (got 70000)'],
    ['port fractional', { port: 9465.5 }, 'metrics.port must be a whole number from 0 to 65535 (got 9465.5)'],
    ['bind a host name', { bind: 'localhost' }, 'metrics.bind must be an IP address of this box (got "localhost")'],
  ];
  for (const [name, input, problem] of cases) {
    const r = check(input);
    t.same(r.problems, [problem], name);
    t.same(r.cfg, DEFAULT_METRICS, `${name}: defaults kept`);
  }
});

t.test('resolveConfig reports metrics problems with the config: prefix', async (t) => {
  t.throws(() => resolveConfig({ metrics: { port: -1 } }), new ConfigError(['metrics.port must be a whole number from 0 to 65535 (got -1)']));
  t.equal(resolveConfig({ metrics: { enabled: true, port: 9200 } }).metrics.port, 9200);
});

t.test('a password written where the extension object belongs is not echoed in the problem', async (t) => {
  t.throws(() => resolveConfig({ extensions: { '101': 'Hunter2-Secret' } }), new ConfigError(['extensions.101 must be an object with a password (got a string)']));
});
