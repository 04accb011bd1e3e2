/**
 * Busy-lamp field and presence against the real gateway process on 127.0.0.1:
 * - A SIPp subscriber (extension 201, digest 407) to the device's `dialog` state (RFC 4235) gets
 *   the initial NOTIFY, then one NOTIFY each for trying, early, confirmed and terminated while a
 *   baresip phone calls the device (answered with `hookswitch answer`) and hangs up, and a final
 *   NOTIFY `terminated;reason=timeout` when its short subscription expires.
 * - A SIPp subscriber to extension 203's `presence` (RFC 3856) sees `closed`, `open` once a
 *   baresip phone registers as 203, `closed` once it un-registers, then the expiry.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { registeredPhone } from '../helpers/baresip.ts';
import { findExecutable, freePort, REPO_ROOT, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { spawnSipp, type SippResult } from '../helpers/sipp.ts';
import { scratch } from '../helpers/scratch.ts';
import { sleep, until } from '../helpers/wait.ts';

if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');
const sipp = findExecutable('sipp');
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');

const run = promisify(execFile);
const { dir: work, defer } = scratch('presence');
const WATCHER = '201';
const CALLER = '202';
const PRESENTITY = '203';
const password = (ext: string) => `phone-${ext}-secret`;
const extensions: Record<string, { password: string }> = {};
for (const ext of [WATCHER, CALLER, PRESENTITY]) extensions[ext] = { password: password(ext) };
/** Seconds each SIPp subscription asks for: long enough for the call, short enough to watch it expire. */
const EXPIRES = 12;

const stateDir = join(work, 'state');
const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    log: { level: 'debug' },
    // baresip 1.0.0 fails a REGISTER whose challenges include one it cannot compute (SHA-256).
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions,
    device: { extension: '100', autoAnswer: false },
    media: { rtpPorts: [25000, 25099], bind: '127.0.0.1', rtpTimeoutSeconds: 30 },
    registrar: { qualifySeconds: 0 },
    // Lab settings: short subscriptions, and every state change in a NOTIFY of its own.
    presence: { minExpires: 5, dialogNotifyIntervalMs: 0, presenceNotifyIntervalMs: 0 },
  }),
);
const gw: GatewayProcess = await startGateway({ args: ['--config', config, '--state-dir', stateDir] });
defer(() => gw.stop());

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import=tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args, '--state-dir', stateDir], { cwd: REPO_ROOT });
  return stdout;
}

const subscriptionsCreated = () => gw.log().split('\n').filter((l) => l.includes('msg="subscription created"')).length;

/** Starts the SIPp subscriber of `event` to `resource` once the gateway holds the subscription. */
async function subscribe(resource: string, event: 'dialog' | 'presence'): Promise<{ result: Promise<SippResult> }> {
  const before = subscriptionsCreated();
  const proc = spawnSipp(
    sipp!,
    [
      '-sf', join(REPO_ROOT, 'test', 'sipp', 'subscribe-uac.xml'),
      '-m', '1', '-s', resource, '-au', WATCHER, '-ap', password(WATCHER),
      '-key', 'event', event, '-key', 'expires', String(EXPIRES),
      '-auth_uri', `${resource}@127.0.0.1:${gw.port}`,
      '-i', '127.0.0.1', '-p', String(await freePort()), `127.0.0.1:${gw.port}`,
    ],
    (EXPIRES + 20) * 1000,
    { log: true },
  );
  defer(() => proc.kill());
  if (!(await until(() => subscriptionsCreated() > before, 5000))) throw new Error(`no subscription created\n${gw.log().slice(-3000)}`);
  return { result: proc.result };
}

interface Notify {
  cseq: number;
  state: string;
  doc: string;
  /** What SIPp matched in the body, e.g. `state event="remote-bye">terminated`. */
  raw: string;
}

