import { DelayEstimator } from './delay-estimator.ts';
import type {
  JitterBufferOptions,
  JitterBufferStats,
  JitterPacket,
  PlayedFrame,
  PlayoutFrame,
  PutOutcome,
} from './types.ts';

export type {
  JitterBufferOptions,
  JitterBufferStats,
  JitterPacket,
  PayloadClass,
  PlayedFrame,
  PlayoutFrame,
  PutOutcome,
} from './types.ts';

/**
 * An adaptive playout (jitter) buffer for one incoming RTP audio stream. Pure: the caller passes
 * each packet with its arrival time to {@link JitterBuffer.put}, and the playout clock (the sound
 * card, or an encoder feeding another leg) calls {@link JitterBuffer.get} once per frame period.
 *
 * Model. Packets are kept sorted by extended RTP timestamp. `get` plays the frame at the playout
 * timestamp and advances it by `frameTicks`. The playout offset `C = now − timestampMs(frame)`
 * (smoothed) and the median relative transit `median(arrival − timestampMs)` give the buffering
 * level `L = C − median`: how long the median packet waits before it is played. The target delay
 * `T` is the spread between the `lateQuantile` and the median of the transit (so that about
 * `1 − lateQuantile` of packets arrive late), clamped to [minDelayMs, maxDelayMs]; it rises at
 * once and decays over about 10 s.
 *
 * Clock drift and target changes are handled by keeping `L` within `[T, T + frame + 5 ms]`: below
 * it one concealment frame is inserted (the playout timestamp does not advance), above it one
 * frame is dropped (it advances twice). An adjustment waits up to `maxAdjustWaitMs` for a quiet
 * moment (CN, silence, a frame that is missing anyway, or one `isQuiet` calls quiet) unless the
 * level is more than a frame below target or two frames above the band. At the start of a
 * talkspurt (marker bit while the buffer is in silence, RFC 3551 §4.1) the playout point is
 * re-anchored at `T + band/2`, so streams with silence suppression re-centre without any glitch.
 *
 * Frames and packets. `frameTicks` must divide every packet's duration (10 ms frames cover all
 * usual ptimes); a packet of several frames is returned once per frame with `offsetTicks`, and the
 * caller decodes it once and slices. Packet durations come from `durationTicks` when given, else
 * from the timestamp step between consecutive sequence numbers (the first packet is assumed one
 * frame long). Misaligned timestamps are snapped to the nearest frame boundary.
 */
export class JitterBuffer<P extends JitterPacket = JitterPacket> {
  private readonly frameTicks: number;
  private readonly frameMs: number;
  private readonly msPerTick: number;
  private readonly band: number;
  private readonly est: DelayEstimator;
  private readonly seen = new Float64Array(SEEN_WINDOW);
  private readonly maxEntries: number;
  private target: number;
  private estVersion = 0;
  private ssrc: number | undefined;
  private seqRef: number | undefined;
  private tsRef = 0;
  private tsRef32 = 0;
  private lastSeq: number | undefined;
  private lastTs = 0;
  private inferredTicks: number;
  private buf: Array<Entry<P>> = [];
  private started = false;
  private anchor: { ts: number; at: number; initial: boolean } | undefined;
  private playTs = 0;
  private cEst = 0;
  private mode: 'speech' | 'cn' | 'silence' = 'silence';
  private lastCn: P | undefined;
  private lastPlayed: PlayedFrame<P> | undefined;
  private missingRun = 0;
  private lateRun = 0;
  private pending: { dir: 1 | -1; since: number } | undefined;
  private readonly counts = {
    received: 0,
    events: 0,
    duplicates: 0,
    late: 0,
    overflow: 0,
    resyncs: 0,
    played: 0,
    concealed: 0,
    inserted: 0,
    dropped: 0,
    cnFrames: 0,
    silenceFrames: 0,
    underruns: 0,
  };

