import t from 'tap';
import { callEndSummary, callSummaryFields, type CallEndFacts } from '../../src/calls/call-summary.ts';

const base: CallEndFacts = {
  id: 'c1',
  from: '101',
  to: '102',
  target: 'extension',
  reason: 'BYE from leg a',
  cancelled: false,
  startedAt: 1_000_000,
  answeredAt: 1_004_000,
  endedAt: 1_034_400,
  media: {},
};

t.test('the call summary line: parties, durations, codec, worse loss and jitter, per-slot figures', async (t) => {
  const cases: [string, CallEndFacts, Record<string, unknown>][] = [
    [
      'answered relayed call with RTCP figures on both slots',
      {
        ...base,
        media: {
          a: { codec: 'PCMU/8000', packetsIn: 1520, packetsOut: 1518, lost: 2, lossPercent: 0.1316, jitterMs: 3.26, rttMs: 1.04 },
          b: { codec: 'PCMU/8000', packetsIn: 1519, packetsOut: 1520, lost: 0, lossPercent: 0, jitterMs: 7.81 },
        },
      },
      {
        call: 'c1', from: '101', to: '102', target: 'extension', reason: 'BYE from leg a', answered: true, seconds: 34, talkSeconds: 30,
        codec: 'PCMU/8000', lossPercent: 0.13, jitterMs: 7.8,
        aCodec: 'PCMU/8000', aPacketsIn: 1520, aPacketsOut: 1518, aLost: 2, aLossPercent: 0.13, aJitterMs: 3.3, aRttMs: 1,
        bCodec: 'PCMU/8000', bPacketsIn: 1519, bPacketsOut: 1520, bLost: 0, bLossPercent: 0, bJitterMs: 7.8,
      },
    ],
    [
      'transcoded call: both codecs; no RTCP yet, so no loss or jitter',
      { ...base, media: { a: { codec: 'G722/8000', packetsIn: 10, packetsOut: 9 }, b: { codec: 'PCMU/8000', packetsIn: 9, packetsOut: 10 } } },
      {
        call: 'c1', from: '101', to: '102', target: 'extension', reason: 'BYE from leg a', answered: true, seconds: 34, talkSeconds: 30,
        codec: 'G722/8000,PCMU/8000', aCodec: 'G722/8000', aPacketsIn: 10, aPacketsOut: 9, bCodec: 'PCMU/8000', bPacketsIn: 9, bPacketsOut: 10,
      },
    ],
    [
      'SRTP on one slot: its suite and the datagrams SRTP refused; the plain slot has neither',
      {
        ...base,
        media: {
          a: { codec: 'PCMA/8000', packetsIn: 40, packetsOut: 41, srtp: { suite: 'AES_CM_128_HMAC_SHA1_32', authFailed: 2, replayed: 1, other: 3 } },
          b: { codec: 'PCMA/8000', packetsIn: 41, packetsOut: 40 },
        },
      },
      {
        call: 'c1', from: '101', to: '102', target: 'extension', reason: 'BYE from leg a', answered: true, seconds: 34, talkSeconds: 30,
        codec: 'PCMA/8000', aCodec: 'PCMA/8000', aPacketsIn: 40, aPacketsOut: 41, aSrtp: 'AES_CM_128_HMAC_SHA1_32', aSrtpDropped: 6,
        bCodec: 'PCMA/8000', bPacketsIn: 41, bPacketsOut: 40,
      },
    ],
    [
      'rejected before an answer: the status, no talk time, no media',
      { ...base, reason: 'rejected 480', status: 480, answeredAt: undefined as unknown as number, endedAt: 1_002_000 } as CallEndFacts,
      { call: 'c1', from: '101', to: '102', target: 'extension', reason: 'rejected 480', status: 480, answered: false, seconds: 2, talkSeconds: 0 },
    ],
  ];
  for (const [name, facts, expected] of cases) {
    const f = { ...facts };
    if (f.answeredAt === undefined) delete f.answeredAt;
    t.same(callSummaryFields(f), expected, name);
  }
});

t.test('the observer record matches the line', async (t) => {
  const { answeredAt: _a, ...unanswered } = base;
  t.same(callEndSummary({ ...unanswered, cancelled: true }), { target: 'extension', answered: false, cancelled: true, seconds: 34, talkSeconds: 0, media: {} });
  t.same(callEndSummary(base), { target: 'extension', answered: true, cancelled: false, seconds: 34, talkSeconds: 30, media: {} });
});
