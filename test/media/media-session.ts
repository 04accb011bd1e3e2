import t from 'tap';
import { relayedMediaFactory } from '../../src/media/media-session.ts';
import type { MediaSession, SdpResult } from '../../src/media/media-session.ts';
import type { LegName, MediaRelay, RelayPeer, RelayStats } from '../../src/media/rtp-relay.ts';
import { parseSdp } from '../../src/media/sdp.ts';
import type { PacketTranscoder } from '../../src/media/transcoder.ts';
import type { ParsedSdp } from '../../src/media/sdp.ts';
import { SeededRandom } from '../../src/runtime/random.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import type { AudioCodec } from '../../src/media/codec/codec.ts';
import { pcma, pcmu } from '../../src/media/codec/g711.ts';
import { g722 } from '../../src/media/codec/g722.ts';
import { encodeRtpHeader } from '../../src/media/rtp-packet.ts';
import { catalog, LinearResamplerFactory, sine } from '../helpers/fake-codecs.ts';

/** A relay that records what the media session asks of it. */
class FakeRelay implements MediaRelay {
  readonly id = 'relay-1';
  readonly remotes: Partial<Record<LegName, RelayPeer>> = {};
  readonly remoteCalls: LegName[] = [];
  readonly maps: Partial<Record<LegName, [number, number][]>> = {};
  echo = false;
  closes = 0;
  localPort(leg: LegName): number {
    return leg === 'a' ? 20000 : 20002;
  }
  setRemote(leg: LegName, peer: RelayPeer): void {
    this.remotes[leg] = peer;
    this.remoteCalls.push(leg);
  }
  setPayloadMap(from: LegName, map: ReadonlyMap<number, number>): void {
    this.maps[from] = [...map].sort((x, y) => x[0] - y[0]);
  }
  readonly transcoders: Partial<Record<LegName, PacketTranscoder | undefined>> = {};
  setTranscoder(from: LegName, transcoder: PacketTranscoder | undefined): void {
    this.transcoders[from]?.close();
    this.transcoders[from] = transcoder;
  }
  setEcho(on: boolean): void {
    this.echo = on;
  }
  idleMs(leg: LegName): number {
    return leg === 'a' ? 1500 : 40;
  }
  stats(): RelayStats {
    return { forwarded: 0, dropped: 0, consumed: 0, received: 0 };
  }
  close(): void {
    this.closes++;
  }
}

const sdp = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

const BARESIP = sdp(
  'v=0', 'o=- 2890844526 2890844526 IN IP4 192.168.1.20', 's=-', 'c=IN IP4 192.168.1.20', 't=0 0',
  'm=audio 10000 RTP/AVP 0 8 9 96 101',
  'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:9 G722/8000', 'a=rtpmap:96 opus/48000/2',
  'a=fmtp:96 stereo=1;sprop-stereo=1', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', 'a=sendrecv', 'a=ptime:20',
);

const LINPHONE = sdp(
  'v=0', 'o=alice 2218 3443 IN IP4 192.168.1.30', 's=Talk', 'c=IN IP4 192.168.1.30', 't=0 0',
  'm=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100',
  'a=rtpmap:96 opus/48000/2', 'a=fmtp:96 useinbandfec=1', 'a=rtpmap:97 speex/16000', 'a=rtpmap:98 speex/8000',
  'a=fmtp:18 annexb=yes', 'a=rtpmap:101 telephone-event/48000', 'a=rtpmap:99 telephone-event/16000',
  'a=rtpmap:100 telephone-event/8000', 'a=rtcp:7079',
  'm=video 9078 RTP/AVP 102 103', 'a=rtpmap:102 VP8/90000', 'a=rtpmap:103 H264/90000',
);

/** A peer's SDP with one audio stream. */
function peer(address: string, port: number, formats: string, attrs: string[], version = 1, ip = 'IP4'): string {
  return sdp('v=0', `o=- 77 ${version} IN ${ip} ${address}`, 's=-', `c=IN ${ip} ${address}`, 't=0 0', `m=audio ${port} RTP/AVP ${formats}`, ...attrs);
}

