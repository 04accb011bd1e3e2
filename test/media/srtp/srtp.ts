import { createHmac } from 'node:crypto';
import t from 'tap';
import { AesCm, writeCounterBlock } from '../../../src/media/srtp/aes-cm.ts';
import { deriveSessionKeys, SRTP_LABEL, srtpPrf } from '../../../src/media/srtp/key-derivation.ts';
import { guessRoc, RocTracker } from '../../../src/media/srtp/packet-index.ts';
import { ReplayWindow } from '../../../src/media/srtp/replay-window.ts';
import { SrtpContext, type SrtpResult } from '../../../src/media/srtp/srtp-context.ts';
import type { SrtpSuiteName } from '../../../src/media/srtp/srtp-suites.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 3711 Appendix B.3: master key and master salt (also libsrtp's test key).
const MASTER_KEY = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
const MASTER_SALT = hex('0EC675AD498AFEEBB6960B3AABE6');

const context = (suite: SrtpSuiteName = 'AES_CM_128_HMAC_SHA1_80', extra: { lifetime?: number; mki?: Uint8Array; replayWindow?: number; maxStreams?: number } = {}): SrtpContext =>
  new SrtpContext({ suite, masterKey: MASTER_KEY, masterSalt: MASTER_SALT, ...extra });

function ok(r: SrtpResult): Buffer {
  if (!r.ok) throw new Error(`expected success, got ${r.code}: ${r.reason}`);
  return r.packet;
}

/** An RTP packet: V=2, PT 0, the given SSRC and sequence, timestamp 160 * seq, `payload` octets. */
function rtp(seq: number, ssrc = 0x11223344, payloadLength = 20, fill = seq & 0xff): Buffer {
  const p = Buffer.alloc(12 + payloadLength, fill);
  p[0] = 0x80;
  p[1] = 0;
  p.writeUInt16BE(seq & 0xffff, 2);
  p.writeUInt32BE((seq * 160) >>> 0, 4);
  p.writeUInt32BE(ssrc, 8);
  return p;
}

t.test('RFC 3711 B.2 AES-CM keystream', (t) => {
  // RFC 3711 Appendix B.2, verbatim: session key, counter blocks and keystream.
  const key = hex('2B7E151628AED2A6ABF7158809CF4F3C');
  const salt = hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD');
  const iv = writeCounterBlock(Buffer.alloc(16), salt, 0x00000000, 0x00000000, 0x0000);
  t.equal(iv.toString('hex').toUpperCase(), 'F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000', 'offset = salt * 2^16 with ROC, SEQ, SSRC 0');
  const stream = new AesCm(key).keystream(iv, 1044512); // "Keystream segment length: 1044512 octets (65282 AES blocks)"
  const vectors: Array<[number, string]> = [
    [0x0000, 'E03EAD0935C95E80E166B16DD92B4EB4'],
    [0x0001, 'D23513162B02D0F72A43A2FE4A5F97AB'],
    [0x0002, '41E95B3BB0A2E8DD477901E4FCA894C0'],
    [0xfeff, 'EC8CDF7398607CB0F2D21675EA9EA1E4'],
    [0xff00, '362B7C3C6773516318A077D7FC5073AE'],
    [0xff01, '6A2CC3787889374FBEB4C81B17BA6C44'],
  ];
  for (const [counter, expected] of vectors) {
    t.equal(stream.subarray(counter * 16, counter * 16 + 16).toString('hex').toUpperCase(), expected, `counter F0F1F2F3F4F5F6F7F8F9FAFBFCFD${counter.toString(16).padStart(4, '0').toUpperCase()}`);
  }
  t.end();
});

