/**
 * The libgpiod-tools backend: the fallback for users who cannot edit `config.txt`. Inputs are
 * watched by `gpiomon` child processes (one per pull/debounce group) whose edge lines are parsed
 * here; each output is held by a `gpioset` child, replaced when the state changes. Both CLI
 * generations are spoken, chosen from `gpiomon --version`:
 * - v1 (libgpiod 1.6, Debian 12): `gpiomon -b -B pull-up -F '%o %e %s %n' gpiochip0 17 27`
 *   (`%e` 1 = rising, 0 = falling); `gpioset --mode=signal gpiochip0 23=1` (the default mode
 *   `exit` would release the line at once); no toggling, so blinking is done by replacing the
 *   `gpioset` on the clock, and is refused below `minSoftBlinkMs`.
 * - v2 (libgpiod 2.x, Debian 13): `gpiomon -c gpiochip0 -e both -b pull-up -p 5ms -F '%o %e %S' 17`
 *   (`%e` 1 = rising, 2 = falling, `%S` = seconds.nanoseconds); `gpioset -c gpiochip0 23=1` runs
 *   until killed; `-t on,off` toggles by itself, so the FR pin of a SLIC rings at 20/25 Hz.
 * The chip is found by its label (`pinctrl-rp1` on a Pi 5, `pinctrl-bcm2711`/`pinctrl-bcm2835`
 * before) through `gpiodetect`, never by number; the BCM GPIO number is the line offset.
 * Children get argument vectors, never a shell string. (Tool behaviour: libgpiod `tools/*.c`.)
 */
import type { BoardProfile, GpioInput, GpioOutput, Pull } from '../board-profile.ts';
import { INPUT_ROLES, OUTPUT_ROLES } from '../board-profile.ts';
import type { HardwareBackend, HardwareEvents, InputRole, OutputRole, OutputState } from '../types.ts';
import { defaultSpawn, SupervisedChild, type BackoffOptions, type SpawnFunction } from '../../audio/backends/supervised-child.ts';
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';

/** The CLI generation of the installed tools. */
export type GpiodCli = 1 | 2;

/** Chip labels searched in order: Pi 5 (RP1), Pi 4 (BCM2711), Pi 3 / Zero 2 W and older (BCM2835). */
export const DEFAULT_CHIP_LABELS: readonly string[] = ['pinctrl-rp1', 'pinctrl-bcm2711', 'pinctrl-bcm2835'];

/** What a {@link GpiodBackend} needs. */
export interface GpiodOptions {
  profile: BoardProfile;
  clock: Clock;
  logger: Logger;
  spawn?: SpawnFunction;
  /** Environment of every child (PATH decides which `gpiomon` runs). */
  env?: NodeJS.ProcessEnv;
  chipLabels?: readonly string[];
  backoff?: BackoffOptions;
  killTimeoutMs?: number;
  /** Limit for the one-shot tools (`--version`, `gpiodetect`, `gpioget`). */
  toolTimeoutMs?: number;
  /** v1 only: the shortest blink half-period emulated by replacing `gpioset` (default 100 ms). */
  minSoftBlinkMs?: number;
}

/** One edge as `gpiomon` printed it. */
export interface GpioEdge {
  offset: number;
  rising: boolean;
  /** The kernel's timestamp (CLOCK_MONOTONIC by default in both generations), in ms. */
  kernelMs: number;
}

/** The major version in `gpiomon (libgpiod) v1.6.3` / `v2.1.3` (tools-common.c `print_version`). */
export function parseGpiodVersion(text: string): GpiodCli | undefined {
  const m = /\(libgpiod\) v(\d+)\./.exec(text);
  if (!m) return undefined;
  const major = Number(m[1]);
  return major === 1 ? 1 : major >= 2 ? 2 : undefined;
}

/** The chips of `gpiodetect`: `gpiochip0 [pinctrl-bcm2711] (58 lines)` per line, in both generations. */
export function parseGpiodetect(text: string): Array<{ name: string; label: string; lines: number }> {
  const chips: Array<{ name: string; label: string; lines: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) \[(.*)\] \((\d+) lines\)\s*$/.exec(line);
    if (m) chips.push({ name: m[1]!, label: m[2]!, lines: Number(m[3]) });
  }
  return chips;
}

