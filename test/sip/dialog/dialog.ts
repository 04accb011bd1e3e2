import t from 'tap';
import { createRequest, createResponse } from '../../../src/sip/message/message.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/message/message.ts';
import { serializeUri } from '../../../src/sip/message/uri.ts';
import { Dialog } from '../../../src/sip/dialog/dialog.ts';
import { DialogTable, classifyInDialog } from '../../../src/sip/dialog/dialog-table.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';

type H = [string, string][];

const ALICE = '"Alice" <sip:alice@atlanta.example.com>;tag=a73kszlfl';
const BOB = 'Bob <sip:bob@biloxi.example.com>';

function invite(extra: H = [], uri = 'sip:bob@biloxi.example.com'): SipRequest {
  return createRequest('INVITE', uri, [
    ['Via', 'SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds'],
    ['Max-Forwards', '70'],
    ['To', BOB],
    ['From', ALICE],
    ['Call-ID', 'a84b4c76e66710'],
    ['CSeq', '314159 INVITE'],
    ['Contact', '<sip:alice@pc33.atlanta.example.com>'],
    ...extra,
  ]);
}

function response(status: number, extra: H = [], opts: { toTag?: string | null; cseq?: string } = {}): SipResponse {
  const tag = opts.toTag === undefined ? '8321234356' : opts.toTag;
  return createResponse(status, 'X', [
    ['Via', 'SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds'],
    ['To', tag === null ? BOB : `${BOB};tag=${tag}`],
    ['From', ALICE],
    ['Call-ID', 'a84b4c76e66710'],
    ['CSeq', opts.cseq ?? '314159 INVITE'],
    ...extra,
  ]);
}

const RR: H = [
  ['Record-Route', '<sip:p1.example.com;lr>'],
  ['Record-Route', '<sip:p2.example.com;lr>, <sip:p3.example.com;lr>'],
];

function uac(status = 200, extra: H = [['Contact', '<sip:bob@192.0.2.4>'], ...RR]): Dialog {
  return Dialog.asUac(invite(), response(status, extra));
}

/** A request from the peer in an established UAS dialog (their tag in From, ours in To). */
function peerRequest(method: string, cseq: number, extra: H = []): SipRequest {
  return createRequest(method, 'sip:gw@192.0.2.1', [
    ['To', `${BOB};tag=ourtag`],
    ['From', ALICE],
    ['Call-ID', 'a84b4c76e66710'],
    ['CSeq', `${cseq} ${method}`],
    ...extra,
  ]);
}

function uas(state: 'early' | 'confirmed' = 'confirmed', extra: H = RR): Dialog {
  return Dialog.asUas(invite(extra), 'ourtag', '<sip:gw@192.0.2.1:5060>', { state });
}

t.test('UAC dialog state from the establishing response (§12.1.2)', async (t) => {
  const d = uac();
  t.same(d.id, { callId: 'a84b4c76e66710', localTag: 'a73kszlfl', remoteTag: '8321234356' });
  t.equal(d.state, 'confirmed');
  t.equal(d.localSeq, 314159, 'local CSeq is the INVITE one');
  t.equal(d.remoteSeq, undefined, 'remote CSeq empty');
  t.equal(serializeUri(d.remoteTarget), 'sip:bob@192.0.2.4', 'remote target from response Contact');
  t.same(d.routeSet, ['<sip:p3.example.com;lr>', '<sip:p2.example.com;lr>', '<sip:p1.example.com;lr>'], 'Record-Route reversed');
  t.equal(d.localUri.displayName, 'Alice');
  t.equal(d.remoteUri.uri.user, 'bob');
  t.equal(d.remoteUri.params.get('tag'), '8321234356');
  t.equal(d.secure, false);

  t.equal(uac(180).state, 'early', 'a 1xx with To tag creates an early dialog');
  t.equal(Dialog.asUac(invite([], 'sips:bob@biloxi.example.com'), response(200, [['Contact', '<sips:bob@192.0.2.4>']])).secure, true, 'SIPS Request-URI sets the secure flag');
  t.equal(
    Dialog.asUac(invite([], 'sips:bob@biloxi.example.com'), response(200), { overTls: false }).secure,
    false,
    'secure needs TLS too',
  );
  t.equal(Dialog.asUac(invite(), response(200, [], { toTag: null })).id.remoteTag, '', '2xx without To tag: null remote tag');

  for (const [name, res] of [
    ['100 Trying', response(100)],
    ['180 without To tag', response(180, [], { toTag: null })],
    ['486 final', response(486)],
  ] as const) {
    t.throws(() => Dialog.asUac(invite(), res), name + ' does not create a dialog');
  }
});

