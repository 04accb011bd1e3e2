import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
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
import { parseWav, pcmToBytes, WAV_HEADER_BYTES, WAV_STREAMING_SIZE, wavHeader } from '../wav-format.ts';

/** Options of the `file` backend. */
export interface FileBackendOptions {
  /** At the end of the capture WAV, start again from its beginning (true) or deliver silence (false, default). */
  loop?: boolean;
}

/** Playback is written to the file in chunks of this much audio. */
const WRITE_BATCH_MS = 500;

/**
 * A device made of WAV files: capture plays `capture` (16-bit PCM mono at the device rate) one
 * frame per `frameMs` of clock time, looping or followed by silence; playback is streamed into
 * `playback` as a 16-bit PCM mono WAV whose header carries a "to the end" size until `stop`
 * writes the real one. An empty `capture` gives silence; an empty `playback` discards.
 *
 * The capture file is read whole when the device is opened (prompts and test tones are small), so
 * a missing or unsuitable file fails `open` with a clear {@link AudioDeviceError}. A playback
 * write failure is logged once and the rest of the playback is discarded.
 */
export class FileAudioDevice implements AudioDevice {
  readonly frameSamples: number;
  /** True once a non-looping capture has reached the end of its file (test hook, prompt end). */
  captureFinished = false;
  private readonly source: Int16Array;
  private readonly pacer: FramePacer;
  private position = 0;
  private onCapture: CaptureHandler | undefined;
  private out: WriteStream | undefined;
  private outFailed = false;
  private writtenBytes = 0;
  private playedSamples = 0;
  private droppedSamples = 0;
  private captureFrames = 0;
  private silenceFrames = 0;
  private stopping: Promise<void> | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly batchBytes: number;

  constructor(
    private readonly opts: AudioDeviceOptions,
    clock: Clock,
    private readonly logger: Logger,
    private readonly loop: boolean,
  ) {
    this.frameSamples = frameSamplesOf(opts.rate, opts.frameMs);
    this.batchBytes = Math.round((opts.rate * 2 * WRITE_BATCH_MS) / 1000);
    this.source = opts.capture ? readCaptureWav(opts.capture, opts.rate) : new Int16Array(0);
    this.pacer = new FramePacer(clock, opts.frameMs, () => this.deliver(), 'audio.file.capture');
  }

  start(onCapture: CaptureHandler): void {
    if (this.onCapture) throw new AudioDeviceError('AUDIO_ALREADY_STARTED', 'file audio device started twice');
    if (this.stopping) return;
    this.onCapture = onCapture;
    if (this.opts.playback) {
      this.out = createWriteStream(this.opts.playback);
      this.out.on('error', (err) => this.failOutput(err));
      this.out.write(wavHeader(this.opts.rate, WAV_STREAMING_SIZE));
    }
    this.pacer.start();
  }

  play(pcm: Int16Array): void {
    if (!this.onCapture || this.stopping) return;
    this.playedSamples += pcm.length;
    if (!this.out || this.outFailed) {
      if (this.opts.playback) this.droppedSamples += pcm.length;
      return;
    }
    const bytes = pcmToBytes(pcm);
    this.writtenBytes += bytes.length;
    // Written in batches: one write per frame would wake the process for every completion.
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= this.batchBytes) this.flush();
  }

  private flush(): void {
    if (this.pendingBytes === 0 || !this.out || this.outFailed) return;
    this.out.write(Buffer.concat(this.pending, this.pendingBytes));
    this.pending = [];
    this.pendingBytes = 0;
  }

  stop(): Promise<void> {
    this.stopping ??= this.finish();
    return this.stopping;
  }

  stats(): AudioDeviceStats {
    return {
      captureFrames: this.captureFrames,
      silenceFrames: this.silenceFrames,
      playbackFrames: Math.floor(this.playedSamples / this.frameSamples),
      droppedPlayback: Math.floor(this.droppedSamples / this.frameSamples),
      xruns: 0,
      restarts: 0,
    };
  }

  private deliver(): void {
    const frame = new Int16Array(this.frameSamples);
    const n = this.source.length;
    let silent = true;
    for (let filled = 0; filled < frame.length && n > 0; ) {
      if (this.position >= n) {
        if (!this.loop) {
          this.captureFinished = true;
          break;
        }
        this.position = 0;
      }
      const take = Math.min(frame.length - filled, n - this.position);
      frame.set(this.source.subarray(this.position, this.position + take), filled);
      this.position += take;
      filled += take;
      silent = false;
    }
    if (!this.loop && this.position >= n) this.captureFinished = true;
    this.captureFrames++;
    if (silent) this.silenceFrames++;
    try {
      this.onCapture?.(frame);
    } catch (err) {
      this.logger.warn('capture handler threw', { error: errorText(err) });
    }
  }

  private failOutput(err: unknown): void {
    if (this.outFailed) return;
    this.outFailed = true;
    this.logger.warn('playback file write failed; discarding playback', { file: this.opts.playback, error: errorText(err) });
  }

  private async finish(): Promise<void> {
    this.pacer.stop();
    this.flush();
    const out = this.out;
    if (!out) return;
    await new Promise<void>((resolve) => {
      if (out.closed) return resolve();
      out.once('close', () => resolve());
      out.end();
    });
    if (this.outFailed) return;
    try {
      const handle = await open(this.opts.playback, 'r+');
      try {
        await handle.write(wavHeader(this.opts.rate, this.writtenBytes), 0, WAV_HEADER_BYTES, 0);
      } finally {
        await handle.close();
      }
    } catch (err) {
      this.failOutput(err);
    }
  }
}

function readCaptureWav(path: string, rate: number): Int16Array {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new AudioDeviceError('AUDIO_WAV_UNREADABLE', `${path}: cannot read capture WAV: ${errorText(err)}`);
  }
  const wav = parseWav(bytes, path);
  if (wav.rate !== rate) {
    throw new AudioDeviceError(
      'AUDIO_WAV_RATE',
      `${path}: sample rate ${wav.rate} Hz differs from audio.rate ${rate} Hz (convert with: sox ${path} -r ${rate} OUT.wav)`,
    );
  }
  return wav.samples;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The `file` backend: `audio.capture` and `audio.playback` are WAV paths. */
export class FileAudioBackend implements AudioBackend {
  readonly name = 'file';

  constructor(private readonly deps: { clock: Clock; logger: Logger; options?: FileBackendOptions }) {}

  open(opts: AudioDeviceOptions): FileAudioDevice {
    return new FileAudioDevice(opts, this.deps.clock, this.deps.logger, this.deps.options?.loop ?? false);
  }
}
