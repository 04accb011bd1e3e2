import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  EV_KEY,
  EV_SYN,
  EvdevReader,
  InputEventFramer,
  KernelTimeline,
  decodeInputEvent,
  defaultInputEventSize,
  encodeInputEvent,
  type EvdevFs,
  type InputEvent,
  type InputEventSize,
  type TimedInputEvent,
} from '../../src/hardware/backends/evdev-reader.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';

const SIZES: InputEventSize[] = [24, 16];

/** A press/release of KEY_H (35) with its EV_SYN reports, as gpio-keys sends them. */
const SAMPLE: InputEvent[] = [
  { sec: 1_700_000_000, usec: 100_000, type: EV_KEY, code: 35, value: 1 },
  { sec: 1_700_000_000, usec: 100_000, type: EV_SYN, code: 0, value: 0 },
  { sec: 1_700_000_000, usec: 160_250, type: EV_KEY, code: 35, value: 0 },
  { sec: 1_700_000_000, usec: 160_250, type: EV_SYN, code: 0, value: 0 },
];

function encodeAll(events: readonly InputEvent[], size: InputEventSize, le = true): Buffer {
  const buf = Buffer.alloc(events.length * size);
  events.forEach((e, i) => encodeInputEvent(e, size, le, buf, i * size));
  return buf;
}

t.test('record size follows the Node binary word size', async (t) => {
  const cases: [string, InputEventSize][] = [
    ['arm', 16],
    ['ia32', 16],
    ['arm64', 24],
    ['x64', 24],
    ['riscv64', 24],
  ];
  for (const [arch, size] of cases) t.equal(defaultInputEventSize(arch), size, arch);
});

t.test('input_event round-trips in both layouts and byte orders, at an offset', async (t) => {
  const cases: { name: string; ev: InputEvent }[] = [
    { name: 'key press', ev: { sec: 1_700_000_123, usec: 999_999, type: EV_KEY, code: 116, value: 1 } },
    { name: 'negative value', ev: { sec: 5, usec: 0, type: 3, code: 0x35, value: -32768 } },
    { name: 'max code', ev: { sec: 4_000_000_000, usec: 1, type: 0xffff, code: 0xffff, value: 0x7fffffff } },
  ];
  for (const size of SIZES) {
    for (const le of [true, false]) {
      for (const c of cases) {
        const buf = Buffer.alloc(size + 11, 0xaa);
        encodeInputEvent(c.ev, size, le, buf, 7);
        t.same(decodeInputEvent(buf, 7, size, le), c.ev, `${c.name} ${size} ${le ? 'LE' : 'BE'}`);
        t.same(encodeInputEvent(decodeInputEvent(buf, 7, size, le), size, le), buf.subarray(7, 7 + size), `${c.name} re-encodes`);
      }
    }
  }
  t.test('layout matches struct input_event field offsets', async (t) => {
    const ev = { sec: 0x01020304, usec: 0x05060708, type: 0x0a0b, code: 0x0c0d, value: 0x0e0f1011 };
    t.equal(encodeInputEvent(ev, 24).toString('hex'), '04030201000000000807060500000000' + '0b0a0d0c11100f0e');
    t.equal(encodeInputEvent(ev, 16).toString('hex'), '0403020108070605' + '0b0a0d0c11100f0e');
  });
  t.throws(() => decodeInputEvent(Buffer.alloc(23), 0, 24), /need 24 bytes at offset 0, have 23/);
  t.throws(() => decodeInputEvent(Buffer.alloc(20), 8, 16), /need 16 bytes at offset 8, have 12/);
});

t.test('framer reassembles records split at every offset', async (t) => {
  for (const size of SIZES) {
    const bytes = encodeAll(SAMPLE, size);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const framer = new InputEventFramer(size);
      const got = [...framer.push(bytes.subarray(0, cut)), ...framer.push(bytes.subarray(cut))];
      if (JSON.stringify(got) !== JSON.stringify(SAMPLE)) t.fail(`size ${size} cut at ${cut}`);
      t.equal(framer.pending, 0);
    }
    const framer = new InputEventFramer(size);
    const oneByOne: InputEvent[] = [];
    for (const byte of bytes) oneByOne.push(...framer.push(Uint8Array.of(byte)));
    t.same(oneByOne, SAMPLE, `size ${size} byte by byte`);
    const partial = new InputEventFramer(size);
    partial.push(bytes.subarray(0, size + 3));
    t.equal(partial.pending, 3, 'holds the partial record');
    partial.reset();
    t.same(partial.push(bytes.subarray(size * 2)), SAMPLE.slice(2), 'reset drops it');
  }
});

