#!/usr/bin/env node
// Bundles the CLI and its dependencies into one ESM file, dist/hookswitch.mjs, that runs with
// plain `node` (>= 20) and no node_modules next to it: only the WebAssembly binaries of the
// bundled codec/resampler packages lie beside it, where their loaders look first.
import { build } from 'esbuild';
import { chmod, copyFile, cp, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// --outfile lets tests build a throw-away copy without touching dist/; --entry bundles another
// module the same way (a test's probe of the wasm loaders).
const { values } = parseArgs({ options: { outfile: { type: 'string' }, entry: { type: 'string' } } });
const outfile = values.outfile ? resolve(values.outfile) : join(root, 'dist', 'hookswitch.mjs');
const entry = values.entry ? resolve(values.entry) : join(root, 'src', 'cli', 'main.ts');

// The .wasm files that the loaders in src/media read from beside the bundle, by the bundled
// emscripten glue (a metafile input, relative to the repository) that needs them.
const WASM = {
  'node_modules/@echogarden/speex-resampler-wasm/wasm/speex-resampler-simd.js': 'speex-resampler-simd.wasm',
  'node_modules/@echogarden/speex-resampler-wasm/wasm/speex-resampler-nonsimd.js': 'speex-resampler-nonsimd.wasm',
  'node_modules/opusscript/build/opusscript_native_wasm.js': 'opusscript_native_wasm.wasm',
};

// CommonJS dependencies bundled into ESM call require() for Node built-ins; give them one.
// (esbuild renames a bundled module's own top-level `require` out of the way, but not
// `__dirname`/`__filename`, so the banner defines only `require`.) CommonJS code that reads a free
// `__dirname` (opusscript's emscripten glue) gets the bundle's folder under another name, by
// `define` below.
const banner = [
  '#!/usr/bin/env node',
  "import { createRequire as __hookswitchCreateRequire } from 'node:module';",
  "import { fileURLToPath as __hookswitchFileURLToPath } from 'node:url';",
  'const require = __hookswitchCreateRequire(import.meta.url);',
  "const __hookswitchDirname = __hookswitchFileURLToPath(new URL('.', import.meta.url));",
].join('\n');

if (!values.outfile) await rm(join(root, 'dist'), { recursive: true, force: true });
await mkdir(dirname(outfile), { recursive: true });

// serialport's native binding is found by node-gyp-build in `prebuilds/<platform>-<arch>/` of its
// package folder (`join(__dirname, '../')`). In the bundle that folder is the bundle's own, and the
// Linux prebuilds (x64, arm for armv6/armv7, arm64) are copied into `prebuilds/` beside it.
const SERIAL_BINDINGS = 'node_modules/@serialport/bindings-cpp/dist/serialport-bindings.js';
const SERIAL_PLATFORMS = ['linux-x64', 'linux-arm', 'linux-arm64'];
const serialportPrebuilds = {
  name: 'serialport-prebuilds',
  setup(b) {
    b.onLoad({ filter: /[\\/]@serialport[\\/]bindings-cpp[\\/]dist[\\/]serialport-bindings\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const rewritten = source.replace("(0, path_1.join)(__dirname, '../')", '__hookswitchDirname');
      if (rewritten === source) throw new Error(`${SERIAL_BINDINGS}: the binding path to rewrite was not found (serialport changed?)`);
      return { contents: rewritten, loader: 'js' };
    });
  },
};

let result;
try {
  result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minify: false,
    sourcemap: false,
    legalComments: 'inline',
    banner: { js: banner },
    define: { __dirname: '__hookswitchDirname' },
    plugins: [serialportPrebuilds],
    metafile: true,
    logLevel: 'warning',
  });
} catch {
  // esbuild has already printed the errors with their locations.
  console.error('build failed');
  process.exit(1);
}

await chmod(outfile, 0o755);
const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs)[0]].bytes;
console.log(`built ${relative(process.cwd(), outfile)} (${(bytes / 1024).toFixed(1)} KiB)`);

for (const input of Object.keys(result.metafile.inputs)) {
  const wasm = WASM[input];
  if (!wasm) continue;
  const copy = join(dirname(outfile), wasm);
  await copyFile(join(root, dirname(input), wasm), copy);
  console.log(`copied ${relative(process.cwd(), copy)}`);
}

if (Object.keys(result.metafile.inputs).includes(SERIAL_BINDINGS)) {
  for (const platform of SERIAL_PLATFORMS) {
    const from = join(root, 'node_modules/@serialport/bindings-cpp/prebuilds', platform);
    const to = join(dirname(outfile), 'prebuilds', platform);
    await cp(from, to, { recursive: true, filter: (src) => !src.includes('musl') });
  }
  console.log(`copied serialport prebuilds for ${SERIAL_PLATFORMS.join(', ')} to ${relative(process.cwd(), join(dirname(outfile), 'prebuilds'))}`);
}