/** b (a trunk, say) answers baresip's offer with opus renumbered 111 and telephone-event 100. */
const B_ANSWER_OPUS = peer('203.0.113.9', 30000, '111 100', ['a=rtpmap:111 opus/48000/2', 'a=fmtp:111 useinbandfec=1', 'a=rtpmap:100 telephone-event/8000', 'a=fmtp:100 0-16', 'a=ptime:40']);

function body(r: SdpResult): string {
  if (!r.ok) throw new Error(`expected an SDP, got ${r.status} ${r.reason}`);
  return r.sdp;
}

function origin(text: string): string[] {
  return /^o=(.*)\r$/m.exec(text)![1]!.split(' ');
}

function formats(p: ParsedSdp): string[] {
  return [...p.audio.codecs, ...p.audio.telephoneEvents].map((c) => `${c.pt} ${c.name}/${c.rate}${c.channels ? `/${c.channels}` : ''}`);
}

async function session(): Promise<{ media: MediaSession; relay: FakeRelay }> {
  const relay = new FakeRelay();
  const media = await relayedMediaFactory({ open: async () => relay }, { random: new SeededRandom(7) }).create();
  media.setLocalAddress('a', '192.168.1.2');
  media.setLocalAddress('b', '198.51.100.1');
  return { media, relay };
}

t.test('offers from softphones are forwarded with the supported codecs, the gateway address and port', async (t) => {
  const cases: [string, string, string[], object][] = [
    ['baresip PCMU/PCMA/G722/opus', BARESIP, ['0 PCMU/8000', '8 PCMA/8000', '9 G722/8000', '96 opus/48000/2', '101 telephone-event/8000'], { ptime: 20, direction: 'sendrecv' }],
    ['linphone: speex, G.729 and telephone-event/16000 dropped, video not offered', LINPHONE,
      ['96 opus/48000/2', '0 PCMU/8000', '8 PCMA/8000', '101 telephone-event/48000', '100 telephone-event/8000'], { direction: 'sendrecv' }],
    ['PCMA only', peer('10.0.0.5', 4000, '8', []), ['8 PCMA/8000'], {}],
    ['G722 only', peer('10.0.0.5', 4000, '9', ['a=rtpmap:9 G722/8000']), ['9 G722/8000'], {}],
    ['opus only, mixed-case name', peer('10.0.0.5', 4000, '107', ['a=rtpmap:107 OPUS/48000/2']), ['107 OPUS/48000/2'], {}],
  ];
  for (const [name, offer, expected, audio] of cases) {
    const { media, relay } = await session();
    const out = body(media.offer('a', offer));
    const parsed = parseSdp(out);
    t.same(formats(parsed), expected, `${name}: formats`);
    t.match(parsed.audio, { address: '198.51.100.1', port: 20002, rtcpPort: 20003, ...audio }, `${name}: b-facing address and relay port`);
    t.equal(parsed.media.length, 1, `${name}: only audio is offered`);
    t.match(out, /^s=-\r\nc=IN IP4 198\.51\.100\.1\r\nt=0 0\r\n/m, `${name}: s=, c=, t=`);
    t.equal(relay.remotes.a?.address, parseSdp(offer).audio.address, `${name}: caller media peer recorded`);
  }
  const { media, relay } = await session();
  media.offer('a', LINPHONE);
  t.same(relay.remotes.a, { address: '192.168.1.30', port: 7078, rtcpPort: 7079 }, 'a=rtcp passed to the relay');
  t.match(body(media.offer('a', BARESIP)), /^a=fmtp:96 stereo=1;sprop-stereo=1\r$/m, 'fmtp copied');
});

