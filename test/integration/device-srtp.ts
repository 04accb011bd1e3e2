/**
 * SRTP (RFC 3711) keyed by SDES (RFC 4568) on the device's own media, against baresip 1.0.0 on
 * 127.0.0.1 with the gateway as a child process, `media.srtp: mandatory`, SIP over TLS (a
 * throw-away certificate from openssl) and the `file` audio backend as the handset (a 1 kHz WAV
 * microphone, a WAV earpiece):
 * - baresip (`;mediaenc=srtp-mand`, registered over TLS) calls the device: RTP/SAVP with
 *   `a=crypto` both ways, each side hears the other, no packet dropped.
 * - the device calls baresip over the TLS binding: the device offers RTP/SAVP, same checks.
 * - baresip registered over UDP offering SRTP: refused with 488 and one `srtp refused` line (the
 *   keys would travel over plain signalling).
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { startBaresip, type Baresip } from '../helpers/baresip.ts';
import { findExecutable, freePort, REPO_ROOT, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { logLines } from '../helpers/logfmt.ts';
import { scratch } from '../helpers/scratch.ts';
import { dominantFrequency, readWav, steadyPart, writeToneWav } from '../helpers/wav.ts';
import { sleep, until } from '../helpers/wait.ts';
import { makeTestCertificate } from '../helpers/tls-cert.ts';

if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');
if (!findExecutable('openssl')) throw new Error('openssl is not installed');

const run = promisify(execFile);
const GW_RTP: [number, number] = [25000, 25099];
const PHONE_RTP_BASE = 25200;
const DEVICE_TONE = 1000;
const PHONE_TONE = 440;
const CALL_MS = 2500;
const CARD_RATE = 48000;
const TLS_EXT = '401';
const UDP_EXT = '402';

const { dir: work, defer } = scratch('device-srtp');
makeTestCertificate(work);
const tlsPort = await freePort();
const password = (ext: string) => `phone-${ext}-secret`;
const stateDir = join(work, 'state');
const micWav = join(work, 'device-mic.wav');
const earWav = join(work, 'device-ear.wav');
writeToneWav(micWav, { rate: CARD_RATE, seconds: 60, frequency: DEVICE_TONE });
const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    log: { level: 'debug' },
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'], tls: { port: tlsPort, cert: join(work, 'cert.pem'), key: join(work, 'key.pem') } },
    extensions: { [TLS_EXT]: { password: password(TLS_EXT) }, [UDP_EXT]: { password: password(UDP_EXT) } },
    device: { extension: '100', autoAnswer: true },
    media: { rtpPorts: GW_RTP, bind: '127.0.0.1', rtpTimeoutSeconds: 10, codecs: ['PCMU'], srtp: 'mandatory' },
    audio: { backend: 'file', capture: micWav, playback: earWav, rate: CARD_RATE },
    registrar: { qualifySeconds: 0 },
  }),
);
const gw: GatewayProcess = await startGateway({ args: ['--config', config, '--state-dir', stateDir] });
defer(() => gw.stop());

const phoneTone = join(work, `tone-${PHONE_TONE}.wav`);
writeToneWav(phoneTone, { rate: 8000, seconds: 60, frequency: PHONE_TONE });

let phones = 0;
/** baresip registered as `ext` over `transport` (TLS to the gateway's TLS port), SRTP mandatory. */
async function phone(ext: string, transport: 'udp' | 'tls'): Promise<Baresip> {
  const base = PHONE_RTP_BASE + 40 * phones++;
  const p = await startBaresip({
    name: ext,
    account: { user: ext, password: password(ext), registrar: `127.0.0.1:${transport === 'tls' ? tlsPort : gw.port}`, transport },
    codecs: ['PCMU/8000/1'],
    toneWav: phoneTone,
    recordDir: true,
    autoAnswer: true,
    rtpPorts: [base, base + 39],
    // RFC 3711 via baresip's srtp module; `mediaenc=srtp-mand` offers RTP/SAVP and requires SRTP.
    extraConfig: ['module srtp.so'],
    accountParams: ['mediaenc=srtp-mand'],
  });
  defer(() => p.stop());
  await p.waitEvent('REGISTER_OK', { timeoutMs: 10_000 }).catch((e: Error) => {
    throw new Error(`${e.message}\n--- baresip ${ext} ---\n${p.log().slice(-3000)}\n--- gateway ---\n${gw.log().slice(-3000)}`);
  });
  return p;
}

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import=tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args, '--state-dir', stateDir], { cwd: REPO_ROOT });
  return stdout;
}

function heardByPhone(p: Baresip): { frequency: number; ratio: number } {
  const last = p.recordings().received.sort().at(-1);
  if (!last) return { frequency: 0, ratio: 0 };
  const wav = readWav(last);
  return dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate);
}

function heardByDevice(): { frequency: number; ratio: number } {
  const wav = readWav(earWav);
  return dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate);
}

const logCount = (msg: string) => logLines(gw.log(), msg).length;

