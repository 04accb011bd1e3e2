/**
 * SIP load benchmark against real processes on loopback, hookswitch next to kamailio 5.6, both
 * sides in the same run, side by side at each rate:
 * - registrations/s: SIPp registers 1000 users (REGISTER → 401 → REGISTER with digest → 200)
 *   at rising rates until the first failure or retransmission (an answer later than 500 ms);
 *   hookswitch (the dist bundle) against kamailio as a registrar with 4 workers.
 * - calls/s: SIPp UAC → server → SIPp UAS, signalling only, digest on the INVITE (407, then
 *   INVITE with Proxy-Authorization), at rising rates until the first failed call; hookswitch's
 *   B2BUA (dial plan `7000` → a trunk that is the UAS) against kamailio as a stateful proxy that
 *   challenges INVITEs and record-routes (4 workers).
 * - RTP relay CPU: 50 concurrent hookswitch calls with PCMU both ways (SIPp rtp_stream out,
 *   the UAS echoing), the gateway's CPU time read from /proc over a window where all 50 run.
 * Every step and the whole run are time-bounded (under 5 minutes); every process started is
 * killed at the end. Run: `npm run bench -- --sip-only [--quick]` or
 * `node --import tsx scripts/bench-sip.ts [--quick]`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, findExecutable, freePort, sippUsersCsv, startGateway, type GatewayProcess } from '../test/helpers/gateway-process.ts';
import { startKamailio, type Kamailio } from '../test/helpers/kamailio.ts';
import { best, cpuSeconds, hookswitchConfig, judge, rampTogether, SippRunner, writeMulawWav, type RampEntry } from './bench-sip-lib.ts';

const QUICK = process.argv.includes('--quick');
const USERS = 1000;
const REG_RATES = QUICK ? [1000, 2000, 4000] : [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000];
const CALL_RATES = QUICK ? [200, 400, 800] : [100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1500, 2000, 2500];
const STEP_SECONDS = QUICK ? 2 : 3;
const MEDIA_CALLS = 50;
const MEDIA_HOLD_MS = QUICK ? 8_000 : 12_000;
const TOTAL_BUDGET_MS = 280_000;
const started = performance.now();
const remaining = () => TOTAL_BUDGET_MS - (performance.now() - started);
const out = (line: string) => process.stdout.write(`${line}\n`);

const sippBin = findExecutable('sipp');
if (!sippBin) {
  process.stderr.write('bench-sip: sipp is not installed (scripts/ci-deps.sh)\n');
  process.exit(1);
}
const sipp = new SippRunner(sippBin, remaining);
const work = mkdtempSync(join(tmpdir(), 'hookswitch-bench-sip-'));
const stoppers: (() => Promise<unknown> | void)[] = [];
async function cleanup(): Promise<void> {
  sipp.killAll();
  for (const stop of stoppers.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

const users: [string, string][] = Array.from({ length: USERS }, (_, i) => [String(10000 + i), `bench-secret-${i}`]);
const csv = join(work, 'users.csv');
writeFileSync(csv, sippUsersCsv(users));
const scenario = (name: string) => join(REPO_ROOT, 'test', 'sipp', name);

// The callee of every call: one SIPp UAS answering INVITEs (copying Record-Route), echoing RTP.
const uasPort = await freePort();
const uasMediaPort = await freePort();
sipp.background(['-sf', scenario('bench-call-uas.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-rtp_echo', '-mp', String(uasMediaPort), '-t', 'u1', '-max_socket', '100'], TOTAL_BUDGET_MS + 30_000);

const config = join(work, 'hookswitch.json');
writeFileSync(config, JSON.stringify(hookswitchConfig(users, uasPort)));
let gw: GatewayProcess;
let kamRegistrar: Kamailio;
let kamProxy: Kamailio;
try {
  gw = await startGateway({ bundle: true, args: ['--config', config] });
  stoppers.push(() => gw.stop());
  kamRegistrar = await startKamailio({ mode: 'registrar', users: Object.fromEntries(users), workers: 4, sharedMemoryMb: 256 });
  stoppers.push(() => kamRegistrar.stop());
  // Transactions wait 5 s (tm wait timer) after each call: at 2,500 calls/s that is tens of
  // thousands of them in shared memory.
  kamProxy = await startKamailio({ mode: 'proxy', proxyTarget: `127.0.0.1:${uasPort}`, proxyInviteAuth: true, users: Object.fromEntries(users), workers: 4, sharedMemoryMb: 512 });
  stoppers.push(() => kamProxy.stop());
} catch (e) {
  process.stderr.write(`bench-sip: could not start the servers: ${(e as Error).message}\n`);
  await cleanup();
  process.exit(1);
}
const gwAddress = `${gw.host}:${gw.port}`;
out(`\nservers: hookswitch dist bundle (pid ${gw.pid}) at ${gwAddress}; kamailio 5.6 registrar at ${kamRegistrar.address} and proxy at ${kamProxy.address} (4 workers each); SIPp UAS at 127.0.0.1:${uasPort}`);

// --- registrations/s -------------------------------------------------------------------------
// One SIPp port per server for the whole ramp: after the warm-up has created the 1000 bindings,
// every step re-registers the same contacts (refreshes, the registrar's everyday load; a new
// contact would make hookswitch wait for its fsynced bindings file, which kamailio's in-memory
// usrloc does not do).
const regScenario = scenario('register-csv-uac.xml');
const regTargets = [
  { label: 'hookswitch', address: gwAddress, port: await freePort() },
  { label: 'kamailio', address: kamRegistrar.address, port: await freePort() },
];
out(`\nregistrations/s (SIPp, ${USERS} users, REGISTER → 401 → REGISTER → 200, ${STEP_SECONDS} s per step, until the first failure or retransmission)`);
for (const t of regTargets) {
  // Warm-up, not counted: JIT compilation and each user's first binding.
  await sipp.run(['-sf', regScenario, '-inf', csv, t.address], USERS, 500, t.port);
}
const regRamp: RampEntry[] = regTargets.map((t) => ({
  label: t.label,
  step: async (rate) => {
    const calls = rate * STEP_SECONDS;
    return judge(rate, calls, await sipp.run(['-sf', regScenario, '-inf', csv, t.address], calls, rate, t.port), true);
  },
}));
const reg = await rampTogether(regRamp, REG_RATES, remaining, out);
const regBest = { hs: best(reg.get('hookswitch')!), kam: best(reg.get('kamailio')!) };
out(`  best clean: hookswitch ${regBest.hs.toFixed(0)}/s, kamailio ${regBest.kam.toFixed(0)}/s, ratio ${ratio(regBest.hs, regBest.kam)} (target ≥ 0.5)`);
await kamRegistrar.stop();

// --- calls/s ---------------------------------------------------------------------------------
out(`\ncalls/s (SIPp UAC → server → SIPp UAS, INVITE → 407 → INVITE with digest → 180/200 → ACK → BYE, no media, ${STEP_SECONDS} s per step, until the first failed call)`);
const callScenario = scenario('bench-call-uac.xml');
const callArgs = (address: string, callee: string) => ['-sf', callScenario, '-inf', csv, '-s', callee, '-auth_uri', `${callee}@${address}`, address];
const callTargets = [
  { label: 'hookswitch', args: callArgs(gwAddress, '7000') },
  { label: 'kamailio', args: callArgs(kamProxy.address, 'bench') },
];
for (const t of callTargets) await sipp.run(t.args, 200, 100);
const callRamp: RampEntry[] = callTargets.map((t) => ({
  label: t.label,
  step: async (rate) => {
    const calls = rate * STEP_SECONDS;
    return judge(rate, calls, await sipp.run(t.args, calls, rate), false);
  },
}));
const calls = await rampTogether(callRamp, CALL_RATES, remaining, out);
const callBest = { hs: best(calls.get('hookswitch')!), kam: best(calls.get('kamailio')!) };
out(`  best clean: hookswitch B2BUA ${callBest.hs.toFixed(0)}/s, kamailio proxy ${callBest.kam.toFixed(0)}/s, ratio ${ratio(callBest.hs, callBest.kam)} (target ≥ 0.25)`);
await kamProxy.stop();

// --- RTP relay CPU ---------------------------------------------------------------------------
const media = await measureRelay();

out(`\nsummary ${new Date().toISOString().slice(0, 10)}: registrations/s ratio ${ratio(regBest.hs, regBest.kam)} (${regBest.hs.toFixed(0)} vs ${regBest.kam.toFixed(0)}), ` +
  `calls/s ratio ${ratio(callBest.hs, callBest.kam)} (${callBest.hs.toFixed(0)} vs ${callBest.kam.toFixed(0)})` +
  (media ? `, relay ${media.perCall.toFixed(2)} % of a core per G.711 call at ${MEDIA_CALLS} calls (${media.total.toFixed(1)} % total, ${media.pps.toFixed(0)} packets/s forwarded)` : ''));
out(`SIP benchmark took ${((performance.now() - started) / 1000).toFixed(0)} s`);
await cleanup();

function ratio(a: number, b: number): string {
  return b > 0 ? (a / b).toFixed(2) : 'n/a';
}

/**
 * 50 calls through the B2BUA with PCMU both ways, started within a second and held
 * MEDIA_HOLD_MS; the gateway's CPU time is sampled from /proc over the middle of the hold (all
 * calls up, RTP flowing) and the relay's forwarded packets are read from its "relay closed" log.
 */