t.test('answers map payload numbers per leg (RFC 3264 §5.1) and mirror the offer', async (t) => {
  const { media, relay } = await session();
  body(media.offer('a', BARESIP));
  const answer = body(media.answer('b', B_ANSWER_OPUS));
  const parsed = parseSdp(answer);
  t.same(formats(parsed), ['96 opus/48000/2', '101 telephone-event/8000'], 'a gets its own numbers for what b chose');
  t.match(parsed.audio, { address: '192.168.1.2', port: 20000, rtcpPort: 20001, ptime: 40, direction: 'sendrecv' }, 'a-facing address, port, b\'s ptime');
  t.equal(parsed.audio.codecs[0]!.fmtp, 'useinbandfec=1', 'the answerer\'s fmtp');
  t.equal(parsed.audio.telephoneEvent!.fmtp, '0-16', 'telephone-event fmtp from the answerer');
  t.same(relay.remotes.b, { address: '203.0.113.9', port: 30000 }, 'callee media peer recorded');
  t.same(relay.maps.a, [[96, 111], [101, 100]], 'from a: opus 96→111, telephone-event 101→100');
  t.same(relay.maps.b, [[96, 96], [100, 101], [101, 101], [111, 96]], 'from b: its own 111→96 and 100→101, the offered numbers unchanged');
  t.equal(answer.split('\r\n').filter((l) => l.startsWith('m=')).length, 1, 'one m-line like the offer');
});

t.test('an answer seen in a 18x and again in the 2xx is applied to the same offer', async (t) => {
  const { media, relay } = await session();
  body(media.offer('a', BARESIP));
  const early = body(media.answer('b', B_ANSWER_OPUS));
  t.equal(body(media.answer('b', B_ANSWER_OPUS)), early, 'the same answer again gives the same SDP, same version');
  const moved = body(media.answer('b', B_ANSWER_OPUS.replace('m=audio 30000', 'm=audio 30010')));
  t.same(relay.remotes.b, { address: '203.0.113.9', port: 30010 }, 'a changed 2xx answer re-targets the relay');
  t.equal(moved, early, 'leg a sees no change');
  t.match(media.answer('a', B_ANSWER_OPUS), { ok: false, status: 400 }, 'the offering leg cannot answer');
  body(media.offer('b', B_ANSWER_OPUS));
  t.match(media.answer('b', B_ANSWER_OPUS), { ok: false, status: 400 }, 'a new offer ends the earlier exchange');
});

t.test('the answer keeps every offered m-line; the video stream is rejected with port 0 (RFC 3264 §6)', async (t) => {
  const { media } = await session();
  const offer = body(media.offer('a', LINPHONE));
  t.equal(parseSdp(offer).media.length, 1, 'only audio goes to b');
  const answer = body(media.answer('b', peer('203.0.113.9', 30000, '0 100', ['a=rtpmap:100 telephone-event/8000'])));
  const parsed = parseSdp(answer);
  t.same(parsed.media.map((m) => [m.type, m.port, m.formats]), [['audio', 20000, '0 100'], ['video', 0, '102 103']], 'm-lines in order');
  t.same(formats(parsed), ['0 PCMU/8000', '100 telephone-event/8000'], 'linphone numbers');
});

t.test('no common codec or an unusable body fails with the SIP status', async (t) => {
  const cases: [string, (m: MediaSession) => SdpResult, 400 | 488][] = [
    ['offer with only speex and G.729', (m) => m.offer('a', peer('10.0.0.5', 4000, '97 18', ['a=rtpmap:97 speex/16000'])), 488],
    ['offer with only telephone-event', (m) => m.offer('a', peer('10.0.0.5', 4000, '101', ['a=rtpmap:101 telephone-event/8000'])), 488],
    ['garbage offer', (m) => m.offer('a', 'INVITE sip:bob@example.com SIP/2.0\r\n'), 400],
    ['answer without an offer', (m) => m.answer('b', B_ANSWER_OPUS), 400],
    ['answer from the offering leg', (m) => (m.offer('a', BARESIP), m.answer('a', B_ANSWER_OPUS)), 400],
    ['answer with a codec that was not offered', (m) => (m.offer('a', BARESIP), m.answer('b', peer('203.0.113.9', 30000, '18', []))), 488],
    ['answer rejecting audio with port 0', (m) => (m.offer('a', BARESIP), m.answer('b', peer('203.0.113.9', 0, '0', []))), 488],
    ['garbage answer', (m) => (m.offer('a', BARESIP), m.answer('b', 'v=1\r\n')), 400],
    ['garbage offer to the echo target', (m) => m.answerLocally('a', 'v=0\r\nm=audio x\r\n'), 400],
    ['echo of an offer without a supported codec', (m) => m.answerLocally('a', peer('10.0.0.5', 4000, '18', [])), 488],
  ];
  for (const [name, run, status] of cases) {
    const { media } = await session();
    const r = run(media);
    t.match(r, { ok: false, status }, name);
    if (!r.ok) t.ok(r.reason.length > 0, `${name}: has a reason`);
  }
});

