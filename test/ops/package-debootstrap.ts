/**
 * The Debian package installed for real: `debootstrap` makes a minimal Debian 12 tree (minbase,
 * which has passwd and init-system-helpers, plus the real alsa-utils the package depends on and
 * systemd, as on Raspberry Pi OS, so `systemctl` judges the enablement), and dpkg inside a chroot
 * of it installs, removes, reinstalls and purges hookswitch_<version>_all.deb. The maintainer
 * scripts run with the tree's own passwd tools and init-system-helpers; a policy-rc.d denies
 * service starts. Bookworm's nodejs is 18, so a stand-in `nodejs` package built here with
 * dpkg-deb satisfies (or, at 18, fails) the `nodejs (>= 20)` dependency, and this machine's node
 * is bind-mounted over its /usr/bin/node only to run the installed command.
 *
 * Every chroot command runs in its own private mount namespace (`unshare --mount`), so the /proc,
 * /run and node mounts end with the command and never reach this machine's mount table; the tree
 * is deleted at the end. Needs root, debootstrap and the Debian mirror (HOOKSWITCH_DEBIAN_MIRROR,
 * default http://deb.debian.org/debian): the tree takes 25-50 s, so this file allows 4 minutes.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setPriority } from 'node:os';
import t from 'tap';
import pkg from '../../package.json' with { type: 'json' };
import { REPO_ROOT } from '../helpers/gateway-process.ts';
import { scratch } from '../helpers/scratch.ts';

// Heavy (package builds, debootstrap, dpkg) and not timing-sensitive: at the lowest CPU priority,
// children included, so the real-time audio tests tap runs alongside keep their deadlines.
setPriority(19);

const MIRROR = process.env.HOOKSWITCH_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const SUITE = 'bookworm';
const UNIT = 'hookswitch.service';

t.setTimeout(240_000);
const work = scratch('package-debootstrap');
const tree = join(work.dir, 'tree');
const debs = join(work.dir, 'debs');
const deb = join(debs, `hookswitch_${pkg.version}_all.deb`);

/** Mount points below the tree that are visible here (none, unless a namespace leaked). */
function mountsUnderTree(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === tree || p.startsWith(`${tree}/`))
    .sort((a, b) => b.length - a.length);
}

// Registered before the scratch directory's removal runs (clean-ups run first): never delete
// through a mount.
work.defer(() => {
  for (const m of mountsUnderTree()) spawnSync('umount', ['-l', m]);
  if (mountsUnderTree().length === 0) rmSync(tree, { recursive: true, force: true });
  else throw new Error(`mounts left under ${tree}: ${mountsUnderTree().join(' ')}; not deleting it`);
});

function run(cmd: string, args: string[], timeout = 60_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8' } });
}

/**
 * Runs `argv` chrooted in the tree, in a private mount namespace with /proc and a tmpfs /run
 * (holding /run/systemd/system, so the scripts take their "systemd is running" path and meet
 * policy-rc.d), the packages under /debs, and, with `node`, this machine's node over the tree's
 * /usr/bin/node (read-only).
 */
function inTree(argv: string[], opts: { node?: boolean } = {}): SpawnSyncReturns<string> {
  const setup = [
    'set -e',
    'root=$1; shift',
    'mount -t proc proc "$root/proc"',
    'mount -t tmpfs -o mode=0755 tmpfs "$root/run"',
    'mkdir -p "$root/run/systemd/system" "$root/debs"',
    'mount --bind -o ro "$DEBS" "$root/debs"',
    ...(opts.node ? ['mount --bind "$NODE" "$root/usr/bin/node"', 'mount -o remount,bind,ro "$root/usr/bin/node"'] : []),
    // A clean environment: tap's process hooks add NODE_OPTIONS naming files outside the tree.
    'exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"',
  ].join('\n');
  return spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', setup, 'sh', tree, ...argv], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBS: debs, NODE: process.execPath },
  });
}

