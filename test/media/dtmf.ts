import t from 'tap';
import {
  decodeDtmfEvent,
  DtmfEventError,
  DtmfReceiver,
  DtmfSender,
  dtmfSchedule,
  encodeDtmfEvent,
  type DtmfPacket,
} from '../../src/media/dtmf/rfc4733.ts';
import { formatDtmfInfo, parseDtmfInfo } from '../../src/media/dtmf/dtmf-info.ts';
import { InbandDtmfDetector, type InbandDtmfOptions } from '../../src/media/dtmf/inband-detector.ts';
import { dtmfDigitOfEvent, dtmfEventCode, type DtmfDigit } from '../../src/media/dtmf/types.ts';
import { prng } from '../helpers/prng.ts';

const KEYS = '0123456789*#ABCD';

t.test('telephone-event payload (RFC 4733 §2.3) round-trips at an offset', async (t) => {
  const cases = [
    { name: 'start of 5', p: { event: 5, end: false, volume: 10, duration: 160 } },
    { name: 'end of #', p: { event: 11, end: true, volume: 63, duration: 0xffff } },
    { name: 'flash, zero duration', p: { event: 16, end: false, volume: 0, duration: 0 } },
  ];
  for (const c of cases) {
    const buf = new Uint8Array(10).fill(0xee);
    encodeDtmfEvent(c.p, buf, 3);
    t.equal(buf[2], 0xee, `${c.name}: byte before untouched`);
    t.equal(buf[7], 0xee, `${c.name}: byte after untouched`);
    t.same(decodeDtmfEvent(buf, 3, 4), c.p, `${c.name}: decodes`);
    t.same([...encodeDtmfEvent(decodeDtmfEvent(buf, 3, 4))], [...buf.subarray(3, 7)], `${c.name}: re-encodes`);
  }
  t.same([...encodeDtmfEvent({ event: 1, end: true, volume: 10, duration: 800 })], [1, 0x8a, 0x03, 0x20], 'wire bytes');
  t.equal(decodeDtmfEvent(Uint8Array.of(1, 0xca, 0, 1)).volume, 10, 'R bit ignored on receive');
  t.throws(() => decodeDtmfEvent(Uint8Array.of(1, 2, 3)), { code: 'DTMF_TOO_SHORT' });
  t.throws(() => encodeDtmfEvent({ event: 1, end: false, volume: 64, duration: 0 }), { code: 'DTMF_BAD_VALUE' });
  t.throws(() => encodeDtmfEvent({ event: 1, end: false, volume: 1, duration: 0x10000 }), { code: 'DTMF_BAD_VALUE' });
  t.equal(dtmfEventCode('*'), 10);
  t.equal(dtmfEventCode('d'), 15);
  t.equal(dtmfEventCode('x'), undefined);
  t.equal(dtmfDigitOfEvent(11), '#');
  t.equal(dtmfDigitOfEvent(17), undefined);
});

function row(s: { atMs: number; payload: Uint8Array; marker: boolean; timestampOffset: number }): string {
  const p = decodeDtmfEvent(s.payload);
  return `${s.atMs}:${p.event}${s.marker ? 'M' : ''}${p.end ? 'E' : ''}@${s.timestampOffset}+${p.duration}`;
}

