/**
 * Transcoding between real peers that share no codec, all on 127.0.0.1 with the gateway as a
 * child process:
 * - A G.722-only baresip dials 9100; the dial plan sends it to a trunk that is a PCMA-only SIPp
 *   callee (test/sipp/pcma-echo-uas.xml) echoing RTP. The phone plays 440 Hz; the gateway
 *   transcodes G.722 → PCMA towards SIPp and the echo PCMA → G.722 back, so the phone must record
 *   440 Hz in its 16 kHz G.722 decoding. The legs' codecs are checked on both sides: baresip's
 *   recording rate and `audio_debug`, what SIPp was offered, and the relay's transcoder counters
 *   (every packet SIPp echoed was decodable as PCMA, so the gateway sent PCMA to it).
 * - A PCMU-only baresip calls a G.722-only baresip extension: each hears the other's tone, at
 *   its own codec's rate.
 * Neither call may be refused with 488. While it transcodes, the gateway originates the stream
 * each phone receives (RFC 3550 §7.3), so it sends that phone SR+SDES under its own SSRC and
 * reads the phone's reports instead of dropping them: each baresip's RTCP session shows the
 * gateway's SSRC as a member with a sent-packet count (taken from our SRs), and the gateway's
 * "relay closed" line shows the phone's reports read and the round-trip time they gave.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { registeredPhone, type Baresip, type BaresipCodec } from '../helpers/baresip.ts';
import { findExecutable, freePort, startGateway } from '../helpers/gateway-process.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { dominantFrequency, readWav, steadyPart, writeToneWav } from '../helpers/wav.ts';
import { scratch } from '../helpers/scratch.ts';
import { logLines as gatewayLogLines } from '../helpers/logfmt.ts';

const sipp = findExecutable('sipp');
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');
if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const SCENARIOS = join(import.meta.dirname, '..', 'sipp');
/** The gateway's RTP range, and the phones' ranges after it: below Linux's ephemeral ports. */
const GW_RTP: [number, number] = [25000, 25099];
const PHONE_RTP_BASE = 25100;
/** Long enough for the first RTCP report, due 1.03..3.08 s after the stream starts (RFC 3550 §6.2, A.7). */
const CALL_MS = 4000;
const A_TONE = 440;
const B_TONE = 1000;
/** Tolerance of the frequency check: the analysis bins are 10 Hz wide. */
const HZ = 10;
/** Largest level change accepted through the transcoding path (G.711 quantisation is ±0.2 dB or so). */
const MAX_GAIN_DB = 1;

const { dir: work, defer } = scratch('transcoding-peers');

const password = (ext: string) => `phone-${ext}-secret`;
const G722_CALLER = '301';
const PCMU_CALLER = '302';
const G722_CALLEE = '303';
const uasPort = await freePort();

const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    log: { level: 'debug' },
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions: Object.fromEntries([G722_CALLER, PCMU_CALLER, G722_CALLEE].map((e) => [e, { password: password(e) }])),
    dialplan: [{ match: '9x.', to: 'trunk:pcma', strip: 1 }],
    trunks: [{ name: 'pcma', host: '127.0.0.1', port: uasPort, username: 'hookswitch', password: 'unused-trunk-secret', register: false, keepAliveSeconds: 0 }],
    media: { rtpPorts: GW_RTP, bind: '127.0.0.1', rtpTimeoutSeconds: 10 },
    registrar: { qualifySeconds: 0 },
  }),
);
const gw = await startGateway({ args: ['--config', config] });
defer(() => gw.stop());

const tones = { a: join(work, `tone-${A_TONE}.wav`), b: join(work, `tone-${B_TONE}.wav`) };
writeToneWav(tones.a, { rate: 8000, seconds: 60, frequency: A_TONE });
writeToneWav(tones.b, { rate: 8000, seconds: 60, frequency: B_TONE });