/** Whether a path exists in the tree, itself (a symlink into the tree's /lib is not followed). */
function present(path: string): boolean {
  try {
    lstatSync(join(tree, path));
    return true;
  } catch {
    return false;
  }
}

const out = (r: SpawnSyncReturns<string>) => `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
/** `owner:group mode` of a path inside the tree, or '' when it does not exist. */
const statOf = (path: string) => inTree(['stat', '-c', '%U:%G %a', path]).stdout.trim();
const status = () => inTree(['dpkg-query', '-W', '-f', '${db:Status-Abbrev}', 'hookswitch']).stdout.trim();
const getent = (db: string, key: string) => inTree(['getent', db, key]).stdout.trim();

/**
 * A stand-in `nodejs` package of `version`: dpkg checks the real `nodejs (>= 20)` relation
 * against it. Its /usr/bin/node refuses to run, so only a bind-mounted real node can run the
 * bundle.
 */
function fakeNodejs(version: string): string {
  const dir = join(work.dir, `nodejs-${version}`);
  mkdirSync(join(dir, 'DEBIAN'), { recursive: true });
  mkdirSync(join(dir, 'usr/bin'), { recursive: true });
  // Control fields: Debian Policy §5.3 (binary package control files).
  writeFileSync(
    join(dir, 'DEBIAN/control'),
    [
      'Package: nodejs',
      `Version: ${version}`,
      'Architecture: all',
      'Maintainer: hookswitch tests <hookswitch@localhost>',
      'Description: stand-in for Node.js in package tests',
      ' Satisfies the nodejs dependency; /usr/bin/node only says it is not real.',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'usr/bin/node'), '#!/bin/sh\necho "stand-in nodejs: no real node here" >&2\nexit 127\n');
  chmodSync(join(dir, 'usr/bin/node'), 0o755);
  const file = join(debs, `nodejs_${version}_all.deb`);
  const built = run('dpkg-deb', ['--root-owner-group', '--build', dir, file]);
  if (built.status !== 0) throw new Error(`dpkg-deb --build nodejs ${version}: ${out(built)}`);
  return `/debs/nodejs_${version}_all.deb`;
}

const start = performance.now();
const bootstrap = spawnSync(
  'unshare',
  ['--mount', '--propagation', 'private', 'debootstrap', '--variant=minbase', '--include=alsa-utils,systemd', SUITE, tree, MIRROR],
  { encoding: 'utf8', timeout: 100_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8' } },
);
const bootstrapSeconds = (performance.now() - start) / 1000;

t.test(`debootstrap makes a ${SUITE} tree`, async (t) => {
  t.equal(bootstrap.status, 0, `debootstrap (${bootstrapSeconds.toFixed(1)} s): ${bootstrap.error ?? bootstrap.stderr.slice(-2000)}`);
  t.match(readFileSync(join(tree, 'etc/debian_version'), 'utf8'), /^12\./, 'Debian 12');
  t.same(mountsUnderTree(), [], 'debootstrap left no mounts behind');
  // Nothing may start in the tree: invoke-rc.d and deb-systemd-invoke ask policy-rc.d, and 101
  // means "action forbidden" (init-system-helpers: /usr/share/doc/init-system-helpers/README.policy-rc.d.gz).
  writeFileSync(join(tree, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n');
  chmodSync(join(tree, 'usr/sbin/policy-rc.d'), 0o755);
  mkdirSync(debs, { recursive: true });
  const built = run(process.execPath, [join(REPO_ROOT, 'scripts', 'package.mjs'), '--out', debs], 120_000);
  t.equal(built.status, 0, `package.mjs: ${out(built)}`);
  t.ok(existsSync(deb), `${deb} built`);
});

t.test('dpkg holds the nodejs (>= 20) dependency against bookworm-like node 18', async (t) => {
  t.equal(inTree(['dpkg', '-i', fakeNodejs('18.19.0+dfsg-6~fake')]).status, 0, 'a nodejs 18 installed');
  const res = inTree(['dpkg', '-i', `/debs/hookswitch_${pkg.version}_all.deb`]);
  t.equal(res.status, 1, 'dpkg -i fails');
  t.match(out(res), /hookswitch depends on nodejs \(>= 20\); however:\s+Version of nodejs on system is 18\.19\.0\+dfsg-6~fake/);
  t.equal(status(), 'iU', 'hookswitch unpacked, not configured');
  t.equal(getent('passwd', 'hookswitch'), '', 'postinst has not run: no user yet');
});

t.test('configured once nodejs 20 is there: user, groups, directories, unit enabled, no start', async (t) => {
  t.equal(inTree(['dpkg', '-i', fakeNodejs('20.19.2-1~fake')]).status, 0, 'nodejs 20 installed');
  const res = inTree(['dpkg', '--configure', 'hookswitch']);
  t.equal(res.status, 0, `dpkg --configure: ${out(res)}`);
  t.match(out(res), /policy-rc\.d returned 101, not running 'start hookswitch\.service'/, 'the start was asked for and denied by policy-rc.d');
  t.equal(status(), 'ii', 'installed');
  const verify = inTree(['dpkg', '--verify', 'hookswitch']);
  t.equal(`${verify.status} ${verify.stdout}`, '0 ', 'dpkg --verify: every file as its md5sums say');

  const [name, , uid, gid, comment, home, shell] = getent('passwd', 'hookswitch').split(':');
  t.equal(name, 'hookswitch', 'user hookswitch');
  // System accounts get ids below 1000 (SYS_UID_MAX in /etc/login.defs).
  t.ok(Number(uid) > 0 && Number(uid) < 1000, `system uid (${uid})`);
  t.equal(getent('group', 'hookswitch').split(':')[2], gid, 'primary group hookswitch');
  t.same([comment, home, shell], ['hookswitch SIP gateway', '/var/lib/hookswitch', '/usr/sbin/nologin']);
  // minbase has audio and dialout (base-passwd) but neither input (udev makes it) nor gpio (a Pi's):
  // postinst creates those two, since systemd will not start a unit whose group does not exist.
  t.same(inTree(['id', '-nG', 'hookswitch']).stdout.trim().split(' ').sort(), ['audio', 'dialout', 'gpio', 'hookswitch', 'input'], 'every device group of the unit');
  t.ok(Number(getent('group', 'gpio').split(':')[2]) < 1000, 'gpio created as a system group');
  t.ok(Number(getent('group', 'input').split(':')[2]) < 1000, 'input created as a system group');

  const table: [path: string, expected: string][] = [
    ['/etc/hookswitch', 'root:hookswitch 770'],
    ['/etc/hookswitch/config.json', 'root:hookswitch 660'],
    ['/var/lib/hookswitch', 'hookswitch:hookswitch 700'],
    ['/usr/lib/hookswitch/dist/hookswitch.mjs', 'root:root 755'],
    ['/lib/systemd/system/hookswitch.service', 'root:root 644'],
  ];
  for (const [path, expected] of table) t.equal(statOf(path), expected, path);
  t.equal(readlinkSync(join(tree, 'etc/systemd/system/multi-user.target.wants', UNIT)), `/lib/systemd/system/${UNIT}`, 'enabled: linked into multi-user.target.wants');
  t.equal(inTree(['systemctl', '--root=/', 'is-enabled', UNIT]).stdout.trim(), 'enabled', 'systemctl --root=/ is-enabled');
});

t.test('the installed command runs as the service user with a real node', async (t) => {
  const fake = inTree(['/usr/bin/hookswitch', '--help']);
  t.not(fake.status, 0, 'the tree\'s own node is the stand-in');
  t.match(fake.stderr, /stand-in nodejs/);
  const asUser = (argv: string[], user = 'hookswitch') => inTree(['runuser', '-u', user, '--', ...argv], { node: true });
  const help = asUser(['/usr/bin/hookswitch', '--help']);
  t.equal(help.status, 0, `--help: ${out(help)}`);
  t.match(help.stdout, /hookswitch board list/);
  t.equal(asUser(['/usr/bin/hookswitch', 'version']).stdout, `hookswitch ${pkg.version}\n`);
  const check = asUser(['/usr/bin/hookswitch', 'config', 'check', '/etc/hookswitch/config.json']);
  t.equal(check.status, 0, `the service user reads the shipped config: ${out(check)}`);
  t.match(check.stdout, /config: \/etc\/hookswitch\/config\.json is valid/);
  const nobody = asUser(['cat', '/etc/hookswitch/config.json'], 'nobody');
  t.not(nobody.status, 0, 'other users cannot read the config (it will hold trunk passwords)');
  t.match(nobody.stderr, /Permission denied/);
});

t.test('remove keeps config, state and user; reinstall finds them; purge deletes them', async (t) => {
  const config = join(tree, 'etc/hookswitch/config.json');
  const edited = readFileSync(config, 'utf8').replace('"level": "info"', '"level": "debug"');
  t.not(edited, readFileSync(config, 'utf8'), 'the administrator edits the config');
  writeFileSync(config, edited);
  writeFileSync(join(tree, 'var/lib/hookswitch/extensions.json'), '{}\n');
  const uid = getent('passwd', 'hookswitch').split(':')[2];

  const removed = inTree(['dpkg', '-r', 'hookswitch']);
  t.equal(removed.status, 0, `dpkg -r: ${out(removed)}`);
  t.match(out(removed), /policy-rc\.d returned 101, not running 'stop hookswitch\.service'/, 'prerm asked to stop it');
  t.equal(status(), 'rc', 'removed, config-files left');
  t.notOk(present('usr/lib/hookswitch'), '/usr/lib/hookswitch gone');
  t.notOk(present('usr/bin/hookswitch'), '/usr/bin/hookswitch gone');
  t.equal(readFileSync(config, 'utf8'), edited, 'the edited config kept');
  t.ok(present('var/lib/hookswitch/extensions.json'), 'the state kept');
  t.equal(getent('passwd', 'hookswitch').split(':')[2], uid, 'the user kept');
  t.equal(readlinkSync(join(tree, 'etc/systemd/system', UNIT)), '/dev/null', 'the unit masked');

  const again = inTree(['dpkg', '-i', `/debs/hookswitch_${pkg.version}_all.deb`]);
  t.equal(again.status, 0, `reinstall: ${out(again)}`);
  t.equal(readFileSync(config, 'utf8'), edited, 'reinstall keeps the edited conffile');
  t.equal(statOf('/etc/hookswitch/config.json'), 'root:hookswitch 660');
  t.equal(getent('passwd', 'hookswitch').split(':')[2], uid, 'the same uid');
  t.notOk(present(`etc/systemd/system/${UNIT}`), 'unmasked');
  t.equal(inTree(['systemctl', '--root=/', 'is-enabled', UNIT]).stdout.trim(), 'enabled', 'enabled again');

  const purged = inTree(['dpkg', '-P', 'hookswitch']);
  t.equal(purged.status, 0, `dpkg -P: ${out(purged)}`);
  t.equal(status(), '', 'dpkg forgot the package');
  for (const path of ['etc/hookswitch', 'var/lib/hookswitch', `etc/systemd/system/multi-user.target.wants/${UNIT}`, `etc/systemd/system/${UNIT}`]) {
    t.notOk(present(path), `/${path} gone`);
  }
  t.equal(getent('passwd', 'hookswitch'), '', 'the user gone');
  t.equal(getent('group', 'hookswitch'), '', 'its group gone');
  t.match(getent('group', 'gpio'), /^gpio:/, 'the shared gpio group stays');
  t.match(getent('group', 'audio'), /^audio:/, 'the audio group stays');
  t.same(mountsUnderTree(), [], 'no mount of the chroot commands is visible here');
});
