/**
 * The command-line contract external scripts rely on: help and version, exit code 2 with one
 * clear line for a taken port or a bad config, exit 0 on SIGTERM, and a bundle that runs with no
 * node_modules beside it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import pkg from '../../package.json' with { type: 'json' };
import { REPO_ROOT, findExecutable, freePort, startGateway } from '../helpers/gateway-process.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { makeTestCertificate } from '../helpers/tls-cert.ts';

const CLI = ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts')];

function runCli(args: string[], timeout = 15_000) {
  return spawnSync(process.execPath, [...CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout });
}

t.test('help and version', async (t) => {
  const help = runCli(['--help']);
  t.equal(help.status, 0, '--help exits 0');
  t.match(help.stdout, /hookswitch run \[--config FILE\] \[--bind ADDR\] \[--sip-port N\] \[--state-dir DIR\]/);
  const version = runCli(['version']);
  t.equal(version.status, 0);
  t.equal(version.stdout.trim(), `hookswitch ${pkg.version}`);
  const unknown = runCli(['frobnicate']);
  t.equal(unknown.status, 2, 'an unknown command exits 2');
  t.match(unknown.stderr, /unknown command "frobnicate"/);
});

t.test('a taken port exits 2 with one line naming the fix', async (t) => {
  const port = await freePort();
  const squatter = createSocket('udp4');
  await new Promise<void>((resolve) => squatter.bind(port, '127.0.0.1', resolve));
  t.teardown(() => squatter.close());
  const res = runCli(['run', '--bind', '127.0.0.1', '--sip-port', String(port), '--state-dir', tmpdir()]);
  t.equal(res.status, 2, 'exit code 2');
  t.equal(
    res.stderr.trim().split('\n').pop(),
    `hookswitch: cannot listen on udp 127.0.0.1:${port}: address in use (is another SIP server running? try: ss -lunp | grep ${port})`,
  );
});

t.test('a bad config exits 2 naming the key, the rule and the value', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const table: [string, string, string[]][] = [
    ['port too large', JSON.stringify({ sip: { port: 70000 } }), ['config: sip.port must be <= 65535 (got 70000)']],
    ['unknown key', JSON.stringify({ sip: { prot: 5060 } }), ['config: sip.prot is not a known setting']],
    ['short password', JSON.stringify({ extensions: { '101': { password: 'x' } } }), ['config: extensions.101.password must be a string of at least 8 characters']],
    ['not JSON', '{ sip: ', [`config: ${join(dir, 'not JSON.json')} is not valid JSON`]],
    [
      'two problems',
      JSON.stringify({ sip: { port: -1 }, trunks: [{ name: 'up', host: 'pbx', username: 'u', password: 'p', transport: 'sctp' }] }),
      ['config: sip.port must be >= 0 (got -1)', 'config: trunks[0].transport must be "udp", "tcp" or "tls" (got "sctp")'],
    ],
  ];
  for (const [name, content, lines] of table) {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, content);
    const res = runCli(['run', '--config', file, '--bind', '127.0.0.1', '--sip-port', '0']);
    t.equal(res.status, 2, `${name}: exit 2`);
    const got = res.stderr.trim().split('\n');
    t.equal(got.length, lines.length, `${name}: one line per problem`);
    lines.forEach((l, i) => t.ok(got[i]?.startsWith(l), `${name}: ${l}`));
  }
  const missing = runCli(['run', '--config', join(dir, 'nope.json')]);
  t.equal(missing.status, 2);
  t.match(missing.stderr, /config: cannot read .*nope\.json: no such file/);
});

t.test('SIGTERM stops the gateway with exit 0', async (t) => {
  const gw = await startGateway();
  const status = await gw.stop();
  t.same(status, { code: 0, signal: null });
  t.match(gw.log(), /msg="stopped"/);
});

t.test('the bundle runs with no node_modules beside it', async (t) => {
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  t.equal(build.status, 0, `npm run build: ${build.stderr}`);
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-dist-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(REPO_ROOT, 'dist'), dir, { recursive: true });
  const help = spawnSync(join(dir, 'hookswitch.mjs'), ['--help'], { cwd: dir, encoding: 'utf8', timeout: 15_000 });
  t.equal(help.status, 0, 'dist/hookswitch.mjs --help exits 0');
  t.match(help.stdout, /Usage:/);
  // And the bundle serves SIP: start it, see it listen, stop it.
  const port = await freePort();
  const child = spawn(process.execPath, [join(dir, 'hookswitch.mjs'), 'run', '--bind', '127.0.0.1', '--sip-port', String(port), '--state-dir', dir], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const started = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    child.stderr.on('data', () => {
      if (/msg="started"/.test(log)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
  });
  t.ok(started, 'the bundled gateway starts');
  // Issue 6 acceptance 1: on the embedded defaults, `status` shows it and SIPp registers with
  // the password the first start generated.
  const status = spawnSync(process.execPath, [join(dir, 'hookswitch.mjs'), 'status', '--state-dir', dir], { cwd: dir, encoding: 'utf8', timeout: 15_000 });
  t.equal(status.status, 0, 'hookswitch status answers', { stderr: status.stderr });
  t.match(status.stdout, new RegExp(`udp\\s+127\\.0\\.0\\.1:${port}`), 'and shows the UDP socket', { stdout: status.stdout });
  const generated = JSON.parse(readFileSync(join(dir, 'extensions.json'), 'utf8')) as Record<string, { password: string }>;
  const sipp = findExecutable('sipp');
  t.ok(sipp, 'sipp is installed (scripts/ci-deps.sh)');
  const reg = spawnSipp(
    sipp!,
    ['-sf', join(REPO_ROOT, 'test', 'sipp', 'register-auth-uac.xml'), '-m', '1', '-i', '127.0.0.1', '-p', String(await freePort()), '-s', '101', '-au', '101', '-ap', generated['101']!.password, `127.0.0.1:${port}`],
    15_000,
    { log: true },
  );
  const regResult = await reg.result;
  t.equal(regResult.exitCode, 0, 'SIPp completes its REGISTER', { output: regResult.output, log });
  t.match(regResult.log, /register-outcome=200 /, 'with the generated password of 101: 200', { output: regResult.output });
  const code = await new Promise<number | null>((resolve) => {
    child.once('exit', (c) => resolve(c));
    child.kill('SIGTERM');
  });
  t.equal(code, 0, 'and exits 0 on SIGTERM');

  // run --sim from the copied bundle: the board profiles are found beside it (dist/../board), the
  // simulated handset is driven by stdin lines and the phone logic answers with its tones.
  const simDir = join(dir, 'sim');
  cpSync(join(REPO_ROOT, 'dist'), simDir, { recursive: true });
  cpSync(join(REPO_ROOT, 'board'), join(dir, 'board'), { recursive: true });
  const sim = spawn(process.execPath, [join(simDir, 'hookswitch.mjs'), 'run', '--sim', '--bind', '127.0.0.1', '--sip-port', String(await freePort()), '--state-dir', join(dir, 'sim-state')], {
    cwd: dir,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let simOut = '';
  let simLog = '';
  sim.stdout.on('data', (d: Buffer) => (simOut += d.toString()));
  sim.stderr.on('data', (d: Buffer) => (simLog += d.toString()));
  const simReady = await waitFor(() => /msg="phone started" board=pi-ag1171-handset mode=handset hardware=simulator/.test(simLog), 15_000);
  t.ok(simReady, 'the bundled run --sim starts the simulated Ag1171 handset', { log: simLog });
  sim.stdin.write('lift\n');
  t.ok(await waitFor(() => simOut.includes('sim: handset lifted'), 5000), 'the simulator takes commands from stdin');
  sim.stdin.write('dial 9\n');
  t.ok(await waitFor(() => /cat=hookswitch.phone.handset/.test(simLog), 5000), 'the handset logic runs', { log: simLog });
  sim.stdin.write('quit\n');
  const simCode = await new Promise<number | null>((resolve) => sim.once('exit', (c) => resolve(c)));
  t.equal(simCode, 0, 'quit stops it with exit 0');
});

t.test('TLS with the certificate and key named in the config', async (t) => {
  const { connect } = await import('node:tls');
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-tls-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  makeTestCertificate(dir);
  const tlsPort = await freePort();
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ sip: { tls: { port: tlsPort, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } } }));
  const gw = await startGateway({ args: ['--config', config] });
  t.teardown(() => gw.stop());
  for (let i = 0; i < 100 && !/msg="started"/.test(gw.log()); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(gw.log(), new RegExp(`transport=tls local=127\\.0\\.0\\.1:${tlsPort}`), 'listens on TLS');
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: tlsPort, ca: readFileSync(join(dir, 'cert.pem')), servername: 'localhost' }, () => {
      socket.write(
        'OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls-1\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\n' +
          'To: <sip:127.0.0.1>\r\nCall-ID: tls-cfg\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
      );
    });
    let data = '';
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (data.includes('\r\n\r\n')) {
        socket.end();
        resolve(data);
      }
    });
    socket.on('error', reject);
    setTimeout(() => reject(new Error('no TLS reply')), 5000).unref();
  });
  t.match(reply, /^SIP\/2\.0 200 OK\r\n/, 'OPTIONS over TLS answered on the same connection');
});

t.test('device commands talk to the running daemon, and say so when none runs', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'hookswitch-cli-control-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const down = runCli(['status', '--state-dir', stateDir]);
  t.equal(down.status, 1, 'exit 1 without a daemon');
  t.match(down.stderr, /hookswitch is not running \(no daemon on .*control\.sock\)/, 'one line saying so');
  t.equal(runCli(['call']).status, 2, 'call without a number is a usage error');
  t.equal(runCli(['dtmf', '12', 'x']).status, 2, 'dtmf with two arguments is a usage error');

  const gw = await startGateway({ args: ['--state-dir', stateDir] });
  t.teardown(() => gw.stop());
  const status = runCli(['status', '--state-dir', stateDir]);
  t.equal(status.status, 0, 'status answers', { stderr: status.stderr });
  t.match(status.stdout, /^device: idle$/m, 'the device is idle');
  const hangup = runCli(['hangup', '--state-dir', stateDir]);
  t.equal(hangup.status, 1, 'hangup without a call fails');
  t.match(hangup.stderr, /hookswitch: no call/, 'and says why');
  const call = runCli(['call', '103', '--state-dir', stateDir]);
  t.equal(call.status, 1, 'calling an unregistered extension fails');
  t.match(call.stderr, /480 Temporarily Unavailable/, 'with the status the call layer gave');
  const bad = runCli(['dtmf', '12x', '--state-dir', stateDir]);
  t.match(bad.stderr, /dtmf needs 1 to 64 of 0-9 \* # A-D/, 'bad digits are refused by the daemon');
});

t.test('audio-test on the null backend reports silence and no loopback', async (t) => {
  const r = runCli(['audio-test', '--backend', 'null'], 20_000);
  t.equal(r.status, 0, 'exit 0', { stderr: r.stderr });
  t.match(r.stdout, /^level: rms silence, peak silence$/m, 'silence measured');
  t.match(r.stdout, /^tone heard: no/m, 'no tone');
  t.match(r.stdout, /^round-trip latency: not measured \(no loopback\)$/m, 'no loopback');
});

async function waitFor(what: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return what();
}
