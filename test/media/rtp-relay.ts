import t from 'tap';
import dgram from 'node:dgram';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { PortAllocator } from '../../src/media/port-allocator.ts';
import { decodeRtpHeader, encodeRtpHeader, type RtpHeader } from '../../src/media/rtp-packet.ts';
import { RtpRelayFactory, type MediaRelay } from '../../src/media/rtp-relay.ts';
import type { AudioCodec } from '../../src/media/codec/codec.ts';
import { pcma } from '../../src/media/codec/g711.ts';
import { g722 } from '../../src/media/codec/g722.ts';
import { CodecRegistry } from '../../src/media/codec/registry.ts';
import { relayedMediaFactory } from '../../src/media/media-session.ts';
import { loadSpeexResampler } from '../../src/media/resample/speex-resampler.ts';
import { parseSdp } from '../../src/media/sdp.ts';
import type { PacketTranscoder } from '../../src/media/transcoder.ts';
import { SeededRandom, type Random } from '../../src/runtime/random.ts';
import { compactNtp, decodeRtcp, encodeRtcp, msToCompactNtp, ntpToUnixMs } from '../../src/media/rtcp/rtcp-packet.ts';
import { RtpSender } from '../../src/media/rtp/rtp-sender.ts';
import { sine } from '../helpers/fake-codecs.ts';
import { dominantFrequency } from '../helpers/wav.ts';

const HOST = '127.0.0.1';
// A range per test process, so parallel test runs rarely meet (and EADDRINUSE is skipped anyway).
const BASE = 42000 + (process.pid % 400) * 40;
const RELAY_RANGE: [number, number] = [BASE, BASE + 19];
const PHONE_PORTS = new PortAllocator(BASE + 20, BASE + 39);

interface Datagram {
  msg: Buffer;
  port: number;
}

/** A UDP socket that queues what it receives; `next()` waits up to 2 s for the next datagram. */
class Endpoint {
  readonly queue: Datagram[] = [];
  private waiter: ((d: Datagram) => void) | undefined;
  constructor(readonly socket: dgram.Socket) {
    socket.on('message', (msg, rinfo) => {
      const d = { msg, port: rinfo.port };
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(d);
      } else this.queue.push(d);
    });
  }
  get port(): number {
    return this.socket.address().port;
  }
  send(msg: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(msg, port, HOST, (err) => (err ? reject(err) : resolve())));
  }
  next(): Promise<Datagram> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no datagram within 2 s')), 2000);
      this.waiter = (d) => {
        clearTimeout(timer);
        resolve(d);
      };
    });
  }
}

function bind(port = 0): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', (err) => {
      s.close();
      reject(err);
    });
    s.bind({ address: HOST, port, exclusive: true }, () => resolve(s));
  });
}

/** A phone with an RTP socket on an even port and its RTCP socket on the next one. */
class Phone {
  constructor(
    readonly rtp: Endpoint,
    readonly rtcp: Endpoint,
  ) {}
  static async open(tap: { teardown(fn: () => void): void }): Promise<Phone> {
    const { port, value } = await PHONE_PORTS.acquire(async (p) => {
      const rtp = await bind(p);
      try {
        return { rtp, rtcp: await bind(p + 1) };
      } catch (err) {
        rtp.close();
        throw err;
      }
    });
    tap.teardown(() => {
      value.rtp.close();
      value.rtcp.close();
      PHONE_PORTS.release(port);
    });
    return new Phone(new Endpoint(value.rtp), new Endpoint(value.rtcp));
  }
  /** What to put in setRemote: the SDP of this phone. */
  get sdp(): { address: string; port: number } {
    return { address: HOST, port: this.rtp.port };
  }
}

async function endpoint(tap: { teardown(fn: () => void): void }): Promise<Endpoint> {
  const s = await bind();
  tap.teardown(() => s.close());
  return new Endpoint(s);
}

function rtp(h: Partial<RtpHeader> & { sequence: number }, payload = 'voice'): Buffer {
  const header = encodeRtpHeader({ marker: false, payloadType: 0, timestamp: h.sequence * 160, ssrc: 0x1111, ...h });
  return Buffer.concat([header, Buffer.from(payload)]);
}

function rtcp(ssrc: number): Buffer {
  // An empty receiver report (RFC 3550 §6.4.2): V=2, RC=0, PT=201, length=1.
  const b = Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 0]);
  b.writeUInt32BE(ssrc, 4);
  return b;
}

interface Setup {
  relay: MediaRelay;
  factory: RtpRelayFactory;
  clock: ManualClock;
  logger: MemoryLogger;
  a: Phone;
  b: Phone;
}

