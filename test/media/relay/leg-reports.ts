import t from 'tap';
import { LegReports } from '../../../src/media/relay/leg-reports.ts';
import { compactNtp, encodeRtcp, msToCompactNtp, type RtcpReportBlock } from '../../../src/media/rtcp/rtcp-packet.ts';

const SR_NTP = { seconds: 0xe9d2_1234, fraction: 0x8000_0000 };

const block = (over: Partial<RtcpReportBlock> = {}): RtcpReportBlock => ({
  ssrc: 0x1111,
  fractionLost: 0,
  cumulativeLost: 0,
  extendedHighestSequence: 1000,
  jitter: 0,
  lastSr: 0,
  delaySinceLastSr: 0,
  ...over,
});
const rr = (b: RtcpReportBlock | undefined): Uint8Array => encodeRtcp([{ type: 'rr', ssrc: 0x2222, reports: b ? [b] : [] }]);
const sr = (): Uint8Array => encodeRtcp([{ type: 'sr', ssrc: 0x1111, ntp: SR_NTP, rtpTimestamp: 160, packetCount: 50, octetCount: 8000, reports: [] }]);

interface Case {
  name: string;
  /** Datagrams in order: from leg A or leg B, at a monotonic time. */
  steps: { from: 'a' | 'b'; at: number; bytes: Uint8Array }[];
  /** A's snapshot afterwards. */
  want: ReturnType<LegReports['snapshot']>;
}

const cases: Case[] = [
  {
    name: 'the report block gives loss in percent, cumulative loss and jitter in timestamp units',
    steps: [{ from: 'a', at: 0, bytes: rr(block({ fractionLost: 64, cumulativeLost: 12, jitter: 80 })) }],
    want: { fractionLostPercent: 25, cumulativeLost: 12, jitterUnits: 80 },
  },
  {
    name: 'an SR relayed from B, answered by A: round trip = arrival − SR arrival − DLSR',
    steps: [
      { from: 'b', at: 1_000, bytes: sr() },
      { from: 'a', at: 1_100, bytes: rr(block({ lastSr: compactNtp(SR_NTP), delaySinceLastSr: msToCompactNtp(60) })) },
    ],
    want: { fractionLostPercent: 0, cumulativeLost: 0, jitterUnits: 0, rttMs: 40 },
  },
  {
    name: 'an LSR the relay never saw gives no round trip',
    steps: [
      { from: 'b', at: 1_000, bytes: sr() },
      { from: 'a', at: 1_100, bytes: rr(block({ lastSr: compactNtp(SR_NTP) + 1, delaySinceLastSr: msToCompactNtp(60) })) },
    ],
    want: { fractionLostPercent: 0, cumulativeLost: 0, jitterUnits: 0 },
  },
  {
    name: 'an SR that A itself sent is not matched against its own reports',
    steps: [
      { from: 'a', at: 1_000, bytes: sr() },
      { from: 'a', at: 1_100, bytes: rr(block({ lastSr: compactNtp(SR_NTP), delaySinceLastSr: msToCompactNtp(60) })) },
    ],
    want: { fractionLostPercent: 0, cumulativeLost: 0, jitterUnits: 0 },
  },
  {
    name: 'a DLSR longer than the time since the SR (a clock oddity) gives no round trip',
    steps: [
      { from: 'b', at: 1_000, bytes: sr() },
      { from: 'a', at: 1_050, bytes: rr(block({ lastSr: compactNtp(SR_NTP), delaySinceLastSr: msToCompactNtp(60) })) },
    ],
    want: { fractionLostPercent: 0, cumulativeLost: 0, jitterUnits: 0 },
  },
  { name: 'an RR without report blocks says nothing yet', steps: [{ from: 'a', at: 0, bytes: rr(undefined) }], want: undefined },
  { name: 'undecodable bytes are ignored', steps: [{ from: 'a', at: 0, bytes: Uint8Array.of(0x81, 0xc9, 0x00, 0x07, 1, 2, 3, 4) }], want: undefined },
  {
    name: 'the latest report wins',
    steps: [
      { from: 'a', at: 0, bytes: rr(block({ cumulativeLost: 3, jitter: 40 })) },
      { from: 'a', at: 5_000, bytes: rr(block({ cumulativeLost: 5, jitter: 16 })) },
    ],
    want: { fractionLostPercent: 0, cumulativeLost: 5, jitterUnits: 16 },
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const legs = { a: new LegReports(), b: new LegReports() };
    for (const s of c.steps) legs[s.from].onRtcp(s.bytes, s.at, legs[s.from === 'a' ? 'b' : 'a']);
    const got = legs.a.snapshot();
    // DLSR counts in 1/65536 s: a millisecond figure comes back within a few microseconds.
    if (got?.rttMs !== undefined) got.rttMs = Math.round(got.rttMs * 100) / 100;
    t.same(got, c.want);
  });
}

t.test('only the last 8 relayed SRs are remembered', async (t) => {
  const a = new LegReports();
  const b = new LegReports();
  const ntp = (i: number) => ({ seconds: SR_NTP.seconds + i, fraction: 0 });
  for (let i = 0; i < 9; i++) b.onRtcp(encodeRtcp([{ type: 'sr', ssrc: 1, ntp: ntp(i), rtpTimestamp: 0, packetCount: 0, octetCount: 0, reports: [] }]), i * 5_000, a);
  a.onRtcp(rr(block({ lastSr: compactNtp(ntp(0)) })), 50_000, b);
  t.equal(a.snapshot()?.rttMs, undefined, 'the oldest is forgotten');
  a.onRtcp(rr(block({ lastSr: compactNtp(ntp(1)), delaySinceLastSr: msToCompactNtp(44_990) })), 50_000, b);
  t.equal(Math.round(a.snapshot()!.rttMs!), 10, 'the second oldest is still known');
});
