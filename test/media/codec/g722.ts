import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { g722, G722Decoder, G722Encoder } from '../../../src/media/codec/g722.ts';

const RATE = 16000;

/** A deterministic linear congruential generator (no Math.random in tests). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/**
 * Speech-like test signal: five partials from 150 Hz to 5.2 kHz under a syllable-rate envelope
 * (3 Hz, with pauses), a steady 1 kHz sine and a little noise.
 */
function speechLike(seconds: number): Int16Array {
  const rnd = lcg(1);
  const out = new Int16Array(RATE * seconds);
  const partials = [
    [150, 0.3],
    [440, 0.25],
    [1250, 0.15],
    [2700, 0.1],
    [5200, 0.05],
  ] as const;
  for (let i = 0; i < out.length; i++) {
    const time = i / RATE;
    const env = Math.max(0, Math.sin(2 * Math.PI * 3 * time)) * (0.6 + 0.4 * Math.sin(2 * Math.PI * 0.7 * time));
    let v = 0;
    for (const [f, g] of partials) v += g * Math.sin(2 * Math.PI * f * time + f);
    v = v * env * 24000 + 3000 * Math.sin(2 * Math.PI * 1000 * time) + (rnd() - 0.5) * 200;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return out;
}

/** Hostile input: full-scale noise, full-scale squares, near-Nyquist sine, silence. */
function extremes(): Int16Array {
  const rnd = lcg(7);
  const out = new Int16Array(RATE * 2);
  for (let i = 0; i < out.length; i++) {
    const part = Math.floor(i / 6400);
    const v = [
      rnd() < 0.5 ? -32768 : 32767,
      (Math.floor(i / 3) & 1) === 1 ? 32767 : -32768,
      (rnd() - 0.5) * 65536,
      0,
      32767 * Math.sin((i * 2 * Math.PI * 7900) / RATE),
    ][part]!;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return out;
}

/** SNR in dB of `decoded` against `reference`, at the codec delay (searched) that maximises it. */
function snr(reference: Int16Array, decoded: Int16Array): { db: number; delay: number } {
  let best = { db: -Infinity, delay: 0 };
  for (let delay = 0; delay < 64; delay++) {
    let signal = 0;
    let noise = 0;
    for (let i = 0; i + delay < decoded.length && i < reference.length; i++) {
      const x = reference[i]!;
      const e = x - decoded[i + delay]!;
      signal += x * x;
      noise += e * e;
    }
    const db = 10 * Math.log10(signal / noise);
    if (db > best.db) best = { db, delay };
  }
  return best;
}

function mismatches(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) n++;
  return n;
}

function encodeFramed(pcm: Int16Array, frame = 320): Uint8Array {
  const enc = g722.createEncoder(20);
  const out = new Uint8Array(pcm.length / 2);
  for (let i = 0; i < pcm.length; i += frame) out.set(enc.encode(pcm.subarray(i, i + frame)), i / 2);
  return out;
}

function decodeFramed(payload: Uint8Array, frame = 160): Int16Array {
  const dec = g722.createDecoder();
  const out = new Int16Array(payload.length * 2);
  for (let i = 0; i < payload.length; i += frame) out.set(dec.decode(payload.subarray(i, i + frame)), i * 2);
  return out;
}

t.test('G.722 SDP identity: G722/8000, 16 kHz PCM, PT 9 (RFC 3551 §4.5.2)', async (t) => {
  t.same(g722.info, { name: 'G722', clockRate: 8000, sampleRate: 16000, channels: 1, staticPayloadType: 9 });
  t.equal(g722.createEncoder(20).encode(new Int16Array(320)).length, 160, '20 ms = 320 samples = 160 bytes');
});

t.test('G.722 against ffmpeg (an independent implementation)', async (t) => {
  const probe = spawnSync('ffmpeg', ['-hide_banner', '-codecs']);
  if (probe.status !== 0 || !String(probe.stdout).includes('g722')) {
    t.fail('ffmpeg with the g722 codec is required for this test: run scripts/ci-deps.sh');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'g722-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ffmpeg = (args: string[]): void => {
    const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { cwd: dir });
    if (r.status !== 0) t.fail(`ffmpeg ${args.join(' ')}: ${r.stderr}`);
  };
  const ffEncode = (pcm: Int16Array): Uint8Array => {
    writeFileSync(join(dir, 'in.raw'), new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    ffmpeg(['-f', 's16le', '-ar', '16000', '-ac', '1', '-i', 'in.raw', '-c:a', 'g722', '-f', 'g722', 'out.g722']);
    return new Uint8Array(readFileSync(join(dir, 'out.g722')));
  };
  const ffDecode = (payload: Uint8Array): Int16Array => {
    writeFileSync(join(dir, 'in.g722'), payload);
    // The raw g722 demuxer reports 16 kHz; `-ar 16000` on the output keeps ffmpeg from resampling.
    ffmpeg(['-f', 'g722', '-i', 'in.g722', '-f', 's16le', '-ar', '16000', '-ac', '1', 'out.raw']);
    const b = readFileSync(join(dir, 'out.raw'));
    return new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };

  const speech = speechLike(3);
  const hostile = extremes();
  const randomBytes = new Uint8Array(16000).map(lcg(3)).map((v) => Math.floor(v * 256));
  for (const [name, pcm] of [
    ['speech-like signal', speech],
    ['full-scale noise, squares, 7.9 kHz sine, silence', hostile],
  ] as const) {
    const ffStream = ffEncode(pcm);
    const ours = encodeFramed(pcm);
    t.equal(ffStream.length, pcm.length / 2, `${name}: ffmpeg wrote one byte per sample pair`);
    t.equal(mismatches(decodeFramed(ffStream), ffDecode(ffStream)), 0, `${name}: our decoder is bit-exact with ffmpeg's on ffmpeg's stream`);
    t.equal(mismatches(ours, ffStream), 0, `${name}: our encoder output is byte-identical to ffmpeg's`);
  }
  t.equal(mismatches(decodeFramed(randomBytes), ffDecode(randomBytes)), 0, 'random bytes (codes 0-3 included): bit-exact with ffmpeg');

  const ffStream = ffEncode(speech);
  const ffRound = snr(speech, ffDecode(ffStream));
  const ourRound = snr(speech, decodeFramed(encodeFramed(speech)));
  const crossRound = snr(speech, ffDecode(encodeFramed(speech)));
  t.ok(ourRound.db > 30, `ours enc→ours dec SNR ${ourRound.db.toFixed(2)} dB (delay ${ourRound.delay})`);
  t.ok(ffRound.db > 30, `ffmpeg enc→ffmpeg dec SNR ${ffRound.db.toFixed(2)} dB`);
  t.ok(crossRound.db > 30, `ours enc→ffmpeg dec SNR ${crossRound.db.toFixed(2)} dB`);
  t.ok(Math.abs(ourRound.db - ffRound.db) < 0.01, 'both round trips have the same SNR');
  t.comment(
    `G.722 SNR on 3 s speech-like signal: ours→ours ${ourRound.db.toFixed(2)} dB, ffmpeg→ffmpeg ${ffRound.db.toFixed(2)} dB, ` +
      `ours→ffmpeg ${crossRound.db.toFixed(2)} dB (codec delay ${ourRound.delay} samples); our encoder output is byte-identical to ffmpeg's`,
  );
});

t.test('G.722 streams: frame splits, offsets, re-encoding, malformed input', async (t) => {
  const speech = speechLike(1);
  const whole = new G722Encoder().encode(speech);
  t.equal(mismatches(encodeFramed(speech, 320), whole), 0, 'state carries across 20 ms frames');
  t.equal(mismatches(encodeFramed(speech, 2), whole), 0, 'state carries across one-pair frames');
  const decodedWhole = new G722Decoder().decode(whole);
  t.equal(mismatches(decodeFramed(whole, 7), decodedWhole), 0, 'decoder state carries across odd-sized payloads');

  const frame = speech.subarray(3200, 3520);
  const big = new Int16Array(1000).fill(777);
  big.set(frame, 301);
  t.same(new G722Encoder().encode(big.subarray(301, 621)), new G722Encoder().encode(frame), 'encodes a subarray at an offset');
  const payload = new Uint8Array(whole.subarray(0, 160));
  const padded = new Uint8Array(400).fill(0xff);
  padded.set(payload, 99);
  t.same(new G722Decoder().decode(padded.subarray(99, 259)), new G722Decoder().decode(payload), 'decodes a payload at an offset');

  // ADPCM is not idempotent, but re-encoding the decoded audio must reproduce it closely.
  const again = new G722Decoder().decode(new G722Encoder().encode(decodedWhole));
  const rt = snr(decodedWhole, again);
  t.ok(rt.db > 25, `encode→decode→re-encode→decode keeps the audio (SNR ${rt.db.toFixed(1)} dB)`);

  const dec = g722.createDecoder();
  t.equal(dec.decode(new Uint8Array(0)).length, 0, 'empty payload gives no samples, no exception');
  t.equal(dec.decode(new Uint8Array([0, 1, 2, 3])).length, 8, 'invalid 64k codes 0-3 still decode');
  t.throws(() => g722.createEncoder(20).encode(new Int16Array(3)), RangeError, 'odd sample count is a caller bug');
  dec.close();
  dec.close();
});

t.test('G.722 encode+decode speed', async (t) => {
  const speech = speechLike(1);
  const enc = g722.createEncoder(20);
  const dec = g722.createDecoder();
  const run = (): number => {
    let samples = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < speech.length; i += 320) samples += dec.decode(enc.encode(speech.subarray(i, i + 320))).length;
    return samples / (Number(process.hrtime.bigint() - start) / 1e9);
  };
  run();
  const rate = Math.max(run(), run(), run());
  // The bound only catches a gross regression on a loaded 2-core CI box: 12x real time.
  t.ok(rate > 2e5, `faster than 200 k samples/s (measured ${(rate / 1e6).toFixed(2)} M)`);
  t.comment(`G.722 encode+decode: ${(rate / 1e6).toFixed(2)} M samples/s (best of 3 after warm-up, 1 s of 16 kHz audio each)`);
});
