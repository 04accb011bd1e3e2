import * as nodeFs from 'node:fs';
import { endianness } from 'node:os';
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';

/**
 * Reading Linux input devices (`/dev/input/event*`, e.g. the `gpio-keys` devices that
 * `dtoverlay=gpio-key` creates) without a native addon.
 *
 * Record layout, from include/uapi/linux/input.h:
 * `struct input_event { struct timeval time; __u16 type; __u16 code; __s32 value; }`.
 * The kernel writes the layout of the *reading process's* ABI (drivers/input/input-compat.h,
 * `input_event_size()`): two `long`s of time, so 24 bytes for a 64-bit process and 16 bytes
 * for a 32-bit one (native, or compat on an arm64 kernel). A 32-bit userland built with 64-bit
 * `time_t` (Debian trixie armhf) does not change this: the uapi header switches to
 * `__kernel_ulong_t __sec, __usec` in that case precisely to keep the 16-byte record, so the
 * Node binary's word size (`process.arch`) decides, not the distribution's `time_t`.
 */

/** Event types, include/uapi/linux/input-event-codes.h. */
export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
/** EV_SYN code: the client's buffer overflowed and the kernel discarded events (event-codes.rst). */
export const SYN_DROPPED = 3;

/** EV_KEY values, Documentation/input/event-codes.rst: 0 release, 1 press, 2 autorepeat. */
export const KEY_RELEASE = 0;
export const KEY_PRESS = 1;
export const KEY_AUTOREPEAT = 2;

/** Bytes per `struct input_event` as the reading process sees it. */
export type InputEventSize = 16 | 24;

/** One decoded `struct input_event`; `sec`/`usec` are the kernel's timestamp. */
export interface InputEvent {
  sec: number;
  usec: number;
  type: number;
  code: number;
  value: number;
}

/** An input event with its time on the injected Clock's monotonic scale. */
export interface TimedInputEvent extends InputEvent {
  atMs: number;
}

/** Node's 32-bit architectures (`process.arch`); everything else Node runs on is 64-bit. */
const ARCH_32 = new Set(['arm', 'ia32', 'mips', 'mipsel', 'ppc', 's390']);

/** The record size a Node process of `arch` reads: 16 on 32-bit builds, 24 on 64-bit ones. */
export function defaultInputEventSize(arch: string = process.arch): InputEventSize {
  return ARCH_32.has(arch) ? 16 : 24;
}

/** Writes one record at `offset` of `target` (a new buffer when omitted). For tests and tools. */
export function encodeInputEvent(ev: InputEvent, size: InputEventSize, littleEndian = true, target?: Buffer, offset = 0): Buffer {
  const buf = target ?? Buffer.alloc(size);
  if (offset < 0 || offset + size > buf.length) throw new RangeError(`input_event: ${size} bytes do not fit at offset ${offset} of ${buf.length}`);
  if (size === 24) {
    if (littleEndian) {
      buf.writeBigInt64LE(BigInt(ev.sec), offset);
      buf.writeBigInt64LE(BigInt(ev.usec), offset + 8);
    } else {
      buf.writeBigInt64BE(BigInt(ev.sec), offset);
      buf.writeBigInt64BE(BigInt(ev.usec), offset + 8);
    }
  } else if (littleEndian) {
    buf.writeUInt32LE(ev.sec >>> 0, offset);
    buf.writeUInt32LE(ev.usec >>> 0, offset + 4);
  } else {
    buf.writeUInt32BE(ev.sec >>> 0, offset);
    buf.writeUInt32BE(ev.usec >>> 0, offset + 4);
  }
  const tail = offset + size - 8;
  if (littleEndian) {
    buf.writeUInt16LE(ev.type, tail);
    buf.writeUInt16LE(ev.code, tail + 2);
    buf.writeInt32LE(ev.value, tail + 4);
  } else {
    buf.writeUInt16BE(ev.type, tail);
    buf.writeUInt16BE(ev.code, tail + 2);
    buf.writeInt32BE(ev.value, tail + 4);
  }
  return buf;
}

