/**
 * The notifier's SIP side in one process, with no sockets and no real time: SUBSCRIBE bytes into
 * SipStack, through the UAS core's screening (digest 407) to the subscription dialogs and the
 * presence core, and the responses and NOTIFYs that come back out; NOTIFY responses are fed in
 * again as bytes.
 */
import t from 'tap';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { MemoryLogger } from '../../../src/runtime/logger.ts';
import { SeededRandom } from '../../../src/runtime/random.ts';
import { PresenceStore } from '../../../src/presence/presence-store.ts';
import { ALLOW_EVENTS } from '../../../src/presence/types.ts';
import { DigestClient } from '../../../src/sip/auth/digest-client.ts';
import { DigestServer } from '../../../src/sip/auth/digest-server.ts';
import { parseCSeq, tagOf } from '../../../src/sip/message/header-values.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../../src/sip/message/message.ts';
import { parseMessage } from '../../../src/sip/message/parser.ts';
import { SipStack } from '../../../src/sip/stack.ts';
import type { Endpoint } from '../../../src/sip/transport/transport.ts';
import { ExtensionCredentials, RequestAuthenticator } from '../../../src/sip/ua/request-authenticator.ts';
import { SubscriptionDialogs } from '../../../src/sip/ua/subscription-dialogs.ts';
import { UasCore } from '../../../src/sip/ua/uas-core.ts';

const PHONE: Endpoint = { transport: 'udp', address: '192.0.2.10', port: 5062 };
const PASSWORD = 'secret-102';