let phones = 0;
async function phone(ext: string, codec: BaresipCodec, tone: keyof typeof tones, autoAnswer: boolean): Promise<Baresip> {
  const base = PHONE_RTP_BASE + 40 * phones++;
  return registeredPhone({ ext, password: password(ext), gateway: gw, defer, codecs: [codec], toneWav: tones[tone], recordDir: true, autoAnswer, rtpPorts: [base, base + 39] });
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

/** Whether something has bound UDP `port` on 127.0.0.1 within `timeoutMs` (SIPp starting up). */
function udpPortTaken(port: number, timeoutMs: number): Promise<boolean> {
  return until(() => {
    try {
      return execFileSync('ss', ['-Hlun', `sport = :${port}`], { encoding: 'utf8' }).trim().length > 0;
    } catch {
      return false;
    }
  }, timeoutMs);
}

/** What the phone heard in its newest call: dominant frequency and the recording's format. */
function heard(p: Baresip): { frequency: number; ratio: number; rms: number; rate: number; seconds: number } {
  const last = p.recordings().received.sort().at(-1);
  if (!last) return { frequency: 0, ratio: 0, rms: 0, rate: 0, seconds: 0 };
  const wav = readWav(last);
  return { ...dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate), rate: wav.rate, seconds: wav.samples.length / wav.rate };
}

/** The RMS level of what the phone sent in its newest call (sndfile's `-enc` recording, before its encoder). */
function sentLevel(p: Baresip): number {
  const last = p.recordings().sent.sort().at(-1);
  if (!last) return 0;
  const wav = readWav(last);
  return dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate).rms;
}

/** The level difference in dB of `rms` against `reference`. */
const db = (rms: number, reference: number) => 20 * Math.log10(rms / reference);

/** baresip's `audio_debug` report: its pipelines end in the codec it sends and receives. */
async function audioDebug(p: Baresip): Promise<string> {
  return (await p.command('audio_debug')).data;
}

/** Whether baresip's audio stream sends and receives `codec` (its name in `audio_debug`). */
function runs(debug: string, codec: string): boolean {
  const tx = /audio tx pipeline:.*---> (\S+)/.exec(debug)?.[1];
  const rx = /audio rx pipeline:.*<--- (\S+)\s*$/m.exec(debug)?.[1];
  return tx === codec && rx === codec;
}

/**
 * The members of baresip's RTCP session (libre's `rtcp_debug` in `audio_debug`): SSRC, and the
 * packets that member said it sent (`psent`, from its sender reports; 0 without any).
 */
function rtcpMembers(debug: string): { ssrc: number; psent: number }[] {
  return [...debug.matchAll(/member 0x([0-9a-f]+):[^\n]*\n\s*IP=\S+ psent=(\d+)/g)].map((m) => ({ ssrc: parseInt(m[1]!, 16), psent: Number(m[2]) }));
}

/**
 * RFC 3550 §7.3 on a transcoded leg: the phone's RTCP session knows the gateway's SSRC (from the
 * relay's close line) with a sent-packet count that only the gateway's SRs can have told it, and
 * every RTCP datagram the phone sent was read by the gateway rather than dropped or forwarded.
 * (baresip reports about every 5 s, so within the call its report need not answer an SR of ours:
 * the round-trip time is shown when it did.)
 */
function gatewayRtcp(t: Test, relay: Record<string, string>, leg: 'a' | 'b', debug: string, who: string): void {
  const ssrc = num(relay[`${leg}Ssrc`]);
  const member = rtcpMembers(debug).find((m) => m.ssrc === ssrc);
  t.ok(member !== undefined && member.psent > 0, `${who} received the gateway's SR for its SSRC 0x${ssrc.toString(16)} (psent=${member?.psent})`, { debug, relay });
  t.ok(num(relay[`${leg}RtcpSent`]) >= 2, `the gateway sent ${who} ${relay[`${leg}RtcpSent`]} RTCP datagrams (reports and the closing BYE)`);
  t.equal(num(relay[`${leg}Consumed`]), num(relay[`${leg}RtcpRead`]), `${who}'s RTCP (${relay[`${leg}Consumed`]} datagram(s)) was read by the gateway, none dropped or forwarded`);
  t.comment(`${who}: RTT ${relay[`${leg}RttMs`] ?? 'not measured (no report of the phone followed an SR of ours)'}, jitter ${relay[`${leg}JitterMs`]} ms, lost ${relay[`${leg}Lost`]}`);
}

/** Fields of the gateway log lines with `msg`, in order. */
const logLines = (msg: string): Record<string, string>[] => gatewayLogLines(gw.log(), msg);

const num = (v: string | undefined) => Number(v ?? NaN);

/**
 * No 488 (RFC 3261 §21.4.26, what the gateway answered before it could transcode): the call the
 * gateway logged ended by the caller's BYE, not "rejected 488", and no phone saw a 488.
 */
