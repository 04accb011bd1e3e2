/**
 * SIP load benchmark against real processes on loopback, hookswitch next to kamailio 5.6:
 * - registrations/s: SIPp registers 1000 users (REGISTER → 401 → REGISTER with digest → 200)
 *   at rising rates, each step a few seconds, until the first failed call or retransmission
 *   (a retransmission means an answer came later than 500 ms: the server fell behind).
 * - calls/s: SIPp UAC → proxy → SIPp UAS (INVITE/100/180/200/ACK/BYE, no media) at rising
 *   rates; kamailio as a stateful proxy today, hookswitch's B2BUA once wired (one more entry
 *   in CALL_TARGETS).
 * Every step and the whole run are time-bounded (under 5 minutes); every process started is
 * killed at the end. Run: `npm run bench` (after the parser benchmark) or
 * `node --import tsx scripts/bench-sip.ts [--quick]`.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, findExecutable, freePort, parseSippStats, sippUsersCsv, startGateway, type SippStats } from '../test/helpers/gateway-process.ts';
import { startKamailio } from '../test/helpers/kamailio.ts';
import { spawnSipp, type SippProcess } from '../test/helpers/sipp.ts';

const QUICK = process.argv.includes('--quick');
const USERS = 1000;
const REG_RATES = QUICK ? [500, 1000, 2000] : [500, 1000, 2000, 4000, 8000];
const CALL_RATES = QUICK ? [100, 200] : [100, 200, 400, 800];
const STEP_SECONDS = QUICK ? 2 : 3;
const TOTAL_BUDGET_MS = 270_000;
const started = performance.now();
const remaining = () => TOTAL_BUDGET_MS - (performance.now() - started);

const sipp = findExecutable('sipp');
if (!sipp) {
  process.stderr.write('bench-sip: sipp is not installed (scripts/ci-deps.sh)\n');
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), 'hookswitch-bench-sip-'));
const stoppers: (() => Promise<unknown> | void)[] = [];
const running = new Set<SippProcess>();
async function cleanup(): Promise<void> {
  for (const p of running) p.kill();
  for (const stop of stoppers.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

/** A server under test: where SIPp sends, and how to stop it. */
interface Server {
  label: string;
  address: string;
  stop(): Promise<unknown>;
}

interface StepResult {
  rate: number;
  stats: SippStats | null;
  /** Completed registrations or calls per second over the step. */
  achieved: number;
  clean: boolean;
  note: string;
}

async function runSipp(args: string[], calls: number, rate: number): Promise<{ stats: SippStats | null; timedOut: boolean; exitCode: number | null }> {
  const timeoutMs = Math.min(remaining(), Math.ceil((calls / rate) * 1000) + 10_000);
  if (timeoutMs < 5_000) return { stats: null, timedOut: true, exitCode: null };
  const localPort = await freePort();
  const proc = spawnSipp(sipp!, [...args, '-i', '127.0.0.1', '-p', String(localPort), '-m', String(calls), '-r', String(rate), '-t', 'u1', '-max_socket', '100'], timeoutMs, { stat: true });
  running.add(proc);
  const r = await proc.result;
  running.delete(proc);
  return { stats: parseSippStats(r.stat), timedOut: r.timedOut, exitCode: r.exitCode };
}

/** Steps through `rates` until the first unclean step; returns every step run. */
async function ramp(rates: number[], step: (rate: number) => Promise<StepResult>): Promise<StepResult[]> {
  const results: StepResult[] = [];
  for (const rate of rates) {
    if (remaining() < 20_000) break;
    const r = await step(rate);
    results.push(r);
    process.stdout.write(`    ${String(rate).padStart(5)}/s offered: ${r.achieved.toFixed(0).padStart(5)}/s done ${r.clean ? 'clean' : `STOP (${r.note})`}\n`);
    if (!r.clean) break;
  }
  return results;
}

function judge(rate: number, calls: number, run: { stats: SippStats | null; timedOut: boolean }): StepResult {
  const s = run.stats;
  const achieved = s && s.elapsedSeconds > 0 ? s.successful / s.elapsedSeconds : 0;
  const problems: string[] = [];
  if (run.timedOut) problems.push('timed out');
  if (!s) problems.push('no statistics');
  else {
    if (s.successful !== calls) problems.push(`${calls - s.successful} not completed`);
    if (s.failed > 0) problems.push(`${s.failed} failed`);
    if (s.retransmissions > 0) problems.push(`${s.retransmissions} retransmissions`);
  }
  return { rate, stats: s, achieved, clean: problems.length === 0, note: problems.join(', ') };
}

/** The best clean step's achieved rate (0 when none was clean). */
function best(results: StepResult[]): number {
  return Math.max(0, ...results.filter((r) => r.clean).map((r) => r.achieved));
}

