import t from 'tap';
import {
  internetChecksum,
  LINKTYPE_RAW,
  MAX_TCP_SEGMENT_PAYLOAD,
  parseIpAddress,
  PCAP_GLOBAL_HEADER_LENGTH,
  PCAP_RECORD_HEADER_LENGTH,
  PCAP_SNAPLEN,
  PcapWriter,
  type PcapPacket,
} from '../../src/trace/pcap-writer.ts';

/** One record of a pcap byte stream, decoded independently of the writer. */
interface DecodedRecord {
  seconds: number;
  micros: number;
  inclLen: number;
  origLen: number;
  packet: Buffer;
}

function records(stream: Buffer): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  let at = 0;
  while (at < stream.length) {
    const inclLen = stream.readUInt32LE(at + 8);
    out.push({
      seconds: stream.readUInt32LE(at),
      micros: stream.readUInt32LE(at + 4),
      inclLen,
      origLen: stream.readUInt32LE(at + 12),
      packet: stream.subarray(at + 16, at + 16 + inclLen),
    });
    at += 16 + inclLen;
  }
  if (at !== stream.length) throw new Error(`records overrun the buffer: ${at} of ${stream.length} bytes`);
  return out;
}

/** Sums a segment with its pseudo-header: 0 when the stored checksum is right (RFC 1071). */
function verifyTransportChecksum(packet: Buffer): number {
  const v6 = packet[0]! >> 4 === 6;
  const headerLen = v6 ? 40 : (packet[0]! & 0x0f) * 4;
  const segment = packet.subarray(headerLen);
  const proto = v6 ? packet[6]! : packet[9]!;
  const pseudo = v6 ? Buffer.alloc(40) : Buffer.alloc(12);
  if (v6) {
    packet.copy(pseudo, 0, 8, 40);
    pseudo.writeUInt32BE(segment.length, 32);
    pseudo[39] = proto;
  } else {
    packet.copy(pseudo, 0, 12, 20);
    pseudo[9] = proto;
    pseudo.writeUInt16BE(segment.length, 10);
  }
  return internetChecksum([pseudo, segment]);
}

const SIP = Buffer.from('OPTIONS sip:100@gw SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n', 'latin1');

t.test('global header: magic a1b2c3d4, version 2.4, UTC, snaplen, LINKTYPE_RAW', async (t) => {
  const h = new PcapWriter().header();
  t.equal(h.length, PCAP_GLOBAL_HEADER_LENGTH);
  t.same([...h.subarray(0, 4)], [0xd4, 0xc3, 0xb2, 0xa1], 'microsecond magic, little-endian');
  t.equal(h.readUInt16LE(4), 2, 'version major');
  t.equal(h.readUInt16LE(6), 4, 'version minor');
  t.equal(h.readInt32LE(8), 0, 'thiszone');
  t.equal(h.readUInt32LE(12), 0, 'sigfigs');
  t.equal(h.readUInt32LE(16), PCAP_SNAPLEN, 'snaplen');
  t.equal(PCAP_SNAPLEN, 262144);
  t.equal(h.readUInt32LE(20), LINKTYPE_RAW, 'network');
  t.equal(LINKTYPE_RAW, 101);
});

t.test('UDP over IPv4: record header, IPv4 header with a correct checksum, UDP header', async (t) => {
  const w = new PcapWriter();
  const time = 1_700_000_000_123.456;
  const [r] = records(w.packet({ time, transport: 'udp', source: { address: '192.0.2.7', port: 5062 }, destination: { address: '198.51.100.1', port: 5060 }, payload: SIP }));
  t.equal(r!.seconds, 1_700_000_000);
  t.equal(r!.micros, 123_456, 'microseconds kept');
  t.equal(r!.inclLen, 20 + 8 + SIP.length);
  t.equal(r!.origLen, r!.inclLen);
  const ip = r!.packet;
  t.equal(ip[0], 0x45, 'version 4, IHL 5');
  t.equal(ip.readUInt16BE(2), ip.length, 'total length');
  t.equal(ip.readUInt16BE(6), 0x4000, "don't fragment");
  t.equal(ip[8], 64, 'TTL');
  t.equal(ip[9], 17, 'protocol UDP');
  t.same([...ip.subarray(12, 16)], [192, 0, 2, 7], 'source');
  t.same([...ip.subarray(16, 20)], [198, 51, 100, 1], 'destination');
  t.equal(internetChecksum([ip.subarray(0, 20)]), 0, 'IPv4 header checksum verifies');
  t.not(ip.readUInt16BE(10), 0, 'header checksum is set');
  t.equal(ip.readUInt16BE(20), 5062, 'source port');
  t.equal(ip.readUInt16BE(22), 5060, 'destination port');
  t.equal(ip.readUInt16BE(24), 8 + SIP.length, 'UDP length');
  t.equal(verifyTransportChecksum(ip), 0, 'UDP checksum verifies');
  t.same(ip.subarray(28), SIP, 'payload');
  const [next] = records(w.packet({ time, transport: 'udp', source: { address: '192.0.2.7', port: 1 }, destination: { address: '192.0.2.8', port: 2 }, payload: SIP }));
  t.equal(next!.packet.readUInt16BE(4), ip.readUInt16BE(4) + 1, 'IP identification increments');
});

