import t from 'tap';
import type { StatusReport } from '../../src/app/status-report.ts';
import { formatDuration, formatStatus, renderTable } from '../../src/cli/status-format.ts';

const report: StatusReport = {
  version: '1.2.3',
  domain: 'home.test',
  uptime: 3725,
  listening: [
    { transport: 'udp', address: '0.0.0.0', port: 5060 },
    { transport: 'tcp', address: '::', port: 5060 },
  ],
  addresses: { local: ['192.168.1.20', 'fd00::20'], public: '198.51.100.9', publicSource: 'stun', stunServer: 'stun.test:3478' },
  trunks: [
    { name: 'carrier', server: 'udp sip.example.net:5060', username: '4930123', state: 'registered', expiresIn: 3540 },
    { name: 'backup', server: 'tls sip2.example.net:5061', username: 'gw', state: 'failed', lastError: '408 Request Timeout', nextRetryIn: 27 },
  ],
  extensions: [
    {
      extension: '101',
      aor: 'sip:101@home.test',
      contact: 'sip:101-0x55aa10@192.168.1.30:5060;transport=udp;rinstance=7f3a9c0d1e2b4a5c',
      userAgent: 'Grandstream HT802 1.0.43.11 (a very long build string that goes on)',
      expiresIn: 287,
      source: 'udp 192.168.1.30:5060',
    },
    { extension: '102', aor: 'sip:102@home.test', contact: 'sip:102@192.168.1.31:5062', expiresIn: 59 },
  ],
  subscriptions: [
    { subscriber: '102', resource: '100', event: 'dialog', expiresIn: 3540 },
    { subscriber: '101', resource: '102', event: 'presence', expiresIn: 45 },
  ],
  calls: [
    {
      id: 'k1',
      from: '101',
      to: '0301234',
      state: 'connected',
      duration: 125,
      legs: [
        { slot: 'a', party: '101', peer: 'udp 192.168.1.30:5060', media: { codec: 'PCMU/8000', packetsIn: 6250, packetsOut: 6249, lossPercent: 0.4, lost: 3, jitterMs: 1.2, rttMs: 0.3, srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', authFailed: 2, replayed: 1, other: 0 } } },
        { slot: 'b', party: '0301234', peer: 'udp 203.0.113.1:5060', media: { codec: 'PCMU/8000', packetsIn: 6249, packetsOut: 6250 } },
      ],
    },
  ],
  device: { extension: '100', state: 'idle', board: 'pi-ag1171-handset', mode: 'handset', phone: 'idle', hook: 'on', ringing: false, digits: '4:rfc4733:120' },
  peers: { discovery: true, name: 'hookswitch on hall', count: 1, names: ['hookswitch on kitchen'] },
};

t.test('the sections of a busy gateway, aligned, long cells cut to fit 100 columns', async (t) => {
  const text = formatStatus(report);
  t.equal(
    text,
    `${[
      'hookswitch 1.2.3  domain home.test  up 1h 02m',
      '',
      'Listening',
      '  TRANSPORT  ADDRESS',
      '  udp        0.0.0.0:5060',
      '  tcp        [::]:5060',
      '',
      'Addresses',
      'local: 192.168.1.20, fd00::20',
      'public: 198.51.100.9 (STUN stun.test:3478)',
      '',
      'Trunks (2)',
      '  NAME     SERVER                     USER     STATE       DETAIL',
      '  carrier  udp sip.example.net:5060   4930123  registered  expires in 59m 00s',
      '  backup   tls sip2.example.net:5061  gw       failed      408 Request Timeout; retry in 27s',
      '',
      'Extensions (2 registered)',
      '  EXT  CONTACT                                           USER AGENT        EXPIRES  FROM',
      '  101  sip:101-0x55aa10@192.168.1.30:5060;transport=ud…  Grandstream HT8…   4m 47s  udp 192.168.1.3…',
      '  102  sip:102@192.168.1.31:5062                         -                     59s  -',
      '',
      'Subscriptions (2)',
      '  SUBSCRIBER  RESOURCE  EVENT     EXPIRES',
      '  102         100       dialog    59m 00s',
      '  101         102       presence      45s',
      '',
      'Calls (1)',
      '  k1  101 -> 0301234  connected  2m 05s',
      '    LEG  PARTY    PEER                   CODEC      SEC   PKTS IN  PKTS OUT  LOSS  JITTER     RTT',
      '    a    101      udp 192.168.1.30:5060  PCMU/8000  srtp     6250      6249  0.4%  1.2 ms  0.3 ms',
      '    b    0301234  udp 203.0.113.1:5060   PCMU/8000  -        6249      6250     -       -       -',
      '    a: SRTP AES_CM_128_HMAC_SHA1_80 dropped 3 (2 auth failed, 1 replayed)',
      '',
      'Device',
      'device: idle',
      'extension: 100',
      'board: pi-ag1171-handset (handset), idle',
      'hook: on hook',
      'ringing: no',
      'digits: 4:rfc4733:120',
      '',
      'LAN peers (1)',
      '  advertised as "hookswitch on hall"',
      '  hookswitch on kitchen',
    ].join('\n')}\n`,
  );
  t.same(text.split('\n').filter((l) => l.length > 100), [], 'no line is wider than 100 columns');
  t.notOk(text.includes('\x1b['), 'no colours unless asked for');
});

t.test('a narrower width cuts the shrinkable columns further, never the numbers', async (t) => {
  const text = formatStatus(report, { width: 80 });
  t.same(text.split('\n').filter((l) => l.length > 80), [], 'no line is wider than 80 columns');
  t.match(text, /^ {4}a +101 +udp 1\S*… +PCMU\/8000 +srtp +6250 +6249 +0\.4% +1\.2 ms +0\.3 ms$/m, 'the leg keeps its figures whole');
  t.match(text, /^ {2}101 +sip:101-0x55aa10@\S*… +Grandstream\S*( \S*)?… +4m 47s +udp \S+$/m, 'the binding keeps its expiry whole');
});

t.test('SRTP per leg: SEC column, and a line for a leg whose SRTP refused datagrams', async (t) => {
  const srtp = (authFailed: number, replayed: number, other: number) => ({ suite: 'AES_CM_128_HMAC_SHA1_32', authFailed, replayed, other });
  const cases: [string, StatusReport['calls'][number]['legs'][number], string, string | undefined][] = [
    ['plain RTP', { slot: 'a', party: '101', peer: 'udp 192.0.2.7:5060', media: { codec: 'PCMA/8000', packetsIn: 5, packetsOut: 4 } }, '-', undefined],
    ['SRTP without refusals', { slot: 'a', party: '101', peer: 'tls 192.0.2.7:5061', media: { codec: 'PCMA/8000', packetsIn: 5, packetsOut: 4, srtp: srtp(0, 0, 0) } }, 'srtp', undefined],
    ['SRTP, only other refusals', { slot: 'b', party: '102', peer: 'tls 192.0.2.8:5061', media: { codec: 'G722/8000', packetsIn: 5, packetsOut: 4, srtp: srtp(0, 0, 4) } }, 'srtp', '    b: SRTP AES_CM_128_HMAC_SHA1_32 dropped 4 (4 other)'],
    ['SRTP, every kind', { slot: 'a', party: '101', peer: 'tls 192.0.2.7:5061', media: { codec: 'PCMU/8000', packetsIn: 5, packetsOut: 4, srtp: srtp(7, 2, 1) } }, 'srtp', '    a: SRTP AES_CM_128_HMAC_SHA1_32 dropped 10 (7 auth failed, 2 replayed, 1 other)'],
    ['no media of its own (the device)', { slot: 'b', party: '100' }, '-', undefined],
  ];
  for (const [name, leg, sec, dropLine] of cases) {
    const text = formatStatus({ ...report, calls: [{ id: 'k9', from: '101', to: '102', state: 'connected', duration: 3, legs: [leg] }] });
    const lines = text.split('\n');
    const head = lines.findIndex((l) => l.startsWith('    LEG '));
    const column = lines[head]!.indexOf('SEC');
    t.equal(lines[head + 1]!.slice(column).split(' ')[0], sec, `${name}: SEC reads ${sec}`);
    t.equal(lines[head + 2]!.startsWith('    ') ? lines[head + 2] : undefined, dropLine, `${name}: ${dropLine === undefined ? 'no' : 'a'} drop line`);
  }
});

t.test('colours: bold headings, states by meaning, alignment unchanged', async (t) => {
  const plain = formatStatus(report);
  const colour = formatStatus(report, { color: true });
  t.match(colour, /^\x1b\[1mTrunks \(2\)\x1b\[0m$/m, 'bold heading');
  t.match(colour, /\x1b\[32mregistered\x1b\[0m/, 'registered in green');
  t.match(colour, /\x1b\[31mfailed {4}\x1b\[0m/, 'failed in red, padded inside the colour');
  t.match(colour, /\x1b\[32mconnected\x1b\[0m/, 'the connected call in green');
  t.equal(colour.replace(/\x1b\[\d+m/g, ''), plain, 'without the escapes it is the plain text');
});

t.test('an idle gateway says so in each section', async (t) => {
  const text = formatStatus({
    version: '1.2.3',
    domain: 'home.test',
    uptime: 4,
    listening: [],
    addresses: { local: [], stunServer: 'stun.test:3478', stunError: 'timed out' },
    trunks: [{ name: 'spare', server: 'udp 192.0.2.1:5060', username: 'x', state: 'off' }],
    extensions: [],
    subscriptions: [],
    calls: [],
    peers: { discovery: false, count: 0, names: [] },
  });
  t.equal(
    text,
    `${[
      'hookswitch 1.2.3  domain home.test  up 4s',
      '',
      'Listening',
      '  (no sockets open)',
      '',
      'Addresses',
      'local: (loopback only)',
      'public: unknown (STUN stun.test:3478 failed: timed out)',
      '',
      'Trunks (1)',
      '  NAME   SERVER              USER  STATE  DETAIL',
      '  spare  udp 192.0.2.1:5060  x     off    register: false',
      '',
      'Extensions (0 registered)',
      '  (no phone registered)',
      '',
      'Subscriptions (0)',
      '  (no presence subscriptions)',
      '',
      'Calls (0)',
      '  (no calls)',
      '',
      'LAN peers (0)',
      '  discovery is off (discovery.enabled, or SIP bound to loopback)',
    ].join('\n')}\n`,
  );
});

t.test('durations read as a person says them', async (t) => {
  const cases: [number, string][] = [
    [0, '0s'],
    [59.4, '59s'],
    [60, '1m 00s'],
    [3599, '59m 59s'],
    [3600, '1h 00m'],
    [86_399, '23h 59m'],
    [90_061, '1d 01h'],
    [-5, '0s'],
  ];
  for (const [seconds, want] of cases) t.equal(formatDuration(seconds), want, `${seconds} s`);
});

t.test('tables: right-aligned numbers, a cell cut with an ellipsis, no trailing spaces', async (t) => {
  const lines = renderTable(
    [{ title: 'NAME', shrink: 1 }, { title: 'N', right: true }, { title: 'NOTE' }],
    [
      ['a-rather-long-name-indeed', '7', ''],
      ['b', '1234', 'ok'],
    ],
    { indent: 1, width: 30, paint: (s) => s },
  );
  t.same(lines, [' NAME                  N  NOTE', ' a-rather-long-na…     7', ' b                  1234  ok'], 'exactly 30 columns wide');
});
