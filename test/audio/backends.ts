import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import t from 'tap';
import { AudioDeviceError } from '../../src/audio/audio-device.ts';
import { createAudioBackend } from '../../src/audio/backend-registry.ts';
import { AlsaAudioDevice, type AlsaBackendOptions } from '../../src/audio/backends/alsa.ts';
import { FileAudioDevice } from '../../src/audio/backends/file.ts';
import { NullAudioDevice } from '../../src/audio/backends/null.ts';
import type { ChildProcessLike, SpawnFunction } from '../../src/audio/backends/supervised-child.ts';
import { wavHeader } from '../../src/audio/wav-format.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { readWav, writeToneWav } from '../helpers/wav.ts';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A child process stand-in: stdout/stderr are fed by the test, stdin records or blocks or breaks. */
class FakeChild extends EventEmitter implements ChildProcessLike {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly stdin: Writable;
  readonly written: Buffer[] = [];
  readonly signals: string[] = [];
  exited = false;
  /** Signals this child dies of (a hung child ignores SIGTERM). */
  diesOn = new Set(['SIGTERM', 'SIGKILL']);
  /** When false, writes never complete (a stalled aplay: the pipe is full). */
  drains = true;

  constructor(
    readonly pid: number,
    readonly command: string,
    readonly args: readonly string[],
    readonly stdio: readonly string[],
  ) {
    super();
    this.stdin = new Writable({
      highWaterMark: 4096,
      write: (chunk: Buffer, _enc, cb) => {
        this.written.push(Buffer.from(chunk));
        if (this.drains) cb();
      },
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exited) return false;
    this.signals.push(signal);
    if (this.diesOn.has(signal)) setImmediate(() => this.exit(null, signal));
    return true;
  }

  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exited = true;
    this.emit('exit', code, signal);
  }

  /** aplay's banner: its device is open and it reads stdin from now on. */
  banner(): void {
    this.stderr.emit('data', Buffer.from("Playing raw data 'stdin' : Signed 16 bit Little Endian, Rate 8000 Hz, Mono\n"));
  }

  /** Raw capture bytes, as arecord would write them. */
  feed(bytes: Uint8Array): void {
    this.stdout.emit('data', Buffer.from(bytes));
  }

  writtenSamples(): Int16Array {
    const all = Buffer.concat(this.written);
    return new Int16Array(all.buffer.slice(all.byteOffset, all.byteOffset + all.length));
  }
}

function fakeSpawner() {
  const children: FakeChild[] = [];
  let pid = 1000;
  const spawn: SpawnFunction = (command, args, options) => {
    const child = new FakeChild(pid++, command, args, options.stdio);
    children.push(child);
    return child;
  };
  const latest = (command: string) => children.filter((c) => c.command === command).at(-1)!;
  return { spawn, children, latest, count: (command: string) => children.filter((c) => c.command === command).length };
}

function alsaRig(options: AlsaBackendOptions = {}, rate = 8000, frameMs = 10) {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const fake = fakeSpawner();
  const device = new AlsaAudioDevice(
    { rate, frameMs, capture: 'plughw:CARD=Device,DEV=0', playback: 'pulse' },
    { clock, logger, spawn: fake.spawn, options },
  );
  const frames: Int16Array[] = [];
  const warnings = () => logger.records.filter((r) => r.level === 'warn');
  return { clock, logger, fake, device, frames, warnings, start: () => device.start((pcm) => frames.push(pcm)) };
}

/** Little-endian bytes of `n` samples counting up from `from`. */
function ramp(from: number, n: number): Buffer {
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE((from + i) % 32768, 2 * i);
  return b;
}

t.test('alsa spawns arecord and aplay with an argument vector for raw S16_LE mono', async (t) => {
  const rig = alsaRig({ periodMs: 10, bufferMs: 40 }, 48000, 20);
  rig.start();
  const expected = (device: string) => ['-t', 'raw', '-f', 'S16_LE', '-c', '1', '-r', '48000', '--period-time=10000', '--buffer-time=40000', '-D', device];
  t.same(rig.fake.latest('arecord').args, expected('plughw:CARD=Device,DEV=0'));
  t.same(rig.fake.latest('aplay').args, expected('pulse'));
  t.same(rig.fake.latest('arecord').stdio, ['ignore', 'pipe', 'pipe']);
  t.same(rig.fake.latest('aplay').stdio, ['pipe', 'ignore', 'pipe']);
  t.throws(() => rig.start(), { code: 'AUDIO_ALREADY_STARTED' });
  await rig.device.stop();
});

