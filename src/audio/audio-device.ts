/**
 * The device's sound card as the media engine sees it: a source of fixed-size capture frames that
 * also paces the call, and a sink for playback PCM. Backends (`alsa`, `file`, `null`) implement
 * {@link AudioBackend} and are chosen by name from `audio.backend` (see `backend-registry.ts`).
 *
 * Audio is always 16-bit signed linear PCM, mono, at the device rate (`audio.rate`, default
 * 48000). Resampling to and from codec rates is the media engine's job, not the device's.
 */

/** How a device is opened: rate, frame size and the backend-specific device names. */
export interface AudioDeviceOptions {
  /** Sample rate in Hz of both directions (8000 … 48000). */
  readonly rate: number;
  /**
   * Duration of one capture frame in milliseconds (typically 20, the RTP ptime). `rate * frameMs
   * / 1000` must be a whole number of samples.
   */
  readonly frameMs: number;
  /**
   * Capture device. `alsa`: an ALSA PCM name (`plughw:CARD=Device,DEV=0`, `pulse`, `default`);
   * `file`: a WAV path (empty: silence); `null`: ignored.
   */
  readonly capture: string;
  /**
   * Playback device. `alsa`: an ALSA PCM name; `file`: a WAV path to write (empty: discard);
   * `null`: ignored.
   */
  readonly playback: string;
}

/** Counters of a device since it was opened (for `status`, the call-end log line and tests). */
export interface AudioDeviceStats {
  /** Frames handed to the capture callback, silence fill included. */
  captureFrames: number;
  /** Capture frames that were silence made up by the device while its source was down. */
  silenceFrames: number;
  /** Samples accepted by {@link AudioDevice.play}, in whole frames of `frameSamples`. */
  playbackFrames: number;
  /** Playback samples discarded (queue over its bound, or the sink down), in whole frames. */
  droppedPlayback: number;
  /** Overruns (capture) plus underruns (playback) reported by the sound system. */
  xruns: number;
  /** Times a capture or playback source was restarted after failing. */
  restarts: number;
}

/** Receives one capture frame: exactly `frameSamples` samples, owned by the receiver from then on. */
export type CaptureHandler = (pcm: Int16Array) => void;

/**
 * An open sound device. Lifecycle: `open` (backend) → {@link start} once → any number of
 * {@link play} calls → {@link stop} once (further calls are harmless).
 *
 * Timing contract: the capture clock paces the whole device. `onCapture` is called once per frame
 * (`frameMs` of audio), at the pace of the capture source's clock; the media endpoint pulls one
 * playback frame from its jitter buffer for each captured frame and passes it to `play`, so the
 * card's clock drives both directions and the jitter buffer absorbs the far end's clock drift.
 * When a source fails (a USB card unplugged, a child process killed), the device keeps calling
 * `onCapture` with silence at the nominal rate until the source is back, so the call goes on.
 *
 * Errors never escape as exceptions from callbacks or timers: failures are logged (one line per
 * event), counted in {@link stats} and recovered from where possible.
 */
export interface AudioDevice {
  /** Samples per capture frame: `rate * frameMs / 1000`. */
  readonly frameSamples: number;
  /**
   * Starts capture and playback. `onCapture` must not throw (an exception is logged and dropped).
   * Throws `AUDIO_ALREADY_STARTED` when called twice.
   */
  start(onCapture: CaptureHandler): void;
  /**
   * Queues `pcm` (any length; normally one frame) for playback. The device copies what it keeps,
   * so the caller may reuse the array. Never blocks; when the sink falls behind, the device drops
   * the oldest queued audio beyond a bound and counts it. Ignored before `start` and after `stop`.
   */
  play(pcm: Int16Array): void;
  /**
   * Stops both directions: no `onCapture` call happens after it returns. Resolves when every
   * resource (child process, file) is released; never rejects. Idempotent.
   */
  stop(): Promise<void>;
  /** A snapshot of the counters. */
  stats(): AudioDeviceStats;
}

/** A kind of sound device, registered by name (`alsa`, `file`, `null`). */
export interface AudioBackend {
  readonly name: string;
  /**
   * Validates the options and prepares a device without starting I/O. Throws an
   * {@link AudioDeviceError} on bad options (`AUDIO_BAD_FRAME`) or an unusable source
   * (`AUDIO_WAV_*` for the file backend).
   */
  open(opts: AudioDeviceOptions): AudioDevice;
}

/** A device that cannot be opened or used as asked. `code` is stable, for logs and tests. */
export class AudioDeviceError extends Error {
  constructor(
    public readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AudioDeviceError';
  }
}

/**
 * Samples per frame for `rate` and `frameMs`; throws `AUDIO_BAD_FRAME` unless both are positive
 * and the product is a whole number of samples (e.g. 44100 Hz with 20 ms gives 882).
 */
export function frameSamplesOf(rate: number, frameMs: number): number {
  const samples = (rate * frameMs) / 1000;
  if (!(rate > 0) || !(frameMs > 0) || !Number.isInteger(rate) || !Number.isInteger(samples)) {
    throw new AudioDeviceError('AUDIO_BAD_FRAME', `audio rate ${rate} Hz and frame ${frameMs} ms do not make a whole number of samples`);
  }
  return samples;
}

/** A zero-filled counters record. */
export function emptyStats(): AudioDeviceStats {
  return { captureFrames: 0, silenceFrames: 0, playbackFrames: 0, droppedPlayback: 0, xruns: 0, restarts: 0 };
}
