import t from 'tap';
import {
  buildSdp,
  codecKey,
  intersection,
  isSupportedCodec,
  isSupportedTelephoneEvent,
  mirrorDirection,
  parseAudio,
  parseSdp,
  payloadMap,
  SdpError,
} from '../../src/media/sdp.ts';
import type { Codec, Direction, SdpSpec } from '../../src/media/sdp.ts';

const sdp = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

/** baresip 1.0.0 with the default audio modules (g711, g722, opus). */
const BARESIP = sdp(
  'v=0',
  'o=- 2890844526 2890844526 IN IP4 192.168.1.20',
  's=-',
  'c=IN IP4 192.168.1.20',
  't=0 0',
  'm=audio 10000 RTP/AVP 0 8 9 96 101',
  'b=AS:128',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:96 opus/48000/2',
  'a=fmtp:96 stereo=1;sprop-stereo=1',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-15',
  'a=sendrecv',
  'a=label:1',
  'a=ssrc:2208353264 cname:1c5b4bf3-4c4c-4a92-9b2e-6f6dfa0a5bc2',
  'a=ptime:20',
);

/** Linphone desktop: opus first, speex, G.729 without rtpmap, three telephone-event rates, video. */
const LINPHONE = sdp(
  'v=0',
  'o=alice 2218 3443 IN IP4 192.168.1.30',
  's=Talk',
  'c=IN IP4 192.168.1.30',
  't=0 0',
  'a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics',
  'm=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100',
  'a=rtpmap:96 opus/48000/2',
  'a=fmtp:96 useinbandfec=1',
  'a=rtpmap:97 speex/16000',
  'a=fmtp:97 vbr=on',
  'a=rtpmap:98 speex/8000',
  'a=fmtp:98 vbr=on',
  'a=fmtp:18 annexb=yes',
  'a=rtpmap:101 telephone-event/48000',
  'a=rtpmap:99 telephone-event/16000',
  'a=rtpmap:100 telephone-event/8000',
  'a=rtcp:7079',
  'a=rtcp-fb:* trr-int 1000',
  'm=video 9078 RTP/AVP 102 103',
  'a=rtpmap:102 VP8/90000',
  'a=rtpmap:103 H264/90000',
  'a=fmtp:103 profile-level-id=42801F',
);

const minimal = (media: string[], session: string[] = ['c=IN IP4 192.0.2.1']): string =>
  sdp('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', ...session, 't=0 0', ...media);

