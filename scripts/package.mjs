#!/usr/bin/env node
// Builds the Debian package hookswitch_<version>_all.deb (default into dist/, or --out DIR):
//   /usr/lib/hookswitch/dist/      the bundle as `scripts/build.mjs` makes it (hookswitch.mjs, the
//                                  .wasm files, serialport's prebuilds/ for linux-x64/arm/arm64)
//   /usr/lib/hookswitch/board/     the board profiles, found by the bundle at `../board/`
//                                  (src/hardware/board-registry.ts), as in the repository
//   /usr/bin/hookswitch            a relative symlink to the bundle (it has a node shebang)
//   /lib/systemd/system/hookswitch.service, /etc/hookswitch/config.json (a conffile),
//   /usr/share/doc/hookswitch/     copyright (from LICENSE), changelog.gz, README, docs/
// The bundle is always built afresh into the staging tree, so a stale dist/ can never be packaged
// and dist/ is not touched except for the .deb written there.
//
// Usage: node scripts/package.mjs [--out DIR]
// The control file's Maintainer comes from package.json "author", else DEBFULLNAME/DEBEMAIL.
// SOURCE_DATE_EPOCH, when set, fixes the changelog date and every file's mtime.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write('usage: node scripts/package.mjs [--out DIR]   builds hookswitch_<version>_all.deb (default DIR: dist/)\n');
  process.exit(0);
}
const outDir = values.out ? resolve(values.out) : join(root, 'dist');

const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const version = debianVersion(pkg.version);
const maintainer = maintainerOf(pkg);
const epoch = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : undefined;
if (epoch !== undefined && !Number.isInteger(epoch)) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds (got ${process.env.SOURCE_DATE_EPOCH})`);

/**
 * npm's semver `1.2.0-rc.1` as a Debian version that sorts the same way: a pre-release sorts
 * before its release, which in Debian needs `~` (Debian Policy §5.6.12). Build metadata `+x` is
 * legal as it is.
 */
function debianVersion(semver) {
  if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.test(semver)) throw new Error(`package.json version ${semver} is not semver`);
  const [main, build] = semver.split('+');
  const dash = main.indexOf('-');
  const debian = dash < 0 ? main : `${main.slice(0, dash)}~${main.slice(dash + 1).replaceAll('-', '.')}`;
  return build ? `${debian}+${build}` : debian;
}

/** `Name <email>` (Debian Policy §5.6.2) from package.json `author` or DEBFULLNAME/DEBEMAIL. */
function maintainerOf(p) {
  const a = p.author;
  if (typeof a === 'string' && /<[^>]+@[^>]+>/.test(a)) return a.replace(/\s*\(.*\)\s*$/, '');
  if (a && typeof a === 'object' && a.name && a.email) return `${a.name} <${a.email}>`;
  const name = process.env.DEBFULLNAME || 'hookswitch authors';
  const email = process.env.DEBEMAIL || 'hookswitch@localhost';
  return `${name} <${email}>`;
}

const SYNOPSIS = 'SIP gateway for analog phones and door intercoms on single-board computers';
// Description lines stay within 80 columns with their leading space (Debian Policy §5.6.13).
const EXTENDED = [
  'hookswitch turns an analog handset or a door intercom wired to a Raspberry Pi',
  '(GPIO or a USB serial microcontroller, plus an ALSA sound card) into a SIP',
  'phone. It registers upstream to a provider or PBX, runs a small registrar for',
  'LAN softphones, relays and transcodes RTP, and runs as a hardened systemd',
  'service.',
];

// lintian's tags that this package's layout makes on purpose, each with its reason (lintian reads
// the comment above an override as its justification).
const LINTIAN_OVERRIDES = `# serialport's native bindings for every Linux architecture hookswitch supports ship together so
# one architecture-independent package serves x86-64, armhf and arm64; node-gyp-build loads the
# one that matches the running node. They need only glibc, which nodejs already depends on.
${pkg.name}: arch-independent-package-contains-binary-or-object [usr/lib/hookswitch/dist/prebuilds/*]
${pkg.name}: missing-dependency-on-libc needed by usr/lib/hookswitch/dist/prebuilds/*
`;

const staging = await mkdtemp(join(tmpdir(), 'hookswitch-deb-'));
try {
  const lib = join(staging, 'usr/lib/hookswitch');
  const bundle = join(lib, 'dist/hookswitch.mjs');
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--outfile', bundle], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  await cp(join(root, 'board'), join(lib, 'board'), { recursive: true });

  await mkdir(join(staging, 'usr/bin'), { recursive: true });
  await symlink(relative(join(staging, 'usr/bin'), bundle), join(staging, 'usr/bin/hookswitch'));

  // Debian 12 still installs units under /lib (the /usr-merge file moves came after bookworm);
  // on merged-/usr systems, Raspberry Pi OS included, it is the same directory.
  await mkdir(join(staging, 'lib/systemd/system'), { recursive: true });
  await cp(join(root, 'systemd/hookswitch.service'), join(staging, 'lib/systemd/system/hookswitch.service'));

  await mkdir(join(staging, 'etc/hookswitch'), { recursive: true });
  await cp(join(root, 'packaging/config.json'), join(staging, 'etc/hookswitch/config.json'));

  await writeDocs(join(staging, 'usr/share/doc/hookswitch'));
  await mkdir(join(staging, 'usr/share/lintian/overrides'), { recursive: true });
  await writeFile(join(staging, 'usr/share/lintian/overrides', pkg.name), LINTIAN_OVERRIDES);

  // Modes first (dpkg-deb keeps them; --root-owner-group makes every owner root:root).
  await normaliseModes(staging);
  await chmod(bundle, 0o755);

  const debian = join(staging, 'DEBIAN');
  await mkdir(debian, { mode: 0o755 });
  for (const script of ['postinst', 'prerm', 'postrm']) {
    await cp(join(root, 'packaging/deb', script), join(debian, script));
    await chmod(join(debian, script), 0o755);
  }
  await cp(join(root, 'packaging/deb/conffiles'), join(debian, 'conffiles'));
  await chmod(join(debian, 'conffiles'), 0o644);
  const conffiles = (await readFile(join(debian, 'conffiles'), 'utf8')).split('\n').filter(Boolean);
  await writeFile(join(debian, 'md5sums'), await md5sums(staging, conffiles), { mode: 0o644 });
  await writeFile(join(debian, 'control'), control(await installedSize(staging)), { mode: 0o644 });
  if (epoch !== undefined) await touchAll(staging, epoch);

  await mkdir(outDir, { recursive: true });
  const deb = join(outDir, `${pkg.name}_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--build', '--root-owner-group', '-Zxz', staging, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
  console.log(`built ${relative(process.cwd(), deb) || deb}`);
} finally {
  await rm(staging, { recursive: true, force: true });
}

/** The binary control file, fields as in Debian Policy §5.3. */
function control(sizeKiB) {
  return [
    `Package: ${pkg.name}`,
    `Version: ${version}`,
    // The bundle is JavaScript and WebAssembly; serialport's native prebuilds for every
    // supported architecture ride along and node-gyp-build picks the one that matches.
    'Architecture: all',
    `Maintainer: ${maintainer}`,
    `Installed-Size: ${sizeKiB}`,
    `Depends: nodejs (>= ${pkg.engines.node.replace(/^>=\s*/, '')}), alsa-utils`,
    'Recommends: gpiod',
    'Section: comm',
    'Priority: optional',
    ...(pkg.homepage ? [`Homepage: ${pkg.homepage}`] : []),
    `Description: ${SYNOPSIS}`,
    ...EXTENDED.map((line) => ` ${line}`),
    '',
  ].join('\n');
}

async function writeDocs(doc) {
  await mkdir(doc, { recursive: true });
  const license = await readFile(join(root, 'LICENSE'), 'utf8');
  const holder = /^Copyright \(c\) (.+)$/m.exec(license)?.[1] ?? 'hookswitch authors';
  // Machine-readable copyright format 1.0 (DEP-5), which Debian Policy §12.5 recommends.
  const copyright = [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    `Upstream-Name: ${pkg.name}`,
    '',
    'Files: *',
    `Copyright: ${holder}`,
    `License: ${pkg.license}`,
    ...license.trimEnd().split('\n').map((line) => (line.trim() === '' ? ' .' : ` ${line}`)),
    '',
  ].join('\n');
  await writeFile(join(doc, 'copyright'), copyright);

  const date = new Date((epoch ?? Math.floor(Date.now() / 1000)) * 1000).toUTCString().replace('GMT', '+0000');
  const changelog = `${pkg.name} (${version}) unstable; urgency=medium\n\n  * Release ${pkg.version}.\n\n -- ${maintainer}  ${date}\n`;
  await writeFile(join(doc, 'changelog.gz'), gzipSync(changelog, { level: 9 }));

  // Documentation over 4 KiB is installed gzipped (Debian Policy §12.3).
  const docs = [['README.md', 'README.md'], ...(await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => [join('docs', f), f])];
  for (const [from, name] of docs) {
    const text = await readFile(join(root, from));
    if (text.length > 4096) await writeFile(join(doc, `${name}.gz`), gzipSync(text, { level: 9 }));
    else await writeFile(join(doc, name), text);
  }
}

async function* walk(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    yield { path, entry };
    if (entry.isDirectory()) yield* walk(path);
  }
}

