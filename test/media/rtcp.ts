import t from 'tap';
import {
  compactNtp,
  compactNtpToMs,
  decodeRtcp,
  encodeRtcp,
  isRtcp,
  msToCompactNtp,
  ntpFromUnixMs,
  ntpToUnixMs,
  rtcpEncodingLength,
  RtcpPacketError,
  SDES_CNAME,
  SDES_NAME,
  SDES_TOOL,
  type RtcpPacket,
  type RtcpReportBlock,
} from '../../src/media/rtcp/rtcp-packet.ts';
import { prng } from '../helpers/prng.ts';

const block = (ssrc: number, over: Partial<RtcpReportBlock> = {}): RtcpReportBlock => ({
  ssrc,
  fractionLost: 25,
  cumulativeLost: 10,
  extendedHighestSequence: 0x1000f,
  jitter: 40,
  lastSr: 0x12345678,
  delaySinceLastSr: 32768,
  ...over,
});

const sr = (reports: RtcpReportBlock[] = []): RtcpPacket => ({
  type: 'sr',
  ssrc: 0xdeadbeef,
  ntp: { seconds: 0xe8a0b1c2, fraction: 0x80000000 },
  rtpTimestamp: 0xfffffff0,
  packetCount: 1234,
  octetCount: 197440,
  reports,
});

const sdes = (...texts: string[]): RtcpPacket => ({
  type: 'sdes',
  chunks: [{ ssrc: 0xdeadbeef, items: texts.map((text) => ({ type: SDES_CNAME, text })) }],
});

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

t.test('RTCP packets (RFC 3550 §6.4-§6.6) round-trip at an offset in a larger buffer', async (t) => {
  const cases: { name: string; packets: RtcpPacket[]; padding?: number; compound?: boolean }[] = [
    { name: 'SR without report blocks', packets: [sr()] },
    { name: 'SR with two report blocks', packets: [sr([block(1), block(2, { cumulativeLost: -3, fractionLost: 255 })])] },
    { name: 'SR with a profile extension', packets: [{ ...sr([block(1)]), extension: Uint8Array.of(1, 2, 3, 4) } as RtcpPacket] },
    { name: 'RR with no blocks (nothing received yet)', packets: [{ type: 'rr', ssrc: 7, reports: [] }] },
    { name: 'RR with cumulative lost at the 24-bit limits', packets: [{ type: 'rr', ssrc: 7, reports: [block(9, { cumulativeLost: 0x7fffff }), block(10, { cumulativeLost: -0x800000 })] }] },
    ...['', 'a', 'ab', 'abc', 'abcd', 'user@192.0.2.10'].map((c) => ({ name: `SDES CNAME of ${c.length} bytes`, packets: [{ type: 'rr', ssrc: 1, reports: [] }, sdes(c)] as RtcpPacket[] })),
    {
      name: 'SDES with two chunks and several items, UTF-8',
      packets: [
        { type: 'rr', ssrc: 1, reports: [] },
        {
          type: 'sdes',
          chunks: [
            { ssrc: 1, items: [{ type: SDES_CNAME, text: 'door@box' }, { type: SDES_NAME, text: 'Tür 1 ☎' }, { type: SDES_TOOL, text: 'hookswitch' }] },
            { ssrc: 2, items: [] },
          ],
        },
      ],
    },
    { name: 'BYE without reason', packets: [{ type: 'rr', ssrc: 1, reports: [] }, { type: 'bye', ssrcs: [1] }] },
    ...['', 'x', 'bye', 'end', 'call ended'].map((reason) => ({
      name: `BYE with a ${reason.length}-byte reason and two SSRCs`,
      packets: [{ type: 'rr', ssrc: 1, reports: [] }, { type: 'bye', ssrcs: [1, 0xffffffff], reason }] as RtcpPacket[],
    })),
    { name: 'APP kept opaque', packets: [{ type: 'rr', ssrc: 1, reports: [] }, { type: 'other', packetType: 204, count: 3, body: Uint8Array.of(0, 0, 0, 1, 0x61, 0x62, 0x63, 0x64) }] },
    { name: 'full compound SR + SDES + BYE', packets: [sr([block(5)]), sdes('me@host'), { type: 'bye', ssrcs: [0xdeadbeef], reason: 'hangup' }] },
    { name: 'compound with padding on the last packet', packets: [sr([block(5)]), sdes('me@host')], padding: 8 },
    { name: 'lone BYE (reduced size) with padding', packets: [{ type: 'bye', ssrcs: [3] }], padding: 4, compound: false },
  ];
  for (const c of cases) {
    const options = c.padding === undefined ? {} : { padding: c.padding };
    const len = rtcpEncodingLength(c.packets, options);
    t.equal(len % 4, 0, `${c.name}: length is a multiple of 4`);
    const buf = new Uint8Array(len + 13).fill(0xee);
    encodeRtcp(c.packets, buf, 6, options);
    t.equal(buf[5], 0xee, `${c.name}: byte before untouched`);
    t.equal(buf[6 + len], 0xee, `${c.name}: byte after untouched`);
    t.equal(encodeRtcp(c.packets, undefined, 0, options).length, len, `${c.name}: encodingLength matches`);
    const decoded = decodeRtcp(buf, 6, len, { requireCompound: c.compound ?? true });
    t.same(decoded, c.packets, `${c.name}: decoded packets`);
    t.same(encodeRtcp(decoded, undefined, 0, options), buf.subarray(6, 6 + len), `${c.name}: re-encoded bytes`);
    t.ok(isRtcp(buf.subarray(6)), `${c.name}: recognised as RTCP on a muxed port`);
  }
});