t.test('RFC 3711 B.3 key derivation', (t) => {
  // RFC 3711 Appendix B.3, verbatim.
  t.equal(srtpPrf(MASTER_KEY, MASTER_SALT, SRTP_LABEL.rtpEncryption, 16).toString('hex').toUpperCase(), 'C61E7A93744F39EE10734AFE3FF7A087', 'cipher key (label 0x00)');
  t.equal(srtpPrf(MASTER_KEY, MASTER_SALT, SRTP_LABEL.rtpSalt, 16).toString('hex').toUpperCase(), '30CBBC08863D8C85D49DB34A9AE17AC6', 'AES-CM output for label 0x02');
  // The RFC's 94-octet auth key, six AES output blocks (the last cut to 14 octets).
  const authRows = [
    'CEBE321F6FF7716B6FD4AB49AF256A15',
    '6D38BAA48F0A0ACF3C34E2359E6CDBCE',
    'E049646C43D9327AD175578EF7227098',
    '6371C10C9A369AC2F94A8C5FBCDDDC25',
    '6D6E919A48B610EF17C2041E47403576',
    '6B68642C59BBFC2F34DB60DBDFB2',
  ];
  t.equal(srtpPrf(MASTER_KEY, MASTER_SALT, SRTP_LABEL.rtpAuthentication, 94).toString('hex').toUpperCase(), authRows.join(''), 'auth key (label 0x01), 94 octets');
  const keys = deriveSessionKeys(MASTER_KEY, MASTER_SALT, 'rtp');
  t.equal(keys.encryptionKey.toString('hex').toUpperCase(), 'C61E7A93744F39EE10734AFE3FF7A087');
  t.equal(keys.salt.toString('hex').toUpperCase(), '30CBBC08863D8C85D49DB34A9AE1', 'cipher salt: 112 bits');
  t.equal(keys.authKey.toString('hex').toUpperCase(), 'CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4', 'the suites use the first 160 bits');
  const rtcp = deriveSessionKeys(MASTER_KEY, MASTER_SALT, 'rtcp');
  t.not(rtcp.encryptionKey.toString('hex'), keys.encryptionKey.toString('hex'), 'SRTCP keys come from labels 3-5');
  t.throws(() => srtpPrf(MASTER_KEY, MASTER_SALT.subarray(0, 13), 0, 16), RangeError, 'a 13-octet salt is refused');
  t.throws(() => new AesCm(MASTER_KEY.subarray(0, 15)), RangeError, 'a 15-octet key is refused');
  t.end();
});

