import t from 'tap';
import { statusReport, type StatusInputs } from '../../src/app/status-report.ts';

const NOW = 1_700_000_000_000;

const base: StatusInputs = {
  version: '1.2.3',
  domain: 'home.test',
  startedAt: NOW - 3_725_000,
  listening: [
    { transport: 'udp', address: '0.0.0.0', port: 5060 },
    { transport: 'tcp', address: '0.0.0.0', port: 5060, family: 4 },
  ],
  localAddresses: ['192.168.1.20'],
  trunks: [],
  registrations: [],
  bindings: [],
  calls: [],
};

t.test('gateway, sockets and uptime', async (t) => {
  const r = statusReport(base, NOW);
  t.equal(r.version, '1.2.3');
  t.equal(r.domain, 'home.test');
  t.equal(r.uptime, 3725, 'uptime in whole seconds');
  t.same(r.listening, [
    { transport: 'udp', address: '0.0.0.0', port: 5060 },
    { transport: 'tcp', address: '0.0.0.0', port: 5060 },
  ]);
  t.same(r.peers, { discovery: false, count: 0, names: [] }, 'discovery off');
  t.equal(r.device, undefined, 'no device given, none reported');
});

t.test('public address: the configured one wins over STUN; a STUN failure is kept', async (t) => {
  const cases: { name: string; inputs: Partial<StatusInputs>; want: object }[] = [
    { name: 'neither', inputs: {}, want: { local: ['192.168.1.20'] } },
    { name: 'configured', inputs: { configuredPublicAddress: '203.0.113.5' }, want: { local: ['192.168.1.20'], public: '203.0.113.5', publicSource: 'config' } },
    {
      name: 'learned with STUN',
      inputs: { stun: { server: 'stun.test:3478', address: '198.51.100.9' } },
      want: { local: ['192.168.1.20'], public: '198.51.100.9', publicSource: 'stun', stunServer: 'stun.test:3478' },
    },
    {
      name: 'STUN failed',
      inputs: { stun: { server: 'stun.test:3478', error: 'no answer' } },
      want: { local: ['192.168.1.20'], stunServer: 'stun.test:3478', stunError: 'no answer' },
    },
  ];
  for (const c of cases) t.same(statusReport({ ...base, ...c.inputs }, NOW).addresses, c.want, c.name);
});

t.test('trunks: state, last error, expiry and next retry relative to now', async (t) => {
  const trunk = (name: string, register = true) => ({ name, host: 'sip.example.net', port: 5060, transport: 'udp' as const, username: 'u-' + name, register });
  const r = statusReport(
    {
      ...base,
      trunks: [trunk('up'), trunk('down'), trunk('off', false), trunk('resolving'), { ...trunk('v6'), host: '2001:db8::1', transport: 'tls', port: 5061 }],
      registrations: [
        { trunk: 'down', state: 'failed', lastError: '403 Forbidden: credentials refused', nextRetryAt: NOW + 27_400 },
        { trunk: 'up', state: 'registered', expiresAt: NOW + 3_599_600 },
        { trunk: 'v6', state: 'registering', lastError: 'timeout' },
      ],
    },
    NOW,
  );
  t.same(r.trunks, [
    { name: 'up', server: 'udp sip.example.net:5060', username: 'u-up', state: 'registered', expiresIn: 3600 },
    { name: 'down', server: 'udp sip.example.net:5060', username: 'u-down', state: 'failed', lastError: '403 Forbidden: credentials refused', nextRetryIn: 27 },
    { name: 'off', server: 'udp sip.example.net:5060', username: 'u-off', state: 'off' },
    { name: 'resolving', server: 'udp sip.example.net:5060', username: 'u-resolving', state: 'registering' },
    { name: 'v6', server: 'tls [2001:db8::1]:5061', username: 'u-v6', state: 'registering', lastError: 'timeout' },
  ]);
});

