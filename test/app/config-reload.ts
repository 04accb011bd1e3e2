/**
 * Config reload without sockets or real time: which keys apply live and which need a restart,
 * the trunk diff, writing live keys into the running config in place, the reloader's
 * all-or-nothing behaviour against fake targets, and the setters it uses.
 */
import t from 'tap';
import { adoptLiveKeys, diffConfig, diffTrunks, sameValue } from '../../src/app/config-diff.ts';
import { ConfigReloader, NOTHING_TO_RELOAD, type CallSettings, type ReloadTargets } from '../../src/app/config-reloader.ts';
import type { CallMediaFactory } from '../../src/calls/types.ts';
import { resolveConfig, type Config, type TrunkConfig } from '../../src/config/config.ts';
import { Qualifier } from '../../src/registrar/qualifier.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { LineLogger, MemoryLogger, type LogLevel } from '../../src/runtime/logger.ts';
import { SeededRandom } from '../../src/runtime/random.ts';
import { SourceGuard } from '../../src/security/source-guard.ts';
import { ExtensionCredentials } from '../../src/sip/ua/request-authenticator.ts';

const PW = 'secret-password';
const BASE = {
  extensions: { '101': { password: PW }, '102': { password: PW } },
  trunks: [
    { name: 'a', host: '192.0.2.1', username: 'u', password: 'p' },
    { name: 'b', host: '192.0.2.2', username: 'u', password: 'p' },
  ],
};

/** The base config with `edit` applied to a copy of its JSON. */
function cfg(edit: (doc: Record<string, any>) => void = () => {}): Config {
  const doc = structuredClone(BASE) as Record<string, any>;
  edit(doc);
  return resolveConfig(doc);
}

t.test('each changed key is applied live or reported as needing a restart', async (t) => {
  const cases: { name: string; edit: (d: Record<string, any>) => void; applied: string[]; restartNeeded: string[] }[] = [
    { name: 'nothing changed', edit: () => {}, applied: [], restartNeeded: [] },
    { name: 'an extension added', edit: (d) => (d.extensions['103'] = { password: PW }), applied: ['extensions'], restartNeeded: [] },
    { name: 'a password changed', edit: (d) => (d.extensions['101'].password = 'another-password'), applied: ['extensions'], restartNeeded: [] },
    { name: 'log level', edit: (d) => (d.log = { level: 'debug' }), applied: ['log.level'], restartNeeded: [] },
    { name: 'a trunk port', edit: (d) => (d.trunks[1].port = 5070), applied: ['trunks'], restartNeeded: [] },
    { name: 'dial plan and emergency numbers', edit: (d) => ((d.dialplan = [{ match: '9x.', to: 'trunk:a', strip: 1 }]), (d.emergencyNumbers = ['110'])), applied: ['dialplan', 'emergencyNumbers'], restartNeeded: [] },
    { name: 'security', edit: (d) => (d.security = { banSeconds: 60 }), applied: ['security'], restartNeeded: [] },
    { name: 'codecs and call timers', edit: (d) => ((d.media = { codecs: ['PCMA'] }), (d.calls = { noAnswerSeconds: 30 })), applied: ['calls', 'media.codecs'], restartNeeded: [] },
    { name: 'the RTP timeout', edit: (d) => (d.media = { rtpTimeoutSeconds: 20 }), applied: ['media.rtpTimeoutSeconds'], restartNeeded: [] },
    { name: 'DTMF', edit: (d) => (d.dtmf = { gapMs: 500 }), applied: ['dtmf'], restartNeeded: [] },
    { name: 'the mDNS name is live, the interface is not', edit: (d) => (d.discovery = { name: 'Kitchen', interface: '192.0.2.9' }), applied: ['discovery.name'], restartNeeded: ['discovery.interface'] },
    { name: 'qualify interval live, registration lifetimes not', edit: (d) => (d.registrar = { qualifySeconds: 10, minExpires: 120 }), applied: ['registrar.qualifySeconds'], restartNeeded: ['registrar.minExpires'] },
    { name: 'SIP port, bind and transports', edit: (d) => (d.sip = { port: 5070, bind: '127.0.0.1', transports: ['udp'] }), applied: [], restartNeeded: ['sip.bind', 'sip.port', 'sip.transports'] },
    { name: 'TLS added', edit: (d) => (d.sip = { tls: { cert: '/c.pem', key: '/k.pem' } }), applied: [], restartNeeded: ['sip.tls'] },
    { name: 'state directory', edit: (d) => (d.stateDir = '/var/lib/elsewhere'), applied: [], restartNeeded: ['stateDir'] },
    { name: 'audio, board and hardware', edit: (d) => ((d.audio = { rate: 16000 }), (d.board = 'pi-ag1171-handset'), (d.hardware = { backend: 'gpiod' })), applied: [], restartNeeded: ['audio', 'board', 'hardware'] },
    { name: 'RTP ports and bind', edit: (d) => (d.media = { rtpPorts: [20000, 20099], bind: '127.0.0.1' }), applied: [], restartNeeded: ['media.rtpPorts', 'media.bind'] },
    { name: 'live and restart together', edit: (d) => ((d.log = { level: 'warn' }), (d.sip = { port: 5080 })), applied: ['log.level'], restartNeeded: ['sip.port'] },
  ];
  const running = cfg();
  for (const c of cases) {
    const diff = diffConfig(running, cfg(c.edit));
    t.same([...diff.applied].sort(), [...c.applied].sort(), `${c.name}: applied`);
    t.same([...diff.restartNeeded].sort(), [...c.restartNeeded].sort(), `${c.name}: restart`);
  }
});

