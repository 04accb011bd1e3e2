import t from 'tap';
import { PcmFifo } from '../../src/media/pcm-fifo.ts';
import { prng } from '../helpers/prng.ts';

/** Samples counting up from `from`, wrapping at 16 bits. */
function ramp(from: number, n: number): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = ((from + i) << 16) >> 16;
  return out;
}

t.test('samples come out in order, whatever the push and take sizes', async (t) => {
  const cases = [
    { name: '20 ms at 48 kHz in, 10 ms out', push: () => 960, take: () => 480, rounds: 200 },
    { name: 'resampler output ±1 sample, 160 out', push: (i: number) => 159 + (i % 3), take: () => 160, rounds: 300 },
    { name: 'one sample at a time', push: () => 1, take: () => 1, rounds: 5000 },
    { name: 'bursts larger than the initial buffer', push: (i: number) => (i % 5 === 0 ? 9000 : 10), take: () => 1900, rounds: 60 },
  ];
  for (const c of cases) {
    const fifo = new PcmFifo();
    let pushed = 0;
    let taken = 0;
    let mismatches = 0;
    for (let i = 0; i < c.rounds; i++) {
      const n = c.push(i);
      fifo.push(ramp(pushed, n));
      pushed += n;
      while (fifo.length >= c.take()) {
        const want = c.take();
        const out = fifo.take(want);
        const expected = ramp(taken, want);
        for (let k = 0; k < want; k++) if (out[k] !== expected[k]) mismatches++;
        taken += want;
      }
      if (fifo.length !== pushed - taken) t.fail(`${c.name}: length ${fifo.length} after round ${i}, expected ${pushed - taken}`);
    }
    t.equal(mismatches, 0, `${c.name}: ${taken} samples in order`);
    t.equal(fifo.length, pushed - taken, `${c.name}: ${fifo.length} left`);
  }
});

t.test('random sizes against a reference queue', async (t) => {
  const random = prng(7);
  const fifo = new PcmFifo();
  const reference: number[] = [];
  let next = 0;
  let bad = 0;
  for (let i = 0; i < 2000; i++) {
    if (random() < 0.5) {
      const n = Math.floor(random() * (random() < 0.05 ? 20000 : 700));
      const pcm = ramp(next, n);
      next += n;
      fifo.push(pcm);
      reference.push(...pcm);
    } else {
      const n = Math.floor(random() * 900);
      const out = fifo.take(n);
      const expected = reference.splice(0, n);
      while (expected.length < n) expected.push(0);
      if (out.length !== n || out.some((v, k) => v !== expected[k])) bad++;
    }
    if (fifo.length !== reference.length) bad++;
  }
  t.equal(bad, 0, 'every take matched the reference (zero-padded when short)');
});

t.test('taking more than is queued pads with zeros and empties the queue', async (t) => {
  const fifo = new PcmFifo();
  t.same([...fifo.take(3)], [0, 0, 0], 'empty: all zeros');
  fifo.push(Int16Array.of(5, -6, 7));
  t.same([...fifo.take(5)], [5, -6, 7, 0, 0], 'queued samples first, then zeros');
  t.equal(fifo.length, 0, 'empty afterwards');
  fifo.push(Int16Array.of(1, 2));
  t.same([...fifo.take(0)], [], 'take(0) is empty');
  t.equal(fifo.length, 2, 'and leaves the queue alone');
  fifo.push(new Int16Array(0));
  t.equal(fifo.length, 2, 'pushing nothing changes nothing');
  const out = fifo.take(1);
  out[0] = 99;
  t.same([...fifo.take(1)], [2], 'take returns a fresh array, not a view of the queue');
  const big = ramp(-30000, 100_000);
  fifo.push(big);
  t.equal(fifo.length, 100_000, 'grows past its initial size');
  t.same(fifo.take(100_000), big, 'and gives back every sample');
});