const users: [string, string][] = Array.from({ length: USERS }, (_, i) => [String(10000 + i), `bench-secret-${i}`]);
const csv = join(work, 'users.csv');
writeFileSync(csv, sippUsersCsv(users));

async function startHookswitch(): Promise<Server> {
  const config = join(work, 'hookswitch.json');
  writeFileSync(
    config,
    JSON.stringify({
      sip: { domain: 'bench.test', authAlgorithms: ['MD5'] },
      extensions: Object.fromEntries(users.map(([u, p]) => [u, { password: p }])),
      security: { maxAuthFailures: 1000 },
    }),
  );
  const bundle = existsSync(join(REPO_ROOT, 'dist', 'hookswitch.mjs'));
  const gw = await startGateway({ bundle, args: ['--config', config] });
  stoppers.push(() => gw.stop());
  return { label: `hookswitch (${bundle ? 'dist bundle' : 'tsx sources'})`, address: `${gw.host}:${gw.port}`, stop: () => gw.stop() };
}

async function startKamailioRegistrar(): Promise<Server> {
  const k = await startKamailio({ mode: 'registrar', users: Object.fromEntries(users), workers: 4, sharedMemoryMb: 128 });
  stoppers.push(() => k.stop());
  return { label: 'kamailio 5.6 (4 workers)', address: k.address, stop: () => k.stop() };
}

/** SIPp UAS for the call benchmark, answering every INVITE. */
async function startUas(): Promise<{ address: string; stop: () => void }> {
  const port = await freePort();
  const proc = spawnSipp(sipp!, ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(port), '-t', 'u1'], TOTAL_BUDGET_MS);
  running.add(proc);
  await new Promise((r) => setTimeout(r, 500));
  return { address: `127.0.0.1:${port}`, stop: () => proc.kill() };
}

/** Call targets: each proxies or bridges SIPp's UAC to `uas`. Add hookswitch's B2BUA here once wired. */
const CALL_TARGETS: { label: string; start(uas: string): Promise<Server> }[] = [
  {
    label: 'kamailio 5.6 stateful proxy (4 workers)',
    async start(uas) {
      const k = await startKamailio({ mode: 'proxy', proxyTarget: uas, workers: 4, sharedMemoryMb: 128 });
      stoppers.push(() => k.stop());
      return { label: this.label, address: k.address, stop: () => k.stop() };
    },
  },
];

const regScenario = join(REPO_ROOT, 'test', 'sipp', 'register-csv-uac.xml');
const regSummary: Record<string, number> = {};
process.stdout.write(`\nregistrations/s (SIPp, ${USERS} users, REGISTER → 401 → REGISTER → 200, ${STEP_SECONDS} s per step, stop at the first failure or retransmission)\n`);
for (const start of [startHookswitch, startKamailioRegistrar]) {
  if (remaining() < 30_000) break;
  const server = await start();
  process.stdout.write(`  ${server.label}\n`);
  // Warm-up, not counted: JIT compilation and first allocations of every user's binding.
  await runSipp(['-sf', regScenario, '-inf', csv, server.address], USERS, 500);
  const results = await ramp(REG_RATES, async (rate) => {
    const calls = rate * STEP_SECONDS;
    return judge(rate, calls, await runSipp(['-sf', regScenario, '-inf', csv, server.address], calls, rate));
  });
  regSummary[server.label] = best(results);
  await server.stop();
}
const [hsLabel, kamLabel] = Object.keys(regSummary);
if (hsLabel && kamLabel) {
  const ratio = regSummary[kamLabel]! > 0 ? regSummary[hsLabel]! / regSummary[kamLabel]! : NaN;
  process.stdout.write(`  best clean: ${hsLabel} ${regSummary[hsLabel]!.toFixed(0)}/s, ${kamLabel} ${regSummary[kamLabel]!.toFixed(0)}/s, ratio hookswitch/kamailio ${ratio.toFixed(2)}\n`);
}

process.stdout.write(`\ncalls/s (SIPp uac → server → SIPp uas, no media, ${STEP_SECONDS} s per step)\n`);
for (const target of CALL_TARGETS) {
  if (remaining() < 30_000) break;
  const uas = await startUas();
  const server = await target.start(uas.address);
  process.stdout.write(`  ${server.label}\n`);
  await runSipp(['-sn', 'uac', '-d', '0', '-s', 'bench', server.address], 100, 100);
  const results = await ramp(CALL_RATES, async (rate) => {
    const calls = rate * STEP_SECONDS;
    return judge(rate, calls, await runSipp(['-sn', 'uac', '-d', '0', '-s', 'bench', server.address], calls, rate));
  });
  process.stdout.write(`  best clean: ${best(results).toFixed(0)}/s\n`);
  await server.stop();
  uas.stop();
}
process.stdout.write(`\nSIP benchmark took ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
await cleanup();
