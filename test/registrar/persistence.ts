import t from 'tap';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { createRequest } from '../../src/sip/message/message.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message/message.ts';
import { BindingFile, writeFileAtomic } from '../../src/registrar/binding-file.ts';
import type { BindingFileContent } from '../../src/registrar/binding-file.ts';
import { BindingStore } from '../../src/registrar/binding-store.ts';
import { Registrar } from '../../src/registrar/registrar.ts';
import type { RegistrarPersistence } from '../../src/registrar/registrar.ts';

const AOR = 'sip:alice@example.net';
const UA1 = 'sip:alice@192.0.2.10:5060';
const UA2 = 'sip:alice@192.0.2.20:5062';
const INSTANCE = '"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"';

interface Reg {
  contacts?: string[];
  expires?: string;
  callId?: string;
  cseq?: number;
  user?: string;
}

function register(r: Reg = {}): SipRequest {
  const aor = r.user ? `sip:${r.user}@example.net` : AOR;
  const fields: [string, string][] = [
    ['Via', 'SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-reg;rport=40000;received=198.51.100.7'],
    ['To', `<${aor}>`],
    ['From', `<${aor}>;tag=f1`],
    ['Call-ID', r.callId ?? 'call-1'],
    ['CSeq', `${r.cseq ?? 1} REGISTER`],
  ];
  for (const c of r.contacts ?? []) fields.push(['Contact', c]);
  if (r.expires !== undefined) fields.push(['Expires', r.expires]);
  return createRequest('REGISTER', 'sip:example.net', fields);
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hookswitch-bindings-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function readContent(path: string): Promise<BindingFileContent> {
  return JSON.parse(await readFile(path, 'utf8')) as BindingFileContent;
}

function lifetimes(registrar: Registrar, clock: ManualClock): string[] {
  return registrar.lookup(AOR).map((b) => `${b.contact} ${Math.ceil((b.expiresAt - clock.wallNow()) / 1000)}`);
}

/** A gateway-like wiring: store, file and registrar on one clock. */
function wire(path: string, clock: ManualClock, extra: { writer?: (p: string, d: string) => Promise<void> } = {}) {
  const logger = new MemoryLogger();
  const store = new BindingStore({ clock });
  const file = new BindingFile({ path, store, logger, clock, lazyFlushMs: 5000, ...extra });
  const registrar = new Registrar({ clock, store, persistence: file, logger });
  return { logger, store, file, registrar };
}

/** A writer that counts calls around the real atomic writer. */
function countingWriter(): { calls: string[]; writer: (p: string, d: string) => Promise<void> } {
  const calls: string[] = [];
  return {
    calls,
    writer: async (p, d) => {
      calls.push(d);
      await writeFileAtomic(p, d);
    },
  };
}

t.test('bindings survive a restart with their remaining lifetime', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'state', 'bindings.json');
  const clock = new ManualClock();
  const a = wire(path, clock);
  t.equal(await a.file.load(), 0, 'a missing file restores nothing');

  const first = a.registrar.register(register({ contacts: [`<${UA1}>`] }), 'alice');
  t.ok(first instanceof Promise, 'a new binding is answered after the write');
  // commit() resolved: the file on disk already holds the binding before the 200 is seen.
  const res = await first;
  t.equal(res.status, 200);
  t.same((await readContent(path)).bindings.map((b) => b.contact), [UA1], 'on disk when the 200 is produced');
  t.equal((await stat(path)).mode & 0o777, 0o600, 'the file is private (0600)');
  t.equal((await stat(join(dir, 'state'))).mode & 0o777, 0o700, 'the state directory is created private');

  const second = await a.registrar.register(register({ contacts: [`<${UA2}>;expires=60`], cseq: 2 }), 'alice');
  t.equal(second.status, 200);
  const content = await readContent(path);
  t.equal(content.version, 1);
  t.equal(content.savedAt, clock.wallNow());
  t.equal(content.bindings.length, 2);
  await a.file.close();

  // The process is killed; a new one starts 30 s of wall time later.
  const later = new ManualClock(0, clock.wallNow() + 30_000);
  const b = wire(path, later);
  t.equal(await b.file.load(), 2, 'both bindings restored');
  t.same(lifetimes(b.registrar, later), [`${UA1} 3570`, `${UA2} 30`], 'each keeps the lifetime it had left');
  const cseqKept = b.registrar.register(register({ contacts: [`<${UA1}>`], cseq: 1 }), 'alice');
  t.equal((cseqKept as SipResponse).status, 500, 'Call-ID/CSeq state survives the restart (out of order)');

  // Started again after the 60 s binding lapsed: only the long one comes back.
  const muchLater = new ManualClock(0, clock.wallNow() + 61_000);
  const c = wire(path, muchLater);
  t.equal(await c.file.load(), 1, 'expired records are dropped at load');
  t.same(lifetimes(c.registrar, muchLater), [`${UA1} 3539`]);
  const info = c.logger.records.find((r) => r.msg === 'bindings restored');
  t.same(info?.fields, { path, restored: 1, skipped: 1 }, 'the load is logged with what was skipped');
});