/**
 * Reads one record at `offset`. Seconds and microseconds are unsigned 32-bit in the 16-byte
 * layout (`__kernel_ulong_t`/`compat_ulong_t`, good until 2106) and signed 64-bit in the
 * 24-byte one. Throws a RangeError when the record does not fit in `buf`.
 */
export function decodeInputEvent(buf: Uint8Array, offset: number, size: InputEventSize, littleEndian = true): InputEvent {
  if (offset < 0 || offset + size > buf.length) throw new RangeError(`input_event: need ${size} bytes at offset ${offset}, have ${buf.length - offset}`);
  const view = new DataView(buf.buffer, buf.byteOffset + offset, size);
  const le = littleEndian;
  const sec = size === 24 ? Number(view.getBigInt64(0, le)) : view.getUint32(0, le);
  const usec = size === 24 ? Number(view.getBigInt64(8, le)) : view.getUint32(4, le);
  return { sec, usec, type: view.getUint16(size - 8, le), code: view.getUint16(size - 6, le), value: view.getInt32(size - 4, le) };
}

/**
 * Cuts a byte stream into whole records, whatever the chunking (a FIFO or pipe may split a
 * record; an evdev device never does). Holds at most one partial record between pushes.
 */
export class InputEventFramer {
  private partial: Buffer = Buffer.alloc(0);

  constructor(
    readonly size: InputEventSize,
    private readonly littleEndian = true,
  ) {}

  /** Bytes of an incomplete record held for the next push. */
  get pending(): number {
    return this.partial.length;
  }

