import t from 'tap';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { RotaryDecoder, type RotaryDigit, type RotaryOptions, type RotaryRejection } from '../../src/phone/rotary-decoder.ts';
import { numberTrain, pulseTrain, replay, transition, type Edge } from '../helpers/pulse-trains.ts';
import { prng } from '../helpers/prng.ts';

interface Run {
  digits: RotaryDigit[];
  rejected: RotaryRejection[];
  /** Clock time at which each digit or rejection was reported. */
  reportedAt: number[];
  decoder: RotaryDecoder;
  log: MemoryLogger;
}

function decode(edges: Edge[], options: Partial<RotaryOptions> = {}, batch = false): Run {
  const clock = new ManualClock(0);
  const log = new MemoryLogger();
  const run: Run = { digits: [], rejected: [], reportedAt: [], decoder: undefined as unknown as RotaryDecoder, log };
  run.decoder = new RotaryDecoder(
    clock,
    {
      digit: (d) => {
        run.digits.push(d);
        run.reportedAt.push(clock.now());
      },
      rejected: (r) => {
        run.rejected.push(r);
        run.reportedAt.push(clock.now());
      },
    },
    options,
    log,
  );
  const feed = (e: Edge): void => run.decoder.input(e.role as 'pulse' | 'offNormal', e.active, e.at);
  if (batch) {
    // Everything delivered at once, long after it happened (a stalled event loop).
    const sorted = [...edges].sort((a, b) => a.at - b.at);
    clock.advance(sorted.at(-1)!.at + 50);
    for (const e of sorted) feed(e);
    clock.advance(2000);
  } else {
    replay(clock, edges, feed);
  }
  return run;
}

const DIGITS = [...'1234567890'];
const SPEEDS = [7, 10, 12];
const RATIOS = [0.55, 0.6, 0.7];
const close = (a: number | undefined, b: number): boolean => a !== undefined && Math.abs(a - b) < 1e-3;

t.test('every digit at 7, 10 and 12 pps with 55, 60 and 70 % break decodes, with bounce and with or without off-normal', async (t) => {
  let trains = 0;
  let correct = 0;
  for (const pps of SPEEDS) {
    for (const breakRatio of RATIOS) {
      for (const bounce of [false, true]) {
        for (const offNormal of [false, true]) {
          const name = `${pps} pps, ${Math.round(breakRatio * 100)} % break, ${bounce ? 'bounce' : 'clean'}, ${offNormal ? 'off-normal' : 'pulse contact only'}`;
          const rand = bounce ? prng(pps * 1000 + breakRatio * 100) : undefined;
          const got: string[] = [];
          let measured = true;
          for (const digit of DIGITS) {
            const run = decode(pulseTrain({ digit, pps, breakRatio, rand, offNormal }, 1000).edges);
            trains++;
            const d = run.digits[0];
            if (run.digits.length === 1 && run.rejected.length === 0 && d?.digit === digit) correct++;
            got.push(run.digits.map((x) => x.digit).join('') + run.rejected.map((r) => `!${r.code}`).join(''));
            if (d && d.pulses > 1 && !(close(d.pps, pps) && close(d.breakRatio, breakRatio))) measured = false;
          }
          t.same(got, DIGITS, `${name}: one digit per train`);
          t.ok(measured, `${name}: speed and break ratio measured exactly through bounce`);
        }
      }
    }
  }
  t.equal(correct, trains);
  t.comment(`single-digit table: ${trains} trains (10 digits x 3 speeds x 3 ratios x bounce/clean x with/without off-normal), ${correct} correct`);
});

t.test('a whole number 0123456789 in one stream, inter-digit pauses 300-800 ms', async (t) => {
  const pauses = [300, 800, 355, 420, 510, 600, 690, 333, 760];
  let streams = 0;
  let digits = 0;
  for (const pps of SPEEDS) {
    for (const breakRatio of RATIOS) {
      for (const bounce of [false, true]) {
        for (const offNormal of [false, true]) {
          const rand = bounce ? prng(7 + pps + breakRatio) : undefined;
          const run = decode(numberTrain('0123456789', { pps, breakRatio, rand, offNormal }, 1000, (i) => pauses[i % pauses.length]!));
          const got = run.digits.map((d) => d.digit).join('');
          t.equal(got, '0123456789', `${pps} pps, ${Math.round(breakRatio * 100)} %, ${bounce ? 'bounce' : 'clean'}, ${offNormal ? 'off-normal' : 'no off-normal'}`);
          t.equal(run.rejected.length, 0);
          streams++;
          if (got === '0123456789') digits += 10;
        }
      }
    }
  }
  t.comment(`number table: ${streams} streams of "0123456789", ${digits} of ${streams * 10} digits correct`);
});

