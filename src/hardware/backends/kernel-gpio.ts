import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { HardwareBackend, HardwareEvents, InputRole, OutputRole, OutputState } from '../types.ts';
import {
  EV_KEY,
  EV_SYN,
  EvdevReader,
  KEY_PRESS,
  KEY_RELEASE,
  SYN_DROPPED,
  type EvdevFs,
  type InputEventSize,
  type ReopenBackoff,
  type TimedInputEvent,
} from './evdev-reader.ts';
import { DEFAULT_LEDS_DIR, LedClassDevice, type LedFs } from './led-class.ts';

/** One input role: a key of a `gpio-keys` input device. */
export interface KernelGpioInput {
  /** The evdev device, preferably `/dev/input/by-path/platform-...-event` (stable across boots). */
  path: string;
  /** The key code (`linux,code`, the overlay's `keycode`). */
  code: number;
  /**
   * When true the role is active while the key is *released*. gpio-keys already applies the
   * overlay's `active_low`, so this only covers wiring whose "pressed" level means inactive.
   */
  invert?: boolean;
  /** BCM GPIO number, for the setup hint only. */
  gpio?: number;
  /** The exact `config.txt` line to suggest when the device is missing (default: built from the fields). */
  overlay?: string;
}

/** One output role: an LED class device. */
export interface KernelGpioOutput {
  /** Directory name under the leds dir: the gpio-led overlay's `label`. */
  led: string;
  /** BCM GPIO number, for the setup hint only. */
  gpio?: number;
  /** The exact `config.txt` line to suggest when the LED is missing (default: built from the fields). */
  overlay?: string;
}

/** How a {@link KernelGpioBackend} finds its devices. */
export interface KernelGpioOptions {
  inputs?: Partial<Record<InputRole, KernelGpioInput>>;
  outputs?: Partial<Record<OutputRole, KernelGpioOutput>>;
  /** Default `/sys/class/leds`. */
  ledsDir?: string;
  /** `struct input_event` size; default from `process.arch` (see evdev-reader.ts). */
  recordSize?: InputEventSize;
  littleEndian?: boolean;
  /** Input poll period, ms (default 10). */
  pollMs?: number;
  /** Reopen pacing for a vanished input device (default 200 ms doubling to 5 s). */
  reopenBackoff?: ReopenBackoff;
  /** Largest believable delay between a kernel timestamp and its arrival, ms (default 5000). */
  maxLagMs?: number;
  clock: Clock;
  logger: Logger;
  /** File access for tests; default `node:fs`. */
  evdevFs?: EvdevFs;
  ledFs?: LedFs;
}

/** Stable codes of {@link KernelGpioError}. */
export type KernelGpioErrorCode = 'HW_ERR_INPUT_MISSING' | 'HW_ERR_INPUT_ACCESS' | 'HW_ERR_OUTPUT_MISSING' | 'HW_ERR_OUTPUT_ACCESS';

/** A device the board profile names is missing or not accessible; the message is one line with the fix. */
export class KernelGpioError extends Error {
  constructor(
    readonly code: KernelGpioErrorCode,
    readonly role: InputRole | OutputRole,
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'KernelGpioError';
  }
}

interface Binding {
  role: InputRole;
  code: number;
  invert: boolean;
}

/**
 * The primary Raspberry Pi backend: inputs are `gpio-keys` evdev devices (the kernel debounces
 * and timestamps edges), outputs are `gpio-led` LED class devices (the kernel's `timer` trigger
 * makes ring-frequency waveforms). Board-independent across Pi 3/4/5/Zero 2 W because both are
 * addressed by overlay label, not by GPIO chip numbering.
 *
 * `start` opens every configured device or rejects with one line naming the role, the path and
 * the `config.txt` line to add, then drives every output off. Input events: EV_KEY press (1) and
 * release (0) of a configured code become `events.input(role, active, atMs)` with `atMs` from the
 * kernel timestamp; autorepeat (2), EV_SYN and other codes are ignored (SYN_DROPPED is logged). A
 * vanished input device is reopened with backoff and reported through `events.connection`.
 * Not known: the state of an input at start (evdev reports changes; reading it needs the
 * EVIOCGKEY ioctl), so the phone logic should assume rest (on-hook) until the first event. `stop` turns every output off
 * (kernel-driven blinking would otherwise outlive the process) and closes everything.
 */
export class KernelGpioBackend implements HardwareBackend {
  readonly name = 'kernel-gpio';
  private readonly readers: EvdevReader[] = [];
  private readonly leds = new Map<OutputRole, LedClassDevice>();
  private readonly pulses = new Map<OutputRole, TimerHandle>();
  private events: HardwareEvents | undefined;
  private started = false;

  constructor(private readonly opts: KernelGpioOptions) {}