t.test('an unreadable bindings file is moved aside and the registrar starts empty', async (t) => {
  const cases: { name: string; content: string }[] = [
    { name: 'not JSON (torn write of another tool)', content: '{"version":1,"bindings":[{"aor"' },
    { name: 'JSON null', content: 'null' },
    { name: 'an unknown version', content: '{"version":2,"savedAt":0,"bindings":[]}' },
    { name: 'bindings not an array', content: '{"version":1,"savedAt":0,"bindings":{}}' },
  ];
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const dir = await tempDir(t);
      const path = join(dir, 'bindings.json');
      await writeFile(path, c.content);
      const clock = new ManualClock();
      const w = wire(path, clock);
      t.equal(await w.file.load(), 0);
      t.same(await readdir(dir), [`bindings.json.corrupt-${clock.wallNow()}`], 'renamed aside, nothing left at the path');
      t.equal(await readFile(join(dir, `bindings.json.corrupt-${clock.wallNow()}`), 'utf8'), c.content, 'content kept for inspection');
      const warn = w.logger.records.find((r) => r.level === 'warn');
      t.match(warn?.msg, /moved aside/);
      t.equal(w.registrar.count(), 0);
      t.equal((await w.registrar.register(register({ contacts: [`<${UA1}>`] }), 'alice')).status, 200, 'and works afterwards');
    });
  }

  t.test('malformed records in a valid file are skipped one by one', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'bindings.json');
    const clock = new ManualClock();
    const good = { aor: AOR, contact: UA1, expiresAt: clock.wallNow() + 10_000, callId: 'c', cseq: 1 };
    const bad = [{ ...good, contact: 'not a uri' }, { ...good, expiresAt: 'soon' }, 42, null];
    await writeFile(path, JSON.stringify({ version: 1, savedAt: 0, bindings: [good, ...bad] }));
    const w = wire(path, clock);
    t.equal(await w.file.load(), 1);
    t.same(lifetimes(w.registrar, clock), [`${UA1} 10`]);
  });
});

t.test('group commit: at most one write in flight, later commits share the next write', async (t) => {
  t.test('many concurrent new bindings take few writes, and every answer waits for its write', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'bindings.json');
    const counter = countingWriter();
    const w = wire(path, new ManualClock(), { writer: counter.writer });
    const answers: Promise<SipResponse>[] = [];
    for (let i = 0; i < 50; i++) {
      const r = w.registrar.register(register({ contacts: [`<sip:u${i}@192.0.2.${i + 1}>`], user: `u${i}` }), `u${i}`);
      answers.push(Promise.resolve(r));
    }
    const statuses = (await Promise.all(answers)).map((r) => r.status);
    t.same(new Set(statuses), new Set([200]), 'all 50 answered 200');
    t.ok(counter.calls.length <= 2, `50 commits took ${counter.calls.length} writes`);
    t.equal((await readContent(path)).bindings.length, 50, 'the file holds every binding');
  });

  t.test('a commit made during a write waits for the next write, which includes its change', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'bindings.json');
    const gates: (() => void)[] = [];
    const written: string[] = [];
    const writer = async (p: string, d: string): Promise<void> => {
      await new Promise<void>((resolve) => gates.push(resolve));
      await writeFileAtomic(p, d);
      written.push(d);
    };
    const w = wire(path, new ManualClock(), { writer });
    const order: string[] = [];
    const one = Promise.resolve(w.registrar.register(register({ contacts: [`<${UA1}>`] }), 'alice')).then(() => order.push('one'));
    while (gates.length < 1) await new Promise((r) => setImmediate(r));
    const two = Promise.resolve(w.registrar.register(register({ contacts: [`<${UA2}>`], cseq: 2 }), 'alice')).then(() => order.push('two'));
    const three = w.file.commit().then(() => order.push('three'));
    gates.shift()!();
    await one;
    t.same(order, ['one'], 'the first write answers only the first commit');
    t.equal(written.length, 1);
    t.notMatch(written[0], UA2, 'the first write was snapshotted before the second change');
    while (gates.length < 1) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    t.same(order, ['one'], 'the later commits wait for the second write');
    gates.shift()!();
    await Promise.all([two, three]);
    t.same(order.sort(), ['one', 'three', 'two'], 'both later commits share the second write');
    t.equal(written.length, 2);
    t.match(written[1], UA2);
  });
});