t.test('sender schedule: start with marker, updates every ptime, three end packets (RFC 4733 §2.5.1)', async (t) => {
  const cases: { name: string; digits: string; opts: Parameters<typeof dtmfSchedule>[1]; rows: string[] }[] = [
    {
      name: '8 kHz, default 100 ms',
      digits: '1',
      opts: { clockRate: 8000 },
      rows: ['0:1M@0+160', '20:1@0+320', '40:1@0+480', '60:1@0+640', '80:1E@0+800', '100:1E@0+800', '120:1E@0+800'],
    },
    {
      name: '48 kHz clock',
      digits: '#',
      opts: { clockRate: 48000 },
      rows: ['0:11M@0+960', '20:11@0+1920', '40:11@0+2880', '60:11@0+3840', '80:11E@0+4800', '100:11E@0+4800', '120:11E@0+4800'],
    },
    {
      name: '90 ms: the end packet carries the exact duration',
      digits: '2',
      opts: { clockRate: 8000, durationMs: 90 },
      rows: ['0:2M@0+160', '20:2@0+320', '40:2@0+480', '60:2@0+640', '80:2E@0+720', '100:2E@0+720', '120:2E@0+720'],
    },
    {
      name: 'two digits, 40 ms, default gap: the second starts 100 ms after the first ends',
      digits: '9a',
      opts: { clockRate: 8000, durationMs: 40 },
      rows: ['0:9M@0+160', '20:9E@0+320', '40:9E@0+320', '60:9E@0+320', '140:12M@1120+160', '160:12E@1120+320', '180:12E@1120+320', '200:12E@1120+320'],
    },
    {
      name: '500 ms gap for a door opener, 48 kHz',
      digits: '**',
      opts: { clockRate: 48000, durationMs: 40, gapMs: 500 },
      rows: ['0:10M@0+960', '20:10E@0+1920', '40:10E@0+1920', '60:10E@0+1920', '540:10M@25920+960', '560:10E@25920+1920', '580:10E@25920+1920', '600:10E@25920+1920'],
    },
    {
      name: 'gap shorter than the end retransmissions is stretched to two frames',
      digits: '12',
      opts: { clockRate: 8000, durationMs: 20, gapMs: 0 },
      rows: ['0:1ME@0+160', '20:1E@0+160', '40:1E@0+160', '60:2ME@480+160', '80:2E@480+160', '100:2E@480+160'],
    },
  ];
  for (const c of cases) t.same(dtmfSchedule(c.digits, c.opts).map(row), c.rows, c.name);
});

t.test('sender and audio interleave on one timeline: audio is suppressed during an event', async (t) => {
  // 60 ms tones, 60 ms gaps: 3 event frames + 2 end retransmissions, 1 audio frame, next digit.
  const sender = new DtmfSender({ clockRate: 8000, durationMs: 60, gapMs: 60 });
  sender.send('5');
  const sent: string[] = [];
  for (let frame = 0; frame < 12; frame++) {
    const ts = (0xfffffe00 + frame * 160) >>> 0;
    if (frame === 2) sender.send('6');
    const p: DtmfPacket | undefined = sender.nextFrame(ts);
    sent.push(p ? `ev${p.digit}${p.marker ? 'M' : ''}${p.end ? 'E' : ''}@${p.timestamp.toString(16)}` : `audio@${ts.toString(16)}`);
  }
  t.same(sent, [
    'ev5M@fffffe00', 'ev5@fffffe00', 'ev5E@fffffe00', 'ev5E@fffffe00', 'ev5E@fffffe00',
    'audio@120', 'ev6M@1c0', 'ev6@1c0', 'ev6E@1c0', 'ev6E@1c0', 'ev6E@1c0', 'audio@4e0',
  ]);
  t.equal(sender.busy, false, 'idle once the gap after the last digit has run');
  t.throws(() => sender.send('5x'), { code: 'DTMF_BAD_DIGIT' });
  t.equal(sender.queued, 0, 'a bad string queues nothing');
  t.throws(() => new DtmfSender({ clockRate: 48000, durationMs: 2000 }), DtmfEventError, '2 s is beyond 65535 units at 48 kHz');
  t.throws(() => new DtmfSender({ clockRate: 8000 }).send('1', { durationMs: 9000 }), { code: 'DTMF_BAD_VALUE' });
});

function packetsOf(digits: string, opts: Parameters<typeof dtmfSchedule>[1], base = 1000) {
  return dtmfSchedule(digits, opts).map((s) => ({ atMs: s.atMs, timestamp: (base + s.timestampOffset) >>> 0, payload: s.payload, marker: s.marker, end: s.end }));
}

function feed(rx: DtmfReceiver, packets: ReturnType<typeof packetsOf>): DtmfDigit[] {
  const out: DtmfDigit[] = [];
  for (const p of packets) out.push(...rx.receive(p, p.atMs), ...rx.poll(p.atMs));
  return out;
}

