/**
 * One serial link to a hookswitch microcontroller, as a pure state machine (docs/serial-protocol.md
 * §4, §7): the HELLO handshake with version check, PING/PONG heartbeats, the desired output state
 * replayed after every handshake, replies matched to commands for the log, and device events
 * turned into {@link HardwareEvents}. The port adapter feeds it bytes and open/close; it asks the
 * adapter to reconnect when the device stops answering. Time comes from the injected clock.
 */
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { HardwareEvents } from '../types.ts';
import {
  LineFramer,
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
  formatHostCommand,
  parseDeviceLine,
  type DeviceMessage,
  type HostCommand,
  type LedMode,
  type RelayAction,
} from './serial-protocol.ts';

/** Where the link is: port closed, waiting for the device's HELLO, talking, or refused (version). */
export type SerialSessionState = 'closed' | 'handshake' | 'ready' | 'incompatible';

/** Handshake and heartbeat timing (docs/serial-protocol.md §4, §7). */
export interface SerialSessionTiming {
  /** HELLO is repeated this often until the device answers (an Arduino boots ~1.5 s after the port opens). */
  helloRetryMs: number;
  /** No HELLO from the device this long after the port opened: reconnect. */
  helloTimeoutMs: number;
  /** PING period while ready. */
  pingIntervalMs: number;
  /** Nothing at all from the device this long while ready: reconnect. */
  silenceTimeoutMs: number;
}

/** The values docs/serial-protocol.md §7 names. */
export const DEFAULT_SERIAL_TIMING: SerialSessionTiming = {
  helloRetryMs: 1000,
  helloTimeoutMs: 10_000,
  pingIntervalMs: 2000,
  silenceTimeoutMs: 6000,
};

/** What a {@link SerialSession} needs. */
export interface SerialSessionOptions {
  clock: Clock;
  logger: Logger;
  events: HardwareEvents;
  /** Writes one line to the port; the session passes it without terminator. */
  write(line: string): void;
  /** The device stopped answering (already logged): close the port and open it again. */
  reconnect(reason: string): void;
  /** Sent in the host HELLO (`hookswitch/0.1.0`). */
  agent?: string;
  timing?: Partial<SerialSessionTiming>;
}

/** Per-link counts, for status and tests. */
export interface SerialSessionCounters {
  invalid: number;
  overlong: number;
  unknown: number;
  errors: number;
  handshakes: number;
}

/** Protocol warnings logged per handshake before the rest are only counted. */
const WARNINGS_PER_LINK = 20;
/** Commands remembered for matching OK/ERR replies; older ones are forgotten. */
const MAX_PENDING = 32;

/**
 * The host side of one serial link. Call {@link opened} when the port opened, {@link receive}
 * with every chunk read, {@link closed} when it closed; drive outputs with {@link ring},
 * {@link led} and {@link relay} at any time (state is kept and replayed after each handshake).
 * Bad lines from the device are logged and counted, never thrown.
 */
export class SerialSession {
  readonly counters: SerialSessionCounters = { invalid: 0, overlong: 0, unknown: 0, errors: 0, handshakes: 0 };
  private current: SerialSessionState = 'closed';
  private readonly timing: SerialSessionTiming;
  private readonly framer = new LineFramer();
  private timer: TimerHandle | undefined;
  private deadline = 0;
  private lastRx = 0;
  private pingSeq = 0;
  private warnings = 0;
  private pending: string[] = [];
  private device: { version: number; firmware: string } | undefined;
  private hook: boolean | undefined;
  private readonly buttons = new Map<number, boolean>();
  private ringing: readonly number[] | undefined;
  private readonly leds = new Map<number, LedMode>();
  private readonly relays = new Map<number, RelayAction>();

  constructor(private readonly opts: SerialSessionOptions) {
    this.timing = { ...DEFAULT_SERIAL_TIMING, ...opts.timing };
  }

  get state(): SerialSessionState {
    return this.current;
  }

  /** The device's HELLO (version and firmware) once a handshake succeeded. */
  get peer(): { version: number; firmware: string } | undefined {
    return this.device;
  }

