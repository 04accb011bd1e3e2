/**
 * Calls between real phones through the gateway (issue 3, acceptance 3 and 6), all on
 * 127.0.0.1, the gateway as a child process and baresip 1.0.0 as the phones:
 * - baresip A calls baresip B once per codec (PCMU, PCMA, G.722, opus; each phone offers only
 *   that codec). A plays 440 Hz, B 1000 Hz: each must record the other's tone (a looped or
 *   reflected stream would show its own), at the codec's rate. Both phones' media peer (what the
 *   gateway wrote in c=/m=) is 127.0.0.1 on a port of `media.rtpPorts`, a different one per leg,
 *   and the relay's closing statistics show it forwarded both directions. The calls alternate
 *   which side sends BYE: either ends both legs.
 * - A SIPp caller CANCELs while B rings: exactly 487 for the INVITE, and B stops ringing.
 * - B declines (baresip rejects with 486): exactly 486 reaches the SIPp caller.
 * - B vanishes (kill -9) in a call: with `media.rtpTimeoutSeconds` 3, A receives the BYE within
 *   twice the timeout and the gateway logs the RTP timeout and the end of the call.
 * - Hold and resume by re-INVITE from either side: audio comes back, and a hold longer than the
 *   RTP timeout does not end the call.
 * - The echo target (*43) reflects A's own tone.
 * - An extension registered from two phones rings on both (parallel forking); the first to
 *   answer gets the call and the other is cancelled.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { registeredPhone, type Baresip, type BaresipCodec } from '../helpers/baresip.ts';
import { findExecutable, freePort, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { dominantFrequency, readWav, steadyPart, writeToneWav } from '../helpers/wav.ts';
import { sleep, until } from '../helpers/wait.ts';
import { scratch } from '../helpers/scratch.ts';
import { logLines as gatewayLogLines } from '../helpers/logfmt.ts';

const sipp = findExecutable('sipp');
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');
if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const SCENARIOS = join(import.meta.dirname, '..', 'sipp');
const RTP_TIMEOUT_SECONDS = 3;
/** The gateway's RTP range, and the phones' ranges after it: below Linux's ephemeral ports. */
const GW_RTP: [number, number] = [23000, 23199];
const PHONE_RTP_BASE = 23200;
const A_TONE = 440;
const B_TONE = 1000;
const CALL_MS = 2500;

const { dir: work, defer } = scratch('calls-baresip');

const CODECS: { codec: BaresipCodec; rate: number; channels: number; caller: string; callee: string }[] = [
  { codec: 'PCMU/8000/1', rate: 8000, channels: 1, caller: '201', callee: '202' },
  { codec: 'PCMA/8000/1', rate: 8000, channels: 1, caller: '203', callee: '204' },
  { codec: 'G722/16000/1', rate: 16000, channels: 1, caller: '205', callee: '206' },
  { codec: 'opus/48000/2', rate: 48000, channels: 2, caller: '207', callee: '208' },
];
/** The phones of the CANCEL, busy, hold, RTP timeout, echo and forking tests. */
const CALLER = '211';
const CALLEE = '212';
/** An extension registered from two phones: calls to it fork. */
const FORKED = '213';
const password = (ext: string) => `phone-${ext}-secret`;
const extensions: Record<string, { password: string }> = {};
for (const ext of [...CODECS.flatMap((c) => [c.caller, c.callee]), CALLER, CALLEE, FORKED]) extensions[ext] = { password: password(ext) };

const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    log: { level: 'debug' },
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions,
    dialplan: [{ match: '*43', to: 'echo' }],
    media: { rtpPorts: GW_RTP, bind: '127.0.0.1', rtpTimeoutSeconds: RTP_TIMEOUT_SECONDS },
    registrar: { qualifySeconds: 0 },
    calls: { noAnswerSeconds: 30 },
  }),
);
const gw: GatewayProcess = await startGateway({ args: ['--config', config] });
defer(() => gw.stop());

const tones = {
  a: join(work, `tone-${A_TONE}.wav`),
  b: join(work, `tone-${B_TONE}.wav`),
};
writeToneWav(tones.a, { rate: 8000, seconds: 60, frequency: A_TONE });
writeToneWav(tones.b, { rate: 8000, seconds: 60, frequency: B_TONE });