t.test('receiver reports each digit once with its duration (RFC 4733 §2.5.2)', async (t) => {
  const d = (digit: string, durationMs: number): DtmfDigit => ({ digit, durationMs, source: 'rfc4733' });
  const full = packetsOf('1', { clockRate: 8000 });
  const cases: { name: string; packets: ReturnType<typeof packetsOf>; clockRate?: number; expect: DtmfDigit[] }[] = [
    { name: 'full sequence', packets: full, expect: [d('1', 100)] },
    { name: 'every packet duplicated', packets: full.flatMap((p) => [p, p]), expect: [d('1', 100)] },
    { name: 'start lost, only updates and ends', packets: full.slice(1), expect: [d('1', 100)] },
    { name: 'only one end packet arrives', packets: full.slice(5, 6), expect: [d('1', 100)] },
    { name: 'back-to-back same digit', packets: packetsOf('11', { clockRate: 8000, gapMs: 40 }), expect: [d('1', 100), d('1', 100)] },
    {
      name: 'end packets of the first digit lost: it ends when the next begins',
      packets: packetsOf('47', { clockRate: 8000 }).filter((p) => !(p.end && p.timestamp === 1000)),
      expect: [d('4', 80), d('7', 100)],
    },
    {
      name: 'late end retransmission after the next digit began is dropped',
      packets: (() => {
        const p = packetsOf('47', { clockRate: 8000, gapMs: 40 });
        return [...p.slice(0, 5), ...p.slice(7, 9), p[6]!, ...p.slice(9)];
      })(),
      expect: [d('4', 100), d('7', 100)],
    },
    { name: '48 kHz clock', packets: packetsOf('*D', { clockRate: 48000, durationMs: 250 }), clockRate: 48000, expect: [d('*', 250), d('D', 250)] },
    { name: 'timestamps wrapping past 2^32', packets: packetsOf('23', { clockRate: 8000 }, 0xffffff00), expect: [d('2', 100), d('3', 100)] },
  ];
  for (const c of cases) t.same(feed(new DtmfReceiver({ clockRate: c.clockRate ?? 8000 }), c.packets), c.expect, c.name);
});

t.test('receiver ends an event whose end packets were all lost after the timeout', async (t) => {
  const rx = new DtmfReceiver({ clockRate: 8000, timeoutMs: 300 });
  const packets = packetsOf('9', { clockRate: 8000 }).filter((p) => !p.end);
  t.same(feed(rx, packets), []);
  t.equal(rx.holding, '9');
  t.same(rx.poll(60 + 299), [], 'not yet');
  t.same(rx.poll(60 + 300), [{ digit: '9', durationMs: 80, source: 'rfc4733' }]);
  t.same(rx.poll(2000), [], 'reported once');
  t.same(rx.receive({ timestamp: 1000, payload: encodeDtmfEvent({ event: 9, end: true, volume: 10, duration: 800 }) }, 2100), [], 'a straggling end packet is dropped');
  t.same(rx.receive({ timestamp: 5000, payload: Uint8Array.of(1, 2) }, 2200), []);
  t.equal(rx.malformed, 1, 'short payload counted');
  const ev = (event: number) => encodeDtmfEvent({ event, end: true, volume: 10, duration: 800 });
  t.same(rx.receive({ timestamp: 1000 - 8000 * 60, payload: ev(3) }, 2300), [{ digit: '3', durationMs: 100, source: 'rfc4733' }], 'a timestamp a minute back is a restarted stream, not a straggler');
  rx.reset();
  t.same(rx.receive({ timestamp: 1000, payload: ev(4) }, 2400), [{ digit: '4', durationMs: 100, source: 'rfc4733' }], 'after reset() an old timestamp is new again');
  const noFlash = new DtmfReceiver({ clockRate: 8000, flash: false });
  t.same(noFlash.receive({ timestamp: 1, payload: encodeDtmfEvent({ event: 16, end: true, volume: 10, duration: 800 }) }, 0), [], 'flash ignored when disabled');
  t.same(new DtmfReceiver({ clockRate: 8000 }).receive({ timestamp: 1, payload: encodeDtmfEvent({ event: 16, end: true, volume: 10, duration: 800 }) }, 0), [{ digit: '!', durationMs: 100, source: 'rfc4733' }]);
});