  /** Decodes every record completed by `chunk`. */
  push(chunk: Uint8Array): InputEvent[] {
    const data = this.partial.length ? Buffer.concat([this.partial, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const events: InputEvent[] = [];
    let at = 0;
    for (; at + this.size <= data.length; at += this.size) events.push(decodeInputEvent(data, at, this.size, this.littleEndian));
    this.partial = Buffer.from(data.subarray(at));
    return events;
  }

  /** Drops a held partial record (the device was reopened). */
  reset(): void {
    this.partial = Buffer.alloc(0);
  }
}

/**
 * Maps kernel timestamps onto the injected Clock's monotonic scale.
 *
 * evdev stamps each event with the clock the reading client chose by `EVIOCSCLOCKID`; a new
 * client gets `CLOCK_REALTIME` (drivers/input/evdev.c: `clk_type` is zero-initialised, and
 * `EV_CLK_REAL = 0`). Without ioctl we cannot switch it, so the stamps are wall-clock time,
 * which NTP may step (a Pi without RTC steps at boot). So: the offset kernel→monotonic is
 * measured on the newest event of each batch (`arrivalMs` is when the batch was read); it is
 * kept while that event's implied delivery lag stays within `[0, maxLagMs]`, and re-measured
 * otherwise (an event cannot arrive before it happened: an earlier measurement was late or the
 * wall clock stepped forward; a lag over `maxLagMs` means it stepped back). Widths between
 * events of one batch, or of batches under one offset, are the kernel's exact ones; results
 * never decrease.
 */
export class KernelTimeline {
  /** How often the offset was re-measured after the first time. */
  reanchors = 0;
  private offset: number | undefined;
  private last = Number.NEGATIVE_INFINITY;

  constructor(private readonly maxLagMs = 5000) {}

  /** Monotonic times for one batch of kernel times (ms) read at `arrivalMs`. */
  map(kernelMs: readonly number[], arrivalMs: number): number[] {
    if (kernelMs.length === 0) return [];
    const newest = Math.max(...kernelMs);
    const lag = this.offset === undefined ? Number.NaN : arrivalMs - (newest + this.offset);
    if (!(lag >= 0 && lag <= this.maxLagMs)) {
      if (this.offset !== undefined) this.reanchors++;
      this.offset = arrivalMs - newest;
    }
    const offset = this.offset as number;
    return kernelMs.map((k) => {
      this.last = Math.max(k + offset, this.last);
      return this.last;
    });
  }
}

/** The synchronous `node:fs` calls the reader makes (a fake in tests). */
export interface EvdevFs {
  openSync(path: string, flags: number): number;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: null): number;
  closeSync(fd: number): void;
  statSync(path: string): { dev: number; ino: number };
  fstatSync(fd: number): { dev: number; ino: number };
}

/** Reopen pacing after the device vanished: `initialMs` doubling up to `maxMs`. */
export interface ReopenBackoff {
  initialMs: number;
  maxMs: number;
}

/** What an {@link EvdevReader} reads and whom it tells. */
export interface EvdevReaderOptions {
  /** Device path, preferably stable: `/dev/input/by-path/platform-...-event`. */
  path: string;
  /** Record size; default {@link defaultInputEventSize} for this Node binary. */
  recordSize?: InputEventSize;
  /** Default: this machine's byte order. */
  littleEndian?: boolean;
  /** How often a quiet device is polled (ms); event times come from the kernel, not the poll. Default 10. */
  pollMs?: number;
  /** Default 200 ms doubling to 5 s. */
  backoff?: ReopenBackoff;
  /** See {@link KernelTimeline}. Default 5000. */
  maxLagMs?: number;
  clock: Clock;
  logger: Logger;
  fs?: EvdevFs;
  /** Every decoded record (EV_SYN included), in order. Must not throw. */
  onEvent(event: TimedInputEvent): void;
  /** The device vanished (`up` false; already logged) or was reopened (`up` true). */
  onConnection?(up: boolean, reason?: string): void;
}

const RECORDS_PER_READ = 64;
/** Reads per poll before yielding to the event loop (the next poll then comes at once). */
const MAX_READS_PER_POLL = 16;

/**
 * Reads one input device. The file is opened `O_NONBLOCK` and polled with the Clock's timers
 * and synchronous reads that return at once: a blocking read would pin one libuv pool thread
 * per device for good (four devices exhaust the default pool of four, stalling DNS and file
 * I/O) and could not be cancelled by `close`. Polling adds up to `pollMs` of delivery latency
 * but none to the event times, which are the kernel's.
 *
 * A read error (ENODEV when the device is unplugged or its overlay removed), or end-of-file on
 * a path that no longer names the opened file, closes it, logs one warning, reports
 * `onConnection(false)` and reopens it with backoff; the reopen logs one info line and reports
 * `onConnection(true)`. `close` stops everything and is idempotent.
 */
export class EvdevReader {
  private readonly fs: EvdevFs;
  private readonly size: InputEventSize;
  private readonly pollMs: number;
  private readonly backoff: ReopenBackoff;
  private readonly framer: InputEventFramer;
  private readonly timeline: KernelTimeline;
  private readonly buffer: Buffer;
  private fd: number | undefined;
  private identity: { dev: number; ino: number } | undefined;
  private timer: TimerHandle | undefined;
  private attempt = 0;
  private lostAt = 0;
  private closed = false;

  constructor(private readonly opts: EvdevReaderOptions) {
    this.fs = opts.fs ?? (nodeFs as unknown as EvdevFs);
    this.size = opts.recordSize ?? defaultInputEventSize();
    this.pollMs = opts.pollMs ?? 10;
    this.backoff = opts.backoff ?? { initialMs: 200, maxMs: 5000 };
    this.framer = new InputEventFramer(this.size, opts.littleEndian ?? endianness() === 'LE');
    this.timeline = new KernelTimeline(opts.maxLagMs);
    this.buffer = Buffer.alloc(this.size * RECORDS_PER_READ);
  }

