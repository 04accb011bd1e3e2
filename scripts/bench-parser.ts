/**
 * Parser benchmark: our parse + validate + serialise against the npm `sip` package's
 * parse + stringify, on three realistic messages, in one process.
 *
 *   npm run bench [-- --rounds 7 --ms 600 --out bench.json]
 *
 * Both sides start from the same datagram bytes (a Buffer, as a UDP socket delivers them) and
 * end with bytes ready to send (`sip` itself sends `Buffer.from(stringify(m), 'binary')`). Ours
 * also validates: it parses Via, CSeq, From/To tags, Contact and the Request-URI, which `sip.parse`
 * does as part of parsing. Rounds alternate which side runs first; the reported figure is the
 * median of the rounds. The last line of output is one JSON object for the README.
 */
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseMessage } from '../src/sip/message/parser.ts';
import { serializeMessage } from '../src/sip/message/serialize.ts';
import { validateRequest, validateResponse } from '../src/sip/message/validate.ts';

/** The two calls of the `sip` package (0.0.6, CommonJS, untyped) that the benchmark uses. */
interface SipPackage {
  parse(data: Buffer | string): { method?: string; status?: number } | undefined;
  stringify(msg: object): string;
}
const sip = createRequire(import.meta.url)('sip') as SipPackage;

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'latin1');
const withBody = (head: string[], body: string[]): Buffer => {
  const b = body.join('\r\n') + '\r\n';
  return crlf([...head, `Content-Length: ${Buffer.byteLength(b)}`, '', b]);
};

const inviteSdp = [
  'v=0',
  'o=alice 3724394400 3724394401 IN IP4 192.168.1.23',
  's=Talk',
  'c=IN IP4 192.168.1.23',
  't=0 0',
  'a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics',
  'm=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100',
  'a=rtpmap:96 opus/48000/2',
  'a=fmtp:96 useinbandfec=1',
  'a=rtpmap:97 speex/16000',
  'a=fmtp:97 vbr=on',
  'a=rtpmap:98 speex/8000',
  'a=fmtp:98 vbr=on',
  'a=rtpmap:101 telephone-event/48000',
  'a=rtpmap:99 telephone-event/16000',
  'a=rtpmap:100 telephone-event/8000',
  'a=rtcp-fb:* trr-int 1000',
  'a=rtcp-fb:* ccm tmmbr',
];

