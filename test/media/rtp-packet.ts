import t from 'tap';
import {
  decodeRtpHeader,
  encodeRtpHeader,
  isRtp,
  payloadType,
  readSequence,
  readSsrc,
  readTimestamp,
  rtpHeaderEncodingLength,
  RtpPacketError,
  setPayloadType,
  SsrcContinuity,
  type RtpHeaderInit,
} from '../../src/media/rtp-packet.ts';
import { PortAllocationError, PortAllocator } from '../../src/media/port-allocator.ts';

function packet(h: Partial<RtpHeaderInit> & { ssrc: number; sequence: number; timestamp: number }, payload = 4): Uint8Array {
  const init: RtpHeaderInit = { marker: false, payloadType: 0, ...h };
  const p = new Uint8Array(rtpHeaderEncodingLength(init) + payload);
  encodeRtpHeader(init, p);
  p.fill(0xd5, rtpHeaderEncodingLength(init));
  return p;
}

t.test('RTP fixed header (RFC 3550 §5.1) round-trips at an offset in a larger buffer', async (t) => {
  const cases: { name: string; h: RtpHeaderInit }[] = [
    { name: 'PCMU, no marker', h: { marker: false, payloadType: 0, sequence: 1, timestamp: 160, ssrc: 0x12345678 } },
    { name: 'marker and dynamic PT', h: { marker: true, payloadType: 101, sequence: 0xffff, timestamp: 0xffffffff, ssrc: 0xffffffff } },
    { name: 'padding and two CSRCs', h: { marker: false, padding: true, payloadType: 8, sequence: 0, timestamp: 0, ssrc: 1, csrcs: [7, 0x80000000] } },
  ];
  for (const c of cases) {
    const len = rtpHeaderEncodingLength(c.h);
    const buf = new Uint8Array(len + 10).fill(0xee);
    encodeRtpHeader(c.h, buf, 5);
    t.equal(buf[4], 0xee, `${c.name}: byte before untouched`);
    t.equal(buf[5 + len], 0xee, `${c.name}: byte after untouched`);
    const d = decodeRtpHeader(buf, 5, len + 3);
    t.same(
      d,
      { padding: c.h.padding ?? false, extension: false, csrcs: c.h.csrcs ?? [], headerLength: len, ...c.h },
      `${c.name}: decoded fields`,
    );
    t.same(encodeRtpHeader(d), buf.subarray(5, 5 + len), `${c.name}: re-encoded bytes`);
    const flat = buf.subarray(5);
    t.same(
      [payloadType(flat), readSequence(flat), readTimestamp(flat), readSsrc(flat)],
      [c.h.payloadType, c.h.sequence, c.h.timestamp, c.h.ssrc],
      `${c.name}: hot-path accessors`,
    );
  }
});

t.test('header extension (RFC 3550 §5.3.1) is counted in headerLength', async (t) => {
  const p = new Uint8Array(12 + 4 + 8 + 3);
  encodeRtpHeader({ marker: false, payloadType: 0, sequence: 9, timestamp: 9, ssrc: 9 }, p);
  p[0] = p[0]! | 0x10;
  p[12 + 3] = 2; // two 32-bit words of extension data
  t.equal(decodeRtpHeader(p).headerLength, 24);
  t.equal(decodeRtpHeader(p).extension, true);
});