/** One line of our `-F` format: v1 `%o %e %s %n`, v2 `%o %e %S`; undefined when malformed. */
export function parseEdgeLine(line: string, cli: GpiodCli): GpioEdge | undefined {
  if (cli === 1) {
    const m = /^(\d+) ([01]) (\d+) (\d+)$/.exec(line);
    if (!m) return undefined;
    return { offset: Number(m[1]), rising: m[2] === '1', kernelMs: Number(m[3]) * 1000 + Number(m[4]) / 1e6 };
  }
  const m = /^(\d+) ([12]) (\d+)\.(\d{9})$/.exec(line);
  if (!m) return undefined;
  return { offset: Number(m[1]), rising: m[2] === '1', kernelMs: Number(m[3]) * 1000 + Number(m[4]) / 1e6 };
}

/** `gpioget` output: v1 `0 1` in argument order; v2 `"17"=active "27"=inactive`. True = high. */
export function parseGpioget(text: string, cli: GpiodCli, offsets: readonly number[]): Map<number, boolean> | undefined {
  const values = new Map<number, boolean>();
  if (cli === 1) {
    const words = text.trim().split(/\s+/);
    if (words.length !== offsets.length || !words.every((w) => w === '0' || w === '1')) return undefined;
    offsets.forEach((o, i) => values.set(o, words[i] === '1'));
  } else {
    for (const m of text.matchAll(/"?(\d+)"?=(active|inactive)/g)) values.set(Number(m[1]), m[2] === 'active');
    if (!offsets.every((o) => values.has(o))) return undefined;
  }
  return values;
}

const BIAS: Record<GpiodCli, Record<Pull, string>> = {
  1: { up: 'pull-up', down: 'pull-down', off: 'disable' },
  2: { up: 'pull-up', down: 'pull-down', off: 'disabled' },
};
const CONSUMER = 'hookswitch';
/** setTimeout's limit: a monitor that prints nothing (no edges) must never count as stalled. */
const NEVER_STALLS_MS = 2 ** 31 - 1;

interface InputGroup {
  pull: Pull;
  debounceMs: number;
  lines: Array<{ role: InputRole; spec: GpioInput }>;
}

/** The libgpiod-tools {@link HardwareBackend}. */
export class GpiodBackend implements HardwareBackend {
  readonly name = 'gpiod';
  /** The detected CLI generation and chip, after `start`. */
  cli: GpiodCli | undefined;
  chip: string | undefined;
  /** Malformed `gpiomon` lines seen. */
  badLines = 0;
  private events: HardwareEvents | undefined;
  private readonly spawn: SpawnFunction;
  private readonly monitors: SupervisedChild[] = [];
  private readonly outputs = new Map<OutputRole, OutputLine>();
  private readonly byOffset = new Map<number, { role: InputRole; spec: GpioInput }>();
  private readonly level = new Map<InputRole, boolean>();
  private clockOffset = Infinity;
  private stopped = false;

  constructor(private readonly opts: GpiodOptions) {
    this.spawn = opts.spawn ?? defaultSpawn;
  }

  /**
   * Detects the CLI, finds the chip, reads the inputs' levels (reporting those already active,
   * e.g. a handset lying off-hook) and starts the monitors. Rejects with one line when the tools
   * are missing, no chip has a known label, or a line cannot be read (busy: held by an overlay).
   */
  async start(events: HardwareEvents): Promise<void> {
    const p = this.opts.profile;
    if (p.connection !== 'gpio') throw new Error(`gpiod: board ${p.name} is a serial board; it has no GPIO lines`);
    const version = await this.run('gpiomon', ['--version']);
    if (version.error !== undefined) throw new Error(`gpiod: cannot run gpiomon (${version.error}); install the libgpiod tools: sudo apt install gpiod`);
    const cli = parseGpiodVersion(version.stdout);
    if (!cli) throw new Error(`gpiod: cannot tell the libgpiod version from "gpiomon --version" (${JSON.stringify(firstLine(version.stdout + version.stderr))})`);
    this.cli = cli;
    const detect = await this.run('gpiodetect', []);
    const chips = parseGpiodetect(detect.stdout);
    const labels = this.opts.chipLabels ?? DEFAULT_CHIP_LABELS;
    const chip = labels.map((l) => chips.find((c) => c.label === l)).find((c) => c !== undefined);
    if (!chip) {
      const found = chips.map((c) => `${c.name} [${c.label}]`).join(', ') || firstLine(detect.error ?? detect.stderr) || 'none';
      throw new Error(`gpiod: no GPIO chip labelled ${labels.join(' or ')} (gpiodetect found: ${found})`);
    }
    this.chip = chip.name;
    this.events = events;
    this.opts.logger.info('libgpiod tools found', { cli, chip: chip.name, label: chip.label });

    const groups = this.inputGroups();
    for (const group of groups) await this.readInitial(group);
    for (const group of groups) this.monitor(group);
    for (const role of OUTPUT_ROLES) {
      const spec = p.outputs[role];
      if (spec) this.outputs.set(role, new OutputLine(role, spec, this));
    }
  }

