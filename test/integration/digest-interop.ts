/**
 * Digest authentication against SIPp, both ways, with the real gateway process on loopback:
 * 1. hookswitch challenges: SIPp registers (401 → REGISTER with credentials) and calls
 *    (407 → ACK → INVITE with credentials) as extension 101, with the right and a wrong password.
 * 2. hookswitch is challenged: a SIPp registrar on a free port answers the gateway's trunk
 *    REGISTER with 401, checks the Authorization with SIPp's own verifyauth, accepts it, and later
 *    accepts the un-REGISTER (Expires: 0) the gateway sends when it stops.
 *
 * SIPp 3.6 computes MD5 only and answers the first challenge it reads, so the gateway is started
 * with `sip.authAlgorithms: ["MD5", "SHA-256"]` (its default offers SHA-256 first). SIPp also
 * computes its digest `uri` as sip:remote_ip:remote_port unless told otherwise, so the INVITE
 * runs pass `-auth_uri` with the real Request-URI, which the gateway checks (RFC 3261 §22.4).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT, findExecutable, freePort, inCI, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { spawnSipp, type SippProcess } from '../helpers/sipp.ts';

const SIPP_DIR = join(REPO_ROOT, 'test', 'sipp');
const EXTENSION = '101';
const EXTENSION_PASSWORD = 'correct-horse-101';
const TRUNK_USER = 'trunkuser';
const TRUNK_PASSWORD = 'trunk-pass-7f3';

const children = new Set<SippProcess>();

/** Starts SIPp with a scenario from test/sipp for one call, collecting its <log> output. */
function runScenario(sipp: string, scenario: string, args: string[], timeoutMs: number): SippProcess {
  const proc = spawnSipp(sipp, ['-sf', join(SIPP_DIR, scenario), '-m', '1', '-i', '127.0.0.1', ...args], timeoutMs, { log: true });
  children.add(proc);
  void proc.result.finally(() => children.delete(proc));
  return proc;
}