  constructor(private readonly opts: JitterBufferOptions<P>) {
    if (!(opts.clockRate > 0) || !(opts.frameTicks > 0) || !(opts.minDelayMs >= 0) || opts.maxDelayMs < opts.minDelayMs) {
      throw new RangeError('JitterBuffer: need clockRate > 0, frameTicks > 0 and 0 <= minDelayMs <= maxDelayMs');
    }
    this.frameTicks = opts.frameTicks;
    this.msPerTick = 1000 / opts.clockRate;
    this.frameMs = opts.frameTicks * this.msPerTick;
    this.band = this.frameMs + BAND_MARGIN_MS;
    this.est = new DelayEstimator(opts.lateQuantile ?? 0.98);
    this.target = clamp(opts.initialDelayMs ?? 60, opts.minDelayMs, opts.maxDelayMs);
    this.inferredTicks = opts.frameTicks;
    this.maxEntries = Math.ceil((opts.maxDelayMs + 2 * JUMP_MS) / this.frameMs) + 16;
    this.seen.fill(Number.NaN);
  }

  /** Counters and the current delay figures (a snapshot). */
  get stats(): JitterBufferStats {
    return {
      ...this.counts,
      jitterMs: this.est.jitterMs,
      targetDelayMs: this.target,
      levelMs: this.started && this.est.ready ? this.cEst - this.est.median : Number.NaN,
    };
  }

  /**
   * Offers one received packet. Telephone events are not buffered (`'event'`: hand the packet to
   * the RFC 4733 receiver now, it deduplicates). Returns what became of the packet.
   */
  put(packet: P, arrivalMs: number): PutOutcome {
    const cls = this.opts.classify(packet.payloadType);
    if (cls === 'event') {
      this.counts.events++;
      return 'event';
    }
    // RFC 3550 §5.1: the SSRC identifies the source; a new one brings its own random sequence and timestamp bases.
    if (packet.ssrc !== this.ssrc) {
      if (this.ssrc !== undefined) this.counts.resyncs++;
      this.restart(packet.ssrc);
    }
    let seq = this.unwrapSeq(packet.sequence);
    if (this.seen[slot(seq)] === seq) {
      this.counts.duplicates++;
      return 'duplicate';
    }
    let ts = this.unwrapTs(packet.timestamp);
    if (this.isJump(seq, ts, arrivalMs)) {
      this.counts.resyncs++;
      this.restart(packet.ssrc);
      seq = this.unwrapSeq(packet.sequence);
      ts = this.unwrapTs(packet.timestamp);
    }
    this.seen[slot(seq)] = seq;
    const dur = cls === 'cn' ? this.frameTicks : this.durationOf(packet, seq, ts);
    if (this.lastSeq === undefined || seq > this.lastSeq) {
      this.lastSeq = seq;
      this.lastTs = ts;
    }
    this.est.add(arrivalMs - ts * this.msPerTick);
    this.adaptTarget();

    if (this.anchor) {
      if (ts < this.anchor.ts) {
        if (this.anchor.initial) {
          this.anchor.at -= (this.anchor.ts - ts) * this.msPerTick;
          this.anchor.ts = ts;
        } else if (ts + dur <= this.anchor.ts) {
          return this.late(packet, ts, dur, cls, arrivalMs);
        }
      }
    } else if (!this.started) {
      this.anchorOn(ts, arrivalMs, true);
    } else if (packet.marker && this.inSilence()) {
      // RFC 3551 §4.1: the marker bit flags the first packet of a talkspurt; the gap before it is
      // where the playout delay can change without a glitch.
      this.anchorOn(ts, arrivalMs, false);
    } else if (ts + dur <= this.playTs) {
      return this.late(packet, ts, dur, cls, arrivalMs);
    }
    return this.insert(packet, ts, dur, cls);
  }

