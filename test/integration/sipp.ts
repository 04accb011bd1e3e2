/**
 * SIPp against the real gateway process on loopback: OPTIONS load over UDP and TCP must all be
 * answered 200 (with Allow, Accept, Supported), and the gateway must then stop cleanly.
 */
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT, findExecutable, freePort, inCI, startGateway } from '../helpers/gateway-process.ts';
import { spawnSipp } from '../helpers/sipp.ts';

const SCENARIO = join(REPO_ROOT, 'test', 'sipp', 'options-uac.xml');

/** SIPp's cumulative counters at the end of a run, from its -trace_stat CSV. */
interface SippStats {
  created: number;
  successful: number;
  failed: number;
  retransmissions: number;
  /** Every non-zero Failed*(C) counter, e.g. FailedRegexpHdrNotFound. */
  failureKinds: Record<string, number>;
}

interface SippRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stats: SippStats | null;
  output: string;
}

function parseStats(csv: string): SippStats | null {
  const rows = csv.trim().split('\n').map((l) => l.split(';'));
  if (rows.length < 2) return null;
  const head = rows[0]!;
  const last = rows[rows.length - 1]!;
  const get = (name: string) => Number(last[head.indexOf(name)]);
  const failureKinds: Record<string, number> = {};
  head.forEach((name, i) => {
    if (/^Failed.+\(C\)$/.test(name) && Number(last[i]) > 0) failureKinds[name] = Number(last[i]);
  });
  return {
    created: get('TotalCallCreated'),
    successful: get('SuccessfulCall(C)'),
    failed: get('FailedCall(C)'),
    retransmissions: get('Retransmissions(C)'),
    failureKinds,
  };
}

/** Runs SIPp's OPTIONS scenario to completion, bounded by `timeoutMs`. */
async function runSipp(
  sipp: string,
  transport: 'u1' | 't1',
  calls: number,
  rate: number,
  target: string,
  timeoutMs: number,
): Promise<SippRun> {
  const localPort = await freePort();
  const args = ['-sf', SCENARIO, '-t', transport, '-m', String(calls), '-r', String(rate), '-i', '127.0.0.1', '-p', String(localPort), target];
  const { exitCode, signal, timedOut, stat, output } = await spawnSipp(sipp, args, timeoutMs, { stat: true }).result;
  return { exitCode, signal, timedOut, stats: parseStats(stat), output };
}

const sipp = findExecutable('sipp');

if (!sipp) {
  if (inCI()) {
    t.fail('sipp is not installed, and CI must run the SIPp interoperability tests (scripts/ci-deps.sh installs sip-tester)');
  } else {
    t.plan(0, 'sipp is not installed, so the SIPp interoperability tests did not run (apt-get install sip-tester)');
  }
} else {
  const sippBin = sipp;
  const gw = await startGateway();
  t.teardown(() => gw.kill());
  const target = `${gw.host}:${gw.port}`;

  const cases = [
    { name: '1000 OPTIONS over UDP at 200/s are all answered 200 with Allow, Accept, Supported', transport: 'u1', calls: 1000, rate: 200, timeoutMs: 30_000 },
    { name: '100 OPTIONS over TCP on one connection are all answered 200 with Allow, Accept, Supported', transport: 't1', calls: 100, rate: 200, timeoutMs: 15_000 },
  ] as const;

  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const run = await runSipp(sippBin, c.transport, c.calls, c.rate, target, c.timeoutMs);
      t.notOk(run.timedOut, `sipp finished within ${c.timeoutMs} ms`, { output: run.output });
      t.equal(run.exitCode, 0, 'sipp exit code 0: every call succeeded', { signal: run.signal, output: run.output });
      t.ok(run.stats, 'sipp wrote its statistics file');
      t.equal(run.stats?.created, c.calls, `sipp created ${c.calls} calls`);
      t.equal(run.stats?.successful, c.calls, `all ${c.calls} OPTIONS got a 200`, { output: run.output });
      t.equal(run.stats?.failed, 0, 'no call failed', { failureKinds: run.stats?.failureKinds });
      t.ok(gw.alive(), 'the gateway is still running', { log: gw.log().slice(-3_000) });
    });
  }

  await t.test('the gateway exits 0 on SIGTERM after the load', async (t) => {
    const status = await gw.stop();
    t.same(status, { code: 0, signal: null }, 'exit code 0, no signal', { log: gw.log().slice(-3_000) });
  });
}
