import t from 'tap';
import { type AudioDevice, type AudioDeviceStats, emptyStats } from '../../src/audio/audio-device.ts';
import { analyseAudioTest, audioTestSignal, runAudioTest } from '../../src/audio/audio-test.ts';
import { NullAudioDevice } from '../../src/audio/backends/null.ts';
import { FramePacer } from '../../src/audio/frame-pacer.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { nullLogger } from '../../src/runtime/logger.ts';

/**
 * A simulated loopback cable: what is played comes back `delay` samples later, times `gain`, plus
 * noise. `delay` is at least one frame, as in any real device (play() of frame k follows capture k).
 */
class LoopbackDevice implements AudioDevice {
  readonly frameSamples: number;
  private readonly line: number[];
  private readonly pacer: FramePacer;
  private onCapture: ((pcm: Int16Array) => void) | undefined;
  private readonly counters: AudioDeviceStats = emptyStats();
  private seed = 12345;

  constructor(
    clock: ManualClock,
    rate: number,
    frameMs: number,
    delay: number,
    private readonly gain: number,
    private readonly noise = 0,
  ) {
    this.frameSamples = (rate * frameMs) / 1000;
    this.line = Array(delay).fill(0);
    this.pacer = new FramePacer(clock, frameMs, () => {
      const out = new Int16Array(this.frameSamples);
      for (let i = 0; i < out.length; i++) {
        const v = (this.line.shift() ?? 0) * this.gain + this.noise * (this.random() - 0.5);
        out[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
      }
      this.counters.captureFrames++;
      this.onCapture?.(out);
    });
  }

  start(onCapture: (pcm: Int16Array) => void): void {
    this.onCapture = onCapture;
    this.pacer.start();
  }
  play(pcm: Int16Array): void {
    this.counters.playbackFrames++;
    this.line.push(...pcm);
  }
  stop(): Promise<void> {
    this.pacer.stop();
    return Promise.resolve();
  }
  stats(): AudioDeviceStats {
    return { ...this.counters };
  }
  private random(): number {
    this.seed = (this.seed * 1103515245 + 12345) & 0x7fffffff;
    return this.seed / 0x7fffffff;
  }
}

async function run(device: AudioDevice, clock: ManualClock, rate: number) {
  const result = runAudioTest(device, clock, rate);
  for (let i = 0; i < 500; i++) clock.advance(10);
  return result;
}

t.test('audio-test measures the round-trip latency and level through a loopback', async (t) => {
  const cases = [
    { name: '48 kHz, 20 ms frames, 137.5 ms round trip', rate: 48000, frameMs: 20, delay: 6600, gain: 0.5, noise: 0 },
    { name: '8 kHz, 10 ms frames, 61 ms, noisy line', rate: 8000, frameMs: 10, delay: 488, gain: 0.8, noise: 2000 },
    { name: '16 kHz, 20 ms frames, one frame and one sample', rate: 16000, frameMs: 20, delay: 321, gain: 1, noise: 0 },
    { name: '44.1 kHz, 20 ms frames, 1403 samples', rate: 44100, frameMs: 20, delay: 1403, gain: 0.3, noise: 300 },
  ];
  for (const c of cases) {
    const clock = new ManualClock();
    const result = await run(new LoopbackDevice(clock, c.rate, c.frameMs, c.delay, c.gain, c.noise), clock, c.rate);
    t.equal(result.latencyMs, (c.delay / c.rate) * 1000, `${c.name}: latency`);
    t.ok(result.correlation > 0.9, `${c.name}: correlation ${result.correlation.toFixed(3)}`);
    t.ok(result.toneDetected, `${c.name}: tone heard (ratio ${result.toneRatio.toFixed(3)})`);
    t.ok(Math.abs(result.peakDbfs - 20 * Math.log10(c.gain * 0.5)) < 0.6 + (c.noise ? 0.5 : 0), `${c.name}: peak ${result.peakDbfs.toFixed(2)} dBFS`);
    t.equal(result.clippedSamples, 0);
    t.equal(result.complete, true);
    t.equal(result.recordedMs, Math.ceil((3500 * c.rate) / 1000 / (c.rate * c.frameMs / 1000)) * c.frameMs, `${c.name}: signal plus one second recorded`);
  }
});

t.test('audio-test reports silence, no tone and no latency on a device that hears nothing', async (t) => {
  const clock = new ManualClock();
  const device = new NullAudioDevice({ rate: 16000, frameMs: 20, capture: '', playback: '' }, clock, nullLogger);
  const result = await run(device, clock, 16000);
  t.match(result, { rmsDbfs: -Infinity, peakDbfs: -Infinity, clippedSamples: 0, toneDetected: false, latencyMs: null, correlation: 0, complete: true });
  t.equal(result.stats.playbackFrames, result.stats.captureFrames, 'one playback frame per captured frame');
});

t.test('audio-test counts clipping when the loop is too hot', async (t) => {
  const clock = new ManualClock();
  const result = await run(new LoopbackDevice(clock, 8000, 20, 260, 2.5), clock, 8000);
  t.ok(result.clippedSamples > 1000, `${result.clippedSamples} clipped samples`);
  t.equal(result.peakDbfs, 20 * Math.log10(32768 / 32768));
  t.equal(result.latencyMs, 32.5, 'latency found even when clipped');
});

t.test('audio-test gives up with complete: false when capture never delivers', async (t) => {
  const clock = new ManualClock();
  const dead: AudioDevice = { frameSamples: 160, start() {}, play() {}, stop: () => Promise.resolve(), stats: emptyStats };
  const pending = runAudioTest(dead, clock, 8000, { timeoutMs: 3000 });
  clock.advance(3000);
  t.match(await pending, { complete: false, recordedMs: 0, latencyMs: null });
});

t.test('the test signal is a chirp, a gap and a ramped tone at the asked level', async (t) => {
  const s = audioTestSignal(48000, { toneMs: 1000, amplitude: 0.25 });
  t.equal(s.chirpAt, 9600);
  t.equal(s.toneFrom, 9600 + 4800 + 9600);
  t.equal(s.toneTo - s.toneFrom, 48000);
  t.equal(s.samples.slice(0, s.chirpAt).every((v) => v === 0), true, 'silent lead-in');
  const tone = s.samples.subarray(s.toneFrom, s.toneTo);
  t.equal(Math.max(...tone), Math.round(0.25 * 32767));
  t.equal(tone[0], 0, 'starts at zero (no click)');
  const own = analyseAudioTest(s.samples, s, 48000, { maxLatencyMs: 0 });
  t.equal(own.latencyMs, 0, 'the signal matches itself at lag 0');
  t.ok(own.correlation > 0.999);
});