t.test('wire layout matches RFC 3550 byte by byte', async (t) => {
  const rr: RtcpPacket[] = [
    { type: 'rr', ssrc: 0x01020304, reports: [block(0x0a0b0c0d, { fractionLost: 0x80, cumulativeLost: -1, extendedHighestSequence: 0x00010005, jitter: 0x20, lastSr: 0xaabbccdd, delaySinceLastSr: 0x00010000 })] },
    sdes('ab'),
  ];
  const expected = hex(`
    81 c9 0007 01020304
    0a0b0c0d 80ffffff 00010005 00000020 aabbccdd 00010000
    81 ca 0003 deadbeef 01 02 6162 00 000000`);
  t.same(encodeRtcp(rr), expected, 'RR with one block, then SDES CNAME "ab": the item ends on a word boundary, so a whole null word follows');
  const bye = hex('81 cb 0003 00000001 03 616263 0000 0000'.replace(/ /g, ''));
  t.same(decodeRtcp(bye, 0, bye.length, { requireCompound: false }), [{ type: 'bye', ssrcs: [1], reason: 'abc' }], 'BYE reason, then null padding');
});

t.test('malformed datagrams fail with a stable code (RFC 3550 A.2)', async (t) => {
  const rrEmpty = '80c90001 00000001';
  const cases: { name: string; bytes: string; code: string; compound?: boolean }[] = [
    { name: 'empty', bytes: '', code: 'RTCP_TOO_SHORT' },
    { name: 'three bytes', bytes: '80c900', code: 'RTCP_TOO_SHORT' },
    { name: 'version 1', bytes: '40c90001 00000001', code: 'RTCP_BAD_VERSION' },
    { name: 'version 2 then version 0', bytes: `${rrEmpty} 00ca0000`, code: 'RTCP_BAD_VERSION' },
    { name: 'length past the datagram', bytes: '80c90002 00000001', code: 'RTCP_BAD_LENGTH' },
    { name: 'two stray bytes after a packet', bytes: `${rrEmpty} 8000`, code: 'RTCP_TOO_SHORT' },
    { name: 'RR count 1 without room for the block', bytes: '81c90001 00000001', code: 'RTCP_BAD_LENGTH' },
    { name: 'SR shorter than its sender info', bytes: '80c80001 00000001', code: 'RTCP_BAD_LENGTH' },
    { name: 'padding on a packet that is not last', bytes: `a0c90002 00000001 00000004 ${rrEmpty}`, code: 'RTCP_BAD_PADDING' },
    { name: 'padding count 0', bytes: 'a0c90002 00000001 00000000', code: 'RTCP_BAD_PADDING' },
    { name: 'padding count larger than the body', bytes: 'a0c90002 00000001 00000009', code: 'RTCP_BAD_PADDING' },
    { name: 'padding eats the RR sender SSRC', bytes: 'a0c90001 00000004', code: 'RTCP_BAD_LENGTH' },
    { name: 'SDES first (not compound)', bytes: '81ca0002 00000001 00000000', code: 'RTCP_NOT_COMPOUND' },
    { name: 'BYE first (not compound)', bytes: '81cb0001 00000001', code: 'RTCP_NOT_COMPOUND' },
    { name: 'SDES item overruns the packet', bytes: `${rrEmpty} 81ca0002 00000001 01076162`, code: 'RTCP_BAD_SDES' },
    { name: 'SDES chunk without null terminator', bytes: `${rrEmpty} 81ca0002 00000001 01026162`, code: 'RTCP_BAD_SDES' },
    { name: 'SDES count 2 with one chunk', bytes: `${rrEmpty} 82ca0002 00000001 00000000`, code: 'RTCP_BAD_LENGTH' },
    { name: 'SDES garbage after the chunks', bytes: `${rrEmpty} 81ca0003 00000001 00000000 00000001`, code: 'RTCP_BAD_SDES' },
    { name: 'BYE count larger than the packet', bytes: `${rrEmpty} 82cb0001 00000001`, code: 'RTCP_BAD_LENGTH' },
    { name: 'BYE reason overruns', bytes: `${rrEmpty} 81cb0002 00000001 09616263`, code: 'RTCP_BAD_BYE' },
    { name: 'reduced-size BYE with a bad reason', bytes: '81cb0002 00000001 05616263', code: 'RTCP_BAD_BYE', compound: false },
  ];
  for (const c of cases) {
    const bytes = hex(c.bytes);
    // Also embedded at an offset in a larger buffer, to prove decode stays within its range.
    const framed = new Uint8Array(bytes.length + 8).fill(0x81);
    framed.set(bytes, 3);
    for (const [buf, offset] of [[bytes, 0], [framed, 3]] as const) {
      try {
        decodeRtcp(buf, offset, bytes.length, { requireCompound: c.compound ?? true });
        t.fail(`${c.name}: decoded without error`);
      } catch (err) {
        t.ok(err instanceof RtcpPacketError, `${c.name}: RtcpPacketError`);
        t.equal((err as RtcpPacketError).code, c.code, `${c.name} at offset ${offset}: ${(err as Error).message}`);
      }
    }
  }
});