t.test('known answers from independent implementations', (t) => {
  // libsrtp's srtp_validate() reference packets (test/srtp_driver.c), keyed with the B.3 master
  // key and salt, suite AES_CM_128_HMAC_SHA1_80, SSRC 0xcafebabe.
  const libsrtpRtp = hex('800f1234decafbad cafebabe abababab abababab abababab abababab');
  const libsrtpSrtp = hex('800f1234decafbad cafebabe4e55dc4c e79978d88ca4d215 949d2402b78d6acc 99ea179b8dbb');
  const libsrtpRtcp = hex('81c8000bcafebabe abababababababab abababababababab');
  // libsrtp numbers its first SRTCP packet 1 (E=1, index 1: 80000001); RFC 3711 §3.4 starts at 0.
  const libsrtpSrtcp = hex('81c8000bcafebabe 7128035be487b9bd bef89041f977a5a8 80000001993e08cd 54d6c1230798');
  const tx = context();
  t.same(ok(tx.protectRtp(libsrtpRtp)), libsrtpSrtp, 'libsrtp SRTP packet');
  const first = ok(tx.protectRtcp(libsrtpRtcp));
  t.equal(first.readUInt32BE(24), 0x80000000, 'our first SRTCP packet carries E=1, index 0');
  t.same(ok(tx.protectRtcp(libsrtpRtcp)), libsrtpSrtcp, 'libsrtp SRTCP packet (our second, index 1)');
  const rx = context();
  t.same(ok(rx.unprotectRtp(libsrtpSrtp)), libsrtpRtp, 'libsrtp SRTP unprotects');
  t.same(ok(rx.unprotectRtcp(libsrtpSrtcp)), libsrtpRtcp, 'libsrtp SRTCP unprotects');

  // test/media/srtp/independent-vectors.py: Python `cryptography` AES-CTR + hmac, same master key.
  // RTP with a CSRC and a header extension (both left in the clear), SEQ 2 sent after 65535 (ROC 1).
  const plain = Buffer.concat([hex('91800002 01020304 11223344 55667788 BEDE0001 10AABBCC'), Buffer.from(Array.from({ length: 20 }, (_, i) => i))]);
  const python80 = hex('91800002010203041122334455667788bede000110aabbccd35eb5a415ffd9946f465100c59d4ac98ad884f40b8800655f1888932946');
  const python32 = hex('91800002010203041122334455667788bede000110aabbccd35eb5a415ffd9946f465100c59d4ac98ad884f40b880065');
  for (const [suite, expected] of [['AES_CM_128_HMAC_SHA1_80', python80], ['AES_CM_128_HMAC_SHA1_32', python32]] as const) {
    const sender = context(suite);
    const before = Buffer.from(plain);
    before.writeUInt16BE(65535, 2);
    const beforeSrtp = ok(sender.protectRtp(before));
    t.same(ok(sender.protectRtp(plain)), expected, `${suite}: ROC 1 packet with CSRC and extension`);
    t.equal(sender.sendRoc(0x11223344), 1, 'the sender counted the wrap');
    const receiver = context(suite);
    t.same(ok(receiver.unprotectRtp(beforeSrtp)), before);
    t.same(ok(receiver.unprotectRtp(expected)), plain, `${suite}: the independent packet unprotects`);
    t.equal(receiver.receiveRoc(0x11223344), 1, 'the receiver counted the wrap');
  }
  const rtcpPlain = Buffer.concat([hex('81c90007 11223344 cafebabe'), Buffer.from(Array.from({ length: 20 }, (_, i) => i))]);
  const pythonSrtcp = hex('81c90007112233441bf2b101eaa4dc2eb7db5f594b059ce27a9870cb278ffe7f8000000079765bbd2ce74c63ffff');
  t.same(ok(context('AES_CM_128_HMAC_SHA1_32').protectRtcp(rtcpPlain)), pythonSrtcp, 'SRTCP index 0 keeps an 80-bit tag under _32');
  t.same(ok(context('AES_CM_128_HMAC_SHA1_32').unprotectRtcp(pythonSrtcp)), rtcpPlain);
  t.end();
});

t.test('protect/unprotect round trip for both suites', (t) => {
  const cases: Array<{ suite: SrtpSuiteName; tag: number }> = [
    { suite: 'AES_CM_128_HMAC_SHA1_80', tag: 10 },
    { suite: 'AES_CM_128_HMAC_SHA1_32', tag: 4 },
  ];
  for (const { suite, tag } of cases) {
    const tx = context(suite);
    const rx = context(suite);
    for (let seq = 100; seq < 150; seq++) {
      const plain = rtp(seq, 0xdeadbeef, 160);
      const srtp = ok(tx.protectRtp(plain));
      t.equal(srtp.length, plain.length + tag, `${suite}: ${tag}-octet tag`);
      t.same(srtp.subarray(0, 12), plain.subarray(0, 12), 'header in the clear');
      t.not(srtp.subarray(12, 172).toString('hex'), plain.subarray(12).toString('hex'), 'payload encrypted');
      t.same(ok(rx.unprotectRtp(srtp)), plain);
    }
    t.equal(tx.counters.rtpProtected, 50);
    t.equal(rx.counters.rtpUnprotected, 50);
    const rtcp = hex('81c90007 11223344 cafebabe 0000000000000000 0000000000000000 00000000');
    const srtcp = ok(tx.protectRtcp(rtcp));
    t.equal(srtcp.length, rtcp.length + 4 + 10, `${suite}: SRTCP adds E|index and an 80-bit tag`);
    t.same(ok(rx.unprotectRtcp(srtcp)), rtcp);
  }
  t.test('with an MKI', (t) => {
    const mki = hex('00000001');
    const tx = context('AES_CM_128_HMAC_SHA1_80', { mki });
    const rx = context('AES_CM_128_HMAC_SHA1_80', { mki });
    const srtp = ok(tx.protectRtp(rtp(7)));
    t.same(srtp.subarray(32, 36), mki, 'MKI between payload and tag');
    t.same(ok(rx.unprotectRtp(srtp)), rtp(7));
    const other = context('AES_CM_128_HMAC_SHA1_80', { mki: hex('00000002') });
    const r = other.unprotectRtp(ok(tx.protectRtp(rtp(8))));
    t.equal(r.ok ? '' : r.code, 'SRTP_MKI_MISMATCH');
    const rtcp = ok(tx.protectRtcp(hex('81c90001 11223344')));
    t.same(ok(rx.unprotectRtcp(rtcp)), hex('81c90001 11223344'), 'SRTCP with an MKI');
    t.end();
  });
  t.end();
});