t.test('malformed packets are rejected with a stable code', async (t) => {
  const ok = packet({ ssrc: 1, sequence: 1, timestamp: 1 });
  const cases: { name: string; bytes: Uint8Array; code: string }[] = [
    { name: 'empty', bytes: new Uint8Array(0), code: 'RTP_TOO_SHORT' },
    { name: '11 bytes', bytes: ok.subarray(0, 11), code: 'RTP_TOO_SHORT' },
    { name: 'version 0 (e.g. STUN)', bytes: Uint8Array.from([0x00, ...ok.subarray(1)]), code: 'RTP_BAD_VERSION' },
    { name: 'version 1', bytes: Uint8Array.from([0x40, ...ok.subarray(1)]), code: 'RTP_BAD_VERSION' },
    { name: 'CSRC count beyond the packet', bytes: Uint8Array.from([0x83, ...ok.subarray(1, 16)]), code: 'RTP_TOO_SHORT' },
    { name: 'extension header missing', bytes: Uint8Array.from([0x90, ...ok.subarray(1, 14)]), code: 'RTP_TOO_SHORT' },
    { name: 'extension overruns', bytes: Uint8Array.from([0x90, ...ok.subarray(1, 12), 0, 0, 0, 5, 1, 2]), code: 'RTP_TOO_SHORT' },
  ];
  for (const c of cases) {
    t.throws(() => decodeRtpHeader(c.bytes), { code: c.code }, c.name);
    t.equal(isRtp(c.bytes), c.code === 'RTP_TOO_SHORT' && c.bytes.length >= 12, `${c.name}: isRtp`);
  }
  t.equal(isRtp(ok), true, 'a valid packet is RTP');
  const bad: { name: string; h: RtpHeaderInit }[] = [
    { name: 'PT 128', h: { marker: false, payloadType: 128, sequence: 0, timestamp: 0, ssrc: 0 } },
    { name: 'sequence 65536', h: { marker: false, payloadType: 0, sequence: 65536, timestamp: 0, ssrc: 0 } },
    { name: 'negative SSRC', h: { marker: false, payloadType: 0, sequence: 0, timestamp: 0, ssrc: -1 } },
    { name: '16 CSRCs', h: { marker: false, payloadType: 0, sequence: 0, timestamp: 0, ssrc: 0, csrcs: new Array(16).fill(1) } },
  ];
  for (const c of bad) t.throws(() => encodeRtpHeader(c.h), RtpPacketError, c.name);
});

t.test('payload type rewrite is in place and keeps the marker bit', async (t) => {
  for (const marker of [false, true]) {
    const p = packet({ ssrc: 5, sequence: 7, timestamp: 9, payloadType: 101, marker });
    const before = Uint8Array.from(p);
    setPayloadType(p, 96);
    const d = decodeRtpHeader(p);
    t.equal(d.payloadType, 96, `marker=${marker}: PT`);
    t.equal(d.marker, marker, `marker=${marker}: marker kept`);
    t.same(p.subarray(2), before.subarray(2), `marker=${marker}: other bytes untouched`);
  }
});

type Pkt = { ssrc: number; sequence: number; timestamp: number; marker?: boolean };
function run(input: Pkt[]): Pkt[] {
  const c = new SsrcContinuity();
  return input.map((i) => {
    const p = packet({ ...i, marker: i.marker ?? false });
    c.apply(p);
    const d = decodeRtpHeader(p);
    return { ssrc: d.ssrc, sequence: d.sequence, timestamp: d.timestamp, marker: d.marker };
  });
}
const A = 0xaaaa0001;
const B = 0xbbbb0002;
const C = 0xcccc0003;

t.test('one source: packets pass byte for byte (no rewriting)', async (t) => {
  const input: Pkt[] = [
    { ssrc: A, sequence: 65534, timestamp: 0xffffff60 },
    { ssrc: A, sequence: 65535, timestamp: 0 },
    { ssrc: A, sequence: 1, timestamp: 320 },
    { ssrc: A, sequence: 0, timestamp: 160 }, // reordered
    { ssrc: A, sequence: 2, timestamp: 480, marker: true },
  ];
  t.same(run(input), input.map((i) => ({ ...i, marker: i.marker ?? false })));
});