let phones = 0;
async function phone(ext: string, tone: keyof typeof tones, codec: BaresipCodec, autoAnswer: boolean): Promise<Baresip> {
  const base = PHONE_RTP_BASE + 40 * phones++;
  return registeredPhone({ ext, password: password(ext), gateway: gw, defer, codecs: [codec], toneWav: tones[tone], recordDir: true, autoAnswer, rtpPorts: [base, base + 39] });
}


/** What the phone heard in its newest call: dominant frequency, rate and channels of the recording. */
function heard(p: Baresip): { frequency: number; ratio: number; rate: number; channels: number } {
  const last = p.recordings().received.sort().at(-1);
  if (!last) return { frequency: 0, ratio: 0, rate: 0, channels: 0 };
  const wav = readWav(last);
  return { ...dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate), rate: wav.rate, channels: wav.channels };
}

/** The media peer baresip uses (taken from the gateway's SDP), from `audio_debug`. */
async function mediaPeer(p: Baresip): Promise<{ address: string; port: number; rtcpPort: number } | undefined> {
  const r = await p.command('audio_debug');
  const m = /remote: ([0-9.]+):(\d+)\/[0-9.]+:(\d+)/.exec(r.data);
  return m ? { address: m[1]!, port: Number(m[2]), rtcpPort: Number(m[3]) } : undefined;
}

/** Fields of the gateway log lines with `msg`, in order. */
const logLines = (msg: string): Record<string, string>[] => gatewayLogLines(gw.log(), msg);

const inRange = (port: number) => port >= GW_RTP[0] && port <= GW_RTP[1];

// The phones of the tests after the codec calls: a caller, a callee that answers by command, and
// two phones of one extension. Started before the first test: tap ends the root test once its
// last queued test is done, so nothing may be started between tests at the top level.
const caller = await phone(CALLER, 'a', 'PCMU/8000/1', false);
const callee = await phone(CALLEE, 'b', 'PCMU/8000/1', false);
const desk = await phone(FORKED, 'b', 'PCMU/8000/1', false);
const cordless = await phone(FORKED, 'b', 'PCMU/8000/1', false);

