/**
 * A deterministic simulation of one RTP audio stream through a {@link JitterBuffer}, on manual time:
 * a sender whose clock differs from ours by `driftPpm`, a network with uniform jitter, random loss
 * and reordering, and a playout clock calling `get` every frame. Used by the jitter tests and by
 * the bench script to print the delay distribution.
 */
import { JitterBuffer } from '../../src/media/jitter/jitter-buffer.ts';
import type { JitterPacket } from '../../src/media/jitter/jitter-buffer.ts';
import { prng } from './prng.ts';

export interface JitterSimOptions {
  seed: number;
  durationMs: number;
  /** The sender's clock against ours: +100 means it runs 100 ppm fast (sends more audio). */
  driftPpm: number;
  /** Network delay is `baseDelayMs + uniform(−jitterMs, +jitterMs)`. */
  jitterMs: number;
  lossRate: number;
  /** Share of packets held back by an extra 1–2 frames, so they arrive after their successors. */
  reorderRate: number;
  baseDelayMs?: number;
  frameMs?: number;
  clockRate?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Length of the windows whose median delay is reported (ms, default 10 minutes). */
  windowMs?: number;
}

export interface DelaySummary {
  min: number;
  p50: number;
  p95: number;
  max: number;
}

export interface JitterSimResult {
  sent: number;
  lostInNetwork: number;
  frames: number;
  /** Buffering delay of every played audio frame: playout time − packet arrival (ms). */
  delay: DelaySummary;
  /** Mouth-to-ear through network and buffer: playout time − send time (ms), median. */
  endToEndP50: number;
  /** Median buffering delay per window (first to last). */
  windowP50: number[];
  concealed: number;
  late: number;
  inserted: number;
  dropped: number;
  underruns: number;
  resyncs: number;
  jitterMs: number;
  targetDelayMs: number;
}

interface SimPacket extends JitterPacket {
  sent: number;
  arrival: number;
}

/** Runs the simulation; one hour of 20 ms frames takes well under a second. */
export function runJitterSim(o: JitterSimOptions): JitterSimResult {
  const frameMs = o.frameMs ?? 20;
  const clockRate = o.clockRate ?? 8000;
  const frameTicks = (clockRate * frameMs) / 1000;
  const base = o.baseDelayMs ?? 60;
  const windowMs = o.windowMs ?? 600_000;
  const rnd = prng(o.seed);
  const jb = new JitterBuffer<SimPacket>({
    clockRate,
    frameTicks,
    minDelayMs: o.minDelayMs ?? 20,
    maxDelayMs: o.maxDelayMs ?? 400,
    classify: () => 'audio',
    durationTicks: () => frameTicks,
  });
  const payload = new Uint8Array(frameTicks);
  const senderPeriod = frameMs / (1 + o.driftPpm / 1e6);
  const inFlight: SimPacket[] = [];
  const delays: number[] = [];
  const e2e: number[] = [];
  const windows: number[][] = [];
  let k = 0;
  let sent = 0;
  let lostInNetwork = 0;
  let frames = 0;
  for (let now = 0; now < o.durationMs; now += frameMs) {
    for (; k * senderPeriod <= now; k++) {
      sent++;
      if (rnd() < o.lossRate) {
        lostInNetwork++;
        continue;
      }
      const send = k * senderPeriod;
      let transit = base + (rnd() * 2 - 1) * o.jitterMs;
      if (rnd() < o.reorderRate) transit += frameMs * (1 + rnd());
      const p: SimPacket = {
        sequence: (0xff00 + k) & 0xffff,
        timestamp: (0xffff_0000 + k * frameTicks) >>> 0,
        ssrc: 0x1234,
        marker: k === 0,
        payloadType: 0,
        payload,
        sent: send,
        arrival: send + transit,
      };
      let i = inFlight.length;
      while (i > 0 && inFlight[i - 1]!.arrival > p.arrival) i--;
      inFlight.splice(i, 0, p);
    }
    let n = 0;
    while (n < inFlight.length && inFlight[n]!.arrival <= now) jb.put(inFlight[n]!, inFlight[n++]!.arrival);
    inFlight.splice(0, n);
    const f = jb.get(now);
    frames++;
    if (f.kind === 'audio') {
      const d = now - f.packet.arrival;
      delays.push(d);
      e2e.push(now - f.packet.sent);
      const w = Math.floor(now / windowMs);
      (windows[w] ??= []).push(d);
    }
  }
  const s = jb.stats;
  return {
    sent,
    lostInNetwork,
    frames,
    delay: summarize(delays),
    endToEndP50: summarize(e2e).p50,
    windowP50: windows.map((w) => summarize(w).p50),
    concealed: s.concealed,
    late: s.late,
    inserted: s.inserted,
    dropped: s.dropped,
    underruns: s.underruns,
    resyncs: s.resyncs,
    jitterMs: s.jitterMs,
    targetDelayMs: s.targetDelayMs,
  };
}

/** min / median / 95th percentile / max of `values` (NaN for none). */
export function summarize(values: number[]): DelaySummary {
  if (values.length === 0) return { min: Number.NaN, p50: Number.NaN, p95: Number.NaN, max: Number.NaN };
  const s = Float64Array.from(values).sort();
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))]!;
  return { min: s[0]!, p50: q(0.5), p95: q(0.95), max: s[s.length - 1]! };
}

/** One line for a test comment or a bench report. */
export function formatJitterSim(label: string, r: JitterSimResult): string {
  const f = (v: number) => v.toFixed(1);
  return (
    `${label}: buffer delay ms min/p50/p95/max ${f(r.delay.min)}/${f(r.delay.p50)}/${f(r.delay.p95)}/${f(r.delay.max)}, ` +
    `end-to-end p50 ${f(r.endToEndP50)}, 10-min p50s [${r.windowP50.map(f).join(' ')}], ` +
    `frames ${r.frames}, network loss ${r.lostInNetwork}, concealed ${r.concealed}, late ${r.late}, ` +
    `drift inserts ${r.inserted}, drift drops ${r.dropped}, underruns ${r.underruns}, resyncs ${r.resyncs}, ` +
    `jitter ${f(r.jitterMs)} ms, target ${f(r.targetDelayMs)} ms`
  );
}