  /** The port opened: start the handshake (§4: the host sends HELLO and repeats it until answered). */
  opened(): void {
    this.cancelTimer();
    this.framer.reset();
    this.pending = [];
    this.current = 'handshake';
    this.warnings = 0;
    this.lastRx = this.opts.clock.now();
    this.deadline = this.lastRx + this.timing.helloTimeoutMs;
    this.sendHello();
  }

  /** The port closed (the adapter has logged why). Idempotent. */
  closed(reason: string): void {
    this.cancelTimer();
    const wasReady = this.current === 'ready';
    this.current = 'closed';
    this.pending = [];
    if (wasReady) this.opts.events.connection?.(false, reason);
  }

  /** Bytes read from the port, split anywhere. */
  receive(chunk: Uint8Array): void {
    if (this.current === 'closed') return;
    for (const frame of this.framer.push(chunk)) {
      this.lastRx = this.opts.clock.now();
      if (frame.kind === 'overlong') {
        this.counters.overlong++;
        this.warn('line too long from the device, dropped', { bytes: frame.length });
        continue;
      }
      const msg = parseDeviceLine(frame.bytes);
      if (msg.type === 'invalid') {
        this.counters.invalid++;
        this.warn('malformed line from the device, ignored', { reason: msg.reason });
        continue;
      }
      this.handle(msg);
    }
  }

  /** Rings with a cadence already normalised for the protocol, or stops (`undefined`). */
  ring(cadence: readonly number[] | undefined): void {
    this.ringing = cadence;
    this.send(cadence ? { type: 'ring', cadence } : { type: 'ringOff' });
  }

  /** Sets LED `index` (kept and replayed after a reconnect). */
  led(index: number, mode: LedMode): void {
    this.leds.set(index, mode);
    this.send({ type: 'led', index, mode });
  }

  /**
   * Drives relay `index`. ON/OFF are kept and replayed; a pulse is sent only while ready, never
   * later (a door must not open minutes after it was asked to): false when it was dropped.
   */
  relay(index: number, action: RelayAction): boolean {
    if (action.kind === 'pulse') {
      if (this.current !== 'ready') {
        this.opts.logger.warn('relay pulse dropped: device not connected', { relay: index, state: this.current });
        return false;
      }
      this.relays.set(index, { kind: 'off' });
    } else {
      this.relays.set(index, action);
    }
    this.send({ type: 'relay', index, action });
    return true;
  }

  /** Stops the timers; the adapter closes the port. */
  stop(): void {
    this.closed('stopped');
  }

  private handle(msg: DeviceMessage): void {
    const now = this.opts.clock.now();
    if (msg.type === 'hello') return this.onHello(msg.version, msg.firmware);
    if (msg.type === 'log') return this.opts.logger.info('device log', { text: msg.text });
    if (msg.type === 'unknown') {
      // §3: a receiver ignores messages it does not know; newer firmware of the same version may send them.
      this.counters.unknown++;
      return this.opts.logger.debug('unknown message from the device ignored', { keyword: msg.keyword });
    }
    if (msg.type === 'err' && this.current === 'handshake' && msg.code === 'BADVER') {
      return this.refuse(`device refuses protocol version ${PROTOCOL_VERSION}: ${msg.text}`);
    }
    if (this.current !== 'ready') {
      // §4: events before the handshake are stale; the device reports its inputs after HELLO.
      return this.opts.logger.debug('message before the handshake ignored', { type: msg.type, state: this.current });
    }
    switch (msg.type) {
      case 'hook':
        if (this.hook !== msg.offHook) {
          this.hook = msg.offHook;
          this.opts.events.input('hook', msg.offHook, now);
        }
        return;
      case 'button':
        if (this.buttons.get(msg.index) !== msg.down) {
          this.buttons.set(msg.index, msg.down);
          this.opts.events.input('button', msg.down, now);
        }
        return;
      case 'digit':
        return this.opts.events.key(msg.digit, now);
      case 'key':
        return this.opts.events.key(msg.key, now);
      case 'pong':
      case 'ok':
        this.pending.shift();
        return;
      case 'err': {
        this.counters.errors++;
        const command = this.pending.shift();
        this.warn('device error reply', { code: msg.code, text: msg.text || undefined, command });
        return;
      }
    }
  }

