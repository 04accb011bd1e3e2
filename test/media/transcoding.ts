import t from 'tap';
import type { AudioCodec } from '../../src/media/codec/codec.ts';
import { pcma, pcmu } from '../../src/media/codec/g711.ts';
import { g722 } from '../../src/media/codec/g722.ts';
import { loadSpeexResampler } from '../../src/media/resample/speex-resampler.ts';
import { decodeRtpHeader, encodeRtpHeader } from '../../src/media/rtp-packet.ts';
import type { Codec } from '../../src/media/sdp.ts';
import { chooseMedia, directionPlan, formatsToOffer } from '../../src/media/transcode-plan.ts';
import { RtpTranscoder } from '../../src/media/transcoder.ts';
import type { RtpTranscoderOptions } from '../../src/media/transcoder.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { SeededRandom } from '../../src/runtime/random.ts';
import { catalog, fakeCodec, fakePayload, LinearResamplerFactory, sine, Z_CONCEALED } from '../helpers/fake-codecs.ts';
import { dominantFrequency } from '../helpers/wav.ts';

const X = fakeCodec({ name: 'X', sampleRate: 8000 });
const Y = fakeCodec({ name: 'Y', sampleRate: 16000, clockRate: 8000 });
const Z = fakeCodec({ name: 'Z', sampleRate: 8000, conceal: true });

interface In {
  seq: number;
  ts: number;
  pt?: number;
  ssrc?: number;
  marker?: boolean;
  payload?: Uint8Array;
}

function packet(p: In): Uint8Array {
  const header = encodeRtpHeader({ payloadType: p.pt ?? 96, sequence: p.seq & 0xffff, timestamp: p.ts >>> 0, ssrc: p.ssrc ?? 0xaaaa, marker: p.marker ?? false });
  const body = p.payload ?? fakePayload(new Int16Array(160).fill(100));
  const out = new Uint8Array(header.length + body.length);
  out.set(header);
  out.set(body, header.length);
  return out;
}

function transcoder(over: Partial<RtpTranscoderOptions> = {}): RtpTranscoder {
  return new RtpTranscoder({
    input: { codec: X, payloadTypes: [96] },
    output: { codec: Y, payloadType: 111 },
    resamplers: new LinearResamplerFactory(),
    random: new SeededRandom(3),
    ...over,
  });
}

const headers = (ps: Uint8Array[]) => ps.map((p) => decodeRtpHeader(p));

t.test('re-packetises into 20 ms frames with its own SSRC, sequence and timestamps in the output clock', async (t) => {
  const cases: { name: string; input: AudioCodec; output: AudioCodec; inSamples: number; inTicks: number; packets: number; outPackets: number; outTicks: number; outBytes: number }[] = [
    { name: 'X 30 ms → Y 20 ms (16 kHz samples, 8000 clock)', input: X, output: Y, inSamples: 240, inTicks: 240, packets: 4, outPackets: 6, outTicks: 160, outBytes: 640 },
    { name: 'Y 20 ms → X 20 ms', input: Y, output: X, inSamples: 320, inTicks: 160, packets: 5, outPackets: 5, outTicks: 160, outBytes: 320 },
    { name: 'X 10 ms → X 20 ms (buffered)', input: X, output: Z, inSamples: 80, inTicks: 80, packets: 6, outPackets: 3, outTicks: 160, outBytes: 320 },
  ];
  for (const c of cases) {
    const tr = transcoder({ input: { codec: c.input, payloadTypes: [96] }, output: { codec: c.output, payloadType: 111 } });
    const out: Uint8Array[] = [];
    for (let i = 0; i < c.packets; i++) {
      out.push(...tr.push(packet({ seq: 65534 + i, ts: 4294967000 + i * c.inTicks, payload: fakePayload(new Int16Array(c.inSamples).fill(500)) })));
    }
    const hs = headers(out);
    t.equal(hs.length, c.outPackets, `${c.name}: ${c.outPackets} packets of 20 ms`);
    t.ok(hs.every((h) => h.payloadType === 111 && h.ssrc === hs[0]!.ssrc), `${c.name}: output PT and one SSRC`);
    t.ok(hs.every((h, i) => i === 0 || ((h.sequence - hs[i - 1]!.sequence) & 0xffff) === 1), `${c.name}: consecutive sequence`);
    t.ok(hs.every((h, i) => i === 0 || ((h.timestamp - hs[i - 1]!.timestamp) >>> 0) === c.outTicks), `${c.name}: +${c.outTicks} per packet`);
    t.same(hs.map((h) => h.marker), hs.map((_, i) => i === 0), `${c.name}: marker on the first packet only`);
    t.ok(out.every((p) => p.length === 12 + c.outBytes), `${c.name}: ${c.outBytes}-byte payloads`);
    t.same(tr.stats, { decoded: c.packets, concealed: 0, sent: hs.length, dropped: 0, events: 0 }, `${c.name}: stats`);
  }
});