  /**
   * Called by the playout clock once per frame period (`frameTicks` of audio), with the time the
   * frame is handed to the device on the same monotonic clock as the arrival times; returns what
   * to play for that frame (see {@link PlayoutFrame}). Calls should be regular: the playout offset
   * is smoothed over 16 frames, so occasional bursts only cost precision, not frames.
   */
  get(nowMs: number): PlayoutFrame<P> {
    if (this.anchor) {
      if (nowMs + this.frameMs / 2 < this.anchor.at) return this.idleFrame();
      this.playTs = this.anchor.ts;
      this.anchor = undefined;
      this.started = true;
      this.missingRun = 0;
      this.cEst = nowMs - this.playTs * this.msPerTick;
    }
    if (!this.started) return this.idleFrame();
    this.cEst += (nowMs - this.playTs * this.msPerTick - this.cEst) / OFFSET_SMOOTHING;
    this.prune();
    this.align();
    const dir = this.decideAdjustment(nowMs);
    if (dir === 1) {
      this.counts.inserted++;
      this.cEst += this.frameMs;
      if (this.mode === 'speech') return { kind: 'lost', inserted: true };
      return this.idleFrame();
    }
    let dropped: PlayedFrame<P> | undefined;
    if (dir === -1) {
      this.counts.dropped++;
      const e = this.entryAt(this.playTs);
      if (e?.cls === 'audio') dropped = { packet: e.packet, offsetTicks: this.playTs - e.ts };
      this.playTs += this.frameTicks;
      this.cEst -= this.frameMs;
      this.prune();
      this.align();
    }
    return this.play(dropped);
  }

  private play(dropped: PlayedFrame<P> | undefined): PlayoutFrame<P> {
    const e = this.entryAt(this.playTs);
    const at = this.playTs;
    this.playTs += this.frameTicks;
    if (e) {
      this.missingRun = 0;
      if (e.cls === 'cn') {
        this.mode = 'cn';
        this.lastCn = e.packet;
        this.counts.cnFrames++;
        return { kind: 'cn', packet: e.packet };
      }
      this.mode = 'speech';
      this.counts.played++;
      this.lastPlayed = { packet: e.packet, offsetTicks: at - e.ts };
      return dropped ? { kind: 'audio', ...this.lastPlayed, dropped } : { kind: 'audio', ...this.lastPlayed };
    }
    // RFC 3389 §4: comfort noise goes on at the last SID's level until the next packet arrives.
    if (this.mode !== 'speech') return this.idleFrame();
    this.missingRun++;
    if (this.missingRun === 1 && !this.hasAhead()) this.counts.underruns++;
    if (this.missingRun * this.frameMs > (this.opts.concealMaxMs ?? 100)) {
      this.mode = 'silence';
      return this.idleFrame();
    }
    this.counts.concealed++;
    const next = this.buf.find((x) => x.ts === this.playTs && x.cls === 'audio');
    return next ? { kind: 'lost', inserted: false, next: next.packet } : { kind: 'lost', inserted: false };
  }

  private idleFrame(): PlayoutFrame<P> {
    if (this.mode === 'cn' && this.lastCn) {
      this.counts.cnFrames++;
      return { kind: 'cn', packet: this.lastCn };
    }
    this.counts.silenceFrames++;
    return { kind: 'silence' };
  }

  /** +1: insert a frame, −1: drop one, 0: play on. Needs the level estimate to be ready. */
  private decideAdjustment(nowMs: number): 0 | 1 | -1 {
    if (!this.est.ready) {
      this.pending = undefined;
      return 0;
    }
    const level = this.cEst - this.est.median;
    let dir: 0 | 1 | -1 = 0;
    let urgent = false;
    if (level < this.target) {
      dir = 1;
      urgent = this.target - level > this.frameMs;
    } else if (level > this.target + this.band) {
      dir = -1;
      urgent = level - this.target - this.band > 2 * this.frameMs;
    }
    if (dir === 0) {
      this.pending = undefined;
      return 0;
    }
    if (this.pending?.dir !== dir) this.pending = { dir, since: nowMs };
    const quiet = dir === 1 ? this.quietToInsert() : this.quietToDrop();
    if (urgent || quiet || nowMs - this.pending.since >= (this.opts.maxAdjustWaitMs ?? 2000)) {
      this.pending = undefined;
      return dir;
    }
    return 0;
  }