t.test('rollover counter (RFC 3711 §3.3.1, Appendix A)', (t) => {
  const guesses: Array<{ name: string; roc: number; sl: number; seq: number; v: number }> = [
    { name: 'in order, low half', roc: 3, sl: 100, seq: 101, v: 3 },
    { name: 'late from before a wrap', roc: 3, sl: 10, seq: 65530, v: 2 },
    { name: 'wrap seen from the high half', roc: 3, sl: 65530, seq: 2, v: 4 },
    { name: 'late in the high half', roc: 3, sl: 65530, seq: 65000, v: 3 },
    { name: 'exactly half ahead stays', roc: 3, sl: 100, seq: 100 + 32768, v: 3 },
    { name: 'ROC 0 minus one wraps mod 2^32', roc: 0, sl: 5, seq: 60000, v: 0xffffffff },
    { name: 'ROC 2^32-1 plus one wraps to 0', roc: 0xffffffff, sl: 60000, seq: 3, v: 0 },
  ];
  for (const g of guesses) t.equal(guessRoc(g.roc, g.sl, g.seq), g.v, g.name);

  const tracker = new RocTracker();
  for (const [seq, roc] of [[65534, 0], [65535, 0], [0, 1], [65533, 1], [1, 1]] as const) {
    const v = tracker.estimate(seq);
    tracker.update(v, seq);
    t.equal(tracker.rolloverCounter, roc, `after ${seq}: ROC ${roc}`);
  }

  const tx = context();
  const rx = context();
  const seqs = [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3, 4, 5];
  const srtp = new Map(seqs.map((s) => [s, ok(tx.protectRtp(rtp(s)))]));
  t.equal(tx.sendRoc(0x11223344), 1);
  for (const s of [65530, 65531, 65532, 65533, 65535, 0, 1, 2, 3, 65534, 4, 5]) {
    t.same(ok(rx.unprotectRtp(srtp.get(s)!)), rtp(s), s === 65534 ? 'a late packet from before the wrap decrypts' : `sequence ${s}`);
  }
  t.equal(rx.receiveRoc(0x11223344), 1);
  t.equal(rx.counters.errors.SRTP_AUTH_FAILED, 0);
  t.end();
});

