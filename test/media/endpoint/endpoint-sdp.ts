/**
 * Offer/answer (RFC 3264) for the device endpoint with the real built-in codecs: what our offer
 * lists, how an offer is answered, how an answer to our offer is taken, and the o= versioning.
 */
import t from 'tap';
import { builtinCodecs } from '../../../src/media/codec/builtin.ts';
import { EndpointSdp, type EndpointSdpResult, type NegotiatedMedia } from '../../../src/media/endpoint/endpoint-sdp.ts';
import { parseSdp } from '../../../src/media/sdp.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { formatSdesCrypto, generateSdesCrypto, parseSdesCrypto, type SdesCrypto } from '../../../src/media/srtp/sdes.ts';
import type { LegSecurity } from '../../../src/media/srtp-policy.ts';

const sdp = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');
const registry = builtinCodecs();
const ALL = ['opus', 'G722', 'PCMU', 'PCMA', 'L16'];

function endpoint(preference: readonly string[] = ALL, address = '192.0.2.1', security?: LegSecurity): EndpointSdp {
  return new EndpointSdp(registry.ordered(preference), new SeededRandom(9), { address: () => address, port: () => 4000 }, undefined, security);
}

/** A peer's description: one audio m-line plus extra lines, at 198.51.100.7:6000. */
function peer(formats: string, attributes: string[], o: { address?: string; before?: string[]; after?: string[]; protocol?: string } = {}): string {
  return sdp(
    'v=0',
    'o=- 1 1 IN IP4 198.51.100.7',
    's=-',
    `c=IN IP4 ${o.address ?? '198.51.100.7'}`,
    't=0 0',
    ...(o.before ?? []),
    `m=audio 6000 ${o.protocol ?? 'RTP/AVP'} ${formats}`,
    ...attributes,
    ...(o.after ?? []),
  );
}

/** The accepted result; a refusal throws, which fails the test with the reason. */
function ok(r: EndpointSdpResult, what: string): { sdp: string; media: NegotiatedMedia } {
  if (!r.ok) throw new Error(`${what}: refused with ${r.status} ${r.reason}`);
  return r;
}

/** The m=audio line, the rtpmap and fmtp lines of a description, in order. */
function audioLines(text: string): string[] {
  return text.split('\r\n').filter((l) => /^(m=audio|a=rtpmap|a=fmtp)/.test(l));
}

function originOf(text: string): { session: string; version: number; address: string } {
  const [, session, version, , , address] = text.split('\r\n').find((l) => l.startsWith('o='))!.split(' ');
  return { session: session!, version: Number(version), address: address! };
}

const receiveOf = (m: NegotiatedMedia): string[] => [...m.receive].map(([pt, r]) => `${pt}:${r.kind}${r.kind === 'event' ? `/${r.rate}` : ''}`).sort();