/** The NOTIFYs the scenario logged, once each (a retransmission repeats its CSeq). */
function notifies(log: string): Notify[] {
  const out: Notify[] = [];
  for (const m of log.matchAll(/notify cseq=(\d+) state=(\S*) doc=(.*)/g)) {
    const cseq = Number(m[1]);
    if (out.some((n) => n.cseq === cseq)) continue;
    out.push({ cseq, state: m[2]!, doc: /(?:state[^>]*|basic)>([a-z]+)/.exec(m[3]!)?.[1] ?? 'none', raw: m[3]! });
  }
  return out;
}

await t.test('a SIPp subscriber to the device follows a call from baresip: trying, early, confirmed, terminated, then the expiry', async (t) => {
  const phone = await registeredPhone({ ext: CALLER, password: password(CALLER), gateway: gw, defer, rtpPorts: [25100, 25139] });
  const started = Date.now();
  const sub = await subscribe('100', 'dialog');
  const since = phone.events.length;
  await phone.dial(`sip:100@127.0.0.1:${gw.port}`);
  await phone.waitEvent('CALL_RINGING', { since, timeoutMs: 5000 }).catch(() => undefined);
  await sleep(1000);
  t.match(await cli('answer'), /call: /, 'hookswitch answer: the device answers');
  await phone.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 5000 });
  await sleep(1000);
  await phone.hangup();
  await phone.waitEvent('CALL_CLOSED', { since, timeoutMs: 5000 });
  const callDone = Date.now();
  const r = await sub.result;
  const ended = Date.now();
  t.equal(r.exitCode, 0, 'the scenario completed: 407, 200 with tag, Expires and Allow-Events, NOTIFYs answered', { output: r.output, log: gw.log().slice(-4000) });
  t.match(r.log, new RegExp(`subscribed expires=${EXPIRES}`), 'the granted Expires');
  const got = notifies(r.log);
  t.same(
    got.slice(0, -1).map((n) => `${n.state.replace(/;expires=\d+$/, '')} ${n.doc}`),
    ['active none', 'active trying', 'active early', 'active confirmed', 'active terminated'],
    'the initial NOTIFY (no dialog), then one NOTIFY per dialog state, in order',
    { log: r.log },
  );
  t.match(got[4]?.raw, /event="remote-bye"/, 'the caller hung up: remote-bye for the device (RFC 4235 §4.1.2)');
  t.equal(got.at(-1)?.state, 'terminated;reason=timeout', 'the final NOTIFY when the subscription expired', { log: r.log });
  t.ok(got.every((n, i) => i === 0 || n.cseq === got[i - 1]!.cseq + 1), `CSeq grows by one per NOTIFY (${got.map((n) => n.cseq).join(',')})`);
  const lifetime = (ended - started) / 1000;
  t.ok(lifetime >= EXPIRES - 1 && lifetime < EXPIRES + 5, `the subscription ended at its expiry (${lifetime.toFixed(1)} s after subscribing, call over after ${((callDone - started) / 1000).toFixed(1)} s)`);
  await phone.stop();
});

await t.test('a SIPp subscriber to an extension\'s presence: closed, open once baresip registers, closed once it un-registers', async (t) => {
  const sub = await subscribe(PRESENTITY, 'presence');
  await sleep(500);
  const phone = await registeredPhone({ ext: PRESENTITY, password: password(PRESENTITY), gateway: gw, defer, rtpPorts: [25140, 25179] });
  await sleep(1000);
  await phone.stop();
  t.ok(await until(() => /registration updated.*user=203.*bindings=0|bindings=0.*user=203/.test(gw.log()), 5000), 'the registrar saw the un-REGISTER', { log: gw.log().slice(-2000) });
  const r = await sub.result;
  t.equal(r.exitCode, 0, 'the scenario completed', { output: r.output, log: gw.log().slice(-4000) });
  const got = notifies(r.log);
  t.same(
    got.map((n) => `${n.state.replace(/;expires=\d+$/, '')} ${n.doc}`),
    ['active closed', 'active open', 'active closed', 'terminated;reason=timeout closed'],
    'closed, open, closed, then the final NOTIFY at the expiry',
    { log: r.log },
  );
  const status = await gw.stop();
  t.same(status, { code: 0, signal: null }, 'the gateway exits 0 on SIGTERM');
});
