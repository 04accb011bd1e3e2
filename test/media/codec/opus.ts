/**
 * Opus through opusscript's libopus wasm: RFC 7587 identity, tone round trips, packet shape and
 * bit rate, loss concealment (PLC; FEC is not reachable through opusscript and `next` is
 * ignored), stereo packets decoding to mono, malformed payloads, and the lifecycle.
 */
import OpusScript from 'opusscript';
import t from 'tap';
import { codecId } from '../../../src/media/codec/codec.ts';
import { createOpusCodec, opus } from '../../../src/media/codec/opus.ts';
import { dominantFrequency } from '../../helpers/wav.ts';

const FRAME = 960;

/** `seconds` of a sum of sines at 48 kHz, cut into 20 ms frames. */
function frames(seconds: number, tones: { f: number; a: number }[]): Int16Array[] {
  const out: Int16Array[] = [];
  for (let k = 0; k < seconds * 50; k++) {
    const frame = new Int16Array(FRAME);
    for (let i = 0; i < FRAME; i++) {
      const n = k * FRAME + i;
      let v = 0;
      for (const { f, a } of tones) v += a * Math.sin((2 * Math.PI * f * n) / 48000);
      frame[i] = Math.round(v);
    }
    out.push(frame);
  }
  return out;
}

/** A voiced-speech stand-in: a 150 Hz buzz with formant-like harmonics and a slow vibrato. */
function speechLike(seconds: number): Int16Array[] {
  const out: Int16Array[] = [];
  let phase = 0;
  for (let k = 0; k < seconds * 50; k++) {
    const frame = new Int16Array(FRAME);
    for (let i = 0; i < FRAME; i++) {
      const n = k * FRAME + i;
      phase += (2 * Math.PI * (150 + 10 * Math.sin((2 * Math.PI * 3 * n) / 48000))) / 48000;
      let v = 0;
      for (const [h, a] of [[1, 3000], [2, 2500], [3, 4000], [5, 2000], [8, 1200], [13, 500]] as const) v += a * Math.sin(h * phase);
      frame[i] = Math.round(v);
    }
    out.push(frame);
  }
  return out;
}

