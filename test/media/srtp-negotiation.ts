import t from 'tap';
import { acceptAnswer, answerOffer, makeOffer, type CryptoSdp } from '../../src/media/srtp-negotiation.ts';
import { legSecurity, type LegSecurity, type SrtpPolicy } from '../../src/media/srtp-policy.ts';
import { formatSdesCrypto, generateSdesCrypto, parseSdesCrypto } from '../../src/media/srtp/sdes.ts';
import { relayedMediaFactory } from '../../src/media/media-session.ts';
import type { MediaSession, SdpResult } from '../../src/media/media-session.ts';
import type { LegName, MediaRelay, RelayPeer, RelayStats } from '../../src/media/rtp-relay.ts';
import type { SrtpDrops, SrtpKeys } from '../../src/media/relay/leg-srtp.ts';
import { parseSdp } from '../../src/media/sdp.ts';
import { SeededRandom } from '../../src/runtime/random.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { resolveConfig } from '../../src/config/config.ts';
import { redactSdesKeyBytes } from '../../src/trace/sdes-redaction.ts';
import { TraceHub } from '../../src/trace/trace-hub.ts';

const random = () => new SeededRandom(7);
// RFC 4568 §6.1 example key (30 octets of key||salt, base64).
const PEER_KEY = '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR';
const PEER_KEY_32 = '2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj';
const sec = (policy: SrtpPolicy, keysAllowed: boolean): LegSecurity => ({ policy, keysAllowed, transport: keysAllowed ? 'tls' : 'udp' });

t.test('answerOffer: offer × policy × transport → SRTP answer, plain answer or 488', async (t) => {
  const AVP: CryptoSdp = { protocol: 'RTP/AVP', crypto: [] };
  const AVP_CRYPTO: CryptoSdp = { protocol: 'RTP/AVP', crypto: [PEER_KEY] };
  const SAVP: CryptoSdp = { protocol: 'RTP/SAVP', crypto: [PEER_KEY] };
  const SAVP_NONE: CryptoSdp = { protocol: 'RTP/SAVP', crypto: [] };
  const SAVP_BAD: CryptoSdp = { protocol: 'RTP/SAVP', crypto: ['1 AES_256_CM_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR'] };
  const AVP_BAD: CryptoSdp = { protocol: 'RTP/AVP', crypto: ['1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR'] };
  type Want = 'srtp' | 'plain' | { refused: RegExp; plainSignalling: boolean };
  const cases: [string, CryptoSdp, SrtpPolicy, boolean, Want][] = [
    ['off, RTP/AVP', AVP, 'off', true, 'plain'],
    ['off, RTP/AVP + crypto (ignored)', AVP_CRYPTO, 'off', true, 'plain'],
    ['off, RTP/SAVP', SAVP, 'off', true, { refused: /SRTP is off/, plainSignalling: false }],
    ['optional TLS, RTP/AVP', AVP, 'optional', true, 'plain'],
    ['optional TLS, RTP/AVP + crypto', AVP_CRYPTO, 'optional', true, 'srtp'],
    ['optional TLS, RTP/SAVP', SAVP, 'optional', true, 'srtp'],
    ['optional UDP, RTP/AVP', AVP, 'optional', false, 'plain'],
    ['optional UDP, RTP/AVP + crypto: answered plain, no key sent', AVP_CRYPTO, 'optional', false, 'plain'],
    ['optional UDP, RTP/SAVP', SAVP, 'optional', false, { refused: /refused over udp signalling/, plainSignalling: true }],
    ['mandatory TLS, RTP/AVP', AVP, 'mandatory', true, { refused: /mandatory .* no a=crypto/, plainSignalling: false }],
    ['mandatory TLS, RTP/AVP + crypto', AVP_CRYPTO, 'mandatory', true, 'srtp'],
    ['mandatory TLS, RTP/SAVP', SAVP, 'mandatory', true, 'srtp'],
    ['mandatory UDP, RTP/AVP + crypto', AVP_CRYPTO, 'mandatory', false, { refused: /refused over udp/, plainSignalling: true }],
    ['mandatory UDP, RTP/SAVP', SAVP, 'mandatory', false, { refused: /refused over udp/, plainSignalling: true }],
    ['mandatory UDP, RTP/AVP', AVP, 'mandatory', false, { refused: /mandatory .* no a=crypto/, plainSignalling: false }],
    ['optional TLS, RTP/SAVP without crypto', SAVP_NONE, 'optional', true, { refused: /without a=crypto/, plainSignalling: false }],
    ['optional TLS, RTP/SAVP with only an unsupported suite', SAVP_BAD, 'optional', true, { refused: /no usable a=crypto: tag 1: crypto-suite AES_256/, plainSignalling: false }],
    ['optional TLS, RTP/AVP with only an unsupported suite: plain', AVP_BAD, 'optional', true, 'plain'],
    ['mandatory TLS, RTP/AVP with only an unsupported suite', AVP_BAD, 'mandatory', true, { refused: /no usable a=crypto/, plainSignalling: false }],
  ];
  for (const [name, offer, policy, keysAllowed, want] of cases) {
    const r = answerOffer(offer, sec(policy, keysAllowed), random());
    if (want === 'srtp') {
      t.ok(r.ok && r.keys !== undefined, `${name}: SRTP`);
      if (r.ok && r.keys) {
        t.equal(r.crypto.length, 1, `${name}: one a=crypto in the answer (RFC 4568 §5.1.2)`);
        const answered = parseSdesCrypto(r.crypto[0]!);
        t.ok(answered.ok && answered.crypto.tag === 1 && answered.crypto.suite === 'AES_CM_128_HMAC_SHA1_80', `${name}: same tag and suite`);
        t.notSame(r.keys.local.keys[0]!.masterKey, r.keys.remote.keys[0]!.masterKey, `${name}: our key differs from theirs`);
        t.equal(r.keys.remote.keys[0]!.masterKey.toString('base64'), Buffer.from('PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR', 'base64').subarray(0, 16).toString('base64'), `${name}: their key receives`);
      }
    } else if (want === 'plain') {
      t.same(r, { ok: true, keys: undefined, crypto: [] }, `${name}: plain, nothing sent`);
    } else {
      t.match(r, { ok: false, status: 488, reason: want.refused, plainSignalling: want.plainSignalling }, `${name}: 488`);
      if (!r.ok) t.notMatch(r.reason, /PS1uQCVee/, `${name}: the reason carries no key`);
    }
  }
});