  /** True while the device is open. */
  get isOpen(): boolean {
    return this.fd !== undefined;
  }

  /** Opens the device and starts polling; throws the `fs` error (ENOENT, EACCES, ...) as is. */
  open(): void {
    if (this.closed || this.fd !== undefined) return;
    this.openNow();
    this.schedule(this.pollMs);
  }

  /** Closes the device and cancels polling and reopening. */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.closeFd();
  }

  private openNow(): void {
    const fd = this.fs.openSync(this.opts.path, nodeFs.constants.O_RDONLY | nodeFs.constants.O_NONBLOCK);
    this.fd = fd;
    try {
      this.identity = this.fs.fstatSync(fd);
    } catch {
      this.identity = undefined;
    }
    this.framer.reset();
  }

  private schedule(ms: number): void {
    this.timer = this.opts.clock.setTimer(ms, () => this.poll(), 'hardware.evdev.poll');
  }

  private poll(): void {
    this.timer = undefined;
    const fd = this.fd;
    if (this.closed || fd === undefined) return;
    const events: InputEvent[] = [];
    let more = false;
    for (let reads = 0; ; reads++) {
      if (reads === MAX_READS_PER_POLL) {
        more = true;
        break;
      }
      let n: number;
      try {
        n = this.fs.readSync(fd, this.buffer, 0, this.buffer.length, null);
      } catch (err) {
        const code = errorCode(err);
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') break;
        this.deliver(events);
        this.lost(`read failed: ${code ?? errorText(err)}`);
        return;
      }
      if (n === 0) {
        if (this.replaced()) {
          this.deliver(events);
          this.lost('device file removed');
          return;
        }
        break;
      }
      events.push(...this.framer.push(this.buffer.subarray(0, n)));
    }
    this.deliver(events);
    if (!this.closed && this.fd === fd) this.schedule(more ? 0 : this.pollMs);
  }

  private deliver(events: readonly InputEvent[]): void {
    if (events.length === 0) return;
    const times = this.timeline.map(
      events.map((e) => e.sec * 1000 + e.usec / 1000),
      this.opts.clock.now(),
    );
    events.forEach((e, i) => this.opts.onEvent({ ...e, atMs: times[i] as number }));
  }

  /** End of file: the path no longer names the open file (deleted, or replaced by a new node). */
  private replaced(): boolean {
    try {
      const now = this.fs.statSync(this.opts.path);
      return this.identity !== undefined && (now.dev !== this.identity.dev || now.ino !== this.identity.ino);
    } catch {
      return true;
    }
  }

  private lost(reason: string): void {
    this.closeFd();
    this.lostAt = this.opts.clock.now();
    this.attempt = 0;
    const delay = this.nextDelay();
    this.opts.logger.warn(`input device lost; reopening in ${delay} ms`, { path: this.opts.path, reason, retryInMs: delay });
    this.opts.onConnection?.(false, reason);
    this.timer = this.opts.clock.setTimer(delay, () => this.reopen(), 'hardware.evdev.reopen');
  }

  private reopen(): void {
    this.timer = undefined;
    if (this.closed) return;
    try {
      this.openNow();
    } catch (err) {
      const delay = this.nextDelay();
      this.opts.logger.debug('input device still missing', { path: this.opts.path, error: errorCode(err) ?? errorText(err), retryInMs: delay });
      this.timer = this.opts.clock.setTimer(delay, () => this.reopen(), 'hardware.evdev.reopen');
      return;
    }
    this.opts.logger.info('input device reopened', { path: this.opts.path, downMs: Math.round(this.opts.clock.now() - this.lostAt) });
    this.opts.onConnection?.(true);
    this.schedule(0);
  }

  private nextDelay(): number {
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.attempt);
    this.attempt++;
    return delay;
  }

  private closeFd(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return;
    try {
      this.fs.closeSync(fd);
    } catch {
      // The device may already be gone; there is nothing left to release.
    }
  }
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