t.test('our offer lists the codecs in preference order, static numbers where RFC 3551 has them', async (t) => {
  const cases = [
    {
      name: 'every built-in codec',
      preference: ALL,
      m: 'm=audio 4000 RTP/AVP 96 9 0 8 97 98 99 101 102 13',
      maps: ['96 opus/48000/2', '9 G722/8000', '0 PCMU/8000', '8 PCMA/8000', '97 L16/8000', '98 L16/16000', '99 L16/48000', '101 telephone-event/8000', '102 telephone-event/48000', '13 CN/8000'],
    },
    { name: 'G.711 only: events at 8000 only', preference: ['PCMA', 'PCMU'], m: 'm=audio 4000 RTP/AVP 8 0 101 13', maps: ['8 PCMA/8000', '0 PCMU/8000', '101 telephone-event/8000', '13 CN/8000'] },
    { name: 'opus only: events at 48000 only', preference: ['opus'], m: 'm=audio 4000 RTP/AVP 96 102 13', maps: ['96 opus/48000/2', '102 telephone-event/48000', '13 CN/8000'] },
    { name: 'dynamic numbers follow the preference', preference: ['L16/48000', 'PCMU'], m: 'm=audio 4000 RTP/AVP 96 0 101 102 13', maps: ['96 L16/48000', '0 PCMU/8000', '101 telephone-event/8000', '102 telephone-event/48000', '13 CN/8000'] },
  ];
  for (const c of cases) {
    const offer = endpoint(c.preference).offer();
    const lines = audioLines(offer);
    t.equal(lines[0], c.m, `${c.name}: m-line`);
    t.same(lines.filter((l) => l.startsWith('a=rtpmap:')).map((l) => l.slice('a=rtpmap:'.length)), c.maps, `${c.name}: rtpmaps`);
    t.ok(lines.filter((l) => /^a=fmtp:10[12] /.test(l)).every((l) => l.endsWith(' 0-16')), `${c.name}: telephone-event fmtp 0-16`);
  }
  const offer = endpoint().offer();
  t.match(offer, /^c=IN IP4 192\.0\.2\.1\r$/m, 'c= is our address');
  t.match(offer, /^a=rtcp:4001\r$/m, 'RTCP on the next port (RFC 3605)');
  t.match(offer, /^a=ptime:20\r$/m, '20 ms packets');
  t.match(offer, /^a=sendrecv\r$/m, 'sendrecv by default');
  t.match(offer, /^a=fmtp:96 useinbandfec=1; stereo=0; sprop-stereo=0\r$/m, 'opus fmtp from the codec');
  t.match(endpoint().offer('sendonly'), /^a=sendonly\r$/m, 'hold offer is sendonly (RFC 3264 §8.4)');
  t.match(endpoint(ALL, '2001:db8::1').offer(), /^c=IN IP6 2001:db8::1\r$/m, 'IPv6 address');
});