t.test('answerOffer skips attributes it cannot use and keeps its key for the same suite', async (t) => {
  const r = answerOffer({ protocol: 'RTP/SAVP', crypto: ['1 AES_256_CM_HMAC_SHA1_80 inline:x', PEER_KEY_32] }, sec('mandatory', true), random());
  t.ok(r.ok && r.keys?.remote.suite === 'AES_CM_128_HMAC_SHA1_32' && r.keys.local.tag === 2, 'the first usable one (tag 2, _32) is answered');
  if (!r.ok || !r.keys) return;
  const again = answerOffer({ protocol: 'RTP/SAVP', crypto: [PEER_KEY_32] }, sec('mandatory', true), new SeededRandom(99), r.keys);
  t.ok(again.ok && again.keys?.local.keys[0]!.masterKey.equals(r.keys.local.keys[0]!.masterKey), 'a re-offer in the same suite keeps our key (RFC 4568 §7.1.4)');
  const other = answerOffer({ protocol: 'RTP/SAVP', crypto: [PEER_KEY] }, sec('mandatory', true), new SeededRandom(99), r.keys);
  t.ok(other.ok && !other.keys?.local.keys[0]!.masterKey.equals(r.keys.local.keys[0]!.masterKey), 'another suite gets a fresh key');
});

t.test('makeOffer: profile and attributes by policy and transport', async (t) => {
  const cases: [string, LegSecurity, boolean, { ok: boolean; attrs?: number; savp?: boolean; reason?: RegExp }][] = [
    ['off', sec('off', true), false, { ok: true, attrs: 0, savp: false }],
    ['optional over TLS: RTP/AVP + a=crypto (best effort)', sec('optional', true), false, { ok: true, attrs: 2, savp: false }],
    ['optional over TLS, leg settled on RTP/SAVP: stays SAVP', sec('optional', true), true, { ok: true, attrs: 2, savp: true }],
    ['optional over UDP: no key leaves', sec('optional', false), false, { ok: true, attrs: 0, savp: false }],
    ['mandatory over TLS: RTP/SAVP', sec('mandatory', true), false, { ok: true, attrs: 2, savp: true }],
    ['mandatory over UDP: refused', sec('mandatory', false), false, { ok: false, reason: /mandatory towards this leg but its signalling is udp/ }],
  ];
  for (const [name, s, savp, want] of cases) {
    const r = makeOffer(s, random(), undefined, savp);
    if (!want.ok) {
      t.match(r, { ok: false, status: 488, reason: want.reason, plainSignalling: true }, name);
      continue;
    }
    t.ok(r.ok, name);
    if (!r.ok) continue;
    t.equal(r.crypto.length, want.attrs, `${name}: ${want.attrs} attributes`);
    t.equal(r.secureProfile, want.savp, `${name}: profile`);
    if (r.crypto.length === 2) {
      t.same(r.offered.map((c) => [c.tag, c.suite]), [[1, 'AES_CM_128_HMAC_SHA1_80'], [2, 'AES_CM_128_HMAC_SHA1_32']], `${name}: both suites, strongest first`);
    }
  }
  const current = { local: generateSdesCrypto(random(), 1), remote: generateSdesCrypto(new SeededRandom(3), 1) };
  const kept = makeOffer(sec('mandatory', true), new SeededRandom(11), current);
  t.ok(kept.ok && kept.offered[0]!.keys[0]!.masterKey.equals(current.local.keys[0]!.masterKey), 'a re-offer keeps the current sending key for its suite');
});

