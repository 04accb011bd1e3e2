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
import { FramePacer } from '../frame-pacer.ts';

/**
 * A device with no sound: capture delivers silent frames paced by the clock, playback is counted
 * and discarded. For a gateway without a sound card and for tests. Test hook: {@link playedSamples}.
 */
export class NullAudioDevice implements AudioDevice {
  readonly frameSamples: number;
  /** Every sample passed to `play` so far (a count; the audio itself is discarded). */
  playedSamples = 0;
  private readonly pacer: FramePacer;
  private onCapture: CaptureHandler | undefined;
  private captureFrames = 0;
  private stopped = false;

  constructor(
    opts: AudioDeviceOptions,
    clock: Clock,
    private readonly logger: Logger,
  ) {
    this.frameSamples = frameSamplesOf(opts.rate, opts.frameMs);
    this.pacer = new FramePacer(clock, opts.frameMs, () => this.deliver(), 'audio.null.capture');
  }

  start(onCapture: CaptureHandler): void {
    if (this.onCapture) throw new AudioDeviceError('AUDIO_ALREADY_STARTED', 'null audio device started twice');
    if (this.stopped) return;
    this.onCapture = onCapture;
    this.pacer.start();
  }

  play(pcm: Int16Array): void {
    if (!this.onCapture || this.stopped) return;
    this.playedSamples += pcm.length;
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.pacer.stop();
    return Promise.resolve();
  }

  stats(): AudioDeviceStats {
    return {
      captureFrames: this.captureFrames,
      silenceFrames: this.captureFrames,
      playbackFrames: Math.floor(this.playedSamples / this.frameSamples),
      droppedPlayback: 0,
      xruns: 0,
      restarts: 0,
    };
  }

  private deliver(): void {
    this.captureFrames++;
    try {
      this.onCapture?.(new Int16Array(this.frameSamples));
    } catch (err) {
      this.logger.warn('capture handler threw', { error: err instanceof Error ? err.message : String(err) });
    }
  }
}

/** The `null` backend: opens {@link NullAudioDevice}s; `capture`/`playback` names are ignored. */
export class NullAudioBackend implements AudioBackend {
  readonly name = 'null';

  constructor(private readonly deps: { clock: Clock; logger: Logger }) {}

  open(opts: AudioDeviceOptions): NullAudioDevice {
    return new NullAudioDevice(opts, this.deps.clock, this.deps.logger);
  }
}
