/**
 * The data types of the playout buffer ({@link JitterBuffer}); import them from
 * `jitter-buffer.ts`, which re-exports them.
 */
import type { JitterBuffer } from './jitter-buffer.ts';
import type { WaveformPlc } from './plc.ts';

/** The RTP fields the buffer reads (a decoded packet; extra fields are carried through). */
export interface JitterPacket {
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly marker: boolean;
  readonly payloadType: number;
  readonly payload: Uint8Array;
}

/** How a payload type is treated: buffered audio, pass-through event (RFC 4733), or CN (RFC 3389). */
export type PayloadClass = 'audio' | 'event' | 'cn';

/**
 * Configuration of a {@link JitterBuffer}, fixed for its life. The callbacks are called
 * synchronously from `put`/`get` and must not call back into the buffer.
 */
export interface JitterBufferOptions<P extends JitterPacket = JitterPacket> {
  /** RTP clock rate of the stream (timestamp units per second; 8000 for G.722). */
  clockRate: number;
  /** Timestamp units per playout frame (160 for 20 ms at 8 kHz). Must divide each packet's duration. */
  frameTicks: number;
  /** Bounds of the target delay (ms). */
  minDelayMs: number;
  maxDelayMs: number;
  /** Target before any jitter was measured (ms, default 60, clamped to the bounds). */
  initialDelayMs?: number;
  classify(payloadType: number): PayloadClass;
  /** Duration of an audio packet in timestamp units (e.g. payload bytes for G.711). */
  durationTicks?(packet: P): number;
  /** True when the frame at `offsetTicks` of `packet` is quiet enough to drop or to repeat. */
  isQuiet?(packet: P, offsetTicks: number): boolean;
  /** Share of packets that should arrive in time; sets the target delay (default 0.98). */
  lateQuantile?: number;
  /** Missing frames are reported `lost` for this long, then `silence` (ms, default 100). */
  concealMaxMs?: number;
  /** How long a drift adjustment waits for a quiet frame before it is forced (ms, default 2000). */
  maxAdjustWaitMs?: number;
}

/** What {@link JitterBuffer.put} did with a packet. */
export type PutOutcome = 'buffered' | 'event' | 'duplicate' | 'late' | 'overflow';

/** One frame of a packet: the caller decodes `packet` and plays `frameTicks` from `offsetTicks`. */
export interface PlayedFrame<P> {
  packet: P;
  offsetTicks: number;
}

/**
 * What to play for one frame period:
 * - `audio`: a frame of `packet`; `dropped` is the frame skipped just before it to cut the delay
 *   (a stateful decoder may decode it and discard the PCM);
 * - `lost`: conceal one frame (codec PLC or {@link WaveformPlc}). `next` is the packet that
 *   starts right after this frame, when already buffered (opus in-band FEC). `inserted` frames
 *   were added to raise the delay; they have no `next`, since nothing is missing;
 * - `cn`: comfort noise per the RFC 3389 packet (repeated until the next packet);
 * - `silence`: nothing to play (not started, waiting for a talkspurt, or a long gap).
 */
export type PlayoutFrame<P> =
  | ({ kind: 'audio'; dropped?: PlayedFrame<P> } & PlayedFrame<P>)
  | { kind: 'lost'; inserted: boolean; next?: P }
  | { kind: 'cn'; packet: P }
  | { kind: 'silence' };

/** Counters since construction, and the current delay figures. */
export interface JitterBufferStats {
  /** Audio and CN packets accepted into the buffer. */
  received: number;
  events: number;
  duplicates: number;
  late: number;
  overflow: number;
  /** SSRC changes, timestamp jumps and restarts after a run of late packets. */
  resyncs: number;
  /** Audio frames played, missing frames concealed, frames inserted or dropped for the level. */
  played: number;
  concealed: number;
  inserted: number;
  dropped: number;
  cnFrames: number;
  silenceFrames: number;
  /** Times a frame was due during speech with nothing at all buffered. */
  underruns: number;
  /** RFC 3550 A.8 interarrival jitter (ms). */
  jitterMs: number;
  targetDelayMs: number;
  /** Current buffering delay of the median packet (ms); NaN before playout. */
  levelMs: number;
}
