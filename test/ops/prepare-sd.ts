/**
 * scripts/prepare-sd.sh against fake cards laid out like freshly flashed Raspberry Pi OS images
 * (bookworm: firstboot init= on the command line; trixie: `resize`, cloud-init files when Imager
 * customised it; with and without Imager's firstrun.sh or user-data), then the first-boot hook
 * itself in a chroot of the fake root partition, with recording stand-ins for apt-get,
 * apt-cache, systemctl, chown and reboot: boot by boot, as the Pi would run it.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setPriority } from 'node:os';
import t from 'tap';
import pkg from '../../package.json' with { type: 'json' };
import { REPO_ROOT } from '../helpers/gateway-process.ts';
import { scratch } from '../helpers/scratch.ts';

// Heavy (package builds, debootstrap, dpkg) and not timing-sensitive: at the lowest CPU priority,
// children included, so the real-time audio tests tap runs alongside keep their deadlines.
setPriority(19);

const work = scratch('prepare-sd');
const SCRIPT = join(REPO_ROOT, 'scripts/prepare-sd.sh');
const HOOK = join(REPO_ROOT, 'packaging/firstboot/hookswitch-firstboot.sh');
const DEB_NAME = `hookswitch_${pkg.version}_all.deb`;
const built = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/package.mjs'), '--out', join(work.dir, 'out')], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
const DEB = join(work.dir, 'out', DEB_NAME);
const UNIT = 'hookswitch-firstboot.service';
const RUN_ARGS = 'systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target';

// Command lines as the images ship them (PARTUUIDs made up): bookworm Lite runs the resize
// script through init=; trixie asks for it with `resize`.
const CMDLINE = {
  bookworm: 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n',
  trixie: 'console=serial0,115200 console=tty1 root=PARTUUID=b0c1d2e3-02 rootfstype=ext4 fsck.repair=yes rootwait resize quiet\n',
};
// The shape of Raspberry Pi OS's default config.txt: model filters, ending in [all].
const CONFIG_TXT = [
  '# For more options and information see', '# http://rptl.io/configtxt', '', '# Enable audio (loads snd_bcm2835)',
  'dtparam=audio=on', '', 'camera_auto_detect=1', 'display_auto_detect=1', 'auto_initramfs=1', 'dtoverlay=vc4-kms-v3d',
  'max_framebuffers=2', 'disable_fw_kms_setup=1', 'arm_64bit=1', 'disable_overscan=1', 'arm_boost=1', '', '[cm4]', 'otg_mode=1',
  '', '[cm5]', 'dtoverlay=dwc2,dr_mode=host', '', '[all]', '',
].join('\n');
// What Raspberry Pi Imager writes for its "systemd" customisation: a script that configures,
// removes itself and its command-line arguments (rpi-imager customization_generator.cpp).
const IMAGER_FIRSTRUN = [
  '#!/bin/sh', '', 'set +e', '',
  'echo doorpi >/etc/hostname',
  'FIRSTUSER=$(getent passwd 1000 | cut -d: -f1)',
  'rm -f /boot/firstrun.sh',
  "sed -i 's| systemd.run.*||g' /boot/cmdline.txt",
  'exit 0', '',
].join('\n');
const IMAGER_USER_DATA = '#cloud-config\nhostname: doorpi\nmanage_etc_hosts: true\npackages:\n- avahi-daemon\n\ntimezone: Europe/Berlin\nenable_ssh: true\nusers:\n- name: pi\n  groups: users,adm,dialout,audio,gpio,sudo\n  shell: /bin/bash\n  lock_passwd: true\n';
const IMAGER_USER_DATA_RUNCMD = `${IMAGER_USER_DATA}\nruncmd:\n  - [ rfkill, unblock, wifi ]\n`;
const BOARD_LINES = [
  'dtoverlay=gpio-key,gpio=17,active_low=1,gpio_pull=up,keycode=185,label=call-button',
  'dtoverlay=gpio-led,gpio=23,label=door-relay',
  'dtoverlay=gpio-led,gpio=24,label=led-green',
  'dtoverlay=gpio-led,gpio=25,label=led-red',
];

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
}

interface Card {
  /** The root partition; the boot partition is mounted at its boot/firmware, as on the Pi. */
  root: string;
  boot: string;
}

