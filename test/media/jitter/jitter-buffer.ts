import t from 'tap';
import { JitterBuffer } from '../../../src/media/jitter/jitter-buffer.ts';
import type { JitterBufferOptions, JitterPacket, PlayoutFrame } from '../../../src/media/jitter/jitter-buffer.ts';
import { prng } from '../../helpers/prng.ts';

/** One received packet: sequence, timestamp, arrival (ms), optional payload type / SSRC / marker. */
interface Row {
  seq: number;
  ts: number;
  at: number;
  pt?: number;
  ssrc?: number;
  m?: boolean;
}

const PCMU = 0;
const CN = 13;
const EVENT = 101;

function options(extra: Partial<JitterBufferOptions> = {}): JitterBufferOptions {
  return {
    clockRate: 8000,
    frameTicks: 160,
    minDelayMs: 40,
    maxDelayMs: 200,
    initialDelayMs: 40,
    classify: (pt) => (pt === EVENT ? 'event' : pt === CN ? 'cn' : 'audio'),
    ...extra,
  };
}

function packet(r: Row): JitterPacket {
  return {
    sequence: r.seq,
    timestamp: r.ts >>> 0,
    ssrc: r.ssrc ?? 0xabc,
    marker: r.m ?? false,
    payloadType: r.pt ?? PCMU,
    payload: new Uint8Array(160),
  };
}

/** `A7` audio of seq 7 (`A7+160` at an offset), `L` lost (`L>8`: seq 8 follows), `I` inserted, `C9` CN, `.` silence. */
function code(f: PlayoutFrame<JitterPacket>): string {
  switch (f.kind) {
    case 'audio':
      return `A${f.packet.sequence}${f.offsetTicks ? `+${f.offsetTicks}` : ''}`;
    case 'lost':
      return f.inserted ? 'I' : f.next ? `L>${f.next.sequence}` : 'L';
    case 'cn':
      return `C${f.packet.sequence}`;
    case 'silence':
      return '.';
  }
}

/** Gets every 20 ms from t=0 for `frames` frames; before each get, puts the rows that have arrived. */
function drive(rows: Row[], frames: number, extra: Partial<JitterBufferOptions> = {}) {
  const jb = new JitterBuffer(options(extra));
  const outcomes: string[] = [];
  const played: string[] = [];
  let next = 0;
  for (let i = 0; i < frames; i++) {
    const now = i * 20;
    for (; next < rows.length && rows[next]!.at <= now; next++) outcomes.push(jb.put(packet(rows[next]!), rows[next]!.at));
    played.push(code(jb.get(now)));
  }
  return { played: played.join(' '), outcomes: outcomes.join(' '), stats: jb.stats };
}

/** Packets `seqs` sent every 20 ms from `firstTs`, arriving `delays[i]` ms after their send time. */
function stream(seqs: number[], firstTs = 0, delays: number[] = []): Row[] {
  return seqs.map((seq, i) => ({ seq, ts: firstTs + i * 160, at: i * 20 + (delays[i] ?? 0) }));
}

interface Case {
  name: string;
  rows: Row[];
  frames: number;
  played: string;
  outcomes?: string;
  stats?: Partial<Record<'late' | 'duplicates' | 'concealed' | 'resyncs' | 'underruns' | 'events' | 'cnFrames', number>>;
  extra?: Partial<JitterBufferOptions>;
}

const byArrival = (rows: Row[]) => [...rows].sort((a, b) => a.at - b.at);