t.test('UAS dialog state from the request (§12.1.1)', async (t) => {
  const d = uas('early');
  t.same(d.id, { callId: 'a84b4c76e66710', localTag: 'ourtag', remoteTag: 'a73kszlfl' });
  t.equal(d.state, 'early');
  t.same(d.routeSet, ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>', '<sip:p3.example.com;lr>'], 'Record-Route in order');
  t.equal(d.remoteSeq, 314159);
  t.equal(d.localSeq, undefined);
  t.equal(serializeUri(d.remoteTarget), 'sip:alice@pc33.atlanta.example.com');
  t.equal(d.localValue, `${BOB};tag=ourtag`, 'local URI is the To plus our tag');
  t.equal(d.remoteValue, ALICE);
  d.confirm();
  t.equal(d.state, 'confirmed');

  const bye = d.createRequest('BYE').request;
  t.equal(bye.headers.get('CSeq'), '1 BYE', 'empty local CSeq: initial value chosen (1 without a Random)');
  const seeded = Dialog.asUas(invite(), 'ourtag', '<sip:gw@192.0.2.1>', { random: new SeededRandom(7) });
  const n = Number(seeded.createRequest('INFO').request.headers.get('CSeq')!.split(' ')[0]);
  t.ok(n >= 1 && n < 2 ** 31, 'random initial CSeq below 2**31');
  t.equal(seeded.createRequest('INFO').request.headers.get('CSeq'), `${n + 1} INFO`);

  const noTag = createRequest('INVITE', 'sip:bob@b', [['From', BOB], ['To', BOB], ['Call-ID', 'x'], ['CSeq', '1 INVITE']]);
  t.throws(() => Dialog.asUas(noTag, 't', '<sip:gw@h>'), { code: 'missing-from-tag' }, 'From without tag');
});

t.test('in-dialog request routing (§12.2.1.1)', async (t) => {
  const cases: { name: string; target: string; routes: string[]; ruri: string; route: string[]; nextHop: string }[] = [
    {
      name: 'no route set: R-URI is the remote target, no Route',
      target: 'sip:bob@192.0.2.4:5070;transport=tcp',
      routes: [],
      ruri: 'sip:bob@192.0.2.4:5070;transport=tcp',
      route: [],
      nextHop: 'sip:bob@192.0.2.4:5070;transport=tcp',
    },
    {
      name: 'loose router first: R-URI remote target, Route = route set in order',
      target: 'sip:bob@192.0.2.4',
      routes: ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr;ftag=x>'],
      ruri: 'sip:bob@192.0.2.4',
      route: ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr;ftag=x>'],
      nextHop: 'sip:p1.example.com;lr',
    },
    {
      name: 'RFC 3261 §12.2.1.1 strict-routing example',
      target: 'sip:user@remoteua',
      routes: ['<sip:proxy1>', '<sip:proxy2>', '<sip:proxy3;lr>', '<sip:proxy4>'],
      ruri: 'sip:proxy1',
      route: ['<sip:proxy2>', '<sip:proxy3;lr>', '<sip:proxy4>', '<sip:user@remoteua>'],
      nextHop: 'sip:proxy1',
    },
    {
      name: 'strict router: method param and headers stripped from R-URI only',
      target: 'sip:bob@192.0.2.4',
      routes: ['<sip:p1.example.com;method=INVITE;maddr=10.0.0.1?X=1>', '<sip:p2.example.com>'],
      ruri: 'sip:p1.example.com;maddr=10.0.0.1',
      route: ['<sip:p2.example.com>', '<sip:bob@192.0.2.4>'],
      nextHop: 'sip:p1.example.com;maddr=10.0.0.1',
    },
  ];
  for (const c of cases) {
    const d = uac(200, [['Contact', `<${c.target}>`]]);
    d.routeSet = c.routes;
    const { request, nextHop } = d.createRequest('BYE');
    t.equal(request.uri, c.ruri, `${c.name}: Request-URI`);
    t.same(request.headers.getAll('Route'), c.route, `${c.name}: Route`);
    t.equal(serializeUri(nextHop), c.nextHop, `${c.name}: next hop`);
  }
});

t.test('in-dialog request headers and CSeq (§12.2.1.1, §13.2.2.4)', async (t) => {
  const d = uac();
  const bye = d.createRequest('BYE').request;
  t.equal(bye.method, 'BYE');
  t.equal(bye.headers.get('To'), `${BOB};tag=8321234356`, 'To = remote URI + remote tag');
  t.equal(bye.headers.get('From'), ALICE, 'From = local URI + local tag');
  t.equal(bye.headers.get('Call-ID'), 'a84b4c76e66710');
  t.equal(bye.headers.get('CSeq'), '314160 BYE', 'CSeq incremented by one');
  t.equal(bye.headers.get('Max-Forwards'), '70');
  t.equal(bye.headers.has('Via'), false, 'Via is left to the client transaction');
  t.equal(bye.headers.has('Contact'), false, 'BYE carries no Contact by default');

  const reinvite = d.createRequest('INVITE', {
    body: Buffer.from('v=0\r\n'),
    contentType: 'application/sdp',
    headers: [['Authorization', 'Digest x']],
  }).request;
  t.equal(reinvite.headers.get('CSeq'), '314161 INVITE');
  t.equal(reinvite.headers.get('Contact'), '<sip:alice@pc33.atlanta.example.com>', 're-INVITE carries our Contact');
  t.equal(reinvite.headers.get('Content-Type'), 'application/sdp');
  t.equal(reinvite.headers.get('Authorization'), 'Digest x');
  t.equal(reinvite.body.toString(), 'v=0\r\n');

  const ack = d.createAck(314159).request;
  t.equal(ack.method, 'ACK');
  t.equal(ack.headers.get('CSeq'), '314159 ACK', 'ACK for 2xx keeps the INVITE CSeq number');
  t.equal(ack.uri, 'sip:bob@192.0.2.4');
  t.equal(ack.headers.getAll('Route').length, 3, 'ACK follows the route set');
  t.equal(d.localSeq, 314161, 'ACK does not advance the local CSeq');
  t.equal(d.createRequest('INFO').request.headers.get('CSeq'), '314162 INFO');

  t.throws(() => d.createRequest('ACK'), 'ACK must come from createAck');
  t.throws(() => d.createRequest('CANCEL'), 'CANCEL is not built from the dialog');
  d.terminate();
  t.throws(() => d.createRequest('BYE'), 'no requests in a terminated dialog');
});

t.test('UAC dialog updates from responses', async (t) => {
  const early = uac(180, [['Contact', '<sip:bob@early.example.com>'], ['Record-Route', '<sip:early-proxy;lr>']]);
  t.same(early.routeSet, ['<sip:early-proxy;lr>']);
  t.equal(early.receiveResponse(response(183, [['Contact', '<sip:bob@183.example.com>']])), 'early');
  t.equal(serializeUri(early.remoteTarget), 'sip:bob@183.example.com', '1xx Contact refreshes target while early');
  t.equal(early.receiveResponse(response(200, [['Contact', '<sip:bob@192.0.2.9>'], ...RR])), 'confirmed', 'early → confirmed on 2xx');
  t.equal(serializeUri(early.remoteTarget), 'sip:bob@192.0.2.9');
  t.same(early.routeSet, ['<sip:p3.example.com;lr>', '<sip:p2.example.com;lr>', '<sip:p1.example.com;lr>'], 'route set recomputed from the 2xx');

  const d = uac();
  const routeSet = [...d.routeSet];
  d.receiveResponse(response(200, [['Contact', '<sip:bob@moved.example.com>'], ['Record-Route', '<sip:other;lr>']], { cseq: '314160 INVITE' }));
  t.equal(serializeUri(d.remoteTarget), 'sip:bob@moved.example.com', 're-INVITE 2xx refreshes the target');
  t.same(d.routeSet, routeSet, 'target refresh keeps the route set');
  d.receiveResponse(response(200, [['Contact', '<sip:bob@update.example.com>']], { cseq: '314161 UPDATE' }));
  t.equal(serializeUri(d.remoteTarget), 'sip:bob@update.example.com', 'UPDATE 2xx refreshes the target');
  d.receiveResponse(response(200, [['Contact', '<sip:bob@info.example.com>']], { cseq: '314162 INFO' }));
  t.equal(serializeUri(d.remoteTarget), 'sip:bob@update.example.com', 'INFO is not a target refresh');
  d.receiveResponse(response(491, [], { cseq: '314163 INVITE' }));
  t.equal(d.state, 'confirmed', 'a failed re-INVITE keeps the dialog');
  d.receiveResponse(response(200, [['Contact', '<garbage']], { cseq: '314164 INVITE' }));
  t.equal(serializeUri(d.remoteTarget), 'sip:bob@update.example.com', 'a garbled Contact is ignored');

  const terminations: [string, Dialog, SipResponse][] = [
    ['486 to the INVITE of an early dialog', uac(180), response(486)],
    ['481 to an in-dialog request', uac(), response(481, [], { cseq: '314160 BYE' })],
    ['408 to an in-dialog request', uac(), response(408, [], { cseq: '314160 INFO' })],
  ];
  for (const [name, dialog, res] of terminations) t.equal(dialog.receiveResponse(res), 'terminated', name);
});

t.test('UAS receiving in-dialog requests (§12.2.2)', async (t) => {
  const d = uas();
  const badCSeq = peerRequest('INFO', 1);
  badCSeq.headers.set('CSeq', 'abc INFO');
  const steps: { name: string; req: SipRequest; result: { accepted: boolean; status?: number }; remoteSeq: number }[] = [
    { name: 'higher CSeq accepted', req: peerRequest('INFO', 314160), result: { accepted: true }, remoteSeq: 314160 },
    { name: 'equal CSeq not lower: accepted', req: peerRequest('INFO', 314160), result: { accepted: true }, remoteSeq: 314160 },
    { name: 'lower CSeq rejected with 500', req: peerRequest('INFO', 314100), result: { accepted: false, status: 500 }, remoteSeq: 314160 },
    { name: 'ACK reuses the INVITE CSeq', req: peerRequest('ACK', 314159), result: { accepted: true }, remoteSeq: 314160 },
    { name: 'malformed CSeq gets 400', req: badCSeq, result: { accepted: false, status: 400 }, remoteSeq: 314160 },
    { name: 'gap in CSeq accepted', req: peerRequest('BYE', 400000), result: { accepted: true }, remoteSeq: 400000 },
  ];
  for (const s of steps) {
    const r = d.receiveRequest(s.req);
    t.equal(r.accepted, s.result.accepted, s.name);
    if (!r.accepted) t.equal(r.status, s.result.status, `${s.name}: status`);
    t.equal(d.remoteSeq, s.remoteSeq, `${s.name}: remote CSeq`);
  }

  const uac1 = uac();
  t.equal(uac1.receiveRequest(peerRequest('BYE', 5)).accepted, true, 'empty remote CSeq takes any value');
  t.equal(uac1.remoteSeq, 5);

  const r = uas();
  r.receiveRequest(peerRequest('INVITE', 314160, [['Contact', '<sip:alice@new.example.com>']]));
  t.equal(serializeUri(r.remoteTarget), 'sip:alice@new.example.com', 're-INVITE Contact refreshes the target');
  r.receiveRequest(peerRequest('UPDATE', 314161, [['Contact', '<sip:alice@upd.example.com>']]));
  t.equal(serializeUri(r.remoteTarget), 'sip:alice@upd.example.com', 'UPDATE Contact refreshes the target');
  r.receiveRequest(peerRequest('INFO', 314162, [['Contact', '<sip:alice@info.example.com>']]));
  t.equal(serializeUri(r.remoteTarget), 'sip:alice@upd.example.com', 'INFO Contact is no target refresh');
  const bad = r.receiveRequest(peerRequest('INVITE', 314163, [['Contact', '*']]));
  t.same(bad.accepted ? null : bad.status, 400, 'Contact * in re-INVITE gets 400');
  t.equal(r.remoteSeq, 314162, 'a rejected request does not advance the remote CSeq');
  const stale = r.receiveRequest(peerRequest('INVITE', 3, [['Contact', '<sip:alice@stale.example.com>']]));
  t.equal(stale.accepted, false);
  t.equal(serializeUri(r.remoteTarget), 'sip:alice@upd.example.com', 'an out-of-order re-INVITE does not refresh the target');
});

t.test('DialogTable lookup and classifyInDialog (§12.2.2)', async (t) => {
  const table = new DialogTable();
  const ours = uas();
  const mine = uac();
  table.add(ours);
  table.add(mine);
  t.equal(table.size, 2);
  t.throws(() => table.add(uas()), 'duplicate dialog ID');

  t.equal(table.findForRequest(peerRequest('BYE', 314160)), ours, 'request: To tag = local, From tag = remote');
  t.equal(table.get({ callId: 'a84b4c76e66710', localTag: 'a73kszlfl', remoteTag: '8321234356' }), mine);
  t.equal(table.findForResponse(response(200, [], { cseq: '314160 BYE' })), mine, 'response: From tag = local, To tag = remote');
  t.equal(table.findForResponse(response(200, [], { toTag: 'fork2' })), undefined, 'another fork');
  t.same(table.findByLocal('a84b4c76e66710', 'a73kszlfl'), [mine]);

  const withTo = (to: string, callId = 'a84b4c76e66710'): SipRequest => {
    const r = peerRequest('BYE', 1);
    r.headers.set('To', to).set('Call-ID', callId);
    return r;
  };
  const cases: [string, SipRequest, string][] = [
    ['To tag of a known dialog', peerRequest('BYE', 314160), 'dialog'],
    ['no To tag', withTo(BOB), 'out-of-dialog'],
    ['To tag of no dialog → 481', withTo(`${BOB};tag=unknown`), 'no-dialog'],
    ['known tags, other Call-ID', withTo(`${BOB};tag=ourtag`, 'other'), 'no-dialog'],
    ['no To at all', createRequest('OPTIONS', 'sip:gw@h', [['From', ALICE]]), 'out-of-dialog'],
  ];
  for (const [name, req, want] of cases) t.equal(classifyInDialog(req, table), want, name);

  t.equal(table.remove(ours), true);
  t.equal(table.remove(ours.id), false);
  t.equal(classifyInDialog(peerRequest('BYE', 314160), table), 'no-dialog', 'removed dialog');
  t.equal(table.size, 1);
});