t.test('acceptAnswer: the tag names an offered attribute; what no answer may do', async (t) => {
  const plan = makeOffer(sec('mandatory', true), random());
  const optional = makeOffer(sec('optional', true), random());
  if (!plan.ok || !optional.ok) throw new Error('no plan');
  const theirs = formatSdesCrypto(generateSdesCrypto(new SeededRandom(5), 2, 'AES_CM_128_HMAC_SHA1_32'));
  const good = acceptAnswer({ protocol: 'RTP/SAVP', crypto: [theirs] }, plan);
  t.ok(good.ok && good.keys?.local === plan.offered[1] && good.keys.remote.tag === 2, 'tag 2 answered: our tag-2 key sends, theirs receives');
  const cases: [string, CryptoSdp, typeof plan | undefined, RegExp | 'plain'][] = [
    ['no a=crypto to an RTP/SAVP offer', { protocol: 'RTP/SAVP', crypto: [] }, plan, /has no a=crypto/],
    ['no a=crypto to an optional RTP/AVP offer: plain', { protocol: 'RTP/AVP', crypto: [] }, optional, 'plain'],
    ['a tag never offered', { protocol: 'RTP/SAVP', crypto: [theirs.replace(/^2/, '7')] }, plan, /tag 7 .* was not offered/],
    ['a suite that does not match the tag', { protocol: 'RTP/SAVP', crypto: [theirs.replace(/^2/, '1')] }, plan, /tag 1 .* was not offered/],
    ['two attributes', { protocol: 'RTP/SAVP', crypto: [theirs, theirs] }, plan, /allows one/],
    ['an invalid key length', { protocol: 'RTP/SAVP', crypto: ['2 AES_CM_128_HMAC_SHA1_32 inline:AAAA'] }, plan, /unusable a=crypto/],
    ['RTP/SAVP to an offer without SRTP', { protocol: 'RTP/SAVP', crypto: [theirs] }, undefined, /answer to an offer without SRTP/],
    ['a=crypto to an offer without SRTP: ignored', { protocol: 'RTP/AVP', crypto: [theirs] }, undefined, 'plain'],
  ];
  for (const [name, answer, p, want] of cases) {
    const r = acceptAnswer(answer, p);
    if (want === 'plain') t.same(r, { ok: true, keys: undefined }, name);
    else t.match(r, { ok: false, status: 488, reason: want }, name);
  }
});

t.test('legSecurity: own policy first, keys only when every path is TLS or allowed', async (t) => {
  const settings = {
    media: { srtp: 'mandatory' as const, srtpOverPlainSignalling: false },
    extensions: { '101': { srtp: 'off' as const }, '102': {} },
    trunks: [{ name: 'sip-provider', srtp: 'optional' as const }],
  };
  const cases: [string, Parameters<typeof legSecurity>[1], LegSecurity][] = [
    ['an extension with its own policy', { transports: ['tls'], extension: '101' }, { policy: 'off', keysAllowed: true, transport: 'tls' }],
    ['an extension without one', { transports: ['udp'], extension: '102' }, { policy: 'mandatory', keysAllowed: false, transport: 'udp' }],
    ['a trunk', { transports: ['tls'], trunk: 'sip-provider' }, { policy: 'optional', keysAllowed: true, transport: 'tls' }],
    ['forks over TLS and UDP', { transports: ['tls', 'udp', 'tls'], extension: '102' }, { policy: 'mandatory', keysAllowed: false, transport: 'tls,udp' }],
    ['no known transport', { transports: [] }, { policy: 'mandatory', keysAllowed: false, transport: 'unknown' }],
  ];
  for (const [name, peer, want] of cases) t.same(legSecurity(settings, peer), want, name);
  t.same(legSecurity({ ...settings, media: { srtpOverPlainSignalling: true } }, { transports: ['udp'] }), { policy: 'optional', keysAllowed: true, transport: 'udp' }, 'default optional; plain signalling allowed');
});