const cases: Case[] = [
  {
    name: 'in order: played after the initial delay (40 ms + half the 25 ms band), then concealed for 100 ms, then silence',
    rows: stream([1, 2, 3, 4, 5, 6]),
    frames: 16,
    played: '. . . A1 A2 A3 A4 A5 A6 L L L L L . .',
    stats: { concealed: 5, underruns: 1 },
  },
  {
    name: 'reordered packets are played in order',
    rows: byArrival(stream([1, 2, 3, 4, 5, 6], 0, [0, 30, 5, 0, 25, 0])),
    frames: 10,
    played: '. . . A1 A2 A3 A4 A5 A6 L',
    outcomes: 'buffered buffered buffered buffered buffered buffered',
  },
  {
    name: 'the first two packets swapped: playout starts from the earlier one',
    rows: byArrival(stream([1, 2, 3, 4], 0, [25, 0, 0, 0])),
    frames: 8,
    played: '. . . A1 A2 A3 A4 L',
  },
  {
    name: 'a duplicate of a packet already played is counted as a duplicate, not as late',
    rows: byArrival([...stream([1, 2, 3, 4]), { seq: 2, ts: 160, at: 150 }]),
    frames: 12,
    played: '. . . A1 A2 A3 A4 L L L L L',
    outcomes: 'buffered buffered buffered buffered duplicate',
    stats: { duplicates: 1, late: 0 },
  },
  {
    name: 'a duplicate arriving before its frame plays is dropped',
    rows: byArrival([...stream([1, 2, 3, 4]), { seq: 3, ts: 320, at: 50 }]),
    frames: 8,
    played: '. . . A1 A2 A3 A4 L',
    outcomes: 'buffered buffered buffered duplicate buffered',
    stats: { duplicates: 1 },
  },
  {
    name: 'a packet arriving after its frame was concealed is late',
    rows: byArrival(stream([1, 2, 3, 4, 5], 0, [0, 0, 100, 0, 0])),
    frames: 9,
    played: '. . . A1 A2 L>4 A4 A5 L',
    outcomes: 'buffered buffered buffered buffered late',
    stats: { late: 1, concealed: 2 },
  },
  {
    name: 'a lost packet is concealed, with the next packet offered for FEC',
    rows: stream([1, 2, 3, 4, 5]).filter((r) => r.seq !== 3),
    frames: 9,
    played: '. . . A1 A2 L>4 A4 A5 L',
    stats: { concealed: 2, underruns: 1 },
  },
  {
    name: 'two lost packets: only the frame just before the next packet gets it',
    rows: stream([1, 2, 3, 4, 5, 6]).filter((r) => r.seq !== 3 && r.seq !== 4),
    frames: 9,
    played: '. . . A1 A2 L L>5 A5 A6',
  },
  {
    name: 'sequence numbers wrap at 65535 (with a reorder across the wrap)',
    rows: byArrival(stream([65533, 65534, 65535, 0, 1, 2], 8000, [0, 0, 15, 0, 0, 0])),
    frames: 10,
    played: '. . . A65533 A65534 A65535 A0 A1 A2 L',
  },
  {
    name: 'timestamps wrap at 2^32',
    rows: stream([10, 11, 12, 13, 14, 15], 2 ** 32 - 480),
    frames: 10,
    played: '. . . A10 A11 A12 A13 A14 A15 L',
  },
  {
    name: 'an SSRC change flushes and restarts playout on the new source',
    rows: [...stream([1, 2, 3]), ...stream([900, 901, 902], 777_000).map((r) => ({ ...r, at: r.at + 120, ssrc: 0xdef }))],
    frames: 13,
    played: '. . . A1 A2 A3 . . . A900 A901 A902 L',
    stats: { resyncs: 1 },
  },
  {
    name: 'a marker bit after silence re-anchors the playout of the new talkspurt',
    rows: [...stream([1, 2]), { seq: 3, ts: 160 * 2 + 8000, at: 1020, m: true }, { seq: 4, ts: 160 * 3 + 8000, at: 1040 }],
    frames: 57,
    played: `. . . A1 A2 L L L L L ${'. '.repeat(44)}A3 A4 L`,
    stats: { resyncs: 0 },
  },
  {
    name: 'a timestamp jump without a marker resyncs',
    rows: [...stream([1, 2, 3]), ...stream([4, 5, 6], 160 * 3 + 800_000).map((r) => ({ ...r, at: r.at + 120 }))],
    frames: 13,
    played: '. . . A1 A2 A3 . . . A4 A5 A6 L',
    stats: { resyncs: 1 },
  },
  {
    name: 'telephone events are passed through at once and never played',
    rows: byArrival([...stream([1, 2, 4, 5]).map((r, i) => ({ ...r, ts: i * 160 })), { seq: 3, ts: 160, at: 25, pt: EVENT }]),
    frames: 8,
    played: '. . . A1 A2 A4 A5 L',
    outcomes: 'buffered buffered event buffered buffered',
    stats: { events: 1 },
  },
  {
    name: 'comfort noise is played from the CN packet until the next talkspurt',
    rows: [...stream([1, 2]), { seq: 3, ts: 320, at: 40, pt: CN }, { seq: 4, ts: 320 + 1600, at: 240, m: true }],
    frames: 17,
    played: '. . . A1 A2 C3 C3 C3 C3 C3 C3 C3 C3 C3 C3 A4 L',
    stats: { cnFrames: 10, concealed: 1 },
  },
  {
    name: '40 ms packets are played as two 20 ms frames with offsets',
    rows: [1, 2, 3].map((seq, i) => ({ seq, ts: i * 320, at: i * 40 })),
    frames: 10,
    played: '. . . A1 A1+160 A2 A2+160 A3 A3+160 L',
    extra: { durationTicks: (p) => p.payload.length * 2 },
  },
];