t.test('alsa reassembles capture bytes into whole frames whatever the chunking', async (t) => {
  const n = 80;
  const stream = ramp(0, 3 * n);
  const splits: Array<{ name: string; chunks: number[] }> = [{ name: 'one byte at a time', chunks: Array(stream.length).fill(1) }];
  for (let k = 1; k < stream.length; k++) splits.push({ name: `split at ${k}`, chunks: [k, stream.length - k] });
  let failures = 0;
  for (const split of splits) {
    const rig = alsaRig();
    rig.start();
    let offset = 0;
    for (const size of split.chunks) {
      rig.fake.latest('arecord').feed(stream.subarray(offset, offset + size));
      offset += size;
    }
    const ok =
      rig.frames.length === 3 &&
      rig.frames.every((f, i) => f.length === n && f.every((v, j) => v === i * n + j)) &&
      rig.device.stats().captureFrames === 3;
    if (!ok) {
      failures++;
      t.fail(`${split.name}: got ${rig.frames.length} frames`);
    }
    await rig.device.stop();
  }
  t.equal(failures, 0, `${splits.length} chunkings give the same three frames`);
});

t.test('an EPIPE on aplay stdin neither throws nor logs twice; aplay is restarted', async (t) => {
  const cases = [
    { name: 'aplay exits right after the EPIPE', exits: true, msg: /^aplay exited; restarting in 100 ms$/ },
    { name: 'aplay stays alive with a broken stdin', exits: false, msg: /^aplay stdin write failed; restarting in 100 ms$/ },
  ];
  for (const c of cases) {
    const rig = alsaRig();
    rig.start();
    const first = rig.fake.latest('aplay');
    first.banner();
    rig.device.play(new Int16Array(80).fill(7));
    first.stdin.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    await tick();
    rig.device.play(new Int16Array(80));
    if (c.exits) first.exit(1);
    rig.clock.advance(250);
    await tick();
    t.equal(rig.warnings().length, 1, `${c.name}: one warning`);
    t.match(rig.warnings()[0]!.msg, c.msg, c.name);
    t.match(rig.warnings()[0]!.fields, { child: 'aplay', restartInMs: 100 }, c.name);
    if (c.exits) t.match(rig.warnings()[0]!.fields, { code: 1, error: 'stdin: write EPIPE' }, `${c.name}: exit status and cause`);
    else t.same(first.signals, ['SIGTERM'], `${c.name}: the broken child is killed`);
    rig.clock.advance(100);
    t.equal(rig.fake.count('aplay'), 2, `${c.name}: a new aplay`);
    rig.device.play(new Int16Array(80).fill(8));
    rig.fake.latest('aplay').banner();
    rig.device.play(new Int16Array(80).fill(9));
    await tick();
    t.same([...rig.fake.latest('aplay').writtenSamples()], Array(80).fill(9), `${c.name}: playback goes to the new aplay once it is ready`);
    t.equal(rig.device.stats().restarts, 1);
    await rig.device.stop();
  }
});

t.test('a capture child that exits is restarted with backoff while silence frames keep the pace', async (t) => {
  const rig = alsaRig({ backoff: { initialMs: 100, maxMs: 1000, resetAfterMs: 5000 } });
  rig.start();
  rig.fake.latest('arecord').feed(ramp(1, 80));
  t.equal(rig.frames.length, 1);
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    const spawned = rig.fake.count('arecord');
    rig.fake.latest('arecord').exit(1);
    const startedAt = rig.clock.now();
    while (rig.fake.count('arecord') === spawned) rig.clock.advance(10);
    delays.push(rig.clock.now() - startedAt);
  }
  t.same(delays, [100, 200, 400, 800, 1000, 1000], 'backoff doubles up to the maximum');
  t.equal(rig.warnings().length, 6, 'one warning per exit');
  t.match(rig.warnings()[0]!, { msg: 'arecord exited; restarting in 100 ms', fields: { child: 'arecord', code: 1, restartInMs: 100 } });
  const stats = rig.device.stats();
  t.equal(stats.silenceFrames, 350, 'silence at 10 ms per frame while arecord was down (3.5 s)');
  t.equal(stats.captureFrames, 351);
  t.ok(rig.frames.slice(1).every((f) => f.length === 80 && f.every((v) => v === 0)), 'silence frames are whole and silent');
  rig.fake.latest('arecord').feed(ramp(5, 80));
  rig.clock.advance(100);
  t.equal(rig.device.stats().silenceFrames, 350, 'real capture data ends the silence');
  t.equal(rig.frames.at(-1)![0], 5);
  for (let i = 0; i < 50; i++) {
    rig.fake.latest('arecord').feed(ramp(5, 80));
    rig.clock.advance(100);
  }
  t.equal(rig.warnings().length, 6, 'a child delivering data is not declared stalled');
  rig.fake.latest('arecord').exit(1);
  t.match(rig.warnings().at(-1)!.fields, { restartInMs: 100 }, 'backoff resets after a healthy period');
  t.equal(rig.device.stats().restarts, 6);
  await rig.device.stop();
});