  private onHello(version: number, firmware: string): void {
    // §4: the host accepts a device HELLO whose version it speaks; any other is refused.
    if (!SUPPORTED_VERSIONS.includes(version)) {
      return this.refuse(`device speaks protocol version ${version}, hookswitch speaks ${SUPPORTED_VERSIONS.join(', ')}`, firmware);
    }
    const restarted = this.current === 'ready';
    this.cancelTimer();
    this.device = { version, firmware };
    this.current = 'ready';
    this.pending = [];
    this.warnings = 0;
    this.counters.handshakes++;
    if (restarted) this.opts.logger.info('device restarted', { firmware, version });
    else this.opts.logger.info('device ready', { firmware, version });
    this.replay();
    this.schedulePing();
    if (!restarted) this.opts.events.connection?.(true);
  }

  private refuse(reason: string, firmware?: string): void {
    if (this.current === 'incompatible') return;
    const wasReady = this.current === 'ready';
    this.cancelTimer();
    this.current = 'incompatible';
    this.opts.logger.error('serial device is incompatible; update the firmware or hookswitch', { reason, firmware });
    if (wasReady) this.opts.events.connection?.(false, reason);
  }

  /** §4: after a handshake the host sends its whole output state, since the device may have reset. */
  private replay(): void {
    this.send(this.ringing ? { type: 'ring', cadence: this.ringing } : { type: 'ringOff' });
    for (const [index, mode] of this.leds) this.send({ type: 'led', index, mode });
    for (const [index, action] of this.relays) this.send({ type: 'relay', index, action });
  }

  private sendHello(): void {
    this.opts.write(formatHostCommand({ type: 'hello', version: PROTOCOL_VERSION, agent: this.opts.agent ?? 'hookswitch' }));
    this.timer = this.opts.clock.setTimer(
      this.timing.helloRetryMs,
      () => {
        this.timer = undefined;
        if (this.current !== 'handshake') return;
        if (this.opts.clock.now() >= this.deadline) return this.fail(`no HELLO from the device within ${this.timing.helloTimeoutMs} ms`);
        this.sendHello();
      },
      'serial.hello',
    );
  }

  private schedulePing(): void {
    this.timer = this.opts.clock.setTimer(
      this.timing.pingIntervalMs,
      () => {
        this.timer = undefined;
        if (this.current !== 'ready') return;
        const silent = this.opts.clock.now() - this.lastRx;
        // §7: a device that sends nothing (not even PONG) for the silence timeout is gone.
        if (silent >= this.timing.silenceTimeoutMs) return this.fail(`device silent for ${Math.round(silent)} ms`);
        this.pingSeq = (this.pingSeq + 1) % 1_000_000;
        this.send({ type: 'ping', token: String(this.pingSeq) });
        this.schedulePing();
      },
      'serial.ping',
    );
  }

  private fail(reason: string): void {
    const wasReady = this.current === 'ready';
    this.cancelTimer();
    this.current = 'closed';
    this.pending = [];
    this.opts.logger.warn('serial device not answering; reconnecting', { reason });
    if (wasReady) this.opts.events.connection?.(false, reason);
    this.opts.reconnect(reason);
  }

  private send(cmd: HostCommand): void {
    if (this.current !== 'ready') return;
    const line = formatHostCommand(cmd);
    this.pending.push(line);
    if (this.pending.length > MAX_PENDING) this.pending.shift();
    this.opts.write(line);
  }

  private warn(msg: string, fields: Record<string, string | number | undefined>): void {
    this.warnings++;
    if (this.warnings <= WARNINGS_PER_LINK) this.opts.logger.warn(msg, fields);
    if (this.warnings === WARNINGS_PER_LINK) this.opts.logger.warn('further protocol errors from the device are only counted');
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
