/**
 * STUN (RFC 5389): the codec against the RFC 5769 test vectors, round trips and malformed
 * input; the retransmission schedule of §7.2.1; and the client against a tiny STUN responder
 * on 127.0.0.1.
 */
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { SeededRandom } from '../../../src/runtime/random.ts';
import {
  decodeMessage,
  encodeAddressAttribute,
  encodeBindingRequest,
  encodeMessage,
  isStun,
  StunAttr,
  StunType,
  type StunAttribute,
} from '../../../src/sip/nat/stun.ts';
import { parseStunServer, queryPublicAddress, retransmitSchedule, transactionTimeout } from '../../../src/sip/nat/stun-client.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** RFC 5769 §2.2 "Sample IPv4 Response": XOR-MAPPED-ADDRESS 192.0.2.1 port 32853. */
const RFC5769_IPV4_RESPONSE = hex(`
  01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96`);

/** RFC 5769 §2.3 "Sample IPv6 Response": XOR-MAPPED-ADDRESS 2001:db8:1234:5678:11:2233:4455:6677 port 32853. */
const RFC5769_IPV6_RESPONSE = hex(`
  01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c`);

const VECTOR_TID = hex('b7 e7 a7 01 bc 34 d6 86 fa 87 df ae');

t.test('RFC 5769 §2.2 and §2.3 sample responses decode to the published mapped addresses', async (t) => {
  const cases: [name: string, bytes: Buffer, address: string][] = [
    ['§2.2 IPv4', RFC5769_IPV4_RESPONSE, '192.0.2.1'],
    ['§2.3 IPv6', RFC5769_IPV6_RESPONSE, '2001:db8:1234:5678:11:2233:4455:6677'],
  ];
  for (const [name, bytes, address] of cases) {
    t.ok(isStun(bytes), `${name}: recognised as STUN`);
    const m = decodeMessage(bytes);
    t.equal(m.type, StunType.BindingSuccess, `${name}: Binding success response`);
    t.equal(m.method, 0x001, `${name}: method Binding`);
    t.equal(m.class, 'success', `${name}: class success`);
    t.same(m.transactionId, VECTOR_TID, `${name}: transaction ID`);
    t.same(m.mappedAddress, { address, port: 32853 }, `${name}: XOR-MAPPED-ADDRESS (FINGERPRINT verified on the way)`);
    t.same(m.unknownRequired, [], `${name}: MESSAGE-INTEGRITY is a known attribute`);
    t.equal(m.attributes.find((a) => a.type === StunAttr.Software)?.value.toString(), 'test vector', `${name}: SOFTWARE`);
    // Encoding the same address attribute reproduces the vector's bytes.
    const xorAttr = encodeAddressAttribute(StunAttr.XorMappedAddress, { address, port: 32853 }, VECTOR_TID);
    const inVector = m.attributes.find((a) => a.type === StunAttr.XorMappedAddress)!.value;
    t.same(xorAttr.value, inVector, `${name}: XOR-MAPPED-ADDRESS encodes to the vector bytes`);
  }
});

