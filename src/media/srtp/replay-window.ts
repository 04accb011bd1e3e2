/**
 * The SRTP / SRTCP replay list as a sliding window (RFC 3711 §3.3.2): indices more than `size`
 * behind the highest one accepted count as received; inside the window a bitmap records which
 * were. "SRTP-WINDOW-SIZE ... MUST be at least 64, but ... MAY be set to a higher value."
 */

/** What {@link ReplayWindow.check} says about an index. */
export type ReplayVerdict = 'fresh' | 'replayed' | 'too-old';

/** Smallest window RFC 3711 §3.3.2 allows. */
export const MIN_REPLAY_WINDOW = 64;

/**
 * A window over 48-bit (SRTP) or 31-bit (SRTCP) packet indices. {@link check} is pure; the caller
 * calls {@link accept} only once the packet authenticated ("After the packet has been
 * authenticated (if necessary the window is first moved ahead), the replay list SHALL be updated").
 */
export class ReplayWindow {
  private readonly bits: Uint32Array;
  private highest = -1;
  readonly size: number;

  /** `size` is rounded up to a multiple of 32; RangeError when below {@link MIN_REPLAY_WINDOW}. */
  constructor(size = 128) {
    if (!Number.isInteger(size) || size < MIN_REPLAY_WINDOW) {
      throw new RangeError(`replay window of ${size} packets, RFC 3711 §3.3.2 requires at least ${MIN_REPLAY_WINDOW}`);
    }
    this.size = Math.ceil(size / 32) * 32;
    this.bits = new Uint32Array(this.size / 32);
  }

  /**
   * RFC 3711 §3.3.2: "Only packets with index ahead of the window, or, inside the window but not
   * already received, SHALL be accepted."
   */
  check(index: number): ReplayVerdict {
    if (index > this.highest) return 'fresh';
    if (this.highest - index >= this.size) return 'too-old';
    return this.has(index) ? 'replayed' : 'fresh';
  }

  /** Records `index` as received, sliding the window forward when it is ahead. */
  accept(index: number): void {
    if (index > this.highest) {
      if (this.highest < 0 || index - this.highest >= this.size) {
        this.bits.fill(0);
      } else {
        for (let i = this.highest + 1; i < index; i++) this.clear(i);
      }
      this.highest = index;
    }
    const bit = index % this.size;
    this.bits[bit >>> 5] = this.bits[bit >>> 5]! | (1 << (bit & 31));
  }

  private has(index: number): boolean {
    const bit = index % this.size;
    return (this.bits[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  private clear(index: number): void {
    const bit = index % this.size;
    this.bits[bit >>> 5] = this.bits[bit >>> 5]! & ~(1 << (bit & 31));
  }
}
