/**
 * IP address text (RFC 4291 §2.2, RFC 5952 output) and CIDR ranges, with IPv4-mapped IPv6
 * addresses matching IPv4 ranges (RFC 4291 §2.5.5.2).
 */
import t from 'tap';
import { AddressSet, DEFAULT_ALLOWED_SOURCES, normalizeAddress, parseCidr } from '../../src/security/cidr.ts';

t.test('addresses in every RFC 4291 §2.2 form normalize to one text (RFC 5952)', async (t) => {
  const cases: [name: string, input: string, expected: string | undefined][] = [
    ['IPv4', '192.0.2.1', '192.0.2.1'],
    ['§2.2 form 1, full groups', '2001:DB8:0:0:8:800:200C:417A', '2001:db8::8:800:200c:417a'],
    ['leading zeros in groups', '2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['§2.2 form 2, multicast compressed', 'FF01::101', 'ff01::101'],
    ['loopback', '0:0:0:0:0:0:0:1', '::1'],
    ['unspecified', '::', '::'],
    ['compression at the end', '1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['a single zero group is not compressed (RFC 5952 §4.2.2)', '2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['the first of two equal zero runs is compressed (RFC 5952 §4.2.3)', '2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['the longest zero run is compressed', '2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['§2.2 form 3, IPv4-compatible tail', '0:0:0:0:0:0:13.1.68.3', '::d01:4403'],
    ['§2.2 form 3, IPv4-mapped, full', '0:0:0:0:0:FFFF:129.144.52.38', '129.144.52.38'],
    ['§2.2 form 3, IPv4-mapped, compressed', '::FFFF:129.144.52.38', '129.144.52.38'],
    ['IPv4-mapped in hex', '::ffff:a00:1', '10.0.0.1'],
    ['brackets from a URI', '[::1]', '::1'],
    ['zone from a link-local socket address', 'fe80::1%eth0', 'fe80::1'],
    ['octet with a leading zero (octal ambiguity)', '192.168.001.1', undefined],
    ['three octets', '1.2.3', undefined],
    ['octet over 255', '256.1.1.1', undefined],
    ['two "::"', '1::2::3', undefined],
    ['nine groups', '1:2:3:4:5:6:7:8:9', undefined],
    ['eight groups and "::"', '1:2:3:4:5:6:7:8::', undefined],
    ['group of five digits', '12345::', undefined],
    ['lone leading colon', ':1::', undefined],
    ['IPv4 tail not last', '::1.2.3.4:5', undefined],
    ['IPv4 before "::"', '1.2.3.4::', undefined],
    ['non-hex', 'g::1', undefined],
    ['host name', 'example.com', undefined],
    ['empty', '', undefined],
  ];
  for (const [name, input, expected] of cases) t.equal(normalizeAddress(input), expected, name);
});

t.test('a CIDR range contains exactly the addresses under its prefix', async (t) => {
  const cases: [name: string, cidr: string, canonical: string, inside: string[], outside: string[]][] = [
    ['IPv4 /8', '10.0.0.0/8', '10.0.0.0/8', ['10.0.0.0', '10.255.255.255', '::ffff:10.0.0.1', '::FFFF:a00:1'], ['11.0.0.0', '9.255.255.255', '::a00:1', '10.0.0.1x']],
    ['host bits are cleared', '10.1.2.3/8', '10.0.0.0/8', ['10.9.9.9'], ['11.1.2.3']],
    ['IPv4 /12 boundary', '172.16.0.0/12', '172.16.0.0/12', ['172.31.255.255'], ['172.32.0.0', '172.15.255.255']],
    ['bare IPv4 is /32', '192.0.2.7', '192.0.2.7/32', ['192.0.2.7', '::ffff:192.0.2.7'], ['192.0.2.8', '192.0.2.6']],
    ['IPv4 /0 is all of IPv4, no IPv6', '0.0.0.0/0', '0.0.0.0/0', ['8.8.8.8', '::ffff:1.1.1.1'], ['::1', '2001:db8::1']],
    ['link-local IPv6', 'fe80::/10', 'fe80::/10', ['fe80::1%eth0', 'febf:ffff::1'], ['fec0::1', 'fe7f::1']],
    ['unique local IPv6', 'fc00::/7', 'fc00::/7', ['fd12:3456::1', 'fc00::'], ['fe00::1', 'fbff::1']],
    ['bare IPv6 is /128', '::1', '::1/128', ['::1', '[::1]', '0:0:0:0:0:0:0:1'], ['::2', '127.0.0.1']],
    ['IPv6 /0 holds mapped IPv4 too', '::/0', '::/0', ['::1', '10.0.0.1'], ['not-an-ip']],
    ['the IPv4-mapped block written in IPv6', '::ffff:0:0/96', '::ffff:0.0.0.0/96', ['1.2.3.4', '::ffff:255.255.255.255'], ['::1', '::fffe:1.2.3.4']],
    ['documentation /32', '2001:DB8::/32', '2001:db8::/32', ['2001:db8:ffff::1'], ['2001:db9::', '2001:db7:ffff::']],
    ['IPv6 range with an IPv4 tail', '::ffff:192.168.0.0/112', '::ffff:192.168.0.0/112', ['192.168.3.4'], ['192.169.0.0']],
  ];
  for (const [name, cidr, canonical, inside, outside] of cases) {
    const m = parseCidr(cidr);
    t.equal(m.cidr, canonical, `${name}: canonical form`);
    for (const a of inside) t.ok(m.contains(a), `${name}: contains ${a}`);
    for (const a of outside) t.notOk(m.contains(a), `${name}: does not contain ${a}`);
  }
});

t.test('a bad range is refused with a one-line message that names it', async (t) => {
  const cases: [name: string, cidr: string, message: RegExp][] = [
    ['IPv4 prefix over 32', '10.0.0.0/33', /"10\.0\.0\.0\/33": prefix length must be 0-32/],
    ['IPv6 prefix over 128', 'fe80::/129', /prefix length must be 0-128/],
    ['empty prefix', '10.0.0.0/', /prefix length/],
    ['prefix with a leading zero', '10.0.0.0/08', /prefix length/],
    ['two slashes', '10.0.0.0/8/8', /prefix length/],
    ['host name', 'example.com/24', /not an IPv4 or IPv6 address/],
    ['zone in a range', 'fe80::1%eth0/64', /zones and brackets/],
    ['empty', '', /not an IPv4 or IPv6 address/],
    ['newline is shown escaped', '10.0.0.0\n/8', /"10\.0\.0\.0\\n\/8"/],
  ];
  for (const [name, cidr, message] of cases) {
    t.throws(() => parseCidr(cidr), message, name);
    try {
      parseCidr(cidr);
    } catch (err) {
      t.notMatch((err as Error).message, /\n/, `${name}: one line`);
    }
  }
  t.throws(() => new AddressSet(['10.0.0.0/8', '192.168.0.0/33']), /"192\.168\.0\.0\/33"/, 'AddressSet names the bad entry');
});

t.test('the default allowed sources are the private, loopback and link-local ranges', async (t) => {
  const set = new AddressSet(DEFAULT_ALLOWED_SOURCES);
  t.same(set.cidrs, ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '127.0.0.0/8', '::1/128', 'fc00::/7', 'fe80::/10']);
  const cases: [address: string, allowed: boolean][] = [
    ['192.168.1.10', true],
    ['10.20.30.40', true],
    ['172.20.0.1', true],
    ['169.254.1.1', true],
    ['127.0.0.2', true],
    ['::ffff:192.168.0.1', true],
    ['::1', true],
    ['fd00::1', true],
    ['fe80::1%wlan0', true],
    ['100.64.0.1', false],
    ['8.8.8.8', false],
    ['172.32.0.1', false],
    ['2001:db8::1', false],
    ['::ffff:8.8.8.8', false],
    ['garbage', false],
  ];
  for (const [address, allowed] of cases) t.equal(set.has(address), allowed, `${address} ${allowed ? 'allowed' : 'refused'}`);
});
