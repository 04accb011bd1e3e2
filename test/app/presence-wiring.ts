/**
 * The presence parts as the gateway wires them, in memory: a real registrar behind the wrapped
 * REGISTER path, the subscription dialogs on a fake transaction layer, a manual clock.
 */
import t from 'tap';
import { createPresence } from '../../src/app/presence-wiring.ts';
import { resolveConfig } from '../../src/config/config.ts';
import { Registrar } from '../../src/registrar/registrar.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { SeededRandom } from '../../src/runtime/random.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message/message.ts';
import { parseMessage } from '../../src/sip/message/parser.ts';
import type { ClientTransactionHandlers, ServerTransaction } from '../../src/sip/transaction/types.ts';

function req(text: string): SipRequest {
  const m = parseMessage(Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1'));
  if (m.kind !== 'request') throw new Error('not a request');
  return m;
}

function setup() {
  const clock = new ManualClock();
  const config = resolveConfig({
    extensions: { '101': { password: 'pw-101-long' }, '102': { password: 'pw-102-long' } },
    presence: { minExpires: 10, dialogNotifyIntervalMs: 0, presenceNotifyIntervalMs: 0 },
  });
  const registrar = new Registrar({ clock, minExpires: 10 });
  const extensionNames = ['101', '102'];
  const sent: { request: SipRequest; handlers: ClientTransactionHandlers }[] = [];
  let branch = 0;
  const presence = createPresence({
    config,
    clock,
    random: new SeededRandom(3),
    logger: new MemoryLogger(),
    extensionNames,
    lookup: (u) => registrar.lookup(u),
    transactions: () => ({ newBranch: () => `z9hG4bK-n${++branch}`, sendRequest: (request, _dest, handlers) => void sent.push({ request, handlers }) }),
    localEndpoint: () => ({ address: '192.0.2.1', port: 5060 }),
  });
  const register = presence.registrar(registrar);
  let cseq = 0;
  const doRegister = (user: string, expires: number) =>
    register.register(
      req(
        `REGISTER sip:hookswitch.local SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.${user.slice(-1)}0:5062;branch=z9hG4bK-r${++cseq}\nFrom: <sip:${user}@hookswitch.local>;tag=r\n` +
          `To: <sip:${user}@hookswitch.local>\nCall-ID: reg-${user}\nCSeq: ${cseq} REGISTER\nContact: <sip:${user}@192.0.2.${user.slice(-1)}0:5062>\nExpires: ${expires}\nContent-Length: 0\n\n`,
      ),
      user,
    ) as SipResponse;
  let n = 0;
  const subscribe = (subscriber: string, resource: string, event: string) => {
    const responses: SipResponse[] = [];
    const tx = { source: { transport: 'udp', address: '192.0.2.20', port: 5062 }, respond: (r: SipResponse) => void responses.push(r) } as unknown as ServerTransaction;
    presence.handler.subscribe(
      req(
        `SUBSCRIBE sip:${resource}@hookswitch.local SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-s${++n}\nFrom: <sip:${subscriber}@hookswitch.local>;tag=s${n}\n` +
          `To: <sip:${resource}@hookswitch.local>\nCall-ID: sub-${n}\nCSeq: 1 SUBSCRIBE\nContact: <sip:${subscriber}@192.0.2.20:5062>\nEvent: ${event}\nExpires: 600\nContent-Length: 0\n\n`,
      ),
      tx,
      subscriber,
    );
    return responses[0]!.status;
  };
  /** The NOTIFYs sent since the last call, as `resource state body-fact`, each answered 200. */
  const drain = () => {
    const out = sent.splice(0).map(({ request, handlers }) => {
      const body = request.body.toString('utf8');
      const fact = /<basic>(\w+)<\/basic>/.exec(body)?.[1] ?? /<state[^>]*>(\w+)<\/state>/.exec(body)?.[1] ?? 'none';
      handlers.onResponse({ kind: 'response', status: 200, headers: request.headers, body: Buffer.alloc(0) } as unknown as SipResponse);
      return `${/sip:(\w+)@/.exec(request.headers.get('from') ?? '')?.[1]} ${request.headers.get('subscription-state')} ${fact}`;
    });
    return out;
  };
  return { clock, presence, doRegister, subscribe, drain, extensionNames };
}

t.test('presence follows the registrar: open on REGISTER, closed at expiry and on unregister', async (t) => {
  const s = setup();
  t.equal(s.subscribe('102', '101', 'presence'), 200);
  t.same(s.drain(), ['101 active;expires=600 closed'], 'not registered yet');
  t.equal(s.doRegister('101', 60).status, 200);
  t.same(s.drain(), ['101 active;expires=600 open'], 'open once 101 registered');
  s.clock.advance(60_000);
  t.same(s.drain(), ['101 active;expires=540 closed'], 'closed when the binding expired');
  s.doRegister('101', 60);
  s.doRegister('101', 0);
  t.same(s.drain(), ['101 active;expires=540 open', '101 active;expires=540 closed'], 'open, then closed by the unregister');
});

t.test('the device extension is a resource that is always open; dialog states reach its subscribers', async (t) => {
  const s = setup();
  t.equal(s.subscribe('101', '100', 'presence'), 200);
  t.equal(s.subscribe('101', '100', 'dialog'), 200);
  t.equal(s.subscribe('101', '999', 'dialog'), 404, 'an unknown number: 404');
  t.same(s.drain(), ['100 active;expires=600 open', '100 active;expires=600 none']);
  s.presence.dialogs.dialogChanged('100', { id: 'c-b', direction: 'recipient', state: 'early' });
  t.same(s.drain(), ['100 active;expires=600 early']);
  t.equal(s.presence.subscriptions().length, 2);
});

t.test('a removed extension ends its subscriptions (noresource); a subscriber that unregisters loses its own; shutdown ends the rest', async (t) => {
  const s = setup();
  s.doRegister('102', 60);
  s.subscribe('102', '101', 'dialog');
  s.subscribe('101', '102', 'presence');
  s.subscribe('101', '100', 'dialog');
  s.drain();
  s.extensionNames.splice(0, 2, '102');
  s.presence.extensionsChanged(s.extensionNames);
  t.same(s.drain(), ['101 terminated;reason=noresource none'], '101 removed from the config');
  s.doRegister('102', 0);
  t.same(s.drain(), ['102 active;expires=600 closed'], '102 went away: its watchers see closed');
  s.presence.close();
  t.same(s.drain().sort(), ['100 terminated;reason=deactivated none', '102 terminated;reason=deactivated closed'], 'RFC 6665 §4.1.3 deactivated at shutdown');
  t.equal(s.presence.subscriptions().length, 0);
});