  setOutput(role: OutputRole, state: OutputState): void {
    if (this.stopped) return;
    this.outputs.get(role)?.set(state);
  }

  pulse(role: OutputRole, ms: number): void {
    if (this.stopped) return;
    this.outputs.get(role)?.pulse(ms);
  }

  /** Stops the monitors, drives every output that is on back off, and releases all lines. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.monitors.map((m) => m.stop()), ...[...this.outputs.values()].map((o) => o.close())]);
  }

  /** @internal The argument vector of a `gpioset` holding `offset` at `high` (or toggling, v2). */
  gpiosetArgs(offset: number, high: boolean, toggle?: { firstMs: number; secondMs: number }, once = false): string[] {
    const lineValue = `${offset}=${high ? 1 : 0}`;
    if (this.cli === 1) return [once ? '--mode=exit' : '--mode=signal', this.chip!, lineValue];
    const args = ['-c', this.chip!, '-C', CONSUMER];
    if (toggle) args.push('-t', `${Math.round(toggle.firstMs)}ms,${Math.round(toggle.secondMs)}ms`);
    else if (once) args.push('-t', '0');
    args.push(lineValue);
    return args;
  }

  /** @internal A supervised `gpioset` child. */
  supervise(name: string, args: readonly string[]): SupervisedChild {
    return new SupervisedChild({ ...this.childOptions(), name, command: 'gpioset', args, stdout: false });
  }

  /** What every supervised libgpiod tool shares: environment, backoff, timing, logging. */
  private childOptions() {
    return {
      ...(this.opts.env ? { env: this.opts.env } : {}),
      stdin: false,
      stallMs: NEVER_STALLS_MS,
      backoff: this.opts.backoff ?? { initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 },
      killTimeoutMs: this.opts.killTimeoutMs ?? 2000,
      exitGraceMs: 1000,
      spawn: this.spawn,
      clock: this.opts.clock,
      logger: this.opts.logger,
    } as const;
  }

  /** @internal */
  get options(): GpiodOptions {
    return this.opts;
  }

  /** Inputs sharing a bias and debounce share one `gpiomon` (both apply to every line of a request). */
  private inputGroups(): InputGroup[] {
    const groups = new Map<string, InputGroup>();
    for (const role of INPUT_ROLES) {
      const spec = this.opts.profile.inputs[role];
      if (!spec) continue;
      const key = `${spec.pull}/${spec.debounceMs}`;
      const g = groups.get(key) ?? { pull: spec.pull, debounceMs: spec.debounceMs, lines: [] };
      g.lines.push({ role, spec });
      groups.set(key, g);
      this.byOffset.set(spec.gpio, { role, spec });
    }
    return [...groups.values()];
  }

