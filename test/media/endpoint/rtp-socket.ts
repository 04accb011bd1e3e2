/**
 * The device's RTP socket with SRTP keyed, on loopback against a fake SRTP peer (a second
 * SrtpSession holding the mirrored keys): authentic SRTP/SRTCP arrives decrypted, what the device
 * sends the peer decrypts; tampered and replayed packets are dropped, counted by code and never
 * latched onto (RFC 3711 §3.3). Also the call's per-direction contexts across re-keys.
 */
import dgram from 'node:dgram';
import t from 'tap';
import { EndpointSrtp } from '../../../src/media/endpoint/endpoint-srtp.ts';
import { RtpSocket } from '../../../src/media/endpoint/rtp-socket.ts';
import { PortAllocator } from '../../../src/media/port-allocator.ts';
import { generateSdesCrypto } from '../../../src/media/srtp/sdes.ts';
import { SrtpSession } from '../../../src/media/srtp/srtp-session.ts';
import { MemoryLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';

const BASE = 43000 + (process.pid % 300) * 20;
const ours = generateSdesCrypto(new SeededRandom(1), 1, 'AES_CM_128_HMAC_SHA1_80');
const theirs = generateSdesCrypto(new SeededRandom(2), 1, 'AES_CM_128_HMAC_SHA1_80');

/** RTP (RFC 3550 §5.1): version 2, PT 0, the sequence given, a 160-octet payload of `fill`. */
function rtp(seq: number, ssrc: number, fill: number): Buffer {
  const p = Buffer.alloc(12 + 160, fill);
  p[0] = 0x80;
  p[1] = 0;
  p.writeUInt16BE(seq & 0xffff, 2);
  p.writeUInt32BE((seq * 160) >>> 0, 4);
  p.writeUInt32BE(ssrc, 8);
  return p;
}

/** An empty RTCP receiver report (RFC 3550 §6.4.2: RC 0, length 1). */
function rr(ssrc: number): Buffer {
  const p = Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 0]);
  p.writeUInt32BE(ssrc, 4);
  return p;
}

async function udp(port = 0): Promise<dgram.Socket & { inbox: Buffer[] }> {
  const s = dgram.createSocket('udp4') as dgram.Socket & { inbox: Buffer[] };
  s.inbox = [];
  s.on('message', (m) => s.inbox.push(m));
  await new Promise<void>((resolve) => s.bind(port, '127.0.0.1', resolve));
  return s;
}

