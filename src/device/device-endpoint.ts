/**
 * The device endpoint: this box's own handset or intercom as one party of the B2BUA. It holds at
 * most one call, opens the sound card for it, plays call-progress tones, answers calls (by
 * itself in this version: `device.autoAnswer`; the phone logic will take that decision), places
 * calls, and sends and receives DTMF. The CLI drives it through the control socket.
 */
import type { AudioBackend, AudioDevice, AudioDeviceOptions } from '../audio/audio-device.ts';
import type { Party } from '../calls/call.ts';
import type { DeviceCall } from '../calls/device-call.ts';
import type { CallMedia, DevicePort, LocalEnd } from '../calls/types.ts';
import type { ControlReply } from '../control/control-protocol.ts';
import { formatDtmfInfo, parseDtmfInfo } from '../media/dtmf/dtmf-info.ts';
import type { DtmfDigit } from '../media/dtmf/types.ts';
import type { DeviceMedia } from '../media/endpoint/device-media.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ToneName } from '../media/tone/tone-sets.ts';
import type { LineEvents, PhoneLine } from '../phone/types.ts';
import { CallProgressTones, type ProgressTone } from './call-progress.ts';

export type DeviceState = 'idle' | 'ringing' | 'dialing' | 'connected';

/** What the endpoint needs; the composition root wires it. */
export interface DeviceEndpointOptions {
  clock: Clock;
  logger: Logger;
  audio: AudioBackend;
  audioOptions: AudioDeviceOptions;
  /** Media for one call (RTP socket, SDP, audio stream). */
  createMedia(): Promise<DeviceMedia>;
  /** The B2BUA's way to place a call from the device. */
  dial(number: string, follow: (call: DeviceCall) => LocalEnd): Promise<DeviceCall | { status: number; reason: string }>;
  autoAnswer: boolean;
  /** Tones for the device (`tones.country`). */
  tones: CallProgressTones;
  dtmf: { send: 'rfc4733' | 'info'; durationMs: number; gapMs: number };
}

interface Current {
  call: DeviceCall;
  media: DeviceMedia;
  state: DeviceState;
  since: number;
}

/** How long the busy/congestion tone plays after a call the device placed failed. */
const FAILURE_TONE_MS = 3000;
/** Digits kept for `status`. */
const DIGIT_HISTORY = 20;

export class DeviceEndpoint implements DevicePort {
  private current: Current | undefined;
  /** A dial command is waiting for the B2BUA to place the call: the device is busy already. */
  private placing = false;
  private device: AudioDevice | undefined;
  private tone: ProgressTone | undefined;
  private toneTimer: TimerHandle | undefined;
  private readonly digitListeners: ((digit: DtmfDigit) => void)[] = [];
  private readonly digits: DtmfDigit[] = [];
  private readonly log: Logger;
  /** The phone logic (handset, intercom) following the line, once attached. */
  private phone: LineEvents | undefined;

  /**
   * The device's line for the phone logic. Once something listens on it, the device no longer
   * answers by itself nor plays call-progress tones of its own: the phone logic decides.
   */
  readonly line: PhoneLine = {
    dial: async (number) => {
      const placed = await this.place(number);
      return placed.ok ? { ok: true } : placed;
    },
    answer: () => this.answerCall(),
    // A call still ringing is refused as busy (the handset is off-hook, the intercom declines it).
    hangup: () => {
      const current = this.current;
      if (current?.state === 'ringing' && current.call.reject(486, 'Busy Here')) return;
      current?.call.hangup();
    },
    sendDigits: (digits) => {
      this.sendDigits(digits);
    },
    playTone: (name) => {
      if (name) this.playTone(name);
      else {
        this.stopTone();
        if (!this.current) void this.closeAudio();
      }
    },
    listen: (events) => {
      this.phone = events;
    },
  };

  constructor(private readonly opts: DeviceEndpointOptions) {
    this.log = opts.logger;
  }

  get state(): DeviceState {
    return this.current?.state ?? 'idle';
  }

  /** Calls `fn` with every DTMF digit the far end sends (the door opener listens here). */
  onDigit(fn: (digit: DtmfDigit) => void): void {
    this.digitListeners.push(fn);
  }

  // ---- DevicePort (called by the B2BUA) ----

  async media(): Promise<CallMedia> {
    const media = await this.opts.createMedia();
    media.stream.onDigit((d) => this.digitReceived(d));
    return media;
  }

