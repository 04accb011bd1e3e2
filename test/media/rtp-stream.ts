import t from 'tap';
import { RtpSender } from '../../src/media/rtp/rtp-sender.ts';
import { ReceiveStatistics, type PacketVerdict } from '../../src/media/rtp/receive-statistics.ts';
import { computeRtcpIntervalMs, formatCallStats, RtcpSession } from '../../src/media/rtcp/rtcp-session.ts';
import { compactNtp, decodeRtcp, ntpFromUnixMs, type RtcpSenderReport } from '../../src/media/rtcp/rtcp-packet.ts';
import { decodeRtpHeader } from '../../src/media/rtp-packet.ts';
import { SeededRandom, type Random } from '../../src/runtime/random.ts';
import { prng } from '../helpers/prng.ts';

/** Hands out scripted bytes first, then a seeded stream. */
class ScriptedRandom implements Random {
  private readonly queue: number[];
  private readonly rest = new SeededRandom(7);
  constructor(hex: string) {
    this.queue = [...Buffer.from(hex.replace(/\s+/g, ''), 'hex')];
  }
  bytes(n: number): Buffer {
    const out = this.rest.bytes(n);
    for (let i = 0; i < n && this.queue.length > 0; i++) out[i] = this.queue.shift()!;
    return out;
  }
}

const payload = (n: number, fill = 0xd5): Uint8Array => new Uint8Array(n).fill(fill);

t.test('RtpSender: random bases, wrap-around, marker and SR counts (RFC 3550 §5.1)', async (t) => {
  // SSRC 0x11223344, sequence 0xfffe, timestamp 0xffffff00.
  const s = new RtpSender({ random: new ScriptedRandom('11223344 fffe ffffff00'), clockRate: 8000 });
  t.same([s.ssrc, s.sequence, s.timestamp], [0x11223344, 0xfffe, 0xffffff00], 'initial values from the injected random');
  const headers = [0, 1, 2, 3].map((i) => {
    const p = s.packet(payload(160, i), { payloadType: 0, ticks: 160, nowMs: 20 * i });
    t.equal(p.length, 172, 'header plus payload');
    t.equal(p[171], i, 'payload copied after the header');
    return decodeRtpHeader(p);
  });
  t.same(headers.map((h) => h.sequence), [0xfffe, 0xffff, 0, 1], 'sequence wraps at 2^16');
  t.same(headers.map((h) => h.timestamp), [0xffffff00, 0xffffffa0, 0x40, 0xe0], 'timestamp wraps at 2^32');
  t.same(headers.map((h) => h.marker), [true, false, false, false], 'marker on the first packet of the talkspurt only');
  t.same([s.packetCount, s.octetCount], [4, 640], 'SR packet and payload-octet counts');
  t.equal(s.rtpTimestampAt(60 + 35), 0xe0 + 35 * 8, 'SR timestamp extrapolated from the last packet sent');

  s.skip(320);
  const afterSilence = decodeRtpHeader(s.packet(payload(160), { payloadType: 0, ticks: 160 }));
  t.same([afterSilence.timestamp, afterSilence.marker], [0xe0 + 160 + 320, true], 'silence moves the timeline and marks the next talkspurt');
  t.equal(decodeRtpHeader(s.packet(payload(160), { payloadType: 0, ticks: 160, marker: true })).marker, true, 'explicit marker honoured');
});

t.test('RtpSender: telephone-event packets keep the event start timestamp (RFC 4733 §2.3.1)', async (t) => {
  const s = new RtpSender({ random: new ScriptedRandom('00000001 0010 00001000'), clockRate: 8000 });
  s.packet(payload(160), { payloadType: 0, ticks: 160 });
  const eventStart = s.timestamp;
  const seen: { seq: number; ts: number; marker: boolean; pt: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const ev = decodeRtpHeader(s.eventPacket(payload(4), { payloadType: 101, timestamp: eventStart, marker: i === 0 }));
    seen.push({ seq: ev.sequence, ts: ev.timestamp, marker: ev.marker, pt: ev.payloadType });
    s.skip(160);
  }
  t.same(seen, [
    { seq: 0x11, ts: 0x10a0, marker: true, pt: 101 },
    { seq: 0x12, ts: 0x10a0, marker: false, pt: 101 },
    { seq: 0x13, ts: 0x10a0, marker: false, pt: 101 },
  ]);
  const next = decodeRtpHeader(s.packet(payload(160), { payloadType: 0, ticks: 160 }));
  t.same([next.sequence, next.timestamp], [0x14, 0x10a0 + 3 * 160], 'audio resumes on the same timeline');
  t.same([s.packetCount, s.octetCount], [5, 332], 'event packets are counted for the SR');
  t.throws(() => s.eventPacket(payload(4), { payloadType: 101, timestamp: 2 ** 32 }), RangeError);
  t.throws(() => s.packet(payload(4), { payloadType: 0, ticks: -1 }), RangeError);
});

