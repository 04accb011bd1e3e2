import t from 'tap';
import { checkMessagesSection, DEFAULT_MESSAGES, type MessagesConfig } from '../../src/config/messages-section.ts';
import { ConfigError, resolveConfig } from '../../src/config/config.ts';
import { schemaProblems } from '../../src/config/config-schema.ts';
import { diffConfig } from '../../src/app/config-diff.ts';

function check(messages: unknown): { cfg: MessagesConfig; problems: string[] } {
  const cfg = { messages: structuredClone(DEFAULT_MESSAGES) };
  const problems: string[] = [];
  checkMessagesSection(messages === undefined ? {} : { messages }, cfg, problems);
  return { cfg: cfg.messages, problems };
}

t.test('absent section: RFC 3428 §8\'s 1300 bytes, 20 kept', async (t) => {
  t.same(check(undefined), { cfg: { maxBytes: 1300, keep: 20 }, problems: [] });
  t.same(resolveConfig({}).messages, { maxBytes: 1300, keep: 20 }, 'the embedded defaults carry it');
});

t.test('good values are taken, by the checker and the schema alike', async (t) => {
  const cases: [string, Record<string, unknown>, MessagesConfig][] = [
    ['a smaller limit', { maxBytes: 500 }, { maxBytes: 500, keep: 20 }],
    ['a larger limit for TCP-only sites', { maxBytes: 60000 }, { maxBytes: 60000, keep: 20 }],
    ['keep none', { keep: 0 }, { maxBytes: 1300, keep: 0 }],
    ['both', { maxBytes: 1, keep: 1000 }, { maxBytes: 1, keep: 1000 }],
  ];
  for (const [name, input, expected] of cases) {
    const r = check(input);
    t.same(r.problems, [], `${name}: no problems`);
    t.same(r.cfg, expected, name);
    t.same(schemaProblems({ messages: input }), [], `${name}: the schema agrees`);
  }
});

t.test('bad values: one line naming the key, the rule and the value; the default stays', async (t) => {
  const cases: [string, unknown, string][] = [
    ['not an object', 1300, 'messages must be an object (got 1300)'],
    ['unknown key', { max: 1 }, 'messages.max is not a known setting'],
    ['maxBytes 0', { maxBytes: 0 }, 'messages.maxBytes must be a whole number from 1 to 60000 (got 0)'],
    ['maxBytes too large', { maxBytes: 70000 }, 'messages.maxBytes must be a whole number from 1 to 60000 (got 70000)'],
    ['maxBytes as a string', { maxBytes: '1300' }, 'messages.maxBytes must be a whole number from 1 to 60000 (got "1300")'],
    ['keep negative', { keep: -1 }, 'messages.keep must be a whole number from 0 to 1000 (got -1)'],
  ];
  for (const [name, input, problem] of cases) {
    const r = check(input);
    t.same(r.problems, [problem], name);
    t.same(r.cfg, DEFAULT_MESSAGES, `${name}: defaults kept`);
    t.not(schemaProblems({ messages: input }).length, 0, `${name}: the schema refuses it too`);
    t.throws(() => resolveConfig({ messages: input }), ConfigError, `${name}: resolveConfig refuses the file`);
  }
});

t.test('a reload applies messages live', async (t) => {
  const running = resolveConfig({});
  const next = resolveConfig({ messages: { maxBytes: 800 } });
  t.same(diffConfig(running, next), { applied: ['messages'], restartNeeded: [] });
});
