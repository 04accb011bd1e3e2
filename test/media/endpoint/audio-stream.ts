/**
 * Two device audio streams wired back to back in memory: each one's RTP goes straight into the
 * other's receiveRtp (optionally through a lossy, reordering link), both driven by 20 ms capture
 * frames at the card rate of 48 kHz on a manual clock. The media descriptions come from two
 * EndpointSdp instances doing a real offer/answer, and the resampler is the real speex one.
 */
import t from 'tap';
import { builtinCodecs } from '../../../src/media/codec/builtin.ts';
import type { DtmfDigit } from '../../../src/media/dtmf/types.ts';
import { AudioStream } from '../../../src/media/endpoint/audio-stream.ts';
import { EndpointSdp, type NegotiatedMedia } from '../../../src/media/endpoint/endpoint-sdp.ts';
import { loadSpeexResampler } from '../../../src/media/resample/speex-resampler.ts';
import { decodeRtcp, type RtcpPacket } from '../../../src/media/rtcp/rtcp-packet.ts';
import { decodeRtpHeader } from '../../../src/media/rtp-packet.ts';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { prng } from '../../helpers/prng.ts';
import { dominantFrequency } from '../../helpers/wav.ts';

const CARD_RATE = 48000;
const TICK_MS = 20;
const FRAME = (CARD_RATE * TICK_MS) / 1000;
const TONE_A = 700;
const TONE_B = 1100;

const resamplers = await loadSpeexResampler();
const registry = builtinCodecs();

/** What a capture callback returns for the frame starting at sample `at`. */
type Capture = (at: number) => Int16Array;

function tone(frequency: number, amplitude = 8000): Capture {
  return (at) => {
    const out = new Int16Array(FRAME);
    for (let i = 0; i < FRAME; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * frequency * (at + i)) / CARD_RATE));
    return out;
  };
}

/** What happens to each datagram on the way from one side to the other. */
interface Link {
  /** Probability that a packet is dropped. */
  loss: number;
  /** Probability that a packet is held back and delivered after the next one. */
  reorder: number;
  /** Drops RTP whose header says so (e.g. everything). */
  filter?: (pt: number) => boolean;
}

const CLEAN: Link = { loss: 0, reorder: 0 };

class Side {
  readonly played: Int16Array[] = [];
  readonly digits: DtmfDigit[] = [];
  readonly sentRtp: Uint8Array[] = [];
  readonly sentRtcp: Uint8Array[] = [];
  readonly stream: AudioStream;
  /** Datagrams on their way to the other side. */
  readonly outbox: { rtp: boolean; bytes: Uint8Array }[] = [];
  /** RTP datagrams the link let through. */
  delivered = 0;
  private held: Uint8Array | undefined;
  private at = 0;

  constructor(
    clock: ManualClock,
    seed: number,
    public capture: Capture,
    private readonly link: Link,
    private readonly chance: () => number,
    inbandDtmf = true,
    echoSuppression = false,
  ) {
    this.stream = new AudioStream({
      clock,
      random: new SeededRandom(seed),
      resamplers,
      cardRate: CARD_RATE,
      jitter: { minDelayMs: 20, maxDelayMs: 200 },
      inbandDtmf,
      send: {
        rtp: (p) => {
          const bytes = p.slice();
          this.sentRtp.push(bytes);
          this.forward(bytes);
        },
        rtcp: (p) => {
          const bytes = p.slice();
          this.sentRtcp.push(bytes);
          this.outbox.push({ rtp: false, bytes });
        },
      },
      cname: `side-${seed}@test`,
      echoSuppression,
    });
    this.stream.onDigit((d) => this.digits.push(d));
  }

  tick(now: number): void {
    this.played.push(this.stream.tick(this.capture(this.at), now));
    this.at += FRAME;
  }

  /** Playback of the last `seconds`. */
  lastPlayed(seconds: number): Int16Array {
    const frames = this.played.slice(-Math.round((seconds * 1000) / TICK_MS));
    const out = new Int16Array(frames.length * FRAME);
    frames.forEach((f, i) => out.set(f, i * FRAME));
    return out;
  }

  private forward(bytes: Uint8Array): void {
    if (this.link.filter && !this.link.filter(decodeRtpHeader(bytes).payloadType)) return;
    if (this.chance() < this.link.loss) return;
    if (this.held === undefined && this.chance() < this.link.reorder) {
      this.held = bytes;
      return;
    }
    this.outbox.push({ rtp: true, bytes });
    this.delivered++;
    if (this.held !== undefined) {
      this.outbox.push({ rtp: true, bytes: this.held });
      this.delivered++;
      this.held = undefined;
    }
  }
}