t.test('RtpSender.changeSsrc picks a new source and restarts the SR counts (RFC 3550 §8.2)', async (t) => {
  // Initial SSRC 0xaaaaaaaa; the first redraw repeats it, the second hits the avoided 0xbbbbbbbb.
  const s = new RtpSender({ random: new ScriptedRandom('aaaaaaaa 0001 00000000 aaaaaaaa bbbbbbbb cccccccc 0500 00009000'), clockRate: 8000 });
  s.packet(payload(160), { payloadType: 0, ticks: 160 });
  s.packet(payload(160), { payloadType: 0, ticks: 160 });
  t.equal(s.changeSsrc([0xbbbbbbbb]), 0xaaaaaaaa, 'returns the old SSRC for its BYE');
  t.same([s.ssrc, s.sequence, s.timestamp], [0xcccccccc, 0x0500, 0x9000], 'new random SSRC, sequence and timestamp');
  t.same([s.packetCount, s.octetCount, s.totalPacketCount, s.totalOctetCount], [0, 0, 2, 320], 'SR counts restart, call totals do not');
  t.equal(decodeRtpHeader(s.packet(payload(160), { payloadType: 0, ticks: 160 })).marker, true, 'the new source starts with a marker');
});

/** Feeds `seqs` (timestamps 160 per sequence step; arrivals on time, 20 ms per step, unless given) to `rs`. */
function feed(rs: ReceiveStatistics, ssrc: number, seqs: number[], arrival = (_i: number, seq: number) => 20 * (seq - seqs[0]!)): PacketVerdict[] {
  return seqs.map((seq, i) => rs.onPacket({ ssrc, sequence: seq & 0xffff, timestamp: (seq * 160) >>> 0 }, arrival(i, seq), 160));
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

t.test('receive statistics: probation and sequence validation (RFC 3550 A.1)', async (t) => {
  const cases: { name: string; seqs: number[]; minSequential?: number; verdicts: PacketVerdict[] }[] = [
    { name: 'two sequential packets validate a source', seqs: [100, 101, 102], verdicts: ['probation', 'valid', 'valid'] },
    { name: 'a gap during probation restarts it', seqs: [100, 102, 103], verdicts: ['probation', 'probation', 'valid'] },
    { name: 'MIN_SEQUENTIAL 3 with a gap', seqs: [100, 101, 103, 104, 105], minSequential: 3, verdicts: ['probation', 'probation', 'probation', 'probation', 'valid'] },
    { name: 'a jump beyond MAX_DROPOUT is bad until the next one follows it', seqs: [1, 2, 3, 20000, 20001, 20002], verdicts: ['probation', 'valid', 'valid', 'bad-sequence', 'valid', 'valid'] },
    { name: 'a late packet within MAX_MISORDER is counted', seqs: [1, 2, 3, 5, 4], verdicts: ['probation', 'valid', 'valid', 'valid', 'valid'] },
  ];
  for (const c of cases) {
    const rs = new ReceiveStatistics({ clockRate: 8000, ...(c.minSequential ? { minSequential: c.minSequential } : {}) });
    t.same(feed(rs, 1, c.seqs), c.verdicts, c.name);
  }
  const rs = new ReceiveStatistics({ clockRate: 8000 });
  feed(rs, 1, [1, 2, 3, 20000, 20001, 20002]);
  t.same([rs.expected, rs.packetsReceived, rs.cumulativeLost], [2, 2, 0], 'resynchronised after the other side restarted');
});

t.test('receive statistics: loss per interval and cumulative (RFC 3550 A.3)', async (t) => {
  const rs = new ReceiveStatistics({ clockRate: 8000 });
  t.equal(rs.report(), undefined, 'no report block before a valid source');
  // 1000..1099 with every packet ending in 5 dropped; 1000 only starts probation.
  feed(rs, 0x5eed, range(1000, 1100).filter((s) => s % 10 !== 5));
  t.same(rs.report(), { ssrc: 0x5eed, fractionLost: Math.floor((10 * 256) / 99), cumulativeLost: 10, extendedHighestSequence: 1099, jitter: 0 }, 'first interval: 10 of 99 lost');
  feed(rs, 0x5eed, range(1100, 1200), (i) => 2000 + 20 * i);
  t.same(rs.report(), { ssrc: 0x5eed, fractionLost: 0, cumulativeLost: 10, extendedHighestSequence: 1199, jitter: 0 }, 'second interval: nothing new lost');
  feed(rs, 0x5eed, [1200, 1201, 1201, 1202], (i) => 4000 + 20 * i);
  t.same([rs.report()?.fractionLost, rs.cumulativeLost], [0, 9], 'a duplicate counts as received (A.3), never a negative fraction');
  t.same([rs.expected, rs.packetsReceived, rs.totalLost], [202, 193, 9]);
});

t.test('receive statistics: extended highest sequence over the 16-bit wrap', async (t) => {
  const rs = new ReceiveStatistics({ clockRate: 8000 });
  feed(rs, 9, range(65530, 65550));
  t.equal(rs.extendedHighestSequence, 65536 + 13, 'one cycle counted');
  t.same([rs.expected, rs.cumulativeLost], [19, 0]);
  const many = new ReceiveStatistics({ clockRate: 8000 });
  feed(many, 9, range(0, 3 * 65536 + 7).filter((s) => s % 1000 !== 999));
  t.equal(many.extendedHighestSequence, 3 * 65536 + 6, 'three cycles');
  t.equal(many.cumulativeLost, Math.floor((3 * 65536 + 7) / 1000), 'loss counted across the cycles');
});

t.test('receive statistics: interarrival jitter (RFC 3550 A.8)', async (t) => {
  const alternating = new ReceiveStatistics({ clockRate: 8000 });
  // 20 ms packets arriving alternately on time and 5 ms late: |D| = 5 ms = 40 units each step.
  const start = 2 ** 32 / 160 - 100; // the timestamps wrap half-way through
  feed(alternating, 1, range(start, start + 400), (i) => 20 * i + (i % 2) * 5);
  t.ok(Math.abs(alternating.jitter - 40) < 1e-6, `alternating 5 ms: J = ${alternating.jitter} units`);
  t.ok(Math.abs(alternating.jitterMs - 5) < 1e-6, 'in milliseconds');

  const steady = new ReceiveStatistics({ clockRate: 8000 });
  feed(steady, 1, range(start, start + 300), (i) => 1e6 + 20 * i);
  t.equal(steady.jitter, 0, 'constant transit time across the wrap: no jitter');

  // Uniform random delay in [0, 30) ms: E|D| = 30/3 = 10 ms, the mean of J.
  const rand = prng(3550);
  const uniform = new ReceiveStatistics({ clockRate: 8000 });
  let sum = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    uniform.onPacket({ ssrc: 1, sequence: i & 0xffff, timestamp: i * 160 }, 20 * i + 30 * rand());
    if (i >= 1000) sum += uniform.jitterMs;
  }
  const mean = sum / (n - 1000);
  t.ok(Math.abs(mean - 10) < 0.3, `uniform 0-30 ms delay: mean jitter ${mean.toFixed(2)} ms, expected 10`);

  const events = new ReceiveStatistics({ clockRate: 8000 });
  feed(events, 1, [1, 2]);
  for (let i = 0; i < 5; i++) events.onPacket({ ssrc: 1, sequence: 3 + i, timestamp: 320 }, 40 + 20 * i, 4, false);
  t.equal(events.jitter, 0, 'RFC 4733 updates with a repeated timestamp can be left out of the jitter');
});

