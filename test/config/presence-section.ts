import t from 'tap';
import { ConfigError, resolveConfig } from '../../src/config/config.ts';
import { schemaProblems } from '../../src/config/config-schema.ts';
import { checkPresenceSection, DEFAULT_PRESENCE, type PresenceConfig } from '../../src/config/presence-section.ts';

function check(presence: unknown): { cfg: PresenceConfig; problems: string[] } {
  const cfg = { presence: structuredClone(DEFAULT_PRESENCE) };
  const problems: string[] = [];
  checkPresenceSection(presence === undefined ? {} : { presence }, cfg, problems);
  return { cfg: cfg.presence, problems };
}

const DEFAULTS: PresenceConfig = { minExpires: 60, maxExpires: 3600, maxPerSubscriber: 64, dialogNotifyIntervalMs: 1000, presenceNotifyIntervalMs: 5000 };

t.test('absent section: the presence core defaults (RFC 4235 §3.10 one second, RFC 3856 §6.10 five)', async (t) => {
  t.same(check(undefined), { cfg: DEFAULTS, problems: [] });
  t.same(resolveConfig({}).presence, DEFAULTS, 'the embedded defaults carry it');
});

t.test('good values are taken, bad ones give one line each and keep the default', async (t) => {
  const good: [string, Record<string, unknown>, Partial<PresenceConfig>][] = [
    ['short subscriptions for tests', { minExpires: 5, maxExpires: 20 }, { minExpires: 5, maxExpires: 20 }],
    ['no rate limit', { dialogNotifyIntervalMs: 0, presenceNotifyIntervalMs: 0 }, { dialogNotifyIntervalMs: 0, presenceNotifyIntervalMs: 0 }],
    ['more keys per phone', { maxPerSubscriber: 200 }, { maxPerSubscriber: 200 }],
  ];
  for (const [name, input, expected] of good) {
    const r = check(input);
    t.same(r.problems, [], `${name}: no problems`);
    t.same(r.cfg, { ...DEFAULTS, ...expected }, name);
  }
  const bad: [string, unknown, string][] = [
    ['not an object', 3, 'presence must be an object (got 3)'],
    ['unknown key', { enabled: true }, 'presence.enabled is not a known setting'],
    ['minExpires 0', { minExpires: 0 }, 'presence.minExpires must be a whole number from 1 to 86400 (got 0)'],
    ['interval fractional', { dialogNotifyIntervalMs: 0.5 }, 'presence.dialogNotifyIntervalMs must be a whole number from 0 to 60000 (got 0.5)'],
    ['min above max', { minExpires: 600, maxExpires: 300 }, 'presence.minExpires must be <= presence.maxExpires (got 600 > 300)'],
  ];
  for (const [name, input, problem] of bad) t.same(check(input).problems, [problem], name);
  t.throws(() => resolveConfig({ presence: { maxPerSubscriber: 0 } }), new ConfigError(['presence.maxPerSubscriber must be a whole number from 1 to 1024 (got 0)']));
});

t.test('the JSON schema takes the same keys and bounds', async (t) => {
  t.same(schemaProblems({ presence: { minExpires: 10, dialogNotifyIntervalMs: 0 } }), [], 'good values');
  t.ok(schemaProblems({ presence: { minExpires: 0 } }).length > 0, 'minExpires 0 refused');
  t.ok(schemaProblems({ presence: { lamp: true } }).length > 0, 'an unknown key refused');
});
