import type { Writable } from 'node:stream';
import type { Clock } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import {
  type AudioBackend,
  type AudioDevice,
  type AudioDeviceOptions,
  type AudioDeviceStats,
  AudioDeviceError,
  type CaptureHandler,
  frameSamplesOf,
} from '../audio-device.ts';
import type { TimerHandle } from '../../runtime/clock.ts';
import { FramePacer } from '../frame-pacer.ts';
import { bytesToPcm, pcmToBytes } from '../wav-format.ts';
import { type BackoffOptions, defaultSpawn, type SpawnFunction, SupervisedChild } from './supervised-child.ts';

/** Tuning of the `alsa` backend; every field has a default suited to a USB card on a Pi. */
export interface AlsaBackendOptions {
  /** Capture program; default `arecord`. */
  arecord?: string;
  /** Playback program; default `aplay`. */
  aplay?: string;
  /** ALSA period (`--period-time`); default the frame duration. */
  periodMs?: number;
  /** ALSA buffer (`--buffer-time`); default four periods. aplay starts playing once it is full. */
  bufferMs?: number;
  /** Environment of the children (e.g. `PULSE_SERVER` for `-D pulse`); default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Capture that delivers nothing for this long is declared stalled and restarted; default 1000. */
  stallMs?: number;
  /** Restart backoff; default 100 ms doubling to 5000 ms, reset after 10 s of health. */
  backoff?: Partial<BackoffOptions>;
  /**
   * Playback allowed to wait ahead of aplay's own buffer, in ms; default 120. Beyond it audio is
   * dropped (and counted): newest first while it would overfill the pipe, oldest first from the
   * queue held here while the pipe is full.
   */
  maxPlaybackQueueMs?: number;
  /** SIGTERM → SIGKILL delay on stop and restart; default 1000. */
  killTimeoutMs?: number;
}

/** What the `alsa` backend needs from the composition root. */
export interface AlsaBackendDeps {
  clock: Clock;
  logger: Logger;
  /** Default: `node:child_process` spawn. Tests pass a fake. */
  spawn?: SpawnFunction;
  options?: AlsaBackendOptions;
}

/** The argument vector shared by arecord and aplay: raw S16_LE mono at `rate` on `device`. */
export function alsaArgs(rate: number, periodMs: number, bufferMs: number, device: string): string[] {
  return [
    '-t', 'raw', '-f', 'S16_LE', '-c', '1', '-r', String(rate),
    `--period-time=${Math.round(periodMs * 1000)}`, `--buffer-time=${Math.round(bufferMs * 1000)}`,
    '-D', device,
  ];
}

/** aplay's banner, printed once its device is open and it is about to read stdin. */
const PLAYING_BANNER = /^Playing raw data /;
const UNDERRUN = /underrun!!!/;
/** When no banner shows up (another aplay build, quiet mode), start writing anyway after this. */
const PLAYBACK_READY_FALLBACK_MS = 1000;

/**
 * A sound card through alsa-utils: `arecord` writes raw PCM to our pipe, `aplay` reads it from
 * another. Capture bytes arrive in arbitrary chunks and are cut into whole frames; each frame is
 * handed to `onCapture` as soon as it is complete, so the card's clock paces the device.
 *
 * Playback latency is kept bounded although the pipe cannot be inspected: Node connects a
 * child's stdin through a socketpair whose kernel buffer (~208 KiB, over 2 s at 48 kHz mono)
 * accepts audio long before aplay plays it, and audio queued there is latency for the rest of
 * the call. So nothing is written until aplay prints its `Playing raw data` banner (its device
 * is open), and the audio in flight is estimated as bytes written minus the real-time
 * consumption since an anchor; the anchor is reset when aplay reports an underrun (its input was
 * empty) or the estimate reaches zero. Audio that would push the estimate past `bufferMs +
 * maxPlaybackQueueMs` is dropped and counted. Children run with `LC_ALL=C` so that these
 * messages are not translated.
 *
 * Failures never stop the call: when a child exits, arecord delivers nothing for `stallMs`, or a
 * write to aplay's stdin fails (EPIPE), one warning is logged and the child is restarted with
 * backoff (see {@link SupervisedChild}). While capture is down, silence frames are delivered at
 * the nominal rate by the injected clock; while playback is down, `play` discards and counts.
 * Playback not yet accepted by the pipe is kept in a queue bounded by `maxPlaybackQueueMs`
 * (oldest dropped first), so a stalled aplay cannot grow memory.
 *
 * Test hooks: {@link pids}, {@link playbackBacklogBytes}.
 */