t.test('receive statistics: an SSRC change resets the source, call totals carry over', async (t) => {
  const rs = new ReceiveStatistics({ clockRate: 8000 });
  feed(rs, 1, range(10, 60).filter((s) => s !== 30), (i) => 20 * i + (i % 2) * 5);
  t.ok(rs.jitter > 30, 'first source has jitter');
  t.same(feed(rs, 2, [7000, 7001]), ['probation', 'valid'], 'the new source is on probation');
  t.same([rs.ssrc, rs.packetsReceived, rs.expected, rs.cumulativeLost, rs.jitter, rs.ssrcChanges], [2, 1, 1, 0, 0, 1]);
  t.same([rs.totalReceived, rs.totalExpected, rs.totalLost], [48 + 1, 49 + 1, 1], 'totals include the first source');
  t.equal(rs.report()?.ssrc, 2, 'reports are about the new source');
});

t.test('RTCP interval (RFC 3550 §6.2, §6.3.1, A.7)', async (t) => {
  const base = { members: 2, senders: 2, rtcpBandwidth: 400, weSent: true, avgRtcpSize: 100, initial: false };
  const e = Math.E - 1.5;
  const cases: { name: string; p: typeof base; u: number; ms: number }[] = [
    { name: '5 s minimum, lowest draw', p: base, u: 0, ms: 2500 / e },
    { name: '5 s minimum, middle draw', p: base, u: 0.5, ms: 5000 / e },
    { name: 'initial interval halves the minimum', p: { ...base, initial: true }, u: 0.5, ms: 2500 / e },
    { name: 'narrow bandwidth: size x members / bandwidth', p: { ...base, rtcpBandwidth: 25 }, u: 0.5, ms: 8000 / e },
    { name: 'few senders, we send: 25 % among the senders', p: { ...base, members: 40, senders: 2, rtcpBandwidth: 100 }, u: 0.5, ms: ((100 * 2) / 25 / e) * 1000 },
    { name: 'few senders, we receive: 75 % among the rest', p: { ...base, members: 40, senders: 2, weSent: false, rtcpBandwidth: 100 }, u: 0.5, ms: ((100 * 38) / 75 / e) * 1000 },
  ];
  for (const c of cases) t.ok(Math.abs(computeRtcpIntervalMs(c.p, c.u) - c.ms) < 1e-6, `${c.name}: ${c.ms.toFixed(1)} ms`);

  const session = new RtcpSession({
    sender: new RtpSender({ random: new SeededRandom(1), clockRate: 8000 }),
    receiver: new ReceiveStatistics({ clockRate: 8000 }),
    random: new SeededRandom(99),
    cname: 'test@host',
  });
  const draw = (n: number): { min: number; max: number; mean: number } => {
    let min = Infinity;
    let max = 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const v = session.interval();
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    return { min, max, mean: sum / n };
  };
  const first = draw(20000);
  t.ok(first.min >= 1250 / e && first.max <= 3750 / e, `initial: ${first.min.toFixed(0)}..${first.max.toFixed(0)} ms`);
  t.ok(Math.abs(first.mean - 2500 / e) < 0.01 * (2500 / e), `initial mean ${first.mean.toFixed(0)} ms, expected ${(2500 / e).toFixed(0)}`);
  session.report(0, ntpFromUnixMs(0));
  const later = draw(20000);
  t.ok(later.min >= 2500 / e && later.max <= 7500 / e, `regular: ${later.min.toFixed(0)}..${later.max.toFixed(0)} ms`);
  t.ok(Math.abs(later.mean - 5000 / e) < 0.01 * (5000 / e), `regular mean ${later.mean.toFixed(0)} ms, expected ${(5000 / e).toFixed(0)}`);

  // The scheduled timer with reconsideration (A.7 OnExpire) over an hour.
  const gaps: number[] = [];
  let at = session.start(0);
  let last = 0;
  while (at < 3_600_000) {
    const r = session.onTimer(at, ntpFromUnixMs(at));
    if (r.packet) {
      gaps.push(at - last);
      last = at;
    }
    t.ok(r.nextAtMs > at, 'the next firing is later') || t.bailout();
    at = r.nextAtMs;
  }
  const mean = gaps.slice(1).reduce((a, b) => a + b, 0) / (gaps.length - 1);
  t.ok(gaps[0]! <= 3750 / e && gaps[0]! >= 1250 / e, `first report after ${gaps[0]!.toFixed(0)} ms`);
  t.ok(Math.min(...gaps.slice(1)) >= 2500 / e && Math.max(...gaps) <= 7500 / e, 'every gap within [0.5, 1.5] x 5 s / (e - 1.5)');
  t.ok(mean > 4000 && mean < 5500, `${gaps.length} reports in an hour, mean gap ${mean.toFixed(0)} ms`);
});

