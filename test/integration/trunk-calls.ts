/**
 * Calls through the upstream trunk (issue 3, acceptance 4): kamailio 5.6 plays the provider.
 * hookswitch registers to it as `hookswitch`; a baresip phone is registered to hookswitch as
 * extension 101.
 * - Inbound: a SIPp caller INVITEs `hookswitch` at kamailio, which looks up the gateway's
 *   binding and relays; the gateway accepts the call without a challenge because it comes from
 *   the trunk's address and port, routes it by the dial plan (the trunk's number to 101), and baresip
 *   hears the caller's 1500 Hz PCMU stream.
 * - Outbound: baresip dials 9123, the dial plan sends it to the trunk, kamailio challenges the
 *   gateway (407, which it answers with the trunk credentials) and relays to a SIPp callee
 *   behind it that echoes RTP, so baresip hears its own 440 Hz tone back.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startBaresip, type Baresip } from '../helpers/baresip.ts';
import { findExecutable, freePort, startGateway } from '../helpers/gateway-process.ts';
import { startKamailio } from '../helpers/kamailio.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { dominantFrequency, readWav, steadyPart, writeToneWav } from '../helpers/wav.ts';
import { until, udpPortTaken } from '../helpers/wait.ts';

const sipp = findExecutable('sipp');
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');
if (!findExecutable('kamailio')) throw new Error('kamailio is not installed: run scripts/ci-deps.sh');
if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const SCENARIOS = join(import.meta.dirname, '..', 'sipp');
const TRUNK_USER = 'hookswitch';
const TRUNK_PASSWORD = 'trunk-secret-4711';
const PHONE_PASSWORD = 'desk-phone-101-secret';

const work = mkdtempSync(join(tmpdir(), 'hookswitch-trunk-calls-'));
const cleanups: (() => unknown)[] = [];
t.teardown(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
});

/** A mu-law (G.711, ITU-T G.711 table 2a) WAV, as SIPp's rtp_stream wants for payload type 0. */
function writeMulawTone(path: string, frequency: number, seconds: number): void {
  const n = 8000 * seconds;
  const data = Buffer.alloc(n);
  for (let i = 0; i < n; i++) data[i] = linearToMulaw(Math.round(8000 * Math.sin((2 * Math.PI * frequency * i) / 8000)));
  const header = Buffer.alloc(46);
  header.write('RIFF', 0);
  header.writeUInt32LE(38 + n, 4);
  header.write('WAVE', 8);
  header.write('fmt ', 12);
  header.writeUInt32LE(18, 16);
  header.writeUInt16LE(7, 20); // WAVE_FORMAT_MULAW
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(8000, 28);
  header.writeUInt16LE(1, 32);
  header.writeUInt16LE(8, 34);
  header.writeUInt16LE(0, 36);
  header.write('data', 38);
  header.writeUInt32LE(n, 42);
  writeFileSync(path, Buffer.concat([header, data]));
}

function linearToMulaw(sample: number): number {
  const BIAS = 0x84;
  const sign = sample < 0 ? 0x80 : 0;
  let s = Math.min(Math.abs(sample), 32635) + BIAS;
  let exponent = 7;
  for (let mask = 0x4000; exponent > 0 && (s & mask) === 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  s = ~(sign | (exponent << 4) | mantissa) & 0xff;
  return s;
}

const kamPort = await freePort();
const uasPort = await freePort();
const kam = await startKamailio({
  mode: 'registrar',
  port: kamPort,
  users: { [TRUNK_USER]: TRUNK_PASSWORD },
  trunkPrefix: '9',
  trunkTarget: `127.0.0.1:${uasPort}`,
  workers: 2,
});
cleanups.push(() => kam.kill());

const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    device: { extension: '100' },
    extensions: { '101': { password: PHONE_PASSWORD, name: 'Desk' } },
    media: { rtpPorts: [41000, 41099] },
    dialplan: [
      { match: '*43', to: 'echo' },
      { match: '9x.', to: 'trunk:kam' },
      { match: `/^${TRUNK_USER}$/`, to: 'extension:101' },
    ],
    trunks: [
      { name: 'kam', host: '127.0.0.1', port: kamPort, username: TRUNK_USER, password: TRUNK_PASSWORD, register: true, expires: 120 },
    ],
  }),
);
const gw = await startGateway({ args: ['--config', config] });
cleanups.push(() => gw.stop());