t.test('answering an offer: our most preferred codec it lists, in its numbering', async (t) => {
  const cases = [
    {
      name: 'a phone preferring PCMA gets G.722 (our preference wins)',
      offer: peer('8 0 9 101', ['a=rtpmap:8 PCMA/8000', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:9 G722/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15']),
      preference: ALL,
      m: 'm=audio 4000 RTP/AVP 9 101',
      codec: 'G722',
      sendPt: 9,
      event: { pt: 101, rate: 8000 },
      receive: ['101:event/8000', '9:audio'],
    },
    {
      name: 'opus and events renumbered by the offerer',
      offer: peer('111 0 110 126', ['a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:110 telephone-event/48000', 'a=rtpmap:126 telephone-event/8000']),
      preference: ALL,
      m: 'm=audio 4000 RTP/AVP 111 110',
      codec: 'opus',
      sendPt: 111,
      event: { pt: 110, rate: 48000 },
      // Our own number for opus (96) is accepted too.
      receive: ['110:event/48000', '111:audio', '126:event/8000', '96:audio'],
    },
    {
      name: 'PCMU without rtpmap, no telephone-event, with CN',
      offer: peer('18 0 13', ['a=rtpmap:18 G729/8000']),
      preference: ['PCMA', 'PCMU'],
      m: 'm=audio 4000 RTP/AVP 0 13',
      codec: 'PCMU',
      sendPt: 0,
      event: undefined,
      receive: ['0:audio', '13:cn'],
    },
    {
      name: 'the event at the codec rate is chosen over the first listed',
      offer: peer('0 102 101', ['a=rtpmap:0 PCMU/8000', 'a=rtpmap:102 telephone-event/48000', 'a=rtpmap:101 telephone-event/8000']),
      preference: ['PCMU'],
      m: 'm=audio 4000 RTP/AVP 0 101',
      codec: 'PCMU',
      sendPt: 0,
      event: { pt: 101, rate: 8000 },
      receive: ['0:audio', '101:event/8000', '102:event/48000'],
    },
  ];
  for (const c of cases) {
    const r = ok(endpoint(c.preference).answerOffer(c.offer), c.name);
    t.equal(audioLines(r.sdp)[0], c.m, `${c.name}: answer m-line`);
    t.equal(r.media.codec.info.name, c.codec, `${c.name}: codec`);
    t.equal(r.media.sendPt, c.sendPt, `${c.name}: we send with the offerer's number`);
    t.same(r.media.event, c.event, `${c.name}: telephone-event`);
    t.same(receiveOf(r.media), c.receive, `${c.name}: what may arrive`);
    t.same(r.media.remote, { address: '198.51.100.7', port: 6000 }, `${c.name}: far end`);
    t.equal(r.media.direction, 'sendrecv', `${c.name}: sendrecv`);
    t.equal(r.media.ptime, 20, `${c.name}: ptime`);
    t.doesNotThrow(() => parseSdp(r.sdp), `${c.name}: the answer parses`);
  }
});

t.test('the answer mirrors the offer: m-lines, direction, profile, connection', async (t) => {
  const pcmu = ['a=rtpmap:0 PCMU/8000'];
  const cases = [
    { name: 'sendrecv', offer: peer('0', pcmu), answerDirection: 'sendrecv', ours: 'sendrecv', remote: true },
    { name: 'hold: sendonly is answered recvonly', offer: peer('0', [...pcmu, 'a=sendonly']), answerDirection: 'recvonly', ours: 'recvonly', remote: true },
    { name: 'recvonly is answered sendonly', offer: peer('0', [...pcmu, 'a=recvonly']), answerDirection: 'sendonly', ours: 'sendonly', remote: true },
    { name: 'inactive stays inactive', offer: peer('0', [...pcmu, 'a=inactive']), answerDirection: 'inactive', ours: 'inactive', remote: true },
    { name: 'session-level direction', offer: peer('0', pcmu, { before: ['a=sendonly'] }), answerDirection: 'recvonly', ours: 'recvonly', remote: true },
    // RFC 3264 §8.4: c=0.0.0.0 is the RFC 2543 hold; there is nowhere to send.
    { name: 'c=0.0.0.0 hold', offer: peer('0', pcmu, { address: '0.0.0.0' }), answerDirection: 'recvonly', ours: 'recvonly', remote: false },
  ];
  for (const c of cases) {
    const r = ok(endpoint().answerOffer(c.offer), c.name);
    t.equal(parseSdp(r.sdp).audio.direction, c.answerDirection, `${c.name}: answer says ${c.answerDirection}`);
    t.equal(r.media.direction, c.ours, `${c.name}: our direction`);
    t.equal(r.media.remote !== undefined, c.remote, `${c.name}: ${c.remote ? 'a' : 'no'} far end to send to`);
  }

  const video = peer('0', pcmu, { before: ['m=video 0 RTP/AVP 31', 'm=audio 0 RTP/AVP 8'], after: ['a=rtcp:6101', 'm=video 6002 RTP/AVP 97', 'a=rtpmap:97 H264/90000'] });
  const r = ok(endpoint().answerOffer(video), 'audio between rejected and offered video');
  const answer = parseSdp(r.sdp);
  t.same(
    answer.media.map((m) => `${m.type} ${m.port} ${m.formats}`),
    ['video 0 31', 'audio 0 8', 'audio 4000 0', 'video 0 97'],
    'one m-line per offered one, in order; only our audio has a port (RFC 3264 §6)',
  );
  t.equal(answer.audioIndex, 2, 'the audio answer sits where the offer had it');
  t.same(r.media.remote, { address: '198.51.100.7', port: 6000, rtcpPort: 6101 }, 'a=rtcp of the offer gives the RTCP port');
  const reoffer = parseSdp(endpoint().offer());
  t.equal(reoffer.media.length, 1, 'a fresh endpoint offers one m-line');
  const e = endpoint();
  e.answerOffer(video);
  t.same(parseSdp(e.offer()).media.map((m) => `${m.type} ${m.port}`), ['video 0', 'audio 0', 'audio 4000', 'video 0'], 'a later offer keeps the rejected m-lines (RFC 3264 §8.2)');

  const avpf = ok(endpoint().answerOffer(peer('0', pcmu, { protocol: 'RTP/AVPF' })), 'AVPF');
  t.equal(parseSdp(avpf.sdp).audio.protocol, 'RTP/AVPF', 'the profile is mirrored');
});

t.test('offers that cannot be answered', async (t) => {
  const cases = [
    { name: 'no common codec', offer: peer('18 3', ['a=rtpmap:18 G729/8000', 'a=rtpmap:3 GSM/8000']), status: 488 },
    { name: 'opus offered without /2 is another codec', offer: peer('111', ['a=rtpmap:111 opus/48000']), status: 488 },
    { name: 'only telephone-event and CN', offer: peer('101 13', ['a=rtpmap:101 telephone-event/8000']), status: 488 },
    { name: 'no audio stream', offer: sdp('v=0', 'o=- 1 1 IN IP4 198.51.100.7', 's=-', 'c=IN IP4 198.51.100.7', 't=0 0', 'm=video 6000 RTP/AVP 31'), status: 488 },
    { name: 'not SDP', offer: 'hello', status: 400 },
    { name: 'audio without c=', offer: sdp('v=0', 'o=- 1 1 IN IP4 198.51.100.7', 's=-', 't=0 0', 'm=audio 6000 RTP/AVP 0'), status: 400 },
  ];
  for (const c of cases) {
    const e = endpoint(['PCMU', 'opus']);
    const r = e.answerOffer(c.offer);
    t.equal(r.ok ? 200 : r.status, c.status, `${c.name}: ${c.status}`);
    t.equal(e.negotiated, undefined, `${c.name}: nothing negotiated`);
  }
});

t.test('taking the answer to our offer', async (t) => {
  const cases = [
    {
      name: 'renumbered opus and events',
      answer: peer('100 105', ['a=rtpmap:100 opus/48000/2', 'a=rtpmap:105 telephone-event/48000']),
      codec: 'opus',
      sendPt: 100,
      event: { pt: 105, rate: 48000 },
      receive: ['100:audio', '105:event/48000', '96:audio'],
      direction: 'sendrecv',
    },
    {
      name: 'several codecs answered: the first is used, only it is decoded',
      answer: peer('8 0 101', ['a=rtpmap:8 PCMA/8000', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000']),
      codec: 'PCMA',
      sendPt: 8,
      event: { pt: 101, rate: 8000 },
      receive: ['101:event/8000', '8:audio'],
      direction: 'sendrecv',
    },
    {
      name: 'CN listed first is not taken for the codec',
      answer: peer('13 0', ['a=rtpmap:0 PCMU/8000']),
      codec: 'PCMU',
      sendPt: 0,
      event: undefined,
      receive: ['0:audio', '13:cn'],
      direction: 'sendrecv',
    },
    {
      name: 'a recvonly answer leaves us sendonly',
      answer: peer('9', ['a=rtpmap:9 G722/8000', 'a=recvonly']),
      codec: 'G722',
      sendPt: 9,
      event: undefined,
      receive: ['9:audio'],
      direction: 'sendonly',
    },
  ];
  for (const c of cases) {
    const e = endpoint();
    const offer = e.offer();
    const r = ok(e.takeAnswer(c.answer), c.name);
    t.equal(r.sdp, offer, `${c.name}: the result carries our offer`);
    t.equal(r.media.codec.info.name, c.codec, `${c.name}: codec`);
    t.equal(r.media.sendPt, c.sendPt, `${c.name}: we send with the answerer's number (RFC 3264 §5.1)`);
    t.same(r.media.event, c.event, `${c.name}: telephone-event`);
    t.same(receiveOf(r.media), c.receive, `${c.name}: what may arrive`);
    t.equal(r.media.direction, c.direction, `${c.name}: direction`);
    t.equal(e.negotiated, r.media, `${c.name}: kept as negotiated`);
  }

  const e = endpoint(['PCMU']);
  t.same(e.takeAnswer(peer('0', ['a=rtpmap:0 PCMU/8000'])), { ok: false, status: 400, reason: 'no offer outstanding' }, 'an answer without an offer is refused');
  e.offer();
  const refused = e.takeAnswer(peer('8', ['a=rtpmap:8 PCMA/8000']));
  t.same(refused.ok ? 200 : refused.status, 488, 'an answer with a codec we did not offer: 488');
  t.same(e.takeAnswer('garbage').ok ? 200 : 400, 400, 'a malformed answer: 400');
  const early = ok(e.takeAnswer(peer('0', ['a=rtpmap:0 PCMU/8000'])), '183');
  const final = ok(e.takeAnswer(peer('0', ['a=rtpmap:0 PCMU/8000'])), '200');
  t.equal(final.sdp, early.sdp, 'the same answer repeated in the 2xx after a 183 is taken again');
  const held = ok(e.takeAnswer(peer('0', ['a=rtpmap:0 PCMU/8000'], { address: '0.0.0.0' })), 'c=0.0.0.0 answer');
  t.equal(held.media.remote, undefined, 'c=0.0.0.0 in the answer: nowhere to send');
});

t.test('o= version increments by one only when the description changes (RFC 3264 §8)', async (t) => {
  const e = endpoint();
  const steps: { name: string; make: () => string; version: number }[] = [
    { name: 'first offer', make: () => e.offer(), version: 1 },
    { name: 'same offer again (session refresh)', make: () => e.offer(), version: 1 },
    { name: 'hold', make: () => e.offer('sendonly'), version: 2 },
    { name: 'hold repeated', make: () => e.offer('sendonly'), version: 2 },
    { name: 'resume', make: () => e.offer(), version: 3 },
    { name: 'answering a PCMU offer', make: () => ok(e.answerOffer(peer('0', ['a=rtpmap:0 PCMU/8000'])), 'answer').sdp, version: 4 },
    { name: 'the same offer answered again', make: () => ok(e.answerOffer(peer('0', ['a=rtpmap:0 PCMU/8000'])), 'answer').sdp, version: 4 },
    { name: 'a hold offer answered', make: () => ok(e.answerOffer(peer('0', ['a=rtpmap:0 PCMU/8000', 'a=sendonly'])), 'answer').sdp, version: 5 },
  ];
  const sessions = new Set<string>();
  for (const s of steps) {
    const o = originOf(s.make());
    t.equal(o.version, s.version, `${s.name}: version ${s.version}`);
    t.equal(o.address, '192.0.2.1', `${s.name}: our address in o=`);
    sessions.add(o.session);
  }
  t.equal(sessions.size, 1, 'the session id never changes');
  t.not(originOf(endpoint().offer()).session, originOf(new EndpointSdp(registry.ordered(ALL), new SeededRandom(10), { address: () => '192.0.2.1', port: () => 4000 }).offer()).session, 'the session id comes from the random source');
});

// ---- SRTP keyed by SDES (RFC 4568) ----

const sec = (policy: LegSecurity['policy'], transport: 'udp' | 'tls', allowPlain = false): LegSecurity => ({ policy, keysAllowed: transport === 'tls' || allowPlain, transport });
const pcmuLines = ['a=rtpmap:0 PCMU/8000'];
/** The peer's keys: tag 1 _80 and tag 2 _32, from a seed of their own. */
const peerKeys = [generateSdesCrypto(new SeededRandom(77), 1, 'AES_CM_128_HMAC_SHA1_80'), generateSdesCrypto(new SeededRandom(78), 2, 'AES_CM_128_HMAC_SHA1_32')];
const cryptoLines = (...keys: SdesCrypto[]): string[] => keys.map((k) => `a=crypto:${formatSdesCrypto(k)}`);
const cryptoOf = (text: string): SdesCrypto[] =>
  [...text.matchAll(/^a=crypto:(.*)\r$/gm)].map((m) => {
    const r = parseSdesCrypto(m[1]!);
    if (!r.ok) throw new Error(r.reason);
    return r.crypto;
  });
const mLine = (text: string): string => text.split('\r\n').find((l) => l.startsWith('m=audio'))!;

t.test('answering offers under each SRTP policy (RFC 4568 §7.1.2)', async (t) => {
  const offers = {
    plain: peer('0', pcmuLines),
    'AVP+crypto': peer('0', [...pcmuLines, ...cryptoLines(...peerKeys)]),
    'SAVP+crypto': peer('0', [...pcmuLines, ...cryptoLines(...peerKeys)], { protocol: 'RTP/SAVP' }),
    'SAVPF+crypto': peer('0', [...pcmuLines, ...cryptoLines(peerKeys[1]!)], { protocol: 'RTP/SAVPF' }),
    'SAVP bare': peer('0', pcmuLines, { protocol: 'RTP/SAVP' }),
    'AVP+GCM only': peer('0', [...pcmuLines, 'a=crypto:1 AEAD_AES_256_GCM inline:' + 'A'.repeat(59) + '=']),
  };
  type Expect = 'plain' | { protocol: string; tag: number } | 488;
  const cases: { name: string; security: LegSecurity; offer: keyof typeof offers; expect: Expect }[] = [
    { name: 'off: plain offer', security: sec('off', 'tls'), offer: 'plain', expect: 'plain' },
    { name: 'off: a=crypto on RTP/AVP is ignored', security: sec('off', 'tls'), offer: 'AVP+crypto', expect: 'plain' },
    { name: 'off: RTP/SAVP is refused', security: sec('off', 'tls'), offer: 'SAVP+crypto', expect: 488 },
    { name: 'optional over TLS: plain offer stays plain', security: sec('optional', 'tls'), offer: 'plain', expect: 'plain' },
    { name: 'optional over TLS: best-effort offer gets SRTP on RTP/AVP', security: sec('optional', 'tls'), offer: 'AVP+crypto', expect: { protocol: 'RTP/AVP', tag: 1 } },
    { name: 'optional over TLS: RTP/SAVP answered RTP/SAVP', security: sec('optional', 'tls'), offer: 'SAVP+crypto', expect: { protocol: 'RTP/SAVP', tag: 1 } },
    { name: 'optional over TLS: RTP/SAVPF answered RTP/SAVPF with the _32 tag', security: sec('optional', 'tls'), offer: 'SAVPF+crypto', expect: { protocol: 'RTP/SAVPF', tag: 2 } },
    { name: 'optional over TLS: RTP/SAVP without a=crypto is refused', security: sec('optional', 'tls'), offer: 'SAVP bare', expect: 488 },
    { name: 'optional over TLS: only unsupported suites on RTP/AVP: plain', security: sec('optional', 'tls'), offer: 'AVP+GCM only', expect: 'plain' },
    { name: 'optional over UDP: keys are not taken, RTP/AVP answered plain', security: sec('optional', 'udp'), offer: 'AVP+crypto', expect: 'plain' },
    { name: 'optional over UDP: RTP/SAVP refused', security: sec('optional', 'udp'), offer: 'SAVP+crypto', expect: 488 },
    { name: 'mandatory over TLS: RTP/SAVP', security: sec('mandatory', 'tls'), offer: 'SAVP+crypto', expect: { protocol: 'RTP/SAVP', tag: 1 } },
    { name: 'mandatory over TLS: best-effort offer accepted with SRTP', security: sec('mandatory', 'tls'), offer: 'AVP+crypto', expect: { protocol: 'RTP/AVP', tag: 1 } },
    { name: 'mandatory over TLS: plain offer refused', security: sec('mandatory', 'tls'), offer: 'plain', expect: 488 },
    { name: 'mandatory over TLS: only unsupported suites refused', security: sec('mandatory', 'tls'), offer: 'AVP+GCM only', expect: 488 },
    { name: 'mandatory over UDP: keys over plain signalling refused', security: sec('mandatory', 'udp'), offer: 'SAVP+crypto', expect: 488 },
    { name: 'mandatory over UDP, plain signalling allowed: RTP/SAVP', security: sec('mandatory', 'udp', true), offer: 'SAVP+crypto', expect: { protocol: 'RTP/SAVP', tag: 1 } },
  ];
  for (const c of cases) {
    const r = endpoint(['PCMU'], '192.0.2.1', c.security).answerOffer(offers[c.offer]);
    if (c.expect === 488) {
      t.ok(!r.ok && r.status === 488 && r.srtp === true, `${c.name}: 488 by the SRTP policy`, { result: r });
      if (!r.ok) t.notMatch(r.reason, /inline:/, `${c.name}: the reason holds no key`);
      continue;
    }
    const a = ok(r, c.name);
    const answered = cryptoOf(a.sdp);
    if (c.expect === 'plain') {
      t.match(mLine(a.sdp), /^m=audio 4000 RTP\/AVP 0$/, `${c.name}: RTP/AVP`);
      t.same(answered, [], `${c.name}: no a=crypto`);
      t.equal(a.media.srtp, undefined, `${c.name}: plain RTP`);
      continue;
    }
    const expect = c.expect;
    const offered = peerKeys.find((k) => k.tag === expect.tag)!;
    t.equal(mLine(a.sdp), `m=audio 4000 ${expect.protocol} 0`, `${c.name}: profile mirrored`);
    t.equal(answered.length, 1, `${c.name}: one a=crypto (RFC 4568 §5.1.2)`);
    t.equal(answered[0]!.tag, expect.tag, `${c.name}: the accepted tag`);
    t.equal(answered[0]!.suite, offered.suite, `${c.name}: the accepted suite`);
    t.notOk(answered[0]!.keys[0]!.masterKey.equals(offered.keys[0]!.masterKey), `${c.name}: our own key, not the offer's`);
    t.same(formatSdesCrypto(a.media.srtp!.remote), formatSdesCrypto(offered), `${c.name}: the peer's key unprotects what arrives`);
    t.same(formatSdesCrypto(a.media.srtp!.local), formatSdesCrypto(answered[0]!), `${c.name}: the answered key protects what we send`);
  }
});

t.test('our offer under each SRTP policy, and taking the answer (RFC 4568 §7.1.3)', async (t) => {
  const offerCases: { name: string; security: LegSecurity; protocol?: string; crypto?: number; refusal?: RegExp }[] = [
    { name: 'off: plain RTP/AVP', security: sec('off', 'tls'), protocol: 'RTP/AVP', crypto: 0 },
    { name: 'optional over TLS: RTP/AVP with both suites', security: sec('optional', 'tls'), protocol: 'RTP/AVP', crypto: 2 },
    { name: 'optional over UDP: plain, keys stay home', security: sec('optional', 'udp'), protocol: 'RTP/AVP', crypto: 0 },
    { name: 'mandatory over TLS: RTP/SAVP with both suites', security: sec('mandatory', 'tls'), protocol: 'RTP/SAVP', crypto: 2 },
    { name: 'mandatory over UDP, allowed: RTP/SAVP', security: sec('mandatory', 'udp', true), protocol: 'RTP/SAVP', crypto: 2 },
    { name: 'mandatory over UDP: no offer at all', security: sec('mandatory', 'udp'), refusal: /mandatory.*udp/ },
  ];
  for (const c of offerCases) {
    const e = endpoint(['PCMU'], '192.0.2.1', c.security);
    if (c.refusal) {
      t.match(e.offerRefusal, c.refusal, `${c.name}: offerRefusal says why`);
      const offer = e.offer();
      t.equal(mLine(offer), 'm=audio 4000 RTP/SAVP 0 101 13', `${c.name}: RTP/SAVP ...`);
      t.same(cryptoOf(offer), [], `${c.name}: ... without a key, which the far end must reject`);
      for (const answer of [peer('0', pcmuLines), peer('0', [...pcmuLines, ...cryptoLines(peerKeys[0]!)], { protocol: 'RTP/SAVP' })]) {
        const r = e.takeAnswer(answer);
        t.ok(!r.ok && r.status === 488 && r.srtp === true, `${c.name}: an answer to it is refused anyway`, { result: r });
      }
      continue;
    }
    t.equal(e.offerRefusal, undefined, `${c.name}: may offer`);
    const offer = e.offer();
    t.equal(mLine(offer), `m=audio 4000 ${c.protocol} 0 101 13`, `${c.name}: m-line`);
    const crypto = cryptoOf(offer);
    t.same(crypto.map((k) => `${k.tag} ${k.suite}`), c.crypto ? ['1 AES_CM_128_HMAC_SHA1_80', '2 AES_CM_128_HMAC_SHA1_32'].slice(0, c.crypto) : [], `${c.name}: a=crypto tags`);
  }

  const answerWith = (keys: SdesCrypto[], protocol = 'RTP/AVP') => peer('0', [...pcmuLines, ...cryptoLines(...keys)], { protocol });
  const taking: { name: string; security: LegSecurity; answer: string; expect: 'plain' | number | 488 }[] = [
    { name: 'best effort answered with tag 2', security: sec('optional', 'tls'), answer: answerWith([peerKeys[1]!]), expect: 2 },
    { name: 'best effort answered plain', security: sec('optional', 'tls'), answer: answerWith([]), expect: 'plain' },
    { name: 'RTP/SAVP answered with tag 1', security: sec('mandatory', 'tls'), answer: answerWith([peerKeys[0]!], 'RTP/SAVP'), expect: 1 },
    { name: 'RTP/SAVP answered without a=crypto', security: sec('mandatory', 'tls'), answer: answerWith([], 'RTP/SAVP'), expect: 488 },
    { name: 'a tag we did not offer', security: sec('optional', 'tls'), answer: answerWith([{ ...peerKeys[0]!, tag: 7 }]), expect: 488 },
    { name: 'tag 1 answered with the _32 suite', security: sec('optional', 'tls'), answer: answerWith([{ ...peerKeys[1]!, tag: 1 }]), expect: 488 },
    { name: 'RTP/SAVP answer to a plain offer', security: sec('off', 'tls'), answer: answerWith([peerKeys[0]!], 'RTP/SAVP'), expect: 488 },
    { name: 'a=crypto answering a plain offer is ignored', security: sec('off', 'tls'), answer: answerWith([peerKeys[0]!]), expect: 'plain' },
  ];
  for (const c of taking) {
    const e = endpoint(['PCMU'], '192.0.2.1', c.security);
    const ours = cryptoOf(e.offer());
    const r = e.takeAnswer(c.answer);
    if (c.expect === 488) {
      t.ok(!r.ok && r.status === 488 && r.srtp === true, `${c.name}: 488 by the SRTP policy`, { result: r });
      continue;
    }
    const a = ok(r, c.name);
    if (c.expect === 'plain') {
      t.equal(a.media.srtp, undefined, `${c.name}: plain RTP`);
      continue;
    }
    t.equal(formatSdesCrypto(a.media.srtp!.local), formatSdesCrypto(ours.find((k) => k.tag === c.expect)!), `${c.name}: our offered key of that tag protects what we send`);
    t.equal(formatSdesCrypto(a.media.srtp!.remote), formatSdesCrypto(peerKeys.find((k) => k.suite === a.media.srtp!.local.suite)!), `${c.name}: the answer's key unprotects`);
  }
});

t.test('re-INVITEs keep the keys in use (RFC 4568 §7.1.4) and the RTP/SAVP profile', async (t) => {
  const e = endpoint(['PCMU'], '192.0.2.1', sec('optional', 'tls'));
  const first = ok(e.answerOffer(peer('0', [...pcmuLines, ...cryptoLines(peerKeys[0]!)], { protocol: 'RTP/SAVP' })), 'first offer');
  const again = ok(e.answerOffer(peer('0', [...pcmuLines, ...cryptoLines(peerKeys[0]!), 'a=sendonly'], { protocol: 'RTP/SAVP' })), 'hold re-offer, same key');
  t.equal(formatSdesCrypto(again.media.srtp!.local), formatSdesCrypto(first.media.srtp!.local), 'the peer kept its key: we keep ours');
  const rekeyed = generateSdesCrypto(new SeededRandom(99), 1, 'AES_CM_128_HMAC_SHA1_80');
  const third = ok(e.answerOffer(peer('0', [...pcmuLines, ...cryptoLines(rekeyed)], { protocol: 'RTP/SAVP' })), 're-key');
  t.equal(formatSdesCrypto(third.media.srtp!.remote), formatSdesCrypto(rekeyed), 'the new peer key is taken');
  const reoffer = e.offer('sendonly');
  t.equal(mLine(reoffer), 'm=audio 4000 RTP/SAVP 0 101 13', 'our re-offer keeps RTP/SAVP once settled on it');
  const ours = cryptoOf(reoffer).find((k) => k.suite === third.media.srtp!.local.suite)!;
  t.same(ours.keys[0]!.masterKey, third.media.srtp!.local.keys[0]!.masterKey, 'and repeats our sending key for the suite in use');
  const peerInline = formatSdesCrypto(peerKeys[0]!).split(' ')[2]!;
  t.notOk(first.sdp.includes(peerInline) || reoffer.includes(peerInline), "our descriptions never echo the peer's key");
});
