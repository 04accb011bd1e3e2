import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  alawDecode,
  alawEncode,
  alawToLinear,
  linearToAlaw,
  linearToUlaw,
  pcma,
  pcmu,
  ulawDecode,
  ulawEncode,
  ulawToLinear,
} from '../../../src/media/codec/g711.ts';
import type { AudioCodec } from '../../../src/media/codec/codec.ts';

/**
 * An independent reference written straight from the G.711 tables: the 128 decision values of
 * each law as a list built from the segment end points and step sizes, searched linearly, and
 * reconstruction values at the interval mid-points. Negative inputs use the one's complement of
 * the sample, as the ITU-T G.191 reference software does.
 */
interface LawTable {
  name: string;
  /** Lower decision value of each of the 128 magnitude intervals, plus the top end. */
  decision: number[];
  /** Right shift taking a 16-bit sample to the table's uniform code. */
  shift: number;
  /** Reconstruction value (16-bit) of interval n. */
  value(n: number): number;
  /** Wire byte of magnitude interval n with the given sign. */
  code(n: number, positive: boolean): number;
}

function ulawTable(): LawTable {
  // G.711 Table 2: segment end points 31, 95, ..., 8159 in 14-bit units; steps 2, 4, ..., 256.
  const d: number[] = [0];
  for (let n = 1; n < 16; n++) d.push(2 * n - 1);
  for (let s = 1; s < 8; s++) for (let k = 0; k < 16; k++) d.push((1 << (s + 5)) - 33 + k * (1 << (s + 1)));
  d.push(8159);
  return {
    name: 'µ-law',
    decision: d,
    shift: 2,
    value: (n) => (n === 0 ? 0 : ((d[n]! + d[n + 1]!) / 2) * 4),
    code: (n, positive) => (positive ? 0x80 : 0) | (~n & 0x7f),
  };
}

function alawTable(): LawTable {
  // G.711 Table 1: segments 1 and 2 share step 1 (in units of 16 of a 16-bit sample), then 2..64.
  const d: number[] = [];
  for (let n = 0; n < 32; n++) d.push(n);
  for (let s = 2; s < 8; s++) for (let k = 0; k < 16; k++) d.push((1 << (s + 3)) + k * (1 << (s - 1)));
  d.push(2048);
  return {
    name: 'A-law',
    decision: d,
    shift: 4,
    value: (n) => (d[n]! + d[n + 1]!) * 8,
    code: (n, positive) => ((positive ? 0x80 : 0) | n) ^ 0x55,
  };
}

function referenceEncode(table: LawTable, x: number): number {
  const positive = x >= 0;
  const magnitude = (positive ? x : -x - 1) >> table.shift;
  let n = 0;
  while (n < 127 && magnitude >= table.decision[n + 1]!) n++;
  return table.code(n, positive);
}

function referenceDecode(table: LawTable, code: number): number {
  for (let n = 0; n < 128; n++) {
    if (table.code(n, true) === code) return table.value(n);
    if (table.code(n, false) === code) return -table.value(n);
  }
  throw new Error('unreachable');
}

const laws = [
  { table: ulawTable(), encode: linearToUlaw, decode: ulawToLinear, encodeArray: ulawEncode, decodeArray: ulawDecode, codec: pcmu, ffmpeg: 'mulaw' },
  { table: alawTable(), encode: linearToAlaw, decode: alawToLinear, encodeArray: alawEncode, decodeArray: alawDecode, codec: pcma, ffmpeg: 'alaw' },
];

const everySample = new Int16Array(65536);
for (let i = 0; i < 65536; i++) everySample[i] = i - 32768;

t.test('G.711 encoders agree with the table reference on all 65536 inputs', async (t) => {
  for (const law of laws) {
    let scalarMismatch = 0;
    let arrayMismatch = 0;
    const viaArray = law.encodeArray(everySample);
    for (let i = 0; i < 65536; i++) {
      const expected = referenceEncode(law.table, everySample[i]!);
      if (law.encode(everySample[i]!) !== expected) scalarMismatch++;
      if (viaArray[i] !== expected) arrayMismatch++;
    }
    t.equal(scalarMismatch, 0, `${law.table.name}: scalar encoder`);
    t.equal(arrayMismatch, 0, `${law.table.name}: table-driven array encoder`);
  }
});

t.test('G.711 decoders agree with the table reference on all 256 codes and round-trip', async (t) => {
  const codes = new Uint8Array(256).map((_, i) => i);
  for (const law of laws) {
    const decoded = law.decodeArray(codes);
    let mismatch = 0;
    for (let c = 0; c < 256; c++) {
      const expected = referenceDecode(law.table, c);
      if (law.decode(c) !== expected || decoded[c] !== expected) mismatch++;
    }
    t.equal(mismatch, 0, `${law.table.name}: decoded values`);
    const again = law.encodeArray(decoded);
    const moved: string[] = [];
    for (let c = 0; c < 256; c++) if (again[c] !== c) moved.push(`${c}->${again[c]}`);
    // µ-law has two codes for zero (0xFF and 0x7F); zero encodes as +0. A-law has no zero level.
    t.same(moved, law.table.name === 'µ-law' ? ['127->255'] : [], `${law.table.name}: decode→encode`);
  }
  t.same([ulawToLinear(0x00), ulawToLinear(0x80), ulawToLinear(0xff)], [-32124, 32124, 0], 'µ-law extremes');
  t.same([alawToLinear(0x2a), alawToLinear(0xaa), alawToLinear(0xd5)], [-32256, 32256, 8], 'A-law extremes');
});