t.test('a capture child that goes quiet for over a second is killed, replaced, and bridged with silence', async (t) => {
  const rig = alsaRig();
  rig.start();
  const hung = rig.fake.latest('arecord');
  hung.diesOn = new Set(['SIGKILL']);
  hung.feed(ramp(0, 80));
  rig.clock.advance(1250);
  t.equal(rig.warnings().length, 1);
  t.match(rig.warnings()[0]!, { msg: 'arecord stopped producing data; restarting in 100 ms', fields: { child: 'arecord' } });
  t.same(hung.signals, ['SIGTERM']);
  rig.clock.advance(1000);
  t.same(hung.signals, ['SIGTERM', 'SIGKILL'], 'SIGKILL when SIGTERM is ignored');
  await tick();
  t.equal(rig.fake.count('arecord'), 2, 'restarted');
  t.equal(rig.warnings().length, 1, 'the killed child exiting logs nothing more');
  t.ok(rig.device.stats().silenceFrames >= 99, `silence delivered meanwhile (${rig.device.stats().silenceFrames} frames)`);
  await rig.device.stop();
});

t.test('xruns are counted from the children\'s stderr, in any chunking, without warnings', async (t) => {
  const rig = alsaRig();
  rig.start();
  const rec = rig.fake.latest('arecord');
  const play = rig.fake.latest('aplay');
  rec.stderr.emit('data', Buffer.from("Recording raw data 'stdin' : Signed 16 bit Little Endian, Rate 8000 Hz, Mono\nover"));
  rec.stderr.emit('data', Buffer.from('run!!! (at least 12.345 ms long)\n'));
  play.stderr.emit('data', Buffer.from('underrun!!! (at least 3.1 ms long)\nunderrun!!! (at least 0.9 ms long)\n'));
  t.equal(rig.device.stats().xruns, 3);
  t.equal(rig.warnings().length, 0);
  play.stderr.emit('data', Buffer.from('aplay: pcm_write:2178: write error: No such device\n'));
  play.exit(1);
  t.match(rig.warnings()[0]!.fields, { stderr: 'aplay: pcm_write:2178: write error: No such device', code: 1 }, 'the last stderr line is quoted on exit');
  await rig.device.stop();
});

t.test('playback queued behind a stalled aplay is bounded, oldest dropped first', async (t) => {
  const rig = alsaRig({ maxPlaybackQueueMs: 100 });
  rig.start();
  const aplay = rig.fake.latest('aplay');
  aplay.banner();
  aplay.drains = false;
  for (let i = 0; i < 200; i++) {
    rig.device.play(new Int16Array(80).fill(i));
    rig.clock.advance(10);
  }
  const backlog = rig.device.playbackBacklogBytes();
  t.ok(backlog <= 4096 + 160 + 1600, `backlog stays bounded (${backlog} bytes)`);
  t.ok(rig.device.stats().droppedPlayback >= 150, `dropped counted (${rig.device.stats().droppedPlayback} frames)`);
  t.equal(rig.device.stats().playbackFrames, 200);
  await rig.device.stop();
});