/** Named, realistic messages: what a softphone, a proxy and a registering phone send. */
const MESSAGES: { name: string; bytes: Buffer }[] = [
  {
    name: 'INVITE with SDP (softphone)',
    bytes: withBody(
      [
        'INVITE sip:200@192.168.1.10 SIP/2.0',
        'Via: SIP/2.0/UDP 192.168.1.23:5060;branch=z9hG4bK.Xn2v3L1aq;rport',
        'From: "Alice" <sip:alice@192.168.1.10>;tag=9Kx~mR2Y3',
        'To: <sip:200@192.168.1.10>',
        'CSeq: 20 INVITE',
        'Call-ID: 0uNcPm5dV1',
        'Max-Forwards: 70',
        'Supported: replaces, outbound, gruu, path, record-aware',
        'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, PRACK, UPDATE',
        'Content-Type: application/sdp',
        'Contact: <sip:alice@192.168.1.23;transport=udp>;expires=3600;+sip.instance="<urn:uuid:7b1c4a0e-25a4-4b0f-9a4c-7e8a0c1d2e3f>";+org.linphone.specs="lime"',
        'User-Agent: Linphone-Desktop/5.2.6 (ubuntu) Linux, Qt 5.15.2 LinphoneCore/5.3.72',
      ],
      inviteSdp,
    ),
  },
  {
    name: '200 OK with two Vias and Record-Route',
    bytes: withBody(
      [
        'SIP/2.0 200 OK',
        'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK3e1b.6f0c2a1d;rport=5060',
        'Via: SIP/2.0/UDP 192.168.1.23:5060;received=192.168.1.23;rport=5060;branch=z9hG4bK.Xn2v3L1aq',
        'Record-Route: <sip:10.0.0.1;lr;ftag=9Kx~mR2Y3>',
        'Record-Route: <sip:192.168.1.10;lr>',
        'From: "Alice" <sip:alice@192.168.1.10>;tag=9Kx~mR2Y3',
        'To: <sip:200@192.168.1.10>;tag=as5f3c7a21',
        'Call-ID: 0uNcPm5dV1',
        'CSeq: 20 INVITE',
        'Server: hookswitch/0.1.0',
        'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO',
        'Supported: replaces, timer',
        'Contact: <sip:200@192.168.1.40:5060>',
        'Content-Type: application/sdp',
      ],
      [
        'v=0',
        'o=- 1737 1737 IN IP4 192.168.1.40',
        's=-',
        'c=IN IP4 192.168.1.40',
        't=0 0',
        'm=audio 40000 RTP/AVP 0 101',
        'a=rtpmap:0 PCMU/8000',
        'a=rtpmap:101 telephone-event/8000',
        'a=fmtp:101 0-15',
        'a=ptime:20',
        'a=sendrecv',
      ],
    ),
  },
  {
    name: 'REGISTER with digest Authorization',
    bytes: crlf([
      'REGISTER sip:192.168.1.10 SIP/2.0',
      'Via: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK1539302817;rport',
      'From: <sip:201@192.168.1.10>;tag=1290874512',
      'To: <sip:201@192.168.1.10>',
      'Call-ID: 1730496842-5060-2@BA.BBB.BAF.FA',
      'CSeq: 2 REGISTER',
      'Contact: <sip:201@192.168.1.50:5060>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-0004f2a1b2c3>"',
      'Authorization: Digest username="201", realm="hookswitch", nonce="6a3f5e2b1c0d9e8f7a6b5c4d3e2f1a0b", uri="sip:192.168.1.10", response="0f2e9a8d7c6b5a4f3e2d1c0b9a8f7e6d", algorithm=MD5, qop=auth, cnonce="a1b2c3d4", nc=00000001',
      'Max-Forwards: 70',
      'User-Agent: Grandstream HT802 1.0.53.2',
      'Supported: path',
      'Allow: INVITE, ACK, OPTIONS, CANCEL, BYE, SUBSCRIBE, NOTIFY, INFO, REFER, UPDATE',
      'Expires: 3600',
      'Content-Length: 0',
      '',
      '',
    ]),
  },
];

const KNOWN_METHODS: ReadonlySet<string> = new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER']);

/**
 * The distinct header names of a message, to check that nothing was dropped (`sip` silently drops
 * a header it fails to parse; joining repeated fields into one line is allowed, RFC 3261 §7.3.1).
 */
const headerNames = (bytes: Buffer): string => {
  const head = bytes.toString('latin1').split('\r\n\r\n')[0]!;
  const names = head.split('\r\n').slice(1).map((l) => l.slice(0, l.indexOf(':')).trim().toLowerCase());
  return [...new Set(names)].sort().join(',');
};

/** One unit of work on one message; returns a number so the result cannot be discarded. */
type Work = (bytes: Buffer) => number;

const ours: Work = (bytes) => {
  const msg = parseMessage(bytes);
  if (msg.kind === 'request') validateRequest(msg, { knownMethods: KNOWN_METHODS });
  else validateResponse(msg);
  return serializeMessage(msg).length;
};

const theirs: Work = (bytes) => {
  const msg = sip.parse(bytes);
  if (!msg) throw new Error('sip.parse rejected a benchmark message');
  return Buffer.from(sip.stringify(msg), 'binary').length;
};

/** Runs `work` on `bytes` for about `ms` milliseconds; returns messages per second. */
function rate(work: Work, bytes: Buffer, ms: number): { perSec: number; sink: number } {
  let n = 0;
  let sink = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < 64; i++) sink += work(bytes);
    n += 64;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return { perSec: (n * 1000) / elapsed, sink };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Messages per second over the mix: each message once, so the harmonic combination. */