t.test('extensions: one row per binding, sorted by number, with contact, User-Agent, expiry and source', async (t) => {
  const r = statusReport(
    {
      ...base,
      bindings: [
        { aor: 'sip:110@home.test', contact: 'sip:110@192.168.1.50:5062', expiresAt: NOW + 1_000, callId: 'c3', cseq: 1 },
        {
          aor: 'sip:102@home.test',
          contact: 'sip:102@192.168.1.31:5060;transport=tcp',
          expiresAt: NOW + 299_700,
          callId: 'c1',
          cseq: 4,
          userAgent: 'Yealink SIP-T46S',
          source: { transport: 'tcp', address: '192.168.1.31', port: 40112 },
        },
        { aor: 'sip:101@home.test', contact: 'sip:101@[fd00::7]:5060', expiresAt: NOW + 60_000, callId: 'c2', cseq: 1, source: { transport: 'udp', address: 'fd00::7', port: 5060 } },
      ],
    },
    NOW,
  );
  t.same(r.extensions, [
    { extension: '101', aor: 'sip:101@home.test', contact: 'sip:101@[fd00::7]:5060', expiresIn: 60, source: 'udp [fd00::7]:5060' },
    {
      extension: '102',
      aor: 'sip:102@home.test',
      contact: 'sip:102@192.168.1.31:5060;transport=tcp',
      expiresIn: 300,
      userAgent: 'Yealink SIP-T46S',
      source: 'tcp 192.168.1.31:40112',
    },
    { extension: '110', aor: 'sip:110@home.test', contact: 'sip:110@192.168.1.50:5062', expiresIn: 1 },
  ]);
});

t.test('calls: duration and legs, figures rounded to a tenth', async (t) => {
  const r = statusReport(
    {
      ...base,
      calls: [
        {
          id: 'k1',
          from: '101',
          to: '0301234',
          state: 'connected',
          startedAt: NOW - 42_400,
          legs: [
            { slot: 'a', party: '101', peer: 'udp 192.168.1.30:5060', media: { codec: 'PCMU/8000', packetsIn: 2100, packetsOut: 2098, lossPercent: 0.390625, lost: 3, jitterMs: 1.2345, rttMs: 0.04 } },
            { slot: 'b', party: '0301234', peer: 'udp 203.0.113.1:5060', media: { codec: 'PCMA/8000', packetsIn: 2099, packetsOut: 2100 } },
          ],
        },
        { id: 'k2', from: '102', to: '100', state: 'calling', startedAt: NOW - 3_000, legs: [{ slot: 'a', party: '102', peer: 'udp 192.168.1.31:5060' }] },
      ],
    },
    NOW,
  );
  t.same(r.calls, [
    {
      id: 'k1',
      from: '101',
      to: '0301234',
      state: 'connected',
      duration: 42,
      legs: [
        { slot: 'a', party: '101', peer: 'udp 192.168.1.30:5060', media: { codec: 'PCMU/8000', packetsIn: 2100, packetsOut: 2098, lossPercent: 0.4, lost: 3, jitterMs: 1.2, rttMs: 0 } },
        { slot: 'b', party: '0301234', peer: 'udp 203.0.113.1:5060', media: { codec: 'PCMA/8000', packetsIn: 2099, packetsOut: 2100 } },
      ],
    },
    { id: 'k2', from: '102', to: '100', state: 'calling', duration: 3, legs: [{ slot: 'a', party: '102', peer: 'udp 192.168.1.31:5060' }] },
  ]);
});

t.test('device: endpoint state with the phone machine; hook from the handset state', async (t) => {
  const cases: { name: string; inputs: Pick<StatusInputs, 'device' | 'phone'>; want: object }[] = [
    {
      name: 'no board',
      inputs: { device: { extension: '100', state: 'idle', digits: '' } },
      want: { extension: '100', state: 'idle', ringing: false },
    },
    {
      name: 'handset ringing, on hook',
      inputs: { device: { extension: '100', state: 'ringing' }, phone: { board: 'pi-ag1171-handset', mode: 'handset', state: 'ringing' } },
      want: { extension: '100', state: 'ringing', ringing: true, board: 'pi-ag1171-handset', mode: 'handset', phone: 'ringing', hook: 'on' },
    },
    {
      name: 'handset lifted for dial tone',
      inputs: { device: { extension: '100', state: 'idle' }, phone: { board: 'pi-ag1171-handset', mode: 'handset', state: 'dialTone' } },
      want: { ringing: false, hook: 'off', phone: 'dialTone' },
    },
    {
      name: 'connected call with digits',
      inputs: {
        device: { extension: '100', state: 'connected', call: 'k9', remote: '101', seconds: 12, digits: '4:rfc4733:120', others: 'k8 held 102 40s' },
        phone: { board: 'pi-ag1171-handset', mode: 'handset', state: 'connected' },
      },
      want: { state: 'connected', call: 'k9', remote: '101', seconds: 12, digits: '4:rfc4733:120', others: 'k8 held 102 40s', hook: 'off', ringing: false },
    },
    {
      name: 'intercom with the relay pulsed: no hook',
      inputs: { device: { extension: '100', state: 'connected' }, phone: { board: 'pi-doorbell', mode: 'intercom', state: 'connected', relayOn: true } },
      want: { mode: 'intercom', relay: 'on', ringing: false },
    },
  ];
  for (const c of cases) {
    const d = statusReport({ ...base, ...c.inputs }, NOW).device;
    t.match(d, c.want, c.name);
    if (c.inputs.phone?.mode !== 'handset') t.equal(d?.hook, undefined, `${c.name}: no hook`);
    if (c.inputs.device?.digits === '') t.notOk(d && 'digits' in d, `${c.name}: empty digits left out`);
  }
});

