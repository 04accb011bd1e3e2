import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { configCommand, type ConfigCommandIo } from '../../src/cli/config-command.ts';
import { ConfigError } from '../../src/config/config.ts';
import { checkConfigFile, ConfigStore, loadStoredConfig, parseKeyPath, resolveConfigPath, SYSTEM_CONFIG_PATH } from '../../src/config/config-store.ts';
import { controlRequest } from '../../src/control/control-server.ts';
import { scratch } from '../helpers/scratch.ts';

const s = scratch('config-store');
let fileNo = 0;
/** A fresh config file path (and its own directory) for one test; `content` written when given. */
function freshFile(content?: string): string {
  const dir = join(s.dir, `c${++fileNo}`);
  mkdirSync(dir);
  const path = join(dir, 'config.json');
  if (content !== undefined) writeFileSync(path, content, { mode: 0o600 });
  return path;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.message.split('\n');
    throw e;
  }
  return [];
}

const trunkJson = '{"name":"provider","host":"sip.provider.example","username":"4930123","password":"trunk-secret"}';

t.test('where the config file is', async (t) => {
  const none = () => false;
  const cases: [name: string, env: NodeJS.ProcessEnv, flag: string | undefined, exists: (p: string) => boolean, expected: string][] = [
    ['--config wins over everything', { CONFIGURATION_DIRECTORY: '/etc/hookswitch' }, '/srv/h.json', () => true, '/srv/h.json'],
    ['systemd ConfigurationDirectory=', { CONFIGURATION_DIRECTORY: '/etc/hookswitch', HOME: '/home/u' }, undefined, none, '/etc/hookswitch/config.json'],
    ['systemd with several directories: the first', { CONFIGURATION_DIRECTORY: '/etc/a:/etc/b' }, undefined, none, '/etc/a/config.json'],
    ['an installed package used from a shell', { HOME: '/home/u' }, undefined, (p) => p === SYSTEM_CONFIG_PATH, SYSTEM_CONFIG_PATH],
    ['XDG_CONFIG_HOME', { HOME: '/home/u', XDG_CONFIG_HOME: '/home/u/.cfg' }, undefined, none, '/home/u/.cfg/hookswitch/config.json'],
    ['the user config directory', { HOME: '/home/u' }, undefined, none, '/home/u/.config/hookswitch/config.json'],
  ];
  for (const [name, env, flag, exists, expected] of cases) t.equal(resolveConfigPath(env, flag, exists), expected, name);
  t.equal(resolveConfigPath({}, 'rel/c.json', none), join(process.cwd(), 'rel/c.json'), 'a relative --config is made absolute');
});

t.test('key paths', async (t) => {
  const good: [string, (string | number)[]][] = [
    ['sip.port', ['sip', 'port']],
    ['trunks[0].port', ['trunks', 0, 'port']],
    ['extensions.101.password', ['extensions', '101', 'password']],
    ['media.rtpPorts[1]', ['media', 'rtpPorts', 1]],
    ['intercom.targets[2].timeoutMs', ['intercom', 'targets', 2, 'timeoutMs']],
    ['stateDir', ['stateDir']],
  ];
  for (const [key, segments] of good) t.same(parseKeyPath(key), segments, key);
  for (const key of ['', '.sip', 'sip.', 'sip..port', '[0]', 'trunks[x]', 'trunks[0', 'trunks0]', 'trunks[0]port']) {
    t.throws(() => parseKeyPath(key), ConfigError, `refused: ${JSON.stringify(key)}`);
  }
});

t.test('no file: the embedded defaults, and reading creates nothing', async (t) => {
  const dir = join(s.dir, 'absent');
  const path = join(dir, 'config.json');
  t.equal(loadStoredConfig(path).config.sip.port, 5060);
  t.same(new ConfigStore(path).get('sip.port'), { value: 5060, source: 'default' });
  t.same(new ConfigStore(path).get('intercom.relayMs'), { value: 3000, source: 'default' }, 'a default the schema holds');
  t.same(checkConfigFile(path), [`cannot read ${path}: no such file`]);
  t.throws(() => loadStoredConfig(path, { mustExist: true }), ConfigError, 'an explicit --config must exist');
  t.notOk(existsSync(dir), 'no directory, no file');
});