t.test('replay protection (RFC 3711 §3.3.2)', (t) => {
  const w = new ReplayWindow(64);
  const steps: Array<{ name: string; index: number; verdict: string; accept?: boolean }> = [
    { name: 'first index', index: 1000, verdict: 'fresh', accept: true },
    { name: 'same index', index: 1000, verdict: 'replayed' },
    { name: 'reordered inside the window', index: 990, verdict: 'fresh', accept: true },
    { name: 'reordered one again', index: 990, verdict: 'replayed' },
    { name: 'last index inside a 64 window', index: 937, verdict: 'fresh' },
    { name: 'first index outside', index: 936, verdict: 'too-old' },
    { name: 'jump past the window', index: 5000, verdict: 'fresh', accept: true },
    { name: 'old bits cleared by the jump', index: 4990, verdict: 'fresh' },
    { name: 'after the jump the old top is too old', index: 1000, verdict: 'too-old' },
  ];
  for (const s of steps) {
    t.equal(w.check(s.index), s.verdict, s.name);
    if (s.accept) w.accept(s.index);
  }
  t.throws(() => new ReplayWindow(63), RangeError, 'a window below 64 is refused');

  const tx = context();
  const rx = context();
  const packets = Array.from({ length: 200 }, (_, i) => ok(tx.protectRtp(rtp(1000 + i))));
  ok(rx.unprotectRtp(packets[1]!));
  const again = rx.unprotectRtp(packets[1]!);
  t.equal(again.ok ? '' : again.code, 'SRTP_REPLAYED', 'the same packet twice: second rejected');
  for (let i = 2; i < 200; i++) if (i !== 150) ok(rx.unprotectRtp(packets[i]!));
  t.same(ok(rx.unprotectRtp(packets[150]!)), rtp(1150), 'a late packet inside the window is accepted');
  const old = rx.unprotectRtp(packets[0]!);
  t.equal(old.ok ? '' : old.code, 'SRTP_REPLAYED', 'a packet older than the window is rejected');
  t.match(old.ok ? '' : old.reason, /older than the 128-packet replay window/);
  t.equal(rx.counters.errors.SRTP_REPLAYED, 2);

  const reuse = tx.protectRtp(rtp(1000));
  t.equal(reuse.ok ? '' : reuse.code, 'SRTP_INDEX_REUSED', 'the sender never reuses a keystream');
  t.end();
});

t.test('a bit flip anywhere fails authentication', (t) => {
  for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'] as const) {
    const srtp = ok(context(suite).protectRtp(rtp(42, 0x11223344, 20)));
    const rx = context(suite);
    let failures = 0;
    for (let bit = 0; bit < srtp.length * 8; bit++) {
      const tampered = Buffer.from(srtp);
      tampered[bit >> 3] = tampered[bit >> 3]! ^ (0x80 >> (bit & 7));
      const r = rx.unprotectRtp(tampered);
      if (!r.ok && r.code === 'SRTP_AUTH_FAILED') failures++;
    }
    t.equal(failures, srtp.length * 8, `${suite}: all ${srtp.length * 8} single-bit flips (header, payload, tag) fail`);
    t.equal(rx.counters.errors.SRTP_AUTH_FAILED, srtp.length * 8, 'each counted');
    t.same(ok(rx.unprotectRtp(srtp)), rtp(42), 'no state was created: the genuine packet still passes');
  }
  const srtcp = ok(context().protectRtcp(hex('81c90007 11223344 cafebabe 0102030405060708090a0b0c0d0e0f1011121314')));
  const rx = context();
  let failures = 0;
  for (let bit = 0; bit < srtcp.length * 8; bit++) {
    const tampered = Buffer.from(srtcp);
    tampered[bit >> 3] = tampered[bit >> 3]! ^ (0x80 >> (bit & 7));
    const r = rx.unprotectRtcp(tampered);
    if (!r.ok && r.code === 'SRTP_AUTH_FAILED') failures++;
  }
  t.equal(failures, srtcp.length * 8, 'SRTCP: every single-bit flip, E flag and index included, fails');
  t.end();
});

t.test('SRTCP (RFC 3711 §3.4)', (t) => {
  const tx = context();
  const rx = context();
  const sr = hex('80c80006 11223344 0000000100000002 00000003 00000004 00000005');
  const packets = [0, 1, 2].map(() => ok(tx.protectRtcp(sr)));
  t.same(packets.map((p) => p.readUInt32BE(sr.length)), [0x80000000, 0x80000001, 0x80000002], 'E=1, index 0, 1, 2');
  t.same(ok(rx.unprotectRtcp(packets[1]!)), sr);
  t.same(ok(rx.unprotectRtcp(packets[0]!)), sr, 'reordered SRTCP is accepted');
  const replay = rx.unprotectRtcp(packets[1]!);
  t.equal(replay.ok ? '' : replay.code, 'SRTP_REPLAYED', 'SRTCP replay rejected');
  t.same(ok(rx.unprotectRtcp(packets[2]!)), sr);
  t.equal(rx.counters.rtcpUnprotected, 3);
  const cases: Array<{ name: string; packet: Buffer; code: string }> = [
    { name: 'RTCP shorter than its header', packet: hex('80c80006 112233'), code: 'SRTP_TOO_SHORT' },
    { name: 'RTCP version 1', packet: hex('40c80006 11223344'), code: 'SRTP_MALFORMED' },
  ];
  for (const c of cases) {
    const r = tx.protectRtcp(c.packet);
    t.equal(r.ok ? '' : r.code, c.code, c.name);
  }
  const short = rx.unprotectRtcp(packets[0]!.subarray(0, 21));
  t.equal(short.ok ? '' : short.code, 'SRTP_TOO_SHORT', 'SRTCP without room for index and tag');
  t.end();
});

