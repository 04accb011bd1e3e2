/**
 * SRTP through the gateway with real phones (baresip 1.0.0 of Debian 12, its `srtp` module), the
 * gateway a child process with SIP over TLS (a throw-away certificate from openssl), all on
 * 127.0.0.1, `media.srtp: "mandatory"`:
 * - Two baresip phones registered over TLS with `mediaenc=srtp-mand` call each other: each
 *   records the other's tone, and the relay reports SRTP on both legs with no refusals.
 * - An SRTP phone (TLS) and a plain-RTP phone (UDP, `extensions.<n>.srtp: "optional"`) call each
 *   other both ways: the gateway decrypts and encrypts between them; both tones arrive.
 * - A phone offering SDES keys over plain UDP with policy mandatory gets 488 and the gateway
 *   writes one warning.
 * - After a reload allowing keys over plain signalling, a SIPp caller offers RTP/SAVP with a key
 *   the test chose, and the test's own socket sends its SRTP: a forged packet from another port
 *   first (it must not move the latch), the tone, one packet with a flipped bit and one replayed
 *   packet. The callee hears the tone; the relay counts 2 authentication failures and 1 replay.
 */
import { createSocket, type Socket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { registeredPhone, type Baresip } from '../helpers/baresip.ts';
import { findExecutable, freePort, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { logLines } from '../helpers/logfmt.ts';
import { scratch } from '../helpers/scratch.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { sleep, until } from '../helpers/wait.ts';
import { dominantFrequency, readWav, steadyPart, writeToneWav } from '../helpers/wav.ts';
import { makeTestCertificate } from '../helpers/tls-cert.ts';
import { ulawEncode } from '../../src/media/codec/g711.ts';
import { formatSdesCrypto, generateSdesCrypto } from '../../src/media/srtp/sdes.ts';
import { SrtpSession } from '../../src/media/srtp/srtp-session.ts';
import { SystemRandom } from '../../src/runtime/random.ts';

const sipp = findExecutable('sipp');
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');
if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');
if (!findExecutable('openssl')) throw new Error('openssl is not installed');

const { dir: work, defer } = scratch('srtp-baresip');
const GW_RTP: [number, number] = [25000, 25099];
const PHONE_RTP_BASE = 25100;
const CALL_MS = 2500;
const TONES = { a: 440, b: 1000 } as const;
const SRTP_A = '401';
const SRTP_B = '402';
const PLAIN = '403';
const UDP_SDES = '404';
const SIPP_CALLER = '405';
const password = (ext: string) => `phone-${ext}-secret`;

makeTestCertificate(work);
const tlsPort = await freePort();
const configPath = join(work, 'hookswitch.json');
const config = (srtpOverPlainSignalling: boolean) => ({
  log: { level: 'debug' },
  sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'], tls: { port: tlsPort, cert: join(work, 'cert.pem'), key: join(work, 'key.pem') } },
  extensions: Object.fromEntries(
    [SRTP_A, SRTP_B, PLAIN, UDP_SDES, SIPP_CALLER].map((e) => [e, { password: password(e), ...(e === PLAIN ? { srtp: 'optional' } : {}) }]),
  ),
  media: { rtpPorts: GW_RTP, bind: '127.0.0.1', srtp: 'mandatory', srtpOverPlainSignalling },
  registrar: { qualifySeconds: 0 },
  calls: { noAnswerSeconds: 30 },
});
writeFileSync(configPath, JSON.stringify(config(false)));
const gw: GatewayProcess = await startGateway({ args: ['--config', configPath] });
defer(() => gw.stop());
const gwTls = { port: tlsPort, log: () => gw.log() };

const toneWav = { a: join(work, 'a.wav'), b: join(work, 'b.wav') };
writeToneWav(toneWav.a, { rate: 8000, seconds: 60, frequency: TONES.a });
writeToneWav(toneWav.b, { rate: 8000, seconds: 60, frequency: TONES.b });

let phones = 0;
/** A baresip phone: over TLS with SRTP mandatory (`srtp`), or plain RTP over UDP, or SDES over UDP. */
async function phone(ext: string, kind: 'srtp-tls' | 'plain-udp' | 'srtp-udp', tone: keyof typeof toneWav, autoAnswer: boolean): Promise<Baresip> {
  const base = PHONE_RTP_BASE + 40 * phones++;
  const srtp = kind !== 'plain-udp';
  return registeredPhone({
    ext,
    password: password(ext),
    gateway: kind === 'srtp-tls' ? gwTls : gw,
    ...(kind === 'srtp-tls' ? { transport: 'tls' as const } : {}),
    defer,
    toneWav: toneWav[tone],
    recordDir: true,
    autoAnswer,
    rtpPorts: [base, base + 39],
    extraConfig: [`sip_cafile ${join(work, 'cert.pem')}`, ...(srtp ? ['module srtp.so'] : [])],
    accountParams: srtp ? ['mediaenc=srtp-mand'] : [],
  });
}

/** Dominant frequency of the newest recording of what `p` received. */
function heard(p: Baresip): { frequency: number; ratio: number } {
  const last = p.recordings().received.sort().at(-1);
  if (!last) return { frequency: 0, ratio: 0 };
  const wav = readWav(last);
  return dominantFrequency(steadyPart(wav.samples, wav.rate), wav.rate);
}

const logs = (msg: string) => logLines(gw.log(), msg);

async function relayClosedAfter(count: number): Promise<Record<string, string>> {
  if (!(await until(() => logs('relay closed').length > count, 5_000))) throw new Error('no relay closed line in the gateway log:\n' + gw.log().slice(-3000));
  return logs('relay closed').at(-1)!;
}

/** `from` dials `to` over the transport of its account; both talk for CALL_MS, `from` hangs up. */
async function call(from: Baresip, to: Baresip, toExt: string, tls: boolean): Promise<Record<string, string>> {
  const relays = logs('relay closed').length;
  const sinceA = from.events.length;
  const sinceB = to.events.length;
  await from.dial(tls ? `sip:${toExt}@127.0.0.1:${tlsPort};transport=tls` : `sip:${toExt}@127.0.0.1:${gw.port}`);
  await Promise.all([from.waitEvent('CALL_ESTABLISHED', { since: sinceA }), to.waitEvent('CALL_ESTABLISHED', { since: sinceB })]);
  await sleep(CALL_MS);
  await from.hangup();
  await to.waitEvent('CALL_CLOSED', { since: sinceB });
  return relayClosedAfter(relays);
}

const srtpA = await phone(SRTP_A, 'srtp-tls', 'a', false);
const srtpB = await phone(SRTP_B, 'srtp-tls', 'b', true);
const plain = await phone(PLAIN, 'plain-udp', 'b', true);
const udpSdes = await phone(UDP_SDES, 'srtp-udp', 'a', false);

await t.test('SRTP mandatory over TLS: baresip ↔ gateway ↔ baresip, each hears the other', async (t) => {
  const closed = await call(srtpA, srtpB, SRTP_B, true);
  const debug = await srtpA.command('audio_debug');
  t.match(srtpA.log(), /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_(80|32)\)/, 'A negotiated SRTP with the gateway');
  t.match(srtpB.log(), /SRTP is Enabled/, 'B negotiated SRTP with the gateway');
  t.notMatch(debug.data, /secure=no/, 'A reports no unsecured stream');
  const [atA, atB] = [heard(srtpA), heard(srtpB)];
  t.equal(atA.frequency, TONES.b, `A hears B's ${TONES.b} Hz (ratio ${atA.ratio.toFixed(3)})`);
  t.equal(atB.frequency, TONES.a, `B hears A's ${TONES.a} Hz (ratio ${atB.ratio.toFixed(3)})`);
  t.ok(atA.ratio > 0.9 && atB.ratio > 0.9, 'clean tones');
  for (const leg of ['a', 'b']) {
    t.equal(closed[`${leg}SrtpAuthFailed`], '0', `leg ${leg} is SRTP and nothing failed authentication`);
    t.equal(closed[`${leg}SrtpReplayed`], '0', `leg ${leg}: no replays`);
    t.ok(Number(closed[`${leg}Forwarded`]) > 50, `leg ${leg} forwarded ${closed[`${leg}Forwarded`]} packets`);
  }
  const summary = logs('call summary').at(-1)!;
  for (const leg of ['a', 'b']) {
    t.match(summary[`${leg}Srtp`], /^AES_CM_128_HMAC_SHA1_(80|32)$/, `the call summary names leg ${leg}'s SRTP suite`);
    const relayed = ['AuthFailed', 'Replayed', 'Invalid', 'ProtectFailed'].reduce((n, k) => n + Number(closed[`${leg}Srtp${k}`]), 0);
    t.equal(Number(summary[`${leg}SrtpDropped`]), relayed, `and leg ${leg}'s SRTP refusals as the relay counted them (${relayed})`);
  }
});

await t.test('an SRTP phone and a plain-RTP phone talk through the gateway, both ways', async (t) => {
  for (const [caller, callee, calleeExt, tls, srtpLeg] of [
    [srtpA, plain, PLAIN, true, 'a'],
    [plain, srtpA, SRTP_A, false, 'b'],
  ] as const) {
    await t.test(`${caller.name} calls ${callee.name}`, async (t) => {
      const since = callee.events.length;
      const closedP = call(caller, callee, calleeExt, tls);
      if (callee === srtpA) {
        await callee.waitEvent('CALL_INCOMING', { since });
        await callee.accept();
      }
      const closed = await closedP;
      const plainLeg = srtpLeg === 'a' ? 'b' : 'a';
      t.equal(closed[`${srtpLeg}SrtpAuthFailed`], '0', `leg ${srtpLeg} (${srtpA.name}) is SRTP`);
      t.equal(closed[`${plainLeg}SrtpAuthFailed`], undefined, `leg ${plainLeg} (${plain.name}) is plain RTP`);
      const summary = logs('call summary').at(-1)!;
      t.ok(summary[`${srtpLeg}Srtp`] !== undefined && summary[`${plainLeg}Srtp`] === undefined, `the call summary shows SRTP on leg ${srtpLeg} only`);
      const [atSrtp, atPlain] = [heard(srtpA), heard(plain)];
      t.equal(atSrtp.frequency, TONES.b, `the SRTP phone hears the plain phone's ${TONES.b} Hz (ratio ${atSrtp.ratio.toFixed(3)})`);
      t.equal(atPlain.frequency, TONES.a, `the plain phone hears the SRTP phone's ${TONES.a} Hz (ratio ${atPlain.ratio.toFixed(3)})`);
    });
  }
});

await t.test('SDES keys offered over plain UDP with policy mandatory: 488 and one log line', async (t) => {
  const warnings = logs('SRTP keys refused over plain signalling').length;
  const since = udpSdes.events.length;
  const sinceB = srtpB.events.length;
  await udpSdes.dial(`sip:${SRTP_B}@127.0.0.1:${gw.port}`);
  const closed = await udpSdes.waitEvent('CALL_CLOSED', { since });
  t.match(closed.param ?? '', /488/, `the caller got 488 (${closed.param})`);
  await sleep(300);
  const lines = logs('SRTP keys refused over plain signalling').slice(warnings);
  t.equal(lines.length, 1, 'exactly one warning');
  t.match(lines[0], { level: 'warn', leg: 'a', policy: 'mandatory', transport: 'udp' }, 'it names the leg, policy and transport');
  t.notMatch(gw.log(), /inline:[A-Za-z0-9+/]{20}/, 'no key in the log');
  t.equal(srtpB.events.slice(sinceB).filter((e) => e.type === 'CALL_INCOMING').length, 0, 'the callee never rang');
});

await t.test('tampered, replayed and forged SRTP packets are dropped and counted; the rest is heard', async (t) => {
  writeFileSync(configPath, JSON.stringify(config(true)));
  const reloads = logs('config reloaded').length;
  process.kill(gw.pid, 'SIGHUP');
  if (!(await until(() => logs('config reloaded').length > reloads, 5_000))) throw new Error('no config reloaded line in the gateway log:\n' + gw.log().slice(-3000));
  t.match(logs('config reloaded').at(-1)?.applied ?? '', /media\.srtpOverPlainSignalling/, 'the reload applied media.srtpOverPlainSignalling live');

  const media = await bound(await freePort());
  const forger = await bound(0);
  defer(() => media.close());
  defer(() => forger.close());
  const ours = generateSdesCrypto(new SystemRandom());
  // The remote half is never used: only what the test sends is protected.
  const srtp = new SrtpSession({ local: ours, remote: generateSdesCrypto(new SystemRandom()) });
  const opened = logs('relay opened').length;
  const sinceB = srtpB.events.length;
  const local = await freePort();
  const run = spawnSipp(
    sipp!,
    ['-sf', join(import.meta.dirname, '..', 'sipp', 'srtp-call-uac.xml'), '-m', '1', '-d', '4000', '-s', SRTP_B,
      '-key', 'caller', SIPP_CALLER, '-au', SIPP_CALLER, '-ap', password(SIPP_CALLER), '-auth_uri', `${SRTP_B}@127.0.0.1:${gw.port}`,
      '-key', 'mport', String(media.address().port), '-key', 'crypto', formatSdesCrypto(ours),
      '-i', '127.0.0.1', '-p', String(local), `127.0.0.1:${gw.port}`],
    25_000,
  );
  defer(() => run.kill());
  await srtpB.waitEvent('CALL_ESTABLISHED', { since: sinceB });
  if (!(await until(() => logs('relay opened').length > opened, 5_000))) throw new Error('no relay opened line in the gateway log:\n' + gw.log().slice(-3000));
  const relayPort = Number(logs('relay opened').at(-1)!.portA);

  const packets = toneRtp(150, TONES.a).map((p) => protect(srtp, p));
  const send = (s: Socket, p: Uint8Array) => s.send(p, relayPort, '127.0.0.1');
  // A forged packet (a valid header, a wrong tag) from another port before the first genuine one.
  const forged = Buffer.from(packets[0]!);
  forged[forged.length - 1]! ^= 0x01;
  send(forger, forged);
  await sleep(20);
  for (const [i, p] of packets.entries()) {
    if (i === 60) {
      const tampered = Buffer.from(p);
      tampered[20]! ^= 0x10;
      send(media, tampered);
    }
    send(media, p);
    if (i === 100) send(media, packets[90]!);
    await sleep(20);
  }
  const relays = logs('relay closed').length;
  const result = await run.result;
  t.equal(result.exitCode, 0, 'the SIPp call was answered and hung up', { output: result.output });
  const closed = await relayClosedAfter(relays);
  t.equal(closed.aSrtpAuthFailed, '2', 'the forged and the tampered packet failed authentication');
  t.equal(closed.aSrtpReplayed, '1', 'the replayed packet was refused');
  t.equal(closed.aDroppedSource, '0', 'the latch stayed on the genuine source');
  t.ok(Number(closed.aForwarded) >= 140, `the genuine packets were forwarded (${closed.aForwarded})`);
  await srtpB.waitEvent('CALL_CLOSED', { since: sinceB });
  const atB = heard(srtpB);
  t.equal(atB.frequency, TONES.a, `the callee hears the ${TONES.a} Hz the test sent as SRTP (ratio ${atB.ratio.toFixed(3)})`);
});

function bound(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => resolve(s));
  });
}

/** `count` PCMU packets of 20 ms of a `frequency` tone (RFC 3550 §5.1 header, PT 0). */
function toneRtp(count: number, frequency: number): Buffer[] {
  const out: Buffer[] = [];
  const ssrc = 0x5eed1234;
  for (let n = 0; n < count; n++) {
    const pcm = new Int16Array(160);
    for (let i = 0; i < 160; i++) pcm[i] = Math.round(12000 * Math.sin((2 * Math.PI * frequency * (n * 160 + i)) / 8000));
    const p = Buffer.alloc(12 + 160);
    p[0] = 0x80;
    p[1] = n === 0 ? 0x80 : 0x00;
    p.writeUInt16BE((1000 + n) & 0xffff, 2);
    p.writeUInt32BE((n * 160) >>> 0, 4);
    p.writeUInt32BE(ssrc, 8);
    ulawEncode(pcm, p.subarray(12));
    out.push(p);
  }
  return out;
}

function protect(s: SrtpSession, p: Buffer): Buffer {
  const r = s.protectRtp(p);
  if (!r.ok) throw new Error(`cannot protect: ${r.reason}`);
  return r.packet;
}