interface PairOptions {
  /** Codec preference of A (the offerer); B accepts everything built in. */
  codec: string;
  aToB?: Link;
  bToA?: Link;
  /** Strip telephone-event from A's offer on its way to B (a far end without RFC 4733). */
  noEvents?: boolean;
  /** A is a speaker-and-microphone station: its microphone hears its own speaker 10 dB down. */
  echoA?: { suppress: boolean };
}

/** A offers, B answers, both streams configured; `run` advances both in 20 ms ticks. */
class Pair {
  readonly clock = new ManualClock();
  readonly a: Side;
  readonly b: Side;
  readonly sdpA: EndpointSdp;
  readonly sdpB: EndpointSdp;
  mediaA!: NegotiatedMedia;
  mediaB!: NegotiatedMedia;

  constructor(o: PairOptions) {
    const chance = prng(42);
    this.a = new Side(this.clock, 11, tone(TONE_A), o.aToB ?? CLEAN, chance, true, o.echoA?.suppress ?? false);
    if (o.echoA) {
      const a = this.a;
      a.capture = () => {
        const last = a.played.at(-1);
        return last ? Int16Array.from(last, (v) => Math.round(v * 0.316)) : new Int16Array(FRAME);
      };
    }
    this.b = new Side(this.clock, 22, tone(TONE_B), o.bToA ?? CLEAN, chance);
    this.sdpA = new EndpointSdp(registry.ordered([o.codec]), new SeededRandom(1), { address: () => '192.0.2.1', port: () => 4000 });
    this.sdpB = new EndpointSdp(registry.list(), new SeededRandom(2), { address: () => '192.0.2.2', port: () => 5000 });
    this.negotiate('sendrecv', o.noEvents ?? false);
  }

  /** One offer/answer from A with `direction`; both streams take the result. */
  negotiate(direction: 'sendrecv' | 'sendonly', noEvents = false): void {
    let offer = this.sdpA.offer(direction);
    if (noEvents) offer = offer.replace(/ 101 102/, '').replace(/a=(rtpmap|fmtp):10[12] .*\r\n/g, '');
    const answer = this.sdpB.answerOffer(offer);
    if (!answer.ok) throw new Error(`B refused the offer: ${answer.reason}`);
    const taken = this.sdpA.takeAnswer(answer.sdp);
    if (!taken.ok) throw new Error(`A refused the answer: ${taken.reason}`);
    this.mediaA = taken.media;
    this.mediaB = answer.media;
    this.a.stream.configure(this.mediaA);
    this.b.stream.configure(this.mediaB);
  }

  run(ms: number): void {
    for (let elapsed = 0; elapsed < ms; elapsed += TICK_MS) {
      this.clock.advance(TICK_MS);
      const now = this.clock.now();
      this.a.tick(now);
      this.b.tick(now);
      deliver(this.a.outbox, this.b.stream, now);
      deliver(this.b.outbox, this.a.stream, now);
    }
  }
}

function deliver(outbox: Side['outbox'], to: AudioStream, now: number): void {
  for (const d of outbox.splice(0)) {
    if (d.rtp) to.receiveRtp(d.bytes, now);
    else to.receiveRtcp(d.bytes, now);
  }
}

const CODECS = [
  { name: 'PCMU', pt: 0 },
  { name: 'G722', pt: 9 },
  { name: 'opus', pt: 96 },
  { name: 'L16/16000', pt: 96 },
];