async function measureRelay(): Promise<{ total: number; perCall: number; pps: number } | null> {
  out(`\nRTP relay: ${MEDIA_CALLS} concurrent calls through hookswitch, PCMU 20 ms both ways (SIPp rtp_stream → relay → SIPp -rtp_echo → relay → SIPp), ${MEDIA_HOLD_MS / 1000} s each`);
  if (remaining() < MEDIA_HOLD_MS + 20_000) {
    out('  skipped: out of time budget');
    return null;
  }
  const tone = join(work, 'tone-1000hz-mulaw.wav');
  writeMulawWav(tone, 1000, 5);
  // SIPp 3.6.1 reads the rtp_stream file when it loads the scenario, without expanding [tone]
  // (-key): the scenario is copied with the WAV's path written in.
  const mediaScenario = join(work, 'bench-media-uac.xml');
  writeFileSync(mediaScenario, readFileSync(scenario('bench-media-uac.xml'), 'latin1').replaceAll('[tone]', tone), 'latin1');
  const run = sipp.run(
    ['-sf', mediaScenario, '-inf', csv, '-s', '7000', '-auth_uri', `7000@${gwAddress}`, '-d', String(MEDIA_HOLD_MS), '-l', String(MEDIA_CALLS), gwAddress],
    MEDIA_CALLS,
    MEDIA_CALLS,
    undefined,
    MEDIA_HOLD_MS + 15_000,
  );
  // Sample from 3 s after the start (every call set up) to 2 s before the first BYE.
  const windowMs = MEDIA_HOLD_MS - 5_000;
  await sleep(3_000);
  const cpu0 = cpuSeconds(gw.pid);
  const t0 = performance.now();
  await sleep(windowMs);
  const cpu1 = cpuSeconds(gw.pid);
  const seconds = (performance.now() - t0) / 1000;
  const result = judge(MEDIA_CALLS, MEDIA_CALLS, await run, false);
  const total = (100 * (cpu1 - cpu0)) / seconds;
  // "relay closed ... aForwarded=N ... bForwarded=M": packets relayed per call over its life;
  // these calls were the last ones (the log keeps its most recent megabyte).
  const closed = [...gw.log().matchAll(/relay closed.*?aForwarded=(\d+).*?bForwarded=(\d+)/g)].slice(-MEDIA_CALLS);
  const forwarded = closed.reduce((sum, m) => sum + Number(m[1]) + Number(m[2]), 0);
  const pps = forwarded / (MEDIA_HOLD_MS / 1000);
  out(`  calls: ${result.note}${result.why ? ` [${result.why}]` : ''}; ${forwarded} packets forwarded by the last ${closed.length} relays, ~${pps.toFixed(0)}/s while held (${MEDIA_CALLS * 100}/s expected: 50 per second each way per call)`);
  out(`  hookswitch CPU over ${seconds.toFixed(1)} s with ${MEDIA_CALLS} calls up: ${total.toFixed(1)} % of one core, ${(total / MEDIA_CALLS).toFixed(2)} % per call`);
  if (!result.clean) return null;
  return { total, perCall: total / MEDIA_CALLS, pps };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
