/**
 * The phone logic with the simulated board (`hookswitch run --sim`, driven through its stdin)
 * against baresip 1.0.0, the `file` audio backend as the handset's capsule:
 * - Handset: lift → the dial tone (de: 425 Hz) is in the earpiece; rotary-dial 101 as pulse
 *   edges → baresip 101 rings and answers → each side hears the other → put the handset down →
 *   the call ends.
 * - Hook flash: in a call with 101, flash holds it (second dial tone), 102 is dialled, flash swaps
 *   back; 102 hangs up and calls again: the call-waiting tone is mixed into the conversation,
 *   flash answers it; on-hook with 101 held rings the handset again, lifting takes 101 back.
 * - Intercom: a call from baresip rings through the speaker with the configured ringtone WAV (a
 *   0.5 s 700 Hz file at 22.05 kHz, looped and resampled to the card), then is answered by itself.
 * - Intercom (board pi-intercom): the call button → baresip 102 answers by itself; baresip sends
 *   a wrong code, then 1234 as RFC 4733 events → the door relay pulses once, for 3 s.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { registeredPhone, type Baresip } from '../helpers/baresip.ts';
import { controlRequest } from '../../src/control/control-server.ts';
import { findExecutable, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { sleep, until } from '../helpers/wait.ts';
import { dominantFrequency, readWav, steadyPart, writeToneWav } from '../helpers/wav.ts';
import { scratch } from '../helpers/scratch.ts';

if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const DEVICE_TONE = 1000;
const PHONE_TONE = 600;
const DIAL_TONE_DE = 425;
const CARD_RATE = 16000;

const { dir: work, defer } = scratch('phone-sim');

const password = (ext: string) => `phone-${ext}-secret`;
const mic = join(work, 'mic.wav');
writeToneWav(mic, { rate: CARD_RATE, seconds: 60, frequency: DEVICE_TONE });
const phoneTone = join(work, 'phone.wav');
writeToneWav(phoneTone, { rate: 8000, seconds: 60, frequency: PHONE_TONE });
const SECOND_TONE = 800;
const secondTone = join(work, 'second.wav');
writeToneWav(secondTone, { rate: 8000, seconds: 60, frequency: SECOND_TONE });

async function gateway(name: string, extra: object, rtp: [number, number]): Promise<{ gw: GatewayProcess; ear: string }> {
  const ear = join(work, `${name}-ear.wav`);
  const config = join(work, `${name}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      log: { level: 'debug' },
      sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
      extensions: { '101': { password: password('101') }, '102': { password: password('102') } },
      media: { rtpPorts: rtp, bind: '127.0.0.1', codecs: ['PCMU'] },
      audio: { backend: 'file', capture: mic, playback: ear, rate: CARD_RATE },
      tones: { country: 'de' },
      registrar: { qualifySeconds: 0 },
      ...extra,
    }),
  );
  const gw = await startGateway({ args: ['--config', config, '--sim'], interactive: true });
  defer(() => gw.stop());
  return { gw, ear };
}

function phone(gw: GatewayProcess, ext: string, rtpBase: number, toneWav = phoneTone): Promise<Baresip> {
  return registeredPhone({ ext, password: password(ext), gateway: gw, defer, codecs: ['PCMU/8000/1'], toneWav, recordDir: true, autoAnswer: true, rtpPorts: [rtpBase, rtpBase + 39] });
}

/** Samples written to a growing earpiece WAV so far (the file backend streams it). */
function earMark(path: string): number {
  return readWav(path).samples.length;
}

/** The earpiece between two marks, without its first `skip` seconds (switching, jitter buffer). */
function earSegment(path: string, from: number, to: number, skip = 0.3): { frequency: number; ratio: number; samples: Int16Array } {
  const wav = readWav(path);
  const samples = wav.samples.subarray(from + Math.round(skip * wav.rate), to);
  return { ...dominantFrequency(samples, wav.rate), samples };
}

function heard(path: string): { frequency: number; ratio: number; seconds: number } {
  const wav = readWav(path);
  return { ...dominantFrequency(steadyPart(wav.samples, wav.rate, 0.2), wav.rate), seconds: wav.samples.length / wav.rate };
}

