/**
 * The device endpoint: this box's own handset or intercom as one party of the B2BUA. It holds an
 * active call and, when its phone logic takes call waiting, one more that is held or waiting;
 * opens the sound card for the active call, plays call-progress tones, answers calls (by itself
 * with `device.autoAnswer` when no phone logic listens), places calls, holds and resumes them
 * (RFC 3264 §8.4), and sends and receives DTMF. The CLI drives it through the control socket.
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
import type { LineEvents, PhoneLine } from '../phone/types.ts';
import { CallProgressTones, type DeviceSound, type ProgressTone } from './call-progress.ts';

/** What the device is doing; `held` when its only call is on hold. */
export type DeviceState = 'idle' | 'ringing' | 'dialing' | 'connected' | 'held';
/** One call's state: `waiting` rings as a second call (call waiting), `held` is on hold by the device. */
type CallState = 'ringing' | 'waiting' | 'dialing' | 'connected' | 'held';

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
  state: CallState;
  since: number;
}

/** How long the busy/congestion tone plays after a call the device placed failed. */
const FAILURE_TONE_MS = 3000;
/** Digits kept for `status`. */
const DIGIT_HISTORY = 20;

export class DeviceEndpoint implements DevicePort {
  /** The device's calls: at most one active (ringing, dialing, connected) and one held or waiting. */
  private calls: Current[] = [];
  /** A dial command is waiting for the B2BUA to place the call: the device is busy already. */
  private placing = false;
  private device: AudioDevice | undefined;
  /** Counters of the sound card openings already closed (see {@link audioCounters}). */
  private readonly audioTotals = { xruns: 0, restarts: 0 };
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
    answer: (id) => this.answerCall(id),
    // A call still ringing is refused as busy (the handset is off-hook, the intercom declines it).
    hangup: (id) => {
      const target = id === undefined ? this.current : this.byId(id);
      if (!target) return;
      if ((target.state === 'ringing' || target.state === 'waiting') && target.call.reject(486, 'Busy Here')) return;
      target.call.hangup();
    },
    hold: () => this.holdActive(),
    resume: () => this.resumeHeld(),
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
    const active = this.current;
    if (active) return active.state === 'waiting' ? 'ringing' : (active.state as DeviceState);
    return this.calls.some((c) => c.state === 'held') ? 'held' : 'idle';
  }

  /** The active call: ringing, dialing or connected (not held, not a waiting second call). */
  private get current(): Current | undefined {
    return this.calls.find((c) => c.state !== 'held' && c.state !== 'waiting') ?? (this.calls.length === 1 && this.calls[0]!.state === 'waiting' ? this.calls[0] : undefined);
  }

  private byId(id: string): Current | undefined {
    return this.calls.find((c) => c.call.id === id);
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
    const callerInfo = { user: caller.user, ...(caller.display ? { display: caller.display } : {}) };
    if (this.calls.length > 0 || this.placing) {
      // Call waiting: one more call while the device is in one, when the phone logic takes it.
      const waiting = this.phone?.waiting;
      if (!waiting || this.placing || this.calls.length > 1) return { status: 486, reason: 'Busy Here' };
      this.calls.push({ call, media: this.mediaOf(call), state: 'waiting', since: this.opts.clock.now() });
      this.log.info('device call waiting', { call: call.id, from: caller.user, ...(caller.display ? { name: caller.display } : {}) });
      this.tell('waiting', () => waiting.call(this.phone, callerInfo, call.id));
      return this.follow(call);
    }
    const media = this.mediaOf(call);
    this.calls.push({ call, media, state: 'ringing', since: this.opts.clock.now() });
    this.stopTone();
    this.log.info('device ringing', { call: call.id, from: caller.user, ...(caller.display ? { name: caller.display } : {}) });
    if (this.phone) this.tell('incoming', () => this.phone!.incoming(callerInfo, call.id));
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
    // A second call may be placed while the first is held (hook flash, then dial).
    const busy = this.calls.find((c) => c.state !== 'held') ?? (this.calls.length > 1 ? this.calls[0] : undefined);
    if (busy) return { ok: false, status: 0, reason: `the device is ${busy.state}` };
    if (this.placing) return { ok: false, status: 0, reason: 'the device is dialing' };
    this.placing = true;
    let placed: Awaited<ReturnType<DeviceEndpointOptions['dial']>>;
    try {
      placed = await this.opts.dial(number, (call) => {
        this.calls.push({ call, media: this.mediaOf(call), state: 'dialing', since: this.opts.clock.now() });
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
    const now = this.opts.clock.now();
    const others = this.calls.filter((o) => o !== c);
    return {
      ok: true,
      device: this.state,
      ...(c ? { call: c.call.id, remote: c.call.remote.user, seconds: Math.round((now - c.since) / 1000), media: c.media.stream.summary() } : {}),
      ...(others.length ? { others: others.map((o) => `${o.call.id} ${o.state} ${o.call.remote.user} ${Math.round((now - o.since) / 1000)}s`).join(', ') } : {}),
      digits: this.digits.map((d) => `${d.digit}:${d.source}:${d.durationMs}`).join(' '),
      audio: this.device?.stats() ?? null,
    };
  }

  /** Ends the call and releases the sound card (shutdown). */
  async close(): Promise<void> {
    for (const c of [...this.calls]) c.call.hangup('SIP;cause=503;text="Gateway shutting down"');
    this.stopTone();
    await this.closeAudio();
  }

  // ---- internals ----

  private mediaOf(call: DeviceCall): DeviceMedia {
    return call.media as DeviceMedia;
  }

  private answerCall(id?: string): boolean {
    const target = id === undefined ? this.current : this.byId(id);
    if (target?.state !== 'ringing' && target?.state !== 'waiting') return false;
    // A waiting call is answered once the active call is held (or gone).
    if (this.calls.some((c) => c !== target && c.state !== 'held')) return false;
    target.state = 'ringing';
    this.openAudio();
    return target.call.answer();
  }

  private holdActive(): boolean {
    const active = this.current;
    if (active?.state !== 'connected' || this.calls.some((c) => c.state === 'held')) return false;
    return this.setHold(active, true);
  }

  /** Resumes the held call; a connected active call takes its place on hold (swap). */
  private resumeHeld(): boolean {
    const held = this.calls.find((c) => c.state === 'held');
    if (!held) return false;
    const active = this.calls.find((c) => c !== held && c.state !== 'waiting');
    if (active && (active.state !== 'connected' || !this.setHold(active, true))) return false;
    return this.setHold(held, false);
  }

  /**
   * Holds or resumes a call: its state changes at once (the earpiece and microphone follow the
   * active call), the re-INVITE goes out, and a refusal is logged; the media stays as the far end
   * last agreed (RFC 3261 §14.1).
   */
  private setHold(target: Current, on: boolean): boolean {
    target.media.setHeld(on);
    const sent = target.call.hold(on, (accepted) => {
      if (!accepted) this.log.warn(on ? 'hold refused by the far end' : 'resume refused by the far end', { call: target.call.id });
    });
    if (!sent) {
      target.media.setHeld(!on);
      return false;
    }
    target.state = on ? 'held' : 'connected';
    this.log.info(on ? 'device holds call' : 'device resumes call', { call: target.call.id, remote: target.call.remote.user });
    if (on) this.stopTone();
    else this.openAudio();
    return true;
  }

  private follow(call: DeviceCall): LocalEnd {
    const entry = () => this.calls.find((c) => c.call === call);
    return {
      ringing: () => {
        const c = entry();
        if (!c) return;
        this.log.info('device hears ringing', { call: call.id });
        if (this.phone) this.tell('ringing', () => this.phone!.ringing());
        else if (!c.media.stream.receiving) this.playTone('ringback');
      },
      connected: () => {
        const c = entry();
        if (!c) return;
        c.state = 'connected';
        c.since = this.opts.clock.now();
        this.stopTone();
        this.openAudio();
        this.log.info('device connected', { call: call.id, remote: call.remote.user, codec: c.media.stream.codecName ?? '-' });
        if (this.phone) this.tell('connected', () => this.phone!.connected(call.id));
      },
      info: (contentType, body) => {
        const event = contentType === undefined ? undefined : parseDtmfInfo(contentType, body);
        if (!event) return 415;
        this.digitReceived({ digit: event.digit, durationMs: event.durationMs, source: 'info' });
        return 200;
      },
      ended: (cause, status) => {
        const c = entry();
        if (!c) return;
        const wasActive = c === this.current;
        const wasDialing = c.state === 'dialing';
        this.calls = this.calls.filter((o) => o !== c);
        this.log.info('device call ended', { call: call.id, reason: cause, ...(status === undefined ? {} : { status }) });
        if (this.phone) {
          if (wasActive) this.stopTone();
          this.tell('ended', () => this.phone!.ended(cause, status, call.id));
          // The phone logic may have started a tone (busy, congestion): the card stays open for it.
          if (!this.tone && !this.current) void this.closeAudio();
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

  private playTone(name: DeviceSound, forMs?: number): void {
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

  /** Sound card xruns and source restarts since start: closed devices' and the open one's (metrics). */
  audioCounters(): { xruns: number; restarts: number } {
    const open = this.device?.stats();
    return { xruns: this.audioTotals.xruns + (open?.xruns ?? 0), restarts: this.audioTotals.restarts + (open?.restarts ?? 0) };
  }

  private async closeAudio(): Promise<void> {
    const device = this.device;
    this.device = undefined;
    if (device) {
      const s = device.stats();
      this.audioTotals.xruns += s.xruns;
      this.audioTotals.restarts += s.restarts;
      await device.stop();
      this.log.info('audio device closed', { backend: this.opts.audio.name, frames: s.captureFrames, xruns: s.xruns, restarts: s.restarts });
    }
  }

  /**
   * One capture frame: the active call's uplink takes it, and one playback frame comes back for
   * the card. A tone replaces silence, and is mixed into the far end's audio in a connected call
   * (the call-waiting tone is heard over the conversation).
   */
  private onCapture(device: AudioDevice, pcm: Int16Array): void {
    if (device !== this.device) return;
    const now = this.opts.clock.now();
    const current = this.current;
    let out: Int16Array | undefined;
    if (current && (current.state === 'connected' || current.state === 'dialing')) out = current.media.stream.tick(pcm, now);
    if (this.tone) {
      const tone = this.tone.next(pcm.length);
      if (current?.state === 'connected' && out) out = mix(out, tone);
      else if (!(current?.media.stream.receiving ?? false)) out = tone;
    }
    device.play(out ?? new Int16Array(pcm.length));
  }
}

/** Sums two blocks with saturation. */
function mix(a: Int16Array, b: Int16Array): Int16Array {
  const out = new Int16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.max(-32768, Math.min(32767, a[i]! + (b[i] ?? 0)));
  return out;
}