t.test('dials outside 7-12 pps or 55-70 % break are rejected with a reason, never read as a digit', async (t) => {
  // Rejected = reported through `rejected` with a code. Exceptions, both for digit 1 (one break,
  // so no speed or ratio to measure): a lone break shorter than any pulse, with no off-normal
  // contact to show the dial moved, is line noise and dropped; one of plausible width is a 1.
  const cases: [name: string, pps: number, breakRatio: number, expect: (digit: string, offNormal: boolean) => string][] = [
    ['5 pps (too slow)', 5, 0.6, (d) => (d === '1' ? 'breakWidth' : 'rate')],
    ['20 pps (too fast)', 20, 0.6, (d, on) => (d === '1' ? (on ? 'breakWidth' : 'noise') : 'rate')],
    ['40 % break at 10 pps', 10, 0.4, (d, on) => (d === '1' ? (on ? 'breakWidth' : 'noise') : 'breakRatio')],
    // A single 80 ms break is a plausible pulse on its own: a lone pulse has no ratio to judge.
    ['80 % break at 10 pps', 10, 0.8, (d) => (d === '1' ? 'accepted' : 'breakRatio')],
  ];
  let trains = 0;
  for (const [name, pps, breakRatio, expect] of cases) {
    for (const offNormal of [false, true]) {
      const got: string[] = [];
      const want: string[] = [];
      for (const digit of DIGITS) {
        const bad = pulseTrain({ digit, pps, breakRatio, rand: prng(trains), offNormal }, 1000);
        const good = pulseTrain({ digit: '5', pps: 10, breakRatio: 0.6, rand: prng(trains + 1), offNormal }, bad.endMs + 700);
        const run = decode([...bad.edges, ...good.edges]);
        trains++;
        got.push(`${run.rejected.map((r) => r.code).join(',') || (run.decoder.stats.noise ? 'noise' : '')}/${run.digits.map((d) => d.digit).join('')}`);
        const verdict = expect(digit, offNormal);
        want.push(verdict === 'accepted' ? `/${digit}5` : `${verdict}/5`);
      }
      t.same(got, want, `${name}, ${offNormal ? 'with' : 'without'} off-normal: reject code per digit, then a good 5 still decodes`);
    }
  }
  t.comment(`bad-dial table: ${trains} trains, each rejected with the expected code (digit 1: noise or accepted, see above) and followed by a correct digit`);
});

t.test('nonsense trains are rejected', async (t) => {
  const rand = prng(99);
  const ok = { pps: 10, breakRatio: 0.6, rand };
  const cases: [name: string, edges: Edge[], code: string, reason: RegExp][] = [
    ['eleven pulses', pulseTrain({ ...ok, pulses: 11 }, 1000).edges, 'tooManyPulses', /^11 pulses/],
    ['a third break held 300 ms', [...pulseTrain({ ...ok, pulses: 2 }, 1000).edges, ...transition('pulse', true, 1200, rand), ...transition('pulse', false, 1500, rand)], 'breakWidth', /break 3 lasted 300 ms/],
    ['a make of 100 ms inside a digit', [...pulseTrain({ ...ok, pulses: 3 }, 1000).edges, ...pulseTrain({ ...ok, pulses: 3 }, 1360).edges], 'makeWidth', /make 3 lasted 100 ms/],
    ['a 20 ms break inside a digit', [...pulseTrain({ ...ok, pulses: 3 }, 1000).edges, ...transition('pulse', true, 1300, rand), ...transition('pulse', false, 1320, rand)], 'breakWidth', /break 4 lasted 20 ms/],
    ['a pause of 299 ms joins 2 and 3 into one slow train', numberTrain('23', ok, 1000, () => 299), 'rate', /^6\.1 pps outside 6\.7-12\.6 pps/],
  ];
  for (const [name, edges, code, reason] of cases) {
    const run = decode(edges);
    t.same(run.digits, [], `${name}: no digit`);
    t.same(run.rejected.map((r) => r.code), [code], `${name}: ${code}`);
    t.match(run.rejected[0]?.reason, reason, `${name}: reason names the measurement`);
    t.ok(run.log.records.some((r) => r.level === 'warn' && r.fields.code === code), `${name}: logged as a warning`);
  }
});