/** A freshly flashed card: boot files, and a root file system that can be chrooted into. */
function makeCard(name: string, os: 'bookworm' | 'trixie', extra: { firstrun?: boolean; userData?: string; cmdline?: string } = {}): Card {
  const root = join(work.dir, name);
  const boot = join(root, 'boot/firmware');
  mkdirSync(boot, { recursive: true });
  let cmdline = extra.cmdline ?? CMDLINE[os];
  if (extra.firstrun) {
    writeFileSync(join(boot, 'firstrun.sh'), IMAGER_FIRSTRUN, { mode: 0o755 });
    cmdline = `${cmdline.trimEnd()} cfg80211.ieee80211_regdom=DE ${RUN_ARGS}\n`;
  }
  if (extra.userData !== undefined) {
    writeFileSync(join(boot, 'user-data'), extra.userData);
    writeFileSync(join(boot, 'meta-data'), 'instance-id: rpi-imager-1733300000000\n');
    writeFileSync(join(boot, 'network-config'), 'network:\n  version: 2\n');
  }
  writeFileSync(join(boot, 'cmdline.txt'), cmdline);
  writeFileSync(join(boot, 'config.txt'), CONFIG_TXT);
  writeFileSync(join(boot, 'issue.txt'), `Raspberry Pi reference (${os})\n`);
  mkdirSync(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  writeFileSync(join(root, 'etc/os-release'), `PRETTY_NAME="Debian GNU/Linux"\nVERSION_CODENAME=${os}\nID=debian\n`);
  for (const d of ['usr/local', '.usr-local', 'dev', 'var/lib', 'stubs', 'etc/alternatives']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'dev/null'), '');
  // awk is an alternative on Debian and Raspberry Pi OS alike.
  symlinkSync(readlinkSync('/etc/alternatives/awk'), join(root, 'etc/alternatives/awk'));
  for (const l of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${l}`, join(root, l));
  writeStubs(join(root, 'stubs'));
  return { root, boot };
}

/** Recording stand-ins: `name args...` per call into /calls.log inside the chroot. */
function writeStubs(dir: string): void {
  const record = 'echo "${0##*/} $*" >> /calls.log';
  const stubs: Record<string, string> = {
    // install: what the package's files and postinst would leave for this test.
    'apt-get': `${record}
case " $* " in
  *" update "*) [ -z "$STUB_APT_UPDATE_FAIL" ] || exit 100 ;;
  *" install "*) mkdir -p /etc/hookswitch && printf '{}\\n' > /etc/hookswitch/config.json && touch /installed ;;
