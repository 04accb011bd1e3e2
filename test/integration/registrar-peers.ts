/**
 * Acceptance of the registrar, digest and source guard against real third-party peers on
 * loopback (the gateway as a child process):
 * (a) 1000 phones register with digest via SIPp at 500/s: every one gets 200; with wrong
 *     passwords none ever does (RFC 3261 §10.2, §22.2).
 * (b) svwar over 100-199 (REGISTER, INVITE, OPTIONS) learns no extension: unknown users and
 *     wrong passwords are answered alike.
 * (c) svcrack against 101 from 127.0.0.2 is banned after at most security.maxAuthFailures
 *     guesses (it never reaches the right password, placed just after), while 102 keeps
 *     registering from 127.0.0.3: bans are per source address.
 * (d) bindings survive `kill -9`: after a restart with the same state directory a
 *     registration query (REGISTER without Contact, §10.2.3) still lists 101's contact.
 * (e) a SIPp UAS registered as 101 (the REGISTER sent from its own port) still gets a call to
 *     101 after the gateway was killed with -9 and restarted.
 */
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT, findExecutable, freePort, parseSippStats, sippUsersCsv, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { runSvcrack, runSvwar } from '../helpers/sipvicious.ts';
import { spawnSipp, type SippProcess } from '../helpers/sipp.ts';

const SIPP_DIR = join(REPO_ROOT, 'test', 'sipp');
const USERS = 1000;
const MAX_AUTH_FAILURES = 5;

const missing = ['sipp', 'svwar', 'svcrack'].filter((n) => !findExecutable(n));
if (missing.length > 0) {
  throw new Error(`${missing.join(', ')} not installed: run scripts/ci-deps.sh (apt-get install sip-tester sipvicious)`);
}
const sipp = findExecutable('sipp')!;

const work = mkdtempSync(join(tmpdir(), 'hookswitch-registrar-peers-'));
const children = new Set<SippProcess>();
const gateways = new Set<GatewayProcess>();
t.teardown(() => {
  for (const c of children) c.kill();
  for (const g of gateways) g.kill();
  rmSync(work, { recursive: true, force: true });
});

