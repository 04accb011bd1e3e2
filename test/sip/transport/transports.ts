import t from 'tap';
import dgram from 'node:dgram';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, SystemClock } from '../../../src/runtime/clock.ts';
import { nullLogger } from '../../../src/runtime/logger.ts';
import { responseDestination } from '../../../src/sip/transport/response-destination.ts';
import { TransportLayer, type TransportLayerOptions } from '../../../src/sip/transport/transport-layer.ts';
import { listenError, TransportError, type Endpoint, type TransportName } from '../../../src/sip/transport/transport.ts';

const HOSTS = ['127.0.0.1', '::1'] as const;

function sip(callId: string, body = ''): Buffer {
  return Buffer.from(
    `OPTIONS sip:gw@example.com SIP/2.0\r\nVia: SIP/2.0/TCP client.example.com;branch=z9hG4bK${callId}\r\n` +
      `Call-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    'latin1',
  );
}

interface Received {
  bytes: Buffer;
  source: Endpoint;
  connection?: string;
}

/** Collects what a layer delivers; `next()` waits for the next one (2 s at most). */
class Inbox {
  readonly queue: Received[] = [];
  readonly streamErrors: { source: Endpoint; code: string; connection?: string }[] = [];
  private waiter: ((r: Received) => void) | undefined;
  push(r: Received): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(r);
    } else {
      this.queue.push(r);
    }
  }
  next(): Promise<Received> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message within 2 s')), 2000);
      this.waiter = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }
}

/** The part of a tap test these helpers use. */
type Teardown = { teardown(fn: () => unknown): void };

async function layer(
  t: Teardown,
  bind: string,
  transports: TransportName[],
  extra: Partial<TransportLayerOptions> = {},
): Promise<{ layer: TransportLayer; inbox: Inbox }> {
  const inbox = new Inbox();
  const l = new TransportLayer({
    bind,
    port: 0,
    transports,
    logger: nullLogger,
    clock: new SystemClock(),
    onMessage: (bytes, source, connection) => inbox.push({ bytes, source, connection }),
    onStreamError: (source, reason, connection) => inbox.streamErrors.push({ source, code: reason.code, connection }),
    ...extra,
  });
  await l.listen();
  t.teardown(() => l.close());
  return { layer: l, inbox };
}

/** A raw TCP client that records everything it receives. */
async function rawClient(t: Teardown, host: string, port: number) {
  const socket = net.connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  t.teardown(() => void socket.destroy());
  const write = (b: Buffer | string) => new Promise<void>((resolve, reject) => socket.write(b, (e) => (e ? reject(e) : resolve())));
  const received = () => Buffer.concat(chunks);
  return { socket, write, received, closed };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(10);
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

for (const host of HOSTS) {
  t.test(`UDP round trip, response routed by RFC 3581 rport (${host})`, async (t) => {
    const a = await layer(t, host, ['udp']);
    const b = await layer(t, host, ['udp']);
    const aPort = a.layer.localEndpoint('udp').port;
    await a.layer.send(sip('udp1'), b.layer.localEndpoint('udp'));
    const req = await b.inbox.next();
    t.ok(req.bytes.equals(sip('udp1')), 'datagram delivered whole');
    t.same(req.source, { transport: 'udp', address: host, port: aPort, family: host === '::1' ? 6 : 4 });
    t.equal(req.connection, undefined, 'no connection id on UDP');
    const dest = responseDestination({ transport: 'UDP', host: 'client.example.com', rport: null }, req.source);
    await b.layer.send(sip('udp1-resp'), dest);
    t.ok((await a.inbox.next()).bytes.equals(sip('udp1-resp')), 'response reached the source port');
  });

  t.test(`TCP message written one byte at a time is delivered once (${host})`, async (t) => {
    const s = await layer(t, host, ['udp', 'tcp']);
    t.equal(s.layer.localEndpoint('tcp').port, s.layer.localEndpoint('udp').port, 'TCP shares the UDP port');
    const c = await rawClient(t, host, s.layer.localEndpoint('tcp').port);
    const m = sip('bytes', 'v=0\r\n');
    for (let i = 0; i < m.length; i++) await c.write(m.subarray(i, i + 1));
    const got = await s.inbox.next();
    t.ok(got.bytes.equals(m));
    t.match(got.connection, /^tcp-\d+$/);
    t.equal(got.source.port, c.socket.localPort);
    await sleep(30);
    t.equal(s.inbox.queue.length, 0, 'nothing else delivered');
  });

  t.test(`TCP: two messages in one write, keep-alive ping answered with one CRLF (${host})`, async (t) => {
    const s = await layer(t, host, ['tcp']);
    const c = await rawClient(t, host, s.layer.localEndpoint('tcp').port);
    await c.write(Buffer.concat([sip('one'), Buffer.from('\r\n\r\n'), sip('two', 'xyz')]));
    const one = await s.inbox.next();
    const two = await s.inbox.next();
    t.ok(one.bytes.equals(sip('one')) && two.bytes.equals(sip('two', 'xyz')), 'both, in order');
    t.equal(one.connection, two.connection, 'same connection');
    await waitUntil(() => c.received().length > 0, 'pong');
    await sleep(20);
    t.equal(c.received().toString('latin1'), '\r\n', 'RFC 5626 §4.4.1 pong is a single CRLF');
  });
}

t.test('UDP drops empty and CRLF keep-alive datagrams', async (t) => {
  const s = await layer(t, '127.0.0.1', ['udp']);
  const sock = dgram.createSocket('udp4');
  t.teardown(() => sock.close());
  const port = s.layer.localEndpoint('udp').port;
  const send = (b: Buffer) => new Promise<void>((r) => sock.send(b, port, '127.0.0.1', () => r()));
  await send(Buffer.alloc(0));
  await send(Buffer.from('\r\n\r\n'));
  await send(Buffer.from('\r\n'));
  await send(sip('after-pings'));
  t.ok((await s.inbox.next()).bytes.equals(sip('after-pings')), 'first delivery is the real message');
  t.equal(s.inbox.queue.length, 0);
});

t.test('TCP framing error reports the reason and closes the connection (RFC 3261 §18.3)', async (t) => {
  const s = await layer(t, '127.0.0.1', ['tcp']);
  const c = await rawClient(t, '127.0.0.1', s.layer.localEndpoint('tcp').port);
  const clientPort = c.socket.localPort;
  await c.write('OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n');
  await c.closed;
  t.same(s.inbox.streamErrors.map((e) => e.code), ['FRAMING_MISSING_CONTENT_LENGTH']);
  t.equal(s.inbox.streamErrors[0]?.source.port, clientPort);
  await waitUntil(() => s.layer.connectionCount('tcp') === 0, 'connection forgotten');
  t.equal(s.inbox.queue.length, 0);
});

t.test('TCP response reuses the request connection; after it closes a new one goes to sent-by (§18.2.2)', async (t) => {
  const clock = new ManualClock();
  const a = await layer(t, '127.0.0.1', ['tcp'], { clock, idleTimeoutMs: 5000 });
  const b = await layer(t, '127.0.0.1', ['tcp'], { clock, idleTimeoutMs: 5000 });
  const aPort = a.layer.localEndpoint('tcp').port;
  await a.layer.send(sip('req'), b.layer.localEndpoint('tcp'));
  const req = await b.inbox.next();
  const via = { transport: 'TCP', host: '127.0.0.1', port: aPort, rport: req.source.port, received: '127.0.0.1' };
  await b.layer.send(sip('resp'), responseDestination(via, req.source, req.connection));
  const resp = await a.inbox.next();
  t.ok(resp.bytes.equals(sip('resp')));
  t.same(resp.source, b.layer.localEndpoint('tcp'), 'arrived on the connection A dialled');
  t.equal(a.layer.connectionCount('tcp'), 1);
  t.equal(b.layer.connectionCount('tcp'), 1, 'no new connection opened for the response');
  await a.layer.send(sip('req2'), b.layer.localEndpoint('tcp'));
  t.equal((await b.inbox.next()).connection, req.connection, 'a second request reuses the connection');

  clock.advance(5000);
  await waitUntil(() => a.layer.connectionCount('tcp') === 0 && b.layer.connectionCount('tcp') === 0, 'idle close');
  await b.layer.send(sip('late-resp'), responseDestination(via, req.source, req.connection));
  const late = await a.inbox.next();
  t.ok(late.bytes.equals(sip('late-resp')));
  t.not(late.connection, resp.connection, 'delivered over a new connection to the sent-by port');
});

t.test('TCP idle timeout counts from the last activity', async (t) => {
  const clock = new ManualClock();
  const s = await layer(t, '127.0.0.1', ['tcp'], { clock, idleTimeoutMs: 1000 });
  const c = await rawClient(t, '127.0.0.1', s.layer.localEndpoint('tcp').port);
  let closed = false;
  void c.closed.then(() => (closed = true));
  await c.write(sip('first'));
  await s.inbox.next();
  clock.advance(600);
  await c.write(sip('second'));
  await s.inbox.next();
  clock.advance(600);
  await sleep(30);
  t.notOk(closed, 'open 600 ms after the last message although 1200 ms since it opened');
  clock.advance(400);
  await c.closed;
  t.ok(closed, 'closed 1000 ms after the last message');
});

t.test('transport errors carry stable codes (RFC 3261 §17.1.4)', async (t) => {
  const s = await layer(t, '127.0.0.1', ['udp', 'tcp']);
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const freePort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const cases: [string, () => Promise<void>, string][] = [
    ['TCP connect refused', () => s.layer.send(sip('x'), { transport: 'tcp', address: '127.0.0.1', port: freePort }), 'TRANSPORT_CONNECT_FAILED'],
    ['disabled transport', () => s.layer.send(sip('x'), { transport: 'tls', address: '127.0.0.1', port: 5061 }), 'TRANSPORT_NOT_AVAILABLE'],
    [
      'UDP datagram over 65507 bytes',
      () => s.layer.send(Buffer.alloc(70000, 0x41), { transport: 'udp', address: '127.0.0.1', port: 9 }),
      'TRANSPORT_MESSAGE_TOO_LARGE',
    ],
    ['IPv6 destination on an IPv4 socket', () => s.layer.send(sip('x'), { transport: 'udp', address: '::1', port: 9 }), 'TRANSPORT_FAMILY_MISMATCH'],
  ];
  for (const [name, run, code] of cases) await t.rejects(run(), { name: 'TransportError', code }, name);
  await s.layer.close();
  await t.rejects(s.layer.send(sip('x'), { transport: 'udp', address: '127.0.0.1', port: 9 }), { code: 'TRANSPORT_NOT_AVAILABLE' }, 'after close');
});

t.test('listening errors are one-liners for the CLI', async (t) => {
  const busyUdp = dgram.createSocket('udp4');
  await new Promise<void>((r) => busyUdp.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => busyUdp.close());
  const udpPort = busyUdp.address().port;
  const l1 = new TransportLayer({ bind: '127.0.0.1', port: udpPort, transports: ['udp', 'tcp'], logger: nullLogger, clock: new SystemClock() });
  await t.rejects(l1.listen(), {
    code: 'TRANSPORT_ADDRESS_IN_USE',
    message: `cannot listen on udp 127.0.0.1:${udpPort}: address in use (is another SIP server running? try: ss -lunp | grep ${udpPort})`,
  });

  const busyTcp = net.createServer();
  await new Promise<void>((r) => busyTcp.listen(0, '::1', () => r()));
  t.teardown(() => void busyTcp.close());
  const tcpPort = (busyTcp.address() as net.AddressInfo).port;
  const l2 = new TransportLayer({ bind: '::1', port: tcpPort, transports: ['udp', 'tcp'], logger: nullLogger, clock: new SystemClock() });
  await t.rejects(l2.listen(), {
    message: `cannot listen on tcp [::1]:${tcpPort}: address in use (is another SIP server running? try: ss -ltnp | grep ${tcpPort})`,
  });
  const rebind = dgram.createSocket('udp6');
  await new Promise<void>((resolve, reject) => {
    rebind.once('error', reject);
    rebind.bind(tcpPort, '::1', () => resolve());
  });
  rebind.close();
  t.pass('the UDP socket opened before the TCP failure was released');

  const errno = (code: string) => Object.assign(new Error(`listen ${code}`), { code });
  const table: [TransportName, string, number, Error, string, string][] = [
    ['udp', '0.0.0.0', 80, errno('EACCES'), 'TRANSPORT_PERMISSION_DENIED', 'cannot listen on udp 0.0.0.0:80: permission denied (use a port >= 1024, or grant CAP_NET_BIND_SERVICE)'],
    ['tcp', '0.0.0.0', 5060, errno('EADDRINUSE'), 'TRANSPORT_ADDRESS_IN_USE', 'cannot listen on tcp 0.0.0.0:5060: address in use (is another SIP server running? try: ss -ltnp | grep 5060)'],
    ['tls', '::', 5061, errno('EADDRINUSE'), 'TRANSPORT_ADDRESS_IN_USE', 'cannot listen on tls [::]:5061: address in use (is another SIP server running? try: ss -ltnp | grep 5061)'],
    ['udp', '192.0.2.1', 5060, errno('EADDRNOTAVAIL'), 'TRANSPORT_ADDRESS_NOT_AVAILABLE', 'cannot listen on udp 192.0.2.1:5060: address not available (is 192.0.2.1 configured on this host?)'],
    ['udp', '0.0.0.0', 5060, new Error('boom'), 'TRANSPORT_LISTEN_FAILED', 'cannot listen on udp 0.0.0.0:5060: boom'],
  ];
  for (const [tr, addr, port, err, code, message] of table) {
    const e = listenError(tr, addr, port, err);
    t.ok(e instanceof TransportError);
    t.same({ code: e.code, message: e.message }, { code, message }, `${(err as { code?: string }).code ?? 'other'} on ${tr}`);
  }
});

t.test('TLS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const makeCert = (name: string) => {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
        '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`)],
      { stdio: 'ignore' },
    );
    return { cert: readFileSync(join(dir, `${name}.crt`)), key: readFileSync(join(dir, `${name}.key`)) };
  };
  const server = makeCert('server');
  const other = makeCert('other');

  for (const host of HOSTS) {
    t.test(`round trip with a verified server certificate (${host})`, async (t) => {
      const a = await layer(t, host, ['tls'], { tls: { ...server } });
      const b = await layer(t, host, ['tls'], { tls: { ...other, ca: server.cert } });
      await b.layer.send(sip('tls-req'), a.layer.localEndpoint('tls'));
      const req = await a.inbox.next();
      t.ok(req.bytes.equals(sip('tls-req')));
      t.match(req.connection, /^tls-\d+$/);
      const via = { transport: 'TLS', host: 'client.example.com', received: host };
      await a.layer.send(sip('tls-resp'), responseDestination(via, req.source, req.connection));
      t.ok((await b.inbox.next()).bytes.equals(sip('tls-resp')), 'response over the same TLS connection');
      t.equal(a.layer.connectionCount('tls'), 1);
    });
  }

  t.test('client trusting a different CA rejects the server', async (t) => {
    const a = await layer(t, '127.0.0.1', ['tls'], { tls: { ...server } });
    const c = await layer(t, '127.0.0.1', ['tls'], { tls: { ...other, ca: other.cert } });
    await t.rejects(c.layer.send(sip('nope'), a.layer.localEndpoint('tls')), { code: 'TRANSPORT_TLS_FAILED' });
    t.equal(a.inbox.queue.length, 0, 'nothing delivered');
    t.equal(c.layer.connectionCount('tls'), 0);
  });

  t.test('server name is verified against the certificate', async (t) => {
    const a = await layer(t, '127.0.0.1', ['tls'], { tls: { ...server } });
    const c = await layer(t, '127.0.0.1', ['tls'], { tls: { ...other, ca: server.cert } });
    const dest = a.layer.localEndpoint('tls');
    await t.rejects(c.layer.send(sip('wrong-name'), dest, { serverName: 'sip.example.net' }), { code: 'TRANSPORT_TLS_FAILED' });
    await c.layer.send(sip('right-name'), dest, { serverName: 'localhost' });
    t.ok((await a.inbox.next()).bytes.equals(sip('right-name')));
  });

  t.test('tls transport without certificate is a configuration error', async (t) => {
    t.throws(() => new TransportLayer({ bind: '127.0.0.1', port: 0, transports: ['tls'], logger: nullLogger, clock: new SystemClock() }), {
      code: 'TRANSPORT_NOT_AVAILABLE',
    });
  });
});
