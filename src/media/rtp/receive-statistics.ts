/**
 * Receive statistics of one incoming RTP stream (RFC 3550 Appendix A.1, A.3, A.8): source
 * validation with probation, the extended highest sequence number, expected/lost counts and the
 * fraction lost per report interval, and interarrival jitter. Pure: the caller passes the header
 * fields and the arrival time.
 */

/** Tuning of the A.1 validation; the defaults are RFC 3550's. */
export interface ReceiveStatisticsOptions {
  /** RTP clock rate of the stream: converts arrival times to timestamp units for jitter. */
  clockRate: number;
  /** Sequential packets needed before a source is valid (A.1 MIN_SEQUENTIAL = 2). */
  minSequential?: number;
  /** Largest forward jump still taken as a gap (A.1 MAX_DROPOUT = 3000). */
  maxDropout?: number;
  /** Largest backward step still taken as reordering (A.1 MAX_MISORDER = 100). */
  maxMisorder?: number;
}

/** What {@link ReceiveStatistics.onPacket} made of a packet. */
export type PacketVerdict =
  /** Counted; part of a valid source. */
  | 'valid'
  /** The source is still on probation (A.1); not counted. */
  | 'probation'
  /** A jump too large to be loss or reordering; the next sequential packet resynchronises. */
  | 'bad-sequence';

/** The figures of one report block, before LSR/DLSR are added (RFC 3550 §6.4.1). */
export interface ReceptionReport {
  ssrc: number;
  fractionLost: number;
  cumulativeLost: number;
  extendedHighestSequence: number;
  jitter: number;
}

const SEQ_MOD = 65536;

/**
 * Statistics of the source currently heard. A packet from another SSRC resets them and puts the
 * new source on probation; the call totals ({@link totalReceived}, {@link totalLost}) carry over.
 */
export class ReceiveStatistics {
  readonly clockRate: number;
  private readonly minSequential: number;
  private readonly maxDropout: number;
  private readonly maxMisorder: number;

  private source: number | undefined;
  private maxSeq = 0;
  private cycles = 0;
  private baseSeq = 0;
  private badSeq = SEQ_MOD + 1;
  private probation = 0;
  private received = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private lastArrivalUnits: number | undefined;
  private jitterUnits = 0;
  private lastTimestamp = 0;
  private octets = 0;
  private sourceChanges = 0;
  private priorReceived = 0;
  private priorLost = 0;
  private priorExpected = 0;

  constructor(options: ReceiveStatisticsOptions) {
    if (!(options.clockRate > 0)) throw new RangeError(`clock rate ${options.clockRate} must be positive`);
    this.clockRate = options.clockRate;
    this.minSequential = options.minSequential ?? 2;
    this.maxDropout = options.maxDropout ?? 3000;
    this.maxMisorder = options.maxMisorder ?? 100;
  }

  /** SSRC of the source heard, undefined before the first packet. */
  get ssrc(): number | undefined {
    return this.source;
  }

  /** True once the current source passed probation. */
  get valid(): boolean {
    return this.source !== undefined && this.probation === 0;
  }

  /** Packets counted for the current source (duplicates included, as in A.1). */
  get packetsReceived(): number {
    return this.received;
  }

  /** Payload octets of the counted packets of the current source. */
  get octetsReceived(): number {
    return this.octets;
  }

  /** Extended highest sequence number: cycles count in the high 16 bits (A.1). */
  get extendedHighestSequence(): number {
    return this.valid ? (this.cycles + this.maxSeq) % 4294967296 : 0;
  }

  /** Packets expected from the current source (A.3). */
  get expected(): number {
    return this.valid ? this.cycles + this.maxSeq - this.baseSeq + 1 : 0;
  }

  /** Cumulative packets lost from the current source, unclamped (negative with duplicates). */
  get cumulativeLost(): number {
    return this.expected - this.received;
  }

  /** Interarrival jitter in timestamp units (A.8). */
  get jitter(): number {
    return this.jitterUnits;
  }

  /** Interarrival jitter in milliseconds. */
  get jitterMs(): number {
    return (this.jitterUnits * 1000) / this.clockRate;
  }

  /** How many times the SSRC changed after the first source. */
  get ssrcChanges(): number {
    return this.sourceChanges;
  }

  /** Packets counted over the call, across SSRC changes. */
  get totalReceived(): number {
    return this.priorReceived + this.received;
  }

  /** Packets expected over the call, across SSRC changes. */
  get totalExpected(): number {
    return this.priorExpected + this.expected;
  }

  /** Packets lost over the call (never negative per source). */
  get totalLost(): number {
    return this.priorLost + Math.max(0, this.cumulativeLost);
  }

