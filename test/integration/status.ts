/**
 * `hookswitch status` against a running gateway (a child process on 127.0.0.1): two baresip
 * phones registered and in a call with each other, and a trunk whose registrar (SIPp,
 * test/sipp/register-challenge-uas.xml) refuses our credentials. `status --json` must show the
 * listening sockets, both phones' bindings (contact, User-Agent, expiry), the call with both
 * legs' codec and packet counts that grow between two looks, what the phones' RTCP reports say
 * (loss, jitter, round trip), and the trunk's failure with its next retry; the text output has a
 * section per part, the rows in it, no line wider than 100 columns and no colours on a pipe.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { StatusReport } from '../../src/app/status-report.ts';
import { controlRequest } from '../../src/control/control-server.ts';
import { registeredPhone } from '../helpers/baresip.ts';
import { findExecutable, freePort, REPO_ROOT, startGateway } from '../helpers/gateway-process.ts';
import { scratch } from '../helpers/scratch.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { sleep } from '../helpers/wait.ts';

const sipp = findExecutable('sipp');
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');
if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const run = promisify(execFile);
const { dir: work, defer } = scratch('status');
/** The gateway's RTP range, and the phones' after it. */
const GW_RTP: [number, number] = [28000, 28099];
const PHONE_RTP_BASE = 28100;
/** Long enough that no second attempt (to a SIPp that has finished) starts during the test. */
const RETRY_SECONDS = 120;
const password = (ext: string): string => `status-${ext}-secret`;

// The trunk's registrar wants another password than the one configured: 401, then 403.
const registrarPort = await freePort();
const registrar = spawnSipp(
  sipp,
  ['-sf', join(REPO_ROOT, 'test', 'sipp', 'register-challenge-uas.xml'), '-m', '1', '-i', '127.0.0.1', '-p', String(registrarPort), '-set', 'user', 'gw', '-set', 'pass', 'the-right-one'],
  60_000,
);
defer(() => registrar.kill());

const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    sip: { domain: 'status.test', authAlgorithms: ['MD5'] },
    extensions: { '301': { password: password('301') }, '302': { password: password('302') } },
    trunks: [{ name: 'carrier', host: '127.0.0.1', port: registrarPort, username: 'gw', password: 'a-wrong-one', register: true, retrySeconds: RETRY_SECONDS }],
    media: { rtpPorts: GW_RTP, bind: '127.0.0.1' },
    registrar: { qualifySeconds: 0 },
  }),
);
const gw = await startGateway({ args: ['--config', config] });
defer(() => gw.stop());

const status = async (): Promise<StatusReport> => {
  const reply = (await controlRequest(join(gw.stateDir, 'control.sock'), { cmd: 'status' })) as { ok: boolean; report: StatusReport };
  if (!reply.ok) throw new Error(`status failed: ${JSON.stringify(reply)}`);
  return reply.report;
};
/** The report once `ready` holds for it (polled every 250 ms), or the last one after `timeoutMs`. */
const statusWhen = async (ready: (r: StatusReport) => boolean, timeoutMs: number): Promise<StatusReport> => {
  const end = performance.now() + timeoutMs;
  let report = await status();
  while (!ready(report) && performance.now() < end) {
    await sleep(250);
    report = await status();
  }
  return report;
};
const cli = async (...args: string[]): Promise<string> =>
  (await run(process.execPath, ['--import=tsx', join(REPO_ROOT, 'src/cli/main.ts'), 'status', ...args, '--state-dir', gw.stateDir], { cwd: REPO_ROOT })).stdout;

const caller = await registeredPhone({ ext: '301', password: password('301'), gateway: gw, defer, rtpPorts: [PHONE_RTP_BASE, PHONE_RTP_BASE + 19] });
const callee = await registeredPhone({ ext: '302', password: password('302'), gateway: gw, defer, autoAnswer: true, rtpPorts: [PHONE_RTP_BASE + 20, PHONE_RTP_BASE + 39] });