t.test('set then get round-trips', async (t) => {
  const path = freshFile();
  const store = new ConfigStore(path);
  const cases: [key: string, raw: string, expected: unknown][] = [
    ['sip.port', '5070', 5070],
    ['sip.transports', '["udp"]', ['udp']],
    ['log.level', 'debug', 'debug'],
    ['device.extension', '105', '105'],
    ['device.autoAnswer', 'false', false],
    ['extensions.101', '{"password":"kitchen-secret","name":"Kitchen"}', { password: '***', name: 'Kitchen' }],
    ['extensions.102.password', 'hallway-secret', '***'],
    ['trunks[0]', trunkJson, undefined],
    ['trunks[0].port', '5080', 5080],
    ['media.rtpPorts[1]', '20000', 20000],
    ['media.codecs', '["pcma","G722"]', ['PCMA', 'G722']],
    ['intercom.door.code', '1234', '***'],
    ['dialplan', '[{"match":"9x.","to":"trunk:provider","strip":1}]', [{ match: '9x.', to: 'trunk:provider', strip: 1 }]],
  ];
  for (const [key, raw, expected] of cases) {
    store.set(key, raw);
    if (expected !== undefined) t.same(store.get(key).value, expected, `${key} = ${raw}`);
    t.equal(store.get(key).source, 'file', `${key} is in the file`);
  }
  t.equal(store.get('extensions.102.password', { showSecrets: true }).value, 'hallway-secret', '--show-secrets');
  t.equal(store.get('trunks[0].password', { showSecrets: true }).value, 'trunk-secret');
  t.same(store.get('trunks[0].expires'), { value: 600, source: 'default' }, 'a trunk default');
  const doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  t.same(Object.keys(doc), ['sip', 'log', 'device', 'extensions', 'trunks', 'media', 'intercom', 'dialplan'], 'only what was set is written');
  t.same(doc.device, { extension: '105', autoAnswer: false }, 'a bare number for a string setting stays text');
  t.same(problemsOf(() => store.get('sip.nope')), ['config: sip.nope is not a known setting']);
});

t.test('a bad value leaves the file byte-identical', async (t) => {
  const path = freshFile(`{ "trunks": [ ${trunkJson} ] }\n`);
  const before = readFileSync(path);
  const { ino, mtimeMs } = statSync(path);
  const store = new ConfigStore(path);
  const cases: [key: string, raw: string, lines: string[]][] = [
    ['trunks[0].port', '70000', ['config: trunks[0].port must be <= 65535 (got 70000)']],
    ['trunks[0].transport', 'sctp', ['config: trunks[0].transport must be "udp", "tcp" or "tls" (got "sctp")']],
    ['sip.bogus', '1', ['config: sip.bogus is not a known setting']],
    ['intercom.mode', 'ring-all', ['config: intercom.mode must be one of sequence, parallel (got "ring-all")']],
    ['trunks[2]', trunkJson, ['config: trunks[2]: the list has 1 entry (use [1] to add one)']],
    ['extensions.101.password', 'short', ['config: extensions.101.password must be a string of at least 8 characters']],
    ['registrar.minExpires', '7200', ['config: registrar.minExpires must be <= registrar.maxExpires (got 7200 > 3600)']],
  ];
  for (const [key, raw, lines] of cases) t.same(problemsOf(() => store.set(key, raw)), lines, `${key} ${raw}`);
  t.same(readFileSync(path), before, 'same bytes');
  t.equal(statSync(path).ino, ino, 'same inode');
  t.equal(statSync(path).mtimeMs, mtimeMs, 'not touched');
});

t.test('an invalid file is never rewritten: set refuses with its problems', async (t) => {
  const cases: [name: string, content: string, lines: string[]][] = [
    ['an unknown key', '{"sip":{"port":5060,"prot":1}}', ['config: sip.prot is not a known setting']],
    ['a key only the schema knows is wrong', '{"intercom":{"relayMs":5}}', ['config: intercom.relayMs must be >= 100 (got 5)']],
    ['not JSON', '{"sip":', []],
  ];
  for (const [name, content, lines] of cases) {
    const path = freshFile(content);
    const problems = problemsOf(() => new ConfigStore(path).set('log.level', 'debug'));
    if (lines.length > 0) t.same(problems, lines, name);
    else t.match(problems, [/^config: .*config\.json is not valid JSON: /], name);
    t.equal(readFileSync(path, 'utf8'), content, `${name}: file untouched`);
    t.same(checkConfigFile(path), problems.map((l) => l.slice('config: '.length)), `${name}: check says the same`);
  }
});