t.test('SIP INFO bodies: tolerant parsing, strict formatting', async (t) => {
  const cases: { name: string; type: string; body: string; expect: { digit: string; durationMs: number } | undefined }[] = [
    { name: 'dtmf-relay canonical', type: 'application/dtmf-relay', body: 'Signal=5\r\nDuration=160\r\n', expect: { digit: '5', durationMs: 160 } },
    { name: 'case and spaces', type: 'Application/DTMF-Relay; charset=utf-8', body: 'signal= *\nDURATION = 250\n', expect: { digit: '*', durationMs: 250 } },
    { name: 'missing Duration', type: 'application/dtmf-relay', body: 'Signal=#', expect: { digit: '#', durationMs: 100 } },
    { name: 'event number for #', type: 'application/dtmf-relay', body: 'Signal=11\r\nDuration=100', expect: { digit: '#', durationMs: 100 } },
    { name: 'lower-case letter', type: 'application/dtmf-relay', body: 'Signal=b\r\nDuration=80', expect: { digit: 'B', durationMs: 80 } },
    { name: 'hook flash', type: 'application/dtmf-relay', body: 'Signal=hf\r\nDuration=500', expect: { digit: '!', durationMs: 500 } },
    { name: 'garbage Duration', type: 'application/dtmf-relay', body: 'Signal=1\r\nDuration=abc', expect: { digit: '1', durationMs: 100 } },
    { name: 'no Signal', type: 'application/dtmf-relay', body: 'Duration=100', expect: undefined },
    { name: 'bad Signal', type: 'application/dtmf-relay', body: 'Signal=E\r\nDuration=100', expect: undefined },
    { name: 'application/dtmf digit', type: 'application/dtmf', body: ' 7\r\n', expect: { digit: '7', durationMs: 100 } },
    { name: 'application/dtmf event number', type: 'application/dtmf', body: '10', expect: { digit: '*', durationMs: 100 } },
    { name: 'application/dtmf empty', type: 'application/dtmf', body: '', expect: undefined },
    { name: 'other content type', type: 'application/sdp', body: 'Signal=5', expect: undefined },
  ];
  for (const c of cases) {
    t.same(parseDtmfInfo(c.type, c.body), c.expect, c.name);
    t.same(parseDtmfInfo(c.type, new TextEncoder().encode(c.body)), c.expect, `${c.name} (bytes)`);
  }
  t.same(formatDtmfInfo('5', 160), { contentType: 'application/dtmf-relay', body: 'Signal=5\r\nDuration=160\r\n' });
  t.same(formatDtmfInfo('c', 99.6, 'application/dtmf'), { contentType: 'application/dtmf', body: 'C' });
  t.throws(() => formatDtmfInfo('x', 100), RangeError);
  for (const k of KEYS) {
    const f = formatDtmfInfo(k, 120);
    t.same(parseDtmfInfo(f.contentType, f.body), { digit: k, durationMs: 120 }, `${k} round-trips`);
  }
});

// ---- in-band ----

const ROWS = [697, 770, 852, 941];
const COLS = [1209, 1336, 1477, 1633];
const DBM0 = 32767 / 10 ** (3.14 / 20);

interface ToneOpts {
  rate: number;
  ms: number;
  rowDev?: number;
  colDev?: number;
  lowDbm0?: number;
  highDbm0?: number;
  snrDb?: number;
  leadMs?: number;
  seed?: number;
}

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

