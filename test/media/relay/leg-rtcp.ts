import t from 'tap';
import { LegRtcp, type LegRtcpOptions } from '../../../src/media/relay/leg-rtcp.ts';
import { compactNtp, decodeRtcp, encodeRtcp, msToCompactNtp, ntpToUnixMs, type RtcpPacket } from '../../../src/media/rtcp/rtcp-packet.ts';
import { encodeRtpHeader } from '../../../src/media/rtp-packet.ts';
import { RtpSender } from '../../../src/media/rtp/rtp-sender.ts';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { MemoryLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';

const PEER_SSRC = 0x2222;
const PAYLOAD = new Uint8Array(160);

interface Sent {
  at: number;
  packets: RtcpPacket[];
}

/** A leg's RTCP over a manual clock, with the gateway's stream and the peer's stream driven by hand. */
function leg(over: Partial<LegRtcpOptions> = {}) {
  const clock = new ManualClock(1000);
  const logger = new MemoryLogger();
  const sender = new RtpSender({ random: new SeededRandom(7), clockRate: 8000 });
  const sent: Sent[] = [];
  let ssrcChanges = 0;
  const rtcp = new LegRtcp({
    sender,
    clock,
    random: new SeededRandom(99),
    cname: 'gw@test',
    codec: 'PCMA',
    send: (p) => {
      sent.push({ at: clock.now(), packets: decodeRtcp(p) });
      return true;
    },
    onSsrcChange: () => ssrcChanges++,
    logger,
    logFields: { relay: 'relay-1', leg: 'b' },
    ...over,
  });
  let peerSeq = 1000;
  /** `ms` of 20 ms packets both ways; `skipPeer` peer sequence numbers are lost first; `quiet`: the gateway sends nothing. */
  const talk = (ms: number, options: { skipPeer?: number; quiet?: boolean } = {}): void => {
    peerSeq += options.skipPeer ?? 0;
    for (let i = 0; i < ms / 20; i++) {
      clock.advance(20);
      if (!options.quiet) sender.packet(PAYLOAD, { payloadType: 8, ticks: 160, nowMs: clock.now() });
      const p = new Uint8Array(12 + 160);
      p.set(encodeRtpHeader({ payloadType: 8, sequence: peerSeq & 0xffff, timestamp: peerSeq * 160, ssrc: PEER_SSRC, marker: false }));
      peerSeq++;
      rtcp.onRtp(p, clock.now());
    }
  };
  return { clock, logger, sender, sent, rtcp, talk, changes: () => ssrcChanges };
}

t.test('SR+SDES at the RFC 3550 §6.2 interval, with our SSRC and the packet and octet counts sent so far', async (t) => {
  const { sent, sender, talk } = leg();
  const counts: number[] = [];
  for (let i = 0; i < 60_000 / 20; i++) {
    // A report falls due inside the clock step, before that step's packet is sent.
    const before = sent.length;
    const count = sender.packetCount;
    talk(20);
    if (sent.length > before) counts.push(count);
  }
  t.ok(sent.length >= 10 && sent.length <= 29, `${sent.length} reports in 60 s (one per 2.05..6.16 s)`);
  const first = sent[0]!.at - 1000;
  t.ok(first >= 1026 && first <= 3078, `the first after ${first.toFixed(0)} ms: half the 5 s minimum, randomised (§6.2, A.7: 1026..3078)`);
  const gaps = sent.slice(1).map((s, i) => s.at - sent[i]!.at);
  t.ok(gaps.every((g) => g >= 2052 && g <= 6156), `then every 2052..6156 ms (5 s randomised over [0.5, 1.5] / (e - 3/2)): ${gaps.map((g) => g.toFixed(0)).join(', ')}`);
  const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
  // Reconsideration (A.7) only ever postpones a due report, so the mean is above the draws' 4104 ms.
  t.ok(mean > 3500 && mean < 5800, `mean gap ${mean.toFixed(0)} ms`);
  for (const [i, s] of sent.entries()) {
    const [sr, sdes] = s.packets;
    if (sr?.type !== 'sr' || sdes?.type !== 'sdes') {
      t.fail(`report ${i} is SR+SDES`, { types: s.packets.map((p) => p.type) });
      continue;
    }
    // The stream's timeline is linear (160 ticks every 20 ms), so extrapolating from its last packet gives any instant's timestamp.
    const expectedTs = sender.rtpTimestampAt(s.at);
    if (sr.ssrc !== sender.ssrc || sr.packetCount !== counts[i] || sr.octetCount !== counts[i]! * 160 || sr.rtpTimestamp !== expectedTs) {
      t.fail(`report ${i}: SSRC, counts, RTP timestamp`, { sr, counts: counts[i], expectedTs });
    }
  }
  t.pass(`every report: SR with SSRC ${sender.ssrc.toString(16)}, packets and octets sent (160 per packet), RTP timestamp of its NTP time (§6.4.1)`);
  const [sr, sdes] = sent.at(-1)!.packets;
  t.same(sdes?.type === 'sdes' ? sdes.chunks.map((c) => [c.ssrc, c.items.map((i) => i.text)]) : [], [[sender.ssrc, ['gw@test']]], 'SDES CNAME for our SSRC');
  t.same(sr?.type === 'sr' ? sr.reports.map((r) => [r.ssrc, r.fractionLost, r.cumulativeLost]) : [], [[PEER_SSRC, 0, 0]], 'a report block on the peer\'s stream');
});

t.test('reports, table: what the peer and our stream did decides the compound', async (t) => {
  const cases: { name: string; run: (l: ReturnType<typeof leg>) => void; types: string[]; lost?: number; blocks: number }[] = [
    { name: 'both streams flow', run: (l) => l.talk(8000), types: ['sr', 'sdes'], blocks: 1 },
    { name: 'our stream never flowed (§6.4: RR when we sent nothing)', run: (l) => l.talk(8000, { quiet: true }), types: ['rr', 'sdes'], blocks: 1 },
    { name: 'the peer lost 10 packets', run: (l) => (l.talk(1000), l.talk(7000, { skipPeer: 10 })), types: ['sr', 'sdes'], lost: 10, blocks: 1 },
    {
      name: 'the peer sent nothing (§6.4.2: no report block)',
      run: (l) => {
        for (let i = 0; i < 400; i++) {
          l.clock.advance(20);
          l.sender.packet(PAYLOAD, { payloadType: 8, ticks: 160, nowMs: l.clock.now() });
        }
      },
      types: ['sr', 'sdes'],
      blocks: 0,
    },
  ];
  for (const c of cases) {
    const l = leg();
    c.run(l);
    const last = l.sent.at(-1);
    t.same(last?.packets.map((p) => p.type), c.types, `${c.name}: ${c.types.join('+')}`);
    const head = last?.packets[0];
    const blocks = head?.type === 'sr' || head?.type === 'rr' ? head.reports : [];
    t.equal(blocks.length, c.blocks, `${c.name}: ${c.blocks} report block(s)`);
    if (c.lost !== undefined) {
      t.equal(blocks[0]?.cumulativeLost, c.lost, `${c.name}: cumulative lost in the block`);
      t.equal(l.rtcp.stats.lost, c.lost, `${c.name}: and in the call statistics`);
    }
  }
});

t.test('the peer\'s receiver report about our stream gives RTT and its loss and jitter (§6.4.1)', async (t) => {
  const { clock, sent, sender, rtcp, talk } = leg();
  while (sent.length === 0 && clock.now() < 5000) talk(20);
  const sr = sent[0]?.packets[0];
  t.equal(sr?.type, 'sr', 'an SR went out');
  if (sr?.type !== 'sr') return;
  const srAt = ntpToUnixMs(sr.ntp) - (clock.wallNow() - clock.now());
  t.ok(Math.abs(srAt - sent[0]!.at) < 0.01, 'its NTP time is the wall clock when it was sent');
  // The peer holds the SR 25 ms and its report arrives 40 ms after the SR left.
  clock.advance(srAt + 40 - clock.now());
  const rr = encodeRtcp([
    { type: 'rr', ssrc: PEER_SSRC, reports: [{ ssrc: sender.ssrc, fractionLost: 64, cumulativeLost: 3, extendedHighestSequence: 70000, jitter: 40, lastSr: compactNtp(sr.ntp), delaySinceLastSr: msToCompactNtp(25) }] },
    { type: 'sdes', chunks: [{ ssrc: PEER_SSRC, items: [{ type: 1, text: 'phone@test' }] }] },
  ]);
  rtcp.onRtcp(rr, clock.now());
  const stats = rtcp.stats;
  t.ok(stats.rttMs !== undefined && Math.abs(stats.rttMs - 15) < 0.1, `RTT = A - LSR - DLSR = 40 - 25 = 15 ms (got ${stats.rttMs})`);
  t.same([stats.remoteLost, stats.remoteFractionLostPercent, stats.remoteJitterMs], [3, 25, 5], 'the peer lost 3 of ours (25 % lately), jitter 40 units = 5 ms');
  t.equal(rtcp.read, 1, 'one datagram read');
  clock.advance(5);
  const before = sent.length;
  talk(6200);
  const next = sent[before]?.packets[0];
  t.ok(next?.type === 'sr' && next.reports[0]?.lastSr === 0, 'the peer sent no SR: our blocks carry LSR 0');
  const summary = rtcp.summary();
  t.match(summary, { ssrc: sender.ssrc, codec: 'PCMA', rttMs: 15, remoteLost: 3, remoteJitterMs: 5, rtcpRead: 1 }, 'the log summary');
  t.ok(typeof summary.rtcpSent === 'number' && summary.rtcpSent === sent.length, `and the reports sent (${summary.rtcpSent})`);
});

t.test('BYE at the end: a last SR, SDES and BYE for our SSRC; no more reports; idempotent', async (t) => {
  const { clock, sent, sender, rtcp, talk } = leg();
  talk(500);
  rtcp.bye();
  t.same(sent.map((s) => s.packets.map((p) => p.type)), [['sr', 'sdes', 'bye']], 'SR + SDES + BYE (§6.6)');
  const bye = sent[0]?.packets[2];
  t.same(bye?.type === 'bye' ? bye.ssrcs : [], [sender.ssrc], 'for our SSRC');
  t.same(clock.pending(), [], 'the report timer is cancelled');
  rtcp.bye();
  rtcp.stop();
  talk(20_000);
  t.equal(sent.length, 1, 'nothing more is sent');
  rtcp.onRtcp(encodeRtcp([{ type: 'rr', ssrc: PEER_SSRC, reports: [] }]), clock.now());
  t.equal(rtcp.read, 0, 'nor read');
});

t.test('a report sent nowhere is not counted; malformed RTCP is logged once; an SSRC collision changes our SSRC (§8.2)', async (t) => {
  let open = false;
  const l = leg({ send: () => open });
  l.talk(10_000);
  t.equal(l.rtcp.sent, 0, 'no destination: nothing counted as sent');
  open = true;

  l.rtcp.onRtcp(new Uint8Array([0x80, 201, 0, 9, 1, 2, 3, 4]), l.clock.now());
  l.rtcp.onRtcp(new Uint8Array([0x40, 201, 0, 1, 1, 2, 3, 4]), l.clock.now());
  t.equal(l.logger.records.filter((r) => r.msg.startsWith('malformed RTCP')).length, 1, 'two malformed datagrams, one warning');

  const sent: RtcpPacket[][] = [];
  const c = leg({ send: (p) => (sent.push(decodeRtcp(p)), true) });
  c.talk(500);
  const old = c.sender.ssrc;
  c.rtcp.onRtcp(encodeRtcp([{ type: 'rr', ssrc: old, reports: [] }]), c.clock.now());
  t.not(c.sender.ssrc, old, 'a new SSRC');
  const bye = sent.at(-1)?.find((p) => p.type === 'bye');
  t.same(bye?.type === 'bye' ? bye.ssrcs : [], [old], 'BYE for the old one');
  t.equal(c.changes(), 1, 'the relay is told, to let the new SSRC through');
  t.ok(c.logger.records.some((r) => r.msg.startsWith('SSRC collision') && r.fields.leg === 'b'), 'logged with the leg');
});