/** The checks of one SRTP call once it ended: both tones, and the call-end line's SRTP figures. */
function checkCall(t: Test, p: Baresip, what: string, dropsBefore: number): void {
  const phoneHeard = heardByPhone(p);
  t.ok(phoneHeard.frequency === DEVICE_TONE && phoneHeard.ratio > 0.8, `${what}: baresip heard the device's ${DEVICE_TONE} Hz (got ${phoneHeard.frequency} Hz, ratio ${phoneHeard.ratio.toFixed(3)})`, { log: gw.log().slice(-4000) });
  const deviceHeard = heardByDevice();
  t.ok(deviceHeard.frequency === PHONE_TONE && deviceHeard.ratio > 0.8, `${what}: the device heard baresip's ${PHONE_TONE} Hz (got ${deviceHeard.frequency} Hz, ratio ${deviceHeard.ratio.toFixed(3)})`);
  const stats = logLines(gw.log(), 'call media').at(-1) ?? {};
  t.match(stats.srtp, /^AES_CM_128_HMAC_SHA1_(80|32)$/, `${what}: the call-end line names the SRTP suite (${JSON.stringify(stats)})`);
  const expected = CALL_MS / 20;
  t.ok(Number(stats.srtpUnprotected) > expected * 0.8, `${what}: about ${expected} SRTP packets authenticated and decrypted (${stats.srtpUnprotected})`);
  // baresip 1.0.0 sends its first RTCP packet (an APP "PING"/"PONG", 16 octets) in clear before
  // its srtp module protects the stream (seen with tshark on lo): unauthenticated, it is dropped
  // (RFC 3711 §3.4). Every RTP packet must authenticate.
  const drops = logLines(gw.log(), 'srtp drop').slice(dropsBefore);
  t.ok(Number(stats.srtpDropped) <= 1 && drops.every((d) => d.kind === 'rtcp' && d.code === 'SRTP_TOO_SHORT'), `${what}: no RTP dropped, at most baresip's clear RTCP APP (${stats.srtpDrops ?? 'none'})`, { drops });
  t.equal(Number(stats.lossPercent), 0, `${what}: no loss`);
  t.ok(/SRTP is Enabled|srtp: .*Enabled/i.test(p.log()), `${what}: baresip switched SRTP on`, { log: p.log().slice(-2000) });
  t.notOk(/inline:[A-Za-z0-9+/]{20}/.test(gw.log()), `${what}: no SDES key in the gateway's log`);
}

const tlsPhone = await phone(TLS_EXT, 'tls');
const udpPhone = await phone(UDP_EXT, 'udp');

await t.test('baresip calls the device over TLS with RTP/SAVP: each side hears the other', async (t) => {
  const ended = logCount('audio device closed');
  const drops = logCount('srtp drop');
  const since = tlsPhone.events.length;
  await tlsPhone.dial(`sip:100@127.0.0.1:${tlsPort};transport=tls`);
  await tlsPhone.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 10_000 }).catch((e: Error) => {
    throw new Error(`${e.message}\n--- baresip ---\n${tlsPhone.log().slice(-3000)}\n--- gateway ---\n${gw.log().slice(-4000)}`);
  });
  await sleep(CALL_MS);
  await tlsPhone.hangup();
  await tlsPhone.waitEvent('CALL_CLOSED', { since });
  t.ok(await until(() => logCount('audio device closed') > ended, 3000), 'the device hung up and closed its sound card');
  t.ok(logLines(gw.log(), 'srtp keyed').length >= 1, 'the device keyed SRTP');
  checkCall(t, tlsPhone, 'baresip → device', drops);
});

await t.test('the device calls baresip over the TLS binding with RTP/SAVP', async (t) => {
  const since = tlsPhone.events.length;
  const keyed = logCount('srtp keyed');
  const drops = logCount('srtp drop');
  t.match(await cli('call', TLS_EXT), /call: /, 'hookswitch call places the call');
  await tlsPhone.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 10_000 }).catch((e: Error) => {
    throw new Error(`${e.message}\n--- baresip ---\n${tlsPhone.log().slice(-3000)}\n--- gateway ---\n${gw.log().slice(-4000)}`);
  });
  await sleep(CALL_MS);
  t.match(await cli('hangup'), /call: /, 'hookswitch hangup ends the call');
  await tlsPhone.waitEvent('CALL_CLOSED', { since, timeoutMs: 5000 });
  t.ok(await until(() => logLines(gw.log(), 'call media').length >= 2, 3000), 'the call ended');
  t.equal(logCount('srtp keyed'), keyed + 1, 'the device keyed SRTP for the call');
  checkCall(t, tlsPhone, 'device → baresip', drops);
});

await t.test('SDES over plain UDP with SRTP mandatory is refused with 488 and one log line', async (t) => {
  const since = udpPhone.events.length;
  const refused = logCount('srtp refused');
  await udpPhone.dial(`sip:100@127.0.0.1:${gw.port}`);
  const closed = await udpPhone.waitEvent('CALL_CLOSED', { since, timeoutMs: 10_000 });
  t.match(closed.param, /488/, `baresip got 488 (${closed.param})`);
  t.ok(await until(() => logCount('srtp refused') === refused + 1, 2000), 'one srtp refused line');
  await sleep(300);
  const lines = logLines(gw.log(), 'srtp refused').slice(refused);
  t.equal(lines.length, 1, 'exactly one');
  t.match(lines[0]?.reason, /udp/, `it names the plain transport (${lines[0]?.reason})`);
  t.equal(udpPhone.events.slice(since).filter((e) => e.type === 'CALL_ESTABLISHED').length, 0, 'the call never connected');
});