await t.test('A calls B through the gateway with each codec: each side hears the other', async (t) => {
  for (const [i, c] of CODECS.entries()) {
    await t.test(c.codec, async (t) => {
      const [a, b] = await Promise.all([phone(c.caller, 'a', c.codec, false), phone(c.callee, 'b', c.codec, true)]);
      const relaysBefore = logLines('relay closed').length;
      const endedBefore = logLines('call ended').length;
      const sinceA = a.events.length;
      const sinceB = b.events.length;
      await a.dial(`sip:${c.callee}@127.0.0.1:${gw.port}`);
      await Promise.all([a.waitEvent('CALL_ESTABLISHED', { since: sinceA }), b.waitEvent('CALL_ESTABLISHED', { since: sinceB })]);

      const [peerA, peerB] = await Promise.all([mediaPeer(a), mediaPeer(b)]);
      t.equal(peerA?.address, '127.0.0.1', 'c= towards A is 127.0.0.1');
      t.equal(peerB?.address, '127.0.0.1', 'c= towards B is 127.0.0.1');
      t.ok(peerA && inRange(peerA.port) && peerA.port % 2 === 0, `A sends to an even gateway RTP port (${peerA?.port})`);
      t.ok(peerB && inRange(peerB.port) && peerB.port % 2 === 0, `B sends to an even gateway RTP port (${peerB?.port})`);
      t.not(peerA?.port, peerB?.port, 'each leg has its own relay port');
      t.equal(peerA?.rtcpPort, (peerA?.port ?? 0) + 1, 'RTCP on the next port');

      await sleep(CALL_MS);
      // Alternate who hangs up: BYE from either side ends both legs.
      const [byer, other] = i % 2 === 0 ? [a, b] : [b, a];
      const sinceOther = other.events.length;
      await byer.hangup();
      const closed = await Promise.all([a.waitEvent('CALL_CLOSED', { since: sinceA }), b.waitEvent('CALL_CLOSED', { since: sinceB })]);
      t.ok(other.events.slice(sinceOther).some((e) => e.type === 'CALL_CLOSED'), `BYE from ${byer.name} ended ${other.name}'s leg (${closed.map((e) => e.param).join(' / ')})`);

      const heardA = heard(a);
      const heardB = heard(b);
      t.same([heardA.rate, heardA.channels], [c.rate, c.channels], `A decoded ${c.codec} (recording at ${c.rate} Hz, ${c.channels} channel(s))`);
      t.same([heardB.rate, heardB.channels], [c.rate, c.channels], `B decoded ${c.codec} (recording at ${c.rate} Hz, ${c.channels} channel(s))`);
      t.ok(heardA.frequency === B_TONE && heardA.ratio > 0.8, `A heard B's ${B_TONE} Hz (got ${heardA.frequency} Hz, ratio ${heardA.ratio.toFixed(3)})`, {
        log: gw.log().slice(-3000),
      });
      t.ok(heardB.frequency === A_TONE && heardB.ratio > 0.8, `B heard A's ${A_TONE} Hz (got ${heardB.frequency} Hz, ratio ${heardB.ratio.toFixed(3)})`);

      t.ok(await until(() => logLines('relay closed').length > relaysBefore && logLines('call ended').length > endedBefore, 3000), 'the gateway ended the call and closed its relay');
      const relay = logLines('relay closed').at(-1);
      // ~50 packets/s each way for CALL_MS: at least half of them relayed, none dropped.
      const min = (CALL_MS / 20) * 0.5;
      t.ok(Number(relay?.aForwarded) > min && Number(relay?.bForwarded) > min, `the relay forwarded both directions (${relay?.aForwarded} from A, ${relay?.bForwarded} from B)`);
      t.equal(Number(relay?.aDropped) + Number(relay?.bDropped), 0, 'and dropped nothing');
      await Promise.all([a.stop(), b.stop()]);
    });
  }
});

async function sippCaller(scenario: string) {
  const local = await freePort();
  const run = spawnSipp(
    sipp!,
    ['-sf', join(SCENARIOS, scenario), '-m', '1', '-s', CALLEE, '-key', 'caller', CALLER, '-au', CALLER, '-ap', password(CALLER), '-auth_uri', `${CALLEE}@127.0.0.1:${gw.port}`, '-i', '127.0.0.1', '-p', String(local), `127.0.0.1:${gw.port}`],
    20_000,
    { log: true },
  );
  defer(() => run.kill());
  return run;
}

await t.test('CANCEL while the callee rings: the caller gets exactly 487 and the callee stops ringing', async (t) => {
  const since = callee.events.length;
  const run = await sippCaller('call-cancel-uac.xml');
  const incoming = await callee.waitEvent('CALL_INCOMING', { since, timeoutMs: 10_000 }).catch(() => undefined);
  t.ok(incoming, 'the callee rang');
  const result = await run.result;
  t.equal(result.exitCode, 0, 'SIPp: INVITE, 180, CANCEL/200, 487, ACK', { output: result.output, log: gw.log().slice(-4000) });
  t.match(result.log, /cancel-outcome=487/, '487 Request Terminated');
  const closed = await callee.waitEvent('CALL_CLOSED', { since, timeoutMs: 5000 }).catch(() => undefined);
  t.ok(closed, `the gateway cancelled the callee's leg (${closed?.param})`);
  t.notOk(callee.events.slice(since).some((e) => e.type === 'CALL_ESTABLISHED'), 'the callee never got connected');
});

await t.test('the callee declines: exactly 486 reaches the caller', async (t) => {
  const since = callee.events.length;
  const run = await sippCaller('call-busy-uac.xml');
  const incoming = await callee.waitEvent('CALL_INCOMING', { since, timeoutMs: 10_000 }).catch(() => undefined);
  t.ok(incoming, 'the callee rang');
  // baresip 1.0.0 turns down a ringing call with "486 Rejected".
  await callee.hangup();
  const result = await run.result;
  t.equal(result.exitCode, 0, 'SIPp: INVITE, 180, 486, ACK', { output: result.output, log: gw.log().slice(-4000) });
  t.match(result.log, /busy-outcome=486/, '486 passed on to the caller');
});