t.test('a commit made just as a write finishes still gets its own write', async (t) => {
  const dir = await tempDir(t);
  const counter = countingWriter();
  const w = wire(join(dir, 'bindings.json'), new ManualClock(), { writer: counter.writer });
  // The second commit runs in the reaction to the first, before the writer has wound down.
  await w.file.commit().then(() => w.file.commit());
  t.equal(counter.calls.length, 2);
});

t.test('a failed write answers 500 and undoes the change; the old file stays intact', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'bindings.json');
  const clock = new ManualClock();
  const w = wire(path, clock);
  t.equal((await w.registrar.register(register({ contacts: [`<${UA1}>`] }), 'alice')).status, 200);
  const before = await readFile(path, 'utf8');

  // A directory where the temporary file should go makes the atomic write fail.
  await mkdir(`${path}.tmp`);
  const res = await w.registrar.register(register({ contacts: [`<${UA2}>`], cseq: 2 }), 'alice');
  t.equal(res.status, 500);
  t.equal(res.reason, 'Server Internal Error');
  t.equal(res.headers.get('retry-after'), '5');
  t.same(lifetimes(w.registrar, clock), [`${UA1} 3600`], 'the tentative binding is removed (RFC 3261 §10.3 step 7)');
  t.equal(await readFile(path, 'utf8'), before, 'the old file is untouched');
  t.ok(w.logger.records.some((r) => r.level === 'error' && r.msg === 'could not persist registration; change undone'));
  t.equal(w.logger.records.filter((r) => r.msg === 'could not write bindings file').length, 1, 'the write failure is logged once');

  // A removal that cannot be written is undone too.
  const removal = await w.registrar.register(register({ contacts: [`<${UA1}>`], expires: '0', cseq: 3 }), 'alice');
  t.equal(removal.status, 500);
  t.same(lifetimes(w.registrar, clock), [`${UA1} 3600`], 'the removed binding is back');

  await rm(`${path}.tmp`, { recursive: true });
  t.equal((await w.registrar.register(register({ contacts: [`<${UA2}>`], cseq: 4 }), 'alice')).status, 200, 'recovers');
  t.equal((await readContent(path)).bindings.length, 2);
  t.ok(w.logger.records.some((r) => r.msg === 'bindings file writable again'));
});

t.test('refreshes are written lazily, within lazyFlushMs, and on close', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'bindings.json');
  const clock = new ManualClock();
  const counter = countingWriter();
  const w = wire(path, clock, { writer: counter.writer });
  await w.registrar.register(register({ contacts: [`<${UA1}>`, `<${UA2}>`] }), 'alice');
  t.equal(counter.calls.length, 1);

  clock.advance(60_000);
  const refresh = w.registrar.register(register({ contacts: [`<${UA1}>`, `<${UA2}>`], cseq: 2 }), 'alice');
  t.notOk(refresh instanceof Promise, 'a pure refresh is answered at once');
  t.equal((refresh as SipResponse).status, 200);
  t.same(clock.pending(), ['bindings-lazy-flush']);
  clock.advance(4999);
  await new Promise((r) => setTimeout(r, 20));
  t.equal(counter.calls.length, 1, 'not written before lazyFlushMs');
  clock.advance(1);
  while (w.file.writeCount() < 2) await new Promise((r) => setImmediate(r));
  t.equal(counter.calls.length, 2, 'written once the lazy timer fired');
  const saved = (await readContent(path)).bindings;
  t.same(saved.map((b) => b.cseq), [2, 2], 'the refreshed CSeq is on disk');

  clock.advance(1000);
  const again = w.registrar.register(register({ contacts: [`<${UA1}>`], cseq: 3 }), 'alice');
  t.notOk(again instanceof Promise);
  await w.file.close();
  t.equal(counter.calls.length, 3, 'close flushes what is dirty');
  t.same(clock.pending(), [], 'no timer left after close');
  t.same((await readContent(path)).bindings.map((b) => b.cseq).sort(), [2, 3]);
});

