/**
 * The device endpoint with fakes around it: a sound card that records what it is given to play
 * and lets the test push capture frames, calls and media that record what the endpoint asks of
 * them, and a manual clock.
 */
import t from 'tap';
import { emptyStats, type AudioBackend, type AudioDevice, type AudioDeviceOptions, type CaptureHandler } from '../../src/audio/audio-device.ts';
import type { Party } from '../../src/calls/call.ts';
import type { DeviceCall } from '../../src/calls/device-call.ts';
import type { LocalEnd } from '../../src/calls/types.ts';
import { CallProgressTones } from '../../src/device/call-progress.ts';
import { DeviceEndpoint, type DeviceEndpointOptions } from '../../src/device/device-endpoint.ts';
import type { DtmfDigit } from '../../src/media/dtmf/types.ts';
import type { DeviceMedia } from '../../src/media/endpoint/device-media.ts';
import type { ToneName } from '../../src/media/tone/tone-sets.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';

const RATE = 8000;
const FRAME_MS = 20;
const FRAME = (RATE * FRAME_MS) / 1000;
/** The fake stream's playback: every sample this value, so the test can tell it from a tone. */
const STREAM_LEVEL = 1234;

class FakeDevice implements AudioDevice {
  readonly frameSamples = FRAME;
  onCapture: CaptureHandler | undefined;
  readonly played: Int16Array[] = [];
  stopped = false;
  start(onCapture: CaptureHandler): void {
    this.onCapture = onCapture;
  }
  play(pcm: Int16Array): void {
    this.played.push(pcm);
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  stats() {
    return { ...emptyStats(), captureFrames: this.played.length };
  }
}

class FakeBackend implements AudioBackend {
  readonly name = 'fake';
  readonly devices: FakeDevice[] = [];
  failOpen = false;
  open(_opts: AudioDeviceOptions): AudioDevice {
    if (this.failOpen) throw new Error('no such card');
    const d = new FakeDevice();
    this.devices.push(d);
    return d;
  }
  /** The device open now (the last one, not stopped). */
  get open_(): FakeDevice | undefined {
    const d = this.devices.at(-1);
    return d && !d.stopped ? d : undefined;
  }
}

/** The parts of an AudioStream the endpoint uses. */
class FakeStream {
  receiving = false;
  takesEvents = true;
  readonly ticks: number[] = [];
  readonly sent: string[] = [];
  private digitFns: ((d: DtmfDigit) => void)[] = [];
  readonly codecName = 'PCMU';
  onDigit(fn: (d: DtmfDigit) => void): void {
    this.digitFns.push(fn);
  }
  emitDigit(d: DtmfDigit): void {
    for (const fn of this.digitFns) fn(d);
  }
  sendDigits(digits: string): boolean {
    if (!this.takesEvents) return false;
    this.sent.push(digits);
    return true;
  }
  tick(capture: Int16Array, now: number): Int16Array {
    this.ticks.push(now);
    return new Int16Array(capture.length).fill(STREAM_LEVEL);
  }
  summary() {
    return { codec: 'PCMU', packetsSent: 5 };
  }
}

/** The parts of DeviceMedia the endpoint uses, besides the stream. */
class FakeMedia {
  held = false;
  constructor(readonly stream: FakeStream) {}
  setHeld(on: boolean): void {
    this.held = on;
  }
}

class FakeCall {
  readonly media: DeviceMedia;
  answered = 0;
  /** Re-INVITEs asked for (hold true/false) and whether one is in progress. */
  readonly holds: boolean[] = [];
  holdBusy = false;
  hungUp: (string | undefined)[] = [];
  readonly infos: { at: number; contentType: string; body: string }[] = [];
  infoStatus = 200;
  local: LocalEnd | undefined;
  constructor(
    readonly id: string,
    readonly incoming: boolean,
    readonly remote: Party,
    private readonly clock: ManualClock,
    readonly stream = new FakeStream(),
  ) {
    this.media = new FakeMedia(stream) as unknown as DeviceMedia;
  }
  hold(on: boolean, done: (accepted: boolean) => void): boolean {
    if (this.holdBusy) return false;
    this.holds.push(on);
    done(true);
    return true;
  }
  answer(): boolean {
    this.answered++;
    return this.incoming;
  }
  hangup(reason?: string): void {
    this.hungUp.push(reason);
  }
  readonly rejected: number[] = [];
  reject(status: number): boolean {
    this.rejected.push(status);
    return this.incoming;
  }
  info(contentType: string, body: string, done?: (status: number) => void): void {
    this.infos.push({ at: this.clock.now(), contentType, body });
    done?.(this.infoStatus);
  }
  get handle(): DeviceCall {
    return this as unknown as DeviceCall;
  }
}

class RecordingTones extends CallProgressTones {
  readonly started: ToneName[] = [];
  override start(name: ToneName) {
    this.started.push(name);
    return super.start(name);
  }
}

interface Rig {
  clock: ManualClock;
  backend: FakeBackend;
  tones: RecordingTones;
  log: MemoryLogger;
  endpoint: DeviceEndpoint;
  /** What the fake B2BUA does when the device dials. */
  dialResult: (follow: (call: DeviceCall) => LocalEnd) => Promise<DeviceCall | { status: number; reason: string }>;
  /** The next outgoing call the fake B2BUA creates. */
  lastDialled?: FakeCall;
  /** One capture frame into the open device; returns what the endpoint gave it to play. */
  capture(): Int16Array;
}

function rig(o: Partial<Pick<DeviceEndpointOptions, 'autoAnswer' | 'dtmf'>> = {}): Rig {
  const clock = new ManualClock();
  const backend = new FakeBackend();
  const tones = new RecordingTones('de', RATE);
  const log = new MemoryLogger();
  const r: Rig = {
    clock,
    backend,
    tones,
    log,
    endpoint: undefined as unknown as DeviceEndpoint,
    dialResult: async (follow) => {
      const call = new FakeCall(`out${backend.devices.length}`, false, { user: '200' }, clock);
      r.lastDialled = call;
      call.local = follow(call.handle);
      return call.handle;
    },
    capture: () => {
      const d = backend.open_;
      if (!d?.onCapture) throw new Error('no open device');
      clock.advance(FRAME_MS);
      d.onCapture(new Int16Array(FRAME).fill(-5));
      return d.played.at(-1)!;
    },
  };
  r.endpoint = new DeviceEndpoint({
    clock,
    logger: log,
    audio: backend,
    audioOptions: { rate: RATE, frameMs: FRAME_MS, capture: 'default', playback: 'default' },
    createMedia: async () => new FakeMedia(new FakeStream()) as unknown as DeviceMedia,
    dial: (_number, follow) => r.dialResult(follow),
    autoAnswer: o.autoAnswer ?? false,
    tones,
    dtmf: o.dtmf ?? { send: 'rfc4733', durationMs: 100, gapMs: 50 },
  });
  return r;
}

function incoming(r: Rig, id = 'in1', stream?: FakeStream): { call: FakeCall; result: ReturnType<DeviceEndpoint['incoming']> } {
  const call = new FakeCall(id, true, { user: '100', display: 'Door' }, r.clock, stream);
  const result = r.endpoint.incoming(call.handle, call.remote);
  if (!('status' in result)) call.local = result;
  return { call, result };
}

const isStream = (pcm: Int16Array) => pcm.every((s) => s === STREAM_LEVEL);
const isSilent = (pcm: Int16Array) => pcm.every((s) => s === 0);

t.test('a call to the device rings; a second one while busy gets 486', async (t) => {
  const r = rig();
  const first = incoming(r);
  t.notOk('status' in first.result, 'the first call is followed');
  t.equal(r.endpoint.state, 'ringing');
  t.equal(r.backend.devices.length, 0, 'the sound card stays closed while ringing (no auto-answer)');
  const second = incoming(r, 'in2');
  t.same(second.result, { status: 486, reason: 'Busy Here' }, 'busy here');
  t.equal(r.endpoint.state, 'ringing', 'the first call is untouched');
  r.clock.advance(10_000);
  t.equal(first.call.answered, 0, 'nothing answers without auto-answer');
});

t.test('auto-answer answers on the next turn, then the stream drives the card', async (t) => {
  const r = rig({ autoAnswer: true });
  const { call } = incoming(r);
  t.equal(call.answered, 0, 'not answered inside incoming() (the B2BUA still has to take the LocalEnd)');
  r.clock.advance(0);
  t.equal(call.answered, 1, 'answered');
  t.equal(r.backend.devices.length, 1, 'the sound card is opened');
  call.local!.connected();
  t.equal(r.endpoint.state, 'connected');
  const out = r.capture();
  t.ok(isStream(out), 'the card plays what the stream returns');
  t.same(call.stream.ticks, [r.clock.now()], 'the stream ticks with the capture clock');
  r.clock.advance(5000);
  const status = r.endpoint.status();
  t.match(status, { ok: true, device: 'connected', call: 'in1', remote: '100', seconds: 5, media: { codec: 'PCMU' } }, 'status');
  call.local!.ended('bye');
  t.equal(r.endpoint.state, 'idle', 'idle after the call');
  t.ok(r.backend.devices[0]!.stopped, 'the sound card is closed');
  t.same(r.tones.started, [], 'no tone was played');
});

t.test('commands when there is nothing to act on', async (t) => {
  const r = rig();
  const cases = [
    { name: 'answer when idle', run: () => r.endpoint.answer(), reply: { ok: false, error: 'no call is ringing' } },
    { name: 'hangup when idle', run: () => r.endpoint.hangup(), reply: { ok: false, error: 'no call' } },
    { name: 'dtmf when idle', run: () => r.endpoint.sendDigits('1'), reply: { ok: false, error: 'no connected call' } },
  ];
  for (const c of cases) t.same(c.run(), c.reply, c.name);
  const { call } = incoming(r);
  t.same(r.endpoint.sendDigits('1'), { ok: false, error: 'no connected call' }, 'dtmf while ringing');
  t.same(await r.endpoint.dial('200'), { ok: false, error: 'the device is ringing' }, 'dial while ringing');
  t.same(r.endpoint.answer(), { ok: true, call: 'in1' }, 'answer while ringing');
  t.equal(call.answered, 1);
  call.local!.connected();
  t.same(r.endpoint.answer(), { ok: false, error: 'no call is ringing' }, 'answer when connected');
  t.same(r.endpoint.hangup(), { ok: true, call: 'in1' }, 'hangup when connected');
  t.same(call.hungUp, [undefined], 'the call is hung up');
  t.match(r.endpoint.status(), { ok: true, device: 'connected' }, 'still connected until the call layer says it ended');
});

t.test('a failed outgoing call plays busy or congestion for 3 s, then closes the card', async (t) => {
  const cases = [
    { name: '486 Busy Here', status: 486, tone: 'busy' },
    { name: '600 Busy Everywhere', status: 600, tone: 'busy' },
    { name: '404 Not Found', status: 404, tone: 'congestion' },
    { name: '503', status: 503, tone: 'congestion' },
  ];
  for (const c of cases) {
    const r = rig();
    const reply = await r.endpoint.dial('200');
    t.match(reply, { ok: true, call: 'out0', state: 'dialing' }, `${c.name}: dialling`);
    const call = r.lastDialled!;
    t.ok(isStream(r.capture()), `${c.name}: early audio path open while dialling`);
    call.local!.ringing();
    t.same(r.tones.started, ['ringback'], `${c.name}: ringback while it rings`);
    const reference = new CallProgressTones('de', RATE).start('ringback');
    t.same(r.capture(), reference.next(FRAME), `${c.name}: the card plays the ringback tone`);
    call.local!.ended(`rejected ${c.status}`, c.status);
    t.equal(r.endpoint.state, 'idle', `${c.name}: idle`);
    t.same(r.tones.started, ['ringback', c.tone], `${c.name}: ${c.tone} tone`);
    const failure = new CallProgressTones('de', RATE).start(c.tone as ToneName);
    t.same(r.capture(), failure.next(FRAME), `${c.name}: the card plays it`);
    r.clock.advance(2900);
    t.notOk(r.backend.devices[0]!.stopped, `${c.name}: still playing at 2.9 s`);
    r.clock.advance(100);
    t.ok(r.backend.devices[0]!.stopped, `${c.name}: the card is closed after 3 s`);
    t.equal(r.backend.devices.length, 1, `${c.name}: one card opening for the whole call`);
  }
});

t.test('calls that end without a failure tone', async (t) => {
  const cases = [
    { name: 'cancelled by the device (487)', status: 487 as number | undefined },
    { name: 'ended without a status', status: undefined },
  ];
  for (const c of cases) {
    const r = rig();
    await r.endpoint.dial('200');
    r.lastDialled!.local!.ringing();
    r.lastDialled!.local!.ended('cancelled', c.status);
    t.same(r.tones.started, ['ringback'], `${c.name}: only the ringback played`);
    t.ok(r.backend.devices[0]!.stopped, `${c.name}: the card is closed at once`);
  }
  const r = rig();
  await r.endpoint.dial('200');
  r.lastDialled!.stream.receiving = true;
  r.lastDialled!.local!.ringing();
  t.same(r.tones.started, [], 'early media from the far end: no local ringback');
  t.ok(isStream(r.capture()), 'the far end is heard instead');
});

t.test('a refused dial answers the command and opens nothing', async (t) => {
  const r = rig();
  r.dialResult = async () => ({ status: 404, reason: 'Not Found' });
  t.same(await r.endpoint.dial('999'), { ok: false, error: '404 Not Found' });
  t.equal(r.backend.devices.length, 0, 'no sound card opened');
  t.equal(r.endpoint.state, 'idle');
});

t.test('the device is busy while a dial is still being placed', async (t) => {
  const r = rig();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const place = r.dialResult;
  r.dialResult = async (follow) => {
    await gate;
    return place(follow);
  };
  const dialling = r.endpoint.dial('200');
  const meanwhile = incoming(r);
  t.same(meanwhile.result, { status: 486, reason: 'Busy Here' }, 'a call arriving meanwhile is refused');
  t.same(await r.endpoint.dial('300'), { ok: false, error: 'the device is dialing' }, 'a second dial is refused');
  release();
  t.match(await dialling, { ok: true, state: 'dialing' }, 'the first dial goes ahead');
  t.equal(r.endpoint.state, 'dialing');
});

t.test('a new call stops the failure tone of the previous one', async (t) => {
  const r = rig();
  await r.endpoint.dial('200');
  r.lastDialled!.local!.ended('rejected 486', 486);
  t.notOk(isStream(r.capture()) || isSilent(r.capture()), 'busy tone playing');
  await r.endpoint.dial('201');
  t.ok(isStream(r.capture()), 'the new call is heard, not the old busy tone');
  r.clock.advance(5000);
  t.notOk(r.backend.devices[0]!.stopped, 'and the old tone timer does not close the card of the new call');
});

t.test('DTMF in: INFO bodies and RTP events reach the digit listeners', async (t) => {
  const r = rig();
  const heard: DtmfDigit[] = [];
  r.endpoint.onDigit((d) => heard.push(d));
  r.endpoint.onDigit(() => {
    throw new Error('listener bug');
  });
  // The B2BUA creates the call's media through the endpoint, which listens to its stream.
  const media = await r.endpoint.media();
  const { call } = incoming(r, 'in1', (media as unknown as { stream: FakeStream }).stream);
  r.endpoint.answer();
  call.local!.connected();
  const cases = [
    { name: 'dtmf-relay', type: 'application/dtmf-relay', body: 'Signal=5\r\nDuration=160\r\n', status: 200, digit: { digit: '5', durationMs: 160, source: 'info' } },
    { name: 'dtmf-relay with parameters, any case', type: 'Application/DTMF-Relay; charset=utf-8', body: 'signal= #\r\nduration= 250\r\n', status: 200, digit: { digit: '#', durationMs: 250, source: 'info' } },
    { name: 'application/dtmf', type: 'application/dtmf', body: '7', status: 200, digit: { digit: '7', durationMs: 100, source: 'info' } },
    { name: 'another content type', type: 'application/media_control+xml', body: '<x/>', status: 415, digit: undefined },
    { name: 'no content type', type: undefined, body: '', status: 415, digit: undefined },
  ];
  for (const c of cases) {
    const before = heard.length;
    t.equal(call.local!.info(c.type, Buffer.from(c.body)), c.status, `${c.name}: ${c.status}`);
    t.same(heard.slice(before), c.digit ? [c.digit] : [], `${c.name}: ${c.digit ? 'digit heard' : 'nothing heard'}`);
  }
  call.stream.emitDigit({ digit: '9', durationMs: 120, source: 'rfc4733' });
  t.same(heard.at(-1), { digit: '9', durationMs: 120, source: 'rfc4733' }, 'RTP events from the stream');
  t.equal(r.log.records.filter((l) => l.msg === 'dtmf listener failed').length, 4, 'a throwing listener is logged, the others still run');
  t.match(r.endpoint.status(), { digits: '5:info:160 #:info:250 7:info:100 9:rfc4733:120' }, 'status lists the digits');
});

t.test('DTMF out: RFC 4733 when the stream takes it, else INFO per digit', async (t) => {
  const cases = [
    { name: 'rfc4733 accepted', send: 'rfc4733' as const, takesEvents: true, method: 'rfc4733', infos: [] as string[] },
    { name: 'no telephone-event: INFO', send: 'rfc4733' as const, takesEvents: false, method: 'info', infos: ['0:1', '150:2', '300:#'] },
    { name: 'configured for INFO', send: 'info' as const, takesEvents: true, method: 'info', infos: ['0:1', '150:2', '300:#'] },
  ];
  for (const c of cases) {
    const r = rig({ dtmf: { send: c.send, durationMs: 100, gapMs: 50 } });
    const { call } = incoming(r);
    r.endpoint.answer();
    call.local!.connected();
    call.stream.takesEvents = c.takesEvents;
    const start = r.clock.now();
    t.same(r.endpoint.sendDigits('12#'), { ok: true, method: c.method }, `${c.name}: reply`);
    t.same(call.stream.sent, c.method === 'rfc4733' ? ['12#'] : [], `${c.name}: events queued on the stream`);
    r.clock.advance(1000);
    t.same(call.infos.map((i) => `${i.at - start}:${/Signal=(.)/.exec(i.body)![1]}`), c.infos, `${c.name}: INFO times (duration + gap apart)`);
    t.ok(call.infos.every((i) => i.contentType === 'application/dtmf-relay' && i.body.includes('Duration=100')), `${c.name}: dtmf-relay bodies`);
  }
  const r = rig({ dtmf: { send: 'info', durationMs: 100, gapMs: 50 } });
  const { call } = incoming(r);
  r.endpoint.answer();
  call.local!.connected();
  call.infoStatus = 481;
  r.endpoint.sendDigits('1');
  r.clock.advance(0);
  t.ok(r.log.records.some((l) => l.msg === 'dtmf INFO refused' && l.fields.status === 481), 'a refused INFO is logged');
});

t.test('the sound card failing to open is logged, the call goes on', async (t) => {
  const r = rig({ autoAnswer: true });
  r.backend.failOpen = true;
  const { call } = incoming(r);
  r.clock.advance(0);
  t.equal(call.answered, 1, 'answered anyway');
  call.local!.connected();
  t.equal(r.endpoint.state, 'connected');
  t.ok(r.log.records.some((l) => l.level === 'error' && l.msg === 'audio device cannot be opened'), 'logged');
  t.match(r.endpoint.status(), { audio: null }, 'status shows no audio device');
});

t.test('close hangs up with a reason and releases the card', async (t) => {
  const r = rig({ autoAnswer: true });
  const { call } = incoming(r);
  r.clock.advance(0);
  call.local!.connected();
  await r.endpoint.close();
  t.same(call.hungUp, ['SIP;cause=503;text="Gateway shutting down"'], 'hung up with a Reason');
  t.ok(r.backend.devices[0]!.stopped, 'card stopped');
});

t.test('callbacks of a call that is no longer current change nothing', async (t) => {
  const r = rig({ autoAnswer: true });
  const old = incoming(r, 'old');
  old.call.local!.ended('cancelled');
  const cur = incoming(r, 'new');
  r.clock.advance(0);
  old.call.local!.connected();
  t.equal(r.endpoint.state, 'ringing', 'a stale connected() is ignored');
  old.call.local!.ended('bye');
  t.equal(r.endpoint.state, 'ringing', 'a stale ended() is ignored');
  cur.call.local!.connected();
  t.equal(r.endpoint.state, 'connected');
});

t.test('the line for the phone logic: events instead of auto-answer and own tones', async (t) => {
  const r = rig({ autoAnswer: true });
  const events: string[] = [];
  r.endpoint.line.listen({
    incoming: (c) => events.push(`incoming ${c.user}`),
    ringing: () => events.push('ringing'),
    connected: () => events.push('connected'),
    ended: (cause, status) => events.push(`ended ${cause} ${status ?? '-'}`),
    digit: (d) => events.push(`digit ${d.digit} ${d.source}`),
  });
  const { call } = incoming(r);
  r.clock.advance(100);
  t.same(events, ['incoming 100'], 'a call rings the phone logic');
  t.equal(call.answered, 0, 'and is not answered by itself');
  t.equal(r.endpoint.line.answer(), true, 'line.answer answers it');
  call.local!.connected();
  t.equal(call.local!.info('application/dtmf-relay', Buffer.from('Signal=5\r\nDuration=100\r\n')), 200, 'INFO accepted');
  r.endpoint.line.hangup();
  t.same(call.hungUp, [undefined], 'line.hangup hangs up');
  call.local!.ended('hung up by the device');
  t.same(events, ['incoming 100', 'connected', 'digit 5 info', 'ended hung up by the device -'], 'connected, digit and end reach the phone logic');

  // A call ringing while the phone logic is busy is refused as busy.
  const second = incoming(r, 'in2');
  r.endpoint.line.hangup();
  t.same(second.call.rejected, [486], 'line.hangup on a ringing call refuses it with 486');
  second.call.local!.ended('rejected 486', 486);
  events.length = 0;

  // Outgoing: the phone logic chooses the tones.
  events.length = 0;
  r.endpoint.line.playTone('dial');
  t.same(r.tones.started, ['dial'], 'line.playTone plays the dial tone');
  const dialTone = new CallProgressTones('de', RATE).start('dial');
  t.same(r.capture(), dialTone.next(FRAME), 'on the card');
  t.same(await r.endpoint.line.dial('200'), { ok: true }, 'line.dial places the call');
  r.lastDialled!.local!.ringing();
  t.same(r.tones.started, ['dial'], 'no ringback of the device’s own: the phone logic plays it');
  r.lastDialled!.local!.ended('rejected 486', 486);
  t.same(events, ['ringing', 'ended rejected 486 486'], 'ringing and the failure reach the phone logic');
  t.same(r.tones.started, ['dial'], 'no busy tone of its own either');
  r.endpoint.line.playTone('busy');
  t.same(r.tones.started, ['dial', 'busy'], 'the phone logic plays busy');
  r.endpoint.line.playTone(undefined);
  t.ok(r.backend.devices.at(-1)!.stopped, 'stopping the tone with no call closes the card');
  r.dialResult = async () => ({ status: 404, reason: 'Not Found' });
  t.same(await r.endpoint.line.dial('999'), { ok: false, status: 404, reason: 'Not Found' }, 'a refused dial gives its status');
});

t.test('two calls on the line: hold, a second call, swap, call waiting', async (t) => {
  const r = rig();
  const events: string[] = [];
  r.endpoint.line.listen({
    incoming: (c, id) => events.push(`incoming ${c.user} ${id}`),
    waiting: (c, id) => events.push(`waiting ${c.user} ${id}`),
    ringing: () => events.push('ringing'),
    connected: (id) => events.push(`connected ${id}`),
    ended: (cause, status, id) => events.push(`ended ${id} ${cause} ${status ?? '-'}`),
    digit: (d) => events.push(`digit ${d.digit}`),
  });
  const line = r.endpoint.line;
  t.equal(line.hold(), false, 'nothing to hold');
  t.equal(line.resume(), false, 'nothing to resume');
  t.same(await line.dial('200'), { ok: true });
  const first = r.lastDialled!;
  const firstMedia = first.media as unknown as FakeMedia;
  t.equal(line.hold(), false, 'a call not yet connected cannot be held');
  first.local!.connected();
  t.equal(line.hold(), true, 'hold the connected call');
  t.same(first.holds, [true], 're-INVITE to hold');
  t.equal(firstMedia.held, true, 'its media offers inactive');
  t.equal(r.endpoint.state, 'held');
  t.equal(line.hold(), false, 'one held call at most');
  const before = first.stream.ticks.length;
  r.capture();
  t.equal(first.stream.ticks.length, before, 'the held call gets no audio');

  t.same(await line.dial('300'), { ok: true }, 'a second call while the first is held');
  const second = r.lastDialled!;
  t.not(second, first);
  t.same(await r.endpoint.dial('400'), { ok: false, error: 'the device is dialing' }, 'no third call');
  second.local!.connected();
  t.equal(r.endpoint.state, 'connected');
  r.capture();
  t.equal(second.stream.ticks.length, 1, 'the active call gets the audio');
  t.match(r.endpoint.status(), { device: 'connected', call: second.id, others: /held 200/ }, 'status lists the held call');

  t.equal(line.resume(), true, 'swap');
  t.same(second.holds, [true], 'the active call is held');
  t.same(first.holds, [true, false], 'the held call is resumed');
  r.capture();
  t.equal(first.stream.ticks.length, before + 1, 'the resumed call has the audio');

  // Call waiting: a third call is refused while two are on the line.
  const third = incoming(r, 'in3');
  t.match(third.result, { status: 486 }, 'busy with two calls');
  second.local!.ended('bye');
  t.match(events.at(-1), /^ended out\d+ bye -$/, 'the held call ended');
  const waiting = incoming(r, 'w1');
  t.notOk('status' in waiting.result, 'a second call waits');
  t.equal(events.at(-1), 'waiting 100 w1', 'the phone logic hears of it');
  t.equal(line.answer('w1'), false, 'not answered while the active call is not held');
  line.playTone('callWaiting');
  const mixed = r.capture();
  t.ok(mixed.some((v) => v !== STREAM_LEVEL), 'the call-waiting tone is mixed into the conversation');
  t.ok(mixed.filter((v) => v === STREAM_LEVEL).length < FRAME, 'over the far end\'s audio');
  line.playTone(undefined);
  t.equal(line.hold(), true);
  t.equal(line.answer('w1'), true, 'the waiting call is answered once the other is held');
  t.equal(waiting.call.answered, 1);
  waiting.call.local!.connected();
  t.equal(events.at(-1), 'connected w1');
  line.hangup('w1');
  t.same(waiting.call.hungUp, [undefined], 'hangup by id');
  waiting.call.local!.ended('bye');
  t.equal(r.endpoint.state, 'held');
  t.equal(line.resume(), true, 'the held call comes back');
  t.equal(r.endpoint.state, 'connected');

  // Without waiting() in the phone logic a second call is busy.
  const plain = rig();
  plain.endpoint.line.listen({ incoming: () => {}, ringing: () => {}, connected: () => {}, ended: () => {}, digit: () => {} });
  incoming(plain, 'a');
  t.match(incoming(plain, 'b').result, { status: 486 }, 'no call waiting: 486');
});