t.test('encoding rejects fields that do not fit with RTCP_BAD_FIELD', async (t) => {
  const cases: { name: string; packets: RtcpPacket[]; padding?: number }[] = [
    { name: '32 report blocks', packets: [{ type: 'rr', ssrc: 1, reports: Array.from({ length: 32 }, (_, i) => block(i)) }] },
    { name: 'fraction lost 256', packets: [{ type: 'rr', ssrc: 1, reports: [block(1, { fractionLost: 256 })] }] },
    { name: 'cumulative lost beyond 24 bits', packets: [{ type: 'rr', ssrc: 1, reports: [block(1, { cumulativeLost: 0x800000 })] }] },
    { name: 'SSRC beyond 32 bits', packets: [{ type: 'rr', ssrc: 2 ** 32, reports: [] }] },
    { name: 'CNAME of 256 bytes', packets: [sdes('x'.repeat(256))] },
    { name: 'SDES item type 0', packets: [{ type: 'sdes', chunks: [{ ssrc: 1, items: [{ type: 0, text: '' }] }] }] },
    { name: 'BYE reason of 256 bytes', packets: [{ type: 'bye', ssrcs: [1], reason: 'é'.repeat(128) }] },
    { name: 'opaque body not a multiple of 4', packets: [{ type: 'other', packetType: 204, count: 0, body: Uint8Array.of(1) }] },
    { name: 'padding not a multiple of 4', packets: [sr()], padding: 3 },
    { name: 'no packets', packets: [] },
  ];
  for (const c of cases) {
    t.throws(() => encodeRtcp(c.packets, undefined, 0, c.padding === undefined ? {} : { padding: c.padding }), { code: 'RTCP_BAD_FIELD' }, c.name);
  }
});

t.test('random bytes never escape as anything but RtcpPacketError', async (t) => {
  const rand = prng(4733);
  const valid = encodeRtcp([sr([block(1)]), sdes('fuzz@host'), { type: 'bye', ssrcs: [1], reason: 'r' }]);
  const codes = new Map<string, number>();
  let decoded = 0;
  for (let i = 0; i < 4000; i++) {
    const buf = i % 2 === 0 ? Uint8Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256)) : valid.slice();
    if (i % 2 === 1) for (let k = 0; k < 3; k++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
    try {
      decodeRtcp(buf, 0, buf.length, { requireCompound: false });
      decoded++;
    } catch (err) {
      if (!(err instanceof RtcpPacketError)) throw err;
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    }
  }
  t.ok(decoded > 0, `${decoded} mutated datagrams still decoded`);
  t.ok(codes.size >= 4, `errors seen: ${[...codes].map(([k, v]) => `${k}=${v}`).join(' ')}`);
});

t.test('NTP timestamps (RFC 3550 §4) and the compact LSR/DLSR form', async (t) => {
  t.same(ntpFromUnixMs(0), { seconds: 2208988800, fraction: 0 }, 'Unix epoch is 2208988800 s after 1900');
  t.same(ntpFromUnixMs(1500), { seconds: 2208988801, fraction: 0x80000000 }, 'half a second is 2^31');
  const y2036 = ntpFromUnixMs(2085978496000 + 250);
  t.same(y2036, { seconds: 0, fraction: 0x40000000 }, 'era 1 starts on 2036-02-07');
  t.equal(ntpToUnixMs(y2036), 2085978496250, 'era 1 converts back');
  for (const ms of [0, 1_700_000_000_123, 1_700_000_000_999.5]) {
    t.ok(Math.abs(ntpToUnixMs(ntpFromUnixMs(ms)) - ms) < 1e-3, `${ms} round-trips within a microsecond`);
  }
  t.equal(compactNtp({ seconds: 0x1234abcd, fraction: 0x5678ffff }), 0xabcd5678, 'middle 32 bits');
  t.equal(msToCompactNtp(1000), 65536, 'one second is 65536 units');
  t.equal(msToCompactNtp(5250), 344064, 'DLSR example of §6.4.1: 5.25 s');
  t.equal(compactNtpToMs(32768), 500);
  t.equal(msToCompactNtp(-5), 0, 'negative delays clamp to 0');
});
