import t from 'tap';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { nullLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { createRequest, createResponse, reasonPhrase, type SipMessage, type SipRequest, type SipResponse } from '../../../src/sip/message/message.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import type { Destination, ServerTransaction, TransactionUser } from '../../../src/sip/transaction/types.ts';

const UDP: Destination = { transport: 'udp', address: '198.51.100.7', port: 5062 };
const TCP: Destination = { transport: 'tcp', address: '198.51.100.7', port: 40312, connectionId: 'c9' };

interface Harness {
  clock: ManualClock;
  layer: TransactionLayer;
  sent: { at: number; msg: SipMessage; dest: Destination }[];
  events: string[];
  txs: ServerTransaction[];
}

/** A layer whose TU records events and answers each request with `answer` (if given) at once. */
function setup(answer?: (req: SipRequest, tx: ServerTransaction) => void, failSend = false): Harness {
  const clock = new ManualClock();
  const sent: Harness['sent'] = [];
  const events: string[] = [];
  const txs: ServerTransaction[] = [];
  const user: TransactionUser = {
    onRequest: (req, tx) => {
      events.push(`request ${req.method} @${clock.now()}`);
      txs.push(tx);
      answer?.(req, tx);
    },
    onAck: (ack, _src, invite) => events.push(`ack ${invite ? 'in-tx' : 'stray'} @${clock.now()}`),
    onServerTimeout: (tx) => events.push(`timeout ${tx.request.method} @${clock.now()}`),
    onServerTransportError: (_tx, e) => events.push(`transport-error ${(e as Error).message}`),
  };
  const layer = new TransactionLayer({
    clock,
    random: new SeededRandom(3),
    logger: nullLogger,
    user,
    send: async (msg, dest) => {
      sent.push({ at: clock.now(), msg, dest });
      if (failSend) throw new Error('EHOSTUNREACH');
    },
  });
  return { clock, layer, sent, events, txs };
}

function request(method: string, opts: { branch?: string; transport?: string; cseqMethod?: string; toTag?: string } = {}): SipRequest {
  const transport = opts.transport ?? 'UDP';
  return createRequest(method, 'sip:gw@203.0.113.5', [
    ['Via', `SIP/2.0/${transport} 198.51.100.7:5062;branch=${opts.branch ?? 'z9hG4bKsrv1'}`],
    ['Via', 'SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKfirst'],
    ['Max-Forwards', '69'],
    ['From', '<sip:caller@example.org>;tag=f1'],
    ['To', '<sip:gw@203.0.113.5>' + (opts.toTag ? `;tag=${opts.toTag}` : '')],
    ['Call-ID', 'srv-call@198.51.100.7'],
    ['CSeq', `3 ${opts.cseqMethod ?? method}`],
    ['Timestamp', '54'],
  ]);
}

function response(req: SipRequest, status: number, toTag = 'gw1'): SipResponse {
  return createResponse(status, reasonPhrase(status), [
    ...req.headers.getAll('Via').map((v) => ['Via', v] as const),
    ['From', req.headers.get('From')!],
    ['To', status === 100 ? req.headers.get('To')! : `${req.headers.get('To')!};tag=${toTag}`],
    ['Call-ID', req.headers.get('Call-ID')!],
    ['CSeq', req.headers.get('CSeq')!],
  ]);
}

const statuses = (h: Harness) => h.sent.map((s) => (s.msg.kind === 'response' ? `${s.msg.status}@${s.at}` : `${s.msg.method}@${s.at}`));

t.test('INVITE server: 100 Trying after 200 ms when the TU has not answered (§17.2.1)', async (t) => {
  const h = setup();
  h.layer.receive(request('INVITE'), UDP);
  h.clock.advance(199);
  t.same(statuses(h), []);
  h.clock.advance(1);
  t.same(statuses(h), ['100@200']);
  const trying = h.sent[0]!.msg as SipResponse;
  t.equal(trying.reason, 'Trying');
  t.same(trying.headers.getAll('Via'), request('INVITE').headers.getAll('Via'), 'every Via copied');
  t.equal(trying.headers.get('To'), '<sip:gw@203.0.113.5>', 'no To tag added to a 100');
  t.equal(trying.headers.get('CSeq'), '3 INVITE');
  t.equal(trying.headers.get('Timestamp'), '54', 'Timestamp echoed (§8.2.6.1)');
  t.same(h.sent[0]!.dest, { transport: 'udp', address: '198.51.100.7', port: 5062 });
});

t.test('INVITE server: no 100 Trying when the TU answers within 200 ms', async (t) => {
  const h = setup((req, tx) => tx.respond(response(req, 180)));
  h.layer.receive(request('INVITE'), UDP);
  h.clock.advance(1000);
  t.same(statuses(h), ['180@0']);
});

t.test('INVITE server: a retransmitted INVITE gets the last provisional response again', async (t) => {
  const h = setup();
  const req = request('INVITE');
  h.layer.receive(req, UDP);
  const tx = h.txs[0]!;
  h.clock.advance(250);
  tx.respond(response(req, 180));
  tx.respond(response(req, 183));
  h.clock.advance(250);
  h.layer.receive(request('INVITE'), UDP);
  t.same(statuses(h), ['100@200', '180@250', '183@250', '183@500']);
  t.same(h.events, ['request INVITE @0'], 'the retransmission does not reach the TU');
  t.equal(tx.state, 'proceeding');
});

t.test('INVITE server over UDP: 486 retransmitted by Timer G until the ACK, ACK absorbed, Timer I', async (t) => {
  const h = setup((req, tx) => tx.respond(response(req, 486)));
  h.layer.receive(request('INVITE'), UDP);
  const tx = h.txs[0]!;
  t.equal(tx.state, 'completed');
  h.clock.advance(12_000);
  t.same(statuses(h), ['486@0', '486@500', '486@1500', '486@3500', '486@7500', '486@11500'], 'G doubles from T1 and caps at T2');
  h.layer.receive(request('INVITE'), UDP);
  t.same(statuses(h).at(-1), '486@12000', 'a retransmitted INVITE gets the 486 again');
  h.layer.receive(request('ACK'), UDP);
  t.equal(tx.state, 'confirmed');
  h.layer.receive(request('ACK'), UDP);
  h.clock.advance(4999);
  t.equal(statuses(h).length, 7, 'no retransmission after the ACK');
  t.equal(h.layer.size(), 1, 'Timer I still running');
  h.clock.advance(1);
  t.equal(tx.state, 'terminated', 'Timer I = T4');
  t.equal(h.layer.size(), 0);
  t.same(h.events, ['request INVITE @0'], 'ACKs absorbed, no timeout');
});

t.test('INVITE server: Timer H ends the transaction when no ACK arrives and tells the TU', async (t) => {
  const h = setup((req, tx) => tx.respond(response(req, 404)));
  h.layer.receive(request('INVITE'), UDP);
  h.clock.advance(31_999);
  t.same(h.events, ['request INVITE @0']);
  h.clock.advance(1);
  t.same(h.events, ['request INVITE @0', 'timeout INVITE @32000']);
  t.same(statuses(h), ['404@0', '404@500', '404@1500', '404@3500', '404@7500', '404@11500', '404@15500', '404@19500', '404@23500', '404@27500', '404@31500']);
  t.equal(h.layer.size(), 0);
  t.same(h.clock.pending(), []);
});

t.test('INVITE server over TCP: no Timer G, Timer I is zero', async (t) => {
  const h = setup((req, tx) => tx.respond(response(req, 486)));
  h.layer.receive(request('INVITE', { transport: 'TCP' }), TCP);
  h.clock.advance(10_000);
  t.same(statuses(h), ['486@0']);
  t.same(h.sent[0]!.dest, { transport: 'tcp', address: '198.51.100.7', port: 5062, connectionId: 'c9' }, 'response on the connection the request came on');
  h.layer.receive(request('ACK', { transport: 'TCP' }), TCP);
  t.equal(h.txs[0]!.state, 'terminated');
  t.equal(h.layer.size(), 0);
});

t.test('INVITE server: 2xx → Accepted, INVITE retransmissions absorbed, ACK passed up, Timer L (RFC 6026)', async (t) => {
  const h = setup((req, tx) => tx.respond(response(req, 200)));
  h.layer.receive(request('INVITE'), UDP);
  const tx = h.txs[0]!;
  t.equal(tx.state, 'accepted');
  h.layer.receive(request('INVITE'), UDP);
  t.same(statuses(h), ['200@0'], 'retransmitted INVITE absorbed');
  h.clock.advance(500);
  tx.respond(response(request('INVITE'), 200));
  t.same(statuses(h), ['200@0', '200@500'], "the TU's 2xx retransmission goes out");
  h.layer.receive(request('ACK'), UDP);
  t.same(h.events, ['request INVITE @0', 'ack in-tx @500']);
  h.clock.advance(31_499);
  t.equal(h.layer.size(), 1);
  h.clock.advance(1);
  t.equal(tx.state, 'terminated');
  t.equal(h.layer.size(), 0);
  h.layer.receive(request('ACK'), UDP);
  t.same(h.events.at(-1), 'ack stray @32000', 'after Timer L an ACK is stray');
});

t.test('non-INVITE server: Trying absorbs, Proceeding and Completed resend, Timer J (§17.2.2)', async (t) => {
  const h = setup();
  const req = request('OPTIONS');
  h.layer.receive(req, UDP);
  const tx = h.txs[0]!;
  h.layer.receive(request('OPTIONS'), UDP);
  t.same(statuses(h), [], 'retransmission in Trying discarded');
  t.equal(tx.state, 'trying');
  tx.respond(response(req, 100));
  t.equal(tx.state, 'proceeding');
  h.layer.receive(request('OPTIONS'), UDP);
  t.same(statuses(h), ['100@0', '100@0'], 'last provisional resent');
  h.clock.advance(10);
  tx.respond(response(req, 200));
  t.equal(tx.state, 'completed');
  h.clock.advance(10);
  h.layer.receive(request('OPTIONS'), UDP);
  tx.respond(response(req, 500));
  t.same(statuses(h), ['100@0', '100@0', '200@10', '200@20'], 'final resent; a second final discarded');
  t.same(h.events, ['request OPTIONS @0']);
  h.clock.advance(32_000 - 11);
  t.equal(h.layer.size(), 1);
  h.clock.advance(1);
  t.equal(tx.state, 'terminated', 'Timer J = 64*T1 on UDP');
  t.equal(h.layer.size(), 0);
});

t.test('non-INVITE server over TCP: Timer J is zero', async (t) => {
  const h = setup((req, tx) => tx.respond(response(req, 200)));
  h.layer.receive(request('BYE', { transport: 'TCP' }), TCP);
  t.equal(h.txs[0]!.state, 'terminated');
  t.equal(h.layer.size(), 0);
});

t.test('a transport error on a response is reported and terminates the server transaction (§17.2.4)', async (t) => {
  const h = setup((req, tx) => tx.respond(response(req, 486)), true);
  h.layer.receive(request('INVITE'), UDP);
  await new Promise((r) => setImmediate(r));
  t.same(h.events, ['request INVITE @0', 'transport-error EHOSTUNREACH']);
  t.equal(h.layer.size(), 0);
  h.clock.advance(64_000);
  t.equal(h.sent.length, 1, 'no Timer G retransmission after the error');
});

t.test('respond() checks the status and ignores responses after termination', async (t) => {
  const h = setup();
  const req = request('MESSAGE', { transport: 'TCP' });
  h.layer.receive(req, TCP);
  const tx = h.txs[0]!;
  t.throws(() => tx.respond(createResponse(99, 'x')), { code: 'ERR_BAD_RESPONSE' });
  t.throws(() => tx.respond(createResponse(700, 'x')), { code: 'ERR_BAD_RESPONSE' });
  tx.respond(response(req, 202));
  tx.respond(response(req, 200));
  t.same(statuses(h), ['202@0']);
});

t.test('responses go where §18.2.2 / RFC 3581 say, computed from the top Via and the source', async (t) => {
  const source: Destination = { transport: 'udp', address: '198.51.100.7', port: 33000 };
  const cases: { name: string; via: string; src: Destination; want: Destination }[] = [
    { name: 'rport: source address and port', via: 'SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa', src: source, want: { transport: 'udp', address: '198.51.100.7', port: 33000 } },
    { name: 'received: that address, sent-by port', via: 'SIP/2.0/UDP 10.0.0.1:5070;received=198.51.100.7;branch=z9hG4bKa', src: source, want: { transport: 'udp', address: '198.51.100.7', port: 5070 } },
    { name: 'sent-by without port: 5060', via: 'SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKa', src: source, want: { transport: 'udp', address: '198.51.100.7', port: 5060 } },
    { name: 'TCP: the connection the request came on', via: 'SIP/2.0/TCP 10.0.0.1:5060;received=198.51.100.7;branch=z9hG4bKa', src: TCP, want: { transport: 'tcp', address: '198.51.100.7', port: 5060, connectionId: 'c9' } },
  ];
  for (const c of cases) {
    const h = setup((req, tx) => tx.respond(response(req, 200)));
    const req = request('OPTIONS');
    req.headers.set('Via', c.via);
    h.layer.receive(req, c.src);
    t.same(h.txs[0]!.responseDestination, c.want, c.name);
    t.same(h.sent[0]!.dest, c.want, `${c.name}: the response was sent there`);
  }
});