t.test('playout tables: {seq, ts, arrival} in, frames out', async (t) => {
  for (const c of cases) {
    const r = drive(c.rows, c.frames, c.extra);
    t.equal(r.played, c.played, `${c.name}: frames`);
    if (c.outcomes) t.equal(r.outcomes, c.outcomes, `${c.name}: put outcomes`);
    if (c.stats) t.match(r.stats, c.stats, `${c.name}: counters`);
  }
});

/** A 20 ms stream on manual time: `delayAt(k)` is packet k's network delay; the sender runs `ppm` fast. */
function simulate(opts: {
  ms: number;
  delayAt: (k: number, sendMs: number) => number;
  ppm?: number;
  extra?: Partial<JitterBufferOptions>;
  onFrame?: (f: PlayoutFrame<JitterPacket>, now: number, jb: JitterBuffer) => void;
}) {
  const jb = new JitterBuffer(options({ minDelayMs: 20, maxDelayMs: 300, initialDelayMs: 60, ...opts.extra }));
  const period = 20 / (1 + (opts.ppm ?? 0) / 1e6);
  const inFlight: Array<{ p: JitterPacket; at: number }> = [];
  let k = 0;
  for (let now = 0; now < opts.ms; now += 20) {
    for (; k * period <= now; k++) {
      const at = k * period + opts.delayAt(k, k * period);
      let i = inFlight.length;
      while (i > 0 && inFlight[i - 1]!.at > at) i--;
      inFlight.splice(i, 0, { p: packet({ seq: k & 0xffff, ts: k * 160, at }), at });
    }
    while (inFlight.length && inFlight[0]!.at <= now) {
      const { p, at } = inFlight.shift()!;
      jb.put(p, at);
    }
    const f = jb.get(now);
    opts.onFrame?.(f, now, jb);
  }
  return jb;
}

t.test('the target delay rises under jitter and comes back down when it stops', async (t) => {
  const rnd = prng(7);
  const marks: Record<string, { target: number; level: number; late: number; inserted: number; dropped: number }> = {};
  const jitterFrom = 30_000;
  const jitterTo = 50_000;
  simulate({
    ms: 110_000,
    delayAt: (_k, send) => 50 + (send >= jitterFrom && send < jitterTo ? (rnd() * 2 - 1) * 50 : 0),
    onFrame: (_f, now, jb) => {
      if (now % 10_000 !== 0) return;
      const s = jb.stats;
      marks[now / 1000] = { target: s.targetDelayMs, level: s.levelMs, late: s.late, inserted: s.inserted, dropped: s.dropped };
    },
  });
  const row = (s: number) => marks[s]!;
  t.comment(
    Object.entries(marks)
      .map(([s, m]) => `${s}s target ${m.target.toFixed(1)} level ${m.level.toFixed(1)} late ${m.late} +${m.inserted}/-${m.dropped}`)
      .join('; '),
  );
  t.ok(row(30).target < 25, 'settles near the 20 ms minimum on a clean path');
  t.ok(row(40).target > 40, 'rises to cover ±50 ms jitter within 10 s');
  t.ok(row(40).level >= row(40).target - 5, 'the level follows the target up (frames inserted)');
  t.ok(row(40).inserted > row(30).inserted, 'by inserting frames');
  const lateDuringJitter = row(50).late - row(30).late;
  t.ok(lateDuringJitter < 1000 * 0.03, `few packets late while jittery (${lateDuringJitter} of 1000)`);
  t.ok(row(100).target < 25, 'decays back toward the minimum within a minute of calm');
  t.ok(row(100).dropped > row(50).dropped, 'by dropping frames');
  t.ok(row(100).level < row(100).target + 25 + 1, 'the level is back inside the band');
});