t.test('messages round-trip, also when decoded from inside a larger buffer', async (t) => {
  const tid = hex('00112233445566778899aabb');
  const cases: [name: string, type: number, attrs: StunAttribute[], fingerprint: boolean, expected: object][] = [
    ['Binding request', StunType.BindingRequest, [], false, { class: 'request' }],
    ['XOR-MAPPED IPv4', StunType.BindingSuccess, [encodeAddressAttribute(StunAttr.XorMappedAddress, { address: '203.0.113.9', port: 5060 }, tid)], true, { mappedAddress: { address: '203.0.113.9', port: 5060 } }],
    ['XOR-MAPPED IPv6', StunType.BindingSuccess, [encodeAddressAttribute(StunAttr.XorMappedAddress, { address: '2001:db8::5060', port: 65535 }, tid)], false, { mappedAddress: { address: '2001:db8::5060', port: 65535 } }],
    ['MAPPED-ADDRESS only (RFC 3489 server)', StunType.BindingSuccess, [encodeAddressAttribute(StunAttr.MappedAddress, { address: '198.51.100.7', port: 40000 }, tid)], false, { mappedAddress: { address: '198.51.100.7', port: 40000 } }],
    [
      'XOR-MAPPED preferred over MAPPED',
      StunType.BindingSuccess,
      [encodeAddressAttribute(StunAttr.MappedAddress, { address: '10.0.0.1', port: 1 }, tid), encodeAddressAttribute(StunAttr.XorMappedAddress, { address: '198.51.100.8', port: 2 }, tid)],
      false,
      { mappedAddress: { address: '198.51.100.8', port: 2 } },
    ],
    ['error response 420', StunType.BindingError, [{ type: StunAttr.ErrorCode, value: Buffer.concat([hex('00000414'), Buffer.from('Unknown Attribute')]) }], true, { class: 'error', error: { code: 420, reason: 'Unknown Attribute' } }],
    ['unknown comprehension-required attribute reported', StunType.BindingSuccess, [{ type: 0x7777, value: Buffer.from('abc') }], false, { unknownRequired: [0x7777] }],
    ['unknown comprehension-optional attribute kept, not reported', StunType.BindingSuccess, [{ type: 0x8888, value: Buffer.from('a') }], false, { unknownRequired: [] }],
  ];
  for (const [name, type, attrs, fingerprint, expected] of cases) {
    const bytes = encodeMessage(type, tid, attrs, { fingerprint });
    t.ok(isStun(bytes), `${name}: isStun`);
    const decoded = decodeMessage(bytes);
    t.match(decoded, { type, transactionId: tid, ...expected }, `${name}: decodes`);
    t.same(encodeMessage(decoded.type, decoded.transactionId, decoded.attributes.filter((a) => a.type !== StunAttr.Fingerprint), { fingerprint }), bytes, `${name}: re-encodes`);
    const big = Buffer.concat([Buffer.from('xxxx'), bytes, Buffer.from('yy')]);
    t.match(decodeMessage(big.subarray(4, 4 + bytes.length)), expected, `${name}: decodes at an offset`);
  }
  const req = encodeBindingRequest(tid);
  t.same(req, Buffer.concat([hex('0001 0000 2112a442'), tid]), 'a Binding request is the bare 20-byte header (RFC 5389 §6)');
});