t.test('inter-digit pause: 300 ms ends a digit', async (t) => {
  const run = decode(numberTrain('23', { pps: 10, breakRatio: 0.6 }, 1000, () => 300));
  t.same(run.digits.map((d) => d.digit), ['2', '3']);
});

t.test('a digit is reported when the pause reaches 300 ms (plus the debounce), or when the off-normal contact returns', async (t) => {
  const plain = pulseTrain({ digit: '3', pps: 10, breakRatio: 0.6 }, 1000);
  const a = decode(plain.edges);
  t.equal(a.digits[0]?.endMs, plain.endMs);
  t.equal(a.reportedAt[0], plain.endMs + 300 + 8);
  const withOffNormal = pulseTrain({ digit: '3', pps: 10, breakRatio: 0.6, offNormal: true }, 1000);
  const b = decode(withOffNormal.edges);
  t.equal(b.reportedAt[0], plain.endMs + 40 + 8, 'off-normal return (40 ms after the last break) plus the debounce');
});

t.test('contact bounce, glitches and duplicate edges never make a digit', async (t) => {
  const cases: [name: string, edges: Edge[], noise: number, glitches: number][] = [
    ['isolated 3 ms spikes on a closed contact', [1000, 1500, 2200].flatMap((at) => [...transition('pulse', true, at), ...transition('pulse', false, at + 3)]), 0, 3],
    ['a lone 20 ms break', [...transition('pulse', true, 1000, prng(1)), ...transition('pulse', false, 1020, prng(2))], 1, 0],
    ['a lone 40 ms break', [...transition('pulse', true, 1000), ...transition('pulse', false, 1040)], 1, 0],
    ['off-normal moved with no pulses', [...transition('offNormal', true, 1000, prng(3)), ...transition('offNormal', false, 1400, prng(4))], 0, 0],
  ];
  for (const [name, edges, noise, glitches] of cases) {
    const run = decode(edges);
    t.same(run.digits, [], `${name}: no digit`);
    t.same(run.rejected, [], `${name}: no rejection`);
    t.equal(run.decoder.stats.noise, noise, `${name}: noise count`);
    t.equal(run.decoder.stats.glitches, glitches, `${name}: glitch count`);
  }
  const doubled = pulseTrain({ digit: '7', pps: 10, breakRatio: 0.6 }, 1000).edges.flatMap((e) => [e, { ...e, at: e.at + 2 }]);
  const run = decode(doubled);
  t.same(run.digits.map((d) => d.digit), ['7'], 'every edge reported twice ("active" twice in a row): still 7');
  t.equal(run.decoder.stats.duplicateEdges, 14);
  t.ok(close(run.digits[0]?.breakRatio, 0.6), 'widths taken from the first of the duplicates');
});

t.test('edges delivered late in one batch decode exactly as on time', async (t) => {
  const edges = numberTrain('908', { pps: 12, breakRatio: 0.7, rand: prng(5) }, 1000, () => 400);
  const run = decode(edges, {}, true);
  t.same(run.digits.map((d) => d.digit), ['9', '0', '8']);
  t.ok(run.digits.every((d) => close(d.pps, 12) && close(d.breakRatio, 0.7)));
});

t.test('the off-normal contact returning during the last break ends the digit at that break', async (t) => {
  const train = pulseTrain({ digit: '4', pps: 10, breakRatio: 0.6 }, 1000);
  const edges = [...transition('offNormal', true, 900), ...train.edges, ...transition('offNormal', false, train.endMs - 20)];
  const run = decode(edges);
  t.same(run.digits.map((d) => d.digit), ['4']);
});

t.test('tolerances: the derived limits and custom options', async (t) => {
  const run = decode([]);
  const l = run.decoder.limits;
  t.same(l.pps.map((x) => +x.toFixed(2)), [6.65, 12.6]);
  t.same(l.breakRatio.map((x) => +x.toFixed(2)), [0.52, 0.73]);
  t.same(l.breakMs.map((x) => +x.toFixed(1)), [41.3, 109.8]);
  t.same(l.makeMs.map((x) => +x.toFixed(1)), [21.4, 72.2]);
  const strict = decode(pulseTrain({ digit: '6', pps: 12, breakRatio: 0.6 }, 1000).edges, { maxPps: 11, rateTolerance: 0 });
  t.same(strict.rejected.map((r) => r.code), ['rate'], '12 pps rejected when the maximum is 11');
  t.throws(() => decode([], { interDigitMs: 60 }), /interDigitMs 60 must exceed the longest make/);
  t.throws(() => decode([], { minPps: 12, maxPps: 7 }), /bad timing limits/);
});