/** RTP packets the phone has received from its peer so far (its RTCP member statistics). */
async function received(p: Baresip): Promise<number> {
  const r = await p.command('audio_debug');
  return Number(/rcvd=(\d+)/.exec(r.data)?.[1] ?? NaN);
}

await t.test('hold and resume by re-INVITE from either side; silence on hold does not trip the RTP timeout', async (t) => {
  const sinceA = caller.events.length;
  const sinceB = callee.events.length;
  await caller.dial(`sip:${CALLEE}@127.0.0.1:${gw.port}`);
  await callee.waitEvent('CALL_INCOMING', { since: sinceB });
  await callee.accept();
  await caller.waitEvent('CALL_ESTABLISHED', { since: sinceA });
  await sleep(500);
  const steps: { who: Baresip; other: Baresip; holdMs: number }[] = [
    // Longer than the RTP timeout: a call on hold is silent on purpose (RFC 3264 §8.4).
    { who: caller, other: callee, holdMs: (RTP_TIMEOUT_SECONDS + 1) * 1000 },
    { who: callee, other: caller, holdMs: 1000 },
  ];
  for (const { who, other, holdMs } of steps) {
    const offers = other.events.length;
    t.ok((await who.command('hold')).ok, `${who.name} holds`);
    await other.waitEvent('CALL_REMOTE_SDP', { since: offers, match: (e) => e.param === 'offer', timeoutMs: 5000 });
    await sleep(300);
    const held = await received(who);
    await sleep(holdMs - 300);
    const silence = (await received(who)) - held;
    t.ok(silence < 5, `${other.name} sends nothing while held (${silence} packets in ${holdMs - 300} ms)`);
    const resumed = other.events.length;
    t.ok((await who.command('resume')).ok, `${who.name} resumes`);
    await other.waitEvent('CALL_REMOTE_SDP', { since: resumed, match: (e) => e.param === 'offer', timeoutMs: 5000 });
    const before = await Promise.all([received(caller), received(callee)]);
    await sleep(1000);
    const after = await Promise.all([received(caller), received(callee)]);
    t.ok(after[0] - before[0] > 25 && after[1] - before[1] > 25, `audio flows both ways again (${after[0] - before[0]} and ${after[1] - before[1]} packets in 1 s)`, {
      log: gw.log().slice(-3000),
    });
  }
  t.notOk([...caller.events.slice(sinceA), ...callee.events.slice(sinceB)].some((e) => e.type === 'CALL_CLOSED'), 'the call is still up');
  const ended = logLines('call ended').length;
  await caller.hangup();
  await Promise.all([caller.waitEvent('CALL_CLOSED', { since: sinceA }), callee.waitEvent('CALL_CLOSED', { since: sinceB })]);
  t.ok(await until(() => logLines('call ended').length > ended, 2000), 'ended by the BYE');
  t.match(logLines('call ended').at(-1)?.reason ?? '', /BYE from leg a/, 'not by an RTP timeout');
});

