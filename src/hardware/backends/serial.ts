/**
 * The serial hardware backend: a microcontroller on USB serial speaking docs/serial-protocol.md,
 * through `serialport` 13. An edge adapter: it opens the port, feeds bytes to the pure
 * {@link SerialSession} and writes the lines it produces, and reopens the port with backoff when
 * the device vanishes, the port closes or the session gives up on a silent device.
 *
 * `serialport` (a native addon) is imported only here and only inside `start`, so a gateway whose
 * board is not serial never loads the binding.
 */
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import { MAX_DURATION_MS, normalizeCadence } from '../serial/serial-protocol.ts';
import { SerialSession, type SerialSessionTiming } from '../serial/serial-session.ts';
import type { HardwareBackend, HardwareEvents, OutputRole, OutputState } from '../types.ts';

/** The part of a serialport `SerialPort` this backend uses (a fake in tests). */
export interface SerialPortLike {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'close', listener: (err?: Error | null) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  write(data: string): unknown;
  drain(callback: (err: Error | null) => void): void;
  close(callback?: (err: Error | null) => void): void;
}

/** Opens `path` at `baudRate`; rejects with the system's error (ENOENT, EACCES, EBUSY). */
export type SerialPortOpener = (path: string, baudRate: number) => Promise<SerialPortLike>;

/** Reopen pacing: `initialMs` doubling up to `maxMs` while the port stays away. */
export interface SerialBackoff {
  initialMs: number;
  maxMs: number;
}

/** How the board profile wires a serial microcontroller. */
export interface SerialBackendOptions {
  /** The port, preferably `/dev/serial/by-id/usb-...` (stable across re-enumeration as ttyACM0/1). */
  path: string;
  /** docs/serial-protocol.md §1: 115200 unless the firmware says otherwise. */
  baudRate?: number;
  /** Output roles driven as `LED n` (default ledGreen → 1, ledRed → 2). */
  leds?: Partial<Record<OutputRole, number>>;
  /** Output roles driven as `RELAY n` (default relay → 1). */
  relays?: Partial<Record<OutputRole, number>>;
  clock: Clock;
  logger: Logger;
  /** Default 250 ms doubling to 2 s, so a device that comes back is found within ~2 s. */
  backoff?: SerialBackoff;
  timing?: Partial<SerialSessionTiming>;
  /** Sent in the host HELLO. */
  agent?: string;
  /** Default: `serialport`'s SerialPort, imported on first use. */
  openPort?: SerialPortOpener;
}

/** `code` of the opener's error when `serialport` or its native addon cannot load. */
export const BINDING_ERROR = 'HOOKSWITCH_SERIAL_BINDING';
const DEFAULT_BACKOFF: SerialBackoff = { initialMs: 250, maxMs: 2000 };
/** How long `stop` waits for `RING OFF` to drain before closing anyway. */
const STOP_DRAIN_MS = 500;

/** Opens ports with `serialport` 13, loaded lazily (its native binding loads with it). */
export const serialportOpener: SerialPortOpener = async (path, baudRate) => {
  let SerialPort: typeof import('serialport').SerialPort;
  try {
    // bindings-cpp loads its native addon (node-gyp-build) when the module is evaluated.
    ({ SerialPort } = await import('serialport'));
  } catch (err) {
    throw Object.assign(new Error(`the serialport native binding did not load: ${errorText(err).split('\n')[0]}`), { code: BINDING_ERROR });
  }
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate, autoOpen: false });
    port.open((err) => (err ? reject(err) : resolve(port)));
  });
};

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A {@link HardwareBackend} over a serial microcontroller. `start` opens the port (rejecting
 * with one line naming the path and the fix when it cannot) and resolves before the handshake;
 * `events.connection` reports the device coming and going. The device rings by itself, so
 * {@link ring} returns true; the ringer roles (`bell`, `ringMode`, `forwardReverse`) are ignored.
 */
export class SerialBackend implements HardwareBackend {
  readonly name = 'serial';
  private session: SerialSession | undefined;
  private port: SerialPortLike | undefined;
  private reopenTimer: TimerHandle | undefined;
  private attempts = 0;
  private stopped = false;
  private readonly leds: Partial<Record<OutputRole, number>>;
  private readonly relays: Partial<Record<OutputRole, number>>;
  private readonly open: SerialPortOpener;
  private readonly log: Logger;

  constructor(private readonly opts: SerialBackendOptions) {
    this.leds = opts.leds ?? { ledGreen: 1, ledRed: 2 };
    this.relays = opts.relays ?? { relay: 1 };
    this.open = opts.openPort ?? serialportOpener;
    this.log = opts.logger;
  }