t.test('a 1 kHz tone keeps its frequency through decode, resample and encode', async (t) => {
  const cases: [string, AudioCodec, AudioCodec][] = [
    ['8 kHz → 16 kHz', X, Y],
    ['16 kHz → 8 kHz', Y, X],
  ];
  for (const [name, from, to] of cases) {
    const tr = transcoder({ input: { codec: from, payloadTypes: [96] }, output: { codec: to, payloadType: 111 } });
    const tone = sine(1000, from.info.sampleRate, 1);
    const per = from.info.sampleRate / 50;
    const ticks = from.info.clockRate / 50;
    const received: number[] = [];
    for (let i = 0; i * per < tone.length; i++) {
      for (const p of tr.push(packet({ seq: i, ts: i * ticks, payload: fakePayload(tone.subarray(i * per, (i + 1) * per)) }))) {
        const h = decodeRtpHeader(p);
        received.push(...to.createDecoder().decode(p.subarray(h.headerLength)));
      }
    }
    const f = dominantFrequency(Int16Array.from(received), to.info.sampleRate);
    t.equal(f.frequency, 1000, `${name}: 1 kHz`);
    t.ok(f.ratio > 0.9, `${name}: clean (${f.ratio.toFixed(3)})`);
  }
});

t.test('loss, duplicates, late packets, silence and source changes', async (t) => {
  const frame = (v: number) => fakePayload(new Int16Array(160).fill(v));
  await t.test('a gap is concealed with a fading repeat; the output stream has no hole', async (t) => {
    const tr = transcoder({ output: { codec: X, payloadType: 0 } });
    const out = [...tr.push(packet({ seq: 10, ts: 1600, payload: frame(1000) })), ...tr.push(packet({ seq: 13, ts: 2080, payload: frame(2000) }))];
    const hs = headers(out);
    t.equal(hs.length, 4, 'one packet, two concealed, the next one');
    t.ok(hs.every((h, i) => i === 0 || h.timestamp - hs[i - 1]!.timestamp === 160), 'contiguous timestamps');
    const first = X.createDecoder().decode(out[1]!.subarray(12));
    const second = X.createDecoder().decode(out[2]!.subarray(12));
    t.ok(first[0]! <= 1000 && first[0]! > 900 && second[159]! < first[0]! && second[159]! >= 0, 'the repeat fades');
    t.same(X.createDecoder().decode(out[3]!.subarray(12))[0], 2000, 'then the real packet');
    t.equal(tr.stats.concealed, 2);
  });
  await t.test('a decoder with its own concealment is asked for it', async (t) => {
    const tr = transcoder({ input: { codec: Z, payloadTypes: [96] }, output: { codec: X, payloadType: 0 } });
    const before = Z.counts.concealed;
    const out = [...tr.push(packet({ seq: 1, ts: 0, payload: frame(7) })), ...tr.push(packet({ seq: 3, ts: 320, payload: frame(7) }))];
    t.equal(Z.counts.concealed - before, 1, 'conceal called once');
    t.same(X.createDecoder().decode(out[1]!.subarray(12))[0], Z_CONCEALED, 'its samples are sent');
  });
  await t.test('a table of arrivals', async (t) => {
    const cases: { name: string; arrivals: In[]; packets: number; dropped: number; jumps: number[]; markers: boolean[] }[] = [
      { name: 'duplicate dropped', arrivals: [{ seq: 1, ts: 0 }, { seq: 1, ts: 0 }, { seq: 2, ts: 160 }], packets: 2, dropped: 1, jumps: [160], markers: [true, false] },
      { name: 'late (older) packet dropped', arrivals: [{ seq: 5, ts: 800 }, { seq: 6, ts: 960 }, { seq: 4, ts: 640 }], packets: 2, dropped: 1, jumps: [160], markers: [true, false] },
      { name: 'silence suppression: timestamps jump with a marker', arrivals: [{ seq: 1, ts: 0 }, { seq: 2, ts: 8160 }], packets: 2, dropped: 0, jumps: [8160], markers: [true, true] },
      { name: 'a long gap resynchronises without concealing', arrivals: [{ seq: 1, ts: 0 }, { seq: 40, ts: 6240 }], packets: 2, dropped: 0, jumps: [6240], markers: [true, true] },
      { name: 'new source: same output stream, marker', arrivals: [{ seq: 1, ts: 0 }, { seq: 900, ts: 77, ssrc: 0xbbbb }, { seq: 901, ts: 237, ssrc: 0xbbbb }], packets: 3, dropped: 0, jumps: [160, 160], markers: [true, true, false] },
      { name: 'comfort noise and unknown types dropped', arrivals: [{ seq: 1, ts: 0 }, { seq: 2, ts: 160, pt: 13 }, { seq: 3, ts: 320, pt: 0 }], packets: 1, dropped: 2, jumps: [], markers: [true] },
      { name: 'malformed payload dropped', arrivals: [{ seq: 1, ts: 0, payload: new Uint8Array(3) }, { seq: 2, ts: 160 }], packets: 1, dropped: 1, jumps: [], markers: [true] },
    ];
    for (const c of cases) {
      const tr = transcoder({ output: { codec: X, payloadType: 0 } });
      const hs = headers(c.arrivals.flatMap((a) => tr.push(packet(a))));
      t.equal(hs.length, c.packets, `${c.name}: packets`);
      t.equal(tr.stats.dropped, c.dropped, `${c.name}: dropped`);
      t.same(hs.slice(1).map((h, i) => (h.timestamp - hs[i]!.timestamp) >>> 0), c.jumps, `${c.name}: timestamp steps`);
      t.same(hs.map((h) => h.marker), c.markers, `${c.name}: markers`);
      t.ok(hs.every((h) => h.ssrc === hs[0]!.ssrc), `${c.name}: one SSRC`);
    }
    const tr = transcoder();
    t.same(tr.push(new Uint8Array([0x80, 0, 1])), [], 'a truncated header yields nothing');
    t.same(tr.push(Uint8Array.from([0xa0, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 50])), [], 'padding longer than the packet yields nothing');
    t.equal(tr.stats.dropped, 2);
  });
});