  incoming(call: DeviceCall, caller: Party): LocalEnd | { status: number; reason?: string } {
    if (this.current || this.placing) return { status: 486, reason: 'Busy Here' };
    const media = this.mediaOf(call);
    this.current = { call, media, state: 'ringing', since: this.opts.clock.now() };
    this.stopTone();
    this.log.info('device ringing', { call: call.id, from: caller.user, ...(caller.display ? { name: caller.display } : {}) });
    if (this.phone) this.tell('incoming', () => this.phone!.incoming(caller));
    else if (this.opts.autoAnswer) this.opts.clock.setTimer(0, () => this.answerCall(), 'auto-answer');
    return this.follow(call);
  }

  // ---- commands (control socket) ----

  async dial(number: string): Promise<ControlReply> {
    const placed = await this.place(number);
    if (!placed.ok) return { ok: false, error: placed.status === 0 ? placed.reason : `${placed.status} ${placed.reason}` };
    return { ok: true, call: placed.call, state: this.state };
  }

  /** Places a call from the device; status 0 means the device itself is busy. */
  private async place(number: string): Promise<{ ok: true; call: string } | { ok: false; status: number; reason: string }> {
    if (this.current) return { ok: false, status: 0, reason: `the device is ${this.current.state}` };
    if (this.placing) return { ok: false, status: 0, reason: 'the device is dialing' };
    this.placing = true;
    let placed: Awaited<ReturnType<DeviceEndpointOptions['dial']>>;
    try {
      placed = await this.opts.dial(number, (call) => {
        this.current = { call, media: this.mediaOf(call), state: 'dialing', since: this.opts.clock.now() };
        this.stopTone();
        return this.follow(call);
      });
    } finally {
      this.placing = false;
    }
    if ('status' in placed) {
      this.log.info('device call refused', { to: number, status: placed.status, reason: placed.reason });
      return { ok: false, status: placed.status, reason: placed.reason };
    }
    this.openAudio();
    this.log.info('device calling', { call: placed.id, to: number });
    return { ok: true, call: placed.id };
  }

  answer(): ControlReply {
    if (this.current?.state !== 'ringing') return { ok: false, error: 'no call is ringing' };
    return this.answerCall() ? { ok: true, call: this.current.call.id } : { ok: false, error: 'the call could not be answered' };
  }

  hangup(): ControlReply {
    const current = this.current;
    if (!current) {
      this.stopTone();
      return { ok: false, error: 'no call' };
    }
    current.call.hangup();
    return { ok: true, call: current.call.id };
  }

  /** Sends DTMF to the far end: RFC 4733 events when it takes them (or `dtmf.send` is `info`), else SIP INFO. */
  sendDigits(digits: string): ControlReply {
    const current = this.current;
    if (current?.state !== 'connected') return { ok: false, error: 'no connected call' };
    const { durationMs, gapMs } = this.opts.dtmf;
    if (this.opts.dtmf.send === 'rfc4733' && current.media.stream.sendDigits(digits, { durationMs, gapMs })) {
      this.log.info('dtmf sent', { call: current.call.id, digits, method: 'rfc4733' });
      return { ok: true, method: 'rfc4733' };
    }
    this.sendInfoDigits(current.call, digits, durationMs, gapMs);
    return { ok: true, method: 'info' };
  }

  status(): ControlReply {
    const c = this.current;
    return {
      ok: true,
      device: this.state,
      ...(c ? { call: c.call.id, remote: c.call.remote.user, seconds: Math.round((this.opts.clock.now() - c.since) / 1000), media: c.media.stream.summary() } : {}),
      digits: this.digits.map((d) => `${d.digit}:${d.source}:${d.durationMs}`).join(' '),
      audio: this.device?.stats() ?? null,
    };
  }

  /** Ends the call and releases the sound card (shutdown). */
  async close(): Promise<void> {
    this.current?.call.hangup('SIP;cause=503;text="Gateway shutting down"');
    this.stopTone();
    await this.closeAudio();
  }

  // ---- internals ----

  private mediaOf(call: DeviceCall): DeviceMedia {
    return call.media as DeviceMedia;
  }

  private answerCall(): boolean {
    const current = this.current;
    if (current?.state !== 'ringing') return false;
    this.openAudio();
    return current.call.answer();
  }