  async start(events: HardwareEvents): Promise<void> {
    if (this.session) throw new Error('serial backend already started');
    this.session = new SerialSession({
      clock: this.opts.clock,
      logger: this.log,
      events,
      write: (line) => this.port?.write(`${line}\n`),
      reconnect: (reason) => this.dropPort(reason),
      ...(this.opts.agent ? { agent: this.opts.agent } : {}),
      ...(this.opts.timing ? { timing: this.opts.timing } : {}),
    });
    let port: SerialPortLike;
    try {
      port = await this.open(this.opts.path, this.baudRate);
    } catch (err) {
      this.session = undefined;
      if ((err as { code?: unknown }).code === BINDING_ERROR) {
        throw new Error(`serial board: ${errorText(err)} (ship the prebuilds/ folder of @serialport/bindings-cpp in the folder above the bundle, or run from a checkout)`);
      }
      throw new Error(
        `serial board: cannot open ${this.opts.path}: ${errorText(err)} ` +
          '(plug in the microcontroller, pick its name from `ls /dev/serial/by-id/`, and add the user to the dialout group)',
      );
    }
    this.log.info('serial port open', { path: this.opts.path, baudRate: this.baudRate });
    this.attach(port);
  }

  setOutput(role: OutputRole, state: OutputState): void {
    const led = this.leds[role];
    const relay = this.relays[role];
    if (led !== undefined) {
      this.session?.led(led, state.mode === 'blink' ? { kind: 'blink', onMs: ms(state.onMs), offMs: ms(state.offMs) } : { kind: state.mode });
    } else if (relay !== undefined) {
      if (state.mode === 'blink') this.log.warn('a relay cannot blink; ignored', { role });
      else this.session?.relay(relay, { kind: state.mode });
    }
  }

  pulse(role: OutputRole, durationMs: number): void {
    const relay = this.relays[role];
    const led = this.leds[role];
    if (relay !== undefined) this.session?.relay(relay, { kind: 'pulse', ms: ms(durationMs) });
    else if (led !== undefined) this.log.warn('pulse on an LED is not supported by the serial protocol; ignored', { role });
  }

  ring(cadence: readonly number[] | undefined): boolean {
    if (!this.session) return false;
    if (cadence === undefined) {
      this.session.ring(undefined);
      return true;
    }
    const normalized = normalizeCadence(cadence);
    if (typeof normalized === 'string') {
      this.log.warn('ring cadence not representable; not ringing', { reason: normalized });
      return false;
    }
    this.session.ring(normalized);
    return true;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.reopenTimer?.cancel();
    const session = this.session;
    if (session?.state === 'ready') session.ring(undefined);
    const port = this.port;
    this.port = undefined;
    session?.stop();
    if (!port) return;
    await new Promise<void>((resolve) => {
      const timer = this.opts.clock.setTimer(STOP_DRAIN_MS, () => resolve(), 'serial.stop-drain');
      port.drain(() => {
        timer.cancel();
        resolve();
      });
    });
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private get baudRate(): number {
    return this.opts.baudRate ?? 115_200;
  }

  private attach(port: SerialPortLike): void {
    this.port = port;
    port.on('data', (chunk: Buffer) => {
      if (port === this.port) this.session?.receive(chunk);
    });
    port.on('error', (err: Error) => {
      if (port === this.port) this.log.debug('serial port error', { path: this.opts.path, error: err.message });
    });
    port.on('close', (err?: Error | null) => {
      if (port !== this.port || this.stopped) return;
      const reason = err ? err.message : 'closed';
      this.port = undefined;
      this.log.warn('serial port closed; reopening', { path: this.opts.path, reason, retryMs: this.delay() });
      this.session?.closed(reason);
      this.scheduleReopen();
    });
    this.session?.opened();
  }

  /** The session gave up on a silent device (and logged it): close quietly and reopen. */
  private dropPort(reason: string): void {
    const port = this.port;
    this.port = undefined;
    port?.close();
    this.session?.closed(reason);
    if (!this.stopped) this.scheduleReopen();
  }

  private delay(): number {
    const b = this.opts.backoff ?? DEFAULT_BACKOFF;
    return Math.min(b.maxMs, b.initialMs * 2 ** Math.min(this.attempts, 20));
  }

  private scheduleReopen(): void {
    this.reopenTimer?.cancel();
    this.reopenTimer = this.opts.clock.setTimer(this.delay(), () => void this.reopen(), 'serial.reopen');
    this.attempts++;
  }

  private async reopen(): Promise<void> {
    this.reopenTimer = undefined;
    if (this.stopped) return;
    let port: SerialPortLike;
    try {
      port = await this.open(this.opts.path, this.baudRate);
    } catch (err) {
      if (this.stopped) return;
      this.log.debug('serial port still unavailable', { path: this.opts.path, error: errorText(err), attempt: this.attempts });
      this.scheduleReopen();
      return;
    }
    if (this.stopped) {
      port.close();
      return;
    }
    this.log.info('serial port reopened', { path: this.opts.path, attempts: this.attempts });
    this.attempts = 0;
    this.attach(port);
  }
}

/** A duration the protocol can carry (§5: 1..60000 ms). */
function ms(value: number): number {
  return Math.min(MAX_DURATION_MS, Math.max(1, Math.round(value)));
}