t.test('telephone-event is relayed renumbered at the audio position, or dropped with one warning', async (t) => {
  const event = (seq: number, ts: number, end: boolean, duration: number) =>
    packet({ seq, ts, pt: 101, marker: seq === 3, payload: Uint8Array.from([5, end ? 0x8a : 0x0a, duration >> 8, duration & 0xff]) });
  const tr = transcoder({ output: { codec: X, payloadType: 8 }, events: { payloadTypes: [101], payloadType: 100 } });
  const out = [
    ...tr.push(packet({ seq: 1, ts: 0 })),
    ...tr.push(packet({ seq: 2, ts: 160 })),
    ...tr.push(event(3, 320, false, 160)),
    ...tr.push(event(4, 320, false, 320)),
    ...tr.push(event(5, 320, true, 800)),
    ...tr.push(event(6, 320, true, 800)),
  ];
  const hs = headers(out);
  const events = hs.filter((h) => h.payloadType === 100);
  t.equal(events.length, 4, 'every event packet relayed (the end is sent three times by the source)');
  t.ok(events.every((h) => h.timestamp === hs[1]!.timestamp + 160), 'one event timestamp: where the audio stands');
  t.same(events.map((h) => h.marker), [true, false, false, false], 'the marker of the event start');
  t.same([...out[2]!.subarray(12)], [5, 0x0a, 0, 160], 'payload (event, volume, duration) unchanged');
  t.ok(hs.every((h, i) => i === 0 || h.sequence === ((hs[i - 1]!.sequence + 1) & 0xffff)), 'events and audio share one sequence');

  const logger = new MemoryLogger();
  const dropper = transcoder({ logger, events: { payloadTypes: [101] } });
  t.same([...dropper.push(event(3, 0, false, 160)), ...dropper.push(event(4, 0, true, 320))], [], 'no common event clock: dropped');
  t.equal(logger.records.filter((r) => r.msg.startsWith('telephone-event dropped')).length, 1, 'logged once');
  t.equal(dropper.stats.dropped, 2);
});