t.test('hold and resume pass through and bump each leg\'s o= version (RFC 3264 §8)', async (t) => {
  const { media, relay } = await session();
  const offer1 = body(media.offer('a', BARESIP));
  const answer1 = body(media.answer('b', B_ANSWER_OPUS));
  const [user, sid, v1] = origin(offer1);
  t.same([user, origin(answer1)[0]], ['hookswitch', 'hookswitch'], 'gateway owns o= on both legs');
  t.not(origin(answer1)[1], sid, 'each leg has its own session id');

  const hold = BARESIP.replace('a=sendrecv', 'a=sendonly');
  const offer2 = body(media.offer('a', hold));
  t.equal(parseSdp(offer2).audio.direction, 'sendonly', 'sendonly offered to b');
  t.same(origin(offer2), [user, sid, String(Number(v1) + 1), 'IN', 'IP4', '198.51.100.1'], 'same o= with version + 1 on leg b');
  const answer2 = body(media.answer('b', B_ANSWER_OPUS.replace('a=ptime:40', 'a=ptime:40\r\na=recvonly')));
  t.equal(parseSdp(answer2).audio.direction, 'recvonly', 'recvonly answered to a');
  t.equal(Number(origin(answer2)[2]), Number(origin(answer1)[2]) + 1, 'version + 1 on leg a');

  const offer3 = body(media.offer('a', BARESIP));
  t.equal(parseSdp(offer3).audio.direction, 'sendrecv', 'resume offered');
  t.equal(Number(origin(offer3)[2]), Number(v1) + 2, 'version + 1 again');
  const offer4 = body(media.offer('a', BARESIP));
  t.equal(origin(offer4)[2], origin(offer3)[2], 'an unchanged description keeps its version');
  t.equal(offer4, offer3, 'and is identical');

  const legacy = BARESIP.replace('c=IN IP4 192.168.1.20', 'c=IN IP4 0.0.0.0');
  const calls = relay.remoteCalls.length;
  t.equal(parseSdp(body(media.offer('a', legacy))).audio.direction, 'sendonly', 'c=0.0.0.0 hold offered as sendonly');
  t.equal(relay.remoteCalls.length, calls, 'the relay is not pointed at 0.0.0.0');
});