t.test('kernel timeline maps wall-clock stamps onto the monotonic scale', async (t) => {
  const K = 1_700_000_000_000;
  const cases: { name: string; batches: [number[], number][]; expect: number[][]; reanchors: number }[] = [
    {
      name: 'first batch anchors its newest event to arrival; widths kept',
      batches: [[[K, K + 60], 500]],
      expect: [[440, 500]],
      reanchors: 0,
    },
    {
      name: 'later batches keep the offset (late arrival does not move them)',
      batches: [
        [[K], 500],
        [[K + 100], 650],
        [[K + 160], 660],
      ],
      expect: [[500], [600], [660]],
      reanchors: 0,
    },
    {
      name: 'an event that would arrive before it happened re-anchors (first anchor was late)',
      batches: [
        [[K], 530],
        [[K + 100], 620],
        [[K + 160], 690],
      ],
      expect: [[530], [620], [680]],
      reanchors: 1,
    },
    {
      name: 'a wall clock stepped back (absurd lag) falls back to arrival time',
      batches: [
        [[K], 500],
        [[K - 3_600_000], 700],
      ],
      expect: [[500], [700]],
      reanchors: 1,
    },
    {
      name: 'results never go backwards',
      batches: [
        [[K, K + 40], 500],
        [[K + 10], 505],
      ],
      expect: [[460, 500], [500]],
      reanchors: 0,
    },
  ];
  for (const c of cases) {
    const tl = new KernelTimeline(5000);
    t.same(
      c.batches.map(([k, at]) => tl.map(k, at)),
      c.expect,
      c.name,
    );
    t.equal(tl.reanchors, c.reanchors, `${c.name}: reanchors`);
  }
});

/** A FIFO in a temp dir with the test's end opened read-write (never blocks, never EOFs). */
function fifo(t: { teardown(fn: () => void): void }): { path: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'evdev-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'event0');
  execFileSync('mkfifo', [path]);
  return { path, dir };
}

t.test('reader decodes records written to a FIFO in any split, with kernel times', async (t) => {
  for (const size of SIZES) {
    const { path } = fifo(t);
    const writer = openSync(path, 'r+');
    const clock = new ManualClock(10_000);
    const got: TimedInputEvent[] = [];
    const reader = new EvdevReader({ path, recordSize: size, littleEndian: true, pollMs: 10, clock, logger: new MemoryLogger(), onEvent: (e) => got.push(e) });
    reader.open();
    const bytes = encodeAll(SAMPLE, size);
    const expected = SAMPLE.map((e) => ({ ...e, atMs: 10_010 + (e.usec - 160_250) / 1000 }));
    writeSync(writer, bytes);
    clock.advance(10);
    t.same(got, expected, `${size}: one write, one poll: the newest record is "now", the rest by kernel time`);

    reader.close();
    closeSync(writer);
  }
});

/** Kernel stamp for a moment on the test clock (wall clock = monotonic + OFFSET). */
const OFFSET = 1_700_000_000_000;
function stampAt(clockMs: number, type: number, code: number, value: number): InputEvent {
  const ms = clockMs + OFFSET;
  return { sec: Math.floor(ms / 1000), usec: Math.round((ms % 1000) * 1000), type, code, value };
}

t.test('reader reassembles records split across polls at every offset, keeping kernel widths', async (t) => {
  for (const size of SIZES) {
    const { path } = fifo(t);
    const writer = openSync(path, 'r+');
    const clock = new ManualClock(0);
    const got: TimedInputEvent[] = [];
    const reader = new EvdevReader({ path, recordSize: size, littleEndian: true, pollMs: 10, clock, logger: new MemoryLogger(), onEvent: (e) => got.push(e) });
    reader.open();
    writeSync(writer, encodeInputEvent(stampAt(10, EV_SYN, 0, 0), size));
    clock.advance(10);
    t.same(got.map((e) => e.atMs), [10], `${size}: a record read at once anchors the timeline`);
    clock.advance(100);

    const recordBytes = size * 4;
    let mismatches = 0;
    for (let cut = 1; cut < recordBytes; cut++) {
      got.length = 0;
      const p1 = clock.now() + 10;
      const records = [stampAt(p1 - 70, EV_KEY, 35, 1), stampAt(p1 - 70, EV_SYN, 0, 0), stampAt(p1 - 9.75, EV_KEY, 35, 0), stampAt(p1 - 9.75, EV_SYN, 0, 0)];
      const bytes = encodeAll(records, size);
      writeSync(writer, bytes.subarray(0, cut));
      clock.advance(70);
      writeSync(writer, bytes.subarray(cut));
      clock.advance(30);
      const decoded = got.map(({ atMs: _atMs, ...e }) => e);
      if (JSON.stringify(decoded) !== JSON.stringify(records)) mismatches++;
      if (JSON.stringify(got.map((e) => e.atMs)) !== JSON.stringify([p1 - 70, p1 - 70, p1 - 9.75, p1 - 9.75])) {
        mismatches++;
        t.comment(`size ${size} cut ${cut}: ${got.map((e) => e.atMs).join(',')}`);
      }
    }
    t.equal(mismatches, 0, `${size}: every split gives the same records at their kernel times`);
    reader.close();
    closeSync(writer);
  }
});

