/**
 * The device endpoint against baresip 1.0.0, all on 127.0.0.1 with the gateway as a child process
 * and the `file` audio backend as the handset (a WAV microphone, a WAV earpiece):
 * - baresip calls the device once per codec (PCMU, PCMA, G.722, opus, L16; baresip offers only
 *   that codec): the device answers by itself; baresip records the device's 1 kHz and the
 *   device's playback WAV holds baresip's 440 Hz.
 * - DTMF from baresip reaches the device as digits (RFC 4733 events), and DTMF from the device
 *   (`hookswitch dtmf`) reaches baresip.
 * - The device calls baresip (`hookswitch call`), both hear each other, `hookswitch hangup` ends it.
 * - The device calls a SIPp UAS behind a trunk (dial plan 9x.), which echoes its RTP: the device
 *   hears its own tone.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { registeredPhone, type Baresip, type BaresipCodec } from '../helpers/baresip.ts';
import { findExecutable, freePort, REPO_ROOT, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { dominantFrequency, readWav, steadyPart, writeToneWav } from '../helpers/wav.ts';
import { sleep, until, udpPortTaken } from '../helpers/wait.ts';
import { scratch } from '../helpers/scratch.ts';
import { logLines } from '../helpers/logfmt.ts';

if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');
const sipp = findExecutable('sipp');
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');

const run = promisify(execFile);
const GW_RTP: [number, number] = [24000, 24199];
const PHONE_RTP_BASE = 24200;
const DEVICE_TONE = 1000;
const PHONE_TONE = 440;
const CALL_MS = 2500;
const CARD_RATE = 48000;

const { dir: work, defer } = scratch('device');

const CODECS: { codec: BaresipCodec; rate: number; channels: number; ext: string }[] = [
  { codec: 'PCMU/8000/1', rate: 8000, channels: 1, ext: '301' },
  { codec: 'PCMA/8000/1', rate: 8000, channels: 1, ext: '302' },
  { codec: 'G722/16000/1', rate: 16000, channels: 1, ext: '303' },
  { codec: 'opus/48000/2', rate: 48000, channels: 2, ext: '304' },
  { codec: 'L16/16000/1', rate: 16000, channels: 1, ext: '305' },
];
const DTMF_EXT = '310';
const INFO_EXT = '311';
const uasPort = await freePort();
const password = (ext: string) => `phone-${ext}-secret`;
const extensions: Record<string, { password: string }> = {};
for (const ext of [...CODECS.map((c) => c.ext), DTMF_EXT, INFO_EXT]) extensions[ext] = { password: password(ext) };

const stateDir = join(work, 'state');
const micWav = join(work, 'device-mic.wav');
const earWav = join(work, 'device-ear.wav');
writeToneWav(micWav, { rate: CARD_RATE, seconds: 60, frequency: DEVICE_TONE });
const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    log: { level: 'debug' },
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions,
    device: { extension: '100', autoAnswer: true },
    media: { rtpPorts: GW_RTP, bind: '127.0.0.1', rtpTimeoutSeconds: 10, codecs: ['G722', 'opus', 'PCMU', 'PCMA', 'L16/16000'] },
    audio: { backend: 'file', capture: micWav, playback: earWav, rate: CARD_RATE },
    registrar: { qualifySeconds: 0 },
    trunks: [{ name: 'sipp', host: '127.0.0.1', port: uasPort, username: 'door', password: 'trunk-secret-4711', register: false }],
    dialplan: [{ match: '9x.', to: 'trunk:sipp', strip: 1 }],
  }),
);
const gw: GatewayProcess = await startGateway({ args: ['--config', config, '--state-dir', stateDir] });
defer(() => gw.stop());

const phoneTone = join(work, `tone-${PHONE_TONE}.wav`);
writeToneWav(phoneTone, { rate: 8000, seconds: 60, frequency: PHONE_TONE });

let phones = 0;
async function phone(ext: string, codec: BaresipCodec, autoAnswer = false): Promise<Baresip> {
  const base = PHONE_RTP_BASE + 40 * phones++;
  return registeredPhone({ ext, password: password(ext), gateway: gw, defer, codecs: [codec], toneWav: phoneTone, recordDir: true, autoAnswer, rtpPorts: [base, base + 39] });
}


/** The `hookswitch` CLI against the running gateway's control socket. */
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import=tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args, '--state-dir', stateDir], { cwd: REPO_ROOT });
  return stdout;
}