function noRefusal(t: Test, phones: Baresip[], since: number[], endedBefore: number): void {
  const ended = logLines('call ended').slice(endedBefore);
  t.same(ended.map((l) => l.reason), ['BYE from leg a'], 'the gateway logged one call, ended by the caller\'s BYE (not "rejected 488")');
  const refused = phones.flatMap((p, i) => p.events.slice(since[i]).filter((e) => /\b488\b/.test(e.param ?? '')));
  t.same(refused, [], 'no phone saw a 488');
}

// Started before the first test: tap ends the root test once its last queued test is done.
const [g722Caller, pcmuCaller, g722Callee] = await Promise.all([
  phone(G722_CALLER, 'G722/16000/1', 'a', false),
  phone(PCMU_CALLER, 'PCMU/8000/1', 'a', false),
  phone(G722_CALLEE, 'G722/16000/1', 'b', true),
]);

await t.test('a G.722-only phone calls a PCMA-only trunk callee: transcoded both ways, the tone comes back at 440 Hz', async (t) => {
  const callee = spawnSipp(
    sipp,
    ['-sf', join(SCENARIOS, 'pcma-echo-uas.xml'), '-m', '1', '-rtp_echo', '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(await freePort())],
    25_000,
    { log: true },
  );
  defer(() => callee.kill());
  t.ok(await udpPortTaken(uasPort, 10_000), 'the SIPp callee is listening');
  const relaysBefore = logLines('relay closed').length;
  const endedBefore = logLines('call ended').length;
  const since = g722Caller.events.length;
  await g722Caller.dial(`sip:9100@127.0.0.1:${gw.port}`);
  const established = await g722Caller.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 10_000 }).catch(() => undefined);
  t.ok(established, 'the call connects', { log: gw.log().slice(-4000), phone: g722Caller.log().slice(-2000) });
  const debug = established ? await audioDebug(g722Caller) : '';
  await sleep(CALL_MS);
  const debugEnd = established ? await audioDebug(g722Caller) : '';
  await g722Caller.hangup();
  await g722Caller.waitEvent('CALL_CLOSED', { since, timeoutMs: 10_000 });
  const result = await callee.result;
  t.equal(result.exitCode, 0, 'SIPp: INVITE, 180, 200, ACK, BYE/200', { output: result.output, log: gw.log().slice(-4000) });

  const offered = /offer-formats=([0-9 ]*)/.exec(result.log)?.[1]?.trim().split(/\s+/) ?? [];
  t.ok(offered.includes('8'), `the gateway offered the trunk PCMA (m=audio formats: ${offered.join(' ')})`);
  t.match(result.log, /offer-pcma=a=rtpmap:8 PCMA\/8000/, 'as payload type 8');
  t.ok(runs(debug, 'G722'), 'the phone sends and receives G.722 (audio_debug)', { debug });

  const echo = heard(g722Caller);
  t.equal(echo.rate, 16000, 'the phone decoded G.722 (recording at 16000 Hz)');
  const sent = g722Caller.recordings().sent.sort().at(-1);
  t.equal(sent ? readWav(sent).rate : 0, 16000, 'and encoded G.722 (its sent audio at 16000 Hz)');
  t.ok(Math.abs(echo.frequency - A_TONE) <= HZ && echo.ratio > 0.8, `the phone heard its ${A_TONE} Hz back through G.722 → PCMA → echo → G.722 (got ${echo.frequency} Hz, ratio ${echo.ratio.toFixed(3)}, rms ${echo.rms.toFixed(0)}, ${echo.seconds.toFixed(1)} s)`, {
    log: gw.log().slice(-3000),
  });
  const gain = db(echo.rms, sentLevel(g722Caller));
  t.ok(Math.abs(gain) <= MAX_GAIN_DB, `at the level it was sent (${gain.toFixed(2)} dB after four codec passes and two resamplings)`);

  t.ok(await until(() => logLines('relay closed').length > relaysBefore, 3000), 'the gateway closed the relay');
  const relay = logLines('relay closed').at(-1) ?? {};
  const min = (CALL_MS / 20) * 0.5;
  // Leg a is the phone (G.722 in, PCMA out), leg b the trunk (PCMA in, G.722 out).
  t.ok(num(relay.aDecoded) > min && num(relay.aEncoded) > min, `G.722 from the phone decoded and re-encoded (${relay.aDecoded} decoded, ${relay.aEncoded} sent)`, { relay });
  t.ok(num(relay.bDecoded) > min && num(relay.bEncoded) > min, `the echo decoded as PCMA and re-encoded (${relay.bDecoded} decoded, ${relay.bEncoded} sent)`, { relay });
  t.equal(num(relay.bTranscodeDropped), 0, 'every echoed packet carried PCMA, so the gateway sent PCMA (payload type 8) to the trunk');
  t.equal(num(relay.aTranscodeDropped), 0, 'no G.722 packet was refused');
  // RFC 3550 §7.3: a mixer does not forward SR/RR across; it reports on its own stream instead.
  gatewayRtcp(t, relay, 'a', debugEnd, 'the phone');
  t.ok(num(relay.bRtcpSent) >= 1, `the trunk leg got the gateway's reports too (${relay.bRtcpSent}; SIPp's echo has no RTCP to answer with)`);
  noRefusal(t, [g722Caller], [since], endedBefore);
});