t.test('playback is held back until aplay is ready, then kept within buffer plus queue of real time', async (t) => {
  const rig = alsaRig({ maxPlaybackQueueMs: 120, bufferMs: 40 });
  rig.start();
  const aplay = rig.fake.latest('aplay');
  const frame = (v: number) => new Int16Array(80).fill(v);
  rig.device.play(frame(1));
  await tick();
  t.equal(aplay.written.length, 0, 'nothing written before the banner');
  t.equal(rig.device.stats().droppedPlayback, 1, 'and not kept: it would become latency');
  aplay.banner();
  for (let i = 0; i < 50; i++) rig.device.play(frame(2));
  await tick();
  t.equal(aplay.written.length, 16, 'a burst is cut at 160 ms ahead of real time');
  rig.clock.advance(100);
  for (let i = 0; i < 50; i++) rig.device.play(frame(3));
  await tick();
  t.equal(aplay.written.length, 26, '100 ms later there is room for 10 more frames');
  aplay.stderr.emit('data', Buffer.from('underrun!!! (at least 20.0 ms long)\n'));
  for (let i = 0; i < 50; i++) rig.device.play(frame(4));
  await tick();
  t.equal(aplay.written.length, 42, 'an underrun means the pipe ran dry: room for 160 ms again');
  t.equal(rig.device.stats().droppedPlayback, 1 + 34 + 40 + 34);
  t.equal(rig.device.stats().xruns, 1);
  await rig.device.stop();
});

t.test('without a banner, playback starts after a one-second fallback', async (t) => {
  const rig = alsaRig();
  rig.start();
  rig.clock.advance(999);
  rig.device.play(new Int16Array(80).fill(5));
  rig.clock.advance(1);
  rig.device.play(new Int16Array(80).fill(6));
  await tick();
  t.same([...rig.fake.latest('aplay').writtenSamples()], Array(80).fill(6));
  t.equal(rig.fake.children.length, 2, 'no restart involved');
  await rig.device.stop();
});

t.test('stop ends both children, escalating to SIGKILL, and resolves once they exited', async (t) => {
  const rig = alsaRig({ killTimeoutMs: 500 });
  rig.start();
  const rec = rig.fake.latest('arecord');
  const play = rig.fake.latest('aplay');
  play.diesOn = new Set(['SIGKILL']);
  let resolved = false;
  const stopped = rig.device.stop().then(() => (resolved = true));
  await tick();
  t.ok(rec.exited, 'arecord ended on SIGTERM');
  t.notOk(resolved, 'still waiting for aplay');
  rig.clock.advance(500);
  await stopped;
  t.same(play.signals, ['SIGTERM', 'SIGKILL']);
  t.equal(rig.warnings().length, 0, 'a requested stop is not a failure');
  rig.clock.advance(5000);
  t.equal(rig.fake.children.length, 2, 'nothing restarts after stop');
  rig.device.play(new Int16Array(80));
  t.equal(rig.device.stats().playbackFrames, 0, 'play after stop is ignored');
});

t.test('a missing arecord binary is retried with backoff and logged once per attempt', async (t) => {
  const rig = alsaRig();
  const spawn: SpawnFunction = (command, args, options) => {
    const child = rig.fake.spawn(command, args, options) as FakeChild;
    if (command === 'arecord') {
      Object.defineProperty(child, 'pid', { value: undefined });
      setImmediate(() => child.emit('error', new Error('spawn arecord ENOENT')));
    }
    return child;
  };
  const device = new AlsaAudioDevice({ rate: 8000, frameMs: 10, capture: 'default', playback: 'default' }, { clock: rig.clock, logger: rig.logger, spawn });
  device.start(() => {});
  await tick();
  t.match(rig.warnings()[0]!, { msg: 'arecord failed to start; restarting in 100 ms', fields: { error: 'spawn arecord ENOENT' } });
  rig.clock.advance(100);
  await tick();
  t.equal(rig.warnings().length, 2);
  t.equal(rig.warnings()[1]!.fields.restartInMs, 200);
  rig.clock.advance(1000);
  t.ok(device.stats().silenceFrames >= 100, 'silence frames while capture cannot start');
  await device.stop();
});

t.test('null backend: silent frames paced by the clock, playback counted and discarded', async (t) => {
  const clock = new ManualClock();
  const device = new NullAudioDevice({ rate: 48000, frameMs: 20, capture: '', playback: '' }, clock, new MemoryLogger());
  const frames: Int16Array[] = [];
  device.start((pcm) => frames.push(pcm));
  clock.advance(19);
  t.equal(frames.length, 0, 'no frame before one frame time');
  for (let i = 0; i < 143; i++) clock.advance(7);
  t.equal(frames.length, Math.floor((19 + 143 * 7) / 20), 'drift-free: floor(elapsed / frameMs) frames with uneven advances');
  t.ok(frames.every((f) => f.length === 960 && f.every((v) => v === 0)));
  device.play(new Int16Array(960));
  device.play(new Int16Array(480));
  t.equal(device.playedSamples, 1440);
  t.match(device.stats(), { playbackFrames: 1, captureFrames: frames.length, silenceFrames: frames.length });
  await device.stop();
  clock.advance(1000);
  t.equal(device.stats().captureFrames, frames.length, 'no frames after stop');
});