t.test('G.711 matches ffmpeg: identical decoders, encoders differ only next to decision values', async (t) => {
  const probe = spawnSync('ffmpeg', ['-version']);
  t.ok(probe.status === 0, 'ffmpeg is installed (scripts/ci-deps.sh installs it)');
  if (probe.status !== 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'g711-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'all.raw'), new Uint8Array(everySample.buffer));
  writeFileSync(join(dir, 'codes.bin'), new Uint8Array(256).map((_, i) => i));
  for (const law of laws) {
    const ff = (args: string[]): void => {
      const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { cwd: dir });
      t.equal(r.status, 0, `ffmpeg ${args.join(' ')}`, { stderr: String(r.stderr) });
    };
    ff(['-f', 's16le', '-ar', '8000', '-ac', '1', '-i', 'all.raw', '-f', law.ffmpeg, `all.${law.ffmpeg}`]);
    ff(['-f', law.ffmpeg, '-ar', '8000', '-ac', '1', '-i', 'codes.bin', '-f', 's16le', `codes.${law.ffmpeg}.raw`]);
    const decoded = readFileSync(join(dir, `codes.${law.ffmpeg}.raw`));
    let decodeMismatch = 0;
    for (let c = 0; c < 256; c++) if (decoded.readInt16LE(2 * c) !== law.decode(c)) decodeMismatch++;
    t.equal(decodeMismatch, 0, `${law.table.name}: ffmpeg's decoder gives our values for all 256 codes`);

    // ffmpeg builds its encode table from rounded mid-points of its decode levels, symmetric
    // about 0, where G.711 (G.191) places the decision values of Tables 1/2 and quantises
    // negatives by one's complement: near some decision values it picks the adjacent level.
    const encoded = readFileSync(join(dir, `all.${law.ffmpeg}`));
    const ours = law.encodeArray(everySample);
    const levels = [...new Set(Array.from({ length: 256 }, (_, c) => law.decode(c)))].sort((a, b) => a - b);
    const rank = (code: number): number => levels.indexOf(law.decode(code));
    let differ = 0;
    let unexplained = 0;
    for (let i = 0; i < 65536; i++) {
      if (encoded[i] === ours[i]) continue;
      differ++;
      if (Math.abs(rank(encoded[i]!) - rank(ours[i]!)) !== 1) unexplained++;
    }
    t.equal(unexplained, 0, `${law.table.name}: every ffmpeg difference is the adjacent quantisation level`);
    t.ok(differ < 1024, `${law.table.name}: ffmpeg encoder differs on ${differ} of 65536 inputs`);
    t.comment(`${law.table.name}: ffmpeg's encoder picks the adjacent level for ${differ}/65536 inputs next to decision values; decoders identical on all 256 codes`);
  }
});

function roundTrip(t: Test, codec: AudioCodec): void {
  const enc = codec.createEncoder(20);
  const dec = codec.createDecoder();
  const frame = new Int16Array(160);
  for (let i = 0; i < 160; i++) frame[i] = Math.round(12000 * Math.sin((2 * Math.PI * 1000 * i) / 8000));
  const big = new Int16Array(400).fill(-1234);
  big.set(frame, 77);
  const payload = enc.encode(frame);
  t.equal(payload.length, 160, `${codec.info.name}: 160 bytes per 20 ms`);
  t.same(enc.encode(big.subarray(77, 237)), payload, `${codec.info.name}: same payload from a subarray at an offset`);
  const pcm = dec.decode(payload);
  t.same(enc.encode(pcm), payload, `${codec.info.name}: encode→decode→re-encode is stable`);
  const offsetBytes = new Uint8Array(300).fill(0x55);
  offsetBytes.set(payload, 33);
  t.same(dec.decode(offsetBytes.subarray(33, 193)), pcm, `${codec.info.name}: decodes a payload at an offset`);
  t.equal(dec.decode(new Uint8Array(0)).length, 0, `${codec.info.name}: empty payload gives no samples`);
  t.equal(dec.decode(new Uint8Array(3)).length, 3, `${codec.info.name}: any length is one sample per byte`);
  let maxErr = 0;
  for (let i = 0; i < 160; i++) maxErr = Math.max(maxErr, Math.abs(pcm[i]! - frame[i]!));
  t.ok(maxErr <= 512, `${codec.info.name}: reconstruction within one step (max error ${maxErr})`);
  enc.close();
  dec.close();
  enc.close();
}

t.test('PCMU and PCMA codecs: SDP identity, round trips at offsets, malformed payloads', async (t) => {
  t.same(pcmu.info, { name: 'PCMU', clockRate: 8000, sampleRate: 8000, channels: 1, staticPayloadType: 0 });
  t.same(pcma.info, { name: 'PCMA', clockRate: 8000, sampleRate: 8000, channels: 1, staticPayloadType: 8 });
  roundTrip(t, pcmu);
  roundTrip(t, pcma);
});

t.test('G.711 encode+decode speed', async (t) => {
  const frame = new Int16Array(160);
  for (let i = 0; i < 160; i++) frame[i] = (i * 397) & 0x7fff;
  for (const codec of [pcmu, pcma]) {
    const enc = codec.createEncoder(20);
    const dec = codec.createDecoder();
    const run = (): number => {
      let check = 0;
      const start = process.hrtime.bigint();
      for (let f = 0; f < 2000; f++) check += dec.decode(enc.encode(frame))[f % 160]!;
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      return Number.isFinite(check) ? (2000 * 160) / seconds : 0;
    };
    run();
    const rate = Math.max(run(), run(), run());
    t.ok(rate > 1e6, `${codec.info.name}: faster than 1 M samples/s (measured ${(rate / 1e6).toFixed(1)} M)`);
    t.comment(`${codec.info.name} encode+decode: ${(rate / 1e6).toFixed(1)} M samples/s (best of 3 after warm-up)`);
  }
});