await t.test('a PCMU-only phone calls a G.722-only phone: each hears the other\'s tone at its own rate', async (t) => {
  const relaysBefore = logLines('relay closed').length;
  const endedBefore = logLines('call ended').length;
  const sinceA = pcmuCaller.events.length;
  const sinceB = g722Callee.events.length;
  await pcmuCaller.dial(`sip:${G722_CALLEE}@127.0.0.1:${gw.port}`);
  const up = await Promise.all([
    pcmuCaller.waitEvent('CALL_ESTABLISHED', { since: sinceA, timeoutMs: 10_000 }),
    g722Callee.waitEvent('CALL_ESTABLISHED', { since: sinceB, timeoutMs: 10_000 }),
  ]).catch(() => undefined);
  t.ok(up, 'the call connects', { log: gw.log().slice(-4000) });
  const [debugA, debugB] = up ? await Promise.all([audioDebug(pcmuCaller), audioDebug(g722Callee)]) : ['', ''];
  t.ok(runs(debugA, 'PCMU'), 'the caller sends and receives PCMU (audio_debug)', { debugA });
  t.ok(runs(debugB, 'G722'), 'the callee sends and receives G.722 (audio_debug)', { debugB });
  await sleep(CALL_MS);
  const [endA, endB] = up ? await Promise.all([audioDebug(pcmuCaller), audioDebug(g722Callee)]) : ['', ''];
  await pcmuCaller.hangup();
  await Promise.all([pcmuCaller.waitEvent('CALL_CLOSED', { since: sinceA }), g722Callee.waitEvent('CALL_CLOSED', { since: sinceB })]);

  const a = heard(pcmuCaller);
  const b = heard(g722Callee);
  t.equal(a.rate, 8000, 'the caller decoded PCMU (recording at 8000 Hz)');
  t.equal(b.rate, 16000, 'the callee decoded G.722 (recording at 16000 Hz)');
  t.ok(Math.abs(a.frequency - B_TONE) <= HZ && a.ratio > 0.8, `the PCMU caller heard the G.722 callee's ${B_TONE} Hz (got ${a.frequency} Hz, ratio ${a.ratio.toFixed(3)}, rms ${a.rms.toFixed(0)})`);
  t.ok(Math.abs(b.frequency - A_TONE) <= HZ && b.ratio > 0.8, `the G.722 callee heard the PCMU caller's ${A_TONE} Hz (got ${b.frequency} Hz, ratio ${b.ratio.toFixed(3)}, rms ${b.rms.toFixed(0)})`);
  const gains = [db(a.rms, sentLevel(g722Callee)), db(b.rms, sentLevel(pcmuCaller))];
  t.ok(gains.every((g) => Math.abs(g) <= MAX_GAIN_DB), `each at the level the other sent (G.722 → PCMU ${gains[0]!.toFixed(2)} dB, PCMU → G.722 ${gains[1]!.toFixed(2)} dB)`);

  t.ok(await until(() => logLines('relay closed').length > relaysBefore, 3000), 'the gateway closed the relay');
  const relay = logLines('relay closed').at(-1) ?? {};
  const min = (CALL_MS / 20) * 0.5;
  t.ok(num(relay.aDecoded) > min && num(relay.bDecoded) > min, `both directions were transcoded (${relay.aDecoded} PCMU and ${relay.bDecoded} G.722 packets decoded)`, { relay });
  t.equal(num(relay.aTranscodeDropped) + num(relay.bTranscodeDropped), 0, 'no packet was refused');
  gatewayRtcp(t, relay, 'a', endA, 'the PCMU caller');
  gatewayRtcp(t, relay, 'b', endB, 'the G.722 callee');
  noRefusal(t, [pcmuCaller, g722Callee], [sinceA, sinceB], endedBefore);
});

t.ok(gw.alive(), 'the gateway is still running');