t.test('file backend: the capture WAV is delivered frame by frame, looping or then silence', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-audio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const input = join(dir, 'in.wav');
  const samples = new Int16Array(250).map((_, i) => i + 1);
  writeFileSync(input, Buffer.concat([wavHeader(8000, 500), Buffer.from(samples.buffer)]));
  for (const loop of [false, true]) {
    const clock = new ManualClock();
    const device = new FileAudioDevice({ rate: 8000, frameMs: 10, capture: input, playback: '' }, clock, new MemoryLogger(), loop);
    const frames: Int16Array[] = [];
    device.start((pcm) => frames.push(pcm));
    clock.advance(50);
    t.equal(frames.length, 5);
    const flat = frames.flatMap((f) => [...f]);
    const expected = loop ? [...Array(400)].map((_, i) => (i % 250) + 1) : [...Array(400)].map((_, i) => (i < 250 ? i + 1 : 0));
    t.same(flat, expected, loop ? 'loops seamlessly' : 'then silence');
    t.equal(device.captureFinished, !loop);
    t.equal(device.stats().silenceFrames, loop ? 0 : 1);
    await device.stop();
  }
});

t.test('file backend: playback is streamed into a WAV whose header is fixed up on stop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-audio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'out.wav');
  const clock = new ManualClock();
  const backend = createAudioBackend('file', { clock, logger: new MemoryLogger() });
  const device = backend.open({ rate: 16000, frameMs: 20, capture: '', playback: out });
  device.start(() => {});
  const played: number[] = [];
  for (let f = 0; f < 10; f++) {
    const frame = new Int16Array(320).map((_, i) => (f * 320 + i) * 7 - 11000);
    played.push(...frame);
    device.play(frame);
  }
  await device.stop();
  const bytes = readFileSync(out);
  t.equal(bytes.length, 44 + 6400);
  t.equal(bytes.readUInt32LE(4), 36 + 6400, 'RIFF size');
  t.equal(bytes.readUInt32LE(40), 6400, 'data size');
  const wav = readWav(out);
  t.match(wav, { rate: 16000, channels: 1 });
  t.same([...wav.samples], played);
  t.equal(device.stats().playbackFrames, 10);
});

t.test('unusable audio settings fail with a stable code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-audio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeToneWav(join(dir, '8k.wav'), { rate: 8000, seconds: 0.1, frequency: 1000 });
  writeToneWav(join(dir, 'stereo.wav'), { rate: 48000, seconds: 0.1, frequency: 1000, channels: 2 });
  writeFileSync(join(dir, 'junk.wav'), 'not a wav at all');
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const cases = [
    { name: 'WAV at another rate', backend: 'file', capture: join(dir, '8k.wav'), rate: 48000, frameMs: 20, code: 'AUDIO_WAV_RATE' },
    { name: 'stereo WAV', backend: 'file', capture: join(dir, 'stereo.wav'), rate: 48000, frameMs: 20, code: 'AUDIO_WAV_FORMAT' },
    { name: 'not a WAV', backend: 'file', capture: join(dir, 'junk.wav'), rate: 48000, frameMs: 20, code: 'AUDIO_WAV_INVALID' },
    { name: 'missing WAV', backend: 'file', capture: join(dir, 'nope.wav'), rate: 48000, frameMs: 20, code: 'AUDIO_WAV_UNREADABLE' },
    { name: 'fractional frame', backend: 'null', capture: '', rate: 44100, frameMs: 15, code: 'AUDIO_BAD_FRAME' },
    { name: 'fractional frame on alsa', backend: 'alsa', capture: 'default', rate: 11025, frameMs: 10, code: 'AUDIO_BAD_FRAME' },
  ] as const;
  for (const c of cases) {
    const backend = createAudioBackend(c.backend, { clock, logger });
    t.throws(() => backend.open({ rate: c.rate, frameMs: c.frameMs, capture: c.capture, playback: '' }), { code: c.code, name: 'AudioDeviceError' }, c.name);
  }
  t.throws(() => createAudioBackend('oss' as 'null', { clock, logger }), new AudioDeviceError('AUDIO_UNKNOWN_BACKEND', 'unknown audio backend "oss" (expected one of alsa, file, null)'));
  t.same(['alsa', 'file', 'null'].map((n) => createAudioBackend(n as 'null', { clock, logger }).name), ['alsa', 'file', 'null']);
});