t.test('config: media.srtp, srtpOverPlainSignalling, extension and trunk srtp', async (t) => {
  const cfg = resolveConfig({
    media: { srtp: 'mandatory', srtpOverPlainSignalling: true },
    extensions: { '101': { password: 'kitchen-secret', srtp: 'off' } },
    trunks: [{ name: 'p', host: 'sip.example.net', username: 'u', password: 'x', srtp: 'optional' }],
  });
  t.equal(cfg.media.srtp, 'mandatory');
  t.equal(cfg.media.srtpOverPlainSignalling, true);
  t.equal(cfg.extensions['101']?.srtp, 'off');
  t.equal(cfg.trunks[0]?.srtp, 'optional');
  const bad: [string, unknown, RegExp][] = [
    ['media.srtp', { media: { srtp: 'required' } }, /media\.srtp must be one of off, optional, mandatory \(got "required"\)/],
    ['media.srtpOverPlainSignalling', { media: { srtpOverPlainSignalling: 'yes' } }, /media\.srtpOverPlainSignalling must be true or false/],
    ['extension srtp', { extensions: { '101': { password: 'kitchen-secret', srtp: true } } }, /extensions\.101\.srtp must be one of/],
    ['trunk srtp', { trunks: [{ name: 'p', host: 'h', username: 'u', password: 'x', srtp: 'SRTP' }] }, /trunks\[0\]\.srtp must be one of/],
  ];
  for (const [name, input, want] of bad) t.throws(() => resolveConfig(input), { message: want }, name);
});

/** A relay that records the SRTP keys the media session settles. */
class KeyRelay implements MediaRelay {
  readonly id = 'relay-k';
  readonly keys: Partial<Record<LegName, SrtpKeys | undefined>> = {};
  readonly sets: LegName[] = [];
  /** What the relay says it refused per leg (RelayStats.srtp). */
  readonly drops: Partial<Record<LegName, SrtpDrops>> = {};
  localPort(leg: LegName): number {
    return leg === 'a' ? 20000 : 20002;
  }
  setRemote(_leg: LegName, _peer: RelayPeer): void {}
  setPayloadMap(): void {}
  setTranscoder(): void {}
  setEcho(): void {}
  setSrtp(leg: LegName, keys: SrtpKeys | undefined): void {
    this.keys[leg] = keys;
    this.sets.push(leg);
  }
  idleMs(): number {
    return 0;
  }
  stats(leg: LegName): RelayStats {
    const srtp = this.drops[leg];
    return { forwarded: 0, dropped: 0, consumed: 0, received: 0, ...(srtp ? { srtp } : {}) };
  }
  close(): void {}
}

const sdp = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');
const phone = (proto: string, crypto: string[], version = 1) =>
  sdp('v=0', `o=- 5 ${version} IN IP4 192.0.2.5`, 's=-', 'c=IN IP4 192.0.2.5', 't=0 0', `m=audio 4000 ${proto} 0`, 'a=rtpmap:0 PCMU/8000', ...crypto.map((c) => `a=crypto:${c}`));
const body = (r: SdpResult): string => {
  if (!r.ok) throw new Error(`${r.status} ${r.reason}`);
  return r.sdp;
};

async function session(policies: Record<LegName, [SrtpPolicy, 'tls' | 'udp']>): Promise<{ media: MediaSession; relay: KeyRelay; logger: MemoryLogger }> {
  const relay = new KeyRelay();
  const logger = new MemoryLogger();
  const byExt: Record<string, [SrtpPolicy, 'tls' | 'udp']> = { '1': policies.a, '2': policies.b };
  const factory = relayedMediaFactory({ open: async () => relay }, {
    random: new SeededRandom(1),
    logger,
    srtp: (peer) => ({ policy: byExt[peer.extension!]![0], keysAllowed: peer.transports.every((x) => x === 'tls'), transport: peer.transports.join(',') }),
  });
  const media = await factory.create();
  for (const leg of ['a', 'b'] as const) {
    media.setLocalAddress(leg, '192.0.2.1');
    media.setLegPeer!(leg, { transports: [policies[leg][1]], extension: leg === 'a' ? '1' : '2' });
  }
  return { media, relay, logger };
}