t.test('unset removes a key and the default applies again', async (t) => {
  const path = freshFile(`{ "sip": { "port": 5070 }, "trunks": [ ${trunkJson}, ${trunkJson.replace('provider', 'second')} ], "dialplan": [{ "match": "9x.", "to": "trunk:second" }] }`);
  const store = new ConfigStore(path);
  t.equal(store.unset('sip.port'), true);
  t.same(store.get('sip.port'), { value: 5060, source: 'default' });
  t.equal(store.unset('sip.port'), false, 'not set: nothing to do');
  t.same(problemsOf(() => store.unset('trunks[1]')), ['config: dialplan[0].to names trunk "second", which is not configured (got "trunk:second")'], 'validated like set');
  t.equal(store.unset('dialplan'), true);
  t.equal(store.unset('trunks[0]'), true);
  t.same(store.get('trunks[0].name').value, 'second', 'later entries move up');
  t.same(JSON.parse(readFileSync(path, 'utf8')), { sip: {}, trunks: [JSON.parse(trunkJson.replace('provider', 'second'))] });
});

t.test('writes are atomic and keep the mode', async (t) => {
  const created = freshFile();
  new ConfigStore(created).set('extensions.101.password', 'kitchen-secret');
  t.equal(statSync(created).mode & 0o777, 0o600, 'a new file is 0600 (it holds passwords)');
  const cases = [0o600, 0o640];
  for (const mode of cases) {
    const path = freshFile('{}');
    chmodSync(path, mode);
    const { ino } = statSync(path);
    const store = new ConfigStore(path);
    for (let i = 0; i < 5; i++) store.set('sip.port', String(5060 + i));
    t.equal(statSync(path).mode & 0o777, mode, `mode ${mode.toString(8)} kept`);
    t.not(statSync(path).ino, ino, 'replaced by rename, not rewritten in place');
    t.same(readdirSync(join(path, '..')), ['config.json'], 'no temporary files left');
    t.equal(readFileSync(path, 'utf8'), '{\n  "sip": {\n    "port": 5064\n  }\n}\n', 'two-space JSON with a final newline');
  }
});

/** Captures what configCommand writes; `replies` answers the reload request. */
function io(env: NodeJS.ProcessEnv, request: ConfigCommandIo['request'] = () => Promise.reject(new Error('hookswitch is not running (no daemon on x)'))) {
  const out: string[] = [];
  const err: string[] = [];
  const requests: [string, object][] = [];
  const value: ConfigCommandIo = {
    out: (text) => out.push(text),
    err: (text) => err.push(text),
    env,
    request: (path, req) => {
      requests.push([path, req]);
      return request(path, req);
    },
  };
  return { io: value, out, err, requests, text: () => out.join(''), errors: () => err.join('') };
}

