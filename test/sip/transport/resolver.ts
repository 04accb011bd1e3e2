import t from 'tap';
import { SeededRandom } from '../../../src/runtime/random.ts';
import type { Destination } from '../../../src/sip/transaction/types.ts';
import { orderSrv, resolveTarget, type DnsFunctions, type ResolveTarget } from '../../../src/sip/transport/resolver.ts';

type Naptr = Awaited<ReturnType<DnsFunctions['resolveNaptr']>>[number];
type Srv = Awaited<ReturnType<DnsFunctions['resolveSrv']>>[number];

function notFound(name: string): Error {
  return Object.assign(new Error(`queryX ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
}

/** DNS from tables; records every query so tests can check which were made. */
interface Tables {
  naptr?: Record<string, Naptr[]>;
  srv?: Record<string, Srv[]>;
  a?: Record<string, string[]>;
  fail?: Record<string, string>;
}

function fakeDns(tables: Tables) {
  const queries: string[] = [];
  const answer = <T>(kind: string, table: Record<string, T[]> | undefined, name: string): Promise<T[]> => {
    queries.push(`${kind} ${name}`);
    const code = tables.fail?.[`${kind} ${name}`];
    if (code) return Promise.reject(Object.assign(new Error(`${kind} ${code} ${name}`), { code }));
    const rows = table?.[name];
    return rows ? Promise.resolve(rows) : Promise.reject(notFound(name));
  };
  const dns: DnsFunctions = {
    resolveNaptr: (n) => answer('NAPTR', tables.naptr, n),
    resolveSrv: (n) => answer('SRV', tables.srv, n),
    lookup: (h) => answer('A', tables.a, h).then((list) => list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))),
  };
  return { dns, queries };
}

const naptr = (order: number, preference: number, service: string, replacement: string): Naptr => ({ flags: 's', service, replacement, order, preference, regexp: '' } as Naptr);
const srv = (priority: number, weight: number, port: number, name: string): Srv => ({ priority, weight, port, name });

t.test('RFC 3263 §4 target resolution', async (t) => {
  const chain: Tables = {
    naptr: {
      'example.net': [
        naptr(50, 50, 'SIPS+D2T', '_sips._tcp.example.net'),
        naptr(90, 50, 'SIP+D2U', '_sip._udp.example.net'),
        naptr(50, 40, 'SIP+D2T', '_sip._tcp.example.net'),
        naptr(10, 10, 'SIP+D2S', '_sip._sctp.example.net'),
        { ...naptr(1, 1, 'E2U+sip', 'x.example.net'), flags: 'u' },
      ],
    },
    srv: {
      '_sips._tcp.example.net': [srv(10, 0, 5061, 'tls.example.net')],
      '_sip._tcp.example.net': [srv(10, 0, 5070, 'tcp.example.net')],
      '_sip._udp.example.net': [srv(10, 0, 5080, 'udp.example.net'), srv(20, 0, 5080, 'udp2.example.net')],
    },
    a: {
      'tls.example.net': ['192.0.2.1'],
      'tcp.example.net': ['192.0.2.2', '2001:db8::2'],
      'udp.example.net': ['192.0.2.3'],
      'udp2.example.net': ['192.0.2.4'],
      'example.net': ['192.0.2.99'],
    },
  };
  const cases: { name: string; target: ResolveTarget; tables: Tables; want: Destination[]; queries?: string[] }[] = [
    {
      name: 'NAPTR by order then preference → SRV → A/AAAA; unsupported services and non-"s" flags are skipped',
      target: { host: 'example.net' },
      tables: chain,
      want: [
        { transport: 'tcp', address: '192.0.2.2', port: 5070 },
        { transport: 'tcp', address: '2001:db8::2', port: 5070 },
        { transport: 'tls', address: '192.0.2.1', port: 5061 },
        { transport: 'udp', address: '192.0.2.3', port: 5080 },
        { transport: 'udp', address: '192.0.2.4', port: 5080 },
      ],
    },
    {
      name: 'a given transport keeps only that transport\'s NAPTR records',
      target: { host: 'example.net', transport: 'udp' },
      tables: chain,
      want: [
        { transport: 'udp', address: '192.0.2.3', port: 5080 },
        { transport: 'udp', address: '192.0.2.4', port: 5080 },
      ],
    },
    {
      name: 'no NAPTR: SRV of each supported transport in turn',
      target: { host: 'example.org' },
      tables: { srv: { '_sip._tcp.example.org': [srv(0, 0, 5099, 'pbx.example.org')] }, a: { 'pbx.example.org': ['198.51.100.5'] } },
      want: [{ transport: 'tcp', address: '198.51.100.5', port: 5099 }],
    },
    {
      name: 'no NAPTR, given transport: only that SRV name',
      target: { host: 'example.org', transport: 'tls' },
      tables: { srv: { '_sips._tcp.example.org': [srv(0, 0, 5161, 'pbx.example.org')] }, a: { 'pbx.example.org': ['198.51.100.5'] } },
      want: [{ transport: 'tls', address: '198.51.100.5', port: 5161 }],
      queries: ['NAPTR example.org', 'SRV _sips._tcp.example.org', 'A pbx.example.org'],
    },
    {
      name: 'no NAPTR or SRV: A/AAAA of the host with the default port',
      target: { host: 'plain.example.org', transport: 'tls' },
      tables: { a: { 'plain.example.org': ['198.51.100.6'] } },
      want: [{ transport: 'tls', address: '198.51.100.6', port: 5061 }],
    },
    {
      name: 'a DNS server failure on NAPTR falls through like NXDOMAIN',
      target: { host: 'plain.example.org' },
      tables: { a: { 'plain.example.org': ['198.51.100.6'] }, fail: { 'NAPTR plain.example.org': 'ESERVFAIL' } },
      want: [{ transport: 'udp', address: '198.51.100.6', port: 5060 }],
    },
    {
      name: 'SRV target "." means no service: falls back to A',
      target: { host: 'dot.example.org', transport: 'udp' },
      tables: { srv: { '_sip._udp.dot.example.org': [srv(0, 0, 0, '.')] }, a: { 'dot.example.org': ['198.51.100.8'] } },
      want: [{ transport: 'udp', address: '198.51.100.8', port: 5060 }],
    },
    {
      name: 'an explicit port skips NAPTR and SRV (§4.2)',
      target: { host: 'example.net', port: 5090, transport: 'tcp' },
      tables: chain,
      want: [{ transport: 'tcp', address: '192.0.2.99', port: 5090 }],
      queries: ['A example.net'],
    },
    {
      name: 'numeric IPv4 with defaults: no DNS at all',
      target: { host: '203.0.113.9' },
      tables: {},
      want: [{ transport: 'udp', address: '203.0.113.9', port: 5060 }],
      queries: [],
    },
    {
      name: 'numeric IPv6 reference, TLS default port 5061',
      target: { host: '[2001:db8::7]', transport: 'tls' },
      tables: {},
      want: [{ transport: 'tls', address: '2001:db8::7', port: 5061 }],
      queries: [],
    },
    {
      name: 'numeric IPv6 with a port',
      target: { host: '2001:db8::7', port: 5062 },
      tables: {},
      want: [{ transport: 'udp', address: '2001:db8::7', port: 5062 }],
      queries: [],
    },
    {
      name: 'duplicate candidates from two SRV records appear once',
      target: { host: 'dup.example.org', transport: 'udp' },
      tables: { srv: { '_sip._udp.dup.example.org': [srv(1, 0, 5060, 'a.dup.example.org'), srv(2, 0, 5060, 'b.dup.example.org')] }, a: { 'a.dup.example.org': ['192.0.2.50'], 'b.dup.example.org': ['192.0.2.50'] } },
      want: [{ transport: 'udp', address: '192.0.2.50', port: 5060 }],
    },
  ];
  for (const c of cases) {
    const { dns, queries } = fakeDns(c.tables);
    t.same(await resolveTarget(c.target, dns, new SeededRandom(1)), c.want, c.name);
    if (c.queries) t.same(queries, c.queries, `${c.name}: queries made`);
  }
});

t.test('nothing resolves: one-line error naming the host', async (t) => {
  const { dns } = fakeDns({});
  await t.rejects(resolveTarget({ host: 'nowhere.invalid' }, dns, new SeededRandom(1)), /^could not resolve nowhere\.invalid: .*ENOTFOUND/);
  const err = await resolveTarget({ host: 'nowhere.invalid', port: 5060 }, dns).catch((e: Error) => e);
  t.notMatch((err as Error).message, /\n/, 'one line');
});

t.test('SRV ordering: priority first, then weighted random per RFC 2782', async (t) => {
  const records = [srv(20, 100, 1, 'backup'), srv(10, 60, 1, 'heavy'), srv(10, 30, 1, 'light'), srv(10, 0, 1, 'zero')];
  const random = new SeededRandom(42);
  const firsts: Record<string, number> = { heavy: 0, light: 0, zero: 0 };
  const runs = 600;
  let backupLast = 0;
  for (let i = 0; i < runs; i++) {
    const order = orderSrv(records, random).map((r) => r.name);
    if (order[3] === 'backup' && [...order.slice(0, 3)].sort().join() === 'heavy,light,zero') backupLast++;
    firsts[order[0]!]!++;
  }
  t.equal(backupLast, runs, 'every record appears once and the higher priority value always comes last');
  t.ok(firsts.heavy! / runs > 0.55 && firsts.heavy! / runs < 0.78, `weight 60 of 90 is first about 2/3 of the time (${firsts.heavy})`);
  t.ok(firsts.light! / runs > 0.22 && firsts.light! / runs < 0.45, `weight 30 of 90 is first about 1/3 of the time (${firsts.light})`);
  t.ok(firsts.zero! / runs < 0.03, `weight 0 is first only rarely (${firsts.zero})`);
  t.same(orderSrv([srv(5, 0, 1, 'a'), srv(5, 0, 1, 'b')], random).length, 2, 'all-zero weights still yield every record');
  t.same(orderSrv([], random), [], 'no records');
});
