import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, constants, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpiodBackend, parseEdgeLine, parseGpiodetect, parseGpiodVersion, parseGpioget, type GpiodCli } from '../../src/hardware/backends/gpiod.ts';
import { BoardRegistry } from '../../src/hardware/board-registry.ts';
import type { HardwareEvents, InputRole } from '../../src/hardware/types.ts';
import { SystemClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';

const boards = new BoardRegistry();

// Stub tools behaving like libgpiod 1.6 or 2.x (STUB_GPIOD=1|2): they log their argv to
// $STUB_LOG; gpiomon prints the edges written to $STUB_DIR/gpiomon-<last offset>.fifo
// ("<offset> rising|falling <sec> <nsec>") in the -F format it was given.
const STUBS: Record<string, string> = {
  gpiomon: `#!/bin/bash
echo "gpiomon $*" >> "$STUB_LOG"
if [ "$1" = "--version" ]; then
  if [ "$STUB_GPIOD" = 1 ]; then echo "gpiomon (libgpiod) v1.6.3"; else echo "gpiomon (libgpiod) v2.1.3"; fi
  echo "Copyright (C) 2017-2023 Bartosz Golaszewski"
  exit 0
fi
args=("$@"); fmt=""
for ((i = 0; i < \${#args[@]}; i++)); do [ "\${args[$i]}" = "-F" ] && fmt="\${args[$((i + 1))]}"; done
fifo="$STUB_DIR/gpiomon-\${args[-1]}.fifo"
[ -p "$fifo" ] || { echo "gpiomon: cannot open $fifo" >&2; exit 1; }
exec 3<>"$fifo"
while read -r off edge sec nsec <&3; do
  [ "$off" = "crash" ] && exit 1
  [ "$off" = "garbage" ] && { echo "this is not an edge"; continue; }
  if [ "$STUB_GPIOD" = 1 ]; then e=0; [ "$edge" = rising ] && e=1; n=$((10#$nsec)); else e=2; [ "$edge" = rising ] && e=1; n=$nsec; fi
  out="\${fmt//%o/$off}"; out="\${out//%e/$e}"; out="\${out//%S/$sec.$nsec}"; out="\${out//%s/$sec}"; out="\${out//%n/$n}"
  echo "$out"
done
`,
  gpiodetect: `#!/bin/bash
echo "gpiodetect $*" >> "$STUB_LOG"
case "$STUB_BOARD" in
  pi4) echo "gpiochip0 [pinctrl-bcm2711] (58 lines)"; echo "gpiochip1 [raspberrypi-exp-gpio] (8 lines)" ;;
  other) echo "gpiochip0 [gpio-mockup-A] (8 lines)" ;;
  *) echo "gpiochip0 [gpio-brcmstb@107d508500] (32 lines)"; echo "gpiochip1 [gpio-brcmstb@107d517c00] (15 lines)"; echo "gpiochip4 [pinctrl-rp1] (54 lines)" ;;
esac
`,
  gpioget: `#!/bin/bash
echo "gpioget $*" >> "$STUB_LOG"
if [ -n "$STUB_BUSY" ]; then echo "gpioget: error reading GPIO values: Device or resource busy" >&2; exit 1; fi
pos=()
while [ $# -gt 0 ]; do case "$1" in -B|-b|-c|-C) shift 2 ;; *) pos+=("$1"); shift ;; esac; done
[ "$STUB_GPIOD" = 1 ] && pos=("\${pos[@]:1}")
out=()
for o in "\${pos[@]}"; do
  v=0; for lv in $STUB_LEVELS; do [ "\${lv%%=*}" = "$o" ] && v="\${lv#*=}"; done
  if [ "$STUB_GPIOD" = 1 ]; then out+=("$v"); else s=inactive; [ "$v" = 1 ] && s=active; out+=("\\"$o\\"=$s"); fi
done
echo "\${out[*]}"
`,
  gpioset: `#!/bin/bash
args="$*"
trap 'echo "gpioset-exit $args" >> "$STUB_LOG"; [ -n "$sp" ] && kill $sp 2>/dev/null; exit 0' TERM
echo "gpioset $*" >> "$STUB_LOG"
if [ "$STUB_GPIOD" = 1 ]; then
  case " $args " in *" --mode=signal "*) ;; *) exit 0 ;; esac
else
  case " $args " in *" -t 0 "*) exit 0 ;; esac
fi
# Its own stdio: a sleep orphaned by a TERM before sp is set must not hold the pipes open.
sleep 1000 </dev/null >/dev/null 2>&1 & sp=$!
wait $sp
`,
};

function stubDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gpiod-stub-'));
  for (const [name, text] of Object.entries(STUBS)) {
    writeFileSync(join(dir, name), text);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

function env(dir: string, cli: GpiodCli, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: `${dir}:/usr/bin:/bin`, STUB_DIR: dir, STUB_LOG: join(dir, 'log'), STUB_GPIOD: String(cli), ...extra };
}

function log(dir: string): string[] {
  return existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8').split('\n').filter(Boolean) : [];
}

async function waitFor(what: string, check: () => boolean, ms = 4000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function recorder(): { events: HardwareEvents; inputs: Array<[InputRole, boolean, number]>; connection: Array<boolean> } {
  const inputs: Array<[InputRole, boolean, number]> = [];
  const connection: boolean[] = [];
  return { inputs, connection, events: { input: (r, a, at) => inputs.push([r, a, at]), key: () => undefined, connection: (up) => connection.push(up) } };
}

t.test('parsers of the tool outputs', async (t) => {
  const versions: Array<[string, GpiodCli | undefined]> = [
    ['gpiomon (libgpiod) v1.6.3\nCopyright (C) 2017-2018 Bartosz Golaszewski\n', 1],
    ['gpiomon (libgpiod) v2.1.3\n', 2],
    ['gpiomon (libgpiod) v2.2.1\n', 2],
    ['gpiomon: command not found', undefined],
  ];
  for (const [text, cli] of versions) t.equal(parseGpiodVersion(text), cli, JSON.stringify(text));
  t.same(parseGpiodetect('gpiochip0 [pinctrl-bcm2711] (58 lines)\ngpiochip1 [raspberrypi-exp-gpio] (8 lines)\n'), [
    { name: 'gpiochip0', label: 'pinctrl-bcm2711', lines: 58 },
    { name: 'gpiochip1', label: 'raspberrypi-exp-gpio', lines: 8 },
  ]);
  const edges: Array<[string, GpiodCli, ReturnType<typeof parseEdgeLine>]> = [
    ['17 1 123 456000000', 1, { offset: 17, rising: true, kernelMs: 123456 }],
    ['17 0 123 5000000', 1, { offset: 17, rising: false, kernelMs: 123005 }],
    ['27 1 123.456000000', 2, { offset: 27, rising: true, kernelMs: 123456 }],
    ['27 2 123.000500000', 2, { offset: 27, rising: false, kernelMs: 123000.5 }],
    ['27 2 123 456', 2, undefined],
    ['27 2 123.456', 2, undefined],
    ['17 2 123 456', 1, undefined],
    ['event:  RISING EDGE offset: 17 timestamp: [     123.456000000]', 1, undefined],
  ];
  for (const [line, cli, edge] of edges) t.same(parseEdgeLine(line, cli), edge, `v${cli} ${line}`);
  t.same([...parseGpioget('0 1\n', 1, [17, 27])!], [[17, false], [27, true]]);
  t.same([...parseGpioget('"17"=active "27"=inactive\n', 2, [17, 27])!], [[17, true], [27, false]]);
  t.equal(parseGpioget('0\n', 1, [17, 27]), undefined, 'too few values');
  t.equal(parseGpioget('"17"=active\n', 2, [17, 27]), undefined, 'a line missing');
});

for (const cli of [1, 2] as const) {
  t.test(`libgpiod ${cli} CLI: inputs, outputs and stop`, async (t) => {
    const dir = stubDir();
    execFileSync('mkfifo', [join(dir, 'gpiomon-17.fifo'), join(dir, 'gpiomon-22.fifo')]);
    const logger = new MemoryLogger();
    const backend = new GpiodBackend({
      profile: boards.load('pi-rotary-bell'),
      clock: new SystemClock(),
      logger,
      env: env(dir, cli, { STUB_LEVELS: '17=0 27=0 22=1' }),
      backoff: { initialMs: 50, maxMs: 50, resetAfterMs: 1000 },
    });
    const rec = recorder();
    await backend.start(rec.events);
    t.equal(backend.cli, cli);
    t.equal(backend.chip, 'gpiochip4', 'found by the pinctrl-rp1 label, not by number');
    t.same(rec.inputs.map(([r, a]) => [r, a]), [['hook', true]], 'a handset already off-hook (GPIO17 low, active low) is reported');
    await waitFor('both monitors', () => log(dir).filter((l) => l.startsWith('gpiomon -') && l !== 'gpiomon --version').length === 2);
    const expectedArgs =
      cli === 1
        ? ['gpiomon --version', 'gpiodetect ', 'gpioget -B pull-up gpiochip4 17', 'gpioget -B pull-up gpiochip4 27 22', 'gpiomon -b -B pull-up -F %o %e %s %n gpiochip4 17', 'gpiomon -b -B pull-up -F %o %e %s %n gpiochip4 27 22']
        : [
            'gpiomon --version',
            'gpiodetect ',
            'gpioget -c gpiochip4 -C hookswitch -b pull-up 17',
            'gpioget -c gpiochip4 -C hookswitch -b pull-up 27 22',
            'gpiomon -c gpiochip4 -C hookswitch -e both -b pull-up -p 10ms -F %o %e %S 17',
            'gpiomon -c gpiochip4 -C hookswitch -e both -b pull-up -p 5ms -F %o %e %S 27 22',
          ];
    const started = log(dir);
    t.same([...started.slice(0, 4), ...started.slice(4).sort()], expectedArgs, 'argument vectors: levels read first, then one gpiomon per pull/debounce group');

    // The first edge ties kernel time to the clock; the dial's edges happen (in kernel time)
    // within the 300 ms the test waits, so none of them can look as if it came from the future.
    rec.inputs.length = 0;
    await writeFile(join(dir, 'gpiomon-17.fifo'), '17 rising 100 000000000\n');
    await waitFor('hook edge', () => rec.inputs.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(dir, 'gpiomon-22.fifo'), '22 falling 100 010000000\n27 rising 100 060000000\n27 falling 100 120000000\n27 falling 100 121000000\ngarbage\n22 rising 100 210000000\n');
    await waitFor('edges', () => rec.inputs.length === 5);
    t.same(rec.inputs.map(([r, a]) => [r, a]), [['hook', false], ['offNormal', true], ['pulse', true], ['pulse', false], ['offNormal', false]], 'polarity applied, the duplicate falling edge dropped');
    rec.inputs.shift();
    const at = rec.inputs.map(([, , ms]) => ms);
    t.ok(Math.abs(at[2]! - at[1]! - 60) < 1e-6, `break measured from kernel timestamps: ${(at[2]! - at[1]!).toFixed(3)} ms`);
    t.ok(Math.abs(at[3]! - at[0]! - 200) < 1e-6, 'off-normal span 200 ms');
    t.equal(backend.badLines, 1);
    t.ok(logger.records.some((r) => r.level === 'warn' && r.msg.includes('not an edge')));

    backend.setOutput('bell', { mode: 'on' });
    backend.setOutput('relay', { mode: 'on' });
    const on = cli === 1 ? 'gpioset --mode=signal gpiochip4 23=1' : 'gpioset -c gpiochip4 -C hookswitch 23=1';
    await waitFor('bell on', () => log(dir).includes(on));
    backend.setOutput('bell', { mode: 'blink', onMs: 20, offMs: 20 });
    const blink = cli === 1 ? 'gpioset --mode=signal gpiochip4 23=0' : 'gpioset -c gpiochip4 -C hookswitch -t 20ms,20ms 23=1';
    await waitFor('bell blink', () => log(dir).includes(blink));
    const sets = log(dir).filter((l) => l.startsWith('gpioset'));
    t.same(sets, [on, `gpioset-exit ${on.slice('gpioset '.length)}`, blink], 'the old holder exits before the new one requests the line');
    if (cli === 1) t.ok(logger.records.some((r) => r.level === 'warn' && r.msg.includes('libgpiod 1 cannot toggle GPIO 23 (bell) at 25 Hz')), 'v1 refuses 25 Hz toggling with a warning');

    backend.setOutput('bell', { mode: 'on' });
    await waitFor('bell on again', () => log(dir).filter((l) => l === on).length === 2);
    await backend.stop();
    await backend.stop();
    const tail = log(dir).slice(-2);
    const off = cli === 1 ? 'gpioset --mode=exit gpiochip4 23=0' : 'gpioset -c gpiochip4 -C hookswitch -t 0 23=0';
    t.same(tail, [`gpioset-exit ${on.slice('gpioset '.length)}`, off], 'stop kills the holder, then drives the bell off');
    for (const fifo of ['gpiomon-17.fifo', 'gpiomon-22.fifo']) {
      // Opening a FIFO without blocking fails with ENXIO when nobody reads it: the monitors are gone.
      const opened = await open(join(dir, fifo), constants.O_WRONLY | constants.O_NONBLOCK).then((h) => h.close().then(() => 'open'), (e: NodeJS.ErrnoException) => e.code);
      t.equal(opened, 'ENXIO', `no gpiomon reads ${fifo} after stop`);
    }
  });
}

t.test('libgpiod 1 blinks slow outputs by replacing gpioset on the clock', async (t) => {
  const dir = stubDir();
  const backend = new GpiodBackend({ profile: boards.load('pi-intercom'), clock: new SystemClock(), logger: new MemoryLogger(), env: env(dir, 1, { STUB_BOARD: 'pi4' }), minSoftBlinkMs: 40 });
  execFileSync('mkfifo', [join(dir, 'gpiomon-17.fifo')]);
  await backend.start(recorder().events);
  t.equal(backend.chip, 'gpiochip0', 'pinctrl-bcm2711 on a Pi 4');
  backend.setOutput('ledGreen', { mode: 'blink', onMs: 60, offMs: 60 });
  await waitFor('three phases', () => log(dir).filter((l) => l.startsWith('gpioset --mode=signal')).length >= 3);
  backend.setOutput('ledGreen', { mode: 'off' });
  await backend.stop();
  const starts = log(dir).filter((l) => l.startsWith('gpioset --mode=signal')).slice(0, 3);
  t.same(starts, ['gpioset --mode=signal gpiochip0 24=1', 'gpioset --mode=signal gpiochip0 24=0', 'gpioset --mode=signal gpiochip0 24=1']);
  t.notOk(log(dir).some((l) => l.startsWith('gpioset --mode=exit')), 'an output already off needs no final gpioset');
});

t.test('a door relay pulse ends on the clock', async (t) => {
  const dir = stubDir();
  execFileSync('mkfifo', [join(dir, 'gpiomon-17.fifo')]);
  const backend = new GpiodBackend({ profile: boards.load('pi-intercom'), clock: new SystemClock(), logger: new MemoryLogger(), env: env(dir, 2) });
  await backend.start(recorder().events);
  backend.pulse('relay', 80);
  await waitFor('relay off', () => log(dir).includes('gpioset -c gpiochip4 -C hookswitch 23=0'));
  await backend.stop();
  t.same(
    log(dir).filter((l) => l.includes('23=')),
    ['gpioset -c gpiochip4 -C hookswitch 23=1', 'gpioset-exit -c gpiochip4 -C hookswitch 23=1', 'gpioset -c gpiochip4 -C hookswitch 23=0', 'gpioset-exit -c gpiochip4 -C hookswitch 23=0'],
  );
});

t.test('a crashed gpiomon is restarted and reported', async (t) => {
  const dir = stubDir();
  execFileSync('mkfifo', [join(dir, 'gpiomon-17.fifo')]);
  const logger = new MemoryLogger();
  const backend = new GpiodBackend({ profile: boards.load('pi-ag1171-handset'), clock: new SystemClock(), logger, env: env(dir, 2), backoff: { initialMs: 30, maxMs: 30, resetAfterMs: 1000 } });
  const rec = recorder();
  await backend.start(rec.events);
  await writeFile(join(dir, 'gpiomon-17.fifo'), 'crash\n');
  await waitFor('restart', () => log(dir).filter((l) => l.startsWith('gpiomon -c')).length === 2);
  await waitFor('up again', () => rec.connection.length === 2);
  t.same(rec.connection, [false, true]);
  t.ok(logger.records.some((r) => r.level === 'warn' && r.msg.startsWith('gpiomon exited; restarting in 30 ms')));
  await writeFile(join(dir, 'gpiomon-17.fifo'), '17 rising 5 000000000\n');
  await waitFor('edge after restart', () => rec.inputs.length === 1);
  t.same(rec.inputs.map(([r, a]) => [r, a]), [['hook', true]]);
  await backend.stop();
});

t.test('start fails with one line naming the problem and the fix', async (t) => {
  const profile = boards.load('pi-rotary-bell');
  const cases: Array<{ name: string; env: (dir: string) => NodeJS.ProcessEnv; message: RegExp }> = [
    { name: 'tools not installed', env: (dir) => ({ PATH: join(dir, 'nowhere'), STUB_LOG: join(dir, 'log') }), message: /^gpiod: cannot run gpiomon \(ENOENT\); install the libgpiod tools: sudo apt install gpiod$/ },
    { name: 'no Raspberry Pi GPIO chip', env: (dir) => env(dir, 2, { STUB_BOARD: 'other' }), message: /^gpiod: no GPIO chip labelled pinctrl-rp1 or pinctrl-bcm2711 or pinctrl-bcm2835 \(gpiodetect found: gpiochip0 \[gpio-mockup-A\]\)$/ },
    { name: 'line held by an overlay', env: (dir) => env(dir, 1, { STUB_BUSY: '1' }), message: /^gpiod: cannot read GPIO 17 \(hook\) on gpiochip4: gpioget: error reading GPIO values: Device or resource busy; a pin claimed by a dtoverlay line in config.txt is busy/ },
  ];
  for (const c of cases) {
    const dir = stubDir();
    const backend = new GpiodBackend({ profile, clock: new SystemClock(), logger: new MemoryLogger(), env: c.env(dir) });
    const err = await backend.start(recorder().events).then(() => undefined, (e: Error) => e);
    t.match(err?.message, c.message, c.name);
    t.notOk(err?.message.includes('\n'), `${c.name}: one line`);
    await backend.stop();
  }
  const serial = new GpiodBackend({ profile: boards.load('serial-handset'), clock: new SystemClock(), logger: new MemoryLogger() });
  await t.rejects(serial.start(recorder().events), /serial board/);
});
