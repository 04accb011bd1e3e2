import t from 'tap';
import { escapeHelp, escapeLabelValue, formatValue, MetricsRegistry, renderExposition } from '../../src/ops/metrics.ts';
import { countingGuard, countingRegistrar, GatewayMetrics, type GatewayMetricSources } from '../../src/ops/gateway-metrics.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message/message.ts';

t.test('label values escape backslash, double quote and line feed; HELP escapes backslash and line feed only', async (t) => {
  const cases: [string, string, string, string][] = [
    ['plain', 'alice', 'alice', 'alice'],
    ['backslash', 'a\\b', 'a\\\\b', 'a\\\\b'],
    ['double quote', 'say "hi"', 'say \\"hi\\"', 'say "hi"'],
    ['line feed', 'one\ntwo', 'one\\ntwo', 'one\\ntwo'],
    ['all three', '\\"\n', '\\\\\\"\\n', '\\\\"\\n'],
    ['UTF-8 passes', 'Küche', 'Küche', 'Küche'],
  ];
  for (const [name, input, label, help] of cases) {
    t.equal(escapeLabelValue(input), label, `${name}: label value`);
    t.equal(escapeHelp(input), help, `${name}: help`);
  }
});

t.test('values: integers, floats, infinities and NaN as the format writes them', async (t) => {
  const cases: [number, string][] = [
    [0, '0'],
    [42, '42'],
    [0.0125, '0.0125'],
    [-3, '-3'],
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
    [NaN, 'NaN'],
  ];
  for (const [v, text] of cases) t.equal(formatValue(v), text, text);
});

t.test('the renderer writes HELP, TYPE and samples, every line ending in a line feed', async (t) => {
  const text = renderExposition([
    { name: 'x_calls_total', help: 'Calls.', type: 'counter', samples: [{ value: 3 }] },
    {
      name: 'x_trunk_state',
      help: 'State of "each" trunk\\nothing else',
      type: 'gauge',
      samples: [
        { labels: { trunk: 'sip"gate', state: 'registered' }, value: 1 },
        { labels: { trunk: 'a\\b\nc', state: 'failed' }, value: 0 },
      ],
    },
    { name: 'x_empty', help: 'No samples yet.', type: 'gauge', samples: [] },
    { name: 'x_jitter_seconds', help: 'Jitter.', type: 'summary', samples: [{ suffix: '_sum', value: 0.03 }, { suffix: '_count', value: 2 }] },
  ]);
  t.equal(
    text,
    [
      '# HELP x_calls_total Calls.',
      '# TYPE x_calls_total counter',
      'x_calls_total 3',
      '# HELP x_trunk_state State of "each" trunk\\\\nothing else',
      '# TYPE x_trunk_state gauge',
      'x_trunk_state{trunk="sip\\"gate",state="registered"} 1',
      'x_trunk_state{trunk="a\\\\b\\nc",state="failed"} 0',
      '# HELP x_empty No samples yet.',
      '# TYPE x_empty gauge',
      '# HELP x_jitter_seconds Jitter.',
      '# TYPE x_jitter_seconds summary',
      'x_jitter_seconds_sum 0.03',
      'x_jitter_seconds_count 2',
      '',
    ].join('\n'),
  );
  t.equal(renderExposition([]), '', 'nothing registered: empty body');
});

t.test('the registry: counters and gauges by label set, collected families, order kept', async (t) => {
  const r = new MetricsRegistry();
  const calls = r.counter('x_calls_total', 'Calls.', ['target']);
  const active = r.gauge('x_active', 'Active.');
  let read = 7;
  r.collect('x_read_total', 'Read at scrape time.', 'counter', () => [{ value: read }]);
  r.collect('x_broken', 'Its reader throws.', 'gauge', () => {
    throw new Error('gone');
  });
  calls.inc({ target: 'trunk' });
  calls.inc({ target: 'extension' }, 2);
  calls.inc({ target: 'trunk' });
  active.inc();
  active.inc();
  active.dec();
  read = 9;
  t.equal(calls.get({ target: 'trunk' }), 2);
  t.equal(calls.get({ target: 'echo' }), 0, 'an untouched label set reads 0');
  t.equal(
    r.render(),
    [
      '# HELP x_calls_total Calls.',
      '# TYPE x_calls_total counter',
      'x_calls_total{target="trunk"} 2',
      'x_calls_total{target="extension"} 2',
      '# HELP x_active Active.',
      '# TYPE x_active gauge',
      'x_active 1',
      '# HELP x_read_total Read at scrape time.',
      '# TYPE x_read_total counter',
      'x_read_total 9',
      '# HELP x_broken Its reader throws.',
      '# TYPE x_broken gauge',
      '',
    ].join('\n'),
  );
});