async function normaliseModes(dir) {
  await chmod(dir, 0o755);
  for await (const { path, entry } of walk(dir)) {
    if (entry.isDirectory()) await chmod(path, 0o755);
    else if (entry.isFile()) await chmod(path, 0o644);
  }
}

/** DEBIAN/md5sums: every regular file but the conffiles (dpkg keeps their sums itself). */
async function md5sums(dir, conffiles) {
  const lines = [];
  for await (const { path, entry } of walk(dir)) {
    if (!entry.isFile()) continue;
    const rel = relative(dir, path);
    if (rel.startsWith('DEBIAN/') || conffiles.includes(`/${rel}`)) continue;
    lines.push(`${createHash('md5').update(await readFile(path)).digest('hex')}  ${rel}`);
  }
  return `${lines.sort((a, b) => a.slice(34).localeCompare(b.slice(34))).join('\n')}\n`;
}

/**
 * Installed-Size in KiB (Debian Policy §5.6.20): each file rounded up to a whole KiB, each
 * directory and symlink one KiB, as dpkg-gencontrol counts.
 */
async function installedSize(dir) {
  let kib = 0;
  for await (const { path, entry } of walk(dir)) {
    if (relative(dir, path).startsWith('DEBIAN')) continue;
    kib += entry.isFile() ? Math.ceil((await lstat(path)).size / 1024) : 1;
  }
  return kib;
}

async function touchAll(dir, seconds) {
  for await (const { path, entry } of walk(dir)) if (!entry.isSymbolicLink()) await utimes(path, seconds, seconds);
  await utimes(dir, seconds, seconds);
}