esac`,
    'apt-cache': `${record}\nprintf 'nodejs:\\n  Installed: (none)\\n  Candidate: %s\\n  Version table:\\n' "\${STUB_NODE_CANDIDATE:-(none)}"`,
    systemctl: `${record}\n[ "$1" != disable ] || rm -f "/etc/systemd/system/multi-user.target.wants/$2"`,
    chown: record,
    reboot: record,
  };
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
}

/**
 * Runs a command inside the card's root: a private mount namespace with this machine's /usr bound
 * read-only, except the card's own usr/local (where the hook lives), bound back over it.
 */
function inChroot(card: Card, args: string[], env: Record<string, string> = {}): { status: number | null; calls: string[]; out: string } {
  writeFileSync(join(card.root, 'calls.log'), '');
  const body = [
    'mount --bind "$1/usr/local" "$1/.usr-local"',
    'mount --bind -o ro /usr "$1/usr"',
    'mount --bind "$1/.usr-local" "$1/usr/local"',
    'mount --bind /dev/null "$1/dev/null"',
    'root=$1 && shift && exec chroot "$root" "$@"',
  ].join(' && ');
  const res = run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', body, 'sh', card.root, ...args], {
    env: { PATH: '/stubs:/usr/sbin:/usr/bin', HOOKSWITCH_FIRSTBOOT_RETRY_DELAY: '0', ...env },
  });
  const calls = readFileSync(join(card.root, 'calls.log'), 'utf8').split('\n').filter(Boolean);
  return { status: res.status, calls, out: `${res.stdout}${res.stderr}${res.error ? String(res.error) : ''}` };
}

/** The unit's enablement link is there (it points into the card, so it dangles out here). */
const enabled = (card: Card): boolean => lstatSync(join(card.root, 'etc/systemd/system/multi-user.target.wants', UNIT), { throwIfNoEntry: false }) !== undefined;

/**
 * One boot as systemd would do it for our unit: nothing unless it is enabled and its
 * ConditionPathExistsGlob matches; then its ExecStart.
 */
function bootOnce(card: Card, env: Record<string, string> = {}): ReturnType<typeof inChroot> | 'not started' {
  if (!enabled(card)) return 'not started';
  const unit = readFileSync(join(card.root, 'etc/systemd/system', UNIT), 'utf8');
  const glob = /^ConditionPathExistsGlob=(.+)\/([^/\n]+)$/m.exec(unit)!;
  const pattern = new RegExp(`^${glob[2]!.replaceAll('.', '\\.').replaceAll('*', '.*')}$`);
  const dir = join(card.root, glob[1]!);
  if (!existsSync(dir) || !readdirSync(dir).some((f) => pattern.test(f))) return 'not started';
  return inChroot(card, /^ExecStart=(.+)$/m.exec(unit)![1]!.split(' '), env);
}

function prepare(card: Card, args: string[]): SpawnSyncReturns<string> {
  return run('bash', [SCRIPT, '--boot', card.boot, ...args]);
}

/** Every file under dir with its content (symlinks as `-> target`), to compare runs. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[relative(dir, p)] = `-> ${readlinkSync(p)}`;
      else if (st.isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
const read = (p: string) => readFileSync(p, 'utf8');

t.test('the scripts parse and pass shellcheck', async (t) => {
  t.equal(built.status, 0, `package.mjs: ${built.stderr}`);
  const scripts = [SCRIPT, HOOK, join(REPO_ROOT, 'packaging/firstboot/firstrun.sh')];
  for (const s of scripts) t.equal(run('bash', ['-n', s]).status, 0, `bash -n ${relative(REPO_ROOT, s)}`);
  const sc = run('shellcheck', scripts);
  t.equal(sc.status, 0, `shellcheck (apt: shellcheck): ${sc.stdout}${sc.stderr}${sc.error ?? ''}`);
  for (const s of [SCRIPT, HOOK]) {
    const text = read(s);
    t.match(text, /^#!\/usr\/bin\/env bash\n[\s\S]*\nset -euo pipefail\n/, `${relative(REPO_ROOT, s)}: bash, set -euo pipefail`);
    t.notMatch(text, /\beval\b/, `${relative(REPO_ROOT, s)}: no eval`);
  }
  const unit = read(join(REPO_ROOT, 'packaging/firstboot', UNIT));
  for (const line of ['Type=oneshot', 'After=network-online.target', 'Wants=network-online.target', 'ConditionPathExistsGlob=/boot/firmware/hookswitch/hookswitch_*.deb', 'WantedBy=multi-user.target']) {
    t.match(unit, new RegExp(`^${line.replaceAll('.', '\\.').replaceAll('*', '\\*')}$`, 'm'), `unit: ${line}`);
  }
});

t.test('bookworm, no Imager customisation: our firstrun.sh on the kernel command line', async (t) => {
  const card = makeCard('bookworm-plain', 'bookworm');
  const res = prepare(card, ['--board', 'pi-intercom', '--deb', DEB]);
  t.equal(res.status, 0, res.stderr);
  t.match(res.stdout, /WARNING: this looks like Raspberry Pi OS bookworm, whose apt offers Node\.js 18/);
  const stage = join(card.boot, 'hookswitch');
  t.same(readdirSync(stage).sort(), ['cmdline.txt.orig', 'config.json', 'config.txt.add', 'hookswitch-firstboot.service', 'hookswitch-firstboot.sh', DEB_NAME].sort());
  t.equal(read(join(card.boot, 'cmdline.txt')), `${CMDLINE.bookworm.trimEnd()} ${RUN_ARGS}\n`, 'cmdline.txt: the original line plus the run arguments, one line');
  t.equal(read(join(stage, 'cmdline.txt.orig')), CMDLINE.bookworm);
  t.equal(read(join(card.boot, 'firstrun.sh')), read(join(REPO_ROOT, 'packaging/firstboot/firstrun.sh')));
  t.equal(mode(join(card.boot, 'firstrun.sh')), '755');
  t.equal(mode(join(stage, 'hookswitch-firstboot.sh')), '755');
  t.equal(mode(join(stage, 'config.json')), '600', 'the staged config is not world-readable where modes exist');
  t.same(JSON.parse(read(join(stage, 'config.json'))), { ...JSON.parse(read(join(REPO_ROOT, 'packaging/config.json'))), board: 'pi-intercom' });
  t.equal(read(join(stage, 'config.txt.add')), `# hookswitch board pi-intercom\n${BOARD_LINES.join('\n')}\n`);
  t.equal(read(join(card.boot, 'config.txt')), CONFIG_TXT, 'config.txt untouched until the Pi runs the hook');
  t.notOk(existsSync(join(card.root, 'etc/systemd/system', UNIT)), 'no unit in the root file system yet');

  const before = snapshot(card.root);
  t.equal(prepare(card, ['--board', 'pi-intercom', '--deb', DEB]).status, 0, 'second run');
  t.same(snapshot(card.root), before, 'a second run changes nothing');

  // Raspberry Pi OS moves Imager-style scripts to /boot/firmware and rewrites them from the first
  // line that removes the script on; what enables our unit must come before that line.
  const lines = read(join(card.boot, 'firstrun.sh')).split('\n');
  const cut = lines.findIndex((l) => /rm.*firstrun\.sh$/.test(l));
  t.ok(cut > 0 && lines.slice(0, cut).some((l) => l.includes('install-unit')), 'install-unit comes before the self-removal line');

  // Boot 1 (systemd.run): the script enables the unit, removes itself and its arguments.
  const first = inChroot(card, ['bash', '/boot/firmware/firstrun.sh']);
  t.equal(first.status, 0, first.out);
  t.same(first.calls, [], 'no apt and no systemctl in the kernel-command-line boot');
  t.notOk(existsSync(join(card.boot, 'firstrun.sh')), 'firstrun.sh removed itself');
  t.equal(read(join(card.boot, 'cmdline.txt')), CMDLINE.bookworm, 'cmdline.txt is as flashed again');
  t.equal(readlinkSync(join(card.root, 'etc/systemd/system/multi-user.target.wants', UNIT)), `/etc/systemd/system/${UNIT}`, 'unit enabled');
  t.equal(mode(join(card.root, 'usr/local/lib/hookswitch-firstboot/hookswitch-firstboot.sh')), '755');

  // Boot 2: apt only offers Node.js 18: nothing installed, a note on the card, retried later.
  const old = bootOnce(card, { STUB_NODE_CANDIDATE: '18.19.0+dfsg-6~deb12u2' });
  t.not(old, 'not started');
  if (old === 'not started') return;
  t.equal(old.status, 1, 'the unit fails visibly');
  t.same(old.calls, ['apt-get -o Acquire::Check-Date=false update', 'apt-cache policy nodejs'], 'no install attempted');
  t.match(read(join(card.boot, 'hookswitch/FAILED.txt')), /needs Node\.js 20 or newer, and apt on this Pi\noffers nodejs 18/);
  t.match(old.out, /apt offers nodejs 18, hookswitch needs 20 or newer: nothing installed/);
  t.notOk(existsSync(join(card.root, 'installed')), 'nothing installed');
  t.equal(read(join(card.boot, 'config.txt')), CONFIG_TXT, 'config.txt untouched');

  // Boot 3: the user added a Node.js 20 repository: install, config, board lines, reboot.
  const ok = bootOnce(card, { STUB_NODE_CANDIDATE: '1:20.18.1-1nodesource1' });
  t.not(ok, 'not started');
  if (ok === 'not started') return;
  t.equal(ok.status, 0, ok.out);
  t.same(ok.calls, [
    'apt-get -o Acquire::Check-Date=false update',
    'apt-cache policy nodejs',
    `apt-get install -y /boot/firmware/hookswitch/${DEB_NAME}`,
    'chown root:hookswitch /etc/hookswitch/config.json.firstboot',
    `systemctl disable ${UNIT}`,
    'systemctl daemon-reload',
    'systemctl --no-block reboot',
  ]);
  t.same(JSON.parse(read(join(card.root, 'etc/hookswitch/config.json'))).board, 'pi-intercom', 'the staged config replaced the package default');
  t.equal(mode(join(card.root, 'etc/hookswitch/config.json')), '660');
  t.equal(read(join(card.boot, 'config.txt')), `${CONFIG_TXT}\n# hookswitch board pi-intercom\n[all]\n${BOARD_LINES.join('\n')}\n`, 'board lines appended once, under [all]');
  t.equal(read(join(card.boot, 'config.txt.hookswitch-backup')), CONFIG_TXT, 'backup of the original');
  t.same(readdirSync(join(card.boot, 'hookswitch')).filter((f) => /\.deb$|^config\.json$|^FAILED/.test(f)), [], 'deb, config and FAILED.txt gone from the boot partition');
  t.match(read(join(card.boot, 'hookswitch/firstboot.log')), /added 4 line\(s\) to \/boot\/firmware\/config\.txt/);
  t.notOk(existsSync(join(card.root, 'etc/systemd/system', UNIT)), 'unit file removed');
  t.notOk(existsSync(join(card.root, 'usr/local/lib/hookswitch-firstboot')), 'hook removed');

  // Boot 4: nothing left to run.
  t.equal(bootOnce(card), 'not started', 'second boot after the install does nothing');
});