function heardByPhone(p: Baresip): { frequency: number; ratio: number; rate: number } {
  const last = p.recordings().received.sort().at(-1);
  if (!last) return { frequency: 0, ratio: 0, rate: 0 };
  const wav = readWav(last);
  return { ...dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate), rate: wav.rate };
}

function heardByDevice(): { frequency: number; ratio: number; seconds: number } {
  const wav = readWav(earWav);
  return { ...dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate), seconds: wav.samples.length / wav.rate };
}

const dtmfLines = () => logLines(gw.log(), 'dtmf received');
const logCount = (msg: string) => gw.log().split('\n').filter((l) => l.includes(`msg="${msg}"`)).length;

// The phone of the DTMF and outgoing-call tests, started before the first test: tap ends the root
// test once its last queued test is done, so nothing may be started between tests at the top level.
const keypad = await phone(DTMF_EXT, 'PCMU/8000/1', true);

await t.test('baresip calls the device with each codec: each side hears the other', async (t) => {
  for (const c of CODECS) {
    await t.test(c.codec, async (t) => {
      const p = await phone(c.ext, c.codec);
      const ended = logCount('audio device closed');
      const since = p.events.length;
      await p.dial(`sip:100@127.0.0.1:${gw.port}`);
      await p.waitEvent('CALL_ESTABLISHED', { since });
      await sleep(CALL_MS);
      await p.hangup();
      await p.waitEvent('CALL_CLOSED', { since });
      t.ok(await until(() => logCount('audio device closed') > ended, 3000), 'the device hung up and closed its sound card');
      const phoneHeard = heardByPhone(p);
      t.equal(phoneHeard.rate, c.rate, `baresip decoded ${c.codec}`);
      t.ok(phoneHeard.frequency === DEVICE_TONE && phoneHeard.ratio > 0.8, `baresip heard the device's ${DEVICE_TONE} Hz (got ${phoneHeard.frequency} Hz, ratio ${phoneHeard.ratio.toFixed(3)})`, { log: gw.log().slice(-4000) });
      const deviceHeard = heardByDevice();
      t.ok(deviceHeard.seconds > 1, `the earpiece WAV holds the call (${deviceHeard.seconds.toFixed(1)} s)`);
      t.ok(deviceHeard.frequency === PHONE_TONE && deviceHeard.ratio > 0.8, `the device heard baresip's ${PHONE_TONE} Hz (got ${deviceHeard.frequency} Hz, ratio ${deviceHeard.ratio.toFixed(3)})`);
      // One line at the call's end with its statistics (RTP counts, loss, jitter; RTT once an RR came).
      const stats = logLines(gw.log(), 'call media').at(-1) ?? {};
      t.equal(stats.codec?.toLowerCase(), c.codec.split('/')[0]!.toLowerCase(), `the call-end line names the codec (${JSON.stringify(stats)})`);
      const sent = Number(stats.packetsSent);
      const received = Number(stats.packetsReceived);
      const expected = CALL_MS / 20;
      // baresip packs L16 into 40 ms packets: half as many arrive.
      t.ok(sent > expected * 0.8 && received > expected * 0.4, `about ${expected} packets sent (${sent}), ${received} received`);
      t.equal(Number(stats.lossPercent), 0, 'no loss on loopback');
      t.ok(Number.isFinite(Number(stats.jitterMs)), 'jitter reported');
      await p.stop();
    });
  }
});