  private quietToInsert(): boolean {
    if (this.mode !== 'speech' || !this.entryAt(this.playTs)) return true;
    const last = this.lastPlayed;
    return last !== undefined && this.opts.isQuiet?.(last.packet, last.offsetTicks) === true;
  }

  private quietToDrop(): boolean {
    const e = this.entryAt(this.playTs);
    if (this.mode !== 'speech' || !e || e.cls === 'cn') return true;
    return this.opts.isQuiet?.(e.packet, this.playTs - e.ts) === true;
  }

  private late(packet: P, ts: number, dur: number, cls: 'audio' | 'cn', arrivalMs: number): PutOutcome {
    // A run of late packets with nothing left to play means the path delay stepped up: start over
    // from this packet instead of discarding the stream.
    if (++this.lateRun >= LATE_RUN_RESYNC && !this.hasAhead()) {
      this.counts.resyncs++;
      this.est.resetWindow();
      this.est.add(arrivalMs - ts * this.msPerTick);
      this.buf = [];
      this.anchorOn(ts, arrivalMs, true);
      return this.insert(packet, ts, dur, cls);
    }
    this.counts.late++;
    return 'late';
  }

  private insert(packet: P, ts: number, dur: number, cls: 'audio' | 'cn'): PutOutcome {
    this.lateRun = 0;
    let i = this.buf.length;
    while (i > 0 && this.buf[i - 1]!.ts > ts) i--;
    if (i > 0 && this.buf[i - 1]!.ts === ts) {
      this.counts.duplicates++;
      return 'duplicate';
    }
    if (this.buf.length >= this.maxEntries) {
      this.counts.overflow++;
      return 'overflow';
    }
    this.buf.splice(i, 0, { packet, ts, dur, cls });
    this.counts.received++;
    return 'buffered';
  }

  /** Sets the playout point so that packet `ts` plays `T + band/2` after the median transit. */
  private anchorOn(ts: number, arrivalMs: number, initial: boolean): void {
    const wait = this.target + this.band / 2;
    const at = this.est.ready ? ts * this.msPerTick + this.est.median + wait : arrivalMs + wait;
    this.anchor = { ts, at, initial };
    this.started = false;
    this.pending = undefined;
  }

  private inSilence(): boolean {
    return !this.hasAhead() && (this.mode !== 'speech' || this.missingRun > 0);
  }

  /**
   * A timestamp jump (RFC 3550 §5.1 lets the sender pick a random timestamp base; some pick anew):
   * the packet would play far outside the delay range and its timestamp does not follow from its
   * sequence number. Merely late packets whose timestamps do follow are counted late instead.
   */
  private isJump(seq: number, ts: number, arrivalMs: number): boolean {
    if (this.lastSeq === undefined || (!this.started && !this.anchor)) return false;
    const offset = this.anchor ? this.anchor.at - this.anchor.ts * this.msPerTick : this.cEst;
    const margin = offset + ts * this.msPerTick - arrivalMs;
    if (margin > this.opts.maxDelayMs + JUMP_MS) return true;
    if (margin >= -JUMP_MS) return false;
    const seqStep = seq - this.lastSeq;
    const expectedMs = seqStep * this.inferredTicks * this.msPerTick;
    return Math.abs(seqStep) > MAX_DROPOUT || Math.abs((ts - this.lastTs) * this.msPerTick - expectedMs) > JUMP_MS;
  }

  private durationOf(packet: P, seq: number, ts: number): number {
    const given = this.opts.durationTicks?.(packet);
    if (given !== undefined && given > 0) return given;
    if (this.lastSeq !== undefined && seq === this.lastSeq + 1 && !packet.marker) {
      const step = ts - this.lastTs;
      if (step > 0 && step % this.frameTicks === 0 && step * this.msPerTick <= MAX_PACKET_MS) this.inferredTicks = step;
    }
    return this.inferredTicks;
  }

  private adaptTarget(): void {
    if (this.est.version === this.estVersion) return;
    this.estVersion = this.est.version;
    const wanted = clamp(this.est.spread, this.opts.minDelayMs, this.opts.maxDelayMs);
    this.target = wanted > this.target ? wanted : this.target + (wanted - this.target) * TARGET_DECAY;
  }

