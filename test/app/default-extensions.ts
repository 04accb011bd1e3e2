import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DEFAULT_EXTENSION_NUMBERS, defaultExtensions, randomPassword } from '../../src/app/default-extensions.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { SeededRandom } from '../../src/runtime/random.ts';

t.test('the first start creates extensions with random passwords in a 0600 file, later starts reuse them', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'hookswitch-ext-')), 'state');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = new MemoryLogger();
  const first = defaultExtensions(dir, new SeededRandom(1), log);
  t.same(Object.keys(first), [...DEFAULT_EXTENSION_NUMBERS]);
  const passwords = Object.values(first).map((e) => e.password);
  t.equal(new Set(passwords).size, 4, 'every password differs');
  t.ok(passwords.every((p) => /^[A-Za-z2-9]{20}$/.test(p)), 'twenty characters, no look-alikes');
  const file = join(dir, 'extensions.json');
  t.equal(statSync(file).mode & 0o777, 0o600, 'password file is mode 0600');
  t.equal(statSync(dir).mode & 0o777, 0o700, 'state directory is mode 0700');
  t.match(log.records[0], { level: 'info', fields: { passwords: file } }, 'logs where to read them');
  t.notOk(JSON.stringify(log.records).includes(passwords[0]!), 'never logs a password');
  const again = defaultExtensions(dir, new SeededRandom(2), new MemoryLogger());
  t.same(again, first, 'the second start reads the same extensions');
});

t.test('a damaged password file is reported, never overwritten', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-ext-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'extensions.json');
  for (const [name, content, message] of [
    ['not JSON', '{"100": ', /is not valid JSON/],
    ['short password', '{"100": {"password": "x"}}', /must map extension numbers/],
    ['not numbers', '{"kitchen": {"password": "long-enough-1"}}', /must map extension numbers/],
  ] as const) {
    writeFileSync(file, content);
    t.throws(() => defaultExtensions(dir, new SeededRandom(3), new MemoryLogger()), { message }, name);
    t.equal(readFileSync(file, 'utf8'), content, `${name}: file untouched`);
  }
});

t.test('passwords use every allowed character evenly', async (t) => {
  const counts = new Map<string, number>();
  const random = new SeededRandom(9);
  for (let i = 0; i < 500; i++) for (const c of randomPassword(random)) counts.set(c, (counts.get(c) ?? 0) + 1);
  t.equal(counts.size, 56, 'all 56 characters occur');
  const values = [...counts.values()];
  t.ok(Math.max(...values) / Math.min(...values) < 1.6, 'no character is strongly favoured');
});