t.test('refusals are results, each counted', (t) => {
  const tx = context();
  const rx = context();
  const withExtension = hex('90000001 00000000 11223344 BEDE0005 00000000');
  const cases: Array<{ name: string; run: () => SrtpResult; code: string }> = [
    { name: 'RTP shorter than 12 octets', run: () => tx.protectRtp(hex('8000000100000000112233')), code: 'SRTP_TOO_SHORT' },
    { name: 'RTP version 0', run: () => tx.protectRtp(hex('000000010000000011223344aabb')), code: 'SRTP_MALFORMED' },
    { name: 'header extension overruns', run: () => tx.protectRtp(withExtension), code: 'SRTP_TOO_SHORT' },
    { name: 'SRTP shorter than header + tag', run: () => rx.unprotectRtp(hex('800000010000000011223344aabbccdd')), code: 'SRTP_TOO_SHORT' },
    { name: 'empty datagram', run: () => rx.unprotectRtp(Buffer.alloc(0)), code: 'SRTP_TOO_SHORT' },
  ];
  for (const c of cases) {
    const r = c.run();
    t.equal(r.ok ? '' : r.code, c.code, c.name);
    t.notMatch(r.ok ? '' : r.reason, /[0-9a-f]{32}/i, 'no key material in the reason');
  }
  t.equal(tx.counters.errors.SRTP_TOO_SHORT + rx.counters.errors.SRTP_TOO_SHORT, 4);
  t.equal(tx.counters.errors.SRTP_MALFORMED, 1);

  const limited = context('AES_CM_128_HMAC_SHA1_80', { lifetime: 3 });
  for (let s = 0; s < 3; s++) ok(limited.protectRtp(rtp(s)));
  const spent = limited.protectRtp(rtp(3));
  t.equal(spent.ok ? '' : spent.code, 'SRTP_KEY_EXHAUSTED', 'an SDES lifetime of 3 packets is honoured');

  const few = context('AES_CM_128_HMAC_SHA1_80', { maxStreams: 2 });
  const sender = context();
  for (const ssrc of [1, 2, 3]) ok(few.unprotectRtp(ok(sender.protectRtp(rtp(10, ssrc)))));
  t.equal(few.receiveRoc(1), undefined, 'the oldest SSRC is forgotten past maxStreams');
  t.equal(few.receiveRoc(3), 0);
  ok(few.protectRtp(rtp(1, 1)));
  ok(few.protectRtp(rtp(1, 2)));
  const third = few.protectRtp(rtp(1, 3));
  t.equal(third.ok ? '' : third.code, 'SRTP_TOO_MANY_STREAMS', 'a third SSRC sent with the key is refused, not evicted');
  t.equal(few.sendRoc(1), 0, 'the first sender state is kept');
  t.throws(() => new SrtpContext({ suite: 'AES_CM_128_HMAC_SHA1_80', masterKey: MASTER_KEY.subarray(1), masterSalt: MASTER_SALT }), RangeError);
  t.end();
});