t.test('a relayed call: each leg keyed on its own, SRTP bridged to plain, re-keying on new keys', async (t) => {
  await t.test('SRTP (TLS, mandatory) caller to a plain UDP callee (optional)', async (t) => {
    const { media, relay } = await session({ a: ['mandatory', 'tls'], b: ['optional', 'udp'] });
    const offerToB = parseSdp(body(media.offer('a', phone('RTP/SAVP', [PEER_KEY]))));
    t.equal(offerToB.audio.protocol, 'RTP/AVP', 'the plain leg is offered RTP/AVP');
    t.same(offerToB.audio.crypto, [], 'no key goes over UDP');
    const answerToA = parseSdp(body(media.answer('b', phone('RTP/AVP', []))), { srtp: true });
    t.equal(answerToA.audio.protocol, 'RTP/SAVP', 'the SRTP caller is answered RTP/SAVP');
    t.equal(answerToA.audio.crypto.length, 1, 'with one a=crypto');
    t.ok(relay.keys.a !== undefined && relay.keys.b === undefined, 'leg a SRTP, leg b plain');
    t.equal(formatSdesCrypto(relay.keys.a!.local), answerToA.audio.crypto[0], 'the relay sends with the key in our answer');
    t.equal(relay.keys.a!.remote.keys[0]!.masterKey.toString('hex'), parseOk(PEER_KEY).keys[0]!.masterKey.toString('hex'), 'and receives with the caller\'s');
  });

  await t.test('SRTP to SRTP over TLS: two keys per leg, all different; refresh keeps them; new keys re-key', async (t) => {
    const { media, relay } = await session({ a: ['mandatory', 'tls'], b: ['mandatory', 'tls'] });
    const offerToB = parseSdp(body(media.offer('a', phone('RTP/SAVP', [PEER_KEY]))), { srtp: true });
    t.equal(offerToB.audio.protocol, 'RTP/SAVP');
    t.equal(offerToB.audio.crypto.length, 2, 'both suites offered to b');
    const bKey = formatSdesCrypto(generateSdesCrypto(new SeededRandom(8), 1));
    body(media.answer('b', phone('RTP/SAVP', [bKey])));
    const keys = [relay.keys.a!.local, relay.keys.a!.remote, relay.keys.b!.local, relay.keys.b!.remote].map((c) => c.keys[0]!.masterKey.toString('hex'));
    t.equal(new Set(keys).size, 4, 'four distinct master keys');
    const before = { a: relay.keys.a!, b: relay.keys.b! };

    // A session refresh from the gateway: the same keys all round, so the relay's contexts go on.
    const refresh = parseSdp(media.reoffer('b'), { srtp: true });
    t.ok(refresh.audio.crypto.some((c) => c === formatSdesCrypto(before.b.local)), 'the re-offer keeps our key on b');
    body(media.answer('b', phone('RTP/SAVP', [bKey], 2)));
    t.same(relay.keys.b!.local.keys, before.b.local.keys, 'b: our key unchanged');
    t.same(relay.keys.b!.remote.keys, before.b.remote.keys, 'b: theirs unchanged');

    // The caller re-INVITEs with a new key (RFC 4568 §7.1.4): leg a gets it; the gateway keeps its own.
    const newKey = formatSdesCrypto(generateSdesCrypto(new SeededRandom(9), 1));
    body(media.offer('a', phone('RTP/SAVP', [newKey], 2)));
    body(media.answer('b', phone('RTP/SAVP', [bKey], 3)));
    t.equal(formatSdesCrypto(relay.keys.a!.remote), newKey, 'leg a now receives with the new key');
    t.same(relay.keys.a!.local.keys, before.a.local.keys, 'and still sends with ours');
  });

  await t.test('refusals: 488 and one warning, nothing settled', async (t) => {
    const { media, relay, logger } = await session({ a: ['mandatory', 'udp'], b: ['mandatory', 'tls'] });
    const r = media.offer('a', phone('RTP/SAVP', [PEER_KEY]));
    t.match(r, { ok: false, status: 488, reason: /refused over udp signalling/ }, 'SDES over UDP with mandatory: 488');
    const warnings = logger.records.filter((e) => e.level === 'warn');
    t.equal(warnings.length, 1, 'one log line');
    t.match(warnings[0], { msg: 'SRTP keys refused over plain signalling', fields: { leg: 'a', policy: 'mandatory', transport: 'udp' } });
    t.same(relay.sets, [], 'no keys reached the relay');

    const towardsUdp = await session({ a: ['mandatory', 'tls'], b: ['mandatory', 'udp'] });
    t.match(towardsUdp.media.offer('a', phone('RTP/SAVP', [PEER_KEY])), { ok: false, status: 488, reason: /mandatory towards this leg/ }, 'a mandatory callee over UDP cannot be offered keys: 488');
    const noCrypto = await session({ a: ['optional', 'tls'], b: ['mandatory', 'tls'] });
    body(noCrypto.media.offer('a', phone('RTP/AVP', [])));
    t.match(noCrypto.media.answer('b', phone('RTP/SAVP', [])), { ok: false, status: 488, reason: /no a=crypto/ }, 'an answer without keys to our RTP/SAVP offer: 488');
  });

  await t.test('stats: the keyed leg shows its suite and the relay\'s refusals by kind; the plain leg none', async (t) => {
    const { media, relay } = await session({ a: ['mandatory', 'tls'], b: ['optional', 'udp'] });
    t.equal(media.stats!('a').srtp, undefined, 'before the answer: not keyed yet');
    body(media.offer('a', phone('RTP/SAVP', [PEER_KEY_32, PEER_KEY])));
    body(media.answer('b', phone('RTP/AVP', [])));
    t.same(media.stats!('a').srtp, { suite: 'AES_CM_128_HMAC_SHA1_32', authFailed: 0, replayed: 0, other: 0 }, 'keyed, nothing refused yet: the suite the caller offered first');
    relay.drops.a = { authFailed: 4, replayed: 2, invalid: 1, protectFailed: 3 };
    t.same(media.stats!('a').srtp, { suite: 'AES_CM_128_HMAC_SHA1_32', authFailed: 4, replayed: 2, other: 4 }, 'malformed and unprotectable count as other');
    t.equal(media.stats!('b').srtp, undefined, 'the plain leg has no srtp');
  });

  await t.test('the echo target answers SRTP itself', async (t) => {
    const { media, relay } = await session({ a: ['optional', 'tls'], b: ['optional', 'tls'] });
    const answer = parseSdp(body(media.answerLocally('a', phone('RTP/AVP', [PEER_KEY]))));
    t.equal(answer.audio.protocol, 'RTP/AVP', 'RTP/AVP kept (RFC 3264 §6)');
    t.equal(answer.audio.crypto.length, 1, 'with our a=crypto');
    t.ok(relay.keys.a !== undefined, 'leg a keyed at once');
  });
});

