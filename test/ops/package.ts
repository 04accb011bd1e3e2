/**
 * The Debian package as a user and dpkg see it: `scripts/package.mjs` builds
 * hookswitch_<version>_all.deb once; its control fields, contents and checksums are read back with
 * dpkg-deb; the extracted tree runs with plain node (help, version, the four board profiles); the
 * default config validates; and the maintainer scripts run against recording stubs of the user,
 * group and systemd commands, in a chroot (so "systemd is running" can be true without touching
 * this machine's /etc) and under a DPKG_ROOT prefix, through install, upgrade, remove and purge.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setPriority } from 'node:os';
import t from 'tap';
import pkg from '../../package.json' with { type: 'json' };
import { resolveConfig } from '../../src/config/config.ts';
import { REPO_ROOT } from '../helpers/gateway-process.ts';
import { scratch } from '../helpers/scratch.ts';

// Heavy (package builds, debootstrap, dpkg) and not timing-sensitive: at the lowest CPU priority,
// children included, so the real-time audio tests tap runs alongside keep their deadlines.
setPriority(19);

const work = scratch('package');
const outDir = join(work.dir, 'out');
const built = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'package.mjs'), '--out', outDir], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
const deb = join(outDir, `hookswitch_${pkg.version}_all.deb`);
const tree = join(work.dir, 'tree');
const control = join(work.dir, 'control');
const BOARDS = ['pi-ag1171-handset', 'pi-intercom', 'pi-rotary-bell', 'serial-handset'];
const SCRIPTS = ['postinst', 'prerm', 'postrm'] as const;

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, ...opts });
}

t.test('package.mjs builds the .deb', async (t) => {
  t.equal(built.status, 0, `package.mjs: ${built.stderr}`);
  t.match(built.stdout, `hookswitch_${pkg.version}_all.deb`);
  t.ok(existsSync(deb), `${deb} exists`);
  t.equal(run('dpkg-deb', ['-x', deb, tree]).status, 0, 'dpkg-deb -x');
  t.equal(run('dpkg-deb', ['-e', deb, control]).status, 0, 'dpkg-deb -e');
});

t.test('control fields', async (t) => {
  const table: [field: string, expected: string | RegExp][] = [
    ['Package', 'hookswitch'],
    ['Version', pkg.version],
    ['Architecture', 'all'],
    ['Depends', 'nodejs (>= 20), alsa-utils'],
    ['Recommends', 'gpiod'],
    ['Maintainer', /^[^<>]+ <[^<>@]+@[^<>]+>$/],
    ['Installed-Size', /^\d+$/],
    ['Description', /^SIP gateway .{0,70}\n( \S.{0,78}\n?)+$/],
  ];
  for (const [field, expected] of table) {
    const value = run('dpkg-deb', ['-f', deb, field]).stdout.replace(/\n$/, '');
    if (typeof expected === 'string') t.equal(value, expected, field);
    else t.match(value, expected, field);
  }
  // Installed-Size is KiB (Debian Policy §5.6.20): at least the bytes shipped, at most one KiB
  // more per entry.
  const size = Number(run('dpkg-deb', ['-f', deb, 'Installed-Size']).stdout);
  let bytes = 0;
  let entries = 0;
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = lstatSync(path);
      entries += 1;
      if (st.isDirectory()) walk(path);
      else if (st.isFile()) bytes += st.size;
    }
  };
  walk(tree);
  t.ok(size >= bytes / 1024 && size <= bytes / 1024 + entries + 1, `Installed-Size ${size} KiB for ${bytes} bytes in ${entries} entries`);
});

t.test('contents: the bundle, wasm, prebuilds, board profiles, unit, conffile, docs', async (t) => {
  const listing = run('dpkg-deb', ['-c', deb]).stdout.trim().split('\n');
  const entries = new Map<string, { mode: string; owner: string; link?: string }>();
  for (const line of listing) {
    const m = /^(\S+)\s+(\S+)\s+\d+\s+\S+\s+\S+\s+\.(\/\S*?)\/?(?: -> (\S+))?$/.exec(line);
    if (!m) {
      t.fail(`unparsed dpkg-deb -c line: ${line}`);
      continue;
    }
    entries.set(m[3]!, { mode: m[1]!, owner: m[2]!, ...(m[4] ? { link: m[4] } : {}) });
  }
  const expected: [path: string, mode: string][] = [
    ['/usr/lib/hookswitch/dist/hookswitch.mjs', '-rwxr-xr-x'],
    ['/usr/lib/hookswitch/dist/opusscript_native_wasm.wasm', '-rw-r--r--'],
    ['/usr/lib/hookswitch/dist/speex-resampler-simd.wasm', '-rw-r--r--'],
    ['/usr/lib/hookswitch/dist/speex-resampler-nonsimd.wasm', '-rw-r--r--'],
    ['/usr/lib/hookswitch/dist/prebuilds/linux-x64/@serialport+bindings-cpp.glibc.node', '-rw-r--r--'],
    ['/usr/lib/hookswitch/dist/prebuilds/linux-arm/@serialport+bindings-cpp.armv6.glibc.node', '-rw-r--r--'],
    ['/usr/lib/hookswitch/dist/prebuilds/linux-arm/@serialport+bindings-cpp.armv7.glibc.node', '-rw-r--r--'],
    ['/usr/lib/hookswitch/dist/prebuilds/linux-arm64/@serialport+bindings-cpp.armv8.glibc.node', '-rw-r--r--'],
    ...BOARDS.flatMap((b): [string, string][] => [
      [`/usr/lib/hookswitch/board/${b}.json`, '-rw-r--r--'],
      [`/usr/lib/hookswitch/board/${b}/README.md`, '-rw-r--r--'],
    ]),
    ['/usr/lib/hookswitch/board/README.md', '-rw-r--r--'],
    ['/lib/systemd/system/hookswitch.service', '-rw-r--r--'],
    ['/etc/hookswitch/config.json', '-rw-r--r--'],
    ['/usr/share/doc/hookswitch/copyright', '-rw-r--r--'],
    ['/usr/share/doc/hookswitch/changelog.gz', '-rw-r--r--'],
    ['/usr/bin/hookswitch', 'lrwxrwxrwx'],
  ];
  for (const [path, mode] of expected) t.equal(entries.get(path)?.mode, mode, `${path} ${mode}`);
  t.equal(entries.get('/usr/bin/hookswitch')?.link, '../lib/hookswitch/dist/hookswitch.mjs', '/usr/bin/hookswitch is a relative symlink to the bundle');
  t.same([...entries.values()].filter((e) => e.owner !== 'root/root'), [], 'every entry is owned by root/root');
  t.same([...entries.keys()].filter((p) => /node_modules|\.ts$|\/test\//.test(p)), [], 'no node_modules, sources or tests');
  t.equal(readFileSync(join(tree, 'lib/systemd/system/hookswitch.service'), 'utf8'), readFileSync(join(REPO_ROOT, 'systemd/hookswitch.service'), 'utf8'), 'the unit as in systemd/');
  t.match(readFileSync(join(tree, 'usr/share/doc/hookswitch/copyright'), 'utf8'), /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/\n[\s\S]*License: MIT\n MIT License\n/);
});

t.test('control archive: conffiles, checksums, maintainer scripts', async (t) => {
  t.equal(readFileSync(join(control, 'conffiles'), 'utf8'), '/etc/hookswitch/config.json\n', 'the config is the one conffile');
  const md5 = run('md5sum', ['--check', '--strict', '--quiet', join(control, 'md5sums')], { cwd: tree });
  t.equal(md5.status, 0, `md5sums match the files: ${md5.stdout}${md5.stderr}`);
  const summed = readFileSync(join(control, 'md5sums'), 'utf8');
  t.match(summed, /  usr\/lib\/hookswitch\/dist\/hookswitch\.mjs\n/);
  t.notMatch(summed, /etc\/hookswitch/, 'conffiles are not in md5sums');
  for (const script of SCRIPTS) {
    const path = join(control, script);
    t.equal(statSync(path).mode & 0o777, 0o755, `${script} is executable`);
    t.equal(readFileSync(path, 'utf8'), readFileSync(join(REPO_ROOT, 'packaging/deb', script), 'utf8'), `${script} as in packaging/deb`);
    const syntax = run('sh', ['-n', path]);
    t.equal(syntax.status, 0, `sh -n ${script}: ${syntax.stderr}`);
    t.match(readFileSync(path, 'utf8'), /^#!\/bin\/sh\n[\s\S]*\nset -e\n/, `${script} is a /bin/sh script with set -e`);
    const unknown = run('sh', [path, 'frobnicate']);
    t.equal(unknown.status, 1, `${script} frobnicate exits 1`);
  }
});

t.test('the extracted tree runs with plain node', async (t) => {
  const bin = join(tree, 'usr/bin/hookswitch');
  // From an unrelated directory, with no node_modules anywhere above the tree.
  const opts = { cwd: work.dir, env: { PATH: process.env.PATH, HOME: work.dir } };
  const help = run(process.execPath, [bin, '--help'], opts);
  t.equal(help.status, 0, `--help: ${help.stderr}`);
  t.match(help.stdout, /hookswitch board list/);
  const version = run(process.execPath, [bin, 'version'], opts);
  t.equal(version.status, 0, `version: ${version.stderr}`);
  t.equal(version.stdout, `hookswitch ${pkg.version}\n`);
  const boards = run(process.execPath, [bin, 'board', 'list'], opts);
  t.equal(boards.status, 0, `board list: ${boards.stderr}`);
  t.same(boards.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]), BOARDS, 'the four shipped boards, found beside the bundle');
  // Through the shebang too, as /usr/bin/hookswitch runs once installed.
  const direct = run(bin, ['version'], opts);
  t.equal(direct.stdout, `hookswitch ${pkg.version}\n`, 'the symlink runs through the bundle\'s shebang');
});

t.test('the default config is valid and changes nothing from the embedded defaults', async (t) => {
  const text = readFileSync(join(REPO_ROOT, 'packaging/config.json'), 'utf8');
  t.equal(readFileSync(join(tree, 'etc/hookswitch/config.json'), 'utf8'), text, 'shipped as packaging/config.json');
  t.same(resolveConfig(JSON.parse(text)), resolveConfig({}));
});

/** Recording stand-ins: `name args...` per call into $STUB_LOG; users and groups in $STUB_DB. */
function writeStubs(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const record = 'echo "${0##*/} $*" >> "$STUB_LOG"';
  const lastArg = 'for a; do last=$a; done';
  const stubs: Record<string, string> = {
    getent: 'grep -qx "$1:$2" "$STUB_DB" || exit 2',
    groupadd: `${record}\n${lastArg}\necho "group:$last" >> "$STUB_DB"`,
    useradd: `${record}\n${lastArg}\necho "passwd:$last" >> "$STUB_DB"`,
    userdel: `${record}\ngrep -vx "passwd:$1" "$STUB_DB" > "$STUB_DB.new" || true\nmv "$STUB_DB.new" "$STUB_DB"`,
    groupdel: `${record}\ngrep -vx "group:$1" "$STUB_DB" > "$STUB_DB.new" || true\nmv "$STUB_DB.new" "$STUB_DB"`,
    usermod: record,
    chown: record,
    systemctl: record,
    'deb-systemd-invoke': record,
    'deb-systemd-helper': `${record}\n[ "$2" != was-enabled ] || exit "\${STUB_WAS_ENABLED:-0}"`,
    'dpkg-statoverride': 'exit 1',
  };
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
}