  /**
   * Accounts one received packet. `arrivalMs` is the monotonic arrival time; `payloadOctets`
   * feeds {@link octetsReceived}. Pass `jitter: false` for packets whose timestamp is not their
   * sampling instant (RFC 4733 event updates repeat the event's start timestamp), so they do not
   * distort the jitter estimate.
   */
  onPacket(
    header: { ssrc: number; sequence: number; timestamp: number },
    arrivalMs: number,
    payloadOctets = 0,
    jitter = true,
  ): PacketVerdict {
    const seq = header.sequence;
    if (header.ssrc !== this.source) {
      if (this.source !== undefined) this.retireSource();
      this.source = header.ssrc;
      // A.1: a new source starts on probation, as if the previous packet had been seq - 1.
      this.initSequence(seq);
      this.maxSeq = (seq - 1) & 0xffff;
      this.probation = this.minSequential;
    }
    const verdict = this.updateSequence(seq);
    if (verdict !== 'valid') return verdict;
    this.octets += payloadOctets;
    if (jitter) this.updateJitter(header.timestamp, arrivalMs);
    return verdict;
  }

  /**
   * The report-block figures for the interval since the previous call (A.3), advancing the
   * interval. Undefined while no valid source is heard (RFC 3550 §6.4.2: no block then).
   */
  report(): ReceptionReport | undefined {
    if (!this.valid || this.source === undefined) return undefined;
    const expected = this.expected;
    const expectedInterval = expected - this.expectedPrior;
    this.expectedPrior = expected;
    const receivedInterval = this.received - this.receivedPrior;
    this.receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    const fractionLost = expectedInterval === 0 || lostInterval <= 0 ? 0 : Math.floor((lostInterval * 256) / expectedInterval);
    return {
      ssrc: this.source,
      fractionLost: Math.min(255, fractionLost),
      // A.3: clamp to the signed 24-bit field.
      cumulativeLost: Math.max(-0x800000, Math.min(0x7fffff, this.cumulativeLost)),
      extendedHighestSequence: this.extendedHighestSequence,
      jitter: Math.min(0xffffffff, Math.round(this.jitterUnits)),
    };
  }

  private retireSource(): void {
    this.sourceChanges++;
    this.priorReceived += this.received;
    this.priorExpected += this.expected;
    this.priorLost += Math.max(0, this.cumulativeLost);
    this.lastArrivalUnits = undefined;
    this.jitterUnits = 0;
    this.octets = 0;
  }

  private initSequence(seq: number): void {
    this.baseSeq = seq;
    this.maxSeq = seq;
    this.badSeq = SEQ_MOD + 1;
    this.cycles = 0;
    this.received = 0;
    this.receivedPrior = 0;
    this.expectedPrior = 0;
  }

  /** RFC 3550 A.1 `update_seq`. */
  private updateSequence(seq: number): PacketVerdict {
    const udelta = (seq - this.maxSeq) & 0xffff;
    if (this.probation > 0) {
      // A.1: "Source is not valid until MIN_SEQUENTIAL packets with sequential sequence numbers
      // have been received."
      if (seq === ((this.maxSeq + 1) & 0xffff)) {
        this.probation--;
        this.maxSeq = seq;
        if (this.probation === 0) {
          this.initSequence(seq);
          this.received++;
          return 'valid';
        }
      } else {
        this.probation = this.minSequential - 1;
        this.maxSeq = seq;
      }
      return 'probation';
    }
    if (udelta < this.maxDropout) {
      // In order, with a permissible gap; a smaller number than the maximum means a wrap.
      if (seq < this.maxSeq) this.cycles += SEQ_MOD;
      this.maxSeq = seq;
    } else if (udelta <= SEQ_MOD - this.maxMisorder) {
      // A.1: a very large jump; two sequential packets mean the other side restarted.
      if (seq === this.badSeq) {
        this.initSequence(seq);
        this.lastArrivalUnits = undefined;
      } else {
        this.badSeq = (seq + 1) & 0xffff;
        return 'bad-sequence';
      }
    }
    // Otherwise a duplicate or reordered packet: counted, the maximum unchanged.
    this.received++;
    return 'valid';
  }

  /** RFC 3550 A.8: J += (|D(i-1,i)| - J) / 16, with D in timestamp units. */
  private updateJitter(timestamp: number, arrivalMs: number): void {
    const arrivalUnits = (arrivalMs * this.clockRate) / 1000;
    const lastArrival = this.lastArrivalUnits;
    const lastTimestamp = this.lastTimestamp;
    this.lastArrivalUnits = arrivalUnits;
    this.lastTimestamp = timestamp;
    if (lastArrival === undefined) return;
    // D(i,j) = (Rj - Ri) - (Sj - Si); the timestamp difference is taken modulo 2^32 as signed,
    // so a wrap is an ordinary step.
    const d = Math.abs(arrivalUnits - lastArrival - ((timestamp - lastTimestamp) | 0));
    this.jitterUnits += (d - this.jitterUnits) / 16;
  }
}