export class AlsaAudioDevice implements AudioDevice {
  readonly frameSamples: number;
  private readonly frameBytes: number;
  private readonly capture: SupervisedChild;
  private readonly playback: SupervisedChild;
  private readonly silence: FramePacer;
  private readonly maxQueueBytes: number;
  private readonly maxInFlightBytes: number;
  private readonly bytesPerMs: number;
  private playbackReady = false;
  private readyTimer: TimerHandle | undefined;
  private anchorAt = 0;
  private anchorBytes = 0;
  private readonly partial: Buffer;
  private partialLen = 0;
  private onCapture: CaptureHandler | undefined;
  private stdin: Writable | undefined;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private waitingDrain = false;
  private stopping: Promise<void> | undefined;
  private captureFrames = 0;
  private silenceFrames = 0;
  private playedSamples = 0;
  private droppedBytes = 0;

  constructor(
    opts: AudioDeviceOptions,
    private readonly deps: AlsaBackendDeps,
  ) {
    this.frameSamples = frameSamplesOf(opts.rate, opts.frameMs);
    this.frameBytes = this.frameSamples * 2;
    this.partial = Buffer.alloc(this.frameBytes);
    const o = deps.options ?? {};
    const periodMs = o.periodMs ?? opts.frameMs;
    const bufferMs = o.bufferMs ?? 4 * periodMs;
    this.bytesPerMs = (opts.rate * 2) / 1000;
    const queueMs = o.maxPlaybackQueueMs ?? 120;
    this.maxQueueBytes = Math.max(this.frameBytes, 2 * Math.round((queueMs * opts.rate) / 1000));
    this.maxInFlightBytes = this.maxQueueBytes + 2 * Math.round((bufferMs * opts.rate) / 1000);
    const common = {
      env: { ...(o.env ?? process.env), LC_ALL: 'C' },
      stallMs: o.stallMs ?? 1000,
      backoff: { initialMs: 100, maxMs: 5000, resetAfterMs: 10_000, ...o.backoff },
      killTimeoutMs: o.killTimeoutMs ?? 1000,
      exitGraceMs: 250,
      spawn: deps.spawn ?? defaultSpawn,
      clock: deps.clock,
      logger: deps.logger,
    };
    this.capture = new SupervisedChild({
      ...common,
      name: 'arecord',
      command: o.arecord ?? 'arecord',
      args: alsaArgs(opts.rate, periodMs, bufferMs, opts.capture),
      stdin: false,
      stdout: true,
      onData: (chunk) => this.onCaptureBytes(chunk),
      onDown: () => this.onCaptureDown(),
    });
    this.playback = new SupervisedChild({
      ...common,
      name: 'aplay',
      command: o.aplay ?? 'aplay',
      args: alsaArgs(opts.rate, periodMs, bufferMs, opts.playback),
      stdin: true,
      stdout: false,
      onUp: (child) => {
        this.stdin = child.stdin ?? undefined;
        this.waitingDrain = false;
        this.playbackReady = false;
        this.readyTimer = deps.clock.setTimer(PLAYBACK_READY_FALLBACK_MS, () => this.markPlaybackReady(), 'audio.aplay.ready');
      },
      onDown: () => this.onPlaybackDown(),
      onLine: (line) => {
        if (PLAYING_BANNER.test(line)) this.markPlaybackReady();
        else if (UNDERRUN.test(line)) this.anchor();
      },
    });
    this.silence = new FramePacer(deps.clock, opts.frameMs, () => this.deliver(new Int16Array(this.frameSamples), true), 'audio.alsa.silence');
  }

  start(onCapture: CaptureHandler): void {
    if (this.onCapture) throw new AudioDeviceError('AUDIO_ALREADY_STARTED', 'alsa audio device started twice');
    if (this.stopping) return;
    this.onCapture = onCapture;
    this.capture.start();
    this.playback.start();
  }

