import t from 'tap';
import type { AudioCodec } from '../../../src/media/codec/codec.ts';
import { g722 } from '../../../src/media/codec/g722.ts';
import { pcma, pcmu } from '../../../src/media/codec/g711.ts';
import { l16, l16Codecs } from '../../../src/media/codec/l16.ts';
import { CodecRegistry } from '../../../src/media/codec/registry.ts';

t.test('L16 is big-endian 16-bit mono at 8, 16 and 48 kHz (RFC 3551 §4.5.11)', async (t) => {
  t.same(
    l16Codecs.map((c) => c.info),
    [8000, 16000, 48000].map((rate) => ({ name: 'L16', clockRate: rate, sampleRate: rate, channels: 1 })),
  );
  const cases: { name: string; pcm: number[]; bytes: number[] }[] = [
    { name: 'zero', pcm: [0], bytes: [0, 0] },
    { name: 'one', pcm: [1], bytes: [0, 1] },
    { name: 'minus one', pcm: [-1], bytes: [0xff, 0xff] },
    { name: 'extremes', pcm: [32767, -32768], bytes: [0x7f, 0xff, 0x80, 0x00] },
    { name: 'byte order', pcm: [0x1234, -0x1234], bytes: [0x12, 0x34, 0xed, 0xcc] },
  ];
  const codec = l16(16000);
  for (const c of cases) {
    const payload = codec.createEncoder(20).encode(Int16Array.from(c.pcm));
    t.same(Array.from(payload), c.bytes, `${c.name}: encodes`);
    t.same(Array.from(codec.createDecoder().decode(payload)), c.pcm, `${c.name}: decodes`);
  }
});

t.test('L16 round-trips at every rate, at offsets, and rejects malformed payloads quietly', async (t) => {
  for (const codec of l16Codecs) {
    const rate = codec.info.sampleRate;
    const n = rate / 50;
    const frame = new Int16Array(n);
    for (let i = 0; i < n; i++) frame[i] = Math.round(30000 * Math.sin((2 * Math.PI * 440 * i) / rate));
    const big = new Int16Array(n + 100).fill(-5);
    big.set(frame, 37);
    const enc = codec.createEncoder(20);
    const dec = codec.createDecoder();
    const payload = enc.encode(frame);
    t.equal(payload.length, 2 * n, `${rate} Hz: two bytes per sample`);
    t.same(enc.encode(big.subarray(37, 37 + n)), payload, `${rate} Hz: same payload from a subarray at an offset`);
    t.same(dec.decode(payload), frame, `${rate} Hz: decodes to the input`);
    const shifted = new Uint8Array(payload.length + 11).fill(0xaa);
    shifted.set(payload, 5);
    t.same(enc.encode(dec.decode(shifted.subarray(5, 5 + payload.length))), payload, `${rate} Hz: decode at an offset, re-encode`);
    t.equal(dec.decode(new Uint8Array(0)).length, 0, `${rate} Hz: empty payload gives no samples`);
    t.equal(dec.decode(payload.subarray(0, 7)).length, 0, `${rate} Hz: odd-length payload gives no samples`);
    enc.close();
    dec.close();
  }
  t.throws(() => l16(0), RangeError, 'rate must be positive');
});

t.test('L16 encode+decode speed', async (t) => {
  const codec = l16(48000);
  const frame = new Int16Array(960).map((_, i) => i * 31);
  const enc = codec.createEncoder(20);
  const dec = codec.createDecoder();
  const run = (): number => {
    let check = 0;
    const start = process.hrtime.bigint();
    for (let f = 0; f < 500; f++) check += dec.decode(enc.encode(frame))[f % 960]!;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return Number.isFinite(check) ? (500 * 960) / seconds : 0;
  };
  run();
  const rate = Math.max(run(), run(), run());
  t.ok(rate > 1e6, `faster than 1 M samples/s (measured ${(rate / 1e6).toFixed(1)} M)`);
  t.comment(`L16 encode+decode: ${(rate / 1e6).toFixed(1)} M samples/s (best of 3 after warm-up)`);
});

/** Stands in for src/media/codec/opus.ts: only the identity matters to the registry. */
const fakeOpus: AudioCodec = {
  info: { name: 'opus', clockRate: 48000, sampleRate: 48000, channels: 2, fmtp: 'useinbandfec=1; stereo=0; sprop-stereo=0' },
  createEncoder: () => {
    throw new Error('not used');
  },
  createDecoder: () => {
    throw new Error('not used');
  },
};

t.test('CodecRegistry finds codecs by rtpmap identity', async (t) => {
  const registry = new CodecRegistry([fakeOpus, g722, pcmu, pcma, ...l16Codecs]);
  const cases: { name: string; args: [string, number, number?]; expect: AudioCodec | undefined }[] = [
    { name: 'PCMU/8000', args: ['PCMU', 8000], expect: pcmu },
    { name: 'lower-case pcma', args: ['pcma', 8000], expect: pcma },
    { name: 'G722/8000 (RTP clock, not 16000)', args: ['g722', 8000], expect: g722 },
    { name: 'G722/16000 is not G.722', args: ['G722', 16000], expect: undefined },
    { name: 'opus/48000/2', args: ['OPUS', 48000, 2], expect: fakeOpus },
    { name: 'opus/48000 (1 channel) is not offered', args: ['opus', 48000], expect: undefined },
    { name: 'L16/16000', args: ['L16', 16000], expect: l16Codecs[1] },
    { name: 'L16/44100 not registered', args: ['L16', 44100], expect: undefined },
    { name: 'L16/8000/2 stereo not registered', args: ['L16', 8000, 2], expect: undefined },
    { name: 'unknown name', args: ['GSM', 8000], expect: undefined },
  ];
  for (const c of cases) t.equal(registry.find(...c.args), c.expect, c.name);
  t.same(registry.list().map((c) => c.info.name), ['opus', 'G722', 'PCMU', 'PCMA', 'L16', 'L16', 'L16'], 'list in registration order');
  t.throws(() => new CodecRegistry([pcmu, pcmu]), /registered twice/, 'duplicate identity is a wiring bug');
});

t.test('CodecRegistry orders codecs by a preference list', async (t) => {
  const registry = new CodecRegistry([pcmu, pcma, ...l16Codecs, g722, fakeOpus]);
  const ids = (pref: readonly string[]): string[] =>
    registry.ordered(pref).map((c) => `${c.info.name}/${c.info.clockRate}`);
  const cases: { name: string; pref: string[]; expect: string[] }[] = [
    {
      name: 'typical list with one L16 rate',
      pref: ['opus', 'G722', 'PCMU', 'PCMA', 'L16/16000'],
      expect: ['opus/48000', 'G722/8000', 'PCMU/8000', 'PCMA/8000', 'L16/16000'],
    },
    { name: 'bare name takes every rate', pref: ['pcma', 'l16'], expect: ['PCMA/8000', 'L16/8000', 'L16/16000', 'L16/48000'] },
    { name: 'unknown names ignored', pref: ['GSM', 'PCMU', 'L16/44100', 'iLBC'], expect: ['PCMU/8000'] },
    { name: 'explicit rate first, rest of name later once', pref: ['L16/48000', 'PCMU', 'L16'], expect: ['L16/48000', 'PCMU/8000', 'L16/8000', 'L16/16000'] },
    { name: 'full identity with channels', pref: ['opus/48000/2', 'opus/48000/1'], expect: ['opus/48000'] },
    { name: 'empty preference drops everything', pref: [], expect: [] },
  ];
  for (const c of cases) t.same(ids(c.pref), c.expect, c.name);
});