const mixRate = (rates: number[]): number => rates.length / rates.reduce((acc, r) => acc + 1 / r, 0);

function main(): void {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '7' },
      ms: { type: 'string', default: '600' },
      out: { type: 'string' },
    },
  });
  const rounds = Math.max(1, Number(values.rounds));
  const msPerRound = Math.max(30, Number(values.ms));
  const msPerMessage = msPerRound / MESSAGES.length;

  // Both sides must accept every message, and keep every header, before any timing counts.
  for (const m of MESSAGES) {
    const want = headerNames(m.bytes);
    const gotOurs = headerNames(serializeMessage(parseMessage(m.bytes)));
    const parsed = sip.parse(m.bytes);
    const gotSip = parsed ? headerNames(Buffer.from(sip.stringify(parsed), 'binary')) : '';
    if (gotOurs !== want || gotSip !== want) {
      console.warn(`warning: ${m.name}: headers in [${want}], hookswitch wrote [${gotOurs}], sip wrote [${gotSip}]`);
    }
  }

  const impls = { hookswitch: ours, sip: theirs } as const;
  type Name = keyof typeof impls;
  const samples: Record<Name, number[][]> = { hookswitch: MESSAGES.map(() => []), sip: MESSAGES.map(() => []) };
  let sink = 0;

  // Warm-up (JIT), discarded.
  for (const name of ['hookswitch', 'sip'] as const) {
    for (const m of MESSAGES) sink += rate(impls[name], m.bytes, 200).sink;
  }

  for (let r = 0; r < rounds; r++) {
    const order: Name[] = r % 2 === 0 ? ['hookswitch', 'sip'] : ['sip', 'hookswitch'];
    for (const name of order) {
      MESSAGES.forEach((m, i) => {
        const res = rate(impls[name], m.bytes, msPerMessage);
        samples[name][i]!.push(res.perSec);
        sink += res.sink;
      });
    }
  }

  const perMessage = MESSAGES.map((m, i) => {
    const h = median(samples.hookswitch[i]!);
    const s = median(samples.sip[i]!);
    return { name: m.name, bytes: m.bytes.length, hookswitch: Math.round(h), sip: Math.round(s), ratio: +(h / s).toFixed(2) };
  });
  // Mix figure per round, then the median of rounds.
  const mixOf = (name: Name): number =>
    median(Array.from({ length: rounds }, (_, r) => mixRate(samples[name].map((perMsg) => perMsg[r]!))));
  const mixOurs = mixOf('hookswitch');
  const mixSip = mixOf('sip');

  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (x: number): string => x.toLocaleString('en-US').padStart(11);
  console.log(`node ${process.version}, ${rounds} rounds of ${msPerRound} ms, alternating order, median of rounds`);
  console.log(`${pad('message', 40)}${pad('bytes', 7)}${'hookswitch/s'.padStart(13)}${'sip/s'.padStart(13)}  ours/sip`);
  for (const p of perMessage) {
    console.log(`${pad(p.name, 40)}${pad(String(p.bytes), 7)}  ${num(p.hookswitch)}  ${num(p.sip)}  ${p.ratio.toFixed(2)}`);
  }
  console.log(`${pad('mix (each message once)', 47)}  ${num(Math.round(mixOurs))}  ${num(Math.round(mixSip))}  ${(mixOurs / mixSip).toFixed(2)}`);
  if (sink === 0) throw new Error('benchmark produced no output bytes');

  const result = {
    bench: 'sip-parser',
    node: process.version,
    rounds,
    msPerRound,
    hookswitch: 'parse+validate+serialize',
    sip: 'sip@0.0.6 parse+stringify',
    mixMsgsPerSec: { hookswitch: Math.round(mixOurs), sip: Math.round(mixSip) },
    ratio: +(mixOurs / mixSip).toFixed(2),
    perMessage,
  };
  const line = JSON.stringify(result);
  if (values.out) writeFileSync(values.out, line + '\n');
  console.log(line);
}

main();
