/**
 * Operations view of a running gateway, all on 127.0.0.1, the gateway as a child process at log
 * level debug with `metrics.enabled`:
 * - Two baresip phones register with Digest, a SIPp registrar challenges the gateway's trunk
 *   REGISTER, a SIPp REGISTER with a wrong password is refused; then one phone calls the other.
 *   `GET /metrics` is scraped before, during and after the call: bindings, REGISTER results, the
 *   trunk's state, active/started/answered calls, auth failures and RTP packets move as they
 *   should (the values are printed).
 * - The call ends with one `call summary` line carrying parties, durations, codec and packets.
 * - Audit: the whole debug log holds none of the passwords and no Digest `response="..."` value.
 */
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { registeredPhone } from '../helpers/baresip.ts';
import { findExecutable, freePort, startGateway } from '../helpers/gateway-process.ts';
import { logLines } from '../helpers/logfmt.ts';
import { scratch } from '../helpers/scratch.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { sleep, until } from '../helpers/wait.ts';
import { writeToneWav } from '../helpers/wav.ts';

const sipp = findExecutable('sipp');
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');
if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const SCENARIOS = join(import.meta.dirname, '..', 'sipp');
const { dir: work, defer } = scratch('metrics-logging');
const CALLER = '301';
const CALLEE = '302';
const PASSWORDS: Record<string, string> = { [CALLER]: 'Caller-Secret-7781', [CALLEE]: 'Callee-Secret-4410' };
const TRUNK_USER = 'gw-trunk';
const TRUNK_PASSWORD = 'Trunk-Secret-9032';
const GW_RTP: [number, number] = [24000, 24099];

// The trunk's registrar: challenges, verifies the Digest answer, accepts, and takes the un-REGISTER.
const trunkPort = await freePort();
const registrar = spawnSipp(sipp, ['-sf', join(SCENARIOS, 'register-challenge-uas.xml'), '-m', '1', '-set', 'user', TRUNK_USER, '-set', 'pass', TRUNK_PASSWORD, '-i', '127.0.0.1', '-p', String(trunkPort)], 40_000);
defer(() => registrar.kill());
await sleep(300);

const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    log: { level: 'debug' },
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions: { [CALLER]: { password: PASSWORDS[CALLER] }, [CALLEE]: { password: PASSWORDS[CALLEE] } },
    trunks: [{ name: 'sipp', host: '127.0.0.1', port: trunkPort, transport: 'udp', username: TRUNK_USER, password: TRUNK_PASSWORD, register: true, expires: 300 }],
    media: { rtpPorts: GW_RTP, bind: '127.0.0.1', rtpTimeoutSeconds: 30 },
    registrar: { qualifySeconds: 0 },
    security: { maxAuthFailures: 1000 },
    metrics: { enabled: true, port: 0 },
  }),
);
const gw = await startGateway({ args: ['--config', config] });
defer(() => gw.stop());
await until(() => logLines(gw.log(), 'metrics endpoint listening').length > 0, 10_000);
const metricsPort = Number(logLines(gw.log(), 'metrics endpoint listening')[0]?.port ?? 0);
if (!(metricsPort > 0)) throw new Error(`no metrics endpoint in the log:\n${gw.log().slice(-2000)}`);

/** One scrape: the sample lines as name{labels} → value. */
async function scrape(): Promise<{ text: string; get(key: string): number | undefined }> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: metricsPort, path: '/metrics', agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
    req.on('error', reject);
    req.end();
  });
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { text, get: (key) => values.get(key) };
}

/** The hookswitch_ samples worth printing (no HELP/TYPE lines). */
const printed = (text: string): string => text.split('\n').filter((l) => l.startsWith('hookswitch_')).join('\n');

const tone = join(work, 'tone.wav');
writeToneWav(tone, { rate: 8000, seconds: 60, frequency: 440 });
const caller = await registeredPhone({ ext: CALLER, password: PASSWORDS[CALLER]!, gateway: gw, defer, toneWav: tone, autoAnswer: false, rtpPorts: [24200, 24239] });
const callee = await registeredPhone({ ext: CALLEE, password: PASSWORDS[CALLEE]!, gateway: gw, defer, toneWav: tone, autoAnswer: true, rtpPorts: [24240, 24279] });

