import t from 'tap';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { SeededRandom } from '../../src/runtime/random.ts';
import { createResponse } from '../../src/sip/message/message.ts';
import type { SipRequest } from '../../src/sip/message/message.ts';
import { parseNameAddr, parseVia } from '../../src/sip/message/header-values.ts';
import type { ClientTransactionHandlers, Destination } from '../../src/sip/transaction/types.ts';
import type { Binding } from '../../src/registrar/binding-store.ts';
import { optionsPinger, Qualifier, qualifyDestination } from '../../src/registrar/qualifier.ts';
import type { QualifyTarget } from '../../src/registrar/qualifier.ts';

const NOW = 1_700_000_000_000;

function binding(contact: string, source?: Binding['source']): Binding {
  return { aor: 'sip:alice@example.net', contact, expiresAt: NOW + 3_600_000, callId: 'c', cseq: 1, ...(source ? { source } : {}) };
}

const NATED = binding('sip:alice@10.0.0.5:5060', { transport: 'udp', address: '198.51.100.7', port: 40000 });
const TCP = binding('sip:bob@10.0.0.6:5060;transport=tcp', { transport: 'tcp', address: '198.51.100.8', port: 51234 });

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

function setup(bindings: Binding[], results: Record<string, 'reachable' | 'unreachable' | 'reject'>, intervalSeconds = 30) {
  const clock = new ManualClock(0, NOW);
  const logger = new MemoryLogger();
  const sent: QualifyTarget[] = [];
  const list = [...bindings];
  const qualifier = new Qualifier({
    store: () => list,
    intervalSeconds,
    clock,
    random: new SeededRandom(7),
    logger,
    sendOptions: async (target) => {
      sent.push(target);
      const r = results[target.uri] ?? 'reachable';
      if (r === 'reject') throw new Error('boom');
      return r;
    },
  });
  return { clock, logger, sent, list, qualifier };
}

t.test('where a ping goes: the source of the REGISTER, not the Contact host', async (t) => {
  const cases: { name: string; b: Binding; dest: Destination | undefined }[] = [
    { name: 'UDP behind NAT: the public address and port the REGISTER came from', b: NATED, dest: { transport: 'udp', address: '198.51.100.7', port: 40000 } },
    { name: 'TCP: the connection peer, nothing more (the transport reuses the connection)', b: TCP, dest: { transport: 'tcp', address: '198.51.100.8', port: 51234 } },
    { name: 'TLS', b: binding('sips:c@h', { transport: 'tls', address: '2001:db8::1', port: 5061 }), dest: { transport: 'tls', address: '2001:db8::1', port: 5061 } },
    { name: 'a transport we cannot send on is not pinged', b: binding('sip:d@h', { transport: 'ws', address: '192.0.2.1', port: 80 }), dest: undefined },
    { name: 'a binding without a source is not pinged', b: binding('sip:e@192.0.2.9'), dest: undefined },
  ];
  for (const c of cases) t.same(qualifyDestination(c.b), c.dest, c.name);
});

t.test('rounds run every interval with jitter and record each contact', async (t) => {
  const { clock, sent, qualifier } = setup([NATED, TCP, binding('sip:x@h', { transport: 'ws', address: 'a', port: 1 })], {
    [TCP.contact]: 'unreachable',
  });
  qualifier.start();
  qualifier.start();
  t.same(clock.pending(), ['qualify'], 'start is idempotent: one timer');
  clock.advance(26_999);
  await flush();
  t.equal(sent.length, 0, 'nothing before interval - 10 %');
  t.equal(qualifier.status(NATED.contact), 'unknown');
  clock.advance(6_001);
  await flush();
  t.same(
    sent.map((s) => s.uri),
    [NATED.contact, TCP.contact],
    'one ping per binding with a usable source, within interval + 10 %',
  );
  t.same(sent[0]!.destination, { transport: 'udp', address: '198.51.100.7', port: 40000 });
  t.equal(qualifier.status(NATED.contact), 'reachable');
  t.equal(qualifier.status(TCP.contact), 'unreachable');
  t.equal(qualifier.status('sip:nobody@h'), 'unknown');
  t.same(clock.pending(), ['qualify'], 'the next round is scheduled after this one settled');
  clock.advance(33_000);
  await flush();
  t.equal(sent.length, 4, 'second round');
  qualifier.stop();
  t.same(clock.pending(), [], 'stop cancels the next round');
  clock.advance(120_000);
  await flush();
  t.equal(sent.length, 4, 'no pings after stop');
});

t.test('state changes are logged once; unreachable bindings are kept; gone ones are forgotten', async (t) => {
  const results: Record<string, 'reachable' | 'unreachable' | 'reject'> = { [NATED.contact]: 'unreachable' };
  const { logger, list, qualifier } = setup([NATED], results);
  await qualifier.qualifyAll();
  await qualifier.qualifyAll();
  results[NATED.contact] = 'reject';
  await qualifier.qualifyAll();
  t.equal(qualifier.status(NATED.contact), 'unreachable', 'a failing sender counts as unreachable');
  results[NATED.contact] = 'reachable';
  await qualifier.qualifyAll();
  await qualifier.qualifyAll();
  t.same(
    logger.records.map((r) => [r.level, r.msg, r.fields.peer]),
    [
      ['warn', 'contact unreachable', 'udp:198.51.100.7:40000'],
      ['info', 'contact reachable again', 'udp:198.51.100.7:40000'],
    ],
  );
  t.equal(list.length, 1, 'the qualifier never removes bindings');
  list.length = 0;
  await qualifier.qualifyAll();
  t.equal(qualifier.status(NATED.contact), 'unknown', 'a contact whose binding is gone is forgotten');
});

