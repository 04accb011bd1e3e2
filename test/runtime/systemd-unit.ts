/**
 * systemd/hookswitch.service as systemd 252 reads it. `systemd-analyze verify` and
 * `systemd-analyze security --offline=true` parse unit files without a running systemd (this
 * works in a container whose PID 1 is not systemd). verify also loads the unit's dependencies
 * and checks that each Exec*= binary exists, so it runs in a throwaway `--root`: a copy of
 * /usr/lib/systemd/system (from the systemd package), the unit in etc/systemd/system, and
 * empty executables at the Exec*= paths, since hookswitch itself is not installed here.
 */
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../helpers/gateway-process.ts';
import { scratch } from '../helpers/scratch.ts';

const UNIT = join(REPO_ROOT, 'systemd', 'hookswitch.service');
const UNIT_TEXT = readFileSync(UNIT, 'utf8');
const space = scratch('sdunit');

interface Result {
  code: number;
  output: string;
}

function analyze(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile('systemd-analyze', args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, output: `${stdout}${stderr}${error && typeof error.code !== 'number' ? String(error) : ''}` });
    });
  });
}

/** `[section] key=value` pairs in file order (continuation lines are not used in our unit). */
function settings(text: string): { section: string; key: string; value: string }[] {
  const out: { section: string; key: string; value: string }[] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else {
      const eq = line.indexOf('=');
      out.push({ section, key: line.slice(0, eq), value: line.slice(eq + 1) });
    }
  }
  return out;
}

/** The absolute executables of the Exec*= lines, without the `-@:+!` prefixes. */
function execPaths(text: string): string[] {
  return settings(text)
    .filter((s) => s.key.startsWith('Exec'))
    .map((s) => s.value.replace(/^[-@:+!]+/, '').split(/\s+/)[0]!)
    .filter((p) => p.startsWith('/'));
}

let roots = 0;
/** A root for `verify --root`: systemd's own units, ours, and stub executables if asked. */
function verifyRoot(unitText: string, stubs: boolean): string {
  const root = join(space.dir, `root${roots++}`);
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  writeFileSync(join(root, 'etc/systemd/system/hookswitch.service'), unitText);
  if (stubs) {
    for (const path of execPaths(unitText)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), '#!/bin/sh\n');
      chmodSync(join(root, path), 0o755);
    }
  }
  return root;
}

t.test('the unit sets what the gateway and the package rely on', async (t) => {
  const all = settings(UNIT_TEXT);
  const service = all.filter((s) => s.section === 'Service');
  const value = (key: string) => service.filter((s) => s.key === key).map((s) => s.value);
  const cases: [key: string, expected: string[]][] = [
    ['Type', ['notify']],
    ['NotifyAccess', ['all']],
    ['WatchdogSec', ['30s']],
    ['ExecStart', ['/usr/bin/hookswitch run']],
    ['ExecReload', ['/bin/kill -HUP $MAINPID']],
    ['Restart', ['on-failure']],
    ['User', ['hookswitch']],
    ['Group', ['hookswitch']],
    ['SupplementaryGroups', ['audio dialout input gpio']],
    ['StateDirectory', ['hookswitch']],
    ['ConfigurationDirectory', ['hookswitch']],
    ['RuntimeDirectory', ['hookswitch']],
    ['NoNewPrivileges', ['yes']],
    ['ProtectSystem', ['strict']],
    ['ProtectHome', ['yes']],
    ['PrivateTmp', ['yes']],
    ['RestrictAddressFamilies', ['AF_UNIX AF_INET AF_INET6 AF_NETLINK']],
    ['DevicePolicy', ['closed']],
    ['MemoryDenyWriteExecute', []],
    ['PrivateDevices', []],
  ];
  for (const [key, expected] of cases) t.same(value(key), expected, `${key}=${expected.join(', ') || '(unset)'}`);
  const devices = value('DeviceAllow').map((v) => v.split(/\s+/)[0]);
  for (const d of ['char-alsa', 'char-input', 'char-ttyUSB', 'char-ttyACM', 'char-gpiochip']) t.ok(devices.includes(d), `DeviceAllow=${d}`);
  t.same(all.filter((s) => s.section === 'Install').map((s) => `${s.key}=${s.value}`), ['WantedBy=multi-user.target']);
  t.same(execPaths(UNIT_TEXT), ['/usr/bin/hookswitch', '/bin/kill']);
});

t.test('systemd-analyze verify', async (t) => {
  const cases: { name: string; unit: string; stubs: boolean; clean: boolean; expect?: RegExp }[] = [
    { name: 'the shipped unit is clean', unit: UNIT_TEXT, stubs: true, clean: true },
    { name: 'an unknown setting is reported', unit: UNIT_TEXT.replace('[Service]\n', '[Service]\nFrobnicate=yes\n'), stubs: true, clean: false, expect: /Unknown key 'Frobnicate'/ },
    { name: 'a missing executable is reported', unit: UNIT_TEXT, stubs: false, clean: false, expect: /\/usr\/bin\/hookswitch is not executable/ },
  ];
  for (const c of cases) {
    const root = verifyRoot(c.unit, c.stubs);
    const r = await analyze(['verify', `--root=${root}`, 'hookswitch.service']);
    if (c.clean) {
      t.equal(r.output, '', `${c.name}: no output`);
      t.equal(r.code, 0, `${c.name}: exit 0`);
    } else t.match(r.output, c.expect!, c.name);
  }
});

t.test('systemd-analyze security: exposure of 2.5 or less', async (t) => {
  const exposure = (output: string) => Number(/Overall exposure level for hookswitch\.service: (\d+(?:\.\d+)?)/.exec(output)?.[1] ?? NaN);
  const ours = await analyze(['security', '--offline=true', '--threshold=25', UNIT]);
  const level = exposure(ours.output);
  t.comment(`exposure of systemd/hookswitch.service: ${level}`);
  t.ok(level <= 2.5, `exposure ${level} <= 2.5`);
  t.equal(ours.code, 0, '--threshold=25 passes');
  for (const line of ours.output.split('\n').filter((l) => l.startsWith('✗'))) t.comment(line.replace(/\s{2,}/g, '  '));

  const bare = join(space.dir, 'hookswitch.service');
  writeFileSync(bare, '[Service]\nExecStart=/usr/bin/hookswitch run\n');
  const baseline = exposure((await analyze(['security', '--offline=true', bare])).output);
  t.ok(baseline >= 9, `an unhardened unit scores ${baseline}, so the figure is read correctly`);
});