t.test('the callee can offer: the gateway keeps its numbers and m-lines on leg a', async (t) => {
  const { media, relay } = await session();
  const answerToA = body(media.offer('a', LINPHONE) && media.answer('b', B_ANSWER_OPUS));
  t.same(formats(parseSdp(answerToA)), ['96 opus/48000/2', '100 telephone-event/8000'], 'first exchange');
  // b puts the call on hold with its own numbering and a new codec whose number collides.
  const bOffer = peer('203.0.113.9', 30000, '111 9 100 96', [
    'a=rtpmap:111 opus/48000/2', 'a=rtpmap:9 G722/8000', 'a=rtpmap:100 telephone-event/8000', 'a=rtpmap:96 telephone-event/48000', 'a=sendonly',
  ], 2);
  const toA = parseSdp(body(media.offer('b', bOffer)));
  t.same(formats(toA), ['96 opus/48000/2', '9 G722/8000', '100 telephone-event/8000', '97 telephone-event/48000'],
    'opus keeps 96 on leg a (RFC 3264 §8.3.2); the new event format moves off the taken 96');
  t.same(toA.media.map((m) => [m.type, m.port]), [['audio', 20000], ['video', 0]], 'the rejected video m-line stays (RFC 3264 §8)');
  t.equal(toA.audio.direction, 'sendonly', 'hold passes to a');
  const aAnswer = peer('192.168.1.30', 7078, '96 100', ['a=rtpmap:96 opus/48000/2', 'a=rtpmap:100 telephone-event/8000', 'a=recvonly'], 2);
  const toB = parseSdp(body(media.answer('a', aAnswer)));
  t.same(formats(toB), ['111 opus/48000/2', '100 telephone-event/8000'], 'b gets its own numbers back');
  t.match(toB.audio, { address: '198.51.100.1', port: 20002, direction: 'recvonly' }, 'b-facing answer');
  t.same(relay.maps.a, [[96, 111], [100, 100]], 'from a to b');
  t.same(relay.maps.b, [[100, 100], [111, 96]], 'from b to a: the gateway now uses b\'s numbers on leg b');
});

t.test('IPv6 local address gives IN IP6 in o= and c=', async (t) => {
  const { media } = await session();
  media.setLocalAddress('b', '2001:db8::10');
  const out = body(media.offer('a', BARESIP));
  t.same(origin(out).slice(3), ['IN', 'IP6', '2001:db8::10'], 'o=');
  t.match(out, /^c=IN IP6 2001:db8::10\r$/m, 'c=');
  const v6peer = peer('2001:db8::99', 30000, '0', [], 1, 'IP6');
  const answer = body(media.answer('b', v6peer));
  t.match(answer, /^c=IN IP4 192\.168\.1\.2\r$/m, 'leg a stays IPv4');
});

t.test('the echo target answers with the first supported codec and turns the relay into an echo', async (t) => {
  const cases: [string, string, string[], string, string][] = [
    ['baresip', BARESIP, ['0 PCMU/8000', '101 telephone-event/8000'], 'sendrecv', 'sendrecv'],
    ['linphone: opus with telephone-event of the same clock (RFC 4733)', LINPHONE, ['96 opus/48000/2', '101 telephone-event/48000'], 'sendrecv', 'sendrecv'],
    ['hold from the caller', BARESIP.replace('a=sendrecv', 'a=sendonly'), ['0 PCMU/8000', '101 telephone-event/8000'], 'sendonly', 'recvonly'],
    ['G722 without telephone-event', peer('10.0.0.5', 4000, '9', []), ['9 G722/8000'], 'sendrecv', 'sendrecv'],
  ];
  for (const [name, offer, expected, , direction] of cases) {
    const { media, relay } = await session();
    const out = parseSdp(body(media.answerLocally('a', offer)));
    t.same(formats(out), expected, `${name}: formats in the offerer's numbers`);
    t.match(out.audio, { address: '192.168.1.2', port: 20000, direction }, `${name}: direction mirrored`);
    t.equal(out.media.length, parseSdp(offer).media.length, `${name}: m-lines mirrored`);
    t.equal(relay.echo, true, `${name}: relay echoes`);
    t.equal(relay.remotes.a?.address, parseSdp(offer).audio.address, `${name}: caller peer recorded`);
  }
});