t.test('parseAudio reads the first usable audio stream of real softphone offers', async (t) => {
  const cases: [string, string, object][] = [
    ['baresip PCMU/PCMA/G722/opus + telephone-event', BARESIP, {
      address: '192.168.1.20', port: 10000, direction: 'sendrecv', ptime: 20, protocol: 'RTP/AVP',
      codecs: [
        { pt: 0, name: 'PCMU', rate: 8000 }, { pt: 8, name: 'PCMA', rate: 8000 }, { pt: 9, name: 'G722', rate: 8000 },
        { pt: 96, name: 'opus', rate: 48000, channels: 2, fmtp: 'stereo=1;sprop-stereo=1' },
      ],
      telephoneEvent: { pt: 101, name: 'telephone-event', rate: 8000, fmtp: '0-15' },
    }],
    ['linphone: static G.729 named from RFC 3551, all telephone-event rates, a=rtcp', LINPHONE, {
      address: '192.168.1.30', port: 7078, rtcpPort: 7079, direction: 'sendrecv',
      codecs: [
        { pt: 96, name: 'opus', rate: 48000, channels: 2, fmtp: 'useinbandfec=1' },
        { pt: 97, name: 'speex', rate: 16000, fmtp: 'vbr=on' }, { pt: 98, name: 'speex', rate: 8000, fmtp: 'vbr=on' },
        { pt: 0, name: 'PCMU', rate: 8000 }, { pt: 8, name: 'PCMA', rate: 8000 }, { pt: 18, name: 'G729', rate: 8000, fmtp: 'annexb=yes' },
      ],
      telephoneEvents: [
        { pt: 101, name: 'telephone-event', rate: 48000 }, { pt: 99, name: 'telephone-event', rate: 16000 },
        { pt: 100, name: 'telephone-event', rate: 8000 },
      ],
    }],
    ['static payload types without rtpmap, unmapped dynamic type ignored', minimal(['m=audio 4000 RTP/AVP 0 8 97']), {
      codecs: [{ pt: 0, name: 'PCMU', rate: 8000 }, { pt: 8, name: 'PCMA', rate: 8000 }], telephoneEvents: [],
    }],
    ['session-level direction applies to the stream', minimal(['m=audio 4000 RTP/AVP 0'], ['c=IN IP4 192.0.2.1', 'a=sendonly']), { direction: 'sendonly' }],
    ['media-level direction wins over session-level', minimal(['m=audio 4000 RTP/AVP 0', 'a=inactive'], ['c=IN IP4 192.0.2.1', 'a=sendonly']), { direction: 'inactive' }],
    ['media-level c= wins over session-level', minimal(['m=audio 4000 RTP/AVP 0', 'c=IN IP4 198.51.100.7']), { address: '198.51.100.7' }],
    ['RFC 3264 §8.4 legacy hold c=0.0.0.0 removes the receive half', minimal(['m=audio 4000 RTP/AVP 0'], ['c=IN IP4 0.0.0.0']), { address: '0.0.0.0', direction: 'sendonly' }],
    ['IPv6 connection address', minimal(['m=audio 4000 RTP/AVP 0'], ['c=IN IP6 2001:db8::20']), { address: '2001:db8::20' }],
    ['SRTP audio skipped for the following RTP/AVP one', minimal(['m=audio 4000 RTP/SAVP 0', 'm=audio 4002 RTP/AVP 8']), { port: 4002, codecs: [{ pt: 8, name: 'PCMA', rate: 8000 }] }],
    ['disabled audio (port 0) skipped', minimal(['m=audio 0 RTP/AVP 0', 'm=audio 4002 RTP/AVP 0']), { port: 4002 }],
    ['LF-only line endings accepted', minimal(['m=audio 4000 RTP/AVP 0']).replace(/\r\n/g, '\n'), { port: 4000 }],
  ];
  for (const [name, body, expect] of cases) t.match(parseAudio(body), expect, name);
  const linphone = parseSdp(LINPHONE);
  t.same(linphone.media.map((m) => [m.type, m.port, m.formats]), [['audio', 7078, '96 97 98 0 8 18 101 99 100'], ['video', 9078, '102 103']], 'every m-line is kept for mirroring');
  t.equal(parseSdp(minimal(['m=video 5000 RTP/AVP 96', 'm=audio 4000 RTP/AVP 0'])).audioIndex, 1, 'index of the audio stream');
});