t.test('a key the table does not know needs a restart', async (t) => {
  const running = cfg();
  const next = { ...cfg(), someFutureArea: { x: 1 } } as unknown as Config;
  t.same(diffConfig(running, next), { applied: [], restartNeeded: ['someFutureArea'] });
});

t.test('trunks are compared by name', async (t) => {
  const trunk = (name: string, port = 5060): TrunkConfig => cfg((d) => (d.trunks = [{ name, host: '192.0.2.1', port, username: 'u', password: 'p' }])).trunks[0]!;
  const cases: { name: string; before: TrunkConfig[]; after: TrunkConfig[]; expect: ReturnType<typeof diffTrunks> }[] = [
    { name: 'same list', before: [trunk('a'), trunk('b')], after: [trunk('a'), trunk('b')], expect: { added: [], removed: [], changed: [], unchanged: ['a', 'b'] } },
    { name: 'one changed', before: [trunk('a'), trunk('b')], after: [trunk('a'), trunk('b', 5070)], expect: { added: [], removed: [], changed: ['b'], unchanged: ['a'] } },
    { name: 'added and removed', before: [trunk('a')], after: [trunk('c')], expect: { added: ['c'], removed: ['a'], changed: [], unchanged: [] } },
    { name: 'reordered only', before: [trunk('a'), trunk('b')], after: [trunk('b'), trunk('a')], expect: { added: [], removed: [], changed: [], unchanged: ['b', 'a'] } },
  ];
  for (const c of cases) t.same(diffTrunks(c.before, c.after), c.expect, c.name);
});

t.test('live keys are written into the running config in place; restart keys are not', async (t) => {
  const running = cfg();
  const dtmf = running.dtmf;
  const codecs = running.media.codecs;
  const next = cfg((d) => {
    d.dtmf = { gapMs: 500 };
    d.media = { codecs: ['PCMA', 'PCMU'] };
    d.sip = { port: 5070 };
    d.log = { level: 'debug' };
  });
  const { applied } = diffConfig(running, next);
  adoptLiveKeys(running, next, applied);
  t.equal(running.dtmf, dtmf, 'the dtmf object keeps its identity');
  t.equal(running.dtmf.gapMs, 500);
  t.equal(running.media.codecs, codecs, 'the codec array keeps its identity');
  t.same(running.media.codecs, ['PCMA', 'PCMU']);
  t.equal(running.log.level, 'debug');
  t.equal(running.sip.port, 5060, 'a restart key keeps the running value');
  t.ok(sameValue(diffConfig(running, next).applied, []), 'nothing live differs afterwards');
  next.media.codecs.push('G722');
  t.same(running.media.codecs, ['PCMA', 'PCMU'], 'no aliasing into the new config');
});

interface Fakes {
  targets: ReloadTargets;
  logger: MemoryLogger;
  calls: CallSettings[];
  levels: LogLevel[];
  credentials: Record<string, { password: string }>[];
  trunkCalls: { next: readonly TrunkConfig[]; changes: ReturnType<typeof diffTrunks> }[];
  guard: Config['security'][];
  file: { doc: () => Config };
}