/** Silence or noise, the key's two tones, silence or noise. `snrDb` is relative to both tones' power. */
function keyTone(key: string, o: ToneOpts): Int16Array {
  const i = KEYS.indexOf(key);
  const layout = ['123A', '456B', '789C', '*0#D'];
  const r = layout.findIndex((l) => l.includes(key));
  const c = layout[r]!.indexOf(key);
  if (i < 0) throw new Error(key);
  const fr = ROWS[r]! * (1 + (o.rowDev ?? 0));
  const fc = COLS[c]! * (1 + (o.colDev ?? 0));
  const ar = DBM0 * 10 ** ((o.lowDbm0 ?? -10) / 20);
  const ac = DBM0 * 10 ** ((o.highDbm0 ?? -8) / 20);
  const lead = Math.round((o.rate * (o.leadMs ?? 60)) / 1000);
  const len = Math.round((o.rate * o.ms) / 1000);
  const noise = o.snrDb === undefined ? 0 : Math.sqrt((ar * ar + ac * ac) / 2 / 10 ** (o.snrDb / 10));
  const rnd = prng(o.seed ?? 1);
  const out = new Int16Array(2 * lead + len);
  for (let n = 0; n < out.length; n++) {
    const k = n - lead;
    let v = noise * gauss(rnd);
    if (k >= 0 && k < len) v += ar * Math.sin((2 * Math.PI * fr * k) / o.rate) + ac * Math.sin((2 * Math.PI * fc * k) / o.rate + 1);
    out[n] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return out;
}

function detect(pcm: Int16Array, opts: InbandDtmfOptions, chunk = 0): DtmfDigit[] {
  const det = new InbandDtmfDetector(opts);
  const out: DtmfDigit[] = [];
  if (chunk <= 0) out.push(...det.process(pcm));
  else for (let i = 0; i < pcm.length; i += chunk) out.push(...det.process(pcm.subarray(i, i + chunk)));
  return [...out, ...det.flush()];
}

t.test('in-band: all sixteen keys in white noise at 8 and 16 kHz', async (t) => {
  for (const rate of [8000, 16000]) {
    for (const [n, key] of [...KEYS].entries()) {
      const pcm = keyTone(key, { rate, ms: 100, snrDb: 15, seed: n + rate });
      const got = detect(pcm, { sampleRate: rate }, 37 + n * 11);
      t.same(got.map((d) => d.digit), [key], `${rate} Hz: ${key} detected once at 15 dB SNR`);
      t.ok(Math.abs(got[0]!.durationMs - 100) <= 10, `${rate} Hz: ${key} lasts ${got[0]!.durationMs} ms (100 sent)`);
    }
  }
});

t.test('in-band: Q.24 frequency tolerance, twist, level and duration limits', async (t) => {
  const rates = [8000, 16000];
  const count = (o: Omit<ToneOpts, 'rate'>, keys = KEYS): Record<number, number> => {
    const res: Record<number, number> = {};
    for (const rate of rates) res[rate] = [...keys].filter((k, i) => detect(keyTone(k, { ...o, rate, snrDb: o.snrDb ?? 25, seed: i }), { sampleRate: rate }).map((d) => d.digit).join('') === k).length;
    return res;
  };
  const all = { 8000: 16, 16000: 16 };
  const none = { 8000: 0, 16000: 0 };
  const cases: { name: string; o: Omit<ToneOpts, 'rate'>; expect: Record<number, number> }[] = [
    { name: '+1.5 % both tones accepted', o: { ms: 80, rowDev: 0.015, colDev: 0.015 }, expect: all },
    { name: '-1.5 % both tones accepted', o: { ms: 80, rowDev: -0.015, colDev: -0.015 }, expect: all },
    { name: 'row +1.5 %, column -1.5 % accepted', o: { ms: 80, rowDev: 0.015, colDev: -0.015 }, expect: all },
    { name: 'row +3.5 % rejected', o: { ms: 80, rowDev: 0.035 }, expect: none },
    { name: 'row -3.5 % rejected', o: { ms: 80, rowDev: -0.035 }, expect: none },
    { name: 'column +3.5 % rejected', o: { ms: 80, colDev: 0.035 }, expect: none },
    { name: 'column -3.5 % rejected', o: { ms: 80, colDev: -0.035 }, expect: none },
    { name: 'low group 7 dB above high accepted (normal twist 8 dB)', o: { ms: 80, lowDbm0: -8, highDbm0: -15 }, expect: all },
    { name: 'low group 10 dB above high rejected', o: { ms: 80, lowDbm0: -8, highDbm0: -18 }, expect: none },
    { name: 'high group 3 dB above low accepted (reverse twist 4 dB)', o: { ms: 80, lowDbm0: -11, highDbm0: -8 }, expect: all },
    { name: 'high group 6 dB above low rejected', o: { ms: 80, lowDbm0: -14, highDbm0: -8 }, expect: none },
    { name: 'both tones at -25 dBm0 accepted', o: { ms: 80, lowDbm0: -25, highDbm0: -25 }, expect: all },
    { name: 'both tones at -36 dBm0 rejected', o: { ms: 80, lowDbm0: -36, highDbm0: -36 }, expect: none },
    { name: '40 ms accepted', o: { ms: 40 }, expect: all },
    { name: '23 ms rejected', o: { ms: 23 }, expect: none },
    { name: '20 ms rejected', o: { ms: 20 }, expect: none },
  ];
  for (const c of cases) t.same(count(c.o), c.expect, c.name);

  for (const rate of rates) {
    let hits = 0;
    for (let lead = 0; lead < 16; lead++) hits += detect(keyTone('5', { rate, ms: 40, leadMs: 50 + lead * 0.4, snrDb: 20, seed: lead }), { sampleRate: rate }).length === 1 ? 1 : 0;
    t.equal(hits, 16, `${rate} Hz: a 40 ms tone is found at every alignment against the analysis blocks`);
  }
});

function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

t.test('in-band: interruptions of 10 ms are bridged, pauses of 40 ms separate presses', async (t) => {
  const rate = 8000;
  const gap = (ms: number) => new Int16Array(Math.round((rate * ms) / 1000));
  const tone = (k: string) => keyTone(k, { rate, ms: 80, leadMs: 0 });
  const cases = [
    { name: '10 ms interruption', pcm: concat(gap(50), tone('8'), gap(10), tone('8'), gap(80)), expect: '8' },
    { name: '40 ms pause', pcm: concat(gap(50), tone('8'), gap(40), tone('8'), gap(80)), expect: '88' },
    { name: 'key change without a pause', pcm: concat(gap(50), tone('1'), tone('2'), gap(80)), expect: '12' },
  ];
  for (const c of cases) t.equal(detect(c.pcm, { sampleRate: rate }).map((d) => d.digit).join(''), c.expect, c.name);
  const chunked = detect(cases[1]!.pcm, { sampleRate: rate }, 1);
  t.same(chunked, detect(cases[1]!.pcm, { sampleRate: rate }), 'sample-by-sample feeding gives the same result');
});

// ---- talk-off ----

function clip(x: Float64Array): Int16Array {
  const o = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) o[i] = Math.max(-32768, Math.min(32767, Math.round(x[i]!)));
  return o;
}

