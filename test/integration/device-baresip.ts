/**
 * The device endpoint against baresip 1.0.0, all on 127.0.0.1 with the gateway as a child process
 * and the `file` audio backend as the handset (a WAV microphone, a WAV earpiece):
 * - baresip calls the device once per codec (PCMU, PCMA, G.722, opus, L16; baresip offers only
 *   that codec): the device answers by itself; baresip records the device's 1 kHz and the
 *   device's playback WAV holds baresip's 440 Hz.
 * - DTMF from baresip reaches the device as digits (RFC 4733 events), and DTMF from the device
 *   (`hookswitch dtmf`) reaches baresip.
 * - The device calls baresip (`hookswitch call`), both hear each other, `hookswitch hangup` ends it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startBaresip, type Baresip, type BaresipCodec } from '../helpers/baresip.ts';
import { findExecutable, REPO_ROOT, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { dominantFrequency, readWav, steadyPart, writeToneWav } from '../helpers/wav.ts';

if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const run = promisify(execFile);
const GW_RTP: [number, number] = [24000, 24199];
const PHONE_RTP_BASE = 24200;
const DEVICE_TONE = 1000;
const PHONE_TONE = 440;
const CALL_MS = 2500;
const CARD_RATE = 48000;

const work = mkdtempSync(join(tmpdir(), 'hookswitch-device-'));
const cleanups: (() => unknown)[] = [];
t.teardown(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
});

const CODECS: { codec: BaresipCodec; rate: number; channels: number; ext: string }[] = [
  { codec: 'PCMU/8000/1', rate: 8000, channels: 1, ext: '301' },
  { codec: 'PCMA/8000/1', rate: 8000, channels: 1, ext: '302' },
  { codec: 'G722/16000/1', rate: 16000, channels: 1, ext: '303' },
  { codec: 'opus/48000/2', rate: 48000, channels: 2, ext: '304' },
  { codec: 'L16/16000/1', rate: 16000, channels: 1, ext: '305' },
];
const DTMF_EXT = '310';
const password = (ext: string) => `phone-${ext}-secret`;
const extensions: Record<string, { password: string }> = {};
for (const ext of [...CODECS.map((c) => c.ext), DTMF_EXT]) extensions[ext] = { password: password(ext) };

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
  }),
);
const gw: GatewayProcess = await startGateway({ args: ['--config', config, '--state-dir', stateDir] });
cleanups.push(() => gw.stop());

const phoneTone = join(work, `tone-${PHONE_TONE}.wav`);
writeToneWav(phoneTone, { rate: 8000, seconds: 60, frequency: PHONE_TONE });

let phones = 0;
async function phone(ext: string, codec: BaresipCodec, autoAnswer = false): Promise<Baresip> {
  const base = PHONE_RTP_BASE + 40 * phones++;
  const p = await startBaresip({
    name: ext,
    account: { user: ext, password: password(ext), registrar: `127.0.0.1:${gw.port}` },
    codecs: [codec],
    toneWav: phoneTone,
    recordDir: true,
    autoAnswer,
    rtpPorts: [base, base + 39],
  });
  cleanups.push(() => p.stop());
  await p.waitEvent('REGISTER_OK', { timeoutMs: 10_000 });
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (what()) return true;
    await sleep(100);
  }
  return what();
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

const logCount = (msg: string) => gw.log().split('\n').filter((l) => l.includes(`msg="${msg}"`)).length;

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
      await p.stop();
    });
  }
});
