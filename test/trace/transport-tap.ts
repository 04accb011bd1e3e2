/**
 * The transport layer's trace tap on loopback sockets: every message in and out is reported with
 * its transport, endpoints and connection, and nothing is reported while the tap is unset.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import t from 'tap';
import { ManualClock } from '../../src/runtime/clock.ts';
import { nullLogger } from '../../src/runtime/logger.ts';
import { TransportLayer, type TransportTraceEvent } from '../../src/sip/transport/transport-layer.ts';
import { until } from '../helpers/wait.ts';

const msg = (n: number) => Buffer.from(`OPTIONS sip:gw SIP/2.0\r\nCall-ID: tap-${n}\r\nContent-Length: 0\r\n\r\n`);

t.test('onTrace reports UDP and TCP messages in both directions, only while set', async (t) => {
  const clock = new ManualClock(0, 1_700_000_000_000);
  const received: Buffer[] = [];
  const layer = new TransportLayer({ bind: '127.0.0.1', port: 0, transports: ['udp', 'tcp'], logger: nullLogger, clock, onMessage: (b) => received.push(b) });
  await layer.listen();
  t.teardown(() => layer.close());
  const port = layer.localEndpoint('udp').port;
  const events: TransportTraceEvent[] = [];

  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  t.teardown(() => udp.close());
  const udpPort = udp.address().port;
  udp.send(msg(0), port, '127.0.0.1');
  t.ok(await until(() => received.length === 1, 5_000), 'a message arrives while the tap is unset');
  t.same(events, [], 'nothing traced without a listener');

  layer.onTrace = (e) => events.push(e);
  udp.send(msg(1), port, '127.0.0.1');
  t.ok(await until(() => received.length === 2, 5_000));
  await layer.send(msg(2), { transport: 'udp', address: '127.0.0.1', port: udpPort });

  const tcp = net.createConnection(port, '127.0.0.1');
  await new Promise<void>((r) => tcp.once('connect', () => r()));
  t.teardown(() => tcp.destroy());
  tcp.write(msg(3));
  t.ok(await until(() => received.length === 3, 5_000));
  const tcpIn = events[2]!;
  await layer.send(msg(4), { transport: 'tcp', address: '127.0.0.1', port: tcp.localPort!, connectionId: tcpIn.connection! });

  const summary = events.map((e) => ({ d: e.direction, tr: e.transport, local: e.local.port, remote: e.remote.port, c: e.connection, text: e.bytes.toString(), time: e.time }));
  t.same(summary, [
    { d: 'in', tr: 'udp', local: port, remote: udpPort, c: undefined, text: msg(1).toString(), time: 1_700_000_000_000 },
    { d: 'out', tr: 'udp', local: port, remote: udpPort, c: undefined, text: msg(2).toString(), time: 1_700_000_000_000 },
    { d: 'in', tr: 'tcp', local: port, remote: tcp.localPort, c: tcpIn.connection, text: msg(3).toString(), time: 1_700_000_000_000 },
    { d: 'out', tr: 'tcp', local: port, remote: tcp.localPort, c: tcpIn.connection, text: msg(4).toString(), time: 1_700_000_000_000 },
  ]);
  t.match(tcpIn.connection, /^tcp-\d+$/, 'the TCP connection is named');
  t.equal(events[0]!.local.address, '127.0.0.1');

  layer.onTrace = () => {
    throw new Error('a broken tap');
  };
  udp.send(msg(5), port, '127.0.0.1');
  t.ok(await until(() => received.length === 4, 5_000), 'a throwing tap does not stop delivery');
  layer.onTrace = undefined;
  await layer.send(msg(6), { transport: 'udp', address: '127.0.0.1', port: udpPort });
  t.equal(events.length, 4, 'unset again: nothing more traced');
});