t.test('reoffer describes the negotiated media to a new target on leg b', async (t) => {
  const { media, relay } = await session();
  t.throws(() => media.reoffer('b'), /before any media/, 'nothing to describe yet');
  const first = body(media.offer('a', BARESIP));
  t.same(formats(parseSdp(media.reoffer('b'))), formats(parseSdp(first)), 'an unanswered offer is sent again as it was');
  const answerToA = body(media.answer('b', B_ANSWER_OPUS));

  const re = media.reoffer('b');
  const parsed = parseSdp(re);
  t.same(formats(parsed), ['96 opus/48000/2', '101 telephone-event/8000'], 'negotiated codecs in the gateway\'s leg-b numbers');
  t.match(parsed.audio, { address: '198.51.100.1', port: 20002, direction: 'sendrecv', ptime: 20 }, 'caller direction and ptime');
  const target2 = peer('198.51.100.77', 40000, '96 101', ['a=rtpmap:96 opus/48000/2', 'a=rtpmap:101 telephone-event/8000']);
  const r = media.answer('b', target2);
  t.equal(body(r), answerToA, 'nothing new for a: its current description, version unchanged');
  t.same(relay.remotes.b, { address: '198.51.100.77', port: 40000 }, 'relay re-targeted');
  t.same(relay.maps.a, [[96, 96], [101, 101]], 'new target uses the same numbers as a');
  t.same(relay.maps.b, [[96, 96], [101, 101]], 'back to a unchanged');
});

t.test('the factory opens one relay per session and closes it once', async (t) => {
  const relay = new FakeRelay();
  let opened = 0;
  const factory = relayedMediaFactory({ open: async () => (opened++, relay) }, { random: new SeededRandom(1), username: 'my gw' });
  const media = await factory.create();
  t.equal(opened, 1, 'relay opened');
  t.equal(media.idleMs('a'), 1500, 'idle time of leg a from the relay');
  t.equal(media.idleMs('b'), 40, 'idle time of leg b from the relay');
  media.setLocalAddress('b', '198.51.100.1');
  t.equal(origin(body(media.offer('a', BARESIP)))[0], 'my-gw', 'o= user name without spaces');
  media.close();
  media.close();
  t.equal(relay.closes, 1, 'closed once');
  const exhausted = relayedMediaFactory({ open: async () => Promise.reject(new Error('no free RTP ports')) }, { random: new SeededRandom(1) });
  await t.rejects(exhausted.create(), /no free RTP ports/, 'create rejects when the port range is exhausted');
});

/** A session whose gateway transcodes between PCMA, PCMU and G.722 (real codecs, a test resampler). */
async function transcodingSession(): Promise<{ media: MediaSession; relay: FakeRelay; logger: MemoryLogger }> {
  const relay = new FakeRelay();
  const logger = new MemoryLogger();
  const factory = relayedMediaFactory({ open: async () => relay }, { random: new SeededRandom(7), codecs: catalog(pcma, pcmu, g722), resamplers: new LinearResamplerFactory(), logger });
  const media = await factory.create();
  media.setLocalAddress('a', '192.168.1.2');
  media.setLocalAddress('b', '198.51.100.1');
  return { media, relay, logger };
}

const G722_PHONE = peer('192.168.1.40', 5000, '9 101', ['a=rtpmap:9 G722/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', 'a=ptime:20']);
const PCMA_TRUNK = peer('203.0.113.9', 30000, '8 100', ['a=rtpmap:8 PCMA/8000', 'a=rtpmap:100 telephone-event/8000', 'a=fmtp:100 0-16']);

/** An RTP packet with `payload` (default: 20 ms of a 1 kHz tone in `codec`). */
function rtpFor(codec: AudioCodec, pt: number, seq: number, payload?: Uint8Array): Uint8Array {
  const body = payload ?? codec.createEncoder(20).encode(sine(1000, codec.info.sampleRate, 0.02));
  const header = encodeRtpHeader({ payloadType: pt, sequence: seq, timestamp: seq * 160, ssrc: 0x1234, marker: false });
  return Uint8Array.from([...header, ...body]);
}

function through(relay: FakeRelay, from: LegName, packets: Uint8Array[]): { pt: number; bytes: number }[] {
  const transcoder = relay.transcoders[from];
  if (transcoder === undefined) throw new Error(`no transcoder on leg ${from}`);
  return packets.flatMap((p) => transcoder.push(p)).map((p) => ({ pt: p[1]! & 0x7f, bytes: p.length - 12 }));
}