  private async readInitial(group: InputGroup): Promise<void> {
    const cli = this.cli!;
    const offsets = group.lines.map((l) => l.spec.gpio);
    const bias = BIAS[cli][group.pull];
    const args = cli === 1 ? ['-B', bias, this.chip!, ...offsets.map(String)] : ['-c', this.chip!, '-C', CONSUMER, '-b', bias, ...offsets.map(String)];
    const r = await this.run('gpioget', args);
    const values = r.code === 0 ? parseGpioget(r.stdout, cli, offsets) : undefined;
    if (!values) {
      const what = group.lines.map((l) => `GPIO ${l.spec.gpio} (${l.role})`).join(', ');
      const why = firstLine(r.error ?? r.stderr) || `unexpected output ${JSON.stringify(firstLine(r.stdout))}`;
      throw new Error(`gpiod: cannot read ${what} on ${this.chip}: ${why}; a pin claimed by a dtoverlay line in config.txt is busy for libgpiod (remove the line, or use the kernel-gpio backend)`);
    }
    const now = this.opts.clock.now();
    for (const { role, spec } of group.lines) {
      const active = values.get(spec.gpio) !== spec.activeLow;
      this.level.set(role, active);
      if (active) this.events!.input(role, true, now);
    }
  }

  private monitor(group: InputGroup): void {
    const cli = this.cli!;
    const offsets = group.lines.map((l) => String(l.spec.gpio));
    const bias = BIAS[cli][group.pull];
    const args =
      cli === 1
        ? ['-b', '-B', bias, '-F', '%o %e %s %n', this.chip!, ...offsets]
        : ['-c', this.chip!, '-C', CONSUMER, '-e', 'both', '-b', bias, ...(group.debounceMs > 0 ? ['-p', `${group.debounceMs}ms`] : []), '-F', '%o %e %S', ...offsets];
    let partial = '';
    let ups = 0;
    const child = new SupervisedChild({
      ...this.childOptions(),
      name: 'gpiomon',
      command: 'gpiomon',
      args,
      stdout: true,
      onUp: () => {
        partial = '';
        if (ups++ > 0) this.events?.connection?.(true);
      },
      onDown: () => this.events?.connection?.(false, `gpiomon for GPIO ${offsets.join(', ')} exited`),
      onData: (chunk) => {
        const lines = (partial + chunk.toString('latin1')).split('\n');
        partial = (lines.pop() ?? '').slice(-200);
        this.onEdgeLines(lines);
      },
    });
    this.monitors.push(child);
    child.start();
  }

  private onEdgeLines(lines: readonly string[]): void {
    if (this.stopped) return;
    const edges: Array<{ edge: GpioEdge; role: InputRole; spec: GpioInput }> = [];
    for (const raw of lines) {
      const line = raw.trim();
      if (!line) continue;
      const edge = parseEdgeLine(line, this.cli!);
      const input = edge && this.byOffset.get(edge.offset);
      if (edge && input) edges.push({ edge, ...input });
      else {
        this.badLines++;
        this.opts.logger.warn('gpiomon printed a line that is not an edge of ours; ignored', { line: line.slice(0, 100), count: this.badLines });
      }
    }
    if (edges.length === 0) return;
    // Kernel timestamps keep pulse widths exact. They are mapped onto the injected clock by the
    // smallest arrival delay seen (an edge arrives after it happened), taken from the newest
    // edge of a chunk so a burst that queued up while the event loop was busy keeps its spacing.
    const newest = Math.max(...edges.map((e) => e.edge.kernelMs));
    this.clockOffset = Math.min(this.clockOffset, this.opts.clock.now() - newest);
    for (const { edge, role, spec } of edges) {
      const active = edge.rising !== spec.activeLow;
      if (this.level.get(role) === active) continue;
      this.level.set(role, active);
      this.events?.input(role, active, edge.kernelMs + this.clockOffset);
    }
  }

  /** @internal Runs a one-shot tool to completion (bounded by `toolTimeoutMs`). */
  run(command: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string; error?: string }> {
    return new Promise((resolve) => {
      let stdout = '';
      let stderr = '';
      let settled = false;
      const done = (code: number | null, error?: string): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve({ code, stdout, stderr, ...(error !== undefined ? { error } : {}) });
      };
      const timer: TimerHandle = this.opts.clock.setTimer(this.opts.toolTimeoutMs ?? 5000, () => {
        child.kill('SIGKILL');
        done(null, `${command} did not finish`);
      }, `gpiod.${command}`);
      const child = this.spawn(command, args, { ...(this.opts.env ? { env: this.opts.env } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
      // The exit status can come before the last output: wait for both pipes to end too.
      let exitCode: number | null | undefined;
      let open = (child.stdout ? 1 : 0) + (child.stderr ? 1 : 0);
      const maybeDone = (): void => {
        if (exitCode !== undefined && open === 0) done(exitCode);
      };
      child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('latin1')));
      for (const pipe of [child.stdout, child.stderr]) pipe?.on('close', () => (open--, maybeDone()));
      child.on('error', (err) => done(null, (err as NodeJS.ErrnoException).code ?? err.message));
      child.on('exit', (code) => {
        exitCode = code;
        maybeDone();
      });
    });
  }
}