t.test('a vanished device file is reopened with backoff: one warning, one recovery line', async (t) => {
  const { path } = fifo(t);
  let writer = openSync(path, 'r+');
  const clock = new ManualClock(0);
  const logger = new MemoryLogger();
  const got: TimedInputEvent[] = [];
  const conn: string[] = [];
  const reader = new EvdevReader({
    path,
    recordSize: 24,
    pollMs: 10,
    backoff: { initialMs: 100, maxMs: 400 },
    clock,
    logger,
    onEvent: (e) => got.push(e),
    onConnection: (up, reason) => conn.push(up ? 'up' : `down: ${reason}`),
  });
  reader.open();
  writeSync(writer, encodeAll(SAMPLE.slice(0, 2), 24));
  clock.advance(10);
  t.equal(got.length, 2);

  unlinkSync(path);
  closeSync(writer);
  clock.advance(10);
  t.notOk(reader.isOpen, 'closed after end of file on a deleted path');
  t.same(conn, ['down: device file removed']);
  clock.advance(100 + 200 + 400 + 400);
  const warns = logger.records.filter((r) => r.level === 'warn');
  t.equal(warns.length, 1, 'one warning while the device stays away');
  t.match(warns[0], { msg: 'input device lost; reopening in 100 ms', fields: { path, reason: 'device file removed', retryInMs: 100 } });
  t.equal(logger.records.filter((r) => r.level === 'debug').length, 4, 'retries are debug only');

  execFileSync('mkfifo', [path]);
  writer = openSync(path, 'r+');
  clock.advance(399);
  t.notOk(reader.isOpen, 'waits for the backoff');
  clock.advance(1);
  t.ok(reader.isOpen, 'reopened');
  t.same(conn, ['down: device file removed', 'up']);
  t.match(
    logger.records.filter((r) => r.level === 'info'),
    [{ msg: 'input device reopened', fields: { path, downMs: 1500 } }],
  );
  writeSync(writer, encodeAll(SAMPLE.slice(2), 24));
  clock.advance(10);
  t.same(
    got.map((e) => [e.code, e.value]),
    [
      [35, 1],
      [0, 0],
      [35, 0],
      [0, 0],
    ],
    'events flow from the new file',
  );
  reader.close();
  closeSync(writer);
});

t.test('read errors other than EAGAIN count as a lost device; close is idempotent', async (t) => {
  const cases: { name: string; error: string; reason: string }[] = [
    { name: 'unplugged (ENODEV)', error: 'ENODEV', reason: 'read failed: ENODEV' },
    { name: 'I/O error', error: 'EIO', reason: 'read failed: EIO' },
  ];
  for (const c of cases) {
    let failNext = false;
    const ops: string[] = [];
    const fs: EvdevFs = {
      openSync: () => {
        ops.push('open');
        return 42;
      },
      readSync: () => {
        if (failNext) throw Object.assign(new Error(c.error), { code: c.error });
        throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
      },
      closeSync: () => void ops.push('close'),
      statSync: () => ({ dev: 1, ino: 2 }),
      fstatSync: () => ({ dev: 1, ino: 2 }),
    };
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const reader = new EvdevReader({ path: '/dev/input/event9', recordSize: 24, pollMs: 10, backoff: { initialMs: 50, maxMs: 50 }, clock, logger, fs, onEvent: () => {} });
    reader.open();
    clock.advance(100);
    t.same(ops, ['open'], `${c.name}: EAGAIN just waits`);
    failNext = true;
    clock.advance(10);
    t.same(ops, ['open', 'close'], `${c.name}: closed`);
    t.match(logger.records, [{ level: 'warn', fields: { reason: c.reason } }]);
    failNext = false;
    clock.advance(50);
    t.same(ops, ['open', 'close', 'open'], `${c.name}: reopened after backoff`);
    reader.close();
    reader.close();
    t.same(ops, ['open', 'close', 'open', 'close'], `${c.name}: closed once`);
    t.same(clock.pending(), [], `${c.name}: no timers left`);
  }
});
