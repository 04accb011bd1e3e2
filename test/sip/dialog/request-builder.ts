import t from 'tap';
import { buildCancel } from '../../../src/sip/transaction/cancel.ts';
import { createRequest } from '../../../src/sip/message/message.ts';
import type { SipRequest } from '../../../src/sip/message/message.ts';
import { parseUri, serializeUri } from '../../../src/sip/message/uri.ts';
import { tagOf } from '../../../src/sip/message/header-values.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import {
  buildRequest,
  buildResponse,
  derivedToTag,
  routeRequest,
} from '../../../src/sip/dialog/request-builder.ts';

function request(fields: [string, string][], method = 'INVITE'): SipRequest {
  return createRequest(method, 'sip:bob@biloxi.example.com', fields);
}

const FULL: [string, string][] = [
  ['Via', 'SIP/2.0/UDP proxy2.example.com;branch=z9hG4bK-p2'],
  ['v', 'SIP/2.0/UDP proxy1.example.com;branch=z9hG4bK-p1, SIP/2.0/UDP pc33.example.com;branch=z9hG4bK-ua'],
  ['Max-Forwards', '68'],
  ['Record-Route', '<sip:proxy2.example.com;lr>, <sip:proxy1.example.com;lr>'],
  ['To', 'Bob <sip:bob@biloxi.example.com>'],
  ['From', 'Alice <sip:alice@atlanta.example.com>;tag=1928301774'],
  ['Call-ID', 'a84b4c76e66710'],
  ['CSeq', '314159 INVITE'],
  ['Timestamp', '54.2'],
  ['Contact', '<sip:alice@pc33.example.com>'],
];