t.test('each side plays the tone the other captures, for every codec', async (t) => {
  for (const c of CODECS) {
    const pair = new Pair({ codec: c.name });
    pair.run(2000);
    t.equal(pair.a.stream.codecName, c.name.split('/')[0], `${c.name}: A uses the codec`);
    t.equal(pair.b.stream.codecName, c.name.split('/')[0], `${c.name}: B uses the codec`);
    t.equal(decodeRtpHeader(pair.a.sentRtp[0]!).payloadType, c.pt, `${c.name}: A sends with the payload type of B's answer`);
    const heardByA = dominantFrequency(pair.a.lastPlayed(1), CARD_RATE);
    const heardByB = dominantFrequency(pair.b.lastPlayed(1), CARD_RATE);
    t.equal(heardByA.frequency, TONE_B, `${c.name}: A hears B's ${TONE_B} Hz`);
    t.equal(heardByB.frequency, TONE_A, `${c.name}: B hears A's ${TONE_A} Hz`);
    t.ok(heardByA.ratio > 0.95 && heardByB.ratio > 0.95, `${c.name}: clean tones (${heardByA.ratio.toFixed(3)}, ${heardByB.ratio.toFixed(3)})`);
    // 8000 amplitude → rms 5657; the codecs keep it within a few percent.
    t.ok(Math.abs(heardByA.rms - 5657) < 300, `${c.name}: level kept (rms ${heardByA.rms.toFixed(0)})`);
    t.equal(pair.a.sentRtp.length, 100, `${c.name}: one packet per 20 ms`);
    t.ok(pair.a.stream.receiving, `${c.name}: A knows audio is arriving`);
  }
});

t.test('RFC 4733 digits sent by A arrive at B once each with their duration', async (t) => {
  for (const codec of ['PCMU', 'opus']) {
    const pair = new Pair({ codec });
    pair.run(200);
    t.ok(pair.a.stream.sendDigits('123#', { durationMs: 100, gapMs: 100 }), `${codec}: the far end takes telephone-event`);
    pair.run(1500);
    const b = pair.b.digits;
    t.same(b.map((d) => d.digit), ['1', '2', '3', '#'], `${codec}: digits in order`);
    t.ok(b.every((d) => d.source === 'rfc4733'), `${codec}: reported as RFC 4733 events`);
    t.ok(b.every((d) => Math.abs(d.durationMs - 100) <= 20), `${codec}: durations ≈100 ms (${b.map((d) => d.durationMs).join(', ')})`);
    const eventPt = pair.mediaA.event!.pt;
    const events = pair.a.sentRtp.filter((p) => decodeRtpHeader(p).payloadType === eventPt);
    // Per digit: updates every 20 ms, the last at 80 ms carrying E, sent three times (RFC 4733 §2.5.1.4).
    t.equal(events.length, 4 * 7, `${codec}: ${events.length} event packets on pt ${eventPt}`);
    t.equal(pair.a.digits.length, 0, `${codec}: nothing echoed back to A`);
    t.equal(dominantFrequency(pair.b.lastPlayed(0.5), CARD_RATE).frequency, TONE_A, `${codec}: audio resumes after the digits`);
  }
});

t.test('5 % loss and reordering between the sides: the tone and the digits still come through', async (t) => {
  const lossy: Link = { loss: 0.05, reorder: 0.05 };
  const pair = new Pair({ codec: 'G722', aToB: lossy, bToA: lossy });
  pair.run(1000);
  pair.a.stream.sendDigits('59', { durationMs: 100, gapMs: 100 });
  pair.run(2000);
  const heardByB = dominantFrequency(pair.b.lastPlayed(1.5), CARD_RATE);
  const heardByA = dominantFrequency(pair.a.lastPlayed(1.5), CARD_RATE);
  t.equal(heardByB.frequency, TONE_A, `B hears ${TONE_A} Hz (ratio ${heardByB.ratio.toFixed(3)})`);
  t.equal(heardByA.frequency, TONE_B, `A hears ${TONE_B} Hz (ratio ${heardByA.ratio.toFixed(3)})`);
  t.ok(heardByB.ratio > 0.8 && heardByA.ratio > 0.8, 'concealment keeps the tone dominant');
  t.same(pair.b.digits.map((d) => d.digit), ['5', '9'], 'the redundant event packets survive the loss');
  const summary = pair.b.stream.summary();
  t.ok(Number(summary.concealed) > 0, `B concealed ${summary.concealed} frames`);
});

