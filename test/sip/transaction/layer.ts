import t from 'tap';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { MemoryLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { createRequest, createResponse, reasonPhrase, type SipMessage, type SipRequest, type SipResponse } from '../../../src/sip/message/message.ts';
import { parseMessage } from '../../../src/sip/message/parser.ts';
import { buildCancel } from '../../../src/sip/transaction/cancel.ts';
import { serverMatch } from '../../../src/sip/transaction/matching.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import type { Destination, InviteServerTransaction, ServerTransaction, TransactionUser } from '../../../src/sip/transaction/types.ts';

const PEER: Destination = { transport: 'udp', address: '192.0.2.9', port: 5060 };

function setup(extra: Partial<TransactionUser> = {}) {
  const clock = new ManualClock();
  const sent: { at: number; msg: SipMessage; dest: Destination }[] = [];
  const events: string[] = [];
  const txs: ServerTransaction[] = [];
  const logger = new MemoryLogger();
  const user: TransactionUser = {
    onRequest: (req, tx) => {
      events.push(`request ${req.method}`);
      txs.push(tx);
    },
    onAck: (_ack, _src, invite) => events.push(`ack ${invite ? 'in-tx' : 'stray'}`),
    ...extra,
  };
  const layer = new TransactionLayer({
    clock,
    random: new SeededRandom(11),
    logger,
    user,
    send: async (msg, dest) => {
      sent.push({ at: clock.now(), msg, dest });
    },
  });
  return { clock, sent, events, txs, layer, logger };
}

interface ReqOpts {
  branch?: string | null;
  sentBy?: string;
  callId?: string;
  toTag?: string;
  cseq?: number;
  uri?: string;
}

function request(method: string, o: ReqOpts = {}): SipRequest {
  const branch = o.branch === null ? '' : `;branch=${o.branch ?? 'z9hG4bKlayer1'}`;
  return createRequest(method, o.uri ?? 'sip:bob@192.0.2.1', [
    ['Via', `SIP/2.0/UDP ${o.sentBy ?? '192.0.2.9:5060'}${branch}`],
    ['Max-Forwards', '70'],
    ['From', '<sip:alice@example.com>;tag=fa'],
    ['To', '<sip:bob@example.com>' + (o.toTag ? `;tag=${o.toTag}` : '')],
    ['Call-ID', o.callId ?? 'layer-call'],
    ['CSeq', `${o.cseq ?? 1} ${method}`],
  ]);
}

function response(req: SipRequest, status: number, toTag = 'tb', cseqMethod?: string): SipResponse {
  const cseq = req.headers.get('CSeq')!;
  return createResponse(status, reasonPhrase(status), [
    ['Via', req.headers.getAll('Via')[0]!],
    ['From', req.headers.get('From')!],
    ['To', `${req.headers.get('To')!};tag=${toTag}`],
    ['Call-ID', req.headers.get('Call-ID')!],
    ['CSeq', cseqMethod ? `${cseq.split(' ')[0]} ${cseqMethod}` : cseq],
  ]);
}

const wire = (sent: { msg: SipMessage }[]) =>
  sent.map((s) => (s.msg.kind === 'response' ? `${s.msg.status} ${s.msg.headers.get('CSeq')}` : s.msg.method));

t.test('CANCEL is matched to its INVITE server transaction (§9.2) and both complete', async (t) => {
  let seen: { invite: InviteServerTransaction | undefined; cancelTx: ServerTransaction } | undefined;
  const h = setup({
    onCancel: (cancel, invite, cancelTx) => {
      seen = { invite, cancelTx };
      cancelTx.respond(response(cancel, 200, 'tb'));
      invite?.respond(response(invite.request, 487, 'tb'));
    },
  });
  h.layer.receive(request('INVITE'), PEER);
  h.layer.receive(request('CANCEL'), PEER);
  t.ok(seen, 'onCancel called');
  t.equal(seen!.invite, h.txs[0], 'the INVITE transaction with the same branch and sent-by');
  t.equal(seen!.cancelTx.request.method, 'CANCEL');
  t.same(h.events, ['request INVITE'], 'CANCEL is not passed as a new request');
  t.same(wire(h.sent), ['200 1 CANCEL', '487 1 INVITE']);
  h.layer.receive(request('CANCEL'), PEER);
  t.same(wire(h.sent).at(-1), '200 1 CANCEL', 'retransmitted CANCEL answered by its own transaction');
  h.layer.receive(request('ACK', { toTag: 'tb' }), PEER);
  t.equal(h.txs[0]!.state, 'confirmed', 'ACK for the 487 absorbed');
  h.clock.advance(64_000);
  t.equal(h.layer.size(), 0);
  t.same(h.clock.pending(), []);
});

t.test('a CANCEL matching no INVITE is handed up without one', async (t) => {
  const cases = [
    { name: 'no INVITE at all', invite: null },
    { name: 'INVITE with another branch', invite: request('INVITE', { branch: 'z9hG4bKother' }) },
    { name: 'INVITE from another sent-by', invite: request('INVITE', { sentBy: '192.0.2.10:5060' }) },
  ];
  for (const c of cases) {
    let got: string | undefined;
    const h = setup({
      onCancel: (cancel, invite, cancelTx) => {
        got = invite ? 'found' : 'none';
        cancelTx.respond(response(cancel, 481));
      },
    });
    if (c.invite) h.layer.receive(c.invite, PEER);
    h.layer.receive(request('CANCEL'), PEER);
    t.equal(got, 'none', c.name);
    t.same(wire(h.sent).at(-1), '481 1 CANCEL', c.name);
  }
});

t.test('server matching keys (§17.2.3)', async (t) => {
  const base = serverMatch(request('INVITE'));
  const cases: { name: string; req: SipRequest; asMethod?: string; same: boolean }[] = [
    { name: 'retransmission', req: request('INVITE'), same: true },
    { name: 'ACK matches its INVITE', req: request('ACK', { toTag: 'x' }), same: true },
    { name: 'CANCEL as INVITE (§9.2)', req: request('CANCEL'), asMethod: 'INVITE', same: true },
    { name: 'default port equals 5060', req: request('INVITE', { sentBy: '192.0.2.9' }), same: true },
    { name: 'CANCEL is its own transaction', req: request('CANCEL'), same: false },
    { name: 'other branch', req: request('INVITE', { branch: 'z9hG4bKlayer2' }), same: false },
    { name: 'other sent-by port', req: request('INVITE', { sentBy: '192.0.2.9:5070' }), same: false },
    { name: 'branch case matters', req: request('INVITE', { branch: 'z9hG4bKLAYER1' }), same: false },
  ];
  for (const c of cases) t.equal(serverMatch(c.req, c.asMethod).key === base.key, c.same, c.name);
  const host = serverMatch(request('OPTIONS', { sentBy: 'PC.Example.COM' })).key;
  t.equal(serverMatch(request('OPTIONS', { sentBy: 'pc.example.com:5060' })).key, host, 'domain sent-by compared case-insensitively');
});

t.test('RFC 2543 fallback: a branch without the magic cookie matches on the request fields', async (t) => {
  for (const branch of ['1234abcd', null] as const) {
    const name = branch === null ? 'no branch' : 'branch without z9hG4bK';
    const h = setup();
    const inv = () => request('INVITE', { branch });
    h.layer.receive(inv(), PEER);
    const tx = h.txs[0]!;
    tx.respond(response(tx.request, 486, 'legacyTag'));
    h.layer.receive(inv(), PEER);
    t.same(h.events, ['request INVITE'], `${name}: retransmission matched`);
    t.same(wire(h.sent), ['486 1 INVITE', '486 1 INVITE'], `${name}: last response resent`);
    h.layer.receive(request('INVITE', { branch, callId: 'other-call' }), PEER);
    h.layer.receive(request('INVITE', { branch, cseq: 2 }), PEER);
    h.layer.receive(request('INVITE', { branch, uri: 'sip:carol@192.0.2.1' }), PEER);
    t.equal(h.events.length, 4, `${name}: other Call-ID, CSeq or Request-URI are new transactions`);
    h.layer.receive(request('ACK', { branch, toTag: 'wrongTag' }), PEER);
    t.equal(tx.state, 'completed', `${name}: ACK with another To tag does not match`);
    t.same(h.events.at(-1), 'ack stray');
    h.layer.receive(request('ACK', { branch, toTag: 'legacyTag' }), PEER);
    t.equal(tx.state, 'confirmed', `${name}: ACK with the response's To tag matches`);
    for (const other of h.txs.slice(1)) other.respond(response(other.request, 603));
    h.clock.advance(64_000);
    t.equal(h.layer.size(), 0, `${name}: table empty`);
  }
});

t.test('responses reach the client transaction with the same branch and CSeq method (§17.1.3)', async (t) => {
  const h = setup();
  const got: string[] = [];
  const handlers = (label: string) => ({
    onResponse: (r: SipResponse) => got.push(`${label} ${r.status}`),
    onTimeout: () => got.push(`${label} timeout`),
    onTransportError: () => got.push(`${label} error`),
  });
  const invite = request('INVITE', { branch: 'z9hG4bKuac' });
  h.layer.sendRequest(invite, PEER, handlers('invite'));
  const cancel = buildCancel(invite);
  h.layer.sendRequest(cancel, PEER, handlers('cancel'));
  h.layer.receive(response(invite, 180), PEER);
  h.layer.receive(response(cancel, 200), PEER);
  h.layer.receive(response(invite, 487), PEER);
  h.layer.receive(response(request('INVITE', { branch: 'z9hG4bKnone' }), 404), PEER);
  t.same(got, ['invite 180', 'cancel 200', 'invite 487']);
  t.equal(h.layer.counters().strayResponses, 1, 'the unmatched 404 is dropped and counted');
});

t.test('createCancel copies what §9.1 requires', async (t) => {
  const invite = createRequest('INVITE', 'sip:bob@example.com;transport=udp', [
    ['Via', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKc1'],
    ['Via', 'SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKbelow'],
    ['Route', '<sip:edge.example.com;lr>'],
    ['Max-Forwards', '70'],
    ['From', '<sip:a@example.com>;tag=1'],
    ['To', '<sip:bob@example.com>'],
    ['Call-ID', 'cc'],
    ['CSeq', '314 INVITE'],
    ['Require', '100rel'],
    ['Content-Type', 'application/sdp'],
  ]);
  const c = buildCancel(invite);
  t.equal(c.method, 'CANCEL');
  t.equal(c.uri, invite.uri);
  t.same(c.headers.getAll('Via'), ['SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKc1']);
  t.same(c.headers.getAll('Route'), ['<sip:edge.example.com;lr>']);
  t.equal(c.headers.get('CSeq'), '314 CANCEL');
  for (const name of ['From', 'To', 'Call-ID']) t.equal(c.headers.get(name), invite.headers.get(name), name);
  t.notOk(c.headers.has('Require'), 'no Require in a CANCEL');
  t.notOk(c.headers.has('Content-Type'));
});

t.test('stray messages: 2xx to INVITE goes to onStrayResponse, stray ACK to onAck, malformed dropped', async (t) => {
  const strays: number[] = [];
  const h = setup({ onStrayResponse: (r) => strays.push(r.status) });
  h.layer.receive(response(request('INVITE'), 200), PEER);
  h.layer.receive(response(request('INVITE'), 486), PEER);
  h.layer.receive(response(request('BYE'), 200), PEER);
  h.layer.receive(request('ACK', { branch: 'z9hG4bK2xxack', toTag: 't' }), PEER);
  const noVia = request('OPTIONS');
  noVia.headers.delete('Via');
  const badCseq = request('OPTIONS', { branch: null });
  badCseq.headers.set('CSeq', 'one OPTIONS');
  h.layer.receive(noVia, PEER);
  h.layer.receive(badCseq, PEER);
  t.same(strays, [200]);
  t.same(h.events, ['ack stray']);
  t.same(h.layer.counters(), { strayResponses: 2, malformed: 2, unhandled: 0 });
  t.ok(h.logger.records.some((r) => r.level === 'warn' && r.fields['code'] === 'ERR_MISSING_HEADER'), 'reason logged');
  t.equal(h.layer.size(), 0, 'nothing created');
});

t.test('without a TU handler a new request is dropped, counted, and leaves no transaction', async (t) => {
  const clock = new ManualClock();
  const layer = new TransactionLayer({ clock, random: new SeededRandom(), logger: new MemoryLogger(), send: async () => {} });
  layer.receive(request('OPTIONS'), PEER);
  layer.receive(request('CANCEL'), PEER);
  t.equal(layer.size(), 0);
  t.equal(layer.counters().unhandled, 2);
});

t.test('the table empties after every timer of a mixed workload has run', async (t) => {
  const h = setup();
  const noop = { onResponse: () => {}, onTimeout: () => {}, onTransportError: () => {} };
  for (let i = 0; i < 5; i++) {
    const b = `z9hG4bKmix${i}`;
    h.layer.sendRequest(request('INVITE', { branch: b }), PEER, noop);
    h.layer.sendRequest(request('OPTIONS', { branch: b + 'o' }), PEER, noop);
    h.layer.receive(request('INVITE', { branch: b + 's', sentBy: '192.0.2.50:5060' }), PEER);
    h.layer.receive(request('MESSAGE', { branch: b + 'm', sentBy: '192.0.2.50:5060' }), PEER);
  }
  t.equal(h.layer.size(), 20);
  h.layer.receive(response(request('INVITE', { branch: 'z9hG4bKmix0' }), 200), PEER);
  h.layer.receive(response(request('INVITE', { branch: 'z9hG4bKmix1' }), 500), PEER);
  h.txs.forEach((tx, i) => tx.respond(response(tx.request, i % 3 === 0 ? 200 : i % 3 === 1 ? 480 : 183)));
  h.clock.advance(64_000);
  t.ok(h.layer.size() > 0, 'INVITE server transactions with only a 183 wait for the TU');
  for (const tx of h.txs) if (tx.state === 'proceeding') tx.respond(response(tx.request, 603));
  h.clock.advance(64_000);
  t.equal(h.layer.size(), 0);
  t.same(h.clock.pending(), [], 'no timer left behind');
});

t.test('a parsed SIPp-style INVITE over UDP flows through the layer', async (t) => {
  const text =
    'INVITE sip:service@192.0.2.1:5060 SIP/2.0\r\n' +
    'Via: SIP/2.0/UDP 192.0.2.9:5061;branch=z9hG4bK-4711-1-0\r\n' +
    'From: sipp <sip:sipp@192.0.2.9:5061>;tag=4711SIPpTag001\r\n' +
    'To: service <sip:service@192.0.2.1:5060>\r\n' +
    'Call-ID: 1-4711@192.0.2.9\r\n' +
    'CSeq: 1 INVITE\r\n' +
    'Contact: sip:sipp@192.0.2.9:5061\r\n' +
    'Max-Forwards: 70\r\n' +
    'Content-Length: 0\r\n\r\n';
  const h = setup();
  const src: Destination = { transport: 'udp', address: '192.0.2.9', port: 5061 };
  h.layer.receive(parseMessage(Buffer.from(text, 'latin1')), src);
  h.layer.receive(parseMessage(Buffer.from(text, 'latin1')), src);
  t.same(h.events, ['request INVITE'], 'retransmission matched after parsing');
  h.clock.advance(200);
  t.same(wire(h.sent), ['100 1 INVITE']);
  t.same(h.sent[0]!.dest, { transport: 'udp', address: '192.0.2.9', port: 5061 });
});

t.test('close() ends every transaction and cancels every timer without calling the TU', async (t) => {
  const h = setup();
  const got: string[] = [];
  const handlers = { onResponse: () => got.push('response'), onTimeout: () => got.push('timeout'), onTransportError: () => got.push('error') };
  h.layer.sendRequest(request('INVITE', { branch: 'z9hG4bKc1' }), PEER, handlers);
  h.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKc2' }), PEER, handlers);
  h.layer.receive(request('INVITE', { branch: 'z9hG4bKs1', sentBy: '192.0.2.77' }), PEER);
  h.layer.receive(request('INVITE', { branch: '2543style', sentBy: '192.0.2.77' }), PEER);
  t.equal(h.layer.size(), 4);
  h.layer.close();
  t.equal(h.layer.size(), 0);
  t.same(h.clock.pending(), []);
  h.clock.advance(100_000);
  t.same(got, []);
});