/**
 * Speech-like audio: a glottal-pulse source (Rosenberg-shaped, rich in harmonics) with a pitch
 * gliding between 80 and 280 Hz, through three formant resonators moving between vowel targets
 * (Peterson & Barney averages), alternating with fricative noise and pauses.
 */
function speechLike(rate: number, seconds: number, seed: number): Int16Array {
  const rnd = prng(seed);
  const out = new Float64Array(Math.round(rate * seconds));
  const vowels = [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [660, 1720, 2410], [490, 1350, 1690], [640, 1190, 2390], [440, 1020, 2240]];
  const bandwidths = [90, 110, 170];
  const state = new Float64Array(6);
  let phase = 0;
  for (let i = 0; i < out.length; ) {
    const len = Math.round(rate * (0.08 + 0.25 * rnd()));
    const kind = rnd();
    const v0 = vowels[Math.floor(rnd() * vowels.length)]!;
    const v1 = vowels[Math.floor(rnd() * vowels.length)]!;
    const f0a = 80 + 200 * rnd();
    const f0b = f0a * (0.7 + 0.6 * rnd());
    const gain = 6000 + 18000 * rnd();
    for (let k = 0; k < len && i < out.length; k++, i++) {
      const x = k / len;
      let src = 0;
      if (kind < 0.65) {
        phase += ((f0a + (f0b - f0a) * x) * (1 + 0.01 * (rnd() - 0.5))) / rate;
        if (phase >= 1) phase -= 1;
        src = phase < 0.4 ? 0.5 * (1 - Math.cos((Math.PI * phase) / 0.4)) : phase < 0.56 ? Math.cos((Math.PI * (phase - 0.4)) / 0.32) : 0;
      } else if (kind < 0.85) {
        src = 1.2 * (rnd() - 0.5);
      }
      let y = 0;
      for (let f = 0; f < 3; f++) {
        const fc = v0[f]! + (v1[f]! - v0[f]!) * x;
        const r = Math.exp((-Math.PI * bandwidths[f]!) / rate);
        const yn = (1 - r) * src + 2 * r * Math.cos((2 * Math.PI * fc) / rate) * state[2 * f]! - r * r * state[2 * f + 1]!;
        state[2 * f + 1] = state[2 * f]!;
        state[2 * f] = yn;
        y += yn;
      }
      out[i] = y * gain;
    }
  }
  return clip(out);
}