t.test('unusable bodies fail with 400 (not SDP) or 488 (nothing to relay)', async (t) => {
  const cases: [string, string, 400 | 488, string][] = [
    ['garbage', 'hello world\r\n', 400, 'SDP_MALFORMED'],
    ['empty body', '', 400, 'SDP_MALFORMED'],
    ['v= not first', sdp('o=- 1 1 IN IP4 192.0.2.1', 'v=0'), 400, 'SDP_MALFORMED'],
    ['no o= line', sdp('v=0', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 4000 RTP/AVP 0'), 400, 'SDP_MALFORMED'],
    ['non-numeric port', minimal(['m=audio abc RTP/AVP 0']), 400, 'SDP_MALFORMED'],
    ['payload type above 127', minimal(['m=audio 4000 RTP/AVP 0 200']), 400, 'SDP_MALFORMED'],
    ['non-numeric payload type', minimal(['m=audio 4000 RTP/AVP PCMU']), 400, 'SDP_MALFORMED'],
    ['no c= for the audio stream', minimal(['m=audio 4000 RTP/AVP 0'], []), 400, 'SDP_MALFORMED'],
    ['no m= line at all', minimal([]), 488, 'SDP_NOT_ACCEPTABLE'],
    ['video only', minimal(['m=video 5000 RTP/AVP 96', 'a=rtpmap:96 VP8/90000']), 488, 'SDP_NOT_ACCEPTABLE'],
    ['audio rejected with port 0', minimal(['m=audio 0 RTP/AVP 0']), 488, 'SDP_NOT_ACCEPTABLE'],
    ['SRTP only', minimal(['m=audio 4000 RTP/SAVP 0']), 488, 'SDP_NOT_ACCEPTABLE'],
    ['c= with a host name', minimal(['m=audio 4000 RTP/AVP 0'], ['c=IN IP4 pbx.example.com']), 488, 'SDP_NOT_ACCEPTABLE'],
  ];
  for (const [name, body, status, code] of cases) {
    let caught: unknown;
    try {
      parseAudio(body);
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof SdpError, `${name}: SdpError`);
    t.match(caught, { status, code }, `${name}: ${status} ${code}`);
  }
});

t.test('supported formats: identity is name (any case), rate and channels', async (t) => {
  const cases: [string, Codec, boolean][] = [
    ['PCMU/8000', { pt: 0, name: 'PCMU', rate: 8000 }, true],
    ['pcma lower case', { pt: 8, name: 'pcma', rate: 8000 }, true],
    ['G722/8000 (RFC 3551 clock rate)', { pt: 9, name: 'G722', rate: 8000 }, true],
    ['G722/16000 is not G.722 as registered', { pt: 9, name: 'G722', rate: 16000 }, false],
    ['opus/48000/2', { pt: 111, name: 'OPUS', rate: 48000, channels: 2 }, true],
    ['opus without channel count', { pt: 96, name: 'opus', rate: 48000 }, false],
    ['speex', { pt: 97, name: 'speex', rate: 16000 }, false],
    ['G729', { pt: 18, name: 'G729', rate: 8000 }, false],
  ];
  for (const [name, codec, ok] of cases) t.equal(isSupportedCodec(codec), ok, name);
  t.ok(isSupportedTelephoneEvent({ pt: 101, name: 'telephone-event', rate: 8000 }), 'telephone-event/8000');
  t.ok(isSupportedTelephoneEvent({ pt: 101, name: 'Telephone-Event', rate: 48000 }), 'telephone-event/48000');
  t.notOk(isSupportedTelephoneEvent({ pt: 99, name: 'telephone-event', rate: 16000 }), 'telephone-event/16000');
  t.equal(codecKey({ name: 'OPUS', rate: 48000, channels: 2 }), codecKey({ name: 'opus', rate: 48000, channels: 2 }), 'name case ignored');
  t.equal(codecKey({ name: 'PCMU', rate: 8000 }), codecKey({ name: 'PCMU', rate: 8000, channels: 1 }), 'channels default to 1');
});

t.test('intersection keeps the answer order and numbers (RFC 3264 §6.1)', async (t) => {
  const offered: Codec[] = [
    { pt: 0, name: 'PCMU', rate: 8000 }, { pt: 96, name: 'opus', rate: 48000, channels: 2 }, { pt: 101, name: 'telephone-event', rate: 8000 },
  ];
  const answered: Codec[] = [
    { pt: 111, name: 'opus', rate: 48000, channels: 2, fmtp: 'useinbandfec=1' }, { pt: 9, name: 'G722', rate: 8000 },
    { pt: 0, name: 'PCMU', rate: 8000 }, { pt: 100, name: 'telephone-event', rate: 8000 }, { pt: 0, name: 'pcmu', rate: 8000 },
  ];
  t.same(intersection(offered, answered), [answered[0], answered[2], answered[3]], 'unoffered G722 and the duplicate dropped');
  t.same(intersection(offered, [{ pt: 18, name: 'G729', rate: 8000 }]), [], 'nothing in common');
});

t.test('payloadMap rewrites each number to the receiver\'s number for the same codec', async (t) => {
  const a: Codec[] = [{ pt: 0, name: 'PCMU', rate: 8000 }, { pt: 96, name: 'opus', rate: 48000, channels: 2 }, { pt: 101, name: 'telephone-event', rate: 8000 }];
  const b: Codec[] = [{ pt: 111, name: 'opus', rate: 48000, channels: 2 }, { pt: 0, name: 'PCMU', rate: 8000 }, { pt: 96, name: 'telephone-event', rate: 8000 }];
  t.same([...payloadMap(a, b)], [[0, 0], [96, 111], [101, 96]], 'a to b');
  t.same([...payloadMap(b, a)], [[111, 96], [0, 0], [96, 101]], 'b to a');
  t.same([...payloadMap(a, [{ pt: 8, name: 'PCMA', rate: 8000 }])], [], 'no common codec, no entries');
});

t.test('answer directions mirror the offer (RFC 3264 §6.1)', async (t) => {
  const cases: [Direction, Direction][] = [['sendrecv', 'sendrecv'], ['sendonly', 'recvonly'], ['recvonly', 'sendonly'], ['inactive', 'inactive']];
  for (const [offer, answer] of cases) t.equal(mirrorDirection(offer), answer, `${offer} → ${answer}`);
});

t.test('buildSdp writes a complete CRLF description', async (t) => {
  const spec: SdpSpec = {
    origin: { username: 'hookswitch', sessionId: '4711', version: 3, address: '192.168.1.2' },
    address: '192.168.1.2',
    media: [{ type: 'audio', port: 7078, protocol: 'RTP/AVP', formats: '96 0' }, { type: 'video', port: 9078, protocol: 'RTP/AVP', formats: '102 103' }],
    audioIndex: 0,
    audio: {
      port: 20000, protocol: 'RTP/AVP', direction: 'recvonly', ptime: 20, rtcpPort: 20001,
      codecs: [{ pt: 96, name: 'opus', rate: 48000, channels: 2, fmtp: 'useinbandfec=1' }, { pt: 0, name: 'PCMU', rate: 8000 }, { pt: 101, name: 'telephone-event', rate: 48000, fmtp: '0-15' }],
    },
  };
  const expected = sdp(
    'v=0',
    'o=hookswitch 4711 3 IN IP4 192.168.1.2',
    's=-',
    'c=IN IP4 192.168.1.2',
    't=0 0',
    'm=audio 20000 RTP/AVP 96 0 101',
    'a=rtpmap:96 opus/48000/2',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/48000',
    'a=fmtp:96 useinbandfec=1',
    'a=fmtp:101 0-15',
    'a=rtcp:20001',
    'a=ptime:20',
    'a=recvonly',
    'm=video 0 RTP/AVP 102 103',
  );
  const body = buildSdp(spec);
  t.equal(body, expected, 'rejected video stream keeps its formats with port 0 (RFC 3264 §6)');
  const back = parseSdp(body);
  t.same(back.audio.codecs, spec.audio.codecs.slice(0, 2), 'codecs read back');
  t.same(back.audio.telephoneEvent, spec.audio.codecs[2], 'telephone-event read back');
  t.equal(back.audio.rtcpPort, 20001, 'rtcp port read back');

  const v6 = buildSdp({ ...spec, origin: { ...spec.origin, address: '2001:db8::1' }, address: '2001:db8::1', media: spec.media.slice(0, 1) });
  t.match(v6, /^o=hookswitch 4711 3 IN IP6 2001:db8::1\r\n/m, 'IPv6 origin uses IN IP6');
  t.match(v6, /^c=IN IP6 2001:db8::1\r\n/m, 'IPv6 connection uses IN IP6');
  t.equal(parseAudio(v6).address, '2001:db8::1', 'IPv6 read back');
});