/** One end of a call: sender, receiver and RTCP session. */
function endpoint(seed: number, cname: string) {
  const sender = new RtpSender({ random: new SeededRandom(seed), clockRate: 8000 });
  const receiver = new ReceiveStatistics({ clockRate: 8000 });
  const session = new RtcpSession({ sender, receiver, random: new SeededRandom(seed + 1), cname, codec: 'PCMU' });
  return { sender, receiver, session };
}

const WALL = 1_700_000_000_000;
const ntpAt = (ms: number) => ntpFromUnixMs(WALL + ms);

/** 20 ms of PCMU from `from` to the peer `to`, with a one-way delay and the packets to drop. */
function talk(from: ReturnType<typeof endpoint>, to: ReturnType<typeof endpoint>, startMs: number, count: number, delayMs: number, drop: Set<number> = new Set()): void {
  for (let i = 0; i < count; i++) {
    const p = from.sender.packet(payload(160), { payloadType: 0, ticks: 160, nowMs: startMs + 20 * i });
    if (drop.has(i)) continue;
    to.receiver.onPacket(decodeRtpHeader(p), startMs + 20 * i + delayMs, 160);
  }
}

t.test('RTCP session: SR/RR exchange gives the round-trip time and the peer view (RFC 3550 §6.4.1)', async (t) => {
  const a = endpoint(10, 'a@host');
  const b = endpoint(20, 'b@host');
  const aToB = 37; // one-way delays in ms, asymmetric
  const bToA = 21;
  talk(a, b, 0, 50, aToB, new Set([10, 20, 30, 40, 45]));
  talk(b, a, 0, 50, bToA);

  const timeline = a.sender.timestamp;
  const srA = a.session.report(1000, ntpAt(1000));
  const decodedA = decodeRtcp(srA);
  t.same(decodedA.map((p) => p.type), ['sr', 'sdes'], 'we sent: SR then SDES (§6.1)');
  const sr = decodedA[0] as RtcpSenderReport;
  t.same([sr.ssrc, sr.packetCount, sr.octetCount], [a.sender.ssrc, 50, 8000], 'sender info counts');
  t.equal(sr.rtpTimestamp, timeline, 'SR timestamp: last packet at 980 ms + 20 ms, the timeline at report time');
  t.same(sr.reports.map((r) => [r.ssrc, r.lastSr]), [[b.sender.ssrc, 0]], 'a block about b, no LSR yet');
  t.same(decodedA[1], { type: 'sdes', chunks: [{ ssrc: a.sender.ssrc, items: [{ type: 1, text: 'a@host' }] }] }, 'CNAME');

  t.same(b.session.onRtcp(srA, 1000 + aToB), { ok: true, packets: decodedA, bye: false, collision: false }, 'b takes a SR');
  const hold = 733;
  const srB = b.session.report(1000 + aToB + hold, ntpAt(1000 + aToB + hold));
  const blockAboutA = (decodeRtcp(srB)[0] as RtcpSenderReport).reports[0]!;
  t.same(
    [blockAboutA.ssrc, blockAboutA.lastSr, blockAboutA.cumulativeLost, blockAboutA.fractionLost],
    [a.sender.ssrc, compactNtp(ntpAt(1000)), 5, Math.floor((5 * 256) / 49)],
    "b's block: LSR is a's SR, 5 of a's packets lost",
  );
  const receipt = a.session.onRtcp(srB, 1000 + aToB + hold + bToA);
  const expected = aToB + bToA;
  t.ok(receipt.ok && Math.abs(receipt.rttMs! - expected) < 0.01, `a measures RTT ${receipt.ok ? receipt.rttMs : '-'} ms, expected ${expected}`);

  t.same([a.session.rttMs, a.session.remoteReport?.cumulativeLost], [receipt.ok && receipt.rttMs, 5], 'kept on the session');
  t.equal(b.receiver.octetsReceived, 44 * 160, 'payload octets of the counted packets');
  const srA2 = a.session.report(2500, ntpAt(2500));
  const back = b.session.onRtcp(srA2, 2500 + aToB);
  t.ok(back.ok && Math.abs(back.rttMs! - expected) < 0.01, `b measures RTT ${back.ok ? back.rttMs : '-'} ms from a's next SR`);

  const stats = a.session.stats;
  t.same(
    { ...stats, rttMs: Math.round(stats.rttMs!), remoteFractionLostPercent: Math.round(stats.remoteFractionLostPercent! * 100) / 100 },
    { codec: 'PCMU', packetsSent: 50, packetsReceived: 49, lost: 0, lossPercent: 0, jitterMs: 0, rttMs: 58, remoteLost: 5, remoteFractionLostPercent: 10.16, remoteJitterMs: 0 },
    "a's call statistics include b's view of a's stream",
  );
  t.same(
    formatCallStats(b.session.stats),
    { codec: 'PCMU', packetsSent: 50, packetsReceived: 44, lost: 5, lossPercent: 10.2, jitterMs: 0, rttMs: 58, remoteLost: 0, remoteJitterMs: 0 },
    'one flat field set for the end-of-call log line',
  );
  t.same(formatCallStats({ packetsSent: 0, packetsReceived: 0, lost: 0, lossPercent: 0, jitterMs: 1.26 }), { packetsSent: 0, packetsReceived: 0, lost: 0, lossPercent: 0, jitterMs: 1.3 }, 'unknown fields are left out');
});