function fakes(opts: { path?: string; trunksFail?: boolean } = {}): Fakes {
  const running = cfg();
  const logger = new MemoryLogger();
  const f: Fakes = {
    logger,
    calls: [],
    levels: [],
    credentials: [],
    trunkCalls: [],
    guard: [],
    file: { doc: () => cfg() },
    targets: undefined as unknown as ReloadTargets,
  };
  f.targets = {
    running,
    ...(opts.path === undefined ? {} : { configPath: opts.path }),
    load: () => f.file.doc(),
    logger,
    setLogLevel: (level) => f.levels.push(level),
    extensionsFor: (c) => c.extensions,
    credentials: { set: (e) => f.credentials.push(e as Record<string, { password: string }>) },
    extensionNames: Object.keys(running.extensions),
    guard: { configure: (s) => f.guard.push(s) },
    calls: { reconfigure: (s) => f.calls.push(s) },
    mediaFor: (codecs) => ({ codecs }) as unknown as CallMediaFactory,
    replaceTrunks: async (next, changes) => {
      if (opts.trunksFail) throw new Error('cannot resolve');
      f.trunkCalls.push({ next, changes });
    },
  };
  return f;
}

t.test('reload without a file: nothing to do', async (t) => {
  const f = fakes();
  t.same(await new ConfigReloader(f.targets).reload(), { ok: true, message: NOTHING_TO_RELOAD, applied: [], restartNeeded: [] });
});

t.test('an invalid file changes nothing and is refused with its one-line problems', async (t) => {
  const f = fakes({ path: '/etc/hookswitch/config.json' });
  f.file.doc = () => cfg((d) => ((d.trunks[0].port = 70000), (d.log = { level: 'debug' })));
  const reply = await new ConfigReloader(f.targets).reload();
  t.same(reply, { ok: false, error: 'config: trunks[0].port must be <= 65535 (got 70000)' });
  t.same([f.calls, f.levels, f.credentials, f.trunkCalls], [[], [], [], []], 'nothing applied');
  t.equal(f.targets.running.log.level, 'info');
  t.ok(f.logger.records.some((r) => r.level === 'error' && r.fields.problem === 'trunks[0].port must be <= 65535 (got 70000)'));
});

t.test('a dial plan naming a trunk that is gone is refused before anything changes', async (t) => {
  const f = fakes({ path: '/x.json' });
  f.file.doc = () => cfg((d) => ((d.dialplan = [{ match: '0x.', to: 'trunk:b' }]), (d.trunks = [d.trunks[0]])));
  const reply = await new ConfigReloader(f.targets).reload();
  t.equal(reply.ok, false);
  t.match(!reply.ok && reply.error, /^config: dialplan\[0\]\.to /);
  t.same([f.calls, f.trunkCalls], [[], []]);
});

t.test('trunks that cannot be swapped abort the reload with nothing changed', async (t) => {
  const f = fakes({ path: '/x.json', trunksFail: true });
  f.file.doc = () => cfg((d) => ((d.trunks[1].port = 5070), (d.extensions['103'] = { password: PW })));
  const reply = await new ConfigReloader(f.targets).reload();
  t.same(reply, { ok: false, error: 'reload failed: cannot resolve' });
  t.same([f.calls, f.credentials], [[], []]);
  t.notOk('103' in f.targets.running.extensions);
});

t.test('a valid edit is applied to each part and reported', async (t) => {
  const f = fakes({ path: '/x.json' });
  const names = f.targets.extensionNames;
  f.file.doc = () =>
    cfg((d) => {
      d.extensions['103'] = { password: PW };
      d.log = { level: 'debug' };
      d.trunks[1].port = 5070;
      d.sip = { port: 5070 };
      d.calls = { noAnswerSeconds: 20 };
      d.security = { allowedSources: ['10.0.0.0/8'] };
    });
  const reply = await new ConfigReloader(f.targets).reload();
  t.ok(reply.ok);
  t.same([...(reply.ok ? (reply.applied as string[]) : [])].sort(), ['calls', 'extensions', 'log.level', 'security', 'trunks']);
  t.same(reply.ok && reply.restartNeeded, ['sip.port']);
  t.same(f.levels, ['debug']);
  t.same(Object.keys(f.credentials[0]!), ['101', '102', '103']);
  t.equal(f.targets.extensionNames, names, 'the extension list keeps its identity');
  t.same(names, ['101', '102', '103']);
  t.same(f.trunkCalls[0]!.changes, { added: [], removed: [], changed: ['b'], unchanged: ['a'] });
  t.same(f.guard[0]!.allowedSources, ['10.0.0.0/8']);
  const calls = f.calls[0]!;
  t.equal(calls.noAnswerSeconds, 20);
  t.same(Object.keys(calls.extensions!), ['101', '102', '103']);
  t.same(calls.dialplan!.route('103')?.target, { kind: 'extension', extension: '103' }, 'the new dial plan knows 103');
  t.equal(f.targets.running.sip.port, 5060, 'the running config keeps the bound port');
  const line = f.logger.records.find((r) => r.msg === 'config reloaded');
  t.same(line?.fields, { applied: reply.ok ? (reply.applied as string[]).join(',') : '', restartNeeded: 'sip.port' });
  t.same(await new ConfigReloader(f.targets).reload(), { ok: true, applied: [], restartNeeded: ['sip.port'] }, 'a second reload finds only the restart key');
});