t.test('SSRC change: the receiver sees the old SSRC with sequence and timestamp continuing', async (t) => {
  const cases: { name: string; input: Pkt[]; expected: Pkt[] }[] = [
    {
      name: 'G.711 20 ms: +1 sequence, +160 timestamp, marker on the first packet of the new source',
      input: [
        { ssrc: A, sequence: 100, timestamp: 1000 },
        { ssrc: A, sequence: 101, timestamp: 1160 },
        { ssrc: B, sequence: 5000, timestamp: 90000 },
        { ssrc: B, sequence: 5001, timestamp: 90160 },
      ],
      expected: [
        { ssrc: A, sequence: 100, timestamp: 1000, marker: false },
        { ssrc: A, sequence: 101, timestamp: 1160, marker: false },
        { ssrc: A, sequence: 102, timestamp: 1320, marker: true },
        { ssrc: A, sequence: 103, timestamp: 1480, marker: false },
      ],
    },
    {
      name: 'the step is learnt from the last consecutive packets (40 ms = 320)',
      input: [
        { ssrc: A, sequence: 10, timestamp: 0 },
        { ssrc: A, sequence: 11, timestamp: 320 },
        { ssrc: B, sequence: 7, timestamp: 5 },
      ],
      expected: [
        { ssrc: A, sequence: 10, timestamp: 0, marker: false },
        { ssrc: A, sequence: 11, timestamp: 320, marker: false },
        { ssrc: A, sequence: 12, timestamp: 640, marker: true },
      ],
    },
    {
      name: 'a talkspurt start (marker) or a DTMF repeat (same timestamp) teaches no step; default 160',
      input: [
        { ssrc: A, sequence: 1, timestamp: 0 },
        { ssrc: A, sequence: 2, timestamp: 8000, marker: true },
        { ssrc: A, sequence: 3, timestamp: 8000 },
        { ssrc: B, sequence: 40000, timestamp: 3 },
      ],
      expected: [
        { ssrc: A, sequence: 1, timestamp: 0, marker: false },
        { ssrc: A, sequence: 2, timestamp: 8000, marker: true },
        { ssrc: A, sequence: 3, timestamp: 8000, marker: false },
        { ssrc: A, sequence: 4, timestamp: 8160, marker: true },
      ],
    },
    {
      name: 'sequence and timestamp wrap around',
      input: [
        { ssrc: A, sequence: 65535, timestamp: 0xffffffa0 },
        { ssrc: B, sequence: 123, timestamp: 456 },
        { ssrc: B, sequence: 124, timestamp: 616 },
      ],
      expected: [
        { ssrc: A, sequence: 65535, timestamp: 0xffffffa0, marker: false },
        { ssrc: A, sequence: 0, timestamp: 0x40, marker: true },
        { ssrc: A, sequence: 1, timestamp: 0xe0, marker: false },
      ],
    },
    {
      name: 'a second change (B to C) continues from what was last sent',
      input: [
        { ssrc: A, sequence: 1, timestamp: 160 },
        { ssrc: B, sequence: 900, timestamp: 77 },
        { ssrc: B, sequence: 901, timestamp: 237 },
        { ssrc: C, sequence: 3, timestamp: 3 },
      ],
      expected: [
        { ssrc: A, sequence: 1, timestamp: 160, marker: false },
        { ssrc: A, sequence: 2, timestamp: 320, marker: true },
        { ssrc: A, sequence: 3, timestamp: 480, marker: false },
        { ssrc: A, sequence: 4, timestamp: 640, marker: true },
      ],
    },
    {
      name: 'a reordered packet of the new source does not pull the continuation point back',
      input: [
        { ssrc: A, sequence: 1, timestamp: 160 },
        { ssrc: B, sequence: 10, timestamp: 1600 },
        { ssrc: B, sequence: 12, timestamp: 1920 },
        { ssrc: B, sequence: 11, timestamp: 1760 },
        { ssrc: C, sequence: 50, timestamp: 50 },
      ],
      expected: [
        { ssrc: A, sequence: 1, timestamp: 160, marker: false },
        { ssrc: A, sequence: 2, timestamp: 320, marker: true },
        { ssrc: A, sequence: 4, timestamp: 640, marker: false },
        { ssrc: A, sequence: 3, timestamp: 480, marker: false },
        { ssrc: A, sequence: 5, timestamp: 800, marker: true },
      ],
    },
  ];
  for (const c of cases) t.same(run(c.input), c.expected, c.name);
  const cont = new SsrcContinuity();
  cont.apply(packet({ ssrc: A, sequence: 1, timestamp: 1 }));
  t.equal(cont.isRewriting, false, 'not rewriting before a change');
  cont.apply(packet({ ssrc: B, sequence: 1, timestamp: 1 }));
  t.same([cont.isRewriting, cont.ssrc], [true, A], 'rewriting to the first SSRC after a change');
});

