import t from 'tap';
import dgram from 'node:dgram';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { MemoryLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { encodeRtpHeader } from '../../../src/media/rtp-packet.ts';
import { RtpRelayFactory, type MediaRelay } from '../../../src/media/rtp-relay.ts';
import { generateSdesCrypto } from '../../../src/media/srtp/sdes.ts';
import { SrtpSession } from '../../../src/media/srtp/srtp-session.ts';
import type { SrtpKeys } from '../../../src/media/relay/leg-srtp.ts';
import { RtpSender } from '../../../src/media/rtp/rtp-sender.ts';
import type { PacketTranscoder } from '../../../src/media/transcoder.ts';

const HOST = '127.0.0.1';
const BASE = 46000 + (process.pid % 300) * 20;

/** A UDP socket that queues what it receives; `next()` waits up to 2 s. */
class Endpoint {
  readonly queue: Buffer[] = [];
  private waiter: ((d: Buffer) => void) | undefined;
  constructor(readonly socket: dgram.Socket) {
    socket.on('message', (msg) => {
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w(msg);
      else this.queue.push(msg);
    });
  }
  get port(): number {
    return this.socket.address().port;
  }
  send(msg: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(msg, port, HOST, (err) => (err ? reject(err) : resolve())));
  }
  next(): Promise<Buffer> {
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

async function endpoint(tap: { teardown(fn: () => void): void }): Promise<Endpoint> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, HOST, () => resolve()));
  tap.teardown(() => s.close());
  return new Endpoint(s);
}

/** A phone: RTP and RTCP sockets (any ports: a=rtcp names the RTCP one) and its SRTP session with the gateway. */
interface Phone {
  rtp: Endpoint;
  rtcp: Endpoint;
  /** The phone's side: local = its key, remote = the gateway's (undefined: plain RTP). */
  srtp: SrtpSession | undefined;
  /** What the relay gets for this leg. */
  keys: SrtpKeys | undefined;
}

let seed = 1;
async function phone(tap: { teardown(fn: () => void): void }, srtp: boolean): Promise<Phone> {
  const [rtp, rtcp] = [await endpoint(tap), await endpoint(tap)];
  if (!srtp) return { rtp, rtcp, srtp: undefined, keys: undefined };
  const mine = generateSdesCrypto(new SeededRandom(seed++), 1);
  const gateways = generateSdesCrypto(new SeededRandom(seed++), 1);
  return { rtp, rtcp, srtp: new SrtpSession({ local: mine, remote: gateways }), keys: { local: gateways, remote: mine } };
}

async function setup(tap: { teardown(fn: () => void): void }, srtpA: boolean, srtpB: boolean) {
  const logger = new MemoryLogger();
  const factory = new RtpRelayFactory({ bind: HOST, ports: [BASE, BASE + 9], clock: new ManualClock(1000), logger });
  const relay = await factory.open();
  tap.teardown(() => factory.closeAll());
  const a = await phone(tap, srtpA);
  const b = await phone(tap, srtpB);
  for (const [leg, p] of [['a', a], ['b', b]] as const) {
    relay.setRemote(leg, { address: HOST, port: p.rtp.port, rtcpPort: p.rtcp.port });
    relay.setSrtp!(leg, p.keys);
  }
  return { relay, logger, a, b };
}

function rtp(sequence: number, payload = `voice ${sequence}`): Buffer {
  return Buffer.concat([encodeRtpHeader({ marker: false, payloadType: 0, sequence, timestamp: sequence * 160, ssrc: 0x1111 }), Buffer.from(payload)]);
}

function rtcp(ssrc: number): Buffer {
  // An empty receiver report (RFC 3550 §6.4.2).
  const b = Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 0]);
  b.writeUInt32BE(ssrc, 4);
  return b;
}

const ok = (r: { ok: true; packet: Buffer } | { ok: false; reason: string }): Buffer => {
  if (!r.ok) throw new Error(r.reason);
  return r.packet;
};

