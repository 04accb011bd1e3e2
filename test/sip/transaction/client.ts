import t from 'tap';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { nullLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { createRequest, createResponse, reasonPhrase, type SipMessage, type SipRequest, type SipResponse } from '../../../src/sip/message/message.ts';
import { newBranch } from '../../../src/sip/transaction/matching.ts';
import { timerValues, DEFAULT_TIMER_SETTINGS } from '../../../src/sip/transaction/timers.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import { TransactionError, type Destination } from '../../../src/sip/transaction/types.ts';

const UDP: Destination = { transport: 'udp', address: '192.0.2.2', port: 5060 };
const TCP: Destination = { transport: 'tcp', address: '192.0.2.2', port: 5060 };

function setup(failSend = false) {
  const clock = new ManualClock();
  const sent: { at: number; msg: SipMessage; dest: Destination }[] = [];
  const layer = new TransactionLayer({
    clock,
    random: new SeededRandom(7),
    logger: nullLogger,
    send: async (msg, dest) => {
      sent.push({ at: clock.now(), msg, dest });
      if (failSend) throw new Error('ECONNREFUSED');
    },
  });
  const events: string[] = [];
  const responses: SipResponse[] = [];
  const handlers = {
    onResponse: (r: SipResponse) => {
      responses.push(r);
      events.push(`response ${r.status} @${clock.now()}`);
    },
    onTimeout: () => events.push(`timeout @${clock.now()}`),
    onTransportError: (e: unknown) => events.push(`transport-error ${(e as Error).message}`),
  };
  return { clock, sent, layer, events, responses, handlers };
}

function request(method: string, branch = 'z9hG4bKclient1', viaTransport = 'UDP'): SipRequest {
  return createRequest(method, 'sip:bob@example.com', [
    ['Via', `SIP/2.0/${viaTransport} 192.0.2.1:5060;branch=${branch};rport`],
    ['Route', '<sip:p1.example.com;lr>, <sip:p2.example.com;lr>'],
    ['Max-Forwards', '70'],
    ['From', 'Alice <sip:alice@example.com>;tag=a1'],
    ['To', 'Bob <sip:bob@example.com>'],
    ['Call-ID', 'call-1@192.0.2.1'],
    ['CSeq', `7 ${method}`],
    ['Contact', '<sip:alice@192.0.2.1>'],
  ]);
}

function response(req: SipRequest, status: number, toTag?: string): SipResponse {
  const to = req.headers.get('To')! + (toTag ? `;tag=${toTag}` : '');
  return createResponse(status, reasonPhrase(status), [
    ['Via', req.headers.getAll('Via')[0]! + ';received=192.0.2.1'],
    ['From', req.headers.get('From')!],
    ['To', to],
    ['Call-ID', req.headers.get('Call-ID')!],
    ['CSeq', req.headers.get('CSeq')!],
  ]);
}

const times = (sent: { at: number; msg: SipMessage }[], method: string) =>
  sent.filter((s) => s.msg.kind === 'request' && s.msg.method === method).map((s) => s.at);

t.test('timer values derive from T1/T2/T4 (RFC 3261 Table 4, RFC 6026)', async (t) => {
  const cases = [
    { name: 'unreliable', reliable: false, want: { A: 500, B: 32000, D: 32000, E: 500, F: 32000, G: 500, H: 32000, I: 5000, J: 32000, K: 5000, L: 32000, M: 32000 } },
    { name: 'reliable', reliable: true, want: { A: 500, B: 32000, D: 0, E: 500, F: 32000, G: 500, H: 32000, I: 0, J: 0, K: 0, L: 32000, M: 32000 } },
  ];
  for (const c of cases) {
    t.match(timerValues(DEFAULT_TIMER_SETTINGS, c.reliable), { T1: 500, T2: 4000, T4: 5000, ...c.want }, c.name);
  }
});

t.test('newBranch starts with the magic cookie and comes from the injected Random', async (t) => {
  const a = newBranch(new SeededRandom(1));
  t.match(a, /^z9hG4bK[a-z0-9]{16}$/);
  t.equal(newBranch(new SeededRandom(1)), a, 'same seed, same branch');
  t.not(newBranch(new SeededRandom(2)), a);
});

t.test('INVITE client over UDP: Timer A doubles from T1, Timer B times out at 64*T1 (§17.1.1.2)', async (t) => {
  const { clock, sent, layer, events, handlers } = setup();
  const tx = layer.sendRequest(request('INVITE'), UDP, handlers);
  t.equal(tx.state, 'calling');
  clock.advance(31_999);
  t.same(events, [], 'no timeout before 32 s');
  clock.advance(1);
  t.same(times(sent, 'INVITE'), [0, 500, 1500, 3500, 7500, 15500, 31500]);
  t.ok(sent.every((s) => s.dest === UDP));
  t.same(events, ['timeout @32000']);
  t.equal(tx.state, 'terminated');
  t.equal(layer.size(), 0);
  t.same(clock.pending(), []);
});

t.test('INVITE client over TCP: no retransmission, Timer B still 64*T1', async (t) => {
  const { clock, sent, layer, events, handlers } = setup();
  layer.sendRequest(request('INVITE', 'z9hG4bKtcp', 'TCP'), TCP, handlers);
  clock.advance(40_000);
  t.same(times(sent, 'INVITE'), [0]);
  t.same(events, ['timeout @32000']);
  t.equal(layer.size(), 0);
});

t.test('INVITE client: a provisional response stops retransmissions and Timer B (§17.1.1.2)', async (t) => {
  const { clock, sent, layer, events, handlers } = setup();
  const req = request('INVITE');
  const tx = layer.sendRequest(req, UDP, handlers);
  clock.advance(600);
  layer.receive(response(req, 180, 'b1'), UDP);
  t.equal(tx.state, 'proceeding');
  clock.advance(100_000);
  t.same(times(sent, 'INVITE'), [0, 500]);
  t.same(events, ['response 180 @600'], 'no timeout in Proceeding');
  t.equal(layer.size(), 1, 'waits for the final response');
});

t.test('INVITE client: 486 is ACKed by the transaction with the §17.1.1.3 headers', async (t) => {
  const { clock, sent, layer, events, handlers } = setup();
  const req = request('INVITE');
  const tx = layer.sendRequest(req, UDP, handlers);
  clock.advance(100);
  const busy = response(req, 486, 'b486');
  layer.receive(busy, UDP);
  t.equal(tx.state, 'completed');
  const acks = sent.filter((s) => s.msg.kind === 'request' && s.msg.method === 'ACK');
  t.equal(acks.length, 1);
  const ack = acks[0]!.msg as SipRequest;
  t.equal(acks[0]!.dest, UDP, 'sent where the INVITE went');
  t.equal(ack.uri, req.uri, 'same Request-URI');
  t.same(ack.headers.getAll('Via'), ['SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKclient1;rport'], 'only the top Via of the INVITE');
  t.same(ack.headers.getAll('Route'), ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>'], 'Route set of the INVITE');
  t.equal(ack.headers.get('From'), req.headers.get('From'));
  t.equal(ack.headers.get('To'), 'Bob <sip:bob@example.com>;tag=b486', 'To of the response, with its tag');
  t.equal(ack.headers.get('Call-ID'), 'call-1@192.0.2.1');
  t.equal(ack.headers.get('CSeq'), '7 ACK');
  t.equal(ack.headers.get('Max-Forwards'), '70');
  t.notOk(ack.headers.has('Contact'));

  // Retransmitted 486: ACK again, not passed to the TU.
  clock.advance(1000);
  layer.receive(response(req, 486, 'b486'), UDP);
  t.same(times(sent, 'ACK'), [100, 1100]);
  t.same(events, ['response 486 @100']);
  t.same(times(sent, 'INVITE'), [0], 'INVITE retransmission stopped (Timer A cancelled)');

  // Timer D: 32 s on UDP.
  clock.advance(32_000 - 1001);
  t.equal(layer.size(), 1);
  clock.advance(1);
  t.equal(tx.state, 'terminated');
  t.equal(layer.size(), 0);
  t.same(events, ['response 486 @100'], 'no timeout reported after a final response');
});

t.test('INVITE client over TCP: Timer D is zero', async (t) => {
  const { layer, handlers, sent } = setup();
  const req = request('INVITE', 'z9hG4bKtcp486', 'TCP');
  const tx = layer.sendRequest(req, TCP, handlers);
  layer.receive(response(req, 603, 'x'), TCP);
  t.equal(tx.state, 'terminated');
  t.equal(layer.size(), 0);
  t.same(times(sent, 'ACK'), [0]);
});

t.test('INVITE client: 2xx moves to Accepted, 2xx retransmissions reach the TU, Timer M ends it (RFC 6026)', async (t) => {
  const { clock, sent, layer, events, handlers } = setup();
  const req = request('INVITE');
  const tx = layer.sendRequest(req, UDP, handlers);
  const strays: number[] = [];
  layer.setUser({ onRequest: () => t.fail('no request expected'), onStrayResponse: (r) => strays.push(r.status) });
  clock.advance(200);
  layer.receive(response(req, 200, 'ok1'), UDP);
  t.equal(tx.state, 'accepted');
  clock.advance(300);
  layer.receive(response(req, 200, 'ok1'), UDP);
  layer.receive(response(req, 200, 'fork2'), UDP);
  layer.receive(response(req, 180, 'late'), UDP);
  t.same(events, ['response 200 @200', 'response 200 @500', 'response 200 @500'], 'each 2xx passed up, the late 1xx absorbed');
  t.same(times(sent, 'ACK'), [], 'the transaction never ACKs a 2xx');
  t.same(times(sent, 'INVITE'), [0], 'no retransmission after the 2xx');
  clock.advance(32_000 - 301);
  t.equal(layer.size(), 1);
  clock.advance(1);
  t.equal(tx.state, 'terminated', 'Timer M = 64*T1 after the first 2xx');
  t.equal(layer.size(), 0);
  layer.receive(response(req, 200, 'ok1'), UDP);
  t.same(strays, [200], 'a 2xx after Timer M goes to onStrayResponse');
});

t.test('non-INVITE client over UDP: Timer E doubles up to T2, Timer F times out (§17.1.2.2)', async (t) => {
  const { clock, sent, layer, events, handlers } = setup();
  layer.sendRequest(request('OPTIONS'), UDP, handlers);
  clock.advance(40_000);
  t.same(times(sent, 'OPTIONS'), [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
  t.same(events, ['timeout @32000']);
  t.equal(layer.size(), 0);
  t.same(clock.pending(), []);
});

t.test('non-INVITE client over TCP: no retransmission, Timer F 64*T1', async (t) => {
  const { clock, sent, layer, events, handlers } = setup();
  layer.sendRequest(request('REGISTER', 'z9hG4bKreg', 'TCP'), TCP, handlers);
  clock.advance(40_000);
  t.same(times(sent, 'REGISTER'), [0]);
  t.same(events, ['timeout @32000']);
});

t.test('non-INVITE client: after a 1xx Timer E fires every T2 (§17.1.2.2)', async (t) => {
  const { clock, sent, layer, events, handlers } = setup();
  const req = request('BYE');
  const tx = layer.sendRequest(req, UDP, handlers);
  clock.advance(600);
  layer.receive(response(req, 100), UDP);
  t.equal(tx.state, 'proceeding');
  clock.advance(40_000);
  t.same(times(sent, 'BYE'), [0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500]);
  t.same(events, ['response 100 @600', 'timeout @32000'], 'Timer F fires in Proceeding too');
});

t.test('non-INVITE client: final response → Completed, retransmissions absorbed, Timer K', async (t) => {
  const cases = [
    { name: 'UDP: K = T4', dest: UDP, via: 'UDP', k: 5000 },
    { name: 'TCP: K = 0', dest: TCP, via: 'TCP', k: 0 },
  ];
  for (const c of cases) {
    const { clock, layer, events, handlers, sent } = setup();
    const req = request('OPTIONS', 'z9hG4bKopt' + c.via, c.via);
    const tx = layer.sendRequest(req, c.dest, handlers);
    clock.advance(50);
    layer.receive(response(req, 200, 't'), c.dest);
    layer.receive(response(req, 200, 't'), c.dest);
    t.same(events, ['response 200 @50'], `${c.name}: one response to the TU`);
    if (c.k > 0) {
      t.equal(tx.state, 'completed', c.name);
      clock.advance(c.k - 1);
      t.equal(layer.size(), 1, c.name);
      clock.advance(1);
    }
    t.equal(tx.state, 'terminated', c.name);
    t.equal(layer.size(), 0, c.name);
    clock.advance(40_000);
    t.equal(times(sent, 'OPTIONS').length, 1, `${c.name}: no retransmission after the final response`);
  }
});

t.test('a transport error is reported to the TU and terminates the client transaction (§17.1.4)', async (t) => {
  for (const method of ['INVITE', 'MESSAGE']) {
    const { clock, layer, events, handlers } = setup(true);
    const tx = layer.sendRequest(request(method), UDP, handlers);
    await new Promise((r) => setImmediate(r));
    t.same(events, ['transport-error ECONNREFUSED'], method);
    t.equal(tx.state, 'terminated', method);
    t.equal(layer.size(), 0, method);
    clock.advance(64_000);
    t.same(events, ['transport-error ECONNREFUSED'], `${method}: no timeout after the error`);
  }
});

t.test('sendRequest rejects requests it cannot make a transaction of', async (t) => {
  const { layer, handlers } = setup();
  const noBranch = request('OPTIONS');
  noBranch.headers.set('Via', 'SIP/2.0/UDP 192.0.2.1:5060');
  const cases: { name: string; req: SipRequest; code: string }[] = [
    { name: 'no branch', req: noBranch, code: 'ERR_MISSING_BRANCH' },
    { name: 'RFC 2543 branch', req: request('OPTIONS', '1234'), code: 'ERR_MISSING_BRANCH' },
    { name: 'ACK', req: request('ACK'), code: 'ERR_ACK_NOT_A_TRANSACTION' },
  ];
  for (const c of cases) {
    t.throws(() => layer.sendRequest(c.req, UDP, handlers), { name: 'TransactionError', code: c.code }, c.name);
  }
  layer.sendRequest(request('OPTIONS', 'z9hG4bKdup'), UDP, handlers);
  t.throws(() => layer.sendRequest(request('OPTIONS', 'z9hG4bKdup'), UDP, handlers), { code: 'ERR_DUPLICATE_TRANSACTION' });
  t.equal(layer.size(), 1);
});

t.test('an impossible state transition throws like SIP.js stateTransition', async (t) => {
  const { layer, handlers } = setup();
  const req = request('INVITE', 'z9hG4bKimp', 'TCP');
  const tx = layer.sendRequest(req, TCP, handlers);
  layer.receive(response(req, 486, 'x'), TCP);
  const transition = (tx as unknown as { transition(s: string): void }).transition.bind(tx);
  t.throws(() => transition('proceeding'), new TransactionError('ERR_INVALID_STATE_TRANSITION', 'Invalid state transition from terminated to proceeding'));
});