await t.test('status --json: sockets, bindings, the call with its media, the trunk failure', async (t) => {
  const report = await statusWhen((r) => r.trunks[0]?.state === 'failed', 15_000);
  t.equal(report.trunks[0]?.state, 'failed', 'the trunk registration failed', { trunks: report.trunks, log: gw.log().slice(-2000) });
  const trunk = report.trunks[0]!;
  t.match(trunk, { name: 'carrier', server: `udp 127.0.0.1:${registrarPort}`, username: 'gw', lastError: /403/ }, 'with the registrar\'s 403 as the last error');
  t.ok(trunk.nextRetryIn !== undefined && trunk.nextRetryIn > 0 && trunk.nextRetryIn <= RETRY_SECONDS, `and the next retry within ${RETRY_SECONDS} s (${trunk.nextRetryIn} s)`);

  const since = callee.events.length;
  await caller.dial(`sip:302@127.0.0.1:${gw.port}`);
  await Promise.all([caller.waitEvent('CALL_ESTABLISHED'), callee.waitEvent('CALL_ESTABLISHED', { since })]);
  await sleep(500);
  const first = await status();
  await sleep(1500);
  const second = await status();

  t.same(
    second.listening.map((l) => `${l.transport} ${l.address}:${l.port}`).sort(),
    [`tcp 127.0.0.1:${gw.port}`, `udp 127.0.0.1:${gw.port}`],
    'it listens on UDP and TCP where the gateway was bound',
  );
  t.same(second.extensions.map((e) => e.extension), ['301', '302'], 'both phones are registered');
  for (const [e, phone] of [
    [second.extensions[0]!, caller],
    [second.extensions[1]!, callee],
  ] as const) {
    t.match(e.contact, new RegExp(`^sip:${e.extension}[^@]*@127\\.0\\.0\\.1:${phone.sipPort}\\b`), `${e.extension}: the contact is the phone's (${e.contact})`);
    t.match(e.userAgent, /^baresip/, `${e.extension}: its User-Agent (${e.userAgent})`);
    t.ok(e.expiresIn > 0 && e.expiresIn <= 3600, `${e.extension}: it expires in ${e.expiresIn} s`);
    t.equal(e.source, `udp 127.0.0.1:${phone.sipPort}`, `${e.extension}: registered from the phone's port`);
  }

  t.equal(second.calls.length, 1, 'one call');
  const call = second.calls[0]!;
  t.match(call, { from: '301', to: '302', state: 'connected' }, '301 to 302, connected');
  t.ok(call.duration >= 1, `for ${call.duration} s`);
  t.same(call.legs.map((l) => [l.slot, l.party, l.media?.codec]), [
    ['a', '301', 'PCMU/8000'],
    ['b', '302', 'PCMU/8000'],
  ], 'both legs with their codec');
  for (const slot of [0, 1]) {
    const before = first.calls[0]!.legs[slot]!.media!;
    const after = call.legs[slot]!.media!;
    // 50 packets a second each way; 1.5 s between the looks.
    t.ok(after.packetsIn - before.packetsIn > 40, `leg ${call.legs[slot]!.slot}: packets in grew ${before.packetsIn} -> ${after.packetsIn}`);
    t.ok(after.packetsOut - before.packetsOut > 40, `leg ${call.legs[slot]!.slot}: packets out grew ${before.packetsOut} -> ${after.packetsOut}`);
  }
  t.match(call.legs[0]!.peer, /^udp 127\.0\.0\.1:\d+$/, 'the caller\'s signalling peer');
  t.match(second.device, { extension: '100', state: 'idle', ringing: false }, 'the device is idle');
  t.match(second.peers, { discovery: false, count: 0 }, 'no LAN discovery on loopback');

  // The phones report every few seconds (RFC 3550 §6.2): loss, jitter and, once an SR went by, the round trip.
  const reported = await statusWhen((r) => r.calls[0]?.legs.every((l) => l.media?.jitterMs !== undefined && l.media.rttMs !== undefined) ?? false, 20_000);
  t.ok(reported.calls[0]?.legs.every((l) => l.media?.jitterMs !== undefined && l.media.rttMs !== undefined), 'both phones\' RTCP reports arrived', { legs: reported.calls[0]?.legs });
  for (const leg of reported.calls[0]?.legs ?? []) {
    const m = leg.media!;
    t.equal(m.lossPercent, 0, `leg ${leg.slot}: no loss on loopback`);
    t.ok(m.jitterMs! >= 0 && m.jitterMs! < 40, `leg ${leg.slot}: jitter ${m.jitterMs} ms`);
    t.ok(m.rttMs! >= 0 && m.rttMs! < 500, `leg ${leg.slot}: round trip ${m.rttMs} ms`);
  }

  const json = JSON.parse(await cli('--json')) as { ok: boolean; device: string; report: StatusReport };
  t.equal(json.device, 'idle', 'status --json keeps the flat device fields');
  t.equal(json.report.calls.length, 1, 'and carries the report');

  const text = await cli();
  t.comment(`hookswitch status:\n${text}`);
  for (const heading of ['Listening', 'Addresses', 'Trunks (1)', 'Extensions (2 registered)', 'Calls (1)', 'Device', 'LAN peers (0)']) {
    t.match(text, new RegExp(`^${heading.replace(/[()]/g, '\\$&')}$`, 'm'), `section ${heading}`);
  }
  t.match(text, new RegExp(`^  carrier +udp 127\\.0\\.0\\.1:${registrarPort} +gw +failed +403 .*retry in (\\d+m )?\\d+s$`, 'm'), 'the trunk row');
  t.match(text, new RegExp(`^  301 +sip:301\\S*@127\\.0\\.0\\.1:${caller.sipPort}\\S* +baresip.* +\\d+m \\d+s +udp 127\\.0\\.0\\.1:${caller.sipPort}$`, 'm'), 'the caller\'s row');
  t.match(text, /^ {2}\S+ {2}301 -> 302 {2}connected {2}\d+s$/m, 'the call');
  t.match(text, /^ {4}a +301 +udp 127\.0\.0\.1:\d+ +PCMU\/8000 +- +\d+ +\d+ +0\.0% +\d+\.\d ms +\d+\.\d ms$/m, 'its caller leg with figures, plain RTP');
  t.match(text, /^ {4}b +302 +udp 127\.0\.0\.1:\d+ +PCMU\/8000 +- +\d+ +\d+ /m, 'its callee leg');
  t.match(text, /^device: idle$/m, 'the device');
  t.notOk(/\x1b\[/.test(text), 'no colours on a pipe');
  const wide = text.split('\n').filter((l) => l.length > 100);
  t.same(wide, [], 'no line wider than 100 columns');
  await caller.hangup();
});