const send = (s: dgram.Socket, p: Uint8Array, port: number): Promise<void> => new Promise((resolve, reject) => s.send(p, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
const settle = (ms = 60): Promise<void> => new Promise((r) => setTimeout(r, ms));

function ok(r: ReturnType<SrtpSession['protectRtp']>): Buffer {
  if (!r.ok) throw new Error(`${r.code}: ${r.reason}`);
  return r.packet;
}

t.test('SRTP on the device socket against a fake peer', async (t) => {
  const log = new MemoryLogger();
  const socket = await RtpSocket.open(new PortAllocator(BASE, BASE + 9), '127.0.0.1', log);
  t.teardown(() => socket.close());
  // The peer's RTP and RTCP on an even/odd pair: a latched RTCP reply goes to its RTP port + 1.
  const peer = await udp(BASE + 10);
  const peerRtcp = await udp(BASE + 11);
  const attacker = await udp();
  t.teardown(() => [peer, peerRtcp, attacker].forEach((s) => s.close()));
  const fake = new SrtpSession({ local: theirs, remote: ours });
  const rtpIn: Buffer[] = [];
  const rtcpIn: Buffer[] = [];
  socket.listen({ rtp: (p) => rtpIn.push(p), rtcp: (p) => rtcpIn.push(p) });
  socket.setSrtp(new EndpointSrtp({ local: ours, remote: theirs }));
  t.ok(socket.secure, 'keyed');
  // The SDP target is a port nobody reads: replies reach the peer only through latching.
  socket.setTarget({ address: '127.0.0.1', port: attacker.address().port, rtcpPort: peerRtcp.address().port });

  const plain = [rtp(100, 0x1234, 0x11), rtp(101, 0x1234, 0x22), rtp(102, 0x1234, 0x33)];
  const wire = plain.map((p) => ok(fake.protectRtp(p)));
  t.ok(wire.every((w, i) => w.length === plain[i]!.length + 10 && !w.subarray(12, 172).equals(plain[i]!.subarray(12))), 'the peer sends encrypted payloads with an 80-bit tag');

  // A forged packet from another address before anything authentic: dropped, no latch.
  const forged = Buffer.from(wire[0]!);
  forged[40]! ^= 0x01;
  await send(attacker, forged, socket.port);
  await settle();
  t.same(rtpIn, [], 'the bit-flipped packet is not delivered');
  socket.sendRtp(rtp(1, 0x9999, 0x44));
  await settle();
  t.equal(attacker.inbox.length, 1, 'replies still go to the SDP address (the forger did not latch)');
  t.equal(peer.inbox.length, 0, 'nothing to the peer yet');

  for (const w of wire) await send(peer, w, socket.port);
  await settle();
  t.same(rtpIn, plain, 'authentic SRTP arrives decrypted, in order');
  socket.sendRtp(rtp(2, 0x9999, 0x55));
  await settle();
  t.equal(peer.inbox.length, 1, 'the authentic peer latched: our RTP goes to it');
  const back = fake.unprotectRtp(peer.inbox[0]!);
  t.ok(back.ok && back.packet.equals(rtp(2, 0x9999, 0x55)), 'what the device sends, the peer decrypts');

  const drops: { name: string; packet: () => Buffer; code: string }[] = [
    { name: 'a replayed packet', packet: () => wire[1]!, code: 'SRTP_REPLAYED' },
    {
      name: 'a tampered tag',
      packet: () => {
        const p = ok(fake.protectRtp(rtp(103, 0x1234, 0x66)));
        p[p.length - 1]! ^= 0x80;
        return p;
      },
      code: 'SRTP_AUTH_FAILED',
    },
    { name: 'a plain RTP packet', packet: () => rtp(104, 0x1234, 0x77), code: 'SRTP_AUTH_FAILED' },
    { name: 'a runt', packet: () => Buffer.from([0x80, 0, 0, 1]), code: 'SRTP_TOO_SHORT' },
  ];
  for (const d of drops) {
    const before = socket.srtpDrops[d.code as keyof typeof socket.srtpDrops] ?? 0;
    await send(attacker, d.packet(), socket.port);
    await settle();
    t.equal(socket.srtpDrops[d.code as keyof typeof socket.srtpDrops], before + 1, `${d.name}: dropped and counted as ${d.code}`);
    t.equal(rtpIn.length, 3, `${d.name}: not delivered`);
  }
  t.same(socket.srtpDrops, { SRTP_AUTH_FAILED: 3, SRTP_REPLAYED: 1, SRTP_TOO_SHORT: 1 }, 'drops by code');
  t.equal(socket.srtpDropped, 5, 'drops in all');
  socket.sendRtp(rtp(3, 0x9999, 0x88));
  await settle();
  t.equal(peer.inbox.length, 2, 'dropped packets from another address did not move the latch');
  const dropLines = log.records.filter((r) => r.msg === 'srtp drop');
  t.same(dropLines.map((r) => r.fields.count), [1, 1, 2, 1], 'debug lines at the 1st, 2nd, 4th ... drop of a code');
  t.notOk(JSON.stringify(log.records).includes('inline:'), 'no key material in the log');

  // SRTCP both ways (RFC 3711 §3.4).
  await send(peerRtcp, ok(fake.protectRtcp(rr(0x1234))), socket.port + 1);
  await settle();
  t.same(rtcpIn, [rr(0x1234)], 'SRTCP arrives as RTCP');
  const rtcpReplay = ok(fake.protectRtcp(rr(0x1234)));
  await send(peerRtcp, rtcpReplay, socket.port + 1);
  await send(peerRtcp, rtcpReplay, socket.port + 1);
  await settle();
  t.equal(rtcpIn.length, 2, 'a replayed SRTCP packet is dropped');
  t.equal(socket.srtpDrops.SRTP_REPLAYED, 2, 'and counted');
  socket.sendRtcp(rr(0x9999));
  await settle();
  t.equal(peerRtcp.inbox.length, 1, "our RTCP went to the latched address's RTCP port");
  const rb = fake.unprotectRtcp(peerRtcp.inbox[0]!);
  t.ok(rb.ok && rb.packet.equals(rr(0x9999)), 'our RTCP reaches the peer as SRTCP it can read');

  socket.setSrtp(undefined);
  t.notOk(socket.secure, 'back to plain RTP');
  await send(peer, rtp(200, 0x1234, 0x99), socket.port);
  await settle();
  t.same(rtpIn.at(-1), rtp(200, 0x1234, 0x99), 'plain RTP passes untouched once unkeyed');
});

t.test('the call keeps a direction context while its key stays (RFC 3711 §3.3.1)', async (t) => {
  const srtp = new EndpointSrtp({ local: ours, remote: theirs });
  const peer = new SrtpSession({ local: theirs, remote: ours });
  const first = ok(peer.protectRtp(rtp(1, 7, 1)));
  t.ok(srtp.unprotectRtp(first).ok, 'the first packet authenticates');
  const theirsNew = generateSdesCrypto(new SeededRandom(3), 2, 'AES_CM_128_HMAC_SHA1_32');
  const cases: { name: string; keys: { local: typeof ours; remote: typeof ours }; rekeyed: { send: boolean; receive: boolean }; replay: string }[] = [
    { name: 'same keys (session refresh)', keys: { local: ours, remote: theirs }, rekeyed: { send: false, receive: false }, replay: 'SRTP_REPLAYED' },
    { name: 'the peer re-keys', keys: { local: ours, remote: theirsNew }, rekeyed: { send: false, receive: true }, replay: 'SRTP_AUTH_FAILED' },
  ];
  for (const c of cases) {
    t.same(srtp.update(c.keys), c.rekeyed, `${c.name}: directions re-keyed`);
    const r = srtp.unprotectRtp(first);
    t.equal(r.ok ? 'ok' : r.code, c.replay, `${c.name}: the first packet again → ${c.replay}`);
  }
  t.equal(srtp.suite, 'AES_CM_128_HMAC_SHA1_80', 'we still send with our suite');
  const newPeer = new SrtpSession({ local: theirsNew, remote: ours });
  t.ok(srtp.unprotectRtp(ok(newPeer.protectRtp(rtp(2, 7, 2)))).ok, "the peer's new key (_32) authenticates");
  // Our sending context went on: the peer's receiver (never re-keyed) takes the next index.
  t.ok(peer.unprotectRtp(ok(srtp.protectRtp(rtp(5, 9, 3)))).ok && newPeer.unprotectRtp(ok(srtp.protectRtp(rtp(6, 9, 3)))).ok, 'our packets decrypt with our unchanged key');
  t.same(srtp.totals, { rtpProtected: 2, rtpUnprotected: 2, rtcpProtected: 0, rtcpUnprotected: 0 }, 'totals across the re-key');
});