async function settle(relay: MediaRelay, leg: 'a' | 'b', n: number): Promise<void> {
  const until = Date.now() + 2000;
  while (relay.stats(leg).received < n) {
    if (Date.now() > until) throw new Error(`leg ${leg} received ${relay.stats(leg).received} of ${n}`);
    await new Promise<void>((r) => setImmediate(r));
  }
}

t.test('SRTP leg ↔ plain leg: decrypted one way, encrypted the other, RTP and RTCP', async (t) => {
  const { relay, a, b } = await setup(t, true, false);
  const pa = relay.localPort('a');
  const pb = relay.localPort('b');
  const sent = rtp(1);
  await a.rtp.send(ok(a.srtp!.protectRtp(sent)), pa);
  t.same(await b.rtp.next(), sent, 'a → b: the plain leg gets the RTP the SRTP phone protected');
  const back = rtp(500, 'reply');
  await b.rtp.send(back, pb);
  const wire = await a.rtp.next();
  t.equal(wire.length, back.length + 10, 'b → a: protected (an 80-bit tag, RFC 3711 §4.2)');
  t.notSame(wire.subarray(12, 12 + 5), back.subarray(12, 17), 'the payload is encrypted');
  t.same(ok(a.srtp!.unprotectRtp(wire)), back, 'the SRTP phone decrypts it with the gateway key');

  await a.rtcp.send(ok(a.srtp!.protectRtcp(rtcp(0x1111))), pa + 1);
  t.same(await b.rtcp.next(), rtcp(0x1111), 'SRTCP a → RTCP b');
  await b.rtcp.send(rtcp(0x2222), pb + 1);
  t.same(ok(a.srtp!.unprotectRtcp(await a.rtcp.next())), rtcp(0x2222), 'RTCP b → SRTCP a');
  t.match(relay.stats('a'), { forwarded: 2, dropped: 0, srtp: { authFailed: 0, replayed: 0, invalid: 0, protectFailed: 0 } });
  t.equal(relay.stats('b').srtp, undefined, 'the plain leg reports no SRTP counters');
});

t.test('SRTP ↔ SRTP: re-keyed per leg', async (t) => {
  const { relay, a, b } = await setup(t, true, true);
  const sent = rtp(7);
  const fromA = ok(a.srtp!.protectRtp(sent));
  await a.rtp.send(fromA, relay.localPort('a'));
  const toB = await b.rtp.next();
  t.notSame(toB, fromA, 'not the same ciphertext: each leg has its own keys');
  t.same(ok(b.srtp!.unprotectRtp(toB)), sent, 'b decrypts with the key the gateway gave it');
  t.notOk(b.srtp!.unprotectRtp(fromA).ok, "a's packet means nothing with b's keys");
});

t.test('a tampered packet (bit flip) and a replayed one are dropped and counted; the latch waits for an authentic packet', async (t) => {
  const { relay, logger, a, b } = await setup(t, true, false);
  const pa = relay.localPort('a');
  const genuine = [1, 2, 3].map((n) => ok(a.srtp!.protectRtp(rtp(n))));
  const intruder = await endpoint(t);
  const forged = Buffer.from(genuine[0]!);
  forged[14]! ^= 0x01;
  await intruder.send(forged, pa);
  await settle(relay, 'a', 1);
  t.match(relay.stats('a'), { dropped: 1, srtp: { authFailed: 1 } }, 'a forged packet from elsewhere: auth failed');

  await a.rtp.send(genuine[0]!, pa);
  t.same(await b.rtp.next(), rtp(1), 'the genuine source is latched and relayed');
  const tampered = Buffer.from(genuine[1]!);
  tampered[tampered.length - 12]! ^= 0x80;
  await a.rtp.send(tampered, pa);
  await a.rtp.send(genuine[0]!, pa);
  await a.rtp.send(genuine[1]!, pa);
  t.same(await b.rtp.next(), rtp(2), 'the untampered packet 2 still passes (a failed one is not remembered)');
  await intruder.send(genuine[2]!, pa);
  await settle(relay, 'a', 6);
  t.same(relay.stats('a'), {
    received: 6,
    forwarded: 2,
    dropped: 4,
    consumed: 0,
    srtp: { authFailed: 2, replayed: 1, invalid: 0, protectFailed: 0 },
  }, 'forged + tampered: 2 auth failures; packet 1 again: a replay; the intruder after latching: a source drop');
  t.equal(b.rtp.queue.length, 0, 'nothing else reached b');
  const first = logger.records.find((r) => r.msg.startsWith('srtp refused a packet'));
  t.match(first?.fields, { leg: 'a', code: 'SRTP_AUTH_FAILED' }, 'the first refusal is logged at debug');
  relay.close();
  t.match(logger.records.find((r) => r.msg === 'relay closed')?.fields, { aSrtpAuthFailed: 2, aSrtpReplayed: 1, aDroppedSource: 1 }, 'the closing line counts them');
});