/** One output line: the `gpioset` holding its level, replaced one at a time, latest state wins. */
class OutputLine {
  private desired: OutputState = { mode: 'off' };
  private target: { high: boolean; toggle?: { firstMs: number; secondMs: number } } | undefined;
  private appliedKey: string | undefined;
  private child: SupervisedChild | undefined;
  private pumping: Promise<void> | undefined;
  private timer: TimerHandle | undefined;
  private warnedBlink = false;
  private closed = false;

  constructor(
    private readonly role: OutputRole,
    private readonly spec: GpioOutput,
    private readonly backend: GpiodBackend,
  ) {}

  set(state: OutputState): void {
    this.timer?.cancel();
    this.desired = state;
    const on = !this.spec.activeLow;
    if (state.mode !== 'blink') {
      this.drive({ high: state.mode === 'on' ? on : !on });
    } else if (this.backend.cli === 2) {
      this.drive({ high: on, toggle: { firstMs: state.onMs, secondMs: state.offMs } });
    } else if (Math.min(state.onMs, state.offMs) >= (this.backend.options.minSoftBlinkMs ?? 100)) {
      this.softBlink(state.onMs, state.offMs, true);
    } else {
      if (!this.warnedBlink) {
        this.warnedBlink = true;
        const hz = Math.round(1000 / (state.onMs + state.offMs));
        this.backend.options.logger.warn(`libgpiod 1 cannot toggle GPIO ${this.spec.gpio} (${this.role}) at ${hz} Hz; it stays off (use the kernel-gpio backend or libgpiod 2)`, { role: this.role, gpio: this.spec.gpio });
      }
      this.drive({ high: !on });
    }
  }

  pulse(ms: number): void {
    this.set({ mode: 'on' });
    this.timer = this.backend.options.clock.setTimer(ms, () => this.set({ mode: 'off' }), `gpiod.pulse.${this.role}`);
  }

  /** Stops the holder; an output left on is driven off by a one-shot `gpioset` first. */
  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    await this.pumping;
    await this.child?.stop();
    this.child = undefined;
    if (this.appliedKey === undefined || this.desired.mode === 'off') return;
    const off = this.spec.activeLow;
    const r = await this.backend.run('gpioset', this.backend.gpiosetArgs(this.spec.gpio, off, undefined, true));
    if (r.code !== 0) this.backend.options.logger.warn('could not drive an output off at stop', { role: this.role, gpio: this.spec.gpio, error: r.error ?? firstLine(r.stderr) });
  }

  /** v1: blink by replacing the holder every half-period on the clock. */
  private softBlink(onMs: number, offMs: number, phaseOn: boolean): void {
    const on = !this.spec.activeLow;
    this.drive({ high: phaseOn ? on : !on });
    this.timer = this.backend.options.clock.setTimer(phaseOn ? onMs : offMs, () => this.softBlink(onMs, offMs, !phaseOn), `gpiod.blink.${this.role}`);
  }

  private drive(target: { high: boolean; toggle?: { firstMs: number; secondMs: number } }): void {
    this.target = target;
    if (!this.pumping) this.pumping = this.pump().finally(() => (this.pumping = undefined));
  }

  private async pump(): Promise<void> {
    for (;;) {
      const target = this.target;
      if (!target || this.closed) return;
      const key = JSON.stringify(target);
      if (key === this.appliedKey) return;
      // A line has one holder: the old gpioset must have exited before the next can request it.
      await this.child?.stop();
      this.child = undefined;
      if (this.closed) return;
      this.child = this.backend.supervise(`gpioset.${this.role}`, this.backend.gpiosetArgs(this.spec.gpio, target.high, target.toggle));
      this.child.start();
      this.appliedKey = key;
    }
  }
}

function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim()) ?? '').trim().slice(0, 200);
}