function writeConfig(name: string, config: unknown): string {
  const file = join(work, `${name}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

async function gateway(name: string, config: unknown, extra: { stateDir?: string } = {}): Promise<GatewayProcess> {
  const gw = await startGateway({ args: ['--config', writeConfig(name, config)], ...extra });
  gateways.add(gw);
  void gw.exited.then(() => gateways.delete(gw));
  return gw;
}

/** Runs a scenario from test/sipp (from `source`, default 127.0.0.1) and waits for it. */
async function sippRun(scenario: string, args: string[], target: string, timeoutMs: number, source = '127.0.0.1') {
  const localPort = await freePort(source);
  const proc = spawnSipp(sipp, ['-sf', join(SIPP_DIR, scenario), '-i', source, '-p', String(localPort), ...args, target], timeoutMs, { log: true, stat: true });
  children.add(proc);
  const result = await proc.result;
  children.delete(proc);
  return { ...result, stats: parseSippStats(result.stat) };
}

function count(text: string, re: RegExp): number {
  return [...text.matchAll(new RegExp(re.source, 'g'))].length;
}

const extensions: Record<string, { password: string }> = {};
for (let i = 0; i < USERS; i++) extensions[String(1000 + i)] = { password: `secret-${1000 + i}-x7` };

await t.test('(a) 1000 users register with digest via SIPp at 500/s; wrong passwords never get 200', async (t) => {
  // The wrong passwords come from their own address and stay below the ban threshold: this
  // checks the digest, (c) checks the ban.
  const gw = await gateway('thousand', {
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions,
    security: { maxAuthFailures: 1000 },
  });
  const target = `${gw.host}:${gw.port}`;
  const WRONG = 500;
  const cases = [
    { name: `right passwords: ${USERS} × 200`, users: USERS, source: '127.0.0.1', password: (u: string) => extensions[u]!.password, outcome: 200 },
    { name: `wrong passwords: ${WRONG} × 401, never 200`, users: WRONG, source: '127.0.0.5', password: (u: string) => `${extensions[u]!.password}-wrong`, outcome: 401 },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const csv = join(work, `users-${c.outcome}.csv`);
      const users = Object.keys(extensions).slice(0, c.users);
      writeFileSync(csv, sippUsersCsv(users.map((u) => [u, c.password(u)])));
      const run = await sippRun('register-csv-uac.xml', ['-inf', csv, '-m', String(c.users), '-r', '500', '-t', 'u1'], target, 40_000, c.source);
      t.notOk(run.timedOut, 'sipp finished within 40 s', { output: run.output });
      t.equal(run.exitCode, 0, 'sipp exit code 0', { output: run.output, log: gw.log().slice(-2_000) });
      t.equal(run.stats?.created, c.users, `${c.users} registrations attempted`);
      t.equal(run.stats?.successful, c.users, 'all completed the scenario');
      t.equal(run.stats?.failed, 0, '0 failed', { failureKinds: run.stats?.failureKinds });
      t.equal(run.stats?.unexpected, 0, '0 unexpected messages');
      t.equal(count(run.log, new RegExp(`register-outcome=${c.outcome} `)), c.users, `${c.users} × ${c.outcome}`);
      if (c.outcome !== 200) t.equal(count(run.log, /register-outcome=200 /), 0, 'no REGISTER with a wrong password was accepted');
    });
  }
  t.ok(gw.alive(), 'the gateway is still running');
  await gw.stop();
});

await t.test('(b) svwar over 100-199 learns no extension (REGISTER, INVITE, OPTIONS)', async (t) => {
  const gw = await gateway('svwar', {
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions: { '101': { password: 'kitchen-101-secret' }, '150': { password: 'hall-150-secret' }, '199': { password: 'door-199-secret' } },
  });
  for (const method of ['REGISTER', 'INVITE', 'OPTIONS'] as const) {
    await t.test(`svwar -m ${method}`, async (t) => {
      const run = await runSvwar({ host: gw.host, port: gw.port }, { extensions: '100-199', method, timeoutMs: 60_000, maximumTime: 5 });
      t.notOk(run.timedOut, 'svwar finished in time', { output: run.output });
      t.same(run.found, {}, 'no extension reported', { output: run.output });
      t.ok(run.nothingFound, 'svwar says it found nothing', { output: run.output });
    });
  }
  t.ok(gw.alive(), 'the gateway is still running');
  await gw.stop();
});

await t.test(`(c) svcrack from 127.0.0.2 is banned after ≤ ${MAX_AUTH_FAILURES} failures; 102 keeps registering from 127.0.0.3`, async (t) => {
  const passwords = { '101': 'kitchen-101-secret', '102': 'hall-102-secret' };
  const gw = await gateway('svcrack', {
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions: { '101': { password: passwords['101'] }, '102': { password: passwords['102'] } },
    security: { maxAuthFailures: MAX_AUTH_FAILURES, banSeconds: 600 },
  });
  const target = `${gw.host}:${gw.port}`;
  const register102 = () =>
    sippRun('register-auth-uac.xml', ['-m', '1', '-s', '102', '-au', '102', '-ap', passwords['102']], target, 15_000, '127.0.0.3');

  // Control: svcrack does work against the gateway (from another address, one right guess).
  const control = await runSvcrack({ host: gw.host, port: gw.port }, { user: '101', dictionary: [passwords['101']], bind: '127.0.0.4', timeoutMs: 30_000, maximumTime: 3 });
  t.same(control.found, { '101': passwords['101'] }, 'control: svcrack from 127.0.0.4 finds a password it guesses first', { output: control.output });

  const before = await register102();
  t.match(before.log, /register-outcome=200/, '102 registers from 127.0.0.3 before the attack', { output: before.output });

  // The right password comes right after the allowance: a guard that lets one guess too many through loses.
  const guesses = [...Array.from({ length: MAX_AUTH_FAILURES }, (_, i) => `guess-${i}-wrong`), passwords['101'], 'guess-after-1', 'guess-after-2'];
  const crack = await runSvcrack({ host: gw.host, port: gw.port }, { user: '101', dictionary: guesses, bind: '127.0.0.2', timeoutMs: 60_000, maximumTime: 5 });
  t.notOk(crack.timedOut, 'svcrack finished in time', { output: crack.output });
  t.same(crack.found, {}, 'svcrack did not find the password', { output: crack.output, log: gw.log().slice(-3_000) });

  const banned = await sippRun('register-auth-uac.xml', ['-m', '1', '-s', '101', '-au', '101', '-ap', passwords['101']], target, 12_000, '127.0.0.2');
  t.notMatch(banned.log, /register-outcome=200/, '127.0.0.2 is banned: even the right password gets no 200', { output: banned.output });

  const after = await register102();
  t.equal(after.exitCode, 0, 'SIPp for 102 completed', { output: after.output });
  t.match(after.log, /register-outcome=200/, '102 still registers from 127.0.0.3 during the ban', { output: after.output });
  t.ok(gw.alive(), 'the gateway is still running');
  await gw.stop();
});

await t.test('(d) registrations survive kill -9: a query after the restart lists the binding', async (t) => {
  const stateDir = mkdtempSync(join(work, 'state-'));
  const config = { sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] }, extensions: { '101': { password: 'kitchen-101-secret' } } };
  const auth = ['-m', '1', '-s', '101', '-au', '101', '-ap', 'kitchen-101-secret'];
  const first = await gateway('persist', config, { stateDir });
  const reg = await sippRun('register-auth-uac.xml', auth, `${first.host}:${first.port}`, 15_000);
  const contact = /binding=<(sip:101@127\.0\.0\.1:\d+;transport=UDP)>/.exec(reg.log)?.[1];
  t.ok(contact, '101 registered', { output: reg.output });
  // No grace period: a new binding is on disk before its 200 is sent.
  process.kill(first.pid, 'SIGKILL');
  const status = await first.exited;
  t.equal(status.signal, 'SIGKILL', 'the first gateway died by SIGKILL');

  const second = await gateway('persist', config, { stateDir });
  const query = await sippRun('register-query-uac.xml', auth, `${second.host}:${second.port}`, 15_000);
  t.equal(query.exitCode, 0, 'the query got a 200', { output: query.output, log: second.log().slice(-2_000) });
  t.match(query.log, new RegExp(`bindings=.*<${(contact ?? 'none').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>`), 'the 200 lists the contact registered before the kill', {
    output: query.output,
  });
  await second.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

/**
 * Registers `user` from UDP port `port` on 127.0.0.1 (so the binding's source is that port),
 * answering the gateway's MD5 challenge (RFC 2617 §3.2.2 with qop=auth). Resolves with the
 * final status.
 */
async function registerFrom(port: number, gw: GatewayProcess, user: string, password: string): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', () => resolve()));
  const callId = `restart-${port}@127.0.0.1`;
  const uri = `sip:${gw.host}:${gw.port}`;
  const send = (cseq: number, auth?: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer to REGISTER')), 5_000);
      socket.once('message', (m) => {
        clearTimeout(timer);
        resolve(m.toString('latin1'));
      });
      const lines = [
        `REGISTER ${uri} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-restart-${cseq};rport`,
        'Max-Forwards: 70',
        `From: <sip:${user}@${gw.host}>;tag=restart${port}`,
        `To: <sip:${user}@${gw.host}>`,
        `Call-ID: ${callId}`,
        `CSeq: ${cseq} REGISTER`,
        `Contact: <sip:${user}@127.0.0.1:${port}>`,
        'Expires: 600',
        ...(auth ? [`Authorization: ${auth}`] : []),
        'Content-Length: 0',
        '',
        '',
      ];
      socket.send(lines.join('\r\n'), gw.port, gw.host);
    });
  try {
    const challenge = await send(1);
    const header = /^WWW-Authenticate: *(Digest .*)$/im.exec(challenge)?.[1] ?? '';
    const realm = /realm="([^"]*)"/.exec(header)?.[1] ?? '';
    const nonce = /nonce="([^"]*)"/.exec(header)?.[1] ?? '';
    const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
    const cnonce = 'c0ffee';
    const ha1 = md5(`${user}:${realm}:${password}`);
    const ha2 = md5(`REGISTER:${uri}`);
    const response = md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`);
    const auth = `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="${cnonce}"`;
    const answer = await send(2, auth);
    return Number(/^SIP\/2\.0 (\d{3})/.exec(answer)?.[1] ?? 0);
  } finally {
    socket.close();
  }
}