t.test('LineLogger.setLevel reaches children made before and after', async (t) => {
  const lines: string[] = [];
  const root = new LineLogger((l) => lines.push(l), 'hookswitch', 'info');
  const early = root.child('sip');
  early.debug('hidden');
  root.setLevel('debug');
  early.debug('shown');
  root.child('media').debug('shown too');
  root.setLevel('error');
  early.warn('hidden again');
  t.same(lines, ['level=debug cat=hookswitch.sip msg="shown"', 'level=debug cat=hookswitch.media msg="shown too"']);
});

t.test('ExtensionCredentials.set replaces the passwords', async (t) => {
  const c = new ExtensionCredentials({ '101': { password: PW } });
  c.set({ '103': { password: 'other-password' } });
  t.same([c.password('101'), c.password('103')], [undefined, 'other-password']);
});

t.test('SourceGuard.configure: new allow-list and ban limits, bans in force stay', async (t) => {
  const clock = new ManualClock();
  const g = new SourceGuard({ allowedSources: ['192.0.2.0/24'], maxAuthFailures: 2, banSeconds: 100, clock, logger: new MemoryLogger() });
  g.authFailed('192.0.2.7');
  g.authFailed('192.0.2.7');
  t.ok(g.isBanned('192.0.2.7'));
  g.configure({ allowedSources: ['198.51.100.0/24'], maxAuthFailures: 1, banSeconds: 10 });
  t.same([g.isAllowed('192.0.2.8'), g.isAllowed('198.51.100.1')], [false, true], 'the new allow-list');
  t.ok(g.isBanned('192.0.2.7'), 'the ban made before stays');
  g.authFailed('198.51.100.1');
  t.ok(g.isBanned('198.51.100.1'), 'one failure bans now');
  clock.advance(10_000);
  t.same([g.isBanned('198.51.100.1'), g.isBanned('192.0.2.7')], [false, true], 'the new ban is 10 s, the old one 100 s');
  t.throws(() => g.configure({ allowedSources: [], maxAuthFailures: -1, banSeconds: 10 }), /maxAuthFailures/);
  t.ok(g.isAllowed('198.51.100.1'), 'a refused configure changes nothing');
});

t.test('Qualifier.setIntervalSeconds turns rounds on, reschedules and turns them off', async (t) => {
  const clock = new ManualClock();
  const pinged: string[] = [];
  const q = new Qualifier({
    store: () => [{ aor: 'sip:101@h', contact: 'sip:101@192.0.2.5', expiresAt: Number.MAX_SAFE_INTEGER, callId: 'c', cseq: 1, source: { transport: 'udp', address: '192.0.2.5', port: 5060 } }],
    intervalSeconds: 0,
    clock,
    random: new SeededRandom(1),
    logger: new MemoryLogger(),
    sendOptions: async (target) => {
      pinged.push(target.uri);
      return 'reachable';
    },
  });
  q.start();
  clock.advance(600_000);
  t.same(pinged, [], 'interval 0: idle');
  q.setIntervalSeconds(10);
  q.start();
  clock.advance(20_000);
  t.ok(pinged.length >= 1, `pinged ${pinged.length} times in 20 s at 10 s`);
  q.setIntervalSeconds(0);
  const count = pinged.length;
  clock.advance(600_000);
  t.equal(pinged.length, count, 'interval 0 again: no more rounds');
});