t.test('hold: the side answering recvonly stops sending, resuming brings the audio back', async (t) => {
  const pair = new Pair({ codec: 'PCMU' });
  pair.run(500);
  // A puts B on hold (RFC 3264 §8.4: sendonly, answered recvonly).
  pair.negotiate('sendonly');
  t.equal(pair.mediaA.direction, 'sendonly', 'A only sends');
  t.equal(pair.mediaB.direction, 'recvonly', 'B only receives');
  t.ok(pair.b.stream.holding, 'B is held');
  t.notOk(pair.a.stream.holding, 'A is not');
  const sentByB = pair.b.sentRtp.length;
  const sentByA = pair.a.sentRtp.length;
  pair.run(1000);
  t.equal(pair.b.sentRtp.length, sentByB, 'B sent no RTP while held');
  t.equal(pair.a.sentRtp.length - sentByA, 50, 'A kept sending');
  t.equal(dominantFrequency(pair.b.lastPlayed(0.5), CARD_RATE).frequency, TONE_A, 'B still hears A');
  t.ok(dominantFrequency(pair.a.lastPlayed(0.5), CARD_RATE).rms < 50, 'A hears silence');
  pair.negotiate('sendrecv');
  pair.run(1000);
  t.ok(pair.b.sentRtp.length - sentByB >= 50, 'B sends again after the resume');
  t.equal(dominantFrequency(pair.a.lastPlayed(0.5), CARD_RATE).frequency, TONE_B, 'A hears B again');
  const ts = pair.b.sentRtp.slice(sentByB).map((p) => decodeRtpHeader(p));
  t.ok(ts.every((h, i) => i === 0 || h.sequence === ((ts[i - 1]!.sequence + 1) & 0xffff)), 'sequence numbers continue without a gap');
});

function rtcpTypes(packets: Uint8Array[]): string[] {
  return packets.map((p) => decodeRtcp(p).map((x: RtcpPacket) => x.type).join('+'));
}

t.test('RTCP: reports go out within 5 s, the summary reports loss, close sends BYE', async (t) => {
  const pair = new Pair({ codec: 'PCMU', aToB: { loss: 0.05, reorder: 0 } });
  pair.run(6000);
  t.ok(pair.a.sentRtcp.length >= 1, `A sent ${pair.a.sentRtcp.length} RTCP compound packets`);
  t.ok(pair.b.sentRtcp.length >= 1, `B sent ${pair.b.sentRtcp.length}`);
  t.ok(rtcpTypes(pair.a.sentRtcp).every((s) => s.startsWith('sr+sdes')), `A sends SR + SDES (${rtcpTypes(pair.a.sentRtcp).join(', ')})`);
  const b = pair.b.stream.summary();
  t.equal(b.codec, 'PCMU');
  t.ok(Number(b.lossPercent) >= 3 && Number(b.lossPercent) <= 8, `B measured ${b.lossPercent} % loss on a 5 % lossy link`);
  // RFC 3550 A.1: the packet that opens the probation of a new source is not counted.
  t.equal(b.packetsReceived, pair.a.delivered - 1, `B counted the ${pair.a.delivered} packets the link delivered but the first`);
  t.ok(Math.abs(Number(b.lost) - (300 - pair.a.delivered)) <= 1, `and ${b.lost} lost of ${300 - pair.a.delivered} dropped (a loss at the very end is not yet known)`);
  const a = pair.a.stream.summary();
  t.equal(a.lossPercent, 0, 'A lost nothing');
  t.ok(Number(a.remoteLost) > 0, `A learnt from B's report that ${a.remoteLost} of its packets were lost`);
  t.ok(a.rttMs !== undefined, `A measured a round-trip time (${a.rttMs} ms)`);
  const before = pair.a.sentRtcp.length;
  pair.a.stream.close();
  t.equal(pair.a.sentRtcp.length, before + 1, 'close sends one more RTCP packet');
  t.ok(rtcpTypes(pair.a.sentRtcp.slice(-1))[0]!.includes('bye'), 'which carries BYE');
  const silent = pair.a.stream.tick(new Int16Array(FRAME).fill(1000), pair.clock.now());
  t.ok(silent.every((s) => s === 0), 'a closed stream plays silence');
  pair.a.stream.close();
  t.equal(pair.a.sentRtcp.length, before + 1, 'closing twice sends nothing more');
});

/** DTMF as audio: the row and column tones of each digit at -10 dBm0 each, with gaps. */
function dtmfTones(digits: string, toneMs: number, gapMs: number, startMs: number): Capture {
  const freqs: Record<string, [number, number]> = { '1': [697, 1209], '5': [770, 1336], '9': [852, 1477], '#': [941, 1477] };
  const amplitude = 7000;
  return (at) => {
    const out = new Int16Array(FRAME);
    for (let i = 0; i < FRAME; i++) {
      const ms = ((at + i) * 1000) / CARD_RATE - startMs;
      if (ms < 0) continue;
      const k = Math.floor(ms / (toneMs + gapMs));
      if (k >= digits.length || ms - k * (toneMs + gapMs) >= toneMs) continue;
      const [lo, hi] = freqs[digits[k]!]!;
      const s = (at + i) / CARD_RATE;
      out[i] = Math.round(amplitude * (Math.sin(2 * Math.PI * lo * s) + Math.sin(2 * Math.PI * hi * s)));
    }
    return out;
  };
}