function join(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function snrDb(reference: Int16Array, test: Int16Array): number {
  let sig = 0;
  let err = 0;
  for (let i = 0; i < reference.length; i++) {
    sig += reference[i]! ** 2;
    err += (reference[i]! - (test[i] ?? 0)) ** 2;
  }
  return 10 * Math.log10(sig / Math.max(err, 1e-9));
}

t.test('describes itself as RFC 7587 says: opus/48000/2 with mono and in-band FEC in fmtp', async (t) => {
  t.same(opus.info, { name: 'opus', clockRate: 48000, sampleRate: 48000, channels: 2, fmtp: 'useinbandfec=1; stereo=0; sprop-stereo=0' });
  t.equal(codecId(opus.info), 'opus/48000/2');
});

t.test('tones survive the round trip at their frequency', async (t) => {
  for (const f of [440, 1000]) {
    const enc = opus.createEncoder(20);
    const dec = opus.createDecoder();
    const input = frames(1, [{ f, a: 8000 }]);
    const packets = input.map((frame) => enc.encode(frame));
    const decoded = packets.map((p) => dec.decode(p));
    t.ok(decoded.every((d) => d.length === FRAME), `${f} Hz: every packet decodes to 960 samples`);
    const steady = join(decoded).subarray(4800);
    const dominant = dominantFrequency(steady, 48000);
    t.equal(dominant.frequency, f, `${f} Hz arrives at ${dominant.frequency} Hz`);
    t.ok(dominant.ratio > 0.9, `${f} Hz: ${(dominant.ratio * 100).toFixed(1)} % of the energy in the tone`);
    t.ok(Math.abs(dominant.rms - 8000 / Math.SQRT2) < 800, `${f} Hz: level kept (rms ${dominant.rms.toFixed(0)})`);
    const bytes = packets.reduce((n, p) => n + p.length, 0);
    const kbps = (bytes * 8) / 1000;
    t.comment(`opus ${f} Hz tone: ${(bytes / packets.length).toFixed(1)} bytes a packet, ${kbps.toFixed(1)} kbit/s`);
    t.ok(kbps > 12 && kbps < 36, `${f} Hz: ${kbps.toFixed(1)} kbit/s near the 24 kbit/s target`);
    enc.close();
    dec.close();
  }
});

t.test('packets are single mono 20 ms frames (RFC 6716 §3.1 TOC)', async (t) => {
  const enc = opus.createEncoder(20);
  const configs = new Set<number>();
  for (const frame of speechLike(0.5)) {
    const toc = enc.encode(frame)[0]!;
    configs.add(toc >> 3);
    t.equal(toc & 0x04, 0, 'stereo flag clear');
    t.equal(toc & 0x03, 0, 'frame count code 0: one frame');
  }
  // 20 ms configs: SILK 1/5/9, hybrid 13/15, CELT 19/23/27/31 (RFC 6716 table 2).
  const twentyMs = new Set([1, 5, 9, 13, 15, 19, 23, 27, 31]);
  t.ok([...configs].every((c) => twentyMs.has(c)), `configs ${[...configs].join(', ')} are 20 ms ones`);
  enc.close();
  const enc60 = opus.createEncoder(60);
  const sixty = enc60.encode(new Int16Array(2880));
  const dec = opus.createDecoder();
  t.equal(dec.decode(sixty).length, 2880, 'a 60 ms encoder makes 60 ms packets');
  enc60.close();
  dec.close();
});

t.test('concealment returns exactly the samples asked for', async (t) => {
  const enc = opus.createEncoder(20);
  const dec = opus.createDecoder();
  t.same(dec.conceal!(960), new Int16Array(960), 'before any packet: silence');
  for (const frame of frames(0.2, [{ f: 440, a: 8000 }])) dec.decode(enc.encode(frame));
  for (const samples of [960, 480, 1920, 2880, 1500, 100, 0]) {
    t.equal(dec.conceal!(samples).length, samples, `${samples} samples`);
  }
  t.equal(dec.decode(enc.encode(frames(0.02, [{ f: 440, a: 8000 }])[0]!)).length, 960, 'decoding goes on after concealment');
  enc.close();
  dec.close();
});

t.test('a lost packet: PLC output measured against the lost frame; `next` changes nothing', async (t) => {
  for (const [name, input] of [['440 Hz tone', frames(1, [{ f: 440, a: 8000 }])], ['speech-like buzz', speechLike(1)]] as const) {
    const enc = opus.createEncoder(20);
    const packets = input.map((frame) => enc.encode(frame));
    enc.close();
    const lost = 30;
    const clean = opus.createDecoder();
    const withNext = opus.createDecoder();
    const withoutNext = opus.createDecoder();
    let reference: Int16Array = new Int16Array(0);
    let fec: Int16Array = new Int16Array(0);
    let plc: Int16Array = new Int16Array(0);
    for (let k = 0; k < packets.length; k++) {
      const decoded = clean.decode(packets[k]!);
      if (k === lost) {
        reference = decoded;
        fec = withNext.conceal!(FRAME, packets[k + 1]);
        plc = withoutNext.conceal!(FRAME);
      } else {
        withNext.decode(packets[k]!);
        withoutNext.decode(packets[k]!);
      }
    }
    const silence = snrDb(reference, new Int16Array(FRAME));
    const plcSnr = snrDb(reference, plc);
    const fecSnr = snrDb(reference, fec);
    const firstHalf = snrDb(reference.subarray(0, 480), plc.subarray(0, 480));
    t.comment(
      `opus ${name}, packet ${lost} lost: PLC SNR ${plcSnr.toFixed(1)} dB (first 10 ms ${firstHalf.toFixed(1)} dB), ` +
        `conceal with next ${fecSnr.toFixed(1)} dB, silence ${silence.toFixed(1)} dB`,
    );
    t.equal(fec.length, FRAME);
    t.equal(plc.length, FRAME);
    t.same(fec, plc, `${name}: with next the output is the PLC's (FEC not reachable through opusscript)`);
    t.ok(firstHalf > silence + 3, `${name}: the PLC continues the signal better than silence over its first 10 ms`);
    clean.close();
    withNext.close();
    withoutNext.close();
  }
});

t.test('a stereo packet from a peer decodes to mono', async (t) => {
  // opusscript's own wrapper makes the stereo packet (interleaved little-endian bytes).
  const stereo = new OpusScript(48000, 2, OpusScript.Application.AUDIO);
  stereo.setBitrate(96000);
  const dec = opus.createDecoder();
  const out: Int16Array[] = [];
  let stereoFlags = 0;
  for (let k = 0; k < 25; k++) {
    const pcm = Buffer.alloc(FRAME * 4);
    for (let i = 0; i < FRAME; i++) {
      const n = k * FRAME + i;
      pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * n) / 48000)), 4 * i);
      pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 1000 * n) / 48000)), 4 * i + 2);
    }
    const packet = new Uint8Array(stereo.encode(pcm, FRAME));
    if (packet[0]! & 0x04) stereoFlags++;
    out.push(dec.decode(packet));
  }
  stereo.delete();
  t.ok(stereoFlags > 20, `the peer's packets are stereo (${stereoFlags} of 25 with the TOC stereo flag)`);
  t.ok(out.every((d) => d.length === FRAME), 'each decodes to 960 mono samples');
  const steady = join(out).subarray(4800);
  const both = dominantFrequency(steady, 48000, [440, 1000]);
  const left = dominantFrequency(steady, 48000, [440]);
  const right = dominantFrequency(steady, 48000, [1000]);
  t.ok(left.ratio > 0.3 && right.ratio > 0.3, `both channels mixed in (440 Hz ${(left.ratio * 100).toFixed(0)} %, 1 kHz ${(right.ratio * 100).toFixed(0)} %)`);
  t.ok(both.rms > 3000, `at a mono level (rms ${both.rms.toFixed(0)})`);
  dec.close();
});