/** Waits (a few event-loop turns at most 2 s) until the relay has taken in `n` datagrams on `leg`. */
async function received(relay: MediaRelay, leg: 'a' | 'b', n: number): Promise<void> {
  const until = Date.now() + 2000;
  while (relay.stats(leg).received < n) {
    if (Date.now() > until) throw new Error(`leg ${leg} received ${relay.stats(leg).received} of ${n} datagrams`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

async function setup(tap: { teardown(fn: () => void): void }, remotes = true): Promise<Setup> {
  const clock = new ManualClock(1000);
  const logger = new MemoryLogger();
  const factory = new RtpRelayFactory({ bind: HOST, ports: RELAY_RANGE, clock, logger });
  const relay = await factory.open();
  tap.teardown(() => factory.closeAll());
  const a = await Phone.open(tap);
  const b = await Phone.open(tap);
  if (remotes) {
    relay.setRemote('a', a.sdp);
    relay.setRemote('b', b.sdp);
  }
  return { relay, factory, clock, logger, a, b };
}

t.test('RTP and RTCP (on port + 1) are relayed both ways from the leg ports', async (t) => {
  const { relay, a, b } = await setup(t);
  const pa = relay.localPort('a');
  const pb = relay.localPort('b');
  t.ok(pa % 2 === 0 && pb % 2 === 0 && pa !== pb, 'even, distinct RTP ports');

  const out = rtp({ sequence: 1 });
  await a.rtp.send(out, pa);
  let got = await b.rtp.next();
  t.same(got.msg, out, 'a → b RTP unchanged');
  t.equal(got.port, pb, 'sent from leg b port (symmetric RTP)');

  const back = rtp({ sequence: 77, ssrc: 0x2222 }, 'reply');
  await b.rtp.send(back, pb);
  got = await a.rtp.next();
  t.same(got.msg, back, 'b → a RTP unchanged');
  t.equal(got.port, pa);

  await a.rtcp.send(rtcp(0x1111), pa + 1);
  got = await b.rtcp.next();
  t.same(got.msg, rtcp(0x1111), 'a → b RTCP to the peer RTP port + 1');
  t.equal(got.port, pb + 1, 'from leg b RTCP port');
  await b.rtcp.send(rtcp(0x2222), pb + 1);
  t.same((await a.rtcp.next()).msg, rtcp(0x2222), 'b → a RTCP');

  t.same(relay.stats('a'), { received: 2, forwarded: 2, dropped: 0, consumed: 0 });
  t.same(relay.stats('b'), { received: 2, forwarded: 2, dropped: 0, consumed: 0 });
});

t.test('a=rtcp port from the SDP is used until RTCP latches', async (t) => {
  const { relay, a, b } = await setup(t);
  const other = await endpoint(t);
  relay.setRemote('b', { ...b.sdp, rtcpPort: other.port });
  await a.rtcp.send(rtcp(1), relay.localPort('a') + 1);
  t.same((await other.next()).msg, rtcp(1));
});

t.test('symmetric RTP: a leg latches to the first source even when its SDP said another port', async (t) => {
  const { relay, a, b } = await setup(t);
  const nated = await endpoint(t); // the port the NAT maps b's media to
  await a.rtp.send(rtp({ sequence: 1 }), relay.localPort('a'));
  t.equal((await b.rtp.next()).msg.readUInt16BE(2), 1, 'before latching: to the SDP port');

  await nated.send(rtp({ sequence: 500, ssrc: 0x2222 }), relay.localPort('b'));
  t.equal((await a.rtp.next()).msg.readUInt16BE(2), 500, 'the NATed source is relayed');
  await a.rtp.send(rtp({ sequence: 2 }), relay.localPort('a'));
  t.equal((await nated.next()).msg.readUInt16BE(2), 2, 'after latching: to the source, not the SDP port');
  t.equal(b.rtp.queue.length, 0, 'nothing more to the SDP port');

  await nated.socket.send(rtcp(7), relay.localPort('b') + 1, HOST);
  t.same((await a.rtcp.next()).msg, rtcp(7), 'RTCP latches separately');
  await a.rtcp.send(rtcp(8), relay.localPort('a') + 1);
  t.same((await nated.next()).msg, rtcp(8), 'RTCP back to its latched source');
});

t.test('once latched, packets from any other source are dropped and counted', async (t) => {
  const { relay, a, b } = await setup(t);
  const intruder = await endpoint(t);
  await a.rtp.send(rtp({ sequence: 1 }), relay.localPort('a'));
  await a.rtcp.send(rtcp(0x1111), relay.localPort('a') + 1);
  await b.rtp.next();
  await b.rtcp.next();
  await intruder.send(rtp({ sequence: 666, ssrc: 0x6666 }), relay.localPort('a'));
  await intruder.send(rtcp(0x6666), relay.localPort('a') + 1);
  await a.rtcp.send(rtcp(0x1111), relay.localPort('a') + 1);
  await a.rtp.send(rtp({ sequence: 2 }), relay.localPort('a'));
  t.same((await b.rtcp.next()).msg, rtcp(0x1111), 'the latched RTCP source goes through');
  t.equal((await b.rtp.next()).msg.readUInt16BE(2), 2, 'the next packet from the latched source is relayed');
  t.equal(b.rtp.queue.length + b.rtcp.queue.length, 0, 'the intruder packets were not');
  t.same(relay.stats('a'), { received: 6, forwarded: 4, dropped: 2, consumed: 0 });
});

t.test('malformed packets and packets with nowhere to go are dropped and counted', async (t) => {
  const { relay, a, b } = await setup(t, false);
  const pa = relay.localPort('a');
  await a.rtp.send(Buffer.from('short'), pa);
  await a.rtp.send(Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6]), pa); // STUN-like, V=0
  await a.rtp.send(rtp({ sequence: 1 }), pa); // latches, but leg b has no SDP peer and has not sent
  await received(relay, 'a', 3);
  relay.setRemote('b', b.sdp);
  await a.rtp.send(rtp({ sequence: 2 }), pa);
  t.equal((await b.rtp.next()).msg.readUInt16BE(2), 2, 'forwarded once b has an address');
  await a.rtcp.send(Buffer.from([0x80, 201, 0]), pa + 1);
  await a.rtcp.send(rtcp(1), pa + 1);
  t.same((await b.rtcp.next()).msg, rtcp(1), 'a 3-byte RTCP packet is dropped, a valid one relayed');
  t.same(relay.stats('a'), { received: 6, forwarded: 2, dropped: 4, consumed: 0 });
  t.same(relay.stats('b'), { received: 0, forwarded: 0, dropped: 0, consumed: 0 });

  relay.setRemote('b', { address: '0.0.0.0', port: b.rtp.port });
  await a.rtp.send(rtp({ sequence: 3 }), pa);
  await received(relay, 'a', 7);
  relay.setRemote('b', { address: HOST, port: 0 });
  await a.rtp.send(rtp({ sequence: 4 }), pa);
  await received(relay, 'a', 8);
  relay.setRemote('b', b.sdp);
  await a.rtp.send(rtp({ sequence: 5 }), pa);
  t.equal((await b.rtp.next()).msg.readUInt16BE(2), 5, 'hold address 0.0.0.0 and port 0 receive nothing');
  t.same(relay.stats('a'), { received: 9, forwarded: 3, dropped: 6, consumed: 0 });
});

t.test('unusable peers: no sending, a warning; send failures are logged once and the call goes on', async (t) => {
  const { relay, logger, a, b } = await setup(t);
  const pa = relay.localPort('a');
  const cases: { name: string; address: string; warning: string }[] = [
    { name: 'IPv6 peer of an IPv4 relay', address: '::1', warning: 'relay peer unreachable from the bind address family' },
    { name: 'a host name', address: 'phone.example.com', warning: 'relay peer address is not an IP address' },
  ];
  let n = 0;
  for (const c of cases) {
    relay.setRemote('b', { address: c.address, port: 5004 });
    await a.rtp.send(rtp({ sequence: ++n }), pa);
    await received(relay, 'a', n);
    t.ok(logger.records.some((r) => r.level === 'warn' && r.msg === c.warning && r.fields.address === c.address), `${c.name}: warned`);
  }
  t.same(relay.stats('a'), { received: 2, forwarded: 0, dropped: 2, consumed: 0 }, 'nothing sent');

  relay.setRemote('b', { address: '255.255.255.255', port: 5004 }); // broadcast is refused by a socket without SO_BROADCAST
  await a.rtp.send(rtp({ sequence: 3 }), pa);
  await a.rtp.send(rtp({ sequence: 4 }), pa);
  await received(relay, 'a', 4);
  const until = Date.now() + 2000;
  while (!logger.records.some((r) => r.msg.startsWith('relay socket error')) && Date.now() < until) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  t.equal(logger.records.filter((r) => r.msg.startsWith('relay socket error')).length, 1, 'the failure is logged once');
  relay.setRemote('b', b.sdp);
  await a.rtp.send(rtp({ sequence: 5 }), pa);
  t.equal((await b.rtp.next()).msg.readUInt16BE(2), 5, 'the relay still works');
  relay.close();
  t.ok(logger.records.some((r) => r.msg === 'relay closed' && typeof r.fields.socketErrors === 'number' && r.fields.socketErrors >= 1), 'errors counted');
});

t.test('the payload-type map applies to packets from its leg, keeping the marker bit', async (t) => {
  const { relay, a, b } = await setup(t);
  relay.setPayloadMap('a', new Map([[101, 96], [0, 0]]));
  const pa = relay.localPort('a');
  const cases: { name: string; pt: number; marker: boolean; expected: number }[] = [
    { name: 'mapped, marker set', pt: 101, marker: true, expected: 96 },
    { name: 'mapped, marker clear', pt: 101, marker: false, expected: 96 },
    { name: 'unmapped passes', pt: 8, marker: true, expected: 8 },
    { name: 'identity entry', pt: 0, marker: false, expected: 0 },
  ];
  let seq = 0;
  for (const c of cases) {
    const sent = rtp({ sequence: ++seq, payloadType: c.pt, marker: c.marker });
    await a.rtp.send(sent, pa);
    const got = (await b.rtp.next()).msg;
    const h = decodeRtpHeader(got);
    t.same([h.payloadType, h.marker], [c.expected, c.marker], c.name);
    t.same(got.subarray(2), sent.subarray(2), `${c.name}: rest of the packet untouched`);
  }
  await b.rtp.send(rtp({ sequence: 9, payloadType: 101 }), relay.localPort('b'));
  t.equal(decodeRtpHeader((await a.rtp.next()).msg).payloadType, 101, 'the other direction is not mapped');
  t.throws(() => relay.setPayloadMap('b', new Map([[1, 128]])), RangeError, 'out-of-range PT refused');
  relay.setPayloadMap('a', new Map());
  await a.rtp.send(rtp({ sequence: 10, payloadType: 101 }), pa);
  t.equal(decodeRtpHeader((await b.rtp.next()).msg).payloadType, 101, 'an empty map clears the mapping');
});

t.test('echo mode reflects RTP and RTCP to the sending leg, unmapped', async (t) => {
  const { relay, a, b } = await setup(t);
  relay.setEcho(true);
  relay.setPayloadMap('a', new Map([[0, 8]]));
  const pa = relay.localPort('a');
  const sent = rtp({ sequence: 42 });
  await a.rtp.send(sent, pa);
  const got = await a.rtp.next();
  t.same(got.msg, sent, 'the caller hears its own packet, PT unchanged');
  t.equal(got.port, pa, 'from the port it sent to');
  await a.rtcp.send(rtcp(5), pa + 1);
  t.same((await a.rtcp.next()).msg, rtcp(5), 'RTCP reflected');
  t.equal(b.rtp.queue.length, 0, 'the other leg gets nothing');
  t.same(relay.stats('a'), { received: 2, forwarded: 2, dropped: 0, consumed: 0 });
});

t.test('transfer: setRemote to a new address resets latching; a new SSRC continues the stream', async (t) => {
  const { relay, a, b } = await setup(t);
  const pa = relay.localPort('a');
  const pb = relay.localPort('b');
  await b.rtp.send(rtp({ sequence: 100, timestamp: 16000, ssrc: 0xb1 }), pb);
  await b.rtp.send(rtp({ sequence: 101, timestamp: 16160, ssrc: 0xb1 }), pb);
  await a.rtp.next();
  await a.rtp.next();

  const c = await Phone.open(t); // the transfer target
  await c.rtp.send(rtp({ sequence: 9000, ssrc: 0xc1 }), pb);
  await b.rtp.send(rtp({ sequence: 102, timestamp: 16320, ssrc: 0xb1 }), pb);
  t.equal((await a.rtp.next()).msg.readUInt16BE(2), 102, 'before setRemote the new phone is an intruder');
  relay.setRemote('b', b.sdp);
  await c.rtp.send(rtp({ sequence: 9001, ssrc: 0xc1 }), pb);
  await b.rtp.send(rtp({ sequence: 103, timestamp: 16480, ssrc: 0xb1 }), pb);
  t.equal((await a.rtp.next()).msg.readUInt16BE(2), 103, 'the same SDP address keeps the latch');
  t.equal(relay.stats('b').dropped, 2);

  relay.setRemote('b', c.sdp);
  await a.rtp.send(rtp({ sequence: 1 }), pa);
  t.equal((await c.rtp.next()).msg.readUInt16BE(2), 1, 'a now reaches the new phone');
  await c.rtp.send(rtp({ sequence: 30000, timestamp: 5, ssrc: 0xc1 }), pb);
  await c.rtp.send(rtp({ sequence: 30001, timestamp: 165, ssrc: 0xc1 }), pb);
  await b.rtp.send(rtp({ sequence: 104, timestamp: 16640, ssrc: 0xb1 }), pb);
  await c.rtp.send(rtp({ sequence: 30002, timestamp: 325, ssrc: 0xc1 }), pb);
  const first = decodeRtpHeader((await a.rtp.next()).msg);
  const second = decodeRtpHeader((await a.rtp.next()).msg);
  const third = decodeRtpHeader((await a.rtp.next()).msg);
  t.same(
    [first.ssrc, first.sequence, first.timestamp, first.marker],
    [0xb1, 104, 16640, true],
    'first packet of the new source: old SSRC, sequence +1, timestamp +160, marker',
  );
  t.same(
    [second.ssrc, second.sequence, second.timestamp, third.sequence, third.timestamp],
    [0xb1, 105, 16800, 106, 16960],
    'and the stream continues',
  );
  t.equal(a.rtp.queue.length, 0, 'the old phone is now dropped');
  t.equal(relay.stats('b').dropped, 3);
});

t.test('idleMs counts from open, then from the last accepted packet (injected clock)', async (t) => {
  const { relay, clock, a, b } = await setup(t);
  clock.advance(2500);
  t.same([relay.idleMs('a'), relay.idleMs('b')], [2500, 2500], 'since open');
  await a.rtp.send(rtp({ sequence: 1 }), relay.localPort('a'));
  await b.rtp.next();
  clock.advance(40);
  t.same([relay.idleMs('a'), relay.idleMs('b')], [40, 2540], 'RTP on a resets a only');
  clock.advance(1000);
  await b.rtcp.send(rtcp(2), relay.localPort('b') + 1);
  await a.rtcp.next();
  t.equal(relay.idleMs('b'), 0, 'RTCP keeps a held leg alive');
});

t.test('ports: close releases them, exhaustion rejects, pairs in use elsewhere are skipped', async (t) => {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const range: [number, number] = [BASE + 10, BASE + 19]; // five pairs
  const factory = new RtpRelayFactory({ bind: HOST, ports: range, clock, logger });
  t.teardown(() => factory.closeAll());
  const squatter = await bind(BASE + 11); // RTCP port of the first pair, held by "another process"
  let squatting = true;
  t.teardown(() => squatting && squatter.close());

  const r1 = await factory.open();
  t.same([r1.localPort('a'), r1.localPort('b')], [BASE + 12, BASE + 14], 'first pair skipped (its RTCP port is taken)');
  const r2 = await factory.open();
  t.same([r2.localPort('a'), r2.localPort('b')], [BASE + 16, BASE + 18], 'round robin continues');
  t.equal(factory.active(), 2);
  await t.rejects(factory.open(), { code: 'RTP_PORTS_IN_USE' }, 'no pairs left that can be bound');

  r1.close();
  r1.close();
  t.equal(factory.active(), 1, 'close is idempotent');
  const rebound = await bind(BASE + 12);
  t.equal(rebound.address().port, BASE + 12, 'a closed relay no longer holds its ports');
  rebound.close();
  const r3 = await factory.open();
  t.same([r3.localPort('a'), r3.localPort('b')], [BASE + 12, BASE + 14], 'released pairs are handed out again');
  await t.rejects(factory.open(), { code: 'RTP_PORTS_IN_USE' });
  squatter.close();
  squatting = false;
  r3.close();
  const r4 = await factory.open();
  t.same([r4.localPort('a'), r4.localPort('b')], [BASE + 12, BASE + 14], 'the cursor had passed the first pair');
  await t.rejects(factory.open(), { code: 'RTP_PORTS_EXHAUSTED' }, 'leg a got the last pair, leg b none');
  const freed = await bind(BASE + 10);
  t.equal(freed.address().port, BASE + 10, 'a failed open gives back the pair of its first leg');
  freed.close();
  factory.closeAll();
  t.equal(factory.active(), 0, 'closeAll closes every relay');
  t.ok(
    logger.records.some((r) => r.msg === 'relay closed' && r.fields.relay === r1.id),
    'close logs the per-leg counters once',
  );
});

t.test('an IPv6 bind address relays over IPv6', async (t) => {
  const factory = new RtpRelayFactory({ bind: '::1', ports: RELAY_RANGE, clock: new ManualClock(), logger: new MemoryLogger() });
  t.teardown(() => factory.closeAll());
  const relay = await factory.open();
  const open6 = (): Promise<dgram.Socket> =>
    new Promise((resolve) => {
      const s = dgram.createSocket('udp6');
      s.bind({ address: '::1', port: 0 }, () => resolve(s));
    });
  const [sa, sb] = await Promise.all([open6(), open6()]);
  t.teardown(() => {
    sa.close();
    sb.close();
  });
  relay.setRemote('b', { address: '::1', port: sb.address().port });
  const got = new Promise<Buffer>((resolve) => sb.once('message', resolve));
  sa.send(rtp({ sequence: 6 }), relay.localPort('a'), '::1');
  t.equal((await got).readUInt16BE(2), 6);
});

/** A Random that hands out `bytes` in order: an RtpSender with a chosen SSRC, sequence and timestamp. */
class ScriptedRandom implements Random {
  private at = 0;
  constructor(private readonly data: Buffer) {}
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    this.data.copy(out, 0, this.at, this.at + n);
    this.at += n;
    return out;
  }
}