const logged = (gw: GatewayProcess, msg: string) => gw.log().split('\n').filter((l) => l.includes(`msg="${msg}"`));

// Everything is started before the first test (tap ends the root test after its last queued one).
const handset = await gateway('handset', {}, [28000, 28099]);
const callee = await phone(handset.gw, '101', 28100);
const second = await phone(handset.gw, '102', 28400, secondTone);
const RINGTONE = 700;
const ringtone = join(work, 'ringtone.wav');
writeToneWav(ringtone, { rate: 22050, seconds: 0.5, frequency: RINGTONE });
const intercom = await gateway(
  'intercom',
  { board: 'pi-intercom', intercom: { targets: ['102'], door: { code: '1234' }, autoAnswerDelayMs: 2000 }, tones: { country: 'de', ringtone } },
  [28200, 28299],
);
const visitor = await phone(intercom.gw, '102', 28300);

await t.test('handset: dial tone, rotary-dialled 101 rings baresip, both hear each other, on-hook ends it', async (t) => {
  const { gw, ear } = handset;
  gw.send('lift');
  await sleep(1500);
  gw.send('hangup');
  t.ok(await until(() => logged(gw, 'audio device closed').length >= 1, 3000), 'putting the handset down closes the earpiece');
  const tone = heard(ear);
  t.ok(Math.abs(tone.frequency - DIAL_TONE_DE) <= 10 && tone.ratio > 0.8, `the earpiece had the German dial tone (${tone.frequency} Hz, ratio ${tone.ratio.toFixed(3)}, ${tone.seconds.toFixed(1)} s)`);

  const since = callee.events.length;
  gw.send('lift');
  await sleep(500);
  gw.send('dial 101');
  const answered = await callee.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 10_000 }).catch(() => undefined);
  t.ok(answered, 'the rotary-dialled 101 rings baresip, which answers', { log: gw.log().slice(-3000), out: gw.stdout() });
  const digits = logged(gw, 'dialling').at(-1) ?? '';
  t.match(digits, /to=101/, 'the handset dialled 101 from the pulses');
  await sleep(2500);
  const closedBefore = logged(gw, 'audio device closed').length;
  gw.send('hangup');
  await callee.waitEvent('CALL_CLOSED', { since, timeoutMs: 5000 });
  t.pass('putting the handset down ended the call at baresip');
  t.ok(await until(() => logged(gw, 'audio device closed').length > closedBefore, 3000), 'and closed the earpiece');
  const ear2 = heard(ear);
  t.ok(ear2.frequency === PHONE_TONE && ear2.ratio > 0.8, `the earpiece heard baresip's ${PHONE_TONE} Hz (got ${ear2.frequency} Hz, ratio ${ear2.ratio.toFixed(3)})`);
  const rec = callee.recordings().received.sort().at(-1);
  const far = rec ? heard(rec) : { frequency: 0, ratio: 0 };
  t.ok(far.frequency === DEVICE_TONE && far.ratio > 0.8, `baresip heard the handset's ${DEVICE_TONE} Hz (got ${far.frequency} Hz)`);
});