t.test('hookswitch config: get, set, check, path', async (t) => {
  const path = freshFile();
  const env = { HOME: join(s.dir, 'home'), RUNTIME_DIRECTORY: join(s.dir, 'run') };
  const run = async (argv: string[], x = io(env)) => ({ code: await configCommand(argv, x.io), ...x });

  let r = await run(['set', 'extensions.101.password', 'kitchen-secret', '--config', path]);
  t.equal(r.code, 0, 'set with no daemon exits 0');
  t.match(r.text(), /extensions\.101\.password set in .*config\.json\n.*hookswitch is not running.*applies when it starts/s);
  t.same(r.requests, [[join(s.dir, 'run', 'control.sock'), { cmd: 'reload' }]], 'asked the daemon to reload on its socket');

  r = await run(['get', 'extensions.101.password', '--config', path]);
  t.same([r.code, r.text()], [0, '***\n'], 'password masked');
  r = await run(['get', 'extensions.101.password', '--show-secrets', '--config', path]);
  t.same([r.code, r.text()], [0, 'kitchen-secret\n']);
  r = await run(['get', 'media.rtpPorts', '--config', path]);
  t.same([r.code, JSON.parse(r.text())], [0, [10000, 10999]], 'lists print as JSON');
  r = await run(['get', 'handset.hotline', '--config', path]);
  t.same([r.code, r.errors()], [1, 'config: handset.hotline is not set and has no default\n']);
  r = await run(['get', '--config', path]);
  t.equal(r.code, 0);
  t.same((JSON.parse(r.text()) as { extensions: unknown }).extensions, { 101: { password: '***' } }, 'the whole config, masked');

  const before = readFileSync(path);
  r = await run(['set', 'trunks[0]', trunkJson, '--config', path]);
  r = await run(['set', 'trunks[0].port', '70000', '--config', path]);
  t.equal(r.code, 2);
  t.equal(r.errors(), `config: trunks[0].port must be <= 65535 (got 70000)\nconfig: ${path} was not changed\n`);
  t.notSame(readFileSync(path), before, 'the good set before it was written');
  t.equal(r.requests.length, 0, 'no reload after a refused set');

  r = await run(['check', path]);
  t.same([r.code, r.text()], [0, `config: ${path} is valid\n`]);
  const bad = freshFile('{"sip":{"port":70000},"intercom":{"door":{"maxWrong":0}},"x":1}');
  r = await run(['check', bad]);
  t.equal(r.code, 2);
  t.equal(r.errors(), 'config: x is not a known setting\nconfig: sip.port must be <= 65535 (got 70000)\nconfig: intercom.door.maxWrong must be >= 1 (got 0)\n');

  r = await run(['unset', 'trunks[0]', '--config', path]);
  t.same([r.code, r.text().split('\n')[0]], [0, `config: trunks[0] removed from ${path}`]);
  r = await run(['unset', 'trunks[0]', '--config', path]);
  t.same([r.code, r.text()], [0, `config: trunks[0] is not set in ${path}; nothing changed\n`]);
  r = await run(['path'], io({ HOME: '/home/u', CONFIGURATION_DIRECTORY: '/etc/hookswitch' }));
  t.same([r.code, r.text()], [0, '/etc/hookswitch/config.json\n']);
  r = await run(['schema']);
  t.equal((JSON.parse(r.text()) as { $schema: string }).$schema, 'https://json-schema.org/draft/2020-12/schema');

  for (const argv of [[], ['frobnicate'], ['set', 'sip.port'], ['get', 'a', 'b'], ['get', '--nope']]) {
    r = await run(argv);
    t.equal(r.code, 2, `usage error: ${argv.join(' ') || '(nothing)'}`);
  }
  r = await run(['--help']);
  t.same([r.code, r.text().startsWith('Usage:')], [0, true]);

  r = await run(['set', 'log.level', 'warn', '--config', path], io(env, () => Promise.resolve({ ok: false, error: 'unknown command' })));
  t.same([r.code, r.errors()], [1, 'config: the change is saved but the daemon did not reload: unknown command\n']);
});

t.test('set asks a running daemon to reload over its unix socket', async (t) => {
  const sock = join(s.dir, 'control.sock');
  const received: string[] = [];
  const server = createServer((c) => {
    c.setEncoding('utf8');
    c.on('data', (line: string) => {
      received.push(line);
      c.end(`${JSON.stringify({ ok: true, applied: ['log.level'], restartNeeded: ['sip.port'] })}\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  s.defer(() => new Promise((resolve) => server.close(resolve)));
  const x = io({ HOME: s.dir }, controlRequest);
  const code = await configCommand(['set', 'log.level', 'debug', '--config', freshFile(), '--socket', sock], x.io);
  t.equal(code, 0);
  t.same(received, ['{"cmd":"reload"}\n']);
  t.match(x.text(), /the running daemon reloaded its config \(applied: log\.level; needs a restart: sip\.port\)\n$/);

  const gone = io({ HOME: s.dir }, controlRequest);
  t.equal(await configCommand(['set', 'log.level', 'info', '--config', freshFile(), '--socket', join(s.dir, 'none.sock')], gone.io), 0);
  t.match(gone.text(), /hookswitch is not running/, 'no socket: said so, exit 0');
});