/** An RtpSender whose stream starts with `ssrc`, `sequence` and `timestamp`. */
function senderWith(ssrc: number, sequence: number, timestamp = 1000): RtpSender {
  const b = Buffer.alloc(10);
  b.writeUInt32BE(ssrc, 0);
  b.writeUInt16BE(sequence, 4);
  b.writeUInt32BE(timestamp, 6);
  return new RtpSender({ random: new ScriptedRandom(b), clockRate: 8000 });
}

/** A transcoder stand-in: answers each packet with `copies` packets of its own stream (PCMA, 10-byte payloads), or throws. */
class FakeTranscoder implements PacketTranscoder {
  readonly stats = { decoded: 0, concealed: 0, sent: 0, dropped: 0, events: 0 };
  readonly codec = 'PCMA';
  readonly sender: RtpSender;
  closed = 0;
  constructor(
    private readonly copies: number,
    private readonly fail = false,
    ssrc = 0x7777,
    sequence = 10,
  ) {
    this.sender = senderWith(ssrc, sequence);
  }
  push(_packet: Uint8Array, nowMs?: number): Uint8Array[] {
    if (this.fail) throw new Error('codec exploded');
    this.stats.decoded++;
    this.stats.sent += this.copies;
    return Array.from({ length: this.copies }, () => this.sender.packet(Buffer.from('transcoded'), { payloadType: 8, ticks: 160, nowMs }));
  }
  isEvent(pt: number): boolean {
    return pt === 101;
  }
  close(): void {
    this.closed++;
  }
}

