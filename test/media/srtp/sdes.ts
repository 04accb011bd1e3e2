import t from 'tap';
import { SeededRandom } from '../../../src/runtime/random.ts';
import {
  answerSdesOffer,
  formatSdesCrypto,
  generateSdesCrypto,
  generateSdesOffer,
  mkiBytes,
  parseSdesCrypto,
  redactSdesKeys,
  type SdesCrypto,
} from '../../../src/media/srtp/sdes.ts';
import { SrtpSession, srtpContextOptions } from '../../../src/media/srtp/srtp-session.ts';
import type { SrtpResult } from '../../../src/media/srtp/srtp-context.ts';

function parsed(value: string): SdesCrypto {
  const r = parseSdesCrypto(value);
  if (!r.ok) throw new Error(r.reason);
  return r.crypto;
}

function ok(r: SrtpResult): Buffer {
  if (!r.ok) throw new Error(`${r.code}: ${r.reason}`);
  return r.packet;
}

t.test('RFC 4568 examples parse and format back verbatim', (t) => {
  // RFC 4568 §4, §4.5 and §7.1.5 (answer), attribute values as printed there.
  const examples = [
    '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32',
    '1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32',
    '1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32',
    '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4',
    '1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP',
  ];
  for (const e of examples) {
    const c = parsed(e);
    t.equal(formatSdesCrypto(c), e, e.slice(0, 40));
    t.same(parsed(formatSdesCrypto(c)), c, 'decode, encode, decode is stable');
  }
  const first = parsed(examples[0]!);
  t.equal(first.tag, 1);
  t.equal(first.suite, 'AES_CM_128_HMAC_SHA1_80');
  t.equal(first.keys[0]!.lifetime, 2 ** 20);
  t.same(first.keys[0]!.mki, { value: 1n, length: 32 });
  t.equal(first.keys[0]!.masterKey.length, 16);
  t.equal(first.keys[0]!.masterSalt.length, 14);
  // RFC 4568 §6.1: "inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2|1066:4" — default lifetime, MKI 1066 in 4 octets.
  const noLifetime = parsed('1 AES_CM_128_HMAC_SHA1_80 inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2|1066:4');
  t.equal(Buffer.concat([noLifetime.keys[0]!.masterKey, noLifetime.keys[0]!.masterSalt]).toString('latin1'), 'aBCdefghiJKLmoPQrsTuVwyz123456');
  t.equal(noLifetime.keys[0]!.lifetime, undefined);
  t.same(mkiBytes(noLifetime.keys[0]!.mki!), Buffer.from([0, 0, 0x04, 0x2a]), 'MKI 1066 big-endian in 4 octets');
  t.end();
});

