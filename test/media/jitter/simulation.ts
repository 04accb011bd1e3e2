import t from 'tap';
import { formatJitterSim, runJitterSim } from '../../helpers/jitter-sim.ts';

const HOUR = 3_600_000;

t.test('one hour with ±40 ms jitter, 5 % loss, 1 % reordering and ±100 ppm drift: delay stays put', async (t) => {
  for (const driftPpm of [100, -100]) {
    const r = runJitterSim({ seed: 2024, durationMs: HOUR, driftPpm, jitterMs: 40, lossRate: 0.05, reorderRate: 0.01 });
    t.comment(formatJitterSim(`${driftPpm > 0 ? '+' : ''}${driftPpm} ppm`, r));
    const first = r.windowP50[0]!;
    const last = r.windowP50[r.windowP50.length - 1]!;
    t.equal(r.windowP50.length, 6, 'six 10-minute windows');
    t.ok(Math.abs(last - first) <= 10, `${driftPpm} ppm: last 10 min p50 ${last.toFixed(1)} ms within 10 ms of the first ${first.toFixed(1)} ms`);
    t.ok(Math.max(...r.windowP50) - Math.min(...r.windowP50) <= 10, `${driftPpm} ppm: no window drifts away`);
    t.ok(r.delay.p95 < 120, `${driftPpm} ppm: p95 buffering delay ${r.delay.p95.toFixed(1)} ms`);
    t.ok(r.underruns < r.frames * 0.005, `${driftPpm} ppm: underruns bounded (${r.underruns} in ${r.frames} frames)`);
    t.ok(r.late < r.sent * 0.01, `${driftPpm} ppm: under 1 % late (${r.late})`);
    // 100 ppm over an hour is 360 ms, 18 frames of 20 ms, taken out (sender fast) or added (slow).
    const net = driftPpm > 0 ? r.dropped - r.inserted : r.inserted - r.dropped;
    t.ok(net >= 14 && net <= 24, `${driftPpm} ppm: ${net} net drift adjustments for 18 frames of drift`);
    t.ok(r.concealed <= r.lostInNetwork + r.late + r.inserted + 50, 'concealment only where packets were lost or late');
    t.equal(r.resyncs, 0, 'no resyncs');
  }
});

t.test('a clean path settles at the minimum delay and the simulation is deterministic', async (t) => {
  const opts = { seed: 1, durationMs: 120_000, driftPpm: 0, jitterMs: 0, lossRate: 0, reorderRate: 0 };
  const a = runJitterSim(opts);
  const b = runJitterSim(opts);
  t.same(a, b, 'same seed, same figures');
  t.comment(formatJitterSim('clean path, 2 min', a));
  t.equal(a.concealed, 0, 'nothing concealed');
  t.equal(a.late, 0, 'nothing late');
  t.ok(a.windowP50[0]! <= 20 + 25, 'median delay within the band above the 20 ms minimum');
});