t.test('RTCP session: RR when silent, BYE, collisions and malformed input', async (t) => {
  const a = endpoint(30, 'a@host');
  const b = endpoint(40, 'b@host');
  t.same(decodeRtcp(a.session.report(0, ntpAt(0))).map((p) => p.type), ['rr', 'sdes'], 'nothing sent, nothing received: an empty RR and SDES');
  talk(b, a, 0, 10, 5);
  const rr = decodeRtcp(a.session.report(300, ntpAt(300)));
  t.same([rr[0]!.type, rr[0]!.type === 'rr' && rr[0]!.reports[0]!.ssrc], ['rr', b.sender.ssrc], 'a receiver-only end sends RR with a block');

  const bye = b.session.bye(400, ntpAt(400), 'hangup');
  const byePackets = decodeRtcp(bye);
  t.same(byePackets.map((p) => p.type), ['sr', 'sdes', 'bye'], 'BYE comes last in a compound with a report (§6.1)');
  const r = a.session.onRtcp(bye, 405);
  t.ok(r.ok && r.bye && !r.collision, 'a sees the source it receives leave');

  const clash = endpoint(30, 'clash@host'); // same seed: same SSRC as a
  const oldSsrc = a.sender.ssrc;
  const c = a.session.onRtcp(clash.session.report(500, ntpAt(500)), 501);
  t.ok(c.ok && c.collision, 'a report from our own SSRC is a collision (§8.2)');
  const resolve = decodeRtcp(a.session.changeSsrc(502, ntpAt(502)));
  t.same(resolve.at(-1), { type: 'bye', ssrcs: [oldSsrc], reason: 'SSRC collision' }, 'BYE for the old SSRC');
  t.not(a.sender.ssrc, oldSsrc, 'new SSRC in use');
  t.not(a.sender.ssrc, b.sender.ssrc, 'and not the peer one');

  const bad = a.session.onRtcp(Uint8Array.of(0x80, 0xc9, 0x00), 600);
  t.same([bad.ok, !bad.ok && bad.error.code, a.session.malformedCount], [false, 'RTCP_TOO_SHORT', 1], 'a malformed datagram is counted and returned, not thrown');
  const lone = a.session.onRtcp(Uint8Array.from(Buffer.from('81cb000100000009', 'hex')), 601);
  t.ok(lone.ok && !lone.bye, 'a reduced-size BYE from an unknown source is accepted and ignored');
});