await t.test('(e) a SIPp UAS registered as 101 is still called after kill -9 and a restart', async (t) => {
  const stateDir = mkdtempSync(join(work, 'state-'));
  const config = {
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions: { '101': { password: 'kitchen-101-secret' }, '102': { password: 'hallway-102-secret' } },
    media: { rtpPorts: [42000, 42099] },
  };
  const first = await gateway('restart-call', config, { stateDir });
  const uasPort = await freePort();
  t.equal(await registerFrom(uasPort, first, '101', 'kitchen-101-secret'), 200, '101 registered from the UAS port');
  process.kill(first.pid, 'SIGKILL');
  t.equal((await first.exited).signal, 'SIGKILL', 'the gateway died by SIGKILL');

  const second = await gateway('restart-call', config, { stateDir });
  const uas = spawnSipp(sipp, ['-sn', 'uas', '-m', '1', '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(await freePort())], 20_000);
  children.add(uas);
  await new Promise((r) => setTimeout(r, 300));
  const call = await sippRun(
    'call-auth-uac.xml',
    ['-m', '1', '-s', '101', '-au', '102', '-ap', 'hallway-102-secret', '-key', 'caller', '102', '-auth_uri', `101@${second.host}:${second.port}`],
    `${second.host}:${second.port}`,
    15_000,
  );
  t.equal(call.exitCode, 0, 'the call from 102 to 101 was answered and hung up', { output: call.output, log: second.log().slice(-3_000) });
  const answered = await uas.result;
  children.delete(uas);
  t.equal(answered.exitCode, 0, 'the UAS registered before the kill took the call', { output: answered.output });
  await second.stop();
  rmSync(stateDir, { recursive: true, force: true });
});