/** Music-like audio: chords of two to four equal-tempered notes (A3-G#6) with `harmonics` partials. */
function musicLike(rate: number, seconds: number, seed: number, harmonics: number): Int16Array {
  const rnd = prng(seed);
  const out = new Float64Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; ) {
    const len = Math.round(rate * (0.15 + 0.6 * rnd()));
    const notes = Array.from({ length: 2 + Math.floor(rnd() * 3) }, () => 440 * 2 ** ((Math.floor(rnd() * 36) - 12) / 12));
    const amp = 2000 + 6000 * rnd();
    for (let k = 0; k < len && i < out.length; k++, i++) {
      const env = Math.min(1, k / (0.01 * rate)) * Math.exp((-3 * k) / len);
      let v = 0;
      for (const f of notes) for (let h = 1; h <= harmonics; h++) if (f * h < rate / 2) v += Math.sin((2 * Math.PI * f * h * k) / rate) / h ** 1.5;
      out[i] = v * amp * env;
    }
  }
  return clip(out);
}

t.test('in-band talk-off: speech-like and music-like audio produce no digits', async (t) => {
  const signals: [string, number, Int16Array][] = [
    ['speech-like, 8 kHz, 60 s', 8000, speechLike(8000, 60, 7)],
    ['speech-like, 16 kHz, 30 s', 16000, speechLike(16000, 30, 8)],
    ['chords of pure tones, 8 kHz, 30 s', 8000, musicLike(8000, 30, 9, 1)],
    ['chords with 2 partials, 8 kHz, 15 s', 8000, musicLike(8000, 15, 10, 2)],
    ['chords with 6 partials, 8 kHz, 15 s', 8000, musicLike(8000, 15, 11, 6)],
  ];
  let total = 0;
  let seconds = 0;
  for (const [name, rate, pcm] of signals) {
    const got = detect(pcm, { sampleRate: rate }, 160);
    total += got.length;
    seconds += pcm.length / rate;
    t.comment(`talk-off ${name}: ${got.length} false digits ${got.map((d) => d.digit).join('')}`);
    t.ok(got.length <= 1, `${name}: at most one false digit (got ${got.length})`);
  }
  t.comment(`talk-off total: ${total} false digits in ${seconds} s of speech- and music-like audio`);
  t.ok(total <= 1, 'near zero false digits overall');
  // The same audio with a key mixed in at a fair level: the key is still found.
  const speech = speechLike(8000, 2, 12);
  const key = keyTone('7', { rate: 8000, ms: 100, leadMs: 900 });
  const mixed = Int16Array.from(key, (v, i) => Math.max(-32768, Math.min(32767, v + Math.round((speech[i] ?? 0) * 0.05))));
  t.same(detect(mixed, { sampleRate: 8000 }).map((d) => d.digit), ['7'], 'a key over quiet speech is found');
});