t.test('a transcoder on a leg turns each RTP packet into its packets; RTCP of that leg is not relayed', async (t) => {
  const { relay, logger, a, b } = await setup(t);
  const pa = relay.localPort('a');
  const two = new FakeTranscoder(2);
  relay.setTranscoder('a', two);
  await a.rtp.send(rtp({ sequence: 1 }), pa);
  const got = [(await b.rtp.next()).msg, (await b.rtp.next()).msg].map((m) => decodeRtpHeader(m));
  t.same(got.map((h) => [h.sequence, h.payloadType, h.ssrc]), [[10, 8, 0x7777], [11, 8, 0x7777]], 'both packets reach b');
  await a.rtcp.send(rtcp(0x1111), pa + 1);
  await b.rtp.send(rtp({ sequence: 5, ssrc: 0x2222 }), relay.localPort('b'));
  t.equal(decodeRtpHeader((await a.rtp.next()).msg).ssrc, 0x2222, 'the other direction still relays');
  t.equal(b.rtcp.queue.length, 0, 'no RTCP towards b');
  t.same(relay.stats('a'), { received: 2, forwarded: 1, dropped: 1, consumed: 0 }, 'one packet in, forwarded; RTCP dropped');

  relay.setEcho(true);
  await a.rtp.send(rtp({ sequence: 2 }), pa);
  t.equal((await a.rtp.next()).msg.subarray(12).toString(), 'voice', 'echo mode bypasses the transcoder');
  relay.setEcho(false);

  relay.setTranscoder('a', new FakeTranscoder(0, true));
  t.equal(two.closed, 1, 'a replaced transcoder is closed');
  await a.rtp.send(rtp({ sequence: 3 }), pa);
  await a.rtp.send(rtp({ sequence: 4 }), pa);
  await received(relay, 'a', 5);
  t.equal(logger.records.filter((r) => r.msg.startsWith('transcoder failed')).length, 1, 'a failing codec is logged once');
  t.equal(relay.stats('a').dropped, 3, 'and its packets dropped');

  relay.setTranscoder('a', new FakeTranscoder(1, false, 0x8888, 500));
  await a.rtp.send(rtp({ sequence: 5 }), pa);
  const fresh = decodeRtpHeader((await b.rtp.next()).msg);
  t.same([fresh.ssrc, fresh.sequence], [0x8888, 500], 'a new transcoder\'s stream reaches b under its own SSRC (a new source, RFC 3550 §7.3)');
  relay.setTranscoder('a', undefined);
  await a.rtp.send(rtp({ sequence: 6 }), pa);
  const relayed = await b.rtp.next();
  const h = decodeRtpHeader(relayed.msg);
  t.equal(relayed.msg.subarray(12).toString(), 'voice', 'without a transcoder packets are relayed again');
  t.same([h.ssrc, h.sequence, h.marker], [0x8888, 501, true], 'continuing the transcoded stream b received (SSRC, sequence, marker)');
  const last = new FakeTranscoder(1);
  relay.setTranscoder('b', last);
  relay.close();
  t.equal(last.closed, 1, 'close closes the transcoders');
});