interface Root {
  dir: string;
  /** Runs a maintainer script of the package; returns its exit code and the commands it called. */
  script(name: (typeof SCRIPTS)[number], args: string[], env?: Record<string, string>): { status: number | null; calls: string[]; stderr: string };
}

/**
 * A scratch root laid out like an unpacked system: the package's conffile in place, device groups
 * present (gpio only on Raspberry Pi OS), and /run/systemd/system when `systemd` says it runs.
 * `chroot` runs the scripts inside it (with /usr bound read-only and DPKG_ROOT unset); otherwise
 * they run here with DPKG_ROOT pointing at it.
 */
function makeRoot(name: string, opts: { chroot: boolean; systemd: boolean }): Root {
  const dir = join(work.dir, name);
  mkdirSync(join(dir, 'etc/hookswitch'), { recursive: true });
  mkdirSync(join(dir, 'var/lib'), { recursive: true });
  writeFileSync(join(dir, 'etc/hookswitch/config.json'), readFileSync(join(tree, 'etc/hookswitch/config.json')));
  mkdirSync(join(dir, 'pkg'));
  for (const s of SCRIPTS) writeFileSync(join(dir, 'pkg', s), readFileSync(join(control, s)), { mode: 0o755 });
  writeStubs(join(dir, 'stubs'));
  writeFileSync(join(dir, 'db'), 'group:audio\ngroup:dialout\ngroup:input\n');
  writeFileSync(join(dir, 'calls.log'), '');
  if (opts.chroot) {
    for (const d of ['usr', 'dev']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'dev/null'), '');
    for (const l of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${l}`, join(dir, l));
    if (opts.systemd) mkdirSync(join(dir, 'run/systemd/system'), { recursive: true });
  }
  const inside = (p: string) => (opts.chroot ? p : join(dir, p));
  return {
    dir,
    script(script, args, env = {}) {
      writeFileSync(join(dir, 'calls.log'), '');
      const vars = { STUB_LOG: inside('/calls.log'), STUB_DB: inside('/db'), ...env };
      let res: SpawnSyncReturns<string>;
      if (opts.chroot) {
        // A private mount namespace: the binds vanish with the process and never reach this
        // machine's mount table; /usr is read-only inside.
        const body = 'mount --bind -o ro /usr "$1/usr" && mount --bind /dev/null "$1/dev/null" && root=$1 && shift && exec chroot "$root" /bin/sh "$@"';
        res = run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', body, 'sh', dir, `/pkg/${script}`, ...args], {
          env: { PATH: '/stubs:/usr/sbin:/usr/bin', ...vars },
        });
      } else {
        res = run('sh', [join(dir, 'pkg', script), ...args], {
          env: { PATH: `${join(dir, 'stubs')}:/usr/sbin:/usr/bin`, DPKG_ROOT: dir, ...vars },
        });
      }
      const calls = readFileSync(join(dir, 'calls.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((c) => (opts.chroot ? c : c.replaceAll(dir, '$DPKG_ROOT')));
      return { status: res.status, calls, stderr: `${res.stderr}${res.error ? String(res.error) : ''}` };
    },
  };
}

const mode = (path: string) => (statSync(path).mode & 0o7777).toString(8);

const CREATE_USER = [
  'groupadd --system hookswitch',
  'useradd --system --gid hookswitch --home-dir /var/lib/hookswitch --no-create-home --shell /usr/sbin/nologin --comment hookswitch SIP gateway hookswitch',
  'groupadd --system gpio',
];
/** Device groups and directory owners; `root` is how the script names the root ('' or '$DPKG_ROOT'). */
const groupsAndDirs = (root = '') => [
  'usermod -a -G audio hookswitch',
  'usermod -a -G dialout hookswitch',
  'usermod -a -G input hookswitch',
  'usermod -a -G gpio hookswitch',
  `chown hookswitch:hookswitch ${root}/var/lib/hookswitch`,
  `chown root:hookswitch ${root}/etc/hookswitch`,
  `chown root:hookswitch ${root}/etc/hookswitch/config.json`,
];
const ENABLE = ['deb-systemd-helper unmask hookswitch.service', 'deb-systemd-helper --quiet was-enabled hookswitch.service', 'deb-systemd-helper enable hookswitch.service'];

t.test('first install: user, groups, directories, unit enabled; started only under a running systemd', async (t) => {
  const table: [name: string, opts: { chroot: boolean; systemd: boolean }, prefix: string, started: string[]][] = [
    ['systemd running', { chroot: true, systemd: true }, '', ['systemctl --system daemon-reload', 'deb-systemd-invoke start hookswitch.service']],
    ['no systemd (image build, container)', { chroot: true, systemd: false }, '', []],
    ['offline root (DPKG_ROOT)', { chroot: false, systemd: true }, '$DPKG_ROOT', []],
  ];
  for (const [name, opts, prefix, started] of table) {
    const root = makeRoot(`fresh-${name.replace(/\W+/g, '-')}`, opts);
    const res = root.script('postinst', ['configure']);
    t.equal(res.status, 0, `${name}: postinst configure exits 0 ${res.stderr}`);
    t.same(res.calls, [...CREATE_USER, ...groupsAndDirs(prefix), ...ENABLE, ...started], `${name}: commands`);
    t.equal(mode(join(root.dir, 'var/lib/hookswitch')), '700', `${name}: state directory 0700`);
    t.equal(mode(join(root.dir, 'etc/hookswitch')), '770', `${name}: config directory 0770`);
    t.equal(mode(join(root.dir, 'etc/hookswitch/config.json')), '660', `${name}: config 0660 (it will hold trunk passwords)`);
  }
});

t.test('upgrade, remove and purge under a running systemd', async (t) => {
  const root = makeRoot('lifecycle', { chroot: true, systemd: true });
  t.equal(root.script('postinst', ['configure']).status, 0, 'installed');
  writeFileSync(join(root.dir, 'var/lib/hookswitch/extensions.json'), '{}');
  const table: [name: string, script: (typeof SCRIPTS)[number], args: string[], env: Record<string, string>, calls: string[]][] = [
    ['prerm upgrade keeps it running', 'prerm', ['upgrade', '0.2.0'], {}, []],
    [
      'postinst after an upgrade keeps the user, leaves a disabled unit disabled and restarts',
      'postinst',
      ['configure', '0.0.9'],
      { STUB_WAS_ENABLED: '1' },
      [
        ...groupsAndDirs(),
        'deb-systemd-helper unmask hookswitch.service',
        'deb-systemd-helper --quiet was-enabled hookswitch.service',
        'deb-systemd-helper update-state hookswitch.service',
        'systemctl --system daemon-reload',
        'deb-systemd-invoke restart hookswitch.service',
      ],
    ],
    ['prerm remove stops the service', 'prerm', ['remove'], {}, ['deb-systemd-invoke stop hookswitch.service']],
    ['postrm remove masks the unit and keeps config and state', 'postrm', ['remove'], {}, ['systemctl --system daemon-reload', 'deb-systemd-helper mask hookswitch.service']],
  ];
  for (const [name, script, args, env, calls] of table) {
    const res = root.script(script, args, env);
    t.equal(res.status, 0, `${name}: exit 0 ${res.stderr}`);
    t.same(res.calls, calls, name);
  }
  t.ok(existsSync(join(root.dir, 'etc/hookswitch/config.json')), 'remove kept the config');
  t.ok(existsSync(join(root.dir, 'var/lib/hookswitch/extensions.json')), 'remove kept the state');
  t.match(readFileSync(join(root.dir, 'db'), 'utf8'), /^passwd:hookswitch$/m, 'remove kept the user');

  const purge = root.script('postrm', ['purge']);
  t.equal(purge.status, 0, `purge exits 0 ${purge.stderr}`);
  t.same(purge.calls, [
    'systemctl --system daemon-reload',
    'deb-systemd-helper purge hookswitch.service',
    'deb-systemd-helper unmask hookswitch.service',
    'userdel hookswitch',
    'groupdel hookswitch',
  ]);
  t.notOk(existsSync(join(root.dir, 'etc/hookswitch')), 'purge deleted /etc/hookswitch');
  t.notOk(existsSync(join(root.dir, 'var/lib/hookswitch')), 'purge deleted /var/lib/hookswitch');
  t.notMatch(readFileSync(join(root.dir, 'db'), 'utf8'), /hookswitch/, 'purge deleted the user and group');
  t.match(readFileSync(join(root.dir, 'db'), 'utf8'), /^group:gpio$/m, 'purge left the shared gpio group');
  t.ok(existsSync(join(root.dir, 'usr')) && readdirSync(join(root.dir, 'usr')).length === 0, 'the /usr bind ended with the namespace');
});

t.test('purge under DPKG_ROOT deletes inside that root only', async (t) => {
  const root = makeRoot('offline-purge', { chroot: false, systemd: false });
  t.equal(root.script('postinst', ['configure']).status, 0, 'installed');
  const res = root.script('postrm', ['purge']);
  t.equal(res.status, 0, res.stderr);
  t.same(res.calls, ['deb-systemd-helper purge hookswitch.service', 'deb-systemd-helper unmask hookswitch.service', 'userdel hookswitch', 'groupdel hookswitch']);
  t.notOk(existsSync(join(root.dir, 'etc/hookswitch')), 'deleted <root>/etc/hookswitch');
  t.notOk(existsSync(join(root.dir, 'var/lib/hookswitch')), 'deleted <root>/var/lib/hookswitch');
  t.ok(existsSync(join(root.dir, 'pkg/postrm')), 'the rest of the root untouched');
});

t.test('install.sh parses, explains itself and refuses a bad board name before doing anything', async (t) => {
  const script = join(REPO_ROOT, 'scripts', 'install.sh');
  const syntax = run('bash', ['-n', script]);
  t.equal(syntax.status, 0, `bash -n: ${syntax.stderr}`);
  t.match(readFileSync(script, 'utf8'), /^#!\/usr\/bin\/env bash\n[\s\S]*\nset -euo pipefail\n/);
  t.notMatch(readFileSync(script, 'utf8'), /(curl|wget)[^\n]*\|\s*(sudo\s+)?(ba)?sh/, 'no download piped into a shell');
  const help = run('bash', [script, '--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /sudo bash scripts\/install\.sh \[--board NAME\]/);
  const table: [args: string[], stderr: RegExp][] = [
    [['--board', 'x;reboot'], /--board: "x;reboot" is not a board name/],
    [['--board'], /--board needs a name/],
    [['--frobnicate'], /unknown option --frobnicate/],
  ];
  for (const [args, stderr] of table) {
    const res = run('bash', [script, ...args]);
    t.equal(res.status, 1, `${args.join(' ')} exits 1`);
    t.match(res.stderr, stderr);
  }
});