t.test('new keys replace only the context whose key changed', async (t) => {
  const { relay, a, b } = await setup(t, true, false);
  const pa = relay.localPort('a');
  const one = ok(a.srtp!.protectRtp(rtp(1)));
  await a.rtp.send(one, pa);
  await b.rtp.next();
  relay.setSrtp!('a', a.keys);
  await a.rtp.send(one, pa);
  await settle(relay, 'a', 2);
  t.match(relay.stats('a').srtp, { replayed: 1 }, 'the same keys again (a refresh): the replay list survives');

  const fresh = generateSdesCrypto(new SeededRandom(77), 1);
  const rekeyed = new SrtpSession({ local: fresh, remote: a.keys!.local });
  relay.setSrtp!('a', { local: a.keys!.local, remote: fresh });
  await a.rtp.send(ok(a.srtp!.protectRtp(rtp(2))), pa);
  await a.rtp.send(ok(rekeyed.protectRtp(rtp(3))), pa);
  t.same(await b.rtp.next(), rtp(3), 'the peer re-keyed: its new key works');
  t.match(relay.stats('a').srtp, { authFailed: 1 }, 'and its old one no longer does');
  await b.rtp.send(rtp(900), relay.localPort('b'));
  t.same(ok(a.srtp!.unprotectRtp(await a.rtp.next())), rtp(900), "the gateway's own key stayed: the phone's context still decrypts");
  relay.setSrtp!('a', undefined);
  await a.rtp.send(rtp(4), pa);
  t.same(await b.rtp.next(), rtp(4), 'plain again after the keys are removed');
});

t.test('echo on an SRTP leg: decrypted, then encrypted with the gateway key back to the phone', async (t) => {
  const { relay, a } = await setup(t, true, false);
  relay.setEcho(true);
  await a.rtp.send(ok(a.srtp!.protectRtp(rtp(9))), relay.localPort('a'));
  t.same(ok(a.srtp!.unprotectRtp(await a.rtp.next())), rtp(9), 'the phone hears itself through SRTP');
});

t.test('a transcoded leg: what the transcoder sends is protected for the SRTP leg', async (t) => {
  const { relay, a, b } = await setup(t, false, true);
  const sender = new RtpSender({ random: new SeededRandom(3), clockRate: 8000 });
  const transcoder: PacketTranscoder = {
    push: () => [sender.packet(Buffer.from('transcoded'), { payloadType: 8, ticks: 160, marker: false, nowMs: 0 })],
    sender,
    codec: 'PCMA',
    isEvent: () => false,
    stats: { decoded: 0, concealed: 0, sent: 0, dropped: 0, events: 0 },
    close: () => undefined,
  };
  relay.setTranscoder('a', transcoder);
  await a.rtp.send(rtp(1), relay.localPort('a'));
  const wire = await b.rtp.next();
  const plain = ok(b.srtp!.unprotectRtp(wire));
  t.equal(plain.subarray(12).toString(), 'transcoded', "b decrypts the transcoder's packet");
  t.equal(plain[1]! & 0x7f, 8, 'with the payload type the transcoder wrote');
});