t.test('the hook finishes an interrupted run and repeats nothing', async (t) => {
  const card = makeCard('rerun', 'trixie');
  t.equal(prepare(card, ['--root', card.root, '--board', 'pi-intercom', '--deb', DEB]).status, 0);
  const env = { STUB_NODE_CANDIDATE: '20.19.2+dfsg-1' };
  // As if power was lost right after the board lines: run the work twice over.
  const hook = ['/usr/local/lib/hookswitch-firstboot/hookswitch-firstboot.sh', 'run'];
  cpSync(join(card.root, hook[0]!), join(card.root, 'hook-copy.sh'));
  t.equal(inChroot(card, hook, env).status, 0);
  const again = inChroot(card, ['bash', '/hook-copy.sh', 'run'], env);
  t.equal(again.status, 0, again.out);
  t.same(again.calls, [`systemctl disable ${UNIT}`, 'systemctl daemon-reload'], 'done marker: no apt, no reboot');
  t.equal(read(join(card.boot, 'config.txt')).split('label=door-relay').length, 2, 'the board lines are in config.txt once');

  const noNet = makeCard('no-network', 'trixie');
  t.equal(prepare(noNet, ['--root', noNet.root, '--deb', DEB]).status, 0);
  const res = bootOnce(noNet, { STUB_APT_UPDATE_FAIL: '1' });
  t.not(res, 'not started');
  if (res === 'not started') return;
  t.equal(res.status, 1);
  t.equal(res.calls.filter((c) => c.endsWith(' update')).length, 4, 'apt-get update tried 4 times');
  t.same(res.calls.filter((c) => !c.endsWith(' update')), [], 'then nothing else');
  t.ok(enabled(noNet), 'still enabled for the next boot');

  const ok = bootOnce(noNet, env);
  t.not(ok, 'not started');
  if (ok === 'not started') return;
  t.equal(ok.status, 0, ok.out);
  t.same(ok.calls.slice(-3), [`systemctl disable ${UNIT}`, 'systemctl daemon-reload', 'systemctl try-restart hookswitch.service'], 'no board, no config.txt change: restart instead of reboot');
  t.equal(read(join(noNet.root, 'etc/hookswitch/config.json')), '{}\n', 'no config staged: the package default stays');
});