t.test('port allocator: even RTP ports with RTCP = +1 inside the range, round robin', async (t) => {
  const cases: { name: string; range: [number, number]; capacity: number; ports: number[] }[] = [
    { name: 'even bounds', range: [10000, 10007], capacity: 4, ports: [10000, 10002, 10004, 10006] },
    { name: 'odd min is rounded up', range: [10001, 10007], capacity: 3, ports: [10002, 10004, 10006] },
    { name: 'even max leaves its RTCP outside', range: [10000, 10006], capacity: 3, ports: [10000, 10002, 10004] },
    { name: 'one pair', range: [20000, 20001], capacity: 1, ports: [20000] },
  ];
  for (const c of cases) {
    const pa = new PortAllocator(...c.range);
    t.equal(pa.capacity, c.capacity, `${c.name}: capacity`);
    const got: number[] = [];
    for (let p = pa.take(); p !== undefined; p = pa.take()) got.push(p);
    t.same(got, c.ports, `${c.name}: every pair once, in order`);
    t.equal(pa.inUse(), c.capacity, `${c.name}: all in use`);
    t.ok(got.every((p) => p % 2 === 0 && p + 1 <= c.range[1]), `${c.name}: even, RTCP within range`);
  }
  for (const range of [
    [10001, 10001],
    [10000, 10000],
    [0, 10],
    [10, 5],
    [65534, 65536],
  ] as const) {
    t.throws(() => new PortAllocator(range[0], range[1]), RangeError, `range [${range.join(', ')}] is refused`);
  }

  const pa = new PortAllocator(30000, 30007);
  const a = pa.take();
  const b = pa.take();
  pa.release(a!);
  t.equal(pa.take(), 30004, 'after releasing the first pair the next new one comes, not the lowest');
  t.equal(pa.take(), 30006);
  t.equal(pa.take(), 30000, 'wraps round to the released pair');
  t.equal(pa.take(), undefined, 'exhausted');
  pa.release(b!);
  pa.release(b!);
  pa.release(30001);
  pa.release(40000);
  t.equal(pa.inUse(), 3, 'double, odd and foreign releases are ignored');
  t.equal(pa.take(), 30002);
});

t.test('port allocator acquire: skips pairs in use elsewhere (EADDRINUSE), bounded', async (t) => {
  const inUse = (port: number): Error => Object.assign(new Error(`bind ${port}`), { code: 'EADDRINUSE' });
  const pa = new PortAllocator(40000, 40009);
  const tried: number[] = [];
  const got = await pa.acquire(async (port) => {
    tried.push(port);
    if (port < 40004) throw inUse(port);
    return `bound ${port}`;
  });
  t.same(got, { port: 40004, value: 'bound 40004' });
  t.same(tried, [40000, 40002, 40004], 'pairs tried in order');
  t.equal(pa.inUse(), 1, 'failed pairs were given back');

  tried.length = 0;
  await t.rejects(
    pa.acquire(async (port) => {
      tried.push(port);
      throw inUse(port);
    }),
    { code: 'RTP_PORTS_IN_USE' },
    'every free pair in use elsewhere',
  );
  t.same(tried, [40006, 40008, 40000, 40002], 'each free pair tried once');
  t.equal(pa.inUse(), 1);

  await t.rejects(
    pa.acquire(async () => {
      throw Object.assign(new Error('no permission'), { code: 'EACCES' });
    }),
    { code: 'EACCES' },
    'other bind errors are passed on',
  );
  t.equal(pa.inUse(), 1, 'and the pair is given back');

  const bounded = new PortAllocator(50000, 50999, { maxAttempts: 3 });
  let calls = 0;
  await t.rejects(
    bounded.acquire(async (port) => {
      calls++;
      throw inUse(port);
    }),
    PortAllocationError,
  );
  t.equal(calls, 3, 'attempts are bounded');

  const one = new PortAllocator(60000, 60001);
  await one.acquire(async () => 1);
  await t.rejects(
    one.acquire(async () => 2),
    { code: 'RTP_PORTS_EXHAUSTED' },
  );
});
