/**
 * The wasm loaders work from the esbuild bundle: `scripts/build.mjs` bundles a probe that imports
 * the speex resampler and the opus codec, copies their `.wasm` files beside it, and plain `node`
 * runs it from a folder with no node_modules. Then the SIMD binary is taken away (the plain build
 * must take over) and the opus binary (a clear error naming the file, not a fallback elsewhere).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../../helpers/gateway-process.ts';

const src = (path: string) => JSON.stringify(join(REPO_ROOT, path));

const PROBE = `
import { loadSpeexResampler } from ${src('src/media/resample/speex-resampler.ts')};
import { opus } from ${src('src/media/codec/opus.ts')};
import { dominantFrequency } from ${src('test/helpers/wav.ts')};

function tone(rate, seconds, f) {
  const out = new Int16Array(rate * seconds);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * f * i) / rate));
  return out;
}
function chunked(r, input) {
  const parts = [];
  const step = r.inputRate / 50;
  for (let i = 0; i < input.length; i += step) parts.push(...r.process(input.subarray(i, i + step)));
  return Int16Array.from(parts);
}
const report = {};
try {
  const factory = await loadSpeexResampler();
  const down = chunked(factory.create(48000, 8000), tone(48000, 1, 1000));
  const up = chunked(factory.create(8000, 48000), down);
  report.speex = { simd: factory.simd, down: down.length, up: up.length, frequency: dominantFrequency(up.subarray(4800), 48000).frequency };
} catch (err) {
  report.speex = { error: String(err.message) };
}
try {
  const enc = opus.createEncoder(20);
  const dec = opus.createDecoder();
  const input = tone(48000, 1, 440);
  const parts = [];
  for (let i = 0; i < input.length; i += 960) parts.push(...dec.decode(enc.encode(input.subarray(i, i + 960))));
  report.opus = { samples: parts.length, frequency: dominantFrequency(Int16Array.from(parts).subarray(4800), 48000).frequency };
  enc.close();
  dec.close();
} catch (err) {
  report.opus = { error: String(err.message) };
}
console.log(JSON.stringify(report));
`;

t.test('the bundle loads both wasm binaries from beside itself', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'hookswitch-wasm-probe-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  writeFileSync(join(work, 'probe-entry.ts'), PROBE);
  const outDir = join(work, 'bundle');
  const build = spawnSync(process.execPath, ['scripts/build.mjs', '--entry', join(work, 'probe-entry.ts'), '--outfile', join(outDir, 'probe.mjs')], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(build.status, 0, `build: ${build.stderr}`);
  t.same(
    readdirSync(outDir).sort(),
    ['opusscript_native_wasm.wasm', 'probe.mjs', 'speex-resampler-nonsimd.wasm', 'speex-resampler-simd.wasm'],
    'the bundle with the three wasm binaries its glue needs',
  );
  t.notOk(existsSync(join(work, 'node_modules')), 'no node_modules beside the bundle');

  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const probe = () => {
    const res = spawnSync(process.execPath, ['probe.mjs'], { cwd: outDir, encoding: 'utf8', timeout: 30_000, env });
    t.equal(res.status, 0, `probe exits 0: ${res.stderr}`);
    return JSON.parse(res.stdout.trim().split('\n').pop()!) as { speex: Record<string, unknown>; opus: Record<string, unknown> };
  };

  const all = probe();
  t.same(all.speex, { simd: true, down: 8000, up: 48000, frequency: 1000 }, '48 → 8 → 48 kHz with the SIMD build');
  t.same(all.opus, { samples: 48000, frequency: 440 }, 'opus encodes and decodes 1 s of 440 Hz');

  rmSync(join(outDir, 'speex-resampler-simd.wasm'));
  const plain = probe();
  t.same(plain.speex, { simd: false, down: 8000, up: 48000, frequency: 1000 }, 'without the SIMD binary the plain build serves');

  rmSync(join(outDir, 'opusscript_native_wasm.wasm'));
  const noOpus = probe();
  t.match(noOpus.opus, { error: /cannot find opusscript_native_wasm\.wasm/ }, 'without the opus binary: an error naming it');
  t.same(noOpus.speex, plain.speex, 'and the resampler is unaffected');
});