t.test('programming errors throw: bad names, counters without _total, wrong labels, going down, duplicates', async (t) => {
  const r = new MetricsRegistry();
  const c = r.counter('x_total', 'X.', ['a']);
  const cases: [string, () => unknown, RegExp][] = [
    ['metric name with a dash', () => r.gauge('x-y', 'X.'), /invalid metric name/],
    ['metric name starting with a digit', () => r.gauge('1x', 'X.'), /invalid metric name/],
    ['reserved label name', () => r.gauge('x_g', 'X.', ['__name']), /invalid label name/],
    ['label name with a colon', () => r.gauge('x_h', 'X.', ['a:b']), /invalid label name/],
    ['counter without _total', () => r.counter('x_calls', 'X.'), /must end in _total/],
    ['collected counter without _total', () => r.collect('x_read', 'X.', 'counter', () => []), /must end in _total/],
    ['missing label', () => c.inc({}), /takes labels \[a\]/],
    ['extra label', () => c.inc({ a: '1', b: '2' }), /takes labels \[a\]/],
    ['negative increase', () => c.inc({ a: '1' }, -1), /cannot be increased/],
    ['duplicate name', () => r.gauge('x_total', 'again'), /registered twice/],
  ];
  for (const [name, fn, error] of cases) t.throws(fn, error, name);
});

function sources(over: Partial<GatewayMetricSources> = {}): GatewayMetricSources {
  return {
    sip: () => ({ received: 12, rejected: 2, droppedResponses: 1, sendErrors: 0 }),
    bindings: () => 3,
    trunks: () => [{ trunk: 'sipgate', state: 'registered' }],
    bans: () => 1,
    activeCalls: () => 0,
    audio: () => ({ xruns: 4, restarts: 1 }),
    ...over,
  };
}