  private follow(call: DeviceCall): LocalEnd {
    const mine = () => this.current?.call === call;
    return {
      ringing: () => {
        if (!mine()) return;
        this.log.info('device hears ringing', { call: call.id });
        if (this.phone) this.tell('ringing', () => this.phone!.ringing());
        else if (!this.current!.media.stream.receiving) this.playTone('ringback');
      },
      connected: () => {
        if (!mine()) return;
        this.current!.state = 'connected';
        this.current!.since = this.opts.clock.now();
        this.stopTone();
        this.openAudio();
        this.log.info('device connected', { call: call.id, remote: call.remote.user, codec: this.current!.media.stream.codecName ?? '-' });
        if (this.phone) this.tell('connected', () => this.phone!.connected());
      },
      info: (contentType, body) => {
        const event = contentType === undefined ? undefined : parseDtmfInfo(contentType, body);
        if (!event) return 415;
        this.digitReceived({ digit: event.digit, durationMs: event.durationMs, source: 'info' });
        return 200;
      },
      ended: (cause, status) => {
        if (!mine()) return;
        const wasDialing = this.current!.state === 'dialing';
        this.current = undefined;
        this.log.info('device call ended', { call: call.id, reason: cause, ...(status === undefined ? {} : { status }) });
        if (this.phone) {
          this.stopTone();
          this.tell('ended', () => this.phone!.ended(cause, status));
          // The phone logic may have started a tone (busy, congestion): the card stays open for it.
          if (!this.tone) void this.closeAudio();
        } else if (wasDialing && status !== undefined && status !== 487) {
          this.playTone(status === 486 || status === 600 ? 'busy' : 'congestion', FAILURE_TONE_MS);
        } else {
          this.stopTone();
          void this.closeAudio();
        }
      },
    };
  }

  private sendInfoDigits(call: DeviceCall, digits: string, durationMs: number, gapMs: number): void {
    let at = 0;
    for (const digit of digits) {
      this.opts.clock.setTimer(at, () => {
        const { contentType, body } = formatDtmfInfo(digit, durationMs);
        call.info(contentType, body, (status) => {
          if (status >= 300) this.log.warn('dtmf INFO refused', { call: call.id, digit, status });
        });
      }, 'dtmf-info');
      at += durationMs + gapMs;
    }
    this.log.info('dtmf sent', { call: call.id, digits, method: 'info' });
  }

  private digitReceived(digit: DtmfDigit): void {
    this.digits.push(digit);
    if (this.digits.length > DIGIT_HISTORY) this.digits.shift();
    this.log.info('dtmf received', { call: this.current?.call.id, digit: digit.digit, source: digit.source, ms: digit.durationMs });
    if (this.phone) this.tell('digit', () => this.phone!.digit(digit));
    for (const fn of this.digitListeners) {
      try {
        fn(digit);
      } catch (err) {
        this.log.error('dtmf listener failed', { reason: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /** Runs a phone-logic callback; its failure is logged, never thrown into the call layer. */
  private tell(event: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('phone logic failed', { event, reason: err instanceof Error ? err.message : String(err) });
    }
  }

  private playTone(name: ToneName, forMs?: number): void {
    this.stopTone();
    this.openAudio();
    this.tone = this.opts.tones.start(name);
    if (forMs !== undefined) {
      this.toneTimer = this.opts.clock.setTimer(forMs, () => {
        this.stopTone();
        if (!this.current) void this.closeAudio();
      }, 'tone');
    }
  }

  private stopTone(): void {
    this.tone = undefined;
    this.toneTimer?.cancel();
    this.toneTimer = undefined;
  }

  /** Opens the sound card for the call (idempotent); the capture clock then drives the media. */
  private openAudio(): void {
    if (this.device) return;
    let device: AudioDevice;
    try {
      device = this.opts.audio.open(this.opts.audioOptions);
    } catch (err) {
      this.log.error('audio device cannot be opened', { backend: this.opts.audio.name, reason: err instanceof Error ? err.message : String(err) });
      return;
    }
    this.device = device;
    device.start((pcm) => this.onCapture(device, pcm));
  }

  private async closeAudio(): Promise<void> {
    const device = this.device;
    this.device = undefined;
    if (device) {
      const s = device.stats();
      await device.stop();
      this.log.info('audio device closed', { backend: this.opts.audio.name, frames: s.captureFrames, xruns: s.xruns, restarts: s.restarts });
    }
  }

  /** One capture frame: the uplink takes it, and one playback frame comes back for the card. */
  private onCapture(device: AudioDevice, pcm: Int16Array): void {
    if (device !== this.device) return;
    const now = this.opts.clock.now();
    const current = this.current;
    let out: Int16Array | undefined;
    if (current && (current.state === 'connected' || current.state === 'dialing')) out = current.media.stream.tick(pcm, now);
    if (this.tone && !(current?.media.stream.receiving ?? false)) out = this.tone.next(pcm.length);
    device.play(out ?? new Int16Array(pcm.length));
  }
}
