/**
 * Synthetic rotary-dial and hook-switch edge streams for the phone input decoder tests, with
 * optional contact bounce, and a driver that replays them on a ManualClock.
 */
import type { InputRole } from '../../src/hardware/types.ts';
import { ManualClock } from '../../src/runtime/clock.ts';

/** Times on a 1/1024 ms grid, so sums and differences of them are exact in floating point. */
export const q = (ms: number): number => Math.round(ms * 1024) / 1024;

export interface Edge {
  role: InputRole;
  active: boolean;
  at: number;
}

/**
 * The transition of `role` to `active` at `at`; with `rand`, followed by 2-4 glitches back to
 * the old level, each 0.3-0.8 ms long and all over within 5 ms (contact bounce).
 */
export function transition(role: InputRole, active: boolean, at: number, rand?: () => number): Edge[] {
  const edges: Edge[] = [{ role, active, at: q(at) }];
  if (!rand) return edges;
  const glitches = 2 + Math.floor(rand() * 3);
  for (let i = 0; i < glitches; i++) {
    const start = at + 0.5 + i * 1.1 + rand() * 0.3;
    edges.push({ role, active: !active, at: q(start) }, { role, active, at: q(start + 0.3 + rand() * 0.5) });
  }
  return edges;
}

export interface TrainSpec {
  /** The digit dialled (`0` = ten pulses), or a pulse count with `pulses`. */
  digit?: string;
  pulses?: number;
  pps: number;
  /** Break share of each pulse period (0.6 = 60 ms break, 40 ms make at 10 pps). */
  breakRatio: number;
  /** Bounce on every transition. */
  rand?: () => number;
  /** Drive the off-normal contact around the train (active 100 ms before, rest 40 ms after). */
  offNormal?: boolean;
  /** Pulses through the hook switch (break = on-hook) instead of the pulse contact. */
  viaHook?: boolean;
}

/** Edges of one digit whose first break starts at `startMs`; `endMs` is the end of the last break. */
export function pulseTrain(spec: TrainSpec, startMs: number): { edges: Edge[]; endMs: number } {
  const n = spec.pulses ?? (spec.digit === '0' ? 10 : Number(spec.digit));
  const period = 1000 / spec.pps;
  const breakMs = period * spec.breakRatio;
  const role: InputRole = spec.viaHook ? 'hook' : 'pulse';
  const breakLevel = !spec.viaHook;
  const edges: Edge[] = [];
  if (spec.offNormal) edges.push(...transition('offNormal', true, startMs - 100, spec.rand));
  let endMs = startMs;
  for (let i = 0; i < n; i++) {
    const s = q(startMs + i * period);
    endMs = q(s + breakMs);
    edges.push(...transition(role, breakLevel, s, spec.rand), ...transition(role, !breakLevel, endMs, spec.rand));
  }
  if (spec.offNormal) edges.push(...transition('offNormal', false, endMs + 40, spec.rand));
  return { edges, endMs };
}

/** A whole number: digits with the given pauses (last break end to next first break start). */
export function numberTrain(number: string, spec: Omit<TrainSpec, 'digit' | 'pulses'>, startMs: number, pauses: (i: number) => number): Edge[] {
  const edges: Edge[] = [];
  let at = startMs;
  [...number].forEach((digit, i) => {
    const train = pulseTrain({ ...spec, digit }, at);
    edges.push(...train.edges);
    at = train.endMs + pauses(i);
  });
  return edges;
}

/**
 * Replays `edges` in time order: the clock is advanced to each edge's time (firing due timers)
 * before it is fed, then `tailMs` further.
 */
export function replay(clock: ManualClock, edges: Edge[], feed: (edge: Edge) => void, tailMs = 2000): void {
  for (const edge of [...edges].sort((a, b) => a.at - b.at)) {
    if (edge.at > clock.now()) clock.advance(edge.at - clock.now());
    feed(edge);
  }
  clock.advance(tailMs);
}