t.test('with a codec registry the offer adds the codecs the gateway transcodes to, after the caller\'s own', async (t) => {
  const cases: [string, string, string[]][] = [
    ['G.722 phone', G722_PHONE, ['9 G722/8000', '8 PCMA/8000', '0 PCMU/8000', '101 telephone-event/8000']],
    ['baresip (all relayable: pass-through first, nothing to add)', BARESIP, ['0 PCMU/8000', '8 PCMA/8000', '9 G722/8000', '96 opus/48000/2', '101 telephone-event/8000']],
    ['opus only: the gateway cannot decode it, nothing added', peer('10.0.0.5', 4000, '107', ['a=rtpmap:107 opus/48000/2']), ['107 opus/48000/2']],
  ];
  for (const [name, offer, expected] of cases) {
    const { media } = await transcodingSession();
    t.same(formats(parseSdp(body(media.offer('a', offer)))), expected, name);
  }
  const { media } = await transcodingSession();
  t.match(media.offer('a', peer('10.0.0.5', 4000, '18 97', ['a=rtpmap:97 speex/16000'])), { ok: false, status: 488 }, 'nothing the gateway supports: 488');
});

t.test('an answer with a codec the caller lacks makes the relay transcode both ways', async (t) => {
  const { media, relay } = await transcodingSession();
  body(media.offer('a', G722_PHONE));
  const first = body(media.answer('b', PCMA_TRUNK));
  const toA = parseSdp(first);
  t.same(formats(toA), ['9 G722/8000', '101 telephone-event/8000'], 'the caller is answered with its own codec');
  t.match(toA.audio, { ptime: 20, direction: 'sendrecv', port: 20000 }, 'the gateway sends 20 ms');
  t.equal(toA.audio.telephoneEvent?.fmtp, '0-16', 'the events the callee accepts');
  t.same([relay.maps.a, relay.maps.b], [[], []], 'no payload rewriting');
  const [ta, tb] = [relay.transcoders.a, relay.transcoders.b];
  t.equal(body(media.answer('b', PCMA_TRUNK)), first, 'the same answer again (18x, then 2xx) gives the same SDP');
  t.ok(relay.transcoders.a === ta && relay.transcoders.b === tb, 'and keeps the transcoders');
  const fromA = through(relay, 'a', [rtpFor(g722, 9, 1), rtpFor(g722, 9, 2), rtpFor(g722, 101, 3, Uint8Array.from([1, 0, 0, 160]))]);
  t.same(fromA, [{ pt: 8, bytes: 160 }, { pt: 8, bytes: 160 }, { pt: 100, bytes: 4 }], 'G.722 from a reaches b as PCMA; telephone-event 101 → 100');
  const fromB = through(relay, 'b', [rtpFor(pcma, 8, 1), rtpFor(pcma, 100, 2, Uint8Array.from([1, 0, 0, 160]))]);
  t.same(fromB, [{ pt: 9, bytes: 160 }, { pt: 101, bytes: 4 }], 'PCMA from b reaches a as G.722 (160 bytes = 20 ms)');
});

t.test('telephone-event without a common clock rate is not answered and is dropped', async (t) => {
  const { media, relay, logger } = await transcodingSession();
  // RFC 4733 §2.1 wants the events at the clock of the audio codec: G.722's 8000, not 48000.
  body(media.offer('a', peer('192.168.1.40', 5000, '9 101', ['a=rtpmap:9 G722/8000', 'a=rtpmap:101 telephone-event/48000'])));
  const toA = parseSdp(body(media.answer('b', PCMA_TRUNK.replace('telephone-event/8000', 'telephone-event/48000'))));
  t.same(formats(toA), ['9 G722/8000'], 'no telephone-event for a');
  t.same(through(relay, 'b', [rtpFor(pcma, 100, 1, Uint8Array.from([1, 0, 0, 160])), rtpFor(pcma, 100, 2, Uint8Array.from([1, 0x80, 0, 160]))]), [], 'b\'s events dropped');
  t.equal(logger.records.filter((r) => r.msg.startsWith('telephone-event dropped')).length, 1, 'and logged once');
});

