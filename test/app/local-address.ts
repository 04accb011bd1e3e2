import t from 'tap';
import { LocalAddresses, inSubnet, type InterfaceAddress } from '../../src/app/local-address.ts';
import { ManualClock } from '../../src/runtime/clock.ts';

const table: InterfaceAddress[] = [
  { address: '127.0.0.1', family: 'IPv4', internal: true, cidr: '127.0.0.1/8' },
  { address: '192.168.1.20', family: 'IPv4', internal: false, cidr: '192.168.1.20/24' },
  { address: '10.8.0.2', family: 'IPv4', internal: false, cidr: '10.8.0.2/16' },
  { address: '::1', family: 'IPv6', internal: true, cidr: '::1/128' },
  { address: 'fe80::1', family: 'IPv6', internal: false, cidr: 'fe80::1/64' },
  { address: '2001:db8::20', family: 'IPv6', internal: false, cidr: '2001:db8::20/64' },
];

t.test('the address facing a peer on a wildcard bind', async (t) => {
  const local = new LocalAddresses('0.0.0.0', new ManualClock(), () => table);
  const cases: [string, string][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.5', '127.0.0.1'],
    ['192.168.1.77', '192.168.1.20'],
    ['10.8.200.1', '10.8.0.2'],
    ['203.0.113.9', '192.168.1.20'],
    ['::1', '::1'],
    ['2001:db8::99', '2001:db8::20'],
    ['2001:db9::1', '2001:db8::20'],
    ['::ffff:10.8.1.1', '10.8.0.2'],
  ];
  for (const [remote, want] of cases) t.equal(local.facing(remote), want, remote);
});

t.test('a specific bind address is always the answer', async (t) => {
  const local = new LocalAddresses('192.168.1.20', new ManualClock(), () => table);
  t.equal(local.facing('10.8.0.9'), '192.168.1.20');
});

t.test('the interface table is cached and re-read after a while', async (t) => {
  const clock = new ManualClock();
  let reads = 0;
  const local = new LocalAddresses('0.0.0.0', clock, () => {
    reads++;
    return table;
  });
  local.facing('192.168.1.5');
  local.facing('192.168.1.6');
  t.equal(reads, 1);
  clock.advance(10_000);
  local.facing('192.168.1.7');
  t.equal(reads, 2);
  t.equal(local.fingerprint(), '10.8.0.2,192.168.1.20,2001:db8::20,fe80::1');
});

t.test('subnet membership', async (t) => {
  const cases: [string, string, boolean][] = [
    ['192.168.1.5', '192.168.1.0/24', true],
    ['192.168.2.5', '192.168.1.0/24', false],
    ['172.31.255.255', '172.16.0.0/12', true],
    ['172.32.0.1', '172.16.0.0/12', false],
    ['2001:db8::1', '2001:db8::/32', true],
    ['2001:db9::1', '2001:db8::/32', false],
    ['10.0.0.1', '2001:db8::/32', false],
    ['::ffff:192.168.1.5', '192.168.1.0/24', true],
  ];
  for (const [a, cidr, want] of cases) t.equal(inSubnet(a, cidr), want, `${a} in ${cidr}`);
});
