/**
 * A first-in first-out queue of 16-bit PCM samples that grows as needed and hands out exact
 * lengths: the glue between sources and sinks whose chunk sizes differ (a 20 ms card period,
 * 10 ms playout frames, a resampler's ±1 sample).
 */
export class PcmFifo {
  private buf = new Int16Array(4096);
  private start = 0;
  private end = 0;

  get length(): number {
    return this.end - this.start;
  }

  push(pcm: Int16Array): void {
    const live = this.length;
    if (this.end + pcm.length > this.buf.length) {
      if (live + pcm.length <= this.buf.length) this.buf.copyWithin(0, this.start, this.end);
      else {
        const next = new Int16Array((live + pcm.length) * 2);
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      }
      this.start = 0;
      this.end = live;
    }
    this.buf.set(pcm, this.end);
    this.end += pcm.length;
  }

  /** The next `samples` samples (a fresh array), zero-padded when fewer are queued. */
  take(samples: number): Int16Array {
    const out = new Int16Array(samples);
    const n = Math.min(samples, this.length);
    out.set(this.buf.subarray(this.start, this.start + n));
    this.start += n;
    if (this.start === this.end) this.start = this.end = 0;
    return out;
  }
}