t.test('which REGISTERs wait for the disk (Registrar with persistence)', async (t) => {
  interface Case {
    name: string;
    before?: Reg[];
    req: Reg;
    status: number;
    /** 'promise': answered after commit(); 'sync': answered at once. */
    answer: 'promise' | 'sync';
    /** markDirty() calls made by the request itself. */
    dirty: number;
  }
  const cases: Case[] = [
    { name: 'a new binding', req: { contacts: [`<${UA1}>`] }, status: 200, answer: 'promise', dirty: 0 },
    {
      name: 'a second binding next to an existing one',
      before: [{ contacts: [`<${UA1}>`] }],
      req: { contacts: [`<${UA2}>`], cseq: 2 },
      status: 200,
      answer: 'promise',
      dirty: 0,
    },
    {
      name: 'a refresh of the existing binding (same contact, higher CSeq)',
      before: [{ contacts: [`<${UA1}>`] }],
      req: { contacts: [`<${UA1}>;expires=1800`], cseq: 2 },
      status: 200,
      answer: 'sync',
      dirty: 1,
    },
    {
      name: 'a refresh from a new Call-ID (rebooted phone)',
      before: [{ contacts: [`<${UA1}>`] }],
      req: { contacts: [`<${UA1}>`], callId: 'call-2' },
      status: 200,
      answer: 'sync',
      dirty: 1,
    },
    {
      name: 'a removal (expires=0)',
      before: [{ contacts: [`<${UA1}>`] }],
      req: { contacts: [`<${UA1}>`], expires: '0', cseq: 2 },
      status: 200,
      answer: 'promise',
      dirty: 0,
    },
    {
      name: 'a removal of a contact that is not bound',
      before: [{ contacts: [`<${UA1}>`] }],
      req: { contacts: [`<${UA2}>`], expires: '0', cseq: 2 },
      status: 200,
      answer: 'sync',
      dirty: 1,
    },
    {
      name: 'Contact: * with bindings',
      before: [{ contacts: [`<${UA1}>`] }],
      req: { contacts: ['*'], expires: '0', cseq: 2 },
      status: 200,
      answer: 'promise',
      dirty: 0,
    },
    { name: 'Contact: * without bindings', req: { contacts: ['*'], expires: '0' }, status: 200, answer: 'sync', dirty: 1 },
    {
      name: 'RFC 5626: the same instance at a new contact URI moves the binding',
      before: [{ contacts: [`<${UA1}>;+sip.instance=${INSTANCE}`] }],
      req: { contacts: [`<${UA2}>;+sip.instance=${INSTANCE}`], cseq: 2 },
      status: 200,
      answer: 'promise',
      dirty: 0,
    },
    { name: 'a query', before: [{ contacts: [`<${UA1}>`] }], req: { cseq: 2 }, status: 200, answer: 'sync', dirty: 0 },
    { name: 'a refusal (423)', req: { contacts: [`<${UA1}>`], expires: '10' }, status: 423, answer: 'sync', dirty: 0 },
    {
      name: 'an out-of-order request (500)',
      before: [{ contacts: [`<${UA1}>`], cseq: 5 }],
      req: { contacts: [`<${UA1}>`], cseq: 5 },
      status: 500,
      answer: 'sync',
      dirty: 0,
    },
  ];
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const clock = new ManualClock();
      const calls = { commit: 0, dirty: 0 };
      const persistence: RegistrarPersistence = {
        commit: async () => {
          calls.commit++;
        },
        markDirty: () => {
          calls.dirty++;
        },
      };
      const registrar = new Registrar({ clock, persistence });
      for (const b of c.before ?? []) t.equal((await registrar.register(register(b), 'alice')).status, 200);
      const before = { ...calls };
      const answer = registrar.register(register(c.req), 'alice');
      t.equal(answer instanceof Promise ? 'promise' : 'sync', c.answer, 'answer kind');
      t.equal(calls.commit - before.commit, c.answer === 'promise' ? 1 : 0, 'commit() calls');
      t.equal(calls.dirty - before.dirty, c.dirty, 'markDirty() calls');
      t.equal((await answer).status, c.status);
    });
  }

  t.test('a failed commit superseded by a later change keeps the binding and says so', async (t) => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const rejects: ((e: Error) => void)[] = [];
    const persistence: RegistrarPersistence = {
      commit: () => new Promise<void>((_, reject) => rejects.push(reject)),
      markDirty: () => {},
    };
    const registrar = new Registrar({ clock, persistence, logger });
    const one = registrar.register(register({ contacts: [`<${UA1}>`] }), 'alice');
    const two = registrar.register(register({ contacts: [`<${UA2}>`], cseq: 2 }), 'alice');
    for (const r of rejects) r(new Error('disk full'));
    t.same([(await one).status, (await two).status], [500, 500]);
    t.same(lifetimes(registrar, clock), [`${UA1} 3600`], 'the later request was undone; the earlier one could not be');
    t.same(
      logger.records.filter((r) => r.level === 'error').map((r) => [r.msg, r.fields.error]),
      [
        ['could not persist registration; a later change superseded it, binding kept in memory', 'disk full'],
        ['could not persist registration; change undone', 'disk full'],
      ],
    );
  });
});