t.test('UDP over IPv6: 40-byte header, payload length, next header, mandatory checksum', async (t) => {
  const [r] = records(new PcapWriter().packet({ time: 0, transport: 'udp', source: { address: '2001:db8::1', port: 5060 }, destination: { address: 'fe80::2%eth0', port: 5070 }, payload: SIP }));
  const ip = r!.packet;
  t.equal(ip[0]! >> 4, 6, 'version 6');
  t.equal(ip.readUInt16BE(4), 8 + SIP.length, 'payload length');
  t.equal(ip[6], 17, 'next header UDP');
  t.equal(ip[7], 64, 'hop limit');
  t.same([...ip.subarray(8, 24)], [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1], 'source');
  t.same([...ip.subarray(24, 40)], [0xfe, 0x80, ...new Array(13).fill(0), 2], 'destination, zone dropped');
  t.not(ip.readUInt16BE(46), 0, 'UDP checksum present (RFC 8200 §8.1)');
  t.equal(verifyTransportChecksum(ip), 0, 'UDP checksum verifies');
});

t.test('TCP: per-connection sequence numbers in both directions, checksums, PSH|ACK', async (t) => {
  const w = new PcapWriter();
  const gw = { address: '127.0.0.1', port: 5060 };
  const phone = { address: '127.0.0.1', port: 40000 };
  const other = { address: '127.0.0.1', port: 40001 };
  const send = (source: typeof gw, destination: typeof gw, n: number, transport: PcapPacket['transport'] = 'tcp') =>
    records(w.packet({ time: 0, transport, source, destination, payload: Buffer.alloc(n, 0x41) }))[0]!.packet;
  const seqAck = (p: Buffer) => [p.readUInt32BE(24), p.readUInt32BE(28)];
  const a = send(phone, gw, 100);
  const b = send(gw, phone, 50);
  const c = send(phone, gw, 10);
  const d = send(other, gw, 7);
  const e = send(phone, gw, 5, 'tls');
  t.same(seqAck(a), [1, 1], 'first segment');
  t.same(seqAck(b), [1, 101], 'the answer acknowledges the 100 bytes');
  t.same(seqAck(c), [101, 51], 'the next segment follows on');
  t.same(seqAck(d), [1, 1], 'another connection has its own numbers');
  t.same(seqAck(e), [1, 1], 'a TLS flow is separate from a TCP flow on the same ports');
  for (const p of [a, b, c, d, e]) {
    t.equal(p[9], 6, 'protocol TCP');
    t.equal(p[32], 0x50, 'data offset 5');
    t.equal(p[33], 0x18, 'PSH|ACK');
    t.equal(verifyTransportChecksum(p), 0, 'TCP checksum verifies');
    t.equal(internetChecksum([p.subarray(0, 20)]), 0, 'IPv4 header checksum verifies');
  }
});

t.test('a TCP message larger than an IP packet is split into consecutive segments', async (t) => {
  const payload = Buffer.alloc(MAX_TCP_SEGMENT_PAYLOAD * 2 + 10);
  for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
  const rs = records(new PcapWriter().packet({ time: 0, transport: 'tcp', source: { address: '::1', port: 1 }, destination: { address: '::1', port: 2 }, payload }));
  t.equal(rs.length, 3, 'three segments');
  t.same(rs.map((r) => r.packet.readUInt32BE(44)), [1, 1 + MAX_TCP_SEGMENT_PAYLOAD, 1 + 2 * MAX_TCP_SEGMENT_PAYLOAD], 'sequence numbers');
  t.same(Buffer.concat(rs.map((r) => r.packet.subarray(60))), payload, 'the segments carry the message in order');
  for (const r of rs) t.ok(r.inclLen <= PCAP_SNAPLEN, 'within the snaplen');
});