const phoneTone = join(work, 'phone-440.wav');
writeToneWav(phoneTone, { rate: 8000, seconds: 60, frequency: 440 });
const phone: Baresip = await startBaresip({
  name: 'desk-101',
  account: { user: '101', password: PHONE_PASSWORD, registrar: `127.0.0.1:${gw.port}` },
  codecs: ['PCMU/8000/1'],
  toneWav: phoneTone,
  recordDir: true,
  autoAnswer: true,
});
cleanups.push(() => phone.stop());

/** Whether something has bound UDP `port` on 127.0.0.1 within `timeoutMs` (SIPp starting up). */


/** The dominant frequency of the newest recording of what the phone received. */
function heardByPhone(): { frequency: number; ratio: number } {
  const files = phone.recordings().received.sort();
  const last = files.at(-1);
  if (!last) return { frequency: 0, ratio: 0 };
  const wav = readWav(last);
  return dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate);
}

await t.test('the phone and the trunk are registered', async (t) => {
  await phone.waitEvent('REGISTER_OK', { timeoutMs: 10_000 });
  t.ok(await until(() => kam.contacts(TRUNK_USER).length > 0, 10_000), 'kamailio holds the gateway binding', { log: gw.log().slice(-3000) });
});

await t.test('a provider-side caller reaches the extension its number routes to, through kamailio, with audio', async (t) => {
  const tone = join(work, 'caller-1500-mulaw.wav');
  writeMulawTone(tone, 1500, 10);
  const since = phone.events.length;
  const local = await freePort();
  // SIPp reads rtp_stream files when it loads the scenario, before -key values apply.
  const scenario = join(work, 'trunk-inbound-uac.xml');
  writeFileSync(scenario, readFileSync(join(SCENARIOS, 'trunk-inbound-uac.xml'), 'latin1').replaceAll('[tone]', tone), 'latin1');
  const caller = spawnSipp(
    sipp,
    ['-sf', scenario, '-s', TRUNK_USER, '-m', '1', '-i', '127.0.0.1', '-p', String(local), `127.0.0.1:${kamPort}`],
    30_000,
  );
  cleanups.push(() => caller.kill());
  const established = await phone.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 15_000 }).catch(() => undefined);
  t.ok(established, 'baresip answered the call from the trunk', { log: gw.log().slice(-4000), kam: kam.log().slice(-3000) });
  const result = await caller.result;
  t.equal(result.exitCode, 0, 'the SIPp caller completed INVITE/200/ACK/BYE', { output: result.output, log: gw.log().slice(-4000) });
  await phone.waitEvent('CALL_CLOSED', { since, timeoutMs: 10_000 });
  const heard = heardByPhone();
  t.ok(Math.abs(heard.frequency - 1500) <= 20 && heard.ratio > 0.7, `the phone heard the caller's 1500 Hz tone (got ${heard.frequency} Hz, ratio ${heard.ratio.toFixed(2)})`);
  t.notMatch(gw.log(), /cat=hookswitch\.uas[^\n]*407/, 'the trunk call was not challenged');
});

await t.test('the phone dials the outbound pattern and reaches a callee behind kamailio', async (t) => {
  const callee = spawnSipp(
    sipp,
    ['-sf', join(SCENARIOS, 'trunk-echo-uas.xml'), '-m', '1', '-rtp_echo', '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(await freePort())],
    40_000,
  );
  cleanups.push(() => callee.kill());
  t.ok(await udpPortTaken(uasPort, 10_000), 'the SIPp callee is listening');
  const since = phone.events.length;
  await phone.dial(`sip:9123@127.0.0.1:${gw.port}`);
  await phone.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 15_000 });
  await new Promise((r) => setTimeout(r, 3000));
  await phone.hangup();
  await phone.waitEvent('CALL_CLOSED', { since, timeoutMs: 10_000 });
  const result = await callee.result;
  t.equal(result.exitCode, 0, 'the SIPp callee behind kamailio saw INVITE/ACK/BYE', { output: result.output, log: gw.log().slice(-4000), kam: kam.log().slice(-3000) });
  const heard = heardByPhone();
  t.ok(Math.abs(heard.frequency - 440) <= 20 && heard.ratio > 0.7, `the callee's RTP echo brought the phone's 440 Hz tone back (got ${heard.frequency} Hz, ratio ${heard.ratio.toFixed(2)})`);
});
