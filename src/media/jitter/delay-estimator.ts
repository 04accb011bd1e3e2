/**
 * Transit statistics for the playout buffer ({@link JitterBuffer}). Each packet contributes its
 * relative transit time `d = arrival − timestamp` in milliseconds (the sender's clock offset is
 * unknown and cancels out). Two figures come out of it:
 *
 * - the RFC 3550 §6.4.1 / A.8 interarrival jitter `J += (|D| − J) / 16`, for statistics and RTCP;
 * - the median and an upper quantile of `d` over a sliding window of recent packets. A playout
 *   point placed `quantile − median` after the median packet's arrival plays all but
 *   `1 − quantile` of the packets on time: that difference is the delay the buffer aims for.
 *
 * Quantiles are recomputed every few packets (sorting a 512-entry window), not per packet.
 * Pure: no clock, no I/O.
 *
 * @see ./jitter-buffer.ts
 */
export class DelayEstimator {
  /** RFC 3550 A.8 interarrival jitter, in ms. Survives {@link resetWindow}. */
  jitterMs = 0;
  /** Median relative transit over the window (ms); NaN until {@link ready}. */
  median = Number.NaN;
  /** Upper quantile minus median of the relative transit (ms); NaN until {@link ready}. */
  spread = Number.NaN;
  /** Incremented each time {@link median} and {@link spread} are recomputed. */
  version = 0;

  private readonly ring: Float64Array;
  private readonly scratch: Float64Array;
  private count = 0;
  private pos = 0;
  private sinceUpdate = 0;
  private prevTransit: number | undefined;

  /**
   * @param quantile the share of packets that should arrive in time, e.g. 0.98.
   * @param size window length in packets (512 is about 10 s of 20 ms packets).
   * @param every recompute the quantiles after this many packets once the window has filled a bit.
   */
  constructor(
    private readonly quantile: number,
    private readonly size = 512,
    private readonly every = 25,
  ) {
    this.ring = new Float64Array(size);
    this.scratch = new Float64Array(size);
  }

  /** True once enough packets were seen for {@link median} and {@link spread} to mean something. */
  get ready(): boolean {
    return this.count >= MIN_SAMPLES;
  }

  /** Adds one packet's relative transit `arrivalMs − timestampMs`. */
  add(transitMs: number): void {
    if (this.prevTransit !== undefined) {
      // RFC 3550 A.8: "jitter += (1./16.) * ((double)d - jitter)" with d = |transit - prev transit|.
      this.jitterMs += (Math.abs(transitMs - this.prevTransit) - this.jitterMs) / 16;
    }
    this.prevTransit = transitMs;
    this.ring[this.pos] = transitMs;
    this.pos = (this.pos + 1) % this.size;
    if (this.count < this.size) this.count++;
    this.sinceUpdate++;
    const early = this.count < 4 * MIN_SAMPLES && (this.count & (this.count - 1)) === 0;
    if (this.ready && (early || this.sinceUpdate >= this.every)) this.update();
  }

  /**
   * Forgets the window (after an SSRC change or a resync the transit base is different). The
   * A.8 jitter value is kept: it describes the path, which has not changed.
   */
  resetWindow(): void {
    this.count = 0;
    this.pos = 0;
    this.sinceUpdate = 0;
    this.prevTransit = undefined;
    this.median = Number.NaN;
    this.spread = Number.NaN;
  }

  private update(): void {
    const n = this.count;
    const sorted = this.scratch.subarray(0, n);
    sorted.set(this.ring.subarray(0, n));
    sorted.sort();
    this.median = sorted[(n - 1) >> 1]!;
    this.spread = sorted[Math.min(n - 1, Math.round(this.quantile * (n - 1)))]! - this.median;
    this.sinceUpdate = 0;
    this.version++;
  }
}

/** Packets needed before the window's quantiles are used. */
const MIN_SAMPLES = 8;
