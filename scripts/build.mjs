#!/usr/bin/env node
// Bundles the CLI and its dependencies into one ESM file, dist/hookswitch.mjs, that runs with
// plain `node` (>= 20) and no node_modules next to it.
import { build } from 'esbuild';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// --outfile lets tests build a throw-away copy without touching dist/.
const { values } = parseArgs({ options: { outfile: { type: 'string' } } });
const outfile = values.outfile ? resolve(values.outfile) : join(root, 'dist', 'hookswitch.mjs');

// CommonJS dependencies bundled into ESM call require() for Node built-ins; give them one.
// (esbuild renames a bundled module's own top-level `require` out of the way, but not
// `__dirname`/`__filename`, so the banner defines only `require`.)
const banner = [
  '#!/usr/bin/env node',
  "import { createRequire as __hookswitchCreateRequire } from 'node:module';",
  'const require = __hookswitchCreateRequire(import.meta.url);',
].join('\n');

if (!values.outfile) await rm(join(root, 'dist'), { recursive: true, force: true });
await mkdir(dirname(outfile), { recursive: true });

let result;
try {
  result = await build({
    absWorkingDir: root,
    entryPoints: ['src/cli/main.ts'],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minify: false,
    sourcemap: false,
    legalComments: 'inline',
    banner: { js: banner },
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