/** Waits (at most 2 s of real time) until `cond` holds. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 2000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

t.test('while a leg is transcoded the gateway runs RTCP for its own stream there: SR+SDES, the peer\'s RR read, BYE at close', async (t) => {
  const clock = new ManualClock(1000);
  const logger = new MemoryLogger();
  const factory = new RtpRelayFactory({ bind: HOST, ports: RELAY_RANGE, clock, logger, random: new SeededRandom(11), cname: 'gw@test' });
  const relay = await factory.open();
  t.teardown(() => factory.closeAll());
  const a = await Phone.open(t);
  const b = await Phone.open(t);
  relay.setRemote('a', a.sdp);
  relay.setRemote('b', b.sdp);
  const pa = relay.localPort('a');
  const pb = relay.localPort('b');
  relay.setTranscoder('a', new FakeTranscoder(1));
  const startedAt = clock.now();
  for (let i = 0; i < 5; i++) {
    clock.advance(20);
    await a.rtp.send(rtp({ sequence: 100 + i }), pa);
    await b.rtp.send(rtp({ sequence: 300 + i, ssrc: 0x2222 }, 'reply'), pb);
    t.equal(decodeRtpHeader((await b.rtp.next()).msg).ssrc, 0x7777, `transcoded packet ${i + 1} reaches b`);
    await a.rtp.next();
  }
  // The phone on b reported before the gateway did: that RTCP is not a's business any more.
  await b.rtcp.send(rtcp(0x2222), pb + 1);
  await waitFor(() => relay.stats('b').consumed === 1, 'b\'s first RTCP');

  // RFC 3550 §6.2/A.7: the first report after half the 5 s minimum, randomised over
  // [0.5, 1.5] / (e - 3/2): between 1026 and 3078 ms after the stream started.
  clock.advance(startedAt + 1020 - clock.now());
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.equal(b.rtcp.queue.length, 0, 'no report before 1026 ms');
  clock.advance(startedAt + 3080 - clock.now());
  const [sr, sdes] = decodeRtcp((await b.rtcp.next()).msg);
  t.ok(sr?.type === 'sr', 'a sender report');
  if (sr?.type !== 'sr') return;
  t.same([sr.ssrc, sr.packetCount, sr.octetCount], [0x7777, 5, 50], 'with the transcoder\'s SSRC, its 5 packets and 50 payload octets (§6.4.1)');
  t.same(sr.reports.map((r) => [r.ssrc, r.cumulativeLost, r.extendedHighestSequence]), [[0x2222, 0, 304]], 'one report block on the stream b sends (A.3)');
  const srSentAt = ntpToUnixMs(sr.ntp) - (clock.wallNow() - clock.now());
  t.ok(srSentAt - startedAt >= 1026 && srSentAt - startedAt <= 3078, `sent ${(srSentAt - startedAt).toFixed(0)} ms after the stream started`);
  t.equal(b.rtcp.queue.length, 0, 'one report in that time');
  t.same(sdes?.type === 'sdes' ? sdes.chunks.map((c) => [c.ssrc, c.items[0]?.text]) : [], [[0x7777, 'gw@test']], 'SDES CNAME for the same SSRC (§6.1)');
  t.equal(a.rtcp.queue.length, 0, 'leg a, whose stream is relayed unchanged, gets no report of the gateway');

  // b's receiver report about the gateway's stream, having held the SR 10 ms.
  clock.advance(40);
  const expectedRtt = clock.now() - srSentAt - 10;
  const rr = encodeRtcp([
    { type: 'rr', ssrc: 0x2222, reports: [{ ssrc: 0x7777, fractionLost: 0, cumulativeLost: 2, extendedHighestSequence: 14, jitter: 80, lastSr: compactNtp(sr.ntp), delaySinceLastSr: msToCompactNtp(10) }] },
    { type: 'sdes', chunks: [{ ssrc: 0x2222, items: [{ type: 1, text: 'b@phone' }] }] },
  ]);
  await b.rtcp.send(rr, pb + 1);
  await waitFor(() => relay.stats('b').consumed === 2, 'b\'s receiver report');
  t.equal(a.rtcp.queue.length, 0, 'and it is not forwarded to a');
  t.same(relay.stats('b'), { received: 7, forwarded: 5, dropped: 0, consumed: 2 }, 'b: 5 RTP relayed, 2 RTCP read');

  relay.close();
  const bye = decodeRtcp((await b.rtcp.next()).msg);
  t.same(bye.map((p) => p.type), ['sr', 'sdes', 'bye'], 'close: a last SR, SDES and BYE (§6.6)');
  t.same(bye[2]?.type === 'bye' ? bye[2].ssrcs : [], [0x7777], 'BYE for the gateway\'s SSRC');
  const closed = logger.records.find((r) => r.msg === 'relay closed')?.fields ?? {};
  // A.1: the first packet of a source is on probation, so 4 of b's 5 packets count.
  t.match(closed, { bSsrc: 0x7777, bPacketsSent: 5, bPacketsReceived: 4, bLost: 0, bRemoteLost: 2, bRemoteJitterMs: 10, bRtcpSent: 2, bRtcpRead: 2, bCodec: 'PCMA', bConsumed: 2 }, 'the close line carries b\'s call statistics', { closed });
  t.ok(typeof closed.bRttMs === 'number' && Math.abs((closed.bRttMs as number) - expectedRtt) < 0.5, `round-trip time A - LSR - DLSR = ${expectedRtt.toFixed(1)} ms (§6.4.1), got ${String(closed.bRttMs)}`);
  t.notOk('aRtcpSent' in closed, 'no RTCP of the gateway on a');
});

/** What a phone receives in `seconds` of 20 ms packets: the decoded PCM. */
async function collect(phone: Phone, codec: AudioCodec, packets: number): Promise<Int16Array> {
  const decoder = codec.createDecoder();
  const pcm: number[] = [];
  for (let i = 0; i < packets; i++) {
    const msg = (await phone.rtp.next()).msg;
    pcm.push(...decoder.decode(msg.subarray(decodeRtpHeader(msg).headerLength)));
  }
  return Int16Array.from(pcm);
}