await t.test('handset: hook flash holds, dials a second call, swaps; call waiting; recall', async (t) => {
  const { gw, ear } = handset;
  const says = (msg: string) => logged(gw, msg).length;
  const sinceA = callee.events.length;
  const sinceB = second.events.length;
  gw.send('lift');
  await sleep(500);
  gw.send('dial 101');
  await callee.waitEvent('CALL_ESTABLISHED', { since: sinceA, timeoutMs: 10_000 }).catch((e: Error) => {
    throw new Error(`${e.message}\n${gw.log().slice(-4000)}\n${gw.stdout().slice(-1000)}`);
  });
  await sleep(1500);
  let mark = earMark(ear);
  const tone = (what: string, expected: number, seg: ReturnType<typeof earSegment>) =>
    t.ok(Math.abs(seg.frequency - expected) <= 10 && seg.ratio > 0.7, `${what}: ${expected} Hz in the earpiece (got ${seg.frequency} Hz, ratio ${seg.ratio.toFixed(3)})`);
  tone('talking to 101', PHONE_TONE, earSegment(ear, mark - 8000, mark));

  gw.send('flash');
  t.ok(await until(() => says('device holds call') === 1, 3000), 'flash holds the call (re-INVITE a=inactive)');
  await sleep(1200);
  const held = earMark(ear);
  tone('101 held: second dial tone', DIAL_TONE_DE, earSegment(ear, held - 12000, held));
  t.equal(says('hold refused by the far end'), 0, 'baresip accepted the hold');

  gw.send('dial 102');
  await second.waitEvent('CALL_ESTABLISHED', { since: sinceB, timeoutMs: 10_000 });
  await sleep(1500);
  mark = earMark(ear);
  tone('second call with 102', SECOND_TONE, earSegment(ear, mark - 12000, mark));

  gw.send('flash');
  t.ok(await until(() => says('device resumes call') === 1 && says('device holds call') === 2, 3000), 'flash swaps: 102 held, 101 resumed');
  await sleep(1500);
  mark = earMark(ear);
  tone('swapped back to 101', PHONE_TONE, earSegment(ear, mark - 12000, mark));

  // The held 102 hangs up, then calls again: call waiting.
  await second.hangup();
  t.ok(await until(() => says('held call ended') === 1, 3000), 'the held party hung up');
  await second.dial(`sip:100@127.0.0.1:${gw.port}`);
  t.ok(await until(() => says('call waiting') === 1, 5000), 'a second call waits');
  // The German call-waiting tone: 425 Hz 200 ms on, 200 off, 200 on, then 4.4 s off.
  const cwMark = earMark(ear);
  await sleep(1200);
  // 425 Hz's share of each 100 ms block, from 1 s before the waiting call to 1 s after.
  const around = earSegment(ear, cwMark - CARD_RATE, cwMark + CARD_RATE, 0).samples;
  const shares: number[] = [];
  for (let at = 0; at + CARD_RATE / 10 <= around.length; at += CARD_RATE / 10) {
    shares.push(dominantFrequency(around.subarray(at, at + CARD_RATE / 10), CARD_RATE, [DIAL_TONE_DE]).ratio);
  }
  const before = Math.max(...shares.slice(0, 7));
  const during = Math.max(...shares.slice(7));
  const toneDb = 10 * Math.log10(during);
  t.ok(during > 0.01 && during > 5 * before, `the German call-waiting tone (425 Hz) is mixed in, ${toneDb.toFixed(1)} dB under the conversation (before: ${(10 * Math.log10(Math.max(before, 1e-9))).toFixed(1)} dB)`);
  const window = around.subarray(Math.round(0.75 * CARD_RATE));
  t.equal(dominantFrequency(window, CARD_RATE).frequency, PHONE_TONE, '101 is still heard under the tone');

  const sinceB2 = second.events.length;
  gw.send('flash');
  await second.waitEvent('CALL_ESTABLISHED', { since: sinceB2 - 5 < 0 ? 0 : sinceB2 - 5, timeoutMs: 5000 });
  t.ok(await until(() => says('device holds call') === 3, 3000), 'flash holds 101 and answers the waiting call');
  await sleep(1500);
  mark = earMark(ear);
  tone('the waiting caller', SECOND_TONE, earSegment(ear, mark - 12000, mark));

  // Put down with 101 held: 102 is hung up, the handset rings again, lifting takes 101 back.
  const outBefore = gw.stdout().length;
  const sinceB3 = second.events.length;
  gw.send('hangup');
  await second.waitEvent('CALL_CLOSED', { since: sinceB3, timeoutMs: 5000 });
  t.ok(await until(() => gw.stdout().slice(outBefore).includes('sim: ringMode on'), 3000), 'on-hook with a call held rings the handset (recall)');
  gw.send('lift');
  t.ok(await until(() => says('device resumes call') === 2, 3000), 'lifting takes the held call back');
  await sleep(1500);
  mark = earMark(ear);
  tone('101 taken back', PHONE_TONE, earSegment(ear, mark - 12000, mark));
  const sinceA2 = callee.events.length;
  gw.send('hangup');
  await callee.waitEvent('CALL_CLOSED', { since: sinceA2, timeoutMs: 5000 });
  t.pass('on-hook ends the call with 101');
});