t.test('--root: the unit goes straight into the root file system', async (t) => {
  const card = makeCard('trixie-root', 'trixie', { userData: IMAGER_USER_DATA });
  const res = prepare(card, ['--root', card.root, '--deb', DEB]);
  t.equal(res.status, 0, res.stderr);
  t.notMatch(res.stdout, /WARNING/, 'trixie: no Node.js warning');
  t.equal(read(join(card.boot, 'cmdline.txt')), CMDLINE.trixie, 'cmdline.txt untouched');
  t.equal(read(join(card.boot, 'user-data')), IMAGER_USER_DATA, 'user-data untouched');
  t.notOk(existsSync(join(card.boot, 'firstrun.sh')));
  t.equal(read(join(card.root, 'etc/systemd/system', UNIT)), read(join(REPO_ROOT, 'packaging/firstboot', UNIT)));
  t.equal(mode(join(card.root, 'etc/systemd/system', UNIT)), '644');
  t.equal(readlinkSync(join(card.root, 'etc/systemd/system/multi-user.target.wants', UNIT)), `/etc/systemd/system/${UNIT}`);
  t.notOk(existsSync(join(card.boot, 'hookswitch/config.json')), 'no --config, no --board: no config staged');
  const before = snapshot(card.root);
  t.equal(prepare(card, ['--root', card.root, '--deb', DEB]).status, 0);
  t.same(snapshot(card.root), before, 'a second run changes nothing');
});