t.test('accepted variations', (t) => {
  const key = 'PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR';
  const cases: Array<{ name: string; value: string; check: (c: SdesCrypto) => void }> = [
    { name: 'a=crypto: prefix', value: `a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:${key}`, check: (c) => t.equal(c.tag, 5) },
    { name: 'suite and method case-insensitive (§4)', value: `1 aes_cm_128_hmac_sha1_32 INLINE:${key}`, check: (c) => t.equal(c.suite, 'AES_CM_128_HMAC_SHA1_32') },
    { name: 'tabs and several spaces (1*WSP)', value: `2\tAES_CM_128_HMAC_SHA1_80   inline:${key}`, check: (c) => t.equal(c.tag, 2) },
    { name: 'decimal lifetime', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|1048576`, check: (c) => t.equal(c.keys[0]!.lifetime, 1048576) },
    { name: 'lifetime 2^48 (the suite maximum)', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|2^48`, check: (c) => t.equal(c.keys[0]!.lifetime, 2 ** 48) },
    { name: 'WSH hint', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key} WSH=256`, check: (c) => t.equal(c.windowSizeHint, 256) },
    { name: 'optional -param ignored (§6.3.7)', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key} -X_VENDOR=1`, check: (c) => t.equal(c.keys.length, 1) },
    {
      name: 'two keys with MKIs of one length',
      value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|2^20|1:4;inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|2:4`,
      check: (c) => t.same(c.keys.map((k) => k.mki?.value), [1n, 2n]),
    },
  ];
  for (const c of cases) {
    const r = parseSdesCrypto(c.value);
    t.ok(r.ok, c.name);
    if (r.ok) c.check(r.crypto);
  }
  t.end();
});

t.test('invalid or unsupported attributes are refused politely', (t) => {
  const key = 'PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR';
  const cases: Array<{ name: string; value: string; reason: RegExp }> = [
    { name: 'no key parameter', value: '1 AES_CM_128_HMAC_SHA1_80', reason: /lacks a tag, crypto-suite or key parameter/ },
    { name: 'tag with a leading zero', value: `01 AES_CM_128_HMAC_SHA1_80 inline:${key}`, reason: /tag "01"/ },
    { name: 'tag of 10 digits', value: `1234567890 AES_CM_128_HMAC_SHA1_80 inline:${key}`, reason: /1-9 digits/ },
    { name: 'F8 suite', value: `2 F8_128_HMAC_SHA1_80 inline:${key}`, reason: /^tag 2: crypto-suite F8_128_HMAC_SHA1_80 is not supported/ },
    { name: 'AES-256 suite', value: `1 AES_256_CM_HMAC_SHA1_80 inline:${key}`, reason: /not supported/ },
    { name: 'another key method', value: '1 AES_CM_128_HMAC_SHA1_80 uri:https://example.com/key', reason: /key method "uri"/ },
    { name: 'no method', value: `1 AES_CM_128_HMAC_SHA1_80 ${key}`, reason: /method:key-info/ },
    { name: 'key||salt of 29 octets', value: '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVA=', reason: /29 octets, the suite needs 30/ },
    { name: 'key not base64', value: '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFC*nVmcjkpPywjNWhcYD0mXXtxaVBR', reason: /not base64/ },
    { name: 'lifetime over 2^48', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|2^49`, reason: /exceeds/ },
    { name: 'lifetime 0', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|0`, reason: /not a positive/ },
    { name: 'lifetime with a leading zero', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|2^020`, reason: /leading zeros/ },
    { name: 'MKI length 129', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|1:129`, reason: /outside 1..128/ },
    { name: 'MKI that does not fit', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|256:1`, reason: /does not fit in 1 octets/ },
    { name: 'MKI with a leading zero', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|01:4`, reason: /MKI "01:4"/ },
    { name: 'MKI before lifetime', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key}|1:4|2^20`, reason: /lifetime must come before the MKI/ },
    { name: 'KDR', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key} KDR=10`, reason: /KDR=10/ },
    { name: 'UNENCRYPTED_SRTCP', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key} UNENCRYPTED_SRTCP`, reason: /refused/ },
    { name: 'UNAUTHENTICATED_SRTP', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key} UNAUTHENTICATED_SRTP`, reason: /refused/ },
    { name: 'FEC_KEY', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key} FEC_KEY=inline:${key}`, reason: /FEC_KEY/ },
    { name: 'bad FEC_ORDER', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key} FEC_ORDER=LATER`, reason: /neither/ },
    { name: 'WSH below 64', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key} WSH=32`, reason: /at least 64/ },
    { name: 'unknown mandatory parameter', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key} NEW_THING=1`, reason: /unknown mandatory session parameter NEW_THING=1/ },
    { name: 'two keys without MKIs', value: `1 AES_CM_128_HMAC_SHA1_80 inline:${key};inline:${key}`, reason: /several keys/ },
  ];
  for (const c of cases) {
    const r = parseSdesCrypto(c.value);
    t.match(r.ok ? 'accepted' : r.reason, c.reason, c.name);
    t.notMatch(r.ok ? '' : r.reason, /PS1uQCVeeCFC/, `${c.name}: no key in the reason`);
  }
  t.end();
});

t.test('fresh keys, offers and answers (RFC 4568 §5.1, §7.1)', (t) => {
  const random = new SeededRandom(7);
  const a = generateSdesCrypto(random);
  const b = generateSdesCrypto(random, 3, 'AES_CM_128_HMAC_SHA1_32');
  t.equal(a.suite, 'AES_CM_128_HMAC_SHA1_80');
  t.equal(a.keys[0]!.masterKey.length + a.keys[0]!.masterSalt.length, 30);
  t.not(a.keys[0]!.masterKey.toString('hex'), b.keys[0]!.masterKey.toString('hex'), 'every key is fresh');
  t.match(formatSdesCrypto(b), /^3 AES_CM_128_HMAC_SHA1_32 inline:[A-Za-z0-9+/]{40}$/);
  const offer = generateSdesOffer(random);
  t.same(offer.map((c) => [c.tag, c.suite]), [[1, 'AES_CM_128_HMAC_SHA1_80'], [2, 'AES_CM_128_HMAC_SHA1_32']], 'strongest first');

  const rfcOffer = [
    '2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP',
    '1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP',
  ];
  const answer = answerSdesOffer(rfcOffer, random);
  t.ok(answer.ok, 'the first supported attribute is accepted');
  if (answer.ok) {
    t.equal(answer.local.tag, 1, 'the answer repeats the tag');
    t.equal(answer.local.suite, 'AES_CM_128_HMAC_SHA1_80');
    t.not(answer.local.keys[0]!.masterKey.toString('hex'), answer.remote.keys[0]!.masterKey.toString('hex'), 'a key different from the offer');
  }
  const refused = answerSdesOffer([rfcOffer[0]!, '1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz KDR=3'], random);
  t.same(refused.ok ? [] : refused.reasons.map((r) => r.slice(0, 6)), ['tag 2:', 'tag 1:'], 'nothing acceptable: the stream is rejected with one reason per line');
  const multi = answerSdesOffer([`1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4;inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|2:4`], random);
  t.match(multi.ok ? '' : multi.reasons[0], /several master keys/);
  t.same(answerSdesOffer([], random), { ok: false, reasons: ['no a=crypto attribute'] });
  t.end();
});

t.test('keys are redacted for logs and traces', (t) => {
  const sdp = [
    'm=audio 49170 RTP/SAVP 0',
    'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4',
    'a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj',
  ].join('\r\n');
  t.equal(
    redactSdesKeys(sdp),
    [
      'm=audio 49170 RTP/SAVP 0',
      'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>|2^20|1:4;inline:<redacted>|2^20|2:4',
      'a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:<redacted>',
    ].join('\r\n'),
  );
  t.end();
});

t.test('an SDES-keyed session carries media both ways', (t) => {
  const random = new SeededRandom(99);
  for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'] as const) {
    const offer = generateSdesCrypto(random, 1, suite);
    const answer = answerSdesOffer([formatSdesCrypto(offer)], random);
    if (!answer.ok) throw new Error(answer.reasons.join('; '));
    const offerer = new SrtpSession({ local: offer, remote: answer.local });
    const answerer = new SrtpSession({ local: answer.local, remote: answer.remote });
    const rtp = Buffer.concat([Buffer.from('8000000100000000aabbccdd', 'hex'), Buffer.alloc(160, 0x55)]);
    t.same(ok(answerer.unprotectRtp(ok(offerer.protectRtp(rtp)))), rtp, `${suite}: offerer → answerer`);
    t.same(ok(offerer.unprotectRtp(ok(answerer.protectRtp(rtp)))), rtp, `${suite}: answerer → offerer`);
    const rr = Buffer.from('80c90001aabbccdd', 'hex');
    t.same(ok(offerer.unprotectRtcp(ok(answerer.protectRtcp(rr)))), rr, `${suite}: SRTCP answerer → offerer`);
    const next = Buffer.from(rtp);
    next[3] = 2;
    const wrongWay = offerer.unprotectRtp(ok(offerer.protectRtp(next)));
    t.equal(wrongWay.ok ? '' : wrongWay.code, 'SRTP_AUTH_FAILED', 'each direction has its own key');
    t.equal(offerer.counters.receive.errors.SRTP_AUTH_FAILED, 1);
  }
  const withMki = parsed('1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4 WSH=256');
  const mine = generateSdesCrypto(random);
  const a = new SrtpSession({ local: withMki, remote: mine });
  const b = new SrtpSession({ local: mine, remote: withMki });
  const rtp = Buffer.from('80000001000000000000000101020304', 'hex');
  const srtp = ok(a.protectRtp(rtp));
  t.same(srtp.subarray(16, 20), Buffer.from([0, 0, 0, 1]), 'MKI 1:4 on the wire');
  t.same(ok(b.unprotectRtp(srtp)), rtp);
  t.equal(b.receive.windowSize, 256, "the peer's WSH=256 widens the receive window");
  t.equal(a.receive.windowSize, 128, 'default window 128');
  t.equal(srtpContextOptions(withMki).lifetime, 2 ** 20);
  const two = parsed('1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4;inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|2:4');
  t.throws(() => srtpContextOptions(two), RangeError, 'a context takes one key');
  t.end();
});