t.test('isStun tells STUN from RTP, SIP and junk on a shared socket', async (t) => {
  const req = encodeBindingRequest(Buffer.alloc(12, 7));
  const cases: [name: string, bytes: Buffer, stun: boolean][] = [
    ['Binding request', req, true],
    ['RFC 5769 response', RFC5769_IPV4_RESPONSE, true],
    ['RTP (version 2)', Buffer.concat([hex('80000001000000a000000001'), Buffer.alloc(160)]), false],
    ['SIP', Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n\r\n'), false],
    ['first bits not zero', Buffer.concat([hex('4001'), req.subarray(2)]), false],
    ['wrong cookie (RFC 3489 message)', Buffer.concat([req.subarray(0, 4), hex('00000000'), req.subarray(8)]), false],
    ['length field disagrees', Buffer.concat([req, Buffer.alloc(4)]), false],
    ['shorter than the header', req.subarray(0, 19), false],
    ['keep-alive CRLF', Buffer.from('\r\n\r\n'), false],
  ];
  for (const [name, bytes, stun] of cases) t.equal(isStun(bytes), stun, name);
});

t.test('malformed messages are refused with a precise StunError', async (t) => {
  const tid = Buffer.alloc(12, 1);
  const withAttr = (type: number, value: Buffer) => encodeMessage(StunType.BindingSuccess, tid, [{ type, value }]);
  const corrupt = (buf: Buffer, at: number, byte: number) => {
    const c = Buffer.from(buf);
    c[at] = byte;
    return c;
  };
  const lengthSays = (buf: Buffer, n: number) => {
    const c = Buffer.from(buf);
    c.writeUInt16BE(n, 2);
    return c;
  };
  const cases: [name: string, bytes: Buffer, message: RegExp][] = [
    ['too short', Buffer.alloc(10), /shorter than the 20-byte header/],
    ['no magic cookie', corrupt(encodeBindingRequest(tid), 4, 0), /magic cookie/],
    ['top bits set', corrupt(encodeBindingRequest(tid), 0, 0x80), /two zero bits/],
    ['length not a multiple of 4', lengthSays(withAttr(0x8022, Buffer.from('abcd')), 7), /not a multiple of 4/],
    ['length does not match the datagram', lengthSays(withAttr(0x8022, Buffer.from('abcd')), 4), /does not match/],
    ['attribute overruns', corrupt(withAttr(0x8022, Buffer.from('abcd')), 23, 0x40), /overruns the message/],
    ['padding overruns', Buffer.concat([hex('0101 0008 2112a442'), tid, hex('8022 0005 6162 6364')]), /overruns/],
    ['XOR-MAPPED-ADDRESS with family 3', withAttr(StunAttr.XorMappedAddress, hex('0003 0000 00000000')), /unknown address family 0x3/],
    ['XOR-MAPPED-ADDRESS IPv4 too long', withAttr(StunAttr.XorMappedAddress, hex('0001 0000 00000000 00000000')), /must be 8 bytes, got 12/],
    ['MAPPED-ADDRESS too short', withAttr(StunAttr.MappedAddress, hex('0001')), /MAPPED-ADDRESS shorter than 4 bytes/],
    ['ERROR-CODE class 7', withAttr(StunAttr.ErrorCode, hex('0000 0700')), /ERROR-CODE out of range/],
    ['FINGERPRINT wrong', corrupt(encodeMessage(StunType.BindingRequest, tid, [], { fingerprint: true }), 27, 0), /FINGERPRINT does not match/],
    ['FINGERPRINT not last', withAttr(StunAttr.Fingerprint, hex('00000000 00000000')), /must be the last attribute/],
    ['RFC 5769 vector with one flipped byte', corrupt(RFC5769_IPV4_RESPONSE, 40, 0xff), /FINGERPRINT does not match/],
  ];
  for (const [name, bytes, message] of cases) t.throws(() => decodeMessage(bytes), { name: 'StunError', code: 'STUN_ERR_MALFORMED', message }, name);
});

t.test('RFC 5389 §7.2.1 retransmission schedule, capped by the overall timeout', async (t) => {
  const cases: [name: string, opts: { rtoMs?: number; timeoutMs: number }, sends: number[]][] = [
    ['the RFC example: Rc=7 requests at 0, 500, 1500, ..., 31500', { timeoutMs: 39_500 }, [0, 500, 1500, 3500, 7500, 15_500, 31_500]],
    ['default 3 s cap', { timeoutMs: 3000 }, [0, 500, 1500]],
    ['a send exactly at the cap is not made', { timeoutMs: 1500 }, [0, 500]],
    ['a longer limit never exceeds Rc', { timeoutMs: 100_000 }, [0, 500, 1500, 3500, 7500, 15_500, 31_500]],
    ['a shorter RTO', { rtoMs: 20, timeoutMs: 200 }, [0, 20, 60, 140]],
  ];
  for (const [name, opts, sends] of cases) t.same(retransmitSchedule(opts), sends, name);
  t.equal(transactionTimeout(), 39_500, 'the client gives up Rm*RTO after the last request: 39.5 s');
});

t.test('STUN server text: host, host:port, IPv6 with and without brackets', async (t) => {
  const cases: [input: string, expected: { host: string; port: number } | RegExp][] = [
    ['stun.example.org', { host: 'stun.example.org', port: 3478 }],
    ['stun.example.org:19302', { host: 'stun.example.org', port: 19302 }],
    ['192.0.2.1:3479', { host: '192.0.2.1', port: 3479 }],
    ['[2001:db8::1]:3479', { host: '2001:db8::1', port: 3479 }],
    ['[2001:db8::1]', { host: '2001:db8::1', port: 3478 }],
    ['2001:db8::1', { host: '2001:db8::1', port: 3478 }],
    ['stun.example.org:0', /bad STUN server/],
    ['stun.example.org:70000', /bad STUN server/],
    ['stun.example.org:x', /bad STUN server/],
    [':3478', /bad STUN server/],
  ];
  for (const [input, expected] of cases) {
    if (expected instanceof RegExp) t.throws(() => parseStunServer(input), { code: 'STUN_ERR_SERVER', message: expected }, input);
    else t.same(parseStunServer(input), expected, input);
  }
});

/** A STUN responder on 127.0.0.1 that answers with the sender's address, after `drop` silent requests. */
async function responder(behaviour: { drop?: number; reply?: (req: ReturnType<typeof decodeMessage>, from: dgram.RemoteInfo) => Buffer[] } = {}) {
  const socket = dgram.createSocket('udp4');
  const requests: Buffer[] = [];
  socket.on('message', (msg, from) => {
    requests.push(msg);
    if (requests.length <= (behaviour.drop ?? 0)) return;
    const req = decodeMessage(msg);
    const replies = behaviour.reply?.(req, from) ?? [
      encodeMessage(StunType.BindingSuccess, req.transactionId, [encodeAddressAttribute(StunAttr.XorMappedAddress, { address: from.address, port: from.port }, req.transactionId)], { fingerprint: true }),
    ];
    for (const r of replies) socket.send(r, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  return { server: `127.0.0.1:${port}`, requests, close: () => socket.close() };
}

async function clientSocket() {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: (socket.address() as AddressInfo).port };
}

t.test('queryPublicAddress against a STUN responder on 127.0.0.1', async (t) => {
  const random = new SeededRandom(11);

  await t.test('answers with the address and port the server saw, on the given socket', async (t) => {
    const r = await responder();
    const { socket, port } = await clientSocket();
    const noise: string[] = [];
    socket.on('message', (m) => noise.push(isStun(m) ? 'stun' : 'other'));
    const got = await queryPublicAddress({ server: r.server, socket, random, rtoMs: 20, timeoutMs: 1000 });
    t.same(got, { address: '127.0.0.1', port });
    t.equal(r.requests.length, 1, 'one request when the first is answered');
    t.same(decodeMessage(r.requests[0]!).type, StunType.BindingRequest);
    t.equal(socket.listenerCount('message'), 1, "the client's listener is removed; the socket's own stays");
    t.same(noise, ['stun'], 'the socket owner sees the response and can drop it with isStun');
    socket.close();
    r.close();
  });

  await t.test('retransmits with doubling intervals until answered (RFC 5389 §7.2.1)', async (t) => {
    const r = await responder({ drop: 2 });
    const got = await queryPublicAddress({ server: r.server, random, rtoMs: 20, timeoutMs: 2000 });
    t.equal(got.address, '127.0.0.1', 'an own temporary socket is used');
    t.equal(r.requests.length, 3, 'answered on the third request');
    t.ok(r.requests.every((q) => q.equals(r.requests[0]!)), 'retransmissions carry the same transaction ID');
    r.close();
  });

  await t.test('ignores non-STUN traffic, other transactions and unknown comprehension-required attributes', async (t) => {
    const r = await responder({
      reply: (req, from) => [
        Buffer.from('SIP/2.0 200 OK\r\n\r\n'),
        encodeMessage(StunType.BindingSuccess, Buffer.alloc(12, 9), [encodeAddressAttribute(StunAttr.XorMappedAddress, { address: '198.51.100.1', port: 1 }, Buffer.alloc(12, 9))]),
        encodeMessage(StunType.BindingSuccess, req.transactionId, [{ type: 0x7777, value: Buffer.alloc(4) }, encodeAddressAttribute(StunAttr.XorMappedAddress, { address: '198.51.100.2', port: 2 }, req.transactionId)]),
        encodeMessage(StunType.BindingSuccess, req.transactionId, [encodeAddressAttribute(StunAttr.MappedAddress, { address: from.address, port: from.port }, req.transactionId)]),
      ],
    });
    const { socket, port } = await clientSocket();
    t.same(await queryPublicAddress({ server: r.server, socket, random, rtoMs: 200, timeoutMs: 1000 }), { address: '127.0.0.1', port }, 'the MAPPED-ADDRESS of the matching response');
    socket.close();
    r.close();
  });

  await t.test('an error response rejects with its code', async (t) => {
    const r = await responder({
      reply: (req) => [encodeMessage(StunType.BindingError, req.transactionId, [{ type: StunAttr.ErrorCode, value: Buffer.concat([hex('00000400'), Buffer.from('Bad Request')]) }])],
    });
    await t.rejects(queryPublicAddress({ server: r.server, random, rtoMs: 20, timeoutMs: 1000 }), { code: 'STUN_ERR_RESPONSE', status: 400, message: /400 Bad Request/ });
    r.close();
  });

  await t.test('no answer: rejects after timeoutMs, having sent the capped schedule', async (t) => {
    const r = await responder({ drop: Infinity });
    const { socket } = await clientSocket();
    const started = performance.now();
    await t.rejects(queryPublicAddress({ server: r.server, socket, random, rtoMs: 20, timeoutMs: 250 }), { code: 'STUN_ERR_TIMEOUT', message: /within 250 ms/ });
    t.ok(performance.now() - started >= 240, 'not before the timeout');
    await new Promise((resolve) => setTimeout(resolve, 20));
    t.equal(r.requests.length, 4, 'requests at 0, 20, 60 and 140 ms; the next (300 ms) is past the cap');
    t.equal(socket.listenerCount('message'), 0, 'the listener is removed');
    socket.close();
    r.close();
  });
});