t.test('its RtpSender accounts for exactly what it sent: SSRC, SR packet and octet counts, timeline (RFC 3550 §6.4.1)', async (t) => {
  const event = (seq: number, ts: number) => packet({ seq, ts, pt: 101, payload: Uint8Array.from([5, 0x0a, 0, 160]) });
  const tr = transcoder({ output: { codec: X, payloadType: 8 }, events: { payloadTypes: [101], payloadType: 100 } });
  const out: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) out.push(...tr.push(packet({ seq: 1 + i, ts: i * 160 }), 5000 + i * 20));
  out.push(...tr.push(event(11, 1600), 5200));
  const hs = headers(out);
  const s = tr.sender;
  t.same([s.ssrc, s.packetCount, s.octetCount], [hs[0]!.ssrc, out.length, out.reduce((n, p) => n + p.length - 12, 0)], `${out.length} packets (an event among them) and their payload octets under the stream's SSRC`);
  t.equal(s.packetCount, tr.stats.sent, 'the same count as the stats');
  t.equal(s.clockRate, 8000, 'in the outgoing clock');
  t.equal(s.rtpTimestampAt(5180 + 40), (hs[9]!.timestamp + 320) >>> 0, 'the SR timestamp extrapolates from the last audio packet and its time');
  t.same([tr.isEvent(101), tr.isEvent(96), tr.codec], [true, false, 'X'], 'telephone-event told apart for jitter; the codec named for statistics');
});

t.test('offers list pass-through codecs first, then what the gateway transcodes to', async (t) => {
  const G722 = fakeCodec({ name: 'G722', sampleRate: 16000, clockRate: 8000, staticPayloadType: 9 });
  const OPUSLIKE = fakeCodec({ name: 'W', sampleRate: 48000 });
  const support = { codecs: catalog(pcma, pcmu, G722, OPUSLIKE), resamplers: new LinearResamplerFactory() };
  const sameRateOnly = { codecs: catalog(pcma, pcmu, G722, OPUSLIKE) };
  const g722: Codec = { pt: 9, name: 'G722', rate: 8000 };
  const cases: { name: string; offered: Codec[]; taken: number[]; support: typeof sameRateOnly | undefined; expected: string[] }[] = [
    { name: 'no transcoding support', offered: [g722], taken: [9], support: undefined, expected: ['9 G722'] },
    { name: 'G722 only', offered: [g722], taken: [9, 101], support, expected: ['9 G722', '8 PCMA', '0 PCMU', '96 W'] },
    { name: 'without resamplers only same-rate codecs', offered: [g722], taken: [9], support: sameRateOnly, expected: ['9 G722'] },
    { name: 'PCMU without resamplers', offered: [{ pt: 0, name: 'PCMU', rate: 8000 }], taken: [0, 96], support: sameRateOnly, expected: ['0 PCMU', '8 PCMA'] },
    { name: 'static number taken by the offer', offered: [{ pt: 8, name: 'G722', rate: 8000 }], taken: [8, 96], support, expected: ['8 G722', '97 PCMA', '0 PCMU', '98 W'] },
    { name: 'nothing decodable: nothing added', offered: [{ pt: 18, name: 'G729', rate: 8000 }], taken: [18], support, expected: ['18 G729'] },
  ];
  for (const c of cases) {
    t.same(formatsToOffer(c.offered, c.taken, c.support).map((f) => `${f.pt} ${f.name}`), c.expected, c.name);
  }

  const A: Codec[] = [g722, { pt: 101, name: 'telephone-event', rate: 8000 }];
  const choices: { name: string; answered: Codec[]; expected: object }[] = [
    { name: 'answer picks the offerer\'s codec: relay', answered: [{ pt: 9, name: 'G722', rate: 8000 }, { pt: 8, name: 'PCMA', rate: 8000 }], expected: { kind: 'relay', codecs: [{ name: 'G722' }] } },
    { name: 'answer picks PCMA: transcode, events relayed', answered: [{ pt: 8, name: 'PCMA', rate: 8000 }, { pt: 100, name: 'telephone-event', rate: 8000 }], expected: { kind: 'transcode', offerer: { pt: 9 }, answerer: { pt: 8 }, events: { offerer: { pt: 101 }, answerer: { pt: 100 } } } },
    { name: 'events at another clock: not relayed', answered: [{ pt: 8, name: 'PCMA', rate: 8000 }, { pt: 100, name: 'telephone-event', rate: 48000 }], expected: { kind: 'transcode', events: undefined } },
    { name: 'a codec the gateway lacks', answered: [{ pt: 18, name: 'G729', rate: 8000 }], expected: { kind: 'none' } },
    { name: 'only events', answered: [{ pt: 100, name: 'telephone-event', rate: 8000 }], expected: { kind: 'none' } },
  ];
  for (const c of choices) t.match(chooseMedia(A, c.answered, support), c.expected, c.name);

  const plan = directionPlan(
    { peer: [{ pt: 9, name: 'G722', rate: 8000 }, { pt: 101, name: 'telephone-event', rate: 8000 }], gatewayPts: new Map([['g722/8000/1', 9], ['telephone-event/8000/1', 101], ['pcma/8000/1', 8]]) },
    { peer: [{ pt: 8, name: 'PCMA', rate: 8000 }, { pt: 100, name: 'telephone-event', rate: 8000 }], gatewayPts: new Map([['pcma/8000/1', 8], ['telephone-event/8000/1', 101]]) },
    'g722/8000/1', 'pcma/8000/1', 'telephone-event/8000/1',
  );
  t.match(plan, { input: [9], output: 8, events: { payloadTypes: [101], payloadType: 100 } }, 'numbers of one direction');
});