  /** The entry whose frames cover `ts`. */
  private entryAt(ts: number): Entry<P> | undefined {
    for (const e of this.buf) {
      if (e.ts > ts) return undefined;
      if (ts < e.ts + e.dur) return e;
    }
    return undefined;
  }

  /** Moves a playout point that falls between frame boundaries to the nearest one. */
  private align(): void {
    for (const e of this.buf) {
      if (e.ts > this.playTs) {
        if (e.ts - this.playTs < this.frameTicks) this.snap(e.ts - this.playTs);
        return;
      }
      if (this.playTs < e.ts + e.dur) {
        const off = (this.playTs - e.ts) % this.frameTicks;
        if (off !== 0) this.snap(off * 2 <= this.frameTicks ? -off : this.frameTicks - off);
        return;
      }
    }
  }

  private snap(deltaTicks: number): void {
    this.playTs += deltaTicks;
    this.cEst -= deltaTicks * this.msPerTick;
  }

  private prune(): void {
    let n = 0;
    while (n < this.buf.length && this.buf[n]!.ts + this.buf[n]!.dur <= this.playTs) n++;
    if (n > 0) this.buf.splice(0, n);
  }

  private hasAhead(): boolean {
    const last = this.buf[this.buf.length - 1];
    return last !== undefined && last.ts + last.dur > (this.anchor ? this.anchor.ts : this.playTs);
  }

  private restart(ssrc: number): void {
    this.ssrc = ssrc;
    this.seqRef = undefined;
    this.lastSeq = undefined;
    this.seen.fill(Number.NaN);
    this.buf = [];
    this.started = false;
    this.anchor = undefined;
    this.pending = undefined;
    this.mode = 'silence';
    this.lastCn = undefined;
    this.lastPlayed = undefined;
    this.missingRun = 0;
    this.lateRun = 0;
    this.inferredTicks = this.frameTicks;
    this.est.resetWindow();
  }

  /** RFC 3550 A.1: extend the 16-bit sequence number relative to the highest seen. */
  private unwrapSeq(seq: number): number {
    if (this.seqRef === undefined) {
      this.seqRef = seq;
      return seq;
    }
    let d = (seq - (this.seqRef % 65536)) & 0xffff;
    if (d >= 0x8000) d -= 0x10000;
    const ext = this.seqRef + d;
    if (d > 0) this.seqRef = ext;
    return ext;
  }

  /** Extends the 32-bit timestamp relative to the highest seen (wraps at 2^32). */
  private unwrapTs(ts: number): number {
    if (this.lastSeq === undefined) {
      this.tsRef = ts;
      this.tsRef32 = ts;
      return ts;
    }
    const d = (ts - this.tsRef32) | 0;
    const ext = this.tsRef + d;
    if (d > 0) {
      this.tsRef = ext;
      this.tsRef32 = ts;
    }
    return ext;
  }
}

interface Entry<P> {
  packet: P;
  ts: number;
  dur: number;
  cls: 'audio' | 'cn';
}

/** Width of the level band above the target, beyond one frame (ms). */
const BAND_MARGIN_MS = 5;
/** Timestamp jumps beyond this (ms) outside the delay range resync the stream. */
const JUMP_MS = 1000;
/** RFC 3550 A.1 MAX_DROPOUT: a larger sequence step is a restart, not loss. */
const MAX_DROPOUT = 3000;
/** RFC 3551 and RFC 7587 packets are at most 120 ms. */
const MAX_PACKET_MS = 120;
const LATE_RUN_RESYNC = 5;
const OFFSET_SMOOTHING = 16;
/** Per quantile update (every 25 packets, ~0.5 s): a time constant of about 10 s. */
const TARGET_DECAY = 0.05;
const SEEN_WINDOW = 1024;

function slot(seq: number): number {
  return ((seq % SEEN_WINDOW) + SEEN_WINDOW) % SEEN_WINDOW;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
