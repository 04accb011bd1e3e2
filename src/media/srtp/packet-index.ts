/**
 * The implicit SRTP packet index (RFC 3711 §3.3.1): `i = 2^16 * ROC + SEQ`, where only SEQ
 * travels in the packet and each side keeps the rollover counter ROC and the highest sequence
 * number s_l. Sender and receiver both run {@link RocTracker}: the receiver because it must, the
 * sender so that a relay forwarding slightly reordered packets still gives each its true index.
 */

/** 2^16, the sequence number space. */
const SEQ_SPACE = 0x10000;
const HALF = 0x8000;

/**
 * The ROC guess `v` for `seq` given the tracked `roc` and `sl`: RFC 3711 Appendix A, which
 * picks v from { ROC-1, ROC, ROC+1 } (mod 2^32) so that `2^16 * v + SEQ` is closest to
 * `2^16 * ROC + s_l`.
 */
export function guessRoc(roc: number, sl: number, seq: number): number {
  if (sl < HALF) {
    if (seq - sl > HALF) return (roc - 1) >>> 0;
    return roc;
  }
  if (sl - HALF > seq) return (roc + 1) >>> 0;
  return roc;
}

/** The 48-bit index of a packet from its ROC and SEQ, exact as a JS number (< 2^53). */
export function packetIndex(roc: number, seq: number): number {
  return roc * SEQ_SPACE + seq;
}

/**
 * ROC and s_l of one SSRC. {@link estimate} is pure; {@link update} runs only after the packet
 * authenticated (RFC 3711 §3.3.1: "After the packet has been processed and authenticated ...
 * the receiver MUST use v to conditionally update its s_l and ROC variables").
 */
export class RocTracker {
  private roc = 0;
  private sl = 0;
  private started = false;

  /**
   * @param initialRoc the ROC at the first packet: 0 for SDES (RFC 4568 §6.4: "the ROC MUST be
   *   zero at the time that each SSRC commences sending packets").
   */
  constructor(initialRoc = 0) {
    this.roc = initialRoc >>> 0;
  }

  /** The current rollover counter. */
  get rolloverCounter(): number {
    return this.roc;
  }

  /**
   * The ROC `v` to use for `seq`. Before the first packet, the ROC as set: RFC 3711 §3.3.1
   * "the receiver SHALL initialize s_l to the RTP sequence number (SEQ) of the first observed
   * SRTP packet".
   */
  estimate(seq: number): number {
    return this.started ? guessRoc(this.roc, this.sl, seq) : this.roc;
  }

  /**
   * RFC 3711 §3.3.1: "If v=(ROC-1) mod 2^32, then there is no update to s_l or ROC. If v=ROC,
   * then s_l is set to SEQ if and only if SEQ is larger than the current s_l; there is no change
   * to ROC. If v=(ROC+1) mod 2^32, then s_l is set to SEQ and ROC is set to v."
   */
  update(v: number, seq: number): void {
    if (!this.started) {
      this.started = true;
      this.roc = v;
      this.sl = seq;
      return;
    }
    if (v === this.roc) {
      if (seq > this.sl) this.sl = seq;
    } else if (v === ((this.roc + 1) >>> 0)) {
      this.roc = v;
      this.sl = seq;
    }
  }
}