t.test('peers: count and names when discovery runs', async (t) => {
  const r = statusReport(
    {
      ...base,
      peers: [
        { name: 'hookswitch on kitchen', isHookswitch: true },
        { name: 'Office phone', isHookswitch: false },
      ],
      discovery: { name: 'hookswitch on hall', error: 'EADDRINUSE' },
    },
    NOW,
  );
  t.same(r.peers, { discovery: true, name: 'hookswitch on hall', error: 'EADDRINUSE', count: 2, names: ['hookswitch on kitchen', 'Office phone'] });
});

t.test('calls: an SRTP leg keeps its suite and refusals; a plain leg has none', async (t) => {
  const srtp = { suite: 'AES_CM_128_HMAC_SHA1_80', authFailed: 3, replayed: 1, other: 0 };
  const inputs: StatusInputs = {
    ...base,
    calls: [
      {
        id: 'k3',
        from: '101',
        to: '102',
        state: 'connected',
        startedAt: NOW - 10_000,
        legs: [
          { slot: 'a', party: '101', peer: 'tls 192.168.1.30:5061', media: { codec: 'PCMU/8000', packetsIn: 500, packetsOut: 499, jitterMs: 2.345, srtp } },
          { slot: 'b', party: '102', peer: 'udp 192.168.1.31:5060', media: { codec: 'PCMU/8000', packetsIn: 499, packetsOut: 500 } },
        ],
      },
    ],
  };
  const r = statusReport(inputs, NOW);
  const [a, b] = r.calls[0]!.legs;
  t.same(a!.media, { codec: 'PCMU/8000', packetsIn: 500, packetsOut: 499, jitterMs: 2.3, srtp }, 'suite and refusals by kind, as the media said');
  t.not(a!.media!.srtp, srtp, 'a copy: the report does not share the media\'s object');
  t.equal(b!.media!.srtp, undefined, 'plain RTP: no srtp');
  t.same(JSON.parse(JSON.stringify(r)).calls[0].legs[0].media.srtp, srtp, 'survives JSON');
});

t.test('the report survives JSON (the control socket carries it as JSON)', async (t) => {
  const r = statusReport({ ...base, device: { extension: '100', state: 'idle' } }, NOW);
  t.same(JSON.parse(JSON.stringify(r)), r);
});

t.test('presence subscriptions: who watches which extension, sorted by resource, event and subscriber', async (t) => {
  t.same(statusReport(base, NOW).subscriptions, [], 'none given: an empty list');
  const summary = (subscriber: string, resource: string, event: 'dialog' | 'presence', expiresIn: number) => ({ subscriber, resource, event, expiresIn, notifications: 3 });
  const r = statusReport(
    {
      ...base,
      subscriptions: [summary('101', '110', 'dialog', 600), summary('102', '20', 'presence', 30), summary('101', '20', 'presence', 1), summary('103', '20', 'dialog', 0)],
    },
    NOW,
  );
  t.same(
    r.subscriptions,
    [
      { subscriber: '103', resource: '20', event: 'dialog', expiresIn: 0 },
      { subscriber: '101', resource: '20', event: 'presence', expiresIn: 1 },
      { subscriber: '102', resource: '20', event: 'presence', expiresIn: 30 },
      { subscriber: '101', resource: '110', event: 'dialog', expiresIn: 600 },
    ],
    'numeric order of extensions (20 before 110); the NOTIFY count is not shown',
  );
});
