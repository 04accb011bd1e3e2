import t from 'tap';
import { responseDestination, type ViaForResponse } from '../../../src/sip/transport/response-destination.ts';
import type { Endpoint } from '../../../src/sip/transport/transport.ts';

const udpSrc: Endpoint = { transport: 'udp', address: '192.0.2.7', port: 40000, family: 4 };
const tcpSrc: Endpoint = { transport: 'tcp', address: '192.0.2.7', port: 51234, family: 4 };
const tlsSrc: Endpoint = { transport: 'tls', address: '2001:db8::7', port: 51234, family: 6 };

const cases: { name: string; via: ViaForResponse; source: Endpoint; connection?: string; expect: object }[] = [
  {
    name: 'UDP, sent-by equals source, no received: sent-by host and port (§18.2.2)',
    via: { transport: 'UDP', host: '192.0.2.7', port: 5070 },
    source: udpSrc,
    expect: { transport: 'udp', address: '192.0.2.7', port: 5070, family: 4 },
  },
  {
    name: 'UDP, sent-by without port: 5060',
    via: { transport: 'UDP', host: 'pc33.example.com' },
    source: udpSrc,
    expect: { transport: 'udp', address: 'pc33.example.com', port: 5060 },
  },
  {
    name: 'UDP with received: received address, sent-by port (§18.2.2)',
    via: { transport: 'UDP', host: 'pc33.example.com', port: 5062, received: '192.0.2.7' },
    source: udpSrc,
    expect: { transport: 'udp', address: '192.0.2.7', port: 5062, family: 4 },
  },
  {
    name: 'UDP with received and no sent-by port: 5060',
    via: { transport: 'UDP', host: '10.0.0.1', received: '192.0.2.7' },
    source: udpSrc,
    expect: { transport: 'udp', address: '192.0.2.7', port: 5060, family: 4 },
  },
  {
    name: 'UDP with filled rport: received address and rport (RFC 3581 §4)',
    via: { transport: 'UDP', host: '10.0.0.1', port: 5060, received: '192.0.2.7', rport: 40000 },
    source: udpSrc,
    expect: { transport: 'udp', address: '192.0.2.7', port: 40000, family: 4 },
  },
  {
    name: 'UDP with bare rport not yet filled: source address and port (RFC 3581 §4)',
    via: { transport: 'UDP', host: '10.0.0.1', port: 5060, rport: null },
    source: udpSrc,
    expect: { transport: 'udp', address: '192.0.2.7', port: 40000, family: 4 },
  },
  {
    name: 'UDP with maddr: maddr and sent-by port, even with received (§18.2.2)',
    via: { transport: 'UDP', host: '10.0.0.1', port: 5080, maddr: '239.1.2.3', received: '192.0.2.7', rport: 40000 },
    source: udpSrc,
    expect: { transport: 'udp', address: '239.1.2.3', port: 5080, family: 4 },
  },
  {
    name: 'UDP with maddr and no port: 5060',
    via: { transport: 'UDP', host: '10.0.0.1', maddr: '239.1.2.3' },
    source: udpSrc,
    expect: { transport: 'udp', address: '239.1.2.3', port: 5060, family: 4 },
  },
  {
    name: 'UDP IPv6 sent-by in brackets: brackets removed',
    via: { transport: 'UDP', host: '[2001:db8::1]', port: 5060 },
    source: { transport: 'udp', address: '2001:db8::1', port: 5060, family: 6 },
    expect: { transport: 'udp', address: '2001:db8::1', port: 5060, family: 6 },
  },
  {
    name: 'TCP with connection: same connection, fallback received + sent-by port (§18.2.2)',
    via: { transport: 'TCP', host: 'pc33.example.com', port: 5090, received: '192.0.2.7', rport: 51234 },
    source: tcpSrc,
    connection: 'tcp-4',
    expect: { transport: 'tcp', address: '192.0.2.7', port: 5090, family: 4, connectionId: 'tcp-4' },
  },
  {
    name: 'TCP with connection, no received, no port: source address, 5060',
    via: { transport: 'TCP', host: '192.0.2.7' },
    source: tcpSrc,
    connection: 'tcp-5',
    expect: { transport: 'tcp', address: '192.0.2.7', port: 5060, family: 4, connectionId: 'tcp-5' },
  },
  {
    name: 'TLS with connection and no sent-by port: default 5061',
    via: { transport: 'TLS', host: 'phone.example.com', received: '2001:db8::7' },
    source: tlsSrc,
    connection: 'tls-1',
    expect: { transport: 'tls', address: '2001:db8::7', port: 5061, family: 6, connectionId: 'tls-1' },
  },
  {
    name: 'TCP without a known connection: the source endpoint, which names the open connection',
    via: { transport: 'TCP', host: '192.0.2.7', port: 5060 },
    source: tcpSrc,
    expect: { transport: 'tcp', address: '192.0.2.7', port: 51234, family: 4 },
  },
  {
    name: 'TCP ignores maddr: reliable transports answer on the connection',
    via: { transport: 'TCP', host: '192.0.2.7', port: 5060, maddr: '239.1.2.3' },
    source: tcpSrc,
    connection: 'tcp-9',
    expect: { transport: 'tcp', address: '192.0.2.7', port: 5060, family: 4, connectionId: 'tcp-9' },
  },
];

t.test('response destination table (RFC 3261 §18.2.2, RFC 3581 §4)', async (t) => {
  for (const c of cases) t.strictSame(responseDestination(c.via, c.source, c.connection), c.expect, c.name);
});