t.test('an IPv4 end facing an IPv6 end is written IPv4-mapped; a name becomes the unspecified address', async (t) => {
  const w = new PcapWriter();
  const [mixed] = records(w.packet({ time: 0, transport: 'udp', source: { address: '127.0.0.1', port: 1 }, destination: { address: '::1', port: 2 }, payload: SIP }));
  t.equal(mixed!.packet[0]! >> 4, 6, 'IPv6');
  t.same([...mixed!.packet.subarray(8, 24)], [...new Array(10).fill(0), 0xff, 0xff, 127, 0, 0, 1]);
  const [named] = records(w.packet({ time: 0, transport: 'udp', source: { address: 'pbx.example', port: 1 }, destination: { address: '10.0.0.1', port: 2 }, payload: SIP }));
  t.same([...named!.packet.subarray(12, 16)], [0, 0, 0, 0]);
});

t.test('event(): in goes remote → local, out goes local → remote', async (t) => {
  const w = new PcapWriter();
  const local = { transport: 'udp' as const, address: '10.0.0.1', port: 5060 };
  const remote = { transport: 'udp' as const, address: '10.0.0.2', port: 5070 };
  for (const [direction, src, dst] of [['in', 5070, 5060], ['out', 5060, 5070]] as const) {
    const [r] = records(w.event({ time: 0, direction, transport: 'udp', local, remote, bytes: SIP }));
    t.same([r!.packet.readUInt16BE(20), r!.packet.readUInt16BE(22)], [src, dst], direction);
  }
});

t.test('parseIpAddress', async (t) => {
  const cases: [string, number[] | undefined][] = [
    ['127.0.0.1', [127, 0, 0, 1]],
    ['255.255.255.255', [255, 255, 255, 255]],
    ['256.0.0.1', undefined],
    ['1.2.3', undefined],
    ['::', new Array(16).fill(0)],
    ['::1', [...new Array(15).fill(0), 1]],
    ['2001:db8::', [0x20, 0x01, 0x0d, 0xb8, ...new Array(12).fill(0)]],
    ['1:2:3:4:5:6:7:8', [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]],
    ['::ffff:192.0.2.1', [...new Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 1]],
    ['FE80::A%wlan0', [0xfe, 0x80, ...new Array(13).fill(0), 0x0a]],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['1::2::3', undefined],
    ['1:2:3:4:5:6:7::8', undefined],
    ['12345::', undefined],
    ['example.com', undefined],
    ['', undefined],
  ];
  for (const [text, bytes] of cases) {
    const got = parseIpAddress(text);
    t.same(got ? [...got] : undefined, bytes, JSON.stringify(text));
  }
});

t.test('internetChecksum: RFC 1071 §3 example and odd lengths', async (t) => {
  // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2, so the checksum is ~ddf2 = 220d.
  t.equal(internetChecksum([Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])]), 0x220d);
  t.equal(internetChecksum([Uint8Array.from([0x00, 0x01, 0xf2]), Uint8Array.from([0x03, 0xf4, 0xf5, 0xf6, 0xf7])]), 0x220d, 'split at an odd offset');
  t.equal(internetChecksum([Uint8Array.from([0x01])]), ~0x0100 & 0xffff, 'odd byte padded');
});

t.test('a stream cut after any returned buffer is a valid file', async (t) => {
  const w = new PcapWriter();
  const chunks = [w.header()];
  for (let i = 0; i < 5; i++) chunks.push(w.packet({ time: i, transport: i % 2 ? 'tcp' : 'udp', source: { address: '::1', port: 1 }, destination: { address: '::1', port: 2 }, payload: SIP }));
  const all = Buffer.concat(chunks);
  t.equal(records(all.subarray(PCAP_GLOBAL_HEADER_LENGTH)).length, 5);
  t.equal(chunks[1]!.length, PCAP_RECORD_HEADER_LENGTH + 40 + 8 + SIP.length);
});