t.test('malformed payloads give an empty array and leave the decoder working', async (t) => {
  const enc = opus.createEncoder(20);
  const dec = opus.createDecoder();
  const good = frames(0.5, [{ f: 1000, a: 8000 }]).map((f) => enc.encode(f));
  dec.decode(good[0]!);
  const table: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['code 3 with no frame count byte', Uint8Array.of(0xfb)],
    ['code 2 with a length past the end', Uint8Array.of(0xfa, 0xfc, 0xff, 1, 2)],
    ['code 1 with an odd remainder', Uint8Array.of(0xf9, 1, 2, 3)],
    ['code 3 with 0 frames', Uint8Array.of(0xfb, 0x00)],
    ['larger than 3 frames of 1275 bytes', new Uint8Array(4000).fill(0x11)],
  ];
  for (const [name, payload] of table) t.equal(dec.decode(payload).length, 0, name);
  let seed = 12345;
  let lengths = 0;
  for (let k = 0; k < 500; k++) {
    const junk = new Uint8Array(1 + (k % 200));
    for (let i = 0; i < junk.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      junk[i] = seed >>> 24;
    }
    const out = dec.decode(junk);
    if (out.length % 120 === 0 && out.length <= 5760) lengths++;
  }
  t.equal(lengths, 500, '500 random payloads: each decodes to nothing or to whole 2.5 ms steps');
  const after = join(good.slice(1).map((p) => dec.decode(p)));
  t.equal(dominantFrequency(after.subarray(960), 48000).frequency, 1000, 'the decoder still decodes good packets');
  enc.close();
  dec.close();
});

t.test('settings, misuse and close', async (t) => {
  t.throws(() => opus.createEncoder(30), RangeError, 'ptime 30 is not an opus frame size');
  t.throws(() => createOpusCodec({ bitrate: 1000 }), RangeError);
  t.throws(() => createOpusCodec({ complexity: 11 }), RangeError);
  const loud = createOpusCodec({ bitrate: 64000, complexity: 10 }).createEncoder(20);
  const quiet = createOpusCodec({ bitrate: 12000, inbandFec: false, packetLossPercent: 0 }).createEncoder(20);
  let high = 0;
  let low = 0;
  for (const frame of speechLike(0.5)) {
    high += loud.encode(frame).length;
    low += quiet.encode(frame).length;
  }
  t.ok(high > 2 * low, `the bit rate setting takes effect (${high} vs ${low} bytes)`);
  t.throws(() => loud.encode(new Int16Array(480)), RangeError, 'a frame of the wrong size is refused');
  loud.close();
  loud.close();
  t.throws(() => loud.encode(new Int16Array(960)), /after close/);
  quiet.close();
  const dec = opus.createDecoder();
  dec.close();
  dec.close();
  t.throws(() => dec.decode(Uint8Array.of(0xf8)), /after close/);
});