t.test('throughput on this machine', (t) => {
  const n = 20000;
  for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'] as const) {
    const tx = context(suite);
    const rx = context(suite);
    const plain = Array.from({ length: 64 }, (_, i) => rtp(i, 0x5eed, 160));
    let equal = 0;
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const p = plain[i & 63]!;
      p.writeUInt16BE(i & 0xffff, 2);
      const out = ok(rx.unprotectRtp(ok(tx.protectRtp(p))));
      if (out.length === p.length) equal++;
    }
    const ms = performance.now() - start;
    t.equal(equal, n, `${suite}: ${n} packets round-tripped`);
    t.comment(`${suite}: ${Math.round((n / ms) * 1000)} packets/s protect+unprotect (160-octet payload, under tap's coverage instrumentation), ${((ms * 1000) / n).toFixed(1)} µs per packet`);
  }
  t.end();
});

t.test('packets built by hand from the derived keys', (t) => {
  const rtpKeys = deriveSessionKeys(MASTER_KEY, MASTER_SALT, 'rtp');
  const rtcpKeys = deriveSessionKeys(MASTER_KEY, MASTER_SALT, 'rtcp');
  // RFC 3711 §3.4: "In case the E-flag is 0, the payload is simply left unmodified."
  const rr = hex('81c90007 11223344 cafebabe 0102030405060708090a0b0c0d0e0f1011121314');
  const clear = Buffer.concat([rr, hex('00000000')]);
  const srtcp = Buffer.concat([clear, createHmac('sha1', rtcpKeys.authKey).update(clear).digest().subarray(0, 10)]);
  const rx = context();
  t.same(ok(rx.unprotectRtcp(srtcp)), rr, 'an authenticated SRTCP packet with E=0 is accepted unmodified');
  for (let i = 1; i < 200; i++) {
    const next = Buffer.from(clear);
    next.writeUInt32BE(i, rr.length);
    ok(rx.unprotectRtcp(Buffer.concat([next, createHmac('sha1', rtcpKeys.authKey).update(next).digest().subarray(0, 10)])));
  }
  const old = rx.unprotectRtcp(srtcp);
  t.match(old.ok ? '' : old.reason, /SRTCP index 0 .* older than the 128-packet replay window/, 'SRTCP older than the window');

  // A genuine tag over a header whose extension overruns the packet: refused after authentication.
  const bogus = hex('90000001 00000000 11223344 BEDE0009 00000000');
  const roc = Buffer.alloc(4);
  const tagged = Buffer.concat([bogus, createHmac('sha1', rtpKeys.authKey).update(bogus).update(roc).digest().subarray(0, 10)]);
  const r = context().unprotectRtp(tagged);
  t.equal(r.ok ? '' : r.code, 'SRTP_TOO_SHORT', 'authenticated but malformed header');
  const v1 = Buffer.from(bogus);
  v1[0] = 0x40;
  const r1 = context().unprotectRtp(Buffer.concat([v1, createHmac('sha1', rtpKeys.authKey).update(v1).update(roc).digest().subarray(0, 10)]));
  t.equal(r1.ok ? '' : r1.code, 'SRTP_MALFORMED', 'authenticated RTP version 1');
  const rtcpV1 = Buffer.concat([hex('41c90001 11223344'), hex('80000000')]);
  const r2 = context().unprotectRtcp(Buffer.concat([rtcpV1, createHmac('sha1', rtcpKeys.authKey).update(rtcpV1).digest().subarray(0, 10)]));
  t.equal(r2.ok ? '' : r2.code, 'SRTP_MALFORMED', 'authenticated RTCP version 1');

  const spent = context('AES_CM_128_HMAC_SHA1_80', { lifetime: 1 });
  ok(spent.protectRtcp(rr));
  const r3 = spent.protectRtcp(rr);
  t.match(r3.ok ? '' : r3.reason, /lifetime of 1 SRTCP packets/, 'the lifetime counts SRTCP separately');
  t.throws(() => writeCounterBlock(Buffer.alloc(16), Buffer.alloc(12), 0, 0, 0), RangeError, 'a 12-octet session salt is refused');
  t.throws(() => new AesCm(MASTER_KEY).keystream(Buffer.alloc(16), 16 * 0x10000 + 1), RangeError, 'more than 2^16 blocks is refused');
  t.end();
});