t.test('buildRequest: out-of-dialog request (§8.1.1)', async (t) => {
  const random = new SeededRandom(1);
  const built = buildRequest({
    method: 'INVITE',
    requestUri: 'sip:bob@biloxi.example.com',
    from: 'Alice <sip:alice@atlanta.example.com>',
    to: 'Bob <sip:bob@biloxi.example.com>',
    contact: '<sip:alice@192.0.2.1:5060>',
    random,
    extraHeaders: [['Allow', 'INVITE, ACK, BYE']],
    body: Buffer.from('v=0\r\n'),
    contentType: 'application/sdp',
  });
  const r = built.request;
  t.equal(r.method, 'INVITE');
  t.equal(r.uri, 'sip:bob@biloxi.example.com');
  t.equal(r.headers.get('Max-Forwards'), '70', 'Max-Forwards 70 (§8.1.1.6)');
  t.equal(r.headers.get('To'), 'Bob <sip:bob@biloxi.example.com>', 'To without tag (§8.1.1.2)');
  t.equal(tagOf(r.headers.get('From')!), built.fromTag, 'From carries a new tag (§8.1.1.3)');
  t.match(built.fromTag, /^[a-z0-9]{16}$/);
  t.equal(r.headers.get('Call-ID'), built.callId);
  t.match(built.callId, /^[a-z0-9]{24}$/);
  t.equal(r.headers.get('CSeq'), '1 INVITE');
  t.equal(r.headers.get('Contact'), '<sip:alice@192.0.2.1:5060>');
  t.equal(r.headers.get('Allow'), 'INVITE, ACK, BYE');
  t.equal(r.headers.get('Content-Type'), 'application/sdp');
  t.equal(r.headers.has('Via'), false, 'the transaction adds the Via');
  t.equal(r.headers.has('Route'), false);
  t.equal(serializeUri(built.nextHop), 'sip:bob@biloxi.example.com');

  const again = buildRequest({ method: 'INVITE', requestUri: 'sip:b@h', from: '<sip:a@h>', to: '<sip:b@h>', random: new SeededRandom(1) });
  t.equal(again.fromTag, built.fromTag, 'tags come from the injected Random');
  const other = buildRequest({ method: 'INVITE', requestUri: 'sip:b@h', from: '<sip:a@h>', to: '<sip:b@h>', random });
  t.not(other.fromTag, built.fromTag, 'successive requests get new tags');
  t.not(other.callId, built.callId, 'and new Call-IDs');

  const reg = buildRequest({
    method: 'REGISTER',
    requestUri: parseUri('sip:registrar.example.com'),
    from: { uri: parseUri('sip:gw@example.com'), params: new Map([['tag', 'fixed']]) },
    to: { uri: parseUri('sip:gw@example.com'), params: new Map() },
    callId: 'reg-1',
    cseq: 7,
    maxForwards: 10,
    via: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx;rport',
    routeSet: ['<sip:outbound.example.com;lr>'],
    random,
  }).request;
  t.equal(reg.headers.get('From'), '<sip:gw@example.com>;tag=fixed', 'an existing From tag is kept');
  t.equal(reg.headers.get('To'), '<sip:gw@example.com>');
  t.equal(reg.headers.get('Call-ID'), 'reg-1');
  t.equal(reg.headers.get('CSeq'), '7 REGISTER');
  t.equal(reg.headers.get('Max-Forwards'), '10');
  t.equal(reg.headers.get('Via'), 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx;rport');
  t.equal(reg.headers.get('Route'), '<sip:outbound.example.com;lr>', 'preloaded route (§8.1.1.1)');
  t.equal(reg.uri, 'sip:registrar.example.com');
});

t.test('routeRequest: strict router keeps every parameter in Route values', async (t) => {
  const r = routeRequest(parseUri('sip:bob@192.0.2.4;transport=tcp?Subject=x'), ['<sip:strict.example.com;foo=1>', '<sip:p2;lr>']);
  t.equal(r.requestUri, 'sip:strict.example.com;foo=1');
  t.same(r.routes, ['<sip:p2;lr>', '<sip:bob@192.0.2.4;transport=tcp?Subject=x>'], 'remote target last, as it was');
  t.equal(serializeUri(r.nextHop), 'sip:strict.example.com;foo=1');
  t.throws(() => routeRequest(parseUri('sip:b@h'), ['<garbage']), { code: 'bad-name-addr' });
});

t.test('buildResponse (§8.2.6)', async (t) => {
  const req = request(FULL);
  const ringing = buildResponse(req, 180, undefined, { toTag: 'bobtag', headers: [['Contact', '<sip:bob@192.0.2.4>']] });
  t.equal(ringing.status, 180);
  t.equal(ringing.reason, 'Ringing', 'default reason phrase');
  t.same(
    ringing.headers.getAll('Via'),
    [
      'SIP/2.0/UDP proxy2.example.com;branch=z9hG4bK-p2',
      'SIP/2.0/UDP proxy1.example.com;branch=z9hG4bK-p1',
      'SIP/2.0/UDP pc33.example.com;branch=z9hG4bK-ua',
    ],
    'every Via copied in order, compact-form fields included',
  );
  t.equal(ringing.headers.get('From'), 'Alice <sip:alice@atlanta.example.com>;tag=1928301774');
  t.equal(ringing.headers.get('To'), 'Bob <sip:bob@biloxi.example.com>;tag=bobtag', 'To tag added');
  t.equal(ringing.headers.get('Call-ID'), 'a84b4c76e66710');
  t.equal(ringing.headers.get('CSeq'), '314159 INVITE');
  t.same(ringing.headers.getAll('Record-Route'), ['<sip:proxy2.example.com;lr>', '<sip:proxy1.example.com;lr>'], 'Record-Route copied for a dialog-creating response (§12.1.1)');
  t.equal(ringing.headers.get('Contact'), '<sip:bob@192.0.2.4>');
  t.equal(ringing.headers.has('Timestamp'), false, 'Timestamp only in 100');
  t.equal(ringing.headers.has('Max-Forwards'), false);

  const trying = buildResponse(req, 100);
  t.equal(trying.headers.get('To'), 'Bob <sip:bob@biloxi.example.com>', '100 Trying gets no To tag');
  t.equal(trying.headers.get('Timestamp'), '54.2', '100 copies Timestamp (§8.2.6.1)');
  t.equal(trying.headers.has('Record-Route'), false);

  const busy = buildResponse(req, 486, 'Busy Here Now');
  t.equal(busy.reason, 'Busy Here Now');
  t.equal(busy.headers.get('To'), `Bob <sip:bob@biloxi.example.com>;tag=${derivedToTag(req)}`, 'default tag derived from the request');
  t.equal(tagOf(buildResponse(req, 486).headers.get('To')!), tagOf(busy.headers.get('To')!), 'same tag for every response to one request (§8.2.6.2)');
  t.equal(busy.headers.has('Record-Route'), false, 'no Record-Route in a failure');

  const tagged = request(FULL.map(([n, v]) => (n === 'To' ? [n, `${v};tag=existing`] : [n, v])), 'BYE');
  t.equal(buildResponse(tagged, 200, undefined, { toTag: 'other' }).headers.get('To'), 'Bob <sip:bob@biloxi.example.com>;tag=existing', 'an existing To tag is kept');
  const otherReq = request(FULL.map(([n, v]) => (n === 'CSeq' ? [n, '314160 INVITE'] : [n, v])));
  t.not(derivedToTag(otherReq), derivedToTag(req), 'different requests get different derived tags');
});

t.test('buildResponse on a request missing headers copies what exists', async (t) => {
  const cases: { name: string; fields: [string, string][]; want: Record<string, string | undefined> }[] = [
    { name: 'no headers at all', fields: [], want: { Via: undefined, From: undefined, To: undefined, 'Call-ID': undefined, CSeq: undefined } },
    {
      name: 'only Via and Call-ID',
      fields: [['Via', 'SIP/2.0/UDP h;branch=z9hG4bK1'], ['i', 'cid']],
      want: { Via: 'SIP/2.0/UDP h;branch=z9hG4bK1', 'Call-ID': 'cid', To: undefined, CSeq: undefined },
    },
    {
      name: 'garbled To still gets a tag',
      fields: [['To', '<sip:bob@h'], ['CSeq', 'garbage']],
      want: { To: '<sip:bob@h;tag=t1', CSeq: 'garbage' },
    },
  ];
  for (const c of cases) {
    const res = buildResponse(request(c.fields), 400, undefined, { toTag: 't1' });
    t.equal(res.status, 400, `${c.name}: status`);
    for (const [name, want] of Object.entries(c.want)) t.equal(res.headers.get(name), want, `${c.name}: ${name}`);
  }
});

t.test('buildCancel (§9.1)', async (t) => {
  const req = request([...FULL, ['Route', '<sip:proxy1.example.com;lr>'], ['Route', '<sip:proxy2.example.com;lr>']]);
  const cancel = buildCancel(req);
  t.equal(cancel.method, 'CANCEL');
  t.equal(cancel.uri, req.uri, 'same Request-URI');
  t.same(cancel.headers.getAll('Via'), ['SIP/2.0/UDP proxy2.example.com;branch=z9hG4bK-p2'], 'only the top Via');
  t.equal(cancel.headers.get('CSeq'), '314159 CANCEL', 'same CSeq number, method CANCEL');
  t.same(cancel.headers.getAll('Route'), ['<sip:proxy1.example.com;lr>', '<sip:proxy2.example.com;lr>'], 'same Route headers');
  for (const name of ['To', 'From', 'Call-ID']) t.equal(cancel.headers.get(name), req.headers.get(name), `same ${name}`);
  t.equal(cancel.headers.get('Max-Forwards'), '70');
  t.equal(cancel.headers.has('Contact'), false);
  t.equal(buildCancel(request([])).headers.size, 1, 'a bare request gives a CANCEL with only Max-Forwards');
});