t.test('an answer with the caller\'s codec is relayed without transcoding, as without a registry', async (t) => {
  const { media, relay } = await transcodingSession();
  body(media.offer('a', G722_PHONE));
  const toA = parseSdp(body(media.answer('b', peer('203.0.113.9', 30000, '9 8', ['a=rtpmap:9 G722/8000', 'a=rtpmap:8 PCMA/8000']))));
  t.same(formats(toA), ['9 G722/8000'], 'only what a offered goes back');
  t.same([relay.transcoders.a, relay.transcoders.b], [undefined, undefined], 'no transcoders');
  t.same([relay.maps.a, relay.maps.b], [[[9, 9]], [[9, 9]]], 'plain payload maps');
});

t.test('hold keeps the running transcoders; moving to a shared codec ends transcoding', async (t) => {
  const { media, relay } = await transcodingSession();
  body(media.offer('a', G722_PHONE));
  body(media.answer('b', PCMA_TRUNK));
  const [ta, tb] = [relay.transcoders.a, relay.transcoders.b];
  const hold = parseSdp(body(media.offer('a', G722_PHONE.replace('a=ptime:20', 'a=ptime:20\r\na=sendonly'))));
  t.same(formats(hold).slice(0, 2), ['9 G722/8000', '8 PCMA/8000'], 'hold offered with the same numbers');
  t.equal(hold.audio.direction, 'sendonly');
  t.equal(parseSdp(body(media.answer('b', `${PCMA_TRUNK}a=recvonly\r\n`))).audio.direction, 'recvonly', 'recvonly back to a');
  t.ok(relay.transcoders.a === ta && relay.transcoders.b === tb, 'same transcoders: the outgoing streams continue');

  const bOffer = peer('203.0.113.9', 30000, '9', ['a=rtpmap:9 G722/8000'], 2);
  t.same(formats(parseSdp(body(media.offer('b', bOffer)))), ['9 G722/8000', '8 PCMA/8000', '0 PCMU/8000'], 'b now offers G.722');
  body(media.answer('a', peer('192.168.1.40', 5000, '9', ['a=rtpmap:9 G722/8000'], 2)));
  t.same([relay.transcoders.a, relay.transcoders.b], [undefined, undefined], 'relayed again');
  t.same([relay.maps.a, relay.maps.b], [[[9, 9]], [[9, 9]]], 'with payload maps');
});

t.test('reoffer while transcoding offers the caller\'s codec first; the new target decides', async (t) => {
  const cases: [string, string, boolean][] = [
    ['target takes PCMA: still transcoding', PCMA_TRUNK.replace('203.0.113.9', '198.51.100.77'), true],
    ['target takes G.722: relayed', peer('198.51.100.77', 40000, '9 101', ['a=rtpmap:9 G722/8000', 'a=rtpmap:101 telephone-event/8000']), false],
  ];
  for (const [name, answer, transcoding] of cases) {
    const { media, relay } = await transcodingSession();
    body(media.offer('a', G722_PHONE));
    const toA = body(media.answer('b', PCMA_TRUNK));
    t.same(formats(parseSdp(media.reoffer('b'))), ['9 G722/8000', '8 PCMA/8000', '0 PCMU/8000', '101 telephone-event/8000'], `${name}: reoffer`);
    t.equal(body(media.answer('b', answer)), toA, `${name}: a sees no change`);
    t.equal(relay.transcoders.b !== undefined, transcoding, `${name}: transcoder`);
    if (!transcoding) t.same(relay.maps.a, [[9, 9], [101, 101]], `${name}: maps`);
  }
});

t.test('the echo target ends transcoding', async (t) => {
  const { media, relay } = await transcodingSession();
  body(media.offer('a', G722_PHONE));
  body(media.answer('b', PCMA_TRUNK));
  const out = parseSdp(body(media.answerLocally('a', G722_PHONE)));
  t.same(formats(out), ['9 G722/8000', '101 telephone-event/8000'], 'echo answer');
  t.same([relay.transcoders.a, relay.transcoders.b, relay.echo], [undefined, undefined, true], 'echo without transcoders');
});