t.test('in-band DTMF: without telephone-event, digits sent as tones are detected in the audio', async (t) => {
  for (const codec of ['PCMU', 'G722']) {
    const pair = new Pair({ codec, noEvents: true });
    t.equal(pair.mediaA.event, undefined, `${codec}: A has no telephone-event to send`);
    t.equal(pair.mediaB.event, undefined, `${codec}: B neither`);
    t.notOk(pair.b.stream.sendDigits('1', { durationMs: 100, gapMs: 100 }), `${codec}: sendDigits refuses (the caller falls back to INFO)`);
    pair.b.capture = dtmfTones('159#', 100, 100, 500);
    pair.run(1500);
    t.same(pair.a.digits.map((d) => d.digit), ['1', '5', '9', '#'], `${codec}: A detects the digits`);
    t.ok(pair.a.digits.every((d) => d.source === 'inband'), `${codec}: as in-band`);
    t.ok(pair.a.digits.every((d) => Math.abs(d.durationMs - 100) <= 25), `${codec}: durations ≈100 ms (${pair.a.digits.map((d) => d.durationMs).join(', ')})`);
    t.equal(pair.b.digits.length, 0, `${codec}: A's plain tone is no digit`);
  }
});

t.test('telephone-event present: the in-band detector stays off', async (t) => {
  const pair = new Pair({ codec: 'PCMU' });
  pair.b.capture = dtmfTones('1', 100, 100, 200);
  pair.run(800);
  t.equal(pair.a.digits.length, 0, 'tones in the audio are not reported as digits');
});

t.test('packets of unknown payload types, malformed ones and RTP before configure are ignored', async (t) => {
  const pair = new Pair({ codec: 'PCMU' });
  pair.run(500);
  const before = pair.b.stream.summary().packetsReceived;
  const good = pair.a.sentRtp[0]!.slice();
  good[1] = (good[1]! & 0x80) | 55;
  pair.b.stream.receiveRtp(good, pair.clock.now());
  pair.b.stream.receiveRtp(Uint8Array.of(0x80, 0), pair.clock.now());
  t.equal(pair.b.stream.summary().packetsReceived, before, 'neither counted');
  const fresh = new AudioStream({
    clock: pair.clock,
    random: new SeededRandom(3),
    resamplers,
    cardRate: CARD_RATE,
    jitter: { minDelayMs: 20, maxDelayMs: 200 },
    inbandDtmf: false,
    send: { rtp: () => t.fail('unconfigured stream sent RTP'), rtcp: () => t.fail('unconfigured stream sent RTCP') },
    cname: 'x',
  });
  fresh.receiveRtp(pair.a.sentRtp[1]!, pair.clock.now());
  t.same(fresh.summary(), { codec: '-' }, 'no codec before configure');
  t.ok(fresh.tick(new Int16Array(FRAME).fill(500), 0).every((s) => s === 0), 'plays silence');
  t.equal(fresh.sendDigits('1', { durationMs: 100, gapMs: 100 }), false, 'cannot send digits');
  fresh.close();
});

t.test('echo suppression: a station hearing its own speaker sends the far end far less of its voice back', async (t) => {
  const rms = (pcm: Int16Array) => Math.sqrt(pcm.reduce((sum, v) => sum + v * v, 0) / Math.max(1, pcm.length));
  const level: Record<string, number> = {};
  for (const suppress of [false, true]) {
    const pair = new Pair({ codec: 'PCMU', echoA: { suppress } });
    pair.run(3000);
    level[String(suppress)] = rms(pair.b.lastPlayed(1.5));
  }
  const erle = 20 * Math.log10(level.false! / Math.max(1, level.true!));
  t.comment(`echo returned to the far end: ${level.false!.toFixed(0)} rms without suppression, ${level.true!.toFixed(0)} with (${erle.toFixed(1)} dB less)`);
  t.ok(level.false! > 500, 'without suppression the far end hears its own voice back');
  t.ok(erle >= 20, `suppression takes at least 20 dB off it (${erle.toFixed(1)} dB)`);
});
