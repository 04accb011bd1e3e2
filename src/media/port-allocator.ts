/**
 * RTP port pairs from `media.rtpPorts`. RFC 3550 §11: "RTP SHOULD use an even destination port
 * number and the corresponding RTCP stream SHOULD use the next higher (odd) destination port
 * number". Pure bookkeeping: binding is the caller's, passed in as a function.
 */

export type PortAllocationErrorCode = 'RTP_PORTS_EXHAUSTED' | 'RTP_PORTS_IN_USE';

/** Why no pair could be had; `code` is stable. */
export class PortAllocationError extends Error {
  constructor(
    readonly code: PortAllocationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PortAllocationError';
  }
}

/** Default bound on pairs tried by {@link PortAllocator.acquire} when binds fail with EADDRINUSE. */
const DEFAULT_MAX_ATTEMPTS = 32;

/**
 * Hands out even RTP ports (RTCP = port + 1, both within [min, max]) round-robin: the pair after
 * the last one handed out, not the lowest free one, so a late packet of an ended call rarely lands
 * in a new call. `release()` returns a pair.
 */
export class PortAllocator {
  /** Number of RTP/RTCP pairs in the range. */
  readonly capacity: number;
  private readonly first: number;
  private readonly used: Uint8Array;
  private cursor = 0;
  private count = 0;
  private readonly maxAttempts: number;

  constructor(min: number, max: number, opts: { maxAttempts?: number } = {}) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535 || min > max) {
      throw new RangeError(`RTP port range [${min}, ${max}] is not within 1..65535`);
    }
    this.first = min % 2 === 0 ? min : min + 1;
    this.capacity = this.first + 1 <= max ? Math.floor((max - this.first - 1) / 2) + 1 : 0;
    if (this.capacity === 0) throw new RangeError(`RTP port range [${min}, ${max}] holds no even/odd port pair`);
    this.used = new Uint8Array(this.capacity);
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
  }

  /** Pairs currently handed out. */
  inUse(): number {
    return this.count;
  }

  /** Marks the next free pair in use and returns its (even) RTP port; undefined when all are in use. */
  take(): number | undefined {
    for (let i = 0; i < this.capacity; i++) {
      const idx = (this.cursor + i) % this.capacity;
      if (this.used[idx] === 0) {
        this.used[idx] = 1;
        this.count++;
        this.cursor = (idx + 1) % this.capacity;
        return this.first + 2 * idx;
      }
    }
    return undefined;
  }

  /** Returns the pair of RTP port `port`. Releasing a free pair or a foreign port does nothing. */
  release(port: number): void {
    const idx = (port - this.first) / 2;
    if (!Number.isInteger(idx) || idx < 0 || idx >= this.capacity || this.used[idx] === 0) return;
    this.used[idx] = 0;
    this.count--;
  }

  /**
   * Takes pairs until `bind(port)` resolves. A pair whose bind fails with `EADDRINUSE` (another
   * process holds it) is given back and the next pair is tried, up to `maxAttempts` pairs; any
   * other bind error gives the pair back and rejects with that error. Rejects with a
   * {@link PortAllocationError} when no free pair is left (`RTP_PORTS_EXHAUSTED`) or every pair
   * tried was in use elsewhere (`RTP_PORTS_IN_USE`).
   */
  async acquire<T>(bind: (port: number) => Promise<T>): Promise<{ port: number; value: T }> {
    // Each free pair is tried at most once: the cursor moves past a pair that failed.
    const limit = Math.min(this.maxAttempts, this.capacity - this.count);
    for (let attempt = 0; attempt < Math.max(1, limit); attempt++) {
      const port = this.take();
      if (port === undefined) {
        throw new PortAllocationError('RTP_PORTS_EXHAUSTED', `all ${this.capacity} RTP port pairs are in use`);
      }
      try {
        return { port, value: await bind(port) };
      } catch (err) {
        this.release(port);
        if ((err as NodeJS.ErrnoException | undefined)?.code !== 'EADDRINUSE') throw err;
      }
    }
    throw new PortAllocationError('RTP_PORTS_IN_USE', `no RTP port pair could be bound: ports in use by another process`);
  }
}