t.test('traces: SDES keys blanked at the same length; lifetime and MKI kept', async (t) => {
  const msg = Buffer.from(
    'INVITE sip:1@h SIP/2.0\r\nContent-Length: 120\r\n\r\nv=0\r\nm=audio 4000 RTP/SAVP 0\r\n' +
      'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4\r\n' +
      'a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n',
    'latin1',
  );
  const out = redactSdesKeyBytes(msg);
  t.equal(out.length, msg.length, 'same length (Content-Length and pcap lengths stay true)');
  const text = out.toString('latin1');
  t.notMatch(text, /PS1uQCVee|NzB4d1BI/, 'no key left');
  t.match(text, /inline:x{40}\|2\^20\|1:4\r\n/, 'lifetime and MKI kept');
  t.match(text, /INLINE:x{40}\r\n/, 'any letter case');
  const plain = Buffer.from('OPTIONS sip:h SIP/2.0\r\n\r\n');
  t.equal(redactSdesKeyBytes(plain), plain, 'nothing to redact: the same buffer');

  const hub = new TraceHub();
  const seen: Buffer[] = [];
  hub.subscribe((e) => seen.push(e.bytes));
  hub.publish({ direction: 'in', transport: 'tls', local: { transport: 'tls', address: '127.0.0.1', port: 5061 }, remote: { transport: 'tls', address: '127.0.0.1', port: 40000 }, bytes: msg, time: 0 });
  t.notMatch(seen[0]!.toString('latin1'), /PS1uQCVee/, 'the trace hub hands subscribers no key');
});

function parseOk(value: string) {
  const r = parseSdesCrypto(value);
  if (!r.ok) throw new Error(r.reason);
  return r.crypto;
}
