import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../runtime/logger.ts';
import type { OutputState } from '../types.ts';

/** Where LED class devices live (Documentation/leds/leds-class.rst). */
export const DEFAULT_LEDS_DIR = '/sys/class/leds';

/** The synchronous `node:fs` calls an LED makes (a fake or a temp directory in tests). */
export interface LedFs {
  writeFileSync(path: string, data: string): void;
  readFileSync(path: string, encoding: 'utf8'): string;
  accessSync(path: string, mode?: number): void;
}

/** Why an LED cannot be used, as found by {@link LedClassDevice.check}. */
export type LedProblem = { kind: 'missing'; path: string } | { kind: 'not-writable'; path: string; error: string };

/**
 * One LED class device, `<ledsDir>/<name>/`, as `dtoverlay=gpio-led,...,label=<name>` creates it
 * (the overlay's `label` is the directory name). Attribute semantics follow
 * Documentation/leds/leds-class.rst and ledtrig-timer:
 * - steady: `trigger` ← `none` (removes any trigger), then `brightness` ← `max_brightness` or `0`;
 * - blinking: `trigger` ← `timer`, then `delay_on` / `delay_off` in ms (the files appear once the
 *   timer trigger is active); the kernel toggles the pin, rounding delays to jiffies (CONFIG_HZ).
 *
 * Writing the state the LED already has is skipped, so re-asserting a blink does not restart its
 * phase. A failed write is logged as a warning and forgotten (the next request writes again);
 * it never throws.
 */
export class LedClassDevice {
  readonly dir: string;
  private readonly fs: LedFs;
  private max = 1;
  private current: OutputState | undefined;

  constructor(
    readonly name: string,
    private readonly logger: Logger,
    ledsDir: string = DEFAULT_LEDS_DIR,
    fs?: LedFs,
  ) {
    this.dir = join(ledsDir, name);
    this.fs = fs ?? (nodeFs as unknown as LedFs);
  }

  /** The value written for "on" (the device's `max_brightness`, 1 for a GPIO LED). */
  get maxBrightness(): number {
    return this.max;
  }

  /** The state last written successfully, if any. */
  get state(): OutputState | undefined {
    return this.current;
  }

  /**
   * Checks that `brightness` and `trigger` exist and are writable and reads `max_brightness`
   * (1 when unreadable). Returns the problem instead of throwing.
   */
  check(): LedProblem | undefined {
    for (const attr of ['brightness', 'trigger']) {
      const path = join(this.dir, attr);
      try {
        this.fs.accessSync(path, nodeFs.constants.W_OK);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing', path: attr === 'brightness' ? this.dir : path };
        return { kind: 'not-writable', path, error: typeof code === 'string' ? code : String(err) };
      }
    }
    const raw = this.tryRead('max_brightness');
    const max = raw === undefined ? Number.NaN : Number.parseInt(raw.trim(), 10);
    this.max = Number.isInteger(max) && max > 0 ? max : 1;
    return undefined;
  }

  /** Drives the LED to `state` (a blink with a zero phase becomes steady off or on). */
  set(state: OutputState): void {
    const next = normalise(state);
    if (this.current && sameState(this.current, next)) return;
    this.current = undefined;
    let ok: boolean;
    if (next.mode === 'blink') {
      ok = this.write('trigger', 'timer') && this.write('delay_on', String(next.onMs)) && this.write('delay_off', String(next.offMs));
    } else {
      ok = this.write('trigger', 'none') && this.write('brightness', next.mode === 'on' ? String(this.max) : '0');
    }
    if (ok) this.current = next;
  }

  private write(attr: string, value: string): boolean {
    const path = join(this.dir, attr);
    try {
      this.fs.writeFileSync(path, value);
      return true;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      this.logger.warn('LED write failed', { led: this.name, path, value, error: typeof code === 'string' ? code : String(err) });
      return false;
    }
  }

  private tryRead(attr: string): string | undefined {
    try {
      return this.fs.readFileSync(join(this.dir, attr), 'utf8');
    } catch {
      return undefined;
    }
  }
}

function normalise(state: OutputState): OutputState {
  if (state.mode !== 'blink') return state;
  const onMs = Math.round(state.onMs);
  const offMs = Math.round(state.offMs);
  if (!(onMs > 0)) return { mode: 'off' };
  if (!(offMs > 0)) return { mode: 'on' };
  return { mode: 'blink', onMs, offMs };
}

function sameState(a: OutputState, b: OutputState): boolean {
  if (a.mode === 'blink' && b.mode === 'blink') return a.onMs === b.onMs && a.offMs === b.offMs;
  return a.mode === b.mode;
}