t.test('transcoding cost per call: 50 s of G.722 <-> PCMA both directions through the pure transcoders', async (t) => {
  const wide = g722;
  const factory = await loadSpeexResampler();
  const name = `speexdsp q${factory.quality}`;
  const random = new SeededRandom(9);
  const pair = () => ({
    toNarrow: new RtpTranscoder({ input: { codec: wide, payloadTypes: [9] }, output: { codec: pcma, payloadType: 8 }, resamplers: factory, random }),
    toWide: new RtpTranscoder({ input: { codec: pcma, payloadTypes: [8] }, output: { codec: wide, payloadType: 9 }, resamplers: factory, random }),
  });
  const seconds = 50;
  const wideFrame = wide.info.sampleRate / 50;
  const wideTicks = wide.info.clockRate / 50;
  const wideEnc = wide.createEncoder(20);
  const narrowEnc = pcma.createEncoder(20);
  const wideTone = sine(1000, wide.info.sampleRate, 1);
  const narrowTone = sine(440, 8000, 1);
  const widePackets: Uint8Array[] = [];
  const narrowPackets: Uint8Array[] = [];
  for (let i = 0; i < seconds * 50; i++) {
    const k = i % 50;
    widePackets.push(packet({ seq: i, ts: i * wideTicks, pt: 9, payload: wideEnc.encode(wideTone.subarray(k * wideFrame, (k + 1) * wideFrame)) }));
    narrowPackets.push(packet({ seq: i, ts: i * 160, pt: 8, payload: narrowEnc.encode(narrowTone.subarray(k * 160, (k + 1) * 160)) }));
  }
  // JIT warm-up (20 s of audio) so that the figure is the steady state of a running gateway.
  const warm = pair();
  for (let i = 0; i < 1000; i++) {
    warm.toNarrow.push(widePackets[i]!);
    warm.toWide.push(narrowPackets[i]!);
  }
  warm.toNarrow.close();
  warm.toWide.close();
  const { toNarrow, toWide } = pair();
  let out = 0;
  const tail: number[] = [];
  const pcmaDecoder = pcma.createDecoder();
  const start = process.cpuUsage();
  for (let i = 0; i < seconds * 50; i++) {
    for (const p of toNarrow.push(widePackets[i]!)) {
      out++;
      if (i >= seconds * 50 - 50) tail.push(...pcmaDecoder.decode(p.subarray(12)));
    }
    out += toWide.push(narrowPackets[i]!).length;
  }
  const used = process.cpuUsage(start);
  const ms = (used.user + used.system) / 1000;
  const perMinute = (ms * 60) / seconds;
  t.ok(out >= 2 * seconds * 50 - 4, `${out} packets produced`);
  t.equal(dominantFrequency(Int16Array.from(tail), 8000).frequency, 1000, 'the tone survived the last second');
  t.comment(`transcoding ${wide.info.name} <-> PCMA (${name}), both directions: ${ms.toFixed(0)} ms CPU for ${seconds} s = ${perMinute.toFixed(0)} ms CPU per call-minute (${((perMinute / 60000) * 100).toFixed(2)} % of one core)`);
  t.ok(perMinute < 60000, 'faster than real time');
  toNarrow.close();
  toWide.close();
});