t.test('a G.722 phone and a PCMA-only trunk hear each other\'s tones through the transcoding relay', async (t) => {
  const clock = new ManualClock(1000);
  const logger = new MemoryLogger();
  const factory = new RtpRelayFactory({ bind: HOST, ports: RELAY_RANGE, clock, logger });
  t.teardown(() => factory.closeAll());
  const codecs = new CodecRegistry([pcma, g722]);
  const sessions = relayedMediaFactory(factory, { random: new SeededRandom(5), codecs, resamplers: await loadSpeexResampler(), logger });
  const media = await sessions.create();
  media.setLocalAddress('a', HOST);
  media.setLocalAddress('b', HOST);
  const phone = await Phone.open(t);
  const trunk = await Phone.open(t);
  const sdp = (port: number, formats: string, map: string) => `v=0\r\no=- 1 1 IN IP4 ${HOST}\r\ns=-\r\nc=IN IP4 ${HOST}\r\nt=0 0\r\nm=audio ${port} RTP/AVP ${formats}\r\n${map}\r\n`;
  const offer = media.offer('a', sdp(phone.rtp.port, '9', 'a=rtpmap:9 G722/8000'));
  t.ok(offer.ok && /m=audio \d+ RTP\/AVP 9 8\r\n/.test(offer.sdp), 'the trunk is offered G.722 then PCMA');
  const answer = media.answer('b', sdp(trunk.rtp.port, '8', 'a=rtpmap:8 PCMA/8000'));
  t.ok(answer.ok && /m=audio \d+ RTP\/AVP 9\r\n/.test(answer.sdp), 'the phone is answered with G.722');

  const seconds = 1;
  const send = async (from: Phone, to: number, codec: AudioCodec, pt: number, frequency: number) => {
    const encoder = codec.createEncoder(20);
    const tone = sine(frequency, codec.info.sampleRate, seconds);
    const frame = codec.info.sampleRate / 50;
    for (let i = 0; i < seconds * 50; i++) {
      const header = encodeRtpHeader({ payloadType: pt, sequence: 100 + i, timestamp: 8000 + i * 160, ssrc: 0x4242 + pt, marker: i === 0 });
      await from.rtp.send(Buffer.concat([header, encoder.encode(tone.subarray(i * frame, (i + 1) * frame))]), to);
    }
  };
  if (!offer.ok || !answer.ok) return;
  await send(phone, parseSdp(answer.sdp).audio.port, g722, 9, 1000);
  const atTrunk = await collect(trunk, pcma, seconds * 50 - 1);
  await send(trunk, parseSdp(offer.sdp).audio.port, pcma, 8, 440);
  const atPhone = await collect(phone, g722, seconds * 50 - 1);
  const far = dominantFrequency(atTrunk.subarray(800), 8000);
  const near = dominantFrequency(atPhone.subarray(1600), 16000);
  t.equal(far.frequency, 1000, `the trunk hears 1 kHz in PCMA (purity ${far.ratio.toFixed(3)})`);
  t.equal(near.frequency, 440, `the phone hears 440 Hz in G.722 (purity ${near.ratio.toFixed(3)})`);
  t.ok(far.ratio > 0.8 && near.ratio > 0.8, 'clean tones');
  media.close();
  t.ok(logger.records.some((r) => r.msg === 'relay closed' && typeof r.fields.aDecoded === 'number' && r.fields.aDecoded >= 49), 'the close line counts the transcoded packets');
});