await t.test('DTMF both ways and a call placed by the device', async (t) => {
  const since = keypad.events.length;
  t.match(await cli('call', DTMF_EXT), /call: /, 'hookswitch call places the call');
  await keypad.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 10_000 });
  t.ok(await until(() => /device: connected/.test(gw.log()) || logCount('device connected') > 0, 5000), 'the device sees the call connected');
  await sleep(1000);

  // baresip → device: RFC 4733 events (baresip's default DTMF mode).
  const digitsBefore = gw.log().split('\n').filter((l) => l.includes('msg="dtmf received"')).length;
  for (const d of ['4', '2', '#']) {
    await keypad.command('sndcode', d);
    await sleep(400);
  }
  t.ok(
    await until(() => gw.log().split('\n').filter((l) => l.includes('msg="dtmf received"')).length >= digitsBefore + 3, 3000),
    'three digits reached the device',
  );
  const received = dtmfLines()
    .slice(digitsBefore)
    .map((l) => `${l.digit}:${l.source}`);
  t.same(received, ['4:rfc4733', '2:rfc4733', '#:rfc4733'], 'as RFC 4733 events, in order');
  t.match(await cli('status'), /digits: .*4:rfc4733:\d+ 2:rfc4733:\d+ #:rfc4733:\d+/, 'hookswitch status lists them with durations');

  // device → baresip: RFC 4733 (baresip offered telephone-event).
  const dtmfSince = keypad.events.length;
  t.match(await cli('dtmf', '19'), /method: rfc4733/, 'hookswitch dtmf sends RFC 4733 events');
  const starts = await until(() => keypad.events.slice(dtmfSince).filter((e) => e.type === 'CALL_DTMF_START').length >= 2, 5000);
  const keys = keypad.events.slice(dtmfSince).filter((e) => e.type === 'CALL_DTMF_START').map((e) => e.param);
  t.ok(starts, `baresip received the digits (${keys.join(',')})`, { events: keypad.events.slice(dtmfSince).map((e) => e.type) });
  t.same(keys, ['1', '9'], 'both, in order');

  await sleep(1500);
  t.match(await cli('hangup'), /call: /, 'hookswitch hangup ends the call');
  await keypad.waitEvent('CALL_CLOSED', { since, timeoutMs: 5000 });
  const heard = heardByPhone(keypad);
  t.ok(heard.frequency === DEVICE_TONE && heard.ratio > 0.8, `baresip heard the device's tone on the call the device placed (got ${heard.frequency} Hz)`);
  const ear = heardByDevice();
  t.ok(ear.frequency === PHONE_TONE && ear.ratio > 0.5, `the device heard baresip (got ${ear.frequency} Hz, ratio ${ear.ratio.toFixed(3)})`);
});

await t.test('SIP INFO DTMF from a phone reaches the device', async (t) => {
  // baresip 1.0 sends RFC 4733 only; SIPp sends the INFOs (application/dtmf-relay, application/dtmf).
  const before = dtmfLines().length;
  const caller = spawnSipp(
    sipp,
    [
      '-sf', join(import.meta.dirname, '..', 'sipp', 'device-info-uac.xml'),
      '-m', '1', '-s', '100', '-au', INFO_EXT, '-ap', password(INFO_EXT), '-key', 'caller', INFO_EXT,
      '-auth_uri', `100@127.0.0.1:${gw.port}`, '-i', '127.0.0.1', '-p', String(await freePort()), `127.0.0.1:${gw.port}`,
    ],
    20_000,
  );
  defer(() => caller.kill());
  const result = await caller.result;
  t.equal(result.exitCode, 0, 'the call was answered, both INFOs got 200, BYE got 200', { output: result.output, log: gw.log().slice(-3000) });
  const got = dtmfLines().slice(before).map((l) => `${l.digit}:${l.source}:${l.ms}`);
  t.same(got, ['7:info:160', '5:info:100'], 'the device got 7 (dtmf-relay, 160 ms) and 5 (application/dtmf, default 100 ms)');
});

await t.test('the device calls a SIPp callee behind a trunk and hears its own tone echoed', async (t) => {
  const callee = spawnSipp(sipp, ['-sn', 'uas', '-m', '1', '-rtp_echo', '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(await freePort())], 30_000);
  defer(() => callee.kill());
  t.ok(await udpPortTaken(uasPort, 10_000), 'the SIPp callee is listening');
  t.match(await cli('call', '9555'), /call: /, 'hookswitch call 9555 goes to the trunk');
  t.ok(await until(() => logCount('device connected') >= 2, 10_000), 'the call connected', { log: gw.log().slice(-3000) });
  await sleep(CALL_MS);
  t.match(await cli('hangup'), /call: /, 'the device hangs up');
  const result = await callee.result;
  t.equal(result.exitCode, 0, 'SIPp saw INVITE, ACK and BYE', { output: result.output });
  const ear = heardByDevice();
  t.ok(ear.frequency === DEVICE_TONE && ear.ratio > 0.8, `the device heard its own ${DEVICE_TONE} Hz back (got ${ear.frequency} Hz, ratio ${ear.ratio.toFixed(3)})`);
});