t.test('at most maxInFlight pings are outstanding', async (t) => {
  const clock = new ManualClock(0, NOW);
  const bindings = Array.from({ length: 40 }, (_, i) => binding(`sip:u${i}@10.0.0.1`, { transport: 'udp', address: '192.0.2.1', port: 10000 + i }));
  const pending: (() => void)[] = [];
  let inFlight = 0;
  let most = 0;
  const qualifier = new Qualifier({
    store: { snapshot: () => bindings },
    intervalSeconds: 30,
    clock,
    random: new SeededRandom(1),
    logger: new MemoryLogger(),
    maxInFlight: 5,
    sendOptions: () =>
      new Promise((resolve) => {
        inFlight++;
        most = Math.max(most, inFlight);
        pending.push(() => {
          inFlight--;
          resolve('reachable');
        });
      }),
  });
  const round = qualifier.qualifyAll();
  let answered = 0;
  while (answered < 40) {
    await flush();
    const batch = pending.splice(0);
    answered += batch.length;
    for (const f of batch) f();
  }
  await round;
  t.equal(most, 5, 'never more than 5 in flight');
  t.equal(bindings.filter((b) => qualifier.status(b.contact) === 'reachable').length, 40, 'every binding qualified');
});

t.test('qualify off: intervalSeconds 0 schedules nothing', async (t) => {
  const { clock, qualifier } = setup([NATED], {}, 0);
  qualifier.start();
  t.same(clock.pending(), []);
});

interface Sent {
  request: SipRequest;
  dest: Destination;
  handlers: ClientTransactionHandlers;
}

function pinger(opts: { throws?: boolean } = {}) {
  const sent: Sent[] = [];
  let n = 0;
  const transactions = {
    newBranch: () => `z9hG4bK-q${++n}`,
    sendRequest: (request: SipRequest, dest: Destination, handlers: ClientTransactionHandlers) => {
      if (opts.throws) throw new Error('duplicate transaction');
      sent.push({ request, dest, handlers });
      return {};
    },
  };
  const send = optionsPinger(transactions, {
    localAddress: (transport) => (transport === 'udp' ? { address: '203.0.113.1', port: 5060 } : { address: '203.0.113.1', port: 5061 }),
    userAgent: 'hookswitch/1',
    domain: 'example.net',
    random: new SeededRandom(3),
  });
  return { sent, send };
}

t.test('optionsPinger builds an OPTIONS (RFC 3261 §11.1) and sends it to the NAT path', async (t) => {
  const { sent, send } = pinger();
  const dest: Destination = { transport: 'tcp', address: '198.51.100.8', port: 51234 };
  const result = send({ uri: 'sip:bob@10.0.0.6:5060;transport=tcp', destination: dest });
  t.equal(sent.length, 1);
  const { request, dest: d } = sent[0]!;
  t.same(d, dest, 'sent to the given destination');
  t.equal(request.method, 'OPTIONS');
  t.equal(request.uri, 'sip:bob@10.0.0.6:5060;transport=tcp', 'Request-URI is the registered contact');
  const via = parseVia(request.headers.get('via')!);
  t.same([via.transport, via.host, via.port, via.branch], ['TCP', '203.0.113.1', 5061, 'z9hG4bK-q1'], 'Via of the transport used');
  t.equal(via.rport, null, 'rport requested (RFC 3581)');
  t.equal(parseNameAddr(request.headers.get('to')!).uri.host, '10.0.0.6');
  t.match(request.headers.get('from'), /^<sip:hookswitch@example\.net>;tag=\w+$/);
  t.equal(request.headers.get('max-forwards'), '70');
  t.equal(request.headers.get('cseq'), '1 OPTIONS');
  t.equal(request.headers.get('accept'), 'application/sdp', '§11.1: Accept SHOULD be included');
  t.equal(request.headers.get('user-agent'), 'hookswitch/1');
  sent[0]!.handlers.onResponse(createResponse(100, 'Trying'));
  sent[0]!.handlers.onResponse(createResponse(200, 'OK'));
  sent[0]!.handlers.onTimeout();
  t.equal(await result, 'reachable');
});

t.test('optionsPinger outcomes', async (t) => {
  const cases: { name: string; act: (h: ClientTransactionHandlers) => void; want: 'reachable' | 'unreachable' }[] = [
    { name: 'a 200 OK', act: (h) => h.onResponse(createResponse(200, 'OK')), want: 'reachable' },
    { name: 'a 404: the UA answered, so it is alive', act: (h) => h.onResponse(createResponse(404, 'Not Found')), want: 'reachable' },
    { name: 'a 503: alive too', act: (h) => h.onResponse(createResponse(503, 'Service Unavailable')), want: 'reachable' },
    { name: 'Timer F fired', act: (h) => h.onTimeout(), want: 'unreachable' },
    { name: 'a transport error (ICMP unreachable, connection refused)', act: (h) => h.onTransportError(new Error('ECONNREFUSED')), want: 'unreachable' },
  ];
  for (const c of cases) {
    const { sent, send } = pinger();
    const r = send({ uri: 'sip:alice@10.0.0.5', destination: { transport: 'udp', address: '198.51.100.7', port: 40000 } });
    c.act(sent[0]!.handlers);
    t.equal(await r, c.want, c.name);
  }
  const throwing = pinger({ throws: true });
  t.equal(
    await throwing.send({ uri: 'sip:alice@10.0.0.5', destination: { transport: 'udp', address: '198.51.100.7', port: 40000 } }),
    'unreachable',
    'a transaction that cannot start',
  );
  const bad = pinger();
  t.equal(
    await bad.send({ uri: 'not a uri', destination: { transport: 'udp', address: '198.51.100.7', port: 40000 } }),
    'unreachable',
    'a contact that is not a URI',
  );
  t.equal(bad.sent.length, 0);
});