function harness(limits: { minExpires?: number; dialogMs?: number } = {}) {
  const clock = new ManualClock();
  const random = new SeededRandom(11);
  const logger = new MemoryLogger();
  const out: { msg: SipMessage; dest: Endpoint }[] = [];
  const digest = new DigestServer({ realm: 'test.local', secret: Buffer.alloc(32, 2), clock, random, algorithms: ['MD5'] });
  const auth = new RequestAuthenticator({ digest, credentials: new ExtensionCredentials({ '102': { password: PASSWORD } }), logger });
  let stack: SipStack | undefined;
  let dialogs: SubscriptionDialogs | undefined;
  const registered = new Set<string>();
  const store = new PresenceStore({
    clock,
    logger,
    sender: { notify: (n) => dialogs!.notify(n) },
    resources: {
      exists: (r) => ['100', '101', '102'].includes(r),
      registered: (r) => registered.has(r),
      entity: (r) => `sip:${r}@test.local`,
    },
    limits: { minExpires: limits.minExpires ?? 10, minNotifyIntervalMs: { dialog: limits.dialogMs ?? 0, presence: 0 } },
  });
  dialogs = new SubscriptionDialogs({
    core: store,
    transactions: {
      newBranch: () => stack!.transactions.newBranch(),
      sendRequest: (req, dest, handlers) => stack!.transactions.sendRequest(req, dest, handlers),
    },
    random,
    logger,
    userAgent: 'hookswitch-test',
    allowEvents: ALLOW_EVENTS,
    localEndpoint: () => ({ address: '192.0.2.1', port: 5060 }),
  });
  const core = new UasCore({ logger, auth, userAgent: 'hookswitch-test', presence: dialogs });
  const transport = {
    send: async (bytes: Buffer, dest: Endpoint) => void out.push({ msg: parseMessage(bytes), dest }),
  };
  stack = new SipStack({ clock, random, logger, transport }, core);
  const settle = () => new Promise((r) => setImmediate(r));
  const receive = async (text: string) => {
    const before = out.length;
    stack!.receive(Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8'), PHONE);
    await settle();
    return out.slice(before).map((o) => o.msg);
  };
  /** Answers a NOTIFY the gateway sent with `status`. */
  const answer = async (notify: SipRequest, status: number) => {
    const h = notify.headers;
    const text =
      `SIP/2.0 ${status} X\nVia: ${h.get('via')}\nFrom: ${h.get('from')}\nTo: ${h.get('to')}\nCall-ID: ${h.get('call-id')}\n` +
      `CSeq: ${h.get('cseq')}\nContent-Length: 0\n\n`;
    stack!.receive(Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1'), PHONE);
    await settle();
  };
  const client = new DigestClient({ username: '102', password: PASSWORD, random: new SeededRandom(5) });
  let cseq = 0;
  let branch = 0;
  /** A SUBSCRIBE from 102; outside a dialog it answers the 407 first. */
  const subscribe = async (o: { uri?: string; event?: string; expires?: number | string; to?: string; callId?: string; extra?: string; cseq?: number } = {}) => {
    const uri = o.uri ?? 'sip:100@test.local';
    const build = (extra: string) =>
      `SUBSCRIBE ${uri} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-s${++branch};rport\nMax-Forwards: 70\n` +
      `From: <sip:102@test.local>;tag=sub1\nTo: ${o.to ?? `<${uri}>`}\nCall-ID: ${o.callId ?? 'sub-call-1'}\nCSeq: ${o.cseq ?? ++cseq} SUBSCRIBE\n` +
      `Contact: <sip:102@192.0.2.10:5062>\n${o.event === '' ? '' : `Event: ${o.event ?? 'dialog'}\n`}` +
      `${o.expires === undefined ? '' : `Expires: ${o.expires}\n`}${o.extra ?? ''}${extra}Content-Length: 0\n\n`;
    if (o.to !== undefined) return receive(build(''));
    const [challenge] = await receive(build(''));
    if (challenge?.kind !== 'response' || challenge.status !== 407) throw new Error(`expected 407, got ${JSON.stringify(challenge)}`);
    const authz = client.authorize({ challenges: challenge.headers.getAll('proxy-authenticate'), method: 'SUBSCRIBE', uri })!;
    return receive(build(`Proxy-Authorization: ${authz}\n`));
  };
  return { clock, logger, store, dialogs, registered, out, receive, answer, subscribe };
}

function response(msgs: SipMessage[]): SipResponse {
  const r = msgs.find((m): m is SipResponse => m.kind === 'response');
  if (!r) throw new Error('no response');
  return r;
}
function notifies(msgs: SipMessage[]): SipRequest[] {
  return msgs.filter((m): m is SipRequest => m.kind === 'request' && m.method === 'NOTIFY');
}

t.test('a new SUBSCRIBE: 407 first, then 200 with our tag, Expires, Contact, Allow-Events, and the NOTIFY after it', async (t) => {
  const h = harness();
  const msgs = await h.subscribe({ expires: 600 });
  const ok = response(msgs);
  t.equal(ok.status, 200);
  const tag = tagOf(ok.headers.get('to') ?? '');
  t.ok(tag, 'To tag: the dialog is ours (RFC 6665 §4.1.2.1)');
  t.equal(ok.headers.get('expires'), '600');
  t.equal(ok.headers.get('contact'), '<sip:100@192.0.2.1:5060>');
  t.equal(ok.headers.get('allow-events'), 'dialog, presence');
  t.equal(msgs.indexOf(ok), 0, 'the response goes out before the NOTIFY');
  const [n] = notifies(msgs);
  t.ok(n, 'the immediate NOTIFY (RFC 6665 §4.2.1.2)');
  t.equal(n!.uri, 'sip:102@192.0.2.10:5062', 'to the subscriber Contact');
  t.equal(n!.headers.get('event'), 'dialog');
  t.equal(n!.headers.get('subscription-state'), 'active;expires=600');
  t.equal(n!.headers.get('content-type'), 'application/dialog-info+xml');
  t.match(n!.body.toString('utf8'), /<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:100@test.local"\/>/);
  t.equal(tagOf(n!.headers.get('from') ?? ''), tag, 'From carries our tag');
  t.equal(tagOf(n!.headers.get('to') ?? ''), 'sub1', 'To carries the subscriber tag');
  t.match(n!.headers.get('via'), /^SIP\/2\.0\/UDP 192\.0\.2\.1:5060;branch=z9hG4bK/);
  t.equal(h.out.at(-1)!.dest.port, 5062, 'sent to the flow the SUBSCRIBE came from (RFC 3581)');
  t.equal(h.dialogs.size, 1);
  await h.answer(n!, 200);
  t.equal(h.store.subscriptions().length, 1, 'a 200 keeps the subscription');
});

t.test('refusals carry the headers their status needs, and create no dialog', async (t) => {
  const h = harness({ minExpires: 30 });
  const cases: { name: string; req: Parameters<typeof h.subscribe>[0]; status: number; header?: [string, string] }[] = [
    { name: 'interval too brief', req: { expires: 5 }, status: 423, header: ['min-expires', '30'] },
    { name: 'unknown package', req: { event: 'message-summary' }, status: 489, header: ['allow-events', 'dialog, presence'] },
    { name: 'body type not acceptable', req: { extra: 'Accept: text/plain\n' }, status: 406, header: ['accept', 'application/dialog-info+xml'] },
    { name: 'unknown resource', req: { uri: 'sip:999@test.local' }, status: 404 },
    { name: 'no Event header', req: { event: '' }, status: 400 },
    { name: 'malformed Expires', req: { expires: 'soon' }, status: 400 },
  ];
  for (const c of cases) {
    const r = response(await h.subscribe(c.req));
    t.equal(r.status, c.status, c.name);
    if (c.header) t.equal(r.headers.get(c.header[0]), c.header[1], `${c.name}: ${c.header[0]}`);
  }
  t.equal(h.dialogs.size, 0);
  t.equal(notifies(h.out.map((o) => o.msg)).length, 0, 'no NOTIFY for a refusal');
});

t.test('a refresh in the dialog restarts the expiry; Expires 0 ends it with a terminated NOTIFY and the dialog goes', async (t) => {
  const h = harness();
  const first = await h.subscribe({ expires: 60, callId: 'c-refresh' });
  const tag = tagOf(response(first).headers.get('to') ?? '')!;
  await h.answer(notifies(first)[0]!, 200);
  const to = `<sip:100@test.local>;tag=${tag}`;
  h.clock.advance(50_000);
  const refresh = await h.subscribe({ to, callId: 'c-refresh', expires: 60 });
  t.equal(response(refresh).status, 200, 'refresh accepted without a challenge (in the dialog)');
  t.equal(response(refresh).headers.get('expires'), '60');
  t.equal(notifies(refresh)[0]?.headers.get('subscription-state'), 'active;expires=60', 'a NOTIFY after the refresh');
  t.equal(parseCSeq(notifies(refresh)[0]!.headers.get('cseq')!).seq, parseCSeq(notifies(first)[0]!.headers.get('cseq')!).seq + 1, 'CSeq grows by one');
  await h.answer(notifies(refresh)[0]!, 200);
  h.clock.advance(50_000);
  t.equal(h.store.subscriptions().length, 1, 'still active 100 s after the start: the refresh counted');

  const stale = await h.subscribe({ to, callId: 'c-refresh', expires: 60, cseq: 1 });
  t.equal(response(stale).status, 500, 'a lower CSeq in the dialog is out of order (RFC 3261 §12.2.2)');

  const bye = await h.subscribe({ to, callId: 'c-refresh', expires: 0 });
  t.equal(response(bye).status, 200);
  t.equal(notifies(bye)[0]?.headers.get('subscription-state'), 'terminated;reason=timeout', 'RFC 6665 §4.2.1.4 unsubscribe');
  t.equal(h.dialogs.size, 0, 'the dialog is forgotten with its last subscription');
  const after = await h.subscribe({ to, callId: 'c-refresh', expires: 60 });
  t.equal(response(after).status, 481, 'a SUBSCRIBE in the ended dialog: 481');
});

t.test('expiry: a final NOTIFY terminated;reason=timeout; a fetch (Expires 0) gets one terminated NOTIFY', async (t) => {
  const h = harness();
  const first = await h.subscribe({ expires: 20 });
  await h.answer(notifies(first)[0]!, 200);
  const before = h.out.length;
  h.clock.advance(20_000);
  await new Promise((r) => setImmediate(r));
  const [last] = notifies(h.out.slice(before).map((o) => o.msg));
  t.equal(last?.headers.get('subscription-state'), 'terminated;reason=timeout');
  t.equal(h.dialogs.size, 0);
  t.equal(h.store.subscriptions().length, 0);

  const fetch = await h.subscribe({ expires: 0, callId: 'c-fetch' });
  t.equal(response(fetch).status, 200);
  t.equal(response(fetch).headers.get('expires'), '0');
  t.equal(notifies(fetch)[0]?.headers.get('subscription-state'), 'terminated;reason=timeout', 'RFC 6665 §4.4.3 fetch');
  t.equal(h.dialogs.size, 0, 'a fetch keeps no dialog');
});

t.test('dialog changes reach the subscriber in order; a 481 to a NOTIFY removes the subscription', async (t) => {
  const h = harness();
  const first = await h.subscribe({ expires: 600 });
  await h.answer(notifies(first)[0]!, 200);
  const states: string[] = [];
  for (const state of ['trying', 'early', 'confirmed', 'terminated'] as const) {
    const before = h.out.length;
    h.store.dialogChanged('100', { id: 'call-1', direction: 'recipient', state, ...(state === 'terminated' ? { event: 'remote-bye' as const } : {}) });
    await new Promise((r) => setImmediate(r));
    const [n] = notifies(h.out.slice(before).map((o) => o.msg));
    states.push(/<state[^>]*>([a-z]+)<\/state>/.exec(n?.body.toString('utf8') ?? '')?.[1] ?? 'none');
    await h.answer(n!, 200);
  }
  t.same(states, ['trying', 'early', 'confirmed', 'terminated']);

  const before = h.out.length;
  h.store.dialogChanged('100', { id: 'call-2', state: 'trying' });
  await new Promise((r) => setImmediate(r));
  const [n] = notifies(h.out.slice(before).map((o) => o.msg));
  await h.answer(n!, 481);
  t.equal(h.store.subscriptions().length, 0, 'RFC 6665 §4.2.2: a failed NOTIFY ends the subscription');
  t.equal(h.dialogs.size, 0);
});

t.test('presence and shutdown: open/closed documents, then deactivated for everyone', async (t) => {
  const h = harness();
  const first = await h.subscribe({ uri: 'sip:101@test.local', event: 'presence', expires: 600, callId: 'c-pres' });
  t.match(notifies(first)[0]!.body.toString('utf8'), /<basic>closed<\/basic>/);
  t.equal(notifies(first)[0]!.headers.get('content-type'), 'application/pidf+xml');
  await h.answer(notifies(first)[0]!, 200);
  h.registered.add('101');
  const before = h.out.length;
  h.store.registrationChanged('101', true);
  await new Promise((r) => setImmediate(r));
  const [open] = notifies(h.out.slice(before).map((o) => o.msg));
  t.match(open?.body.toString('utf8'), /<basic>open<\/basic>/);
  await h.answer(open!, 200);
  const mark = h.out.length;
  h.store.close();
  await new Promise((r) => setImmediate(r));
  const [last] = notifies(h.out.slice(mark).map((o) => o.msg));
  t.equal(last?.headers.get('subscription-state'), 'terminated;reason=deactivated');
  t.equal(h.dialogs.size, 0);
});

t.test('OPTIONS lists Allow-Events; SUBSCRIBE is in Allow', async (t) => {
  const h = harness();
  const [ok] = await h.receive(
    'OPTIONS sip:test.local SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-o1\nMax-Forwards: 70\nFrom: <sip:102@test.local>;tag=o\n' +
      'To: <sip:test.local>\nCall-ID: o1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n',
  );
  t.equal((ok as SipResponse).headers.get('allow-events'), 'dialog, presence');
  t.match((ok as SipResponse).headers.get('allow'), /\bSUBSCRIBE\b/);
});