await t.test('intercom: the button calls 102, a wrong code opens nothing, 1234 pulses the door relay for 3 s', async (t) => {
  const { gw } = intercom;
  const since = visitor.events.length;
  gw.send('button');
  await visitor.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 10_000 }).catch((e: Error) => {
    throw new Error(`${e.message}\n${gw.log().slice(-3000)}\n${gw.stdout()}`);
  });
  await sleep(800);
  for (const d of '9999') {
    await visitor.command('sndcode', d);
    await sleep(250);
  }
  await sleep(800);
  t.notMatch(gw.stdout(), /sim: relay on/, 'a wrong code does not open the door');
  const relayOn = (): number => gw.stdout().split('\n').filter((l) => l === 'sim: relay on').length;
  for (const d of '1234') {
    await visitor.command('sndcode', d);
    await sleep(250);
  }
  t.ok(await until(() => relayOn() === 1, 3000), 'the right code switches the relay on', { out: gw.stdout(), log: gw.log().slice(-3000) });
  const onAt = performance.now();
  const status = JSON.stringify(await controlRequest(join(gw.stateDir, 'control.sock'), { cmd: 'status' }));
  t.match(status, /"relay":"on"/, 'status shows the relay on');
  t.ok(await until(() => gw.stdout().includes('sim: relay off'), 5000), 'and off again');
  const heldMs = performance.now() - onAt;
  t.ok(heldMs > 2500 && heldMs < 3800, `after about 3 s (${Math.round(heldMs)} ms)`);
  t.equal(relayOn(), 1, 'exactly one opening');
  t.equal(logged(gw, 'door opened').length, 1, 'logged once, with the caller');
  await visitor.hangup();
  await visitor.waitEvent('CALL_CLOSED', { since, timeoutMs: 5000 });
});

await t.test('intercom: an incoming call rings through the speaker with the ringtone WAV, then is answered', async (t) => {
  const { gw, ear } = intercom;
  const since = visitor.events.length;
  const opened = logged(gw, 'audio device closed').length;
  await visitor.dial(`sip:100@127.0.0.1:${gw.port}`);
  t.ok(await until(() => logged(gw, 'device ringing').length >= 1, 5000), 'the intercom rings');
  await sleep(1500);
  const mark = earMark(ear);
  const ring = earSegment(ear, mark - CARD_RATE, mark, 0);
  t.ok(ring.frequency === RINGTONE && ring.ratio > 0.8, `the speaker plays the ${RINGTONE} Hz ringtone (got ${ring.frequency} Hz, ratio ${ring.ratio.toFixed(3)})`);
  await visitor.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 5000 });
  t.pass('answered by itself after the delay');
  await visitor.hangup();
  await visitor.waitEvent('CALL_CLOSED', { since, timeoutMs: 5000 });
  t.ok(await until(() => logged(gw, 'audio device closed').length > opened, 3000), 'the speaker closes after the call');
});

await t.test('handset: a call from baresip rings the SLIC with the German cadence, lifting answers it', async (t) => {
  const { gw } = handset;
  const outBefore = gw.stdout().length;
  const since = callee.events.length;
  await callee.dial(`sip:100@127.0.0.1:${gw.port}`);
  t.ok(await until(() => gw.stdout().slice(outBefore).includes('sim: ringMode on'), 5000), 'the ring mode output goes on', { out: gw.stdout().slice(outBefore), log: gw.log().slice(-2000) });
  const out = () => gw.stdout().slice(outBefore);
  t.match(out(), /sim: forwardReverse blink 20\/20 ms/, 'FR toggles at 25 Hz (20 ms on, 20 ms off)');
  await sleep(1300);
  t.match(out(), /sim: ringMode off/, 'the German cadence pauses after 1 s');
  gw.send('lift');
  await callee.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 5000 });
  t.pass('lifting the handset answers the call');
  await sleep(500);
  const tail = out().split('\n').filter((l) => /ringMode|forwardReverse/.test(l)).at(-1) ?? '';
  t.match(tail, /off/, `the ringer is off (${tail})`);
  const closedSince = callee.events.length;
  gw.send('hangup');
  await callee.waitEvent('CALL_CLOSED', { since: closedSince, timeoutMs: 5000 });
  t.pass('putting the handset down hangs up');
});