await t.test(`the callee vanishes: no leg is up after twice the RTP timeout (${RTP_TIMEOUT_SECONDS} s)`, async (t) => {
  const sinceA = caller.events.length;
  const sinceB = callee.events.length;
  const timeoutsBefore = logLines('RTP timeout, call ended').length;
  const relaysBefore = logLines('relay closed').length;
  await caller.dial(`sip:${CALLEE}@127.0.0.1:${gw.port}`);
  await callee.waitEvent('CALL_INCOMING', { since: sinceB });
  await callee.accept();
  await caller.waitEvent('CALL_ESTABLISHED', { since: sinceA });
  // Let RTP flow. 2.2 s is the worst moment for a coarse check: a fixed 5 s period would see
  // 2.8 s of silence at 5 s and end the call only at 10 s, 7.8 s after the kill.
  await sleep(2200);
  callee.kill();
  const killedAt = performance.now();
  const limitMs = 2 * RTP_TIMEOUT_SECONDS * 1000;
  const closed = await caller.waitEvent('CALL_CLOSED', { since: sinceA, timeoutMs: limitMs + 1500 }).catch(() => undefined);
  t.ok(closed, 'the caller got a BYE', { log: gw.log().slice(-3000) });
  if (closed) {
    const after = closed.at - killedAt;
    t.ok(after <= limitMs + 500, `within 2 × ${RTP_TIMEOUT_SECONDS} s of the kill (${(after / 1000).toFixed(1)} s)`);
    t.ok(after >= RTP_TIMEOUT_SECONDS * 1000 - 500, `not before the timeout (${(after / 1000).toFixed(1)} s)`);
  }
  t.ok(await until(() => logLines('RTP timeout, call ended').length > timeoutsBefore, 2000), 'the gateway logged the RTP timeout');
  t.ok(await until(() => logLines('relay closed').length > relaysBefore, 2000), 'and closed the relay: no leg is left');
  const ended = logLines('call ended').at(-1);
  t.match(ended?.reason ?? '', /RTP timeout/, 'and the end of the call');
});

await t.test('the echo target (*43) reflects the caller\'s own tone', async (t) => {
  const since = caller.events.length;
  const relaysBefore = logLines('relay closed').length;
  await caller.dial(`sip:*43@127.0.0.1:${gw.port}`);
  await caller.waitEvent('CALL_ESTABLISHED', { since });
  const peer = await mediaPeer(caller);
  t.equal(peer?.address, '127.0.0.1', 'c= is 127.0.0.1');
  t.ok(peer && inRange(peer.port), `on a gateway RTP port (${peer?.port})`);
  await sleep(CALL_MS);
  await caller.hangup();
  await caller.waitEvent('CALL_CLOSED', { since });
  const echo = heard(caller);
  t.ok(echo.frequency === A_TONE && echo.ratio > 0.8, `the caller heard its own ${A_TONE} Hz (got ${echo.frequency} Hz, ratio ${echo.ratio.toFixed(3)})`);
  t.ok(await until(() => logLines('relay closed').length > relaysBefore, 3000), 'the relay was closed');
  const relay = logLines('relay closed').at(-1);
  t.ok(Number(relay?.aForwarded) > CALL_MS / 40, `the relay sent A's packets back (${relay?.aForwarded})`);
});

await t.test('an extension registered twice rings on both; the first to answer wins, the other stops ringing', async (t) => {
  const since = [caller, desk, cordless].map((p) => p.events.length) as [number, number, number];
  const relaysBefore = logLines('relay closed').length;
  await caller.dial(`sip:${FORKED}@127.0.0.1:${gw.port}`);
  const rang = await Promise.all([desk, cordless].map((p, i) => p.waitEvent('CALL_INCOMING', { since: since[i + 1] }).catch(() => undefined)));
  t.ok(rang.every(Boolean), 'both phones ring');
  await cordless.accept();
  await caller.waitEvent('CALL_ESTABLISHED', { since: since[0] });
  const lost = await desk.waitEvent('CALL_CLOSED', { since: since[1], timeoutMs: 5000 }).catch(() => undefined);
  t.ok(lost, `the other phone's INVITE was cancelled (${lost?.param})`);
  t.notOk(desk.events.slice(since[1]).some((e) => e.type === 'CALL_ESTABLISHED'), 'and it was never connected');
  await sleep(CALL_MS);
  await caller.hangup();
  await Promise.all([caller.waitEvent('CALL_CLOSED', { since: since[0] }), cordless.waitEvent('CALL_CLOSED', { since: since[2] })]);
  const [a, b] = [heard(caller), heard(cordless)];
  t.ok(a.frequency === B_TONE && b.frequency === A_TONE && a.ratio > 0.8 && b.ratio > 0.8, `the caller and the answering phone hear each other (${a.frequency} Hz, ${b.frequency} Hz)`);
  t.ok(await until(() => logLines('relay closed').length > relaysBefore, 3000), 'the relay was closed');
});

t.ok(gw.alive(), 'the gateway is still running');