t.test('clock drift: adjustments wait for quiet frames, and a stateful decoder sees the dropped frame', async (t) => {
  const quiet = (p: JitterPacket) => p.sequence % 25 === 0;
  let drops = 0;
  let quietDrops = 0;
  let prev: PlayoutFrame<JitterPacket> | undefined;
  let inserts = 0;
  let insertsAfterQuiet = 0;
  const fast = simulate({
    ms: 300_000,
    ppm: 1000,
    delayAt: () => 50,
    extra: { isQuiet: quiet },
    onFrame: (f) => {
      if (f.kind === 'audio' && f.dropped) {
        drops++;
        if (quiet(f.dropped.packet)) quietDrops++;
      }
    },
  });
  t.comment(`sender 1000 ppm fast for 300 s: ${fast.stats.dropped} frames dropped, level ${fast.stats.levelMs.toFixed(1)} ms`);
  t.ok(fast.stats.dropped >= 14 && fast.stats.dropped <= 18, 'about 300 ms of surplus dropped as ~15 frames');
  t.equal(quietDrops, drops, 'every dropped frame was a quiet one');
  t.equal(drops, fast.stats.dropped, 'each drop is reported with the frame that follows');
  t.ok(fast.stats.levelMs <= fast.stats.targetDelayMs + 25 + 1, 'the level stays in its band');

  const slow = simulate({
    ms: 300_000,
    ppm: -1000,
    delayAt: () => 50,
    extra: { isQuiet: quiet },
    onFrame: (f) => {
      if (f.kind === 'lost' && f.inserted) {
        inserts++;
        if (prev?.kind === 'audio' && quiet(prev.packet)) insertsAfterQuiet++;
      }
      prev = f;
    },
  });
  t.comment(`sender 1000 ppm slow for 300 s: ${slow.stats.inserted} frames inserted, ${slow.stats.underruns} underruns`);
  t.ok(slow.stats.inserted >= 13 && slow.stats.inserted <= 17, 'about 300 ms of deficit inserted as ~15 frames');
  t.equal(insertsAfterQuiet, inserts, 'every inserted frame follows a quiet one');
  t.equal(slow.stats.underruns, 0, 'never ran dry');
});

t.test('a 2 s step in path delay restarts playout instead of discarding the stream as late', async (t) => {
  let audioAfter = 0;
  const jb = simulate({
    ms: 20_000,
    delayAt: (_k, send) => (send < 10_000 ? 50 : 2050),
    onFrame: (f, now) => {
      if (now >= 15_000 && f.kind === 'audio') audioAfter++;
    },
  });
  t.equal(jb.stats.resyncs, 1, 'one resync');
  t.ok(jb.stats.late <= 5, `only the run that triggered it is late (${jb.stats.late})`);
  t.ok(audioAfter >= 245, `plays on after the step (${audioAfter} of 250 frames)`);
});

t.test('misaligned timestamps are snapped to frame boundaries', async (t) => {
  const rows: Row[] = [...stream([1, 2, 3]), ...stream([4, 5, 6], 480 + 40).map((r) => ({ ...r, at: r.at + 60 }))];
  const r = drive(rows, 11);
  t.equal(r.played, '. . . A1 A2 A3 A4 A5 A6 L L', 'a 5 ms timestamp offset does not cost a frame');
});

t.test('rejects impossible options', async (t) => {
  t.throws(() => new JitterBuffer(options({ frameTicks: 0 })), RangeError);
  t.throws(() => new JitterBuffer(options({ minDelayMs: 100, maxDelayMs: 50 })), RangeError);
});
