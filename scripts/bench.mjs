#!/usr/bin/env node
// 1. The parser benchmark on bundled code, as it ships: esbuild bundles
// scripts/bench-parser.ts (our parser and the `sip` package alike) into one file, then node runs
// it. Running through a TypeScript loader instead would measure the loader's module wrappers.
// 2. The SIP load benchmark (scripts/bench-sip.ts): registrations/s and calls/s with SIPp
//    against the built gateway (dist/, rebuilt here) and kamailio, and the RTP relay's CPU. It orchestrates processes,
//    so it runs through tsx; what it measures runs as shipped.
// 3. The media benchmark (scripts/bench-media.ts): CPU per call-minute of a device call next to
//    baresip, the latency added inside the gateway, transcoding cost. It builds its own copy of
//    the bundle for the gateway process and runs the pure media core in-process through tsx.
// Options: --parser-only, --sip-only, --media-only, --quick (fewer, shorter steps).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'node_modules', '.cache', 'hookswitch-bench', 'bench-parser.mjs');
mkdirSync(dirname(outfile), { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: ['scripts/bench-parser.ts'],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
});
const args = process.argv.slice(2);
const sipOnly = args.includes('--sip-only');
const parserOnly = args.includes('--parser-only');
const mediaOnly = args.includes('--media-only');
const quick = args.includes('--quick') ? ['--quick'] : [];
let status = 0;
if (!sipOnly && !mediaOnly) {
  const run = spawnSync(process.execPath, [outfile], { stdio: 'inherit' });
  status = run.status ?? 1;
}
if (!parserOnly && !mediaOnly && status === 0) {
  const built = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
  const sip = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'bench-sip.ts'), ...quick], {
    stdio: 'inherit',
    cwd: root,
    timeout: 300_000,
  });
  status = sip.status ?? 1;
}
if (!parserOnly && !sipOnly && status === 0) {
  const media = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'bench-media.ts'), ...quick], {
    stdio: 'inherit',
    cwd: root,
    timeout: 240_000,
  });
  status = media.status ?? 1;
}
process.exit(status);