  play(pcm: Int16Array): void {
    if (!this.onCapture || this.stopping) return;
    this.playedSamples += pcm.length;
    if (!this.stdin || !this.playbackReady) {
      this.droppedBytes += pcm.length * 2;
      return;
    }
    const bytes = pcmToBytes(pcm);
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    while (this.queuedBytes > this.maxQueueBytes) {
      const excess = this.queuedBytes - this.maxQueueBytes;
      const head = this.queue[0]!;
      if (head.length <= excess) {
        this.queue.shift();
        this.queuedBytes -= head.length;
        this.droppedBytes += head.length;
      } else {
        const cut = excess + (excess % 2);
        this.queue[0] = head.subarray(cut);
        this.queuedBytes -= cut;
        this.droppedBytes += cut;
      }
    }
    this.flush();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.silence.stop();
      this.readyTimer?.cancel();
      this.onCapture = undefined;
      this.stdin = undefined;
      this.queue.length = 0;
      this.queuedBytes = 0;
      await Promise.all([this.capture.stop(), this.playback.stop()]);
    })();
    return this.stopping;
  }

  stats(): AudioDeviceStats {
    return {
      captureFrames: this.captureFrames,
      silenceFrames: this.silenceFrames,
      playbackFrames: Math.floor(this.playedSamples / this.frameSamples),
      droppedPlayback: Math.floor(this.droppedBytes / this.frameBytes),
      xruns: this.capture.xruns + this.playback.xruns,
      restarts: this.capture.restarts + this.playback.restarts,
    };
  }

  /** Process ids of the running children (test hook: kill one to simulate a failure). */
  pids(): { capture?: number; playback?: number } {
    return { capture: this.capture.child?.pid, playback: this.playback.child?.pid };
  }

  /** Playback bytes held in this process: our queue plus what the stdin stream buffers. */
  playbackBacklogBytes(): number {
    return this.queuedBytes + (this.stdin?.writableLength ?? 0);
  }

  /** Estimated playback bytes written but not yet played (pipe plus aplay's buffer). */
  playbackInFlightBytes(): number {
    const est = this.anchorBytes - (this.deps.clock.now() - this.anchorAt) * this.bytesPerMs;
    if (est > 0) return est;
    this.anchor();
    return 0;
  }

  private anchor(): void {
    this.anchorAt = this.deps.clock.now();
    this.anchorBytes = 0;
  }

  private markPlaybackReady(): void {
    this.readyTimer?.cancel();
    if (this.playbackReady || !this.stdin) return;
    this.playbackReady = true;
    this.anchor();
    this.flush();
  }

  private flush(): void {
    const stdin = this.stdin;
    if (!stdin || this.waitingDrain || !this.playbackReady) return;
    while (this.queue.length > 0) {
      const bytes = this.queue.shift()!;
      this.queuedBytes -= bytes.length;
      if (this.playbackInFlightBytes() + bytes.length > this.maxInFlightBytes) {
        this.droppedBytes += bytes.length;
        continue;
      }
      this.anchorBytes += bytes.length;
      if (!stdin.write(bytes)) {
        this.waitingDrain = true;
        stdin.once('drain', () => {
          if (stdin !== this.stdin) return;
          this.waitingDrain = false;
          this.flush();
        });
        return;
      }
    }
  }

  private onCaptureBytes(chunk: Buffer): void {
    if (!this.onCapture) return;
    if (this.silence.isRunning) this.silence.stop();
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(this.frameBytes - this.partialLen, chunk.length - offset);
      if (this.partialLen === 0 && take === this.frameBytes) {
        this.deliver(bytesToPcm(chunk.subarray(offset, offset + take)), false);
      } else {
        chunk.copy(this.partial, this.partialLen, offset, offset + take);
        this.partialLen += take;
        if (this.partialLen === this.frameBytes) {
          this.partialLen = 0;
          this.deliver(bytesToPcm(this.partial), false);
        }
      }
      offset += take;
    }
  }

  private onCaptureDown(): void {
    this.partialLen = 0;
    if (this.onCapture && !this.stopping) this.silence.start();
  }

  private onPlaybackDown(): void {
    this.readyTimer?.cancel();
    this.playbackReady = false;
    this.stdin = undefined;
    this.waitingDrain = false;
    this.droppedBytes += this.queuedBytes;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private deliver(frame: Int16Array, silent: boolean): void {
    const handler = this.onCapture;
    if (!handler) return;
    this.captureFrames++;
    if (silent) this.silenceFrames++;
    try {
      handler(frame);
    } catch (err) {
      this.deps.logger.warn('capture handler threw', { error: err instanceof Error ? err.message : String(err) });
    }
  }
}

/** The `alsa` backend: `audio.capture`/`audio.playback` are ALSA PCM names (`plughw:CARD=…`, `pulse`). */
export class AlsaAudioBackend implements AudioBackend {
  readonly name = 'alsa';

  constructor(private readonly deps: AlsaBackendDeps) {}

  open(opts: AudioDeviceOptions): AlsaAudioDevice {
    return new AlsaAudioDevice(opts, this.deps);
  }
}