t.test('Imager customisations are chained, never overwritten', async (t) => {
  // bookworm with Imager's firstrun.sh: ours runs after theirs, before their self-removal.
  const fr = makeCard('bookworm-imager', 'bookworm', { firstrun: true });
  const cmdline = read(join(fr.boot, 'cmdline.txt'));
  const res = prepare(fr, ['--deb', DEB]);
  t.equal(res.status, 0, res.stderr);
  t.match(res.stdout, /chained to Raspberry Pi Imager's/);
  t.equal(read(join(fr.boot, 'cmdline.txt')), cmdline, 'cmdline.txt unchanged: it already runs firstrun.sh');
  t.equal(read(join(fr.boot, 'hookswitch/firstrun.sh.orig')), IMAGER_FIRSTRUN, 'their script kept');
  const lines = read(join(fr.boot, 'firstrun.sh')).split('\n');
  const theirs = IMAGER_FIRSTRUN.split('\n');
  t.same(lines.filter((l) => !l.includes('hookswitch')), theirs, 'every line of theirs, in order');
  t.equal(lines.findIndex((l) => l.includes('install-unit')), theirs.indexOf('rm -f /boot/firstrun.sh') + 1, 'ours just before their self-removal');
  const before = snapshot(fr.root);
  t.equal(prepare(fr, ['--deb', DEB]).status, 0);
  t.same(snapshot(fr.root), before, 'a second run chains nothing twice');
  const boot1 = inChroot(fr, ['sh', '/boot/firmware/firstrun.sh']);
  t.equal(boot1.status, 0, boot1.out);
  t.equal(read(join(fr.root, 'etc/hostname')), 'doorpi\n', 'their customisation ran');
  t.ok(enabled(fr), 'and then ours enabled the unit');

  // trixie with Imager's cloud-init user-data: a runcmd list added, or an item added to theirs.
  const table: [name: string, userData: string, expected: string][] = [
    ['no runcmd', IMAGER_USER_DATA, `${IMAGER_USER_DATA}\nruncmd:\n  # hookswitch: enable its first-boot unit (scripts/prepare-sd.sh)\n  - [ bash, /boot/firmware/hookswitch/hookswitch-firstboot.sh, install-unit, --start ]\n`],
    ['runcmd last', IMAGER_USER_DATA_RUNCMD, `${IMAGER_USER_DATA_RUNCMD}  # hookswitch: enable its first-boot unit (scripts/prepare-sd.sh)\n  - [ bash, /boot/firmware/hookswitch/hookswitch-firstboot.sh, install-unit, --start ]\n`],
    ['runcmd last, no final newline, items at column 0', '#cloud-config\nruncmd:\n- [ rfkill, unblock, wifi ]', '#cloud-config\nruncmd:\n- [ rfkill, unblock, wifi ]\n# hookswitch: enable its first-boot unit (scripts/prepare-sd.sh)\n- [ bash, /boot/firmware/hookswitch/hookswitch-firstboot.sh, install-unit, --start ]\n'],
  ];
  for (const [name, userData, expected] of table) {
    const card = makeCard(`trixie-ci-${name.replace(/\W+/g, '-')}`, 'trixie', { userData });
    const r = prepare(card, ['--deb', DEB]);
    t.equal(r.status, 0, `${name}: ${r.stderr}`);
    t.equal(read(join(card.boot, 'user-data')), expected, `${name}: user-data`);
    t.equal(read(join(card.boot, 'cmdline.txt')), CMDLINE.trixie, `${name}: cmdline.txt untouched`);
    t.notOk(existsSync(join(card.boot, 'firstrun.sh')), `${name}: no firstrun.sh`);
    t.equal(prepare(card, ['--deb', DEB]).status, 0);
    t.equal(read(join(card.boot, 'user-data')), expected, `${name}: a second run adds nothing`);
  }
  // cloud-final runs the item: the unit is installed and started at once.
  const ci = makeCard('trixie-ci-run', 'trixie', { userData: IMAGER_USER_DATA });
  t.equal(prepare(ci, ['--deb', DEB]).status, 0);
  const item = /- \[ (.+) \]$/m.exec(read(join(ci.boot, 'user-data')).split('hookswitch: enable')[1]!)![1]!.split(', ');
  const r = inChroot(ci, item);
  t.equal(r.status, 0, r.out);
  t.same(r.calls, ['systemctl daemon-reload', `systemctl start --no-block ${UNIT}`]);
  t.ok(enabled(ci));
});

t.test('the package is built when --deb is not given', async (t) => {
  const card = makeCard('build', 'trixie');
  const res = prepare(card, ['--root', card.root, '--board', 'serial-handset']);
  t.equal(res.status, 0, res.stderr);
  t.match(res.stdout, /building the package/);
  t.ok(existsSync(join(card.boot, 'hookswitch', DEB_NAME)));
  t.notOk(existsSync(join(card.boot, 'hookswitch/config.txt.add')), 'serial-handset needs no config.txt lines');
  t.equal(JSON.parse(read(join(card.boot, 'hookswitch/config.json'))).board, 'serial-handset');
});

t.test('refusals: a clear reason, exit 1, nothing written', async (t) => {
  const badConfig = join(work.dir, 'bad.json');
  writeFileSync(badConfig, '{"sip":{"port":70000}}');
  const table: [name: string, card: () => Card, args: (c: Card) => string[], stderr: RegExp][] = [
    ['no --boot', () => makeCard('r-noboot', 'trixie'), () => ['--deb', DEB], /--boot DIR is required/],
    ['not a boot partition', () => makeCard('r-notboot', 'trixie'), (c) => ['--boot', c.root, '--deb', DEB], /no cmdline\.txt and config\.txt/],
    ['bad board name', () => makeCard('r-board', 'trixie'), (c) => ['--boot', c.boot, '--board', 'x;reboot', '--deb', DEB], /--board: "x;reboot" is not a board name/],
    ['unknown board', () => makeCard('r-unknown', 'trixie'), (c) => ['--boot', c.boot, '--board', 'pi-nonesuch', '--deb', DEB], /unknown board "pi-nonesuch"; known: pi-ag1171-handset pi-intercom/],
    ['invalid config', () => makeCard('r-config', 'trixie'), (c) => ['--boot', c.boot, '--config', badConfig, '--deb', DEB], /the config is not valid/],
    ['someone else\'s systemd.run', () => makeCard('r-run', 'bookworm', { cmdline: `${CMDLINE.bookworm.trimEnd()} systemd.run=/boot/other.sh\n` }), (c) => ['--boot', c.boot, '--deb', DEB], /already runs a first-boot script/],
    ['runcmd not last in user-data', () => makeCard('r-runcmd', 'trixie', { userData: '#cloud-config\nruncmd:\n  - [ true ]\nhostname: x\n' }), (c) => ['--boot', c.boot, '--deb', DEB], /runcmd list that is not its last entry; add this item to it yourself/],
    ['user-data that is not cloud-config', () => makeCard('r-ud', 'trixie', { userData: '#!/bin/sh\necho hi\n' }), (c) => ['--boot', c.boot, '--deb', DEB], /does not start with #cloud-config/],
    ['--deb not a hookswitch .deb name', () => makeCard('r-deb', 'trixie'), (c) => ['--boot', c.boot, '--deb', badConfig], /is not named hookswitch_<version>_all\.deb/],
  ];
  for (const [name, mk, args, stderr] of table) {
    const card = mk();
    const before = snapshot(card.root);
    const res = run('bash', [SCRIPT, ...args(card)]);
    t.equal(res.status, 1, `${name}: exit 1`);
    t.match(res.stderr, stderr, name);
    t.same(snapshot(card.root), before, `${name}: nothing written`);
  }
  const help = run('bash', [SCRIPT, '--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /sudo scripts\/prepare-sd\.sh --boot \/media\/\$USER\/bootfs \[--root/);
});