/** The sample lines of a rendering, keyed by their text before the value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

t.test('gateway metrics: read sources at scrape time, count call events and end summaries', async (t) => {
  const m = new GatewayMetrics(sources(), '1.2.3');
  m.started('extension');
  m.started('trunk');
  m.started('trunk');
  m.started('extension');
  m.answered('extension');
  m.ended({
    target: 'extension',
    answered: true,
    cancelled: false,
    seconds: 12,
    talkSeconds: 10,
    media: {
      a: { codec: 'PCMU/8000', packetsIn: 500, packetsOut: 498, lost: 3, lossPercent: 0.6, jitterMs: 4 },
      b: { codec: 'PCMU/8000', packetsIn: 499, packetsOut: 500, lost: 0, lossPercent: 0, jitterMs: 12 },
    },
  });
  m.ended({ target: 'trunk', answered: false, cancelled: false, seconds: 1, talkSeconds: 0, media: {} });
  m.ended({ target: 'trunk', answered: false, cancelled: true, seconds: 3, talkSeconds: 0, media: {} });
  m.registerAnswered(200);
  m.registerAnswered(423);
  m.authFailed();
  const text = m.render();
  t.comment(text);
  const s = samples(text);
  const expected: [string, number][] = [
    ['hookswitch_build_info{version="1.2.3"}', 1],
    ['hookswitch_registrar_bindings', 3],
    ['hookswitch_register_requests_total{result="ok"}', 1],
    ['hookswitch_register_requests_total{result="failed"}', 1],
    ['hookswitch_trunk_registration_state{trunk="sipgate",state="registered"}', 1],
    ['hookswitch_trunk_registration_state{trunk="sipgate",state="failed"}', 0],
    ['hookswitch_calls_active', 0],
    ['hookswitch_calls_started_total{target="extension"}', 2],
    ['hookswitch_calls_started_total{target="trunk"}', 2],
    ['hookswitch_calls_answered_total{target="extension"}', 1],
    ['hookswitch_calls_failed_total{target="trunk"}', 1],
    ['hookswitch_rtp_packets_received_total', 999],
    ['hookswitch_rtp_packets_sent_total', 998],
    ['hookswitch_rtp_packets_lost_total', 3],
    ['hookswitch_call_jitter_seconds_sum', 0.012],
    ['hookswitch_call_jitter_seconds_count', 1],
    ['hookswitch_last_call_loss_ratio', 0.006],
    ['hookswitch_last_call_jitter_seconds', 0.012],
    ['hookswitch_sip_messages_received_total', 12],
    ['hookswitch_sip_invalid_messages_total{kind="request"}', 2],
    ['hookswitch_sip_invalid_messages_total{kind="response"}', 1],
    ['hookswitch_auth_failures_total', 1],
    ['hookswitch_sources_banned', 1],
    ['hookswitch_audio_xruns_total', 4],
    ['hookswitch_audio_device_restarts_total', 1],
  ];
  for (const [key, value] of expected) t.equal(s.get(key), value, key);
  t.notOk(s.has('hookswitch_calls_failed_total{target="extension"}'), 'an answered call is not a failure');
  t.match(text, /^# HELP hookswitch_build_info /, 'starts with a HELP line');
});

t.test('gateway metrics: SRTP refusals of ended calls, by reason, each reason shown from the start', async (t) => {
  const m = new GatewayMetrics(sources(), '1.2.3');
  const zero = samples(m.render());
  for (const reason of ['auth_failed', 'replayed', 'other']) t.equal(zero.get(`hookswitch_srtp_packets_dropped_total{reason="${reason}"}`), 0, `${reason} reads 0 before any call`);
  t.match(m.render(), /^# TYPE hookswitch_srtp_packets_dropped_total counter$/m, 'a counter');
  const srtp = (authFailed: number, replayed: number, other: number) => ({ suite: 'AES_CM_128_HMAC_SHA1_80', authFailed, replayed, other });
  m.ended({
    target: 'extension',
    answered: true,
    cancelled: false,
    seconds: 5,
    talkSeconds: 4,
    media: { a: { packetsIn: 200, packetsOut: 199, srtp: srtp(3, 1, 0) }, b: { packetsIn: 199, packetsOut: 200, srtp: srtp(2, 0, 5) } },
  });
  m.ended({ target: 'device', answered: true, cancelled: false, seconds: 2, talkSeconds: 1, media: { a: { packetsIn: 50, packetsOut: 50, srtp: srtp(0, 4, 0) } } });
  m.ended({ target: 'trunk', answered: true, cancelled: false, seconds: 2, talkSeconds: 1, media: { a: { packetsIn: 9, packetsOut: 9 } } });
  const s = samples(m.render());
  const expected: [string, number][] = [
    ['hookswitch_srtp_packets_dropped_total{reason="auth_failed"}', 5],
    ['hookswitch_srtp_packets_dropped_total{reason="replayed"}', 5],
    ['hookswitch_srtp_packets_dropped_total{reason="other"}', 5],
    ['hookswitch_rtp_packets_received_total', 458],
  ];
  for (const [key, value] of expected) t.equal(s.get(key), value, key);
});

t.test('gateway metrics: a source that is not there yet reads 0', async (t) => {
  const m = new GatewayMetrics(sources({ sip: () => undefined, audio: () => undefined, trunks: () => [] }), '0');
  const s = samples(m.render());
  t.equal(s.get('hookswitch_sip_messages_received_total'), 0);
  t.equal(s.get('hookswitch_audio_xruns_total'), 0);
  t.notOk([...s.keys()].some((k) => k.startsWith('hookswitch_trunk_registration_state')), 'no trunks, no samples');
});

t.test('the counting wrappers count and pass everything through', async (t) => {
  const m = new GatewayMetrics(sources(), '0');
  const res = (status: number) => ({ status }) as SipResponse;
  const req = {} as SipRequest;
  const answers: (SipResponse | Promise<SipResponse> | Error)[] = [res(200), Promise.resolve(res(200)), res(403), Promise.reject(new Error('disk full')), new Error('bug')];
  const registrar = countingRegistrar(
    {
      register: () => {
        const a = answers.shift()!;
        if (a instanceof Error) throw a;
        return a;
      },
    },
    m,
  );
  t.equal((registrar.register(req, 'u') as SipResponse).status, 200);
  t.equal((await registrar.register(req, 'u')).status, 200);
  t.equal((registrar.register(req, 'u') as SipResponse).status, 403);
  await t.rejects(Promise.resolve(registrar.register(req, 'u')), /disk full/);
  t.throws(() => registrar.register(req, 'u'), /bug/);
  const calls: string[] = [];
  const guard = countingGuard(
    { isAllowed: (a) => (calls.push(`allowed ${a}`), true), authFailed: (a) => calls.push(`failed ${a}`), authSucceeded: (a) => calls.push(`ok ${a}`) },
    m,
  );
  t.equal(guard.isAllowed('192.0.2.1'), true);
  guard.authFailed('192.0.2.1');
  guard.authFailed('192.0.2.1');
  guard.authSucceeded('192.0.2.1');
  t.same(calls, ['allowed 192.0.2.1', 'failed 192.0.2.1', 'failed 192.0.2.1', 'ok 192.0.2.1']);
  const s = samples(m.render());
  t.equal(s.get('hookswitch_register_requests_total{result="ok"}'), 2);
  t.equal(s.get('hookswitch_register_requests_total{result="failed"}'), 3, '403, a rejected write and a throw');
  t.equal(s.get('hookswitch_auth_failures_total'), 2);
});