/** Resolves true once the gateway's log matches `pattern`, false after `timeoutMs`. */
async function waitForLog(gw: GatewayProcess, pattern: RegExp, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (pattern.test(gw.log())) return true;
    if (!gw.alive()) return pattern.test(gw.log());
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function writeConfig(dir: string, config: unknown): string {
  const file = join(dir, 'hookswitch.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

const sipp = findExecutable('sipp');

if (!sipp) {
  if (inCI()) {
    t.fail('sipp is not installed, and CI must run the SIPp digest interoperability tests (scripts/ci-deps.sh installs sip-tester)');
  } else {
    t.plan(0, 'sipp is not installed, so the SIPp digest interoperability tests were SKIPPED (apt-get install sip-tester)');
  }
} else {
  const sippBin = sipp;
  const configDir = mkdtempSync(join(tmpdir(), 'hookswitch-digest-'));
  t.teardown(() => {
    for (const c of children) c.kill();
    rmSync(configDir, { recursive: true, force: true });
  });

  await t.test('hookswitch challenges SIPp: 401 for REGISTER, 407 for INVITE (RFC 3261 §22)', async (t) => {
    const config = writeConfig(configDir, {
      sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5', 'SHA-256'] },
      extensions: { [EXTENSION]: { password: EXTENSION_PASSWORD } },
    });
    const gw = await startGateway({ args: ['--config', config] });
    t.teardown(() => gw.kill());
    const target = `${gw.host}:${gw.port}`;

    const cases: { name: string; scenario: string; password: string; outcome: RegExp; uri?: boolean }[] = [
      {
        name: 'REGISTER with the right password is challenged, then accepted 200 with the binding',
        scenario: 'register-auth-uac.xml',
        password: EXTENSION_PASSWORD,
        outcome: /register-outcome=200 binding=<sip:101@127\.0\.0\.1:\d+;transport=UDP>;expires=300/,
      },
      {
        name: 'REGISTER with a wrong password is challenged again with 401',
        scenario: 'register-auth-uac.xml',
        password: 'wrong-password',
        outcome: /register-outcome=401/,
      },
      {
        name: 'INVITE with the right password passes the 407 and gets 404 (no route for 200 in the dial plan)',
        scenario: 'invite-auth-uac.xml',
        password: EXTENSION_PASSWORD,
        outcome: /invite-outcome=404/,
        uri: true,
      },
      {
        name: 'INVITE with a wrong password is challenged again with 407',
        scenario: 'invite-auth-uac.xml',
        password: 'wrong-password',
        outcome: /invite-outcome=407/,
        uri: true,
      },
    ];
    for (const c of cases) {
      await t.test(c.name, async (t) => {
        const localPort = await freePort();
        const run = await runScenario(
          sippBin,
          c.scenario,
          [
            ...['-p', String(localPort), '-s', EXTENSION, '-au', EXTENSION, '-ap', c.password],
            // The INVITE goes to sip:200@gateway: make SIPp's digest uri that Request-URI.
            ...(c.uri ? ['-auth_uri', `200@${target}`] : []),
            target,
          ],
          10_000,
        ).result;
        t.notOk(run.timedOut, 'sipp finished within 10 s', { output: run.output });
        t.equal(run.exitCode, 0, 'sipp exit code 0: the scenario completed', { output: run.output, log: gw.log().slice(-3_000) });
        t.match(run.log, c.outcome, 'the expected response arrived', { output: run.output });
      });
    }
    t.ok(gw.alive(), 'the gateway is still running');
    t.notMatch(gw.log(), EXTENSION_PASSWORD, 'the password never appears in the log');
    const status = await gw.stop();
    t.same(status, { code: 0, signal: null }, 'the gateway exits 0 on SIGTERM');
  });

  await t.test('hookswitch answers a SIPp registrar\'s Digest challenge as a trunk client (RFC 3261 §10.2, §22.2)', async (t) => {
    const cases = [
      {
        name: 'right password: SIPp verifies the Authorization, accepts, and later gets the un-REGISTER',
        password: TRUNK_PASSWORD,
        sippExit: 0,
        gatewayLine: /msg="registration state changed" trunk=sipp state=registered previous=registering expires=60/,
        afterStop: /msg="?unregistered"? trunk=sipp/,
      },
      {
        name: 'wrong password: SIPp refuses with 403 and the gateway reports the failure',
        password: 'not-the-trunk-password',
        sippExit: 1,
        gatewayLine: /msg="registration state changed" trunk=sipp state=failed previous=registering reason="403 Forbidden"/,
        afterStop: /msg="registration state changed" trunk=sipp state=stopped previous=failed/,
      },
    ];
    for (const c of cases) {
      await t.test(c.name, async (t) => {
        const sippPort = await freePort();
        const sippRun = runScenario(
          sippBin,
          'register-challenge-uas.xml',
          ['-p', String(sippPort), '-set', 'user', TRUNK_USER, '-set', 'pass', TRUNK_PASSWORD],
          20_000,
        );
        t.teardown(() => sippRun.kill());
        const config = writeConfig(configDir, {
          sip: { domain: 'hookswitch.test' },
          trunks: [
            { name: 'sipp', host: '127.0.0.1', port: sippPort, transport: 'udp', username: TRUNK_USER, password: c.password, register: true, expires: 300 },
          ],
        });
        // SIPp binds its port at once; give it a moment before the gateway's first REGISTER.
        await new Promise((r) => setTimeout(r, 300));
        const gw = await startGateway({ args: ['--config', config] });
        t.teardown(() => gw.kill());

        t.ok(await waitForLog(gw, c.gatewayLine, 10_000), 'the gateway logs the registration outcome', { log: gw.log().slice(-3_000) });
        const status = await gw.stop();
        t.same(status, { code: 0, signal: null }, 'the gateway exits 0 on SIGTERM');
        t.match(gw.log(), c.afterStop, 'on stop, the registration ends as expected', { log: gw.log().slice(-3_000) });
        t.notMatch(gw.log(), c.password, 'the password never appears in the log');

        const run = await sippRun.result;
        t.notOk(run.timedOut, 'sipp finished within 20 s', { output: run.output });
        t.equal(run.exitCode, c.sippExit, `sipp exit code ${c.sippExit}`, { output: run.output, log: gw.log().slice(-3_000) });
      });
    }
  });
}