await t.test('/metrics follows registrations, a refused REGISTER, and a call during and after', async (t) => {
  t.ok(await until(() => /msg="registration state changed" trunk=sipp state=registered/.test(gw.log()), 10_000), 'the trunk registered with the SIPp registrar');
  const before = await scrape();
  t.comment(`before the call:\n${printed(before.text)}`);
  t.equal(before.get('hookswitch_registrar_bindings'), 2, 'two phones registered');
  t.ok((before.get('hookswitch_register_requests_total{result="ok"}') ?? 0) >= 2, 'their REGISTERs counted as ok');
  t.equal(before.get('hookswitch_trunk_registration_state{trunk="sipp",state="registered"}'), 1, 'the trunk is registered');
  t.equal(before.get('hookswitch_trunk_registration_state{trunk="sipp",state="failed"}'), 0);
  t.equal(before.get('hookswitch_calls_active'), 0);
  t.equal(before.get('hookswitch_auth_failures_total'), 0);

  const local = await freePort();
  const wrong = await spawnSipp(sipp, ['-sf', join(SCENARIOS, 'register-auth-uac.xml'), '-m', '1', '-s', CALLER, '-au', CALLER, '-ap', 'Not-The-Password-1', '-i', '127.0.0.1', '-p', String(local), `127.0.0.1:${gw.port}`], 10_000).result;
  t.notOk(wrong.timedOut, 'the SIPp REGISTER with a wrong password finished', { output: wrong.output });
  const refused = await scrape();
  t.equal(refused.get('hookswitch_auth_failures_total'), 1, 'the wrong credentials counted once');
  t.ok((refused.get('hookswitch_sip_messages_received_total') ?? 0) > (before.get('hookswitch_sip_messages_received_total') ?? 0), 'SIP messages counted');

  const since = caller.events.length;
  await caller.dial(`sip:${CALLEE}@127.0.0.1:${gw.port}`);
  await caller.waitEvent('CALL_ESTABLISHED', { since });
  // Long enough for the phones' first RTCP reports (RFC 3550 §6.2: about 5 s apart).
  await sleep(6500);
  const during = await scrape();
  t.comment(`during the call:\n${printed(during.text)}`);
  t.equal(during.get('hookswitch_calls_active'), 1, 'one call active');
  t.equal(during.get('hookswitch_calls_started_total{target="extension"}'), 1, 'started, to an extension');
  t.equal(during.get('hookswitch_calls_answered_total{target="extension"}'), 1, 'answered');

  const ends = logLines(gw.log(), 'call summary').length;
  await caller.hangup();
  t.ok(await until(() => logLines(gw.log(), 'call summary').length > ends, 5000), 'the call ended');
  const after = await scrape();
  t.comment(`after the call:\n${printed(after.text)}`);
  t.equal(after.get('hookswitch_calls_active'), 0, 'no call active');
  t.equal(after.get('hookswitch_calls_failed_total{target="extension"}'), undefined, 'an answered call is no failure');
  const received = after.get('hookswitch_rtp_packets_received_total') ?? 0;
  const sent = after.get('hookswitch_rtp_packets_sent_total') ?? 0;
  // 6.5 s of 20 ms packets, two slots: well over 500 each way.
  t.ok(received > 500, `RTP packets received: ${received}`);
  t.ok(sent > 500, `RTP packets sent: ${sent}`);
  t.equal(after.get('hookswitch_rtp_packets_lost_total'), 0, 'nothing lost on loopback');

  const summary = logLines(gw.log(), 'call summary').at(-1)!;
  t.comment(`call summary: ${JSON.stringify(summary)}`);
  t.match(summary, { from: CALLER, to: CALLEE, target: 'extension', answered: 'true', codec: 'PCMU/8000' }, 'parties, target and codec');
  t.ok(Number(summary.seconds) >= 6 && Number(summary.talkSeconds) >= 6, 'durations');
  t.ok(Number(summary.aPacketsIn) > 100 && Number(summary.bPacketsIn) > 100, 'packets of both slots');
  t.ok(logLines(gw.log(), 'call ended').length > 0 && logLines(gw.log(), 'relay closed').length > 0, 'the older lines are still there');
  void callee;
});

await t.test('audit: no password and no Digest response in the debug log', async (t) => {
  const status = await gw.stop();
  t.same(status, { code: 0, signal: null }, 'the gateway exits 0');
  await registrar.result;
  const log = gw.log();
  const debugLines = log.split('\n').filter((l) => l.startsWith('level=debug')).length;
  t.ok(debugLines > 20, `the log is at debug level (${debugLines} debug lines of ${log.split('\n').length})`);
  t.match(log, /Authorization|authenticated|registration state changed/i, 'authentication happened in the logged span');
  for (const [name, secret] of [...Object.entries(PASSWORDS), ['trunk', TRUNK_PASSWORD], ['wrong REGISTER', 'Not-The-Password-1']]) {
    t.notOk(log.includes(secret!), `the ${name} password is not in the log`);
  }
  const responses = log.match(/response\s*=\s*"?[0-9a-f]{16,}/gi) ?? [];
  t.same(responses, [], 'no Digest response value in the log');
});