  async start(events: HardwareEvents): Promise<void> {
    if (this.started) throw new Error('kernel-gpio backend already started');
    this.started = true;
    this.events = events;
    const log = this.opts.logger;
    const outputs = Object.entries(this.opts.outputs ?? {}) as [OutputRole, KernelGpioOutput][];
    for (const [role, out] of outputs) {
      const led = new LedClassDevice(out.led, log, this.opts.ledsDir ?? DEFAULT_LEDS_DIR, this.opts.ledFs);
      const problem = led.check();
      if (problem) {
        this.closeAll();
        throw problem.kind === 'missing'
          ? new KernelGpioError('HW_ERR_OUTPUT_MISSING', role, problem.path, `output '${role}': LED ${problem.path} not found; add "${ledOverlay(out)}" to config.txt and reboot`)
          : new KernelGpioError('HW_ERR_OUTPUT_ACCESS', role, problem.path, `output '${role}': cannot write ${problem.path} (${problem.error}); run as root or add a udev rule granting write access to /sys/class/leds/${out.led}`);
      }
      this.leds.set(role, led);
    }
    for (const [path, bindings] of this.groupInputs()) {
      const reader = new EvdevReader({
        path,
        recordSize: this.opts.recordSize,
        littleEndian: this.opts.littleEndian,
        pollMs: this.opts.pollMs,
        backoff: this.opts.reopenBackoff,
        maxLagMs: this.opts.maxLagMs,
        clock: this.opts.clock,
        logger: log,
        fs: this.opts.evdevFs,
        onEvent: (ev) => this.onEvent(path, bindings, ev),
        onConnection: (up, reason) => this.events?.connection?.(up, reason === undefined ? undefined : `${path}: ${reason}`),
      });
      try {
        reader.open();
      } catch (err) {
        this.closeAll();
        throw inputError(bindings, path, this.opts.inputs ?? {}, err);
      }
      this.readers.push(reader);
    }
    for (const led of this.leds.values()) led.set({ mode: 'off' });
    log.info('kernel GPIO backend started', { inputs: this.readers.length, outputs: this.leds.size });
  }

  setOutput(role: OutputRole, state: OutputState): void {
    this.pulses.get(role)?.cancel();
    this.pulses.delete(role);
    this.leds.get(role)?.set(state);
  }

  pulse(role: OutputRole, ms: number): void {
    const led = this.leds.get(role);
    if (!led) return;
    this.pulses.get(role)?.cancel();
    led.set({ mode: 'on' });
    this.pulses.set(
      role,
      this.opts.clock.setTimer(
        ms,
        () => {
          this.pulses.delete(role);
          led.set({ mode: 'off' });
        },
        `hardware.pulse.${role}`,
      ),
    );
  }

  async stop(): Promise<void> {
    for (const led of this.leds.values()) led.set({ mode: 'off' });
    this.closeAll();
  }

  private closeAll(): void {
    for (const timer of this.pulses.values()) timer.cancel();
    this.pulses.clear();
    for (const reader of this.readers) reader.close();
    this.readers.length = 0;
    this.leds.clear();
    this.events = undefined;
  }

  private groupInputs(): Map<string, Binding[]> {
    const byPath = new Map<string, Binding[]>();
    for (const [role, input] of Object.entries(this.opts.inputs ?? {}) as [InputRole, KernelGpioInput][]) {
      const list = byPath.get(input.path) ?? [];
      list.push({ role, code: input.code, invert: input.invert ?? false });
      byPath.set(input.path, list);
    }
    return byPath;
  }

  private onEvent(path: string, bindings: readonly Binding[], ev: TimedInputEvent): void {
    if (ev.type === EV_SYN && ev.code === SYN_DROPPED) {
      this.opts.logger.warn('kernel dropped input events (reader too slow); input state may be stale until the next change', { path });
      return;
    }
    if (ev.type !== EV_KEY || (ev.value !== KEY_PRESS && ev.value !== KEY_RELEASE)) return;
    for (const b of bindings) {
      if (b.code === ev.code) this.events?.input(b.role, (ev.value === KEY_PRESS) !== b.invert, ev.atMs);
    }
  }
}

/**
 * The overlay lines, with the parameters of raspberrypi/linux arch/arm/boot/dts/overlays:
 * gpio-key takes gpio, keycode, label, active_low (default 1) and gpio_pull (0 none, 1 down,
 * 2 up; default 2); gpio-led takes gpio, label, active_low (default 0) and trigger (default none).
 */
function keyOverlay(role: InputRole, input: KernelGpioInput): string {
  return input.overlay ?? `dtoverlay=gpio-key,gpio=${input.gpio ?? '<pin>'},keycode=${input.code},label=${role}`;
}

function ledOverlay(out: KernelGpioOutput): string {
  return out.overlay ?? `dtoverlay=gpio-led,gpio=${out.gpio ?? '<pin>'},label=${out.led}`;
}

function inputError(bindings: readonly Binding[], path: string, inputs: Partial<Record<InputRole, KernelGpioInput>>, err: unknown): KernelGpioError {
  const first = bindings[0] as Binding;
  const roles = bindings.map((b) => b.role).join(', ');
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODEV' || code === 'ENXIO') {
    const lines = bindings.map((b) => `"${keyOverlay(b.role, inputs[b.role] as KernelGpioInput)}"`).join(' and ');
    return new KernelGpioError('HW_ERR_INPUT_MISSING', first.role, path, `input '${roles}': ${path} not found; add ${lines} to config.txt, reboot, and check ls /dev/input/by-path/`);
  }
  const reason = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
  return new KernelGpioError('HW_ERR_INPUT_ACCESS', first.role, path, `input '${roles}': cannot open ${path} (${reason}); add the service user to the 'input' group`);
}
