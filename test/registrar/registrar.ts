import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../src/runtime/clock.ts';
import { createRequest } from '../../src/sip/message/message.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message/message.ts';
import { parseMessage } from '../../src/sip/message/parser.ts';
import { parseUri } from '../../src/sip/message/uri.ts';
import { BindingStore } from '../../src/registrar/binding-store.ts';
import type { BindingRecord } from '../../src/registrar/binding-store.ts';
import { Registrar } from '../../src/registrar/registrar.ts';

const AOR = 'sip:alice@example.net';
const UA1 = 'sip:alice@192.0.2.10:5060';
const UA2 = 'sip:alice@192.0.2.20:5062;transport=tcp';
const INSTANCE = '"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"';

interface Reg {
  /** Each element becomes one Contact header field; omitted means a query. */
  contacts?: string[];
  expires?: string;
  callId?: string;
  cseq?: number;
  to?: string;
  extra?: [string, string][];
}

function register(r: Reg = {}): SipRequest {
  const fields: [string, string][] = [
    ['Via', 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-reg;rport=40000;received=198.51.100.7'],
    ['Max-Forwards', '70'],
    ['To', `<${r.to ?? AOR}>`],
    ['From', `<${r.to ?? AOR}>;tag=f1`],
    ['Call-ID', r.callId ?? 'call-1'],
    ['CSeq', `${r.cseq ?? 1} REGISTER`],
  ];
  for (const c of r.contacts ?? []) fields.push(['Contact', c]);
  if (r.expires !== undefined) fields.push(['Expires', r.expires]);
  fields.push(...(r.extra ?? []));
  return createRequest('REGISTER', 'sip:example.net', fields);
}

/** The answer of a registrar without persistence, which is always synchronous. */
function sync(res: SipResponse | Promise<SipResponse>): SipResponse {
  if (res instanceof Promise) throw new Error('expected a synchronous answer');
  return res;
}

function setup(opts: { maxExpires?: number; minExpires?: number; maxBindingsPerAor?: number } = {}) {
  const clock = new ManualClock();
  const store = new BindingStore({ clock, ...(opts.maxBindingsPerAor ? { maxBindingsPerAor: opts.maxBindingsPerAor } : {}) });
  const registrar = new Registrar({ clock, store, ...opts });
  return { clock, store, registrar };
}

/** The bindings of an AOR as `contact expires=N`, in lookup order (q descending). */
function state(registrar: Registrar, clock: ManualClock, aor = AOR): string[] {
  return registrar.lookup(aor).map((b) => `${b.contact} expires=${Math.ceil((b.expiresAt - clock.wallNow()) / 1000)}`);
}

function contactsOf(res: SipResponse): string[] {
  return res.headers.getAll('contact');
}

interface Case {
  name: string;
  /** Requests applied first (each must get a 200), with an optional clock advance before each. */
  before?: (Reg & { advanceMs?: number })[];
  advanceMs?: number;
  req: Reg;
  status: number;
  /** Contact values of the response (200 only). */
  contacts?: string[];
  /** Store content afterwards (`contact expires=N`). */
  bindings: string[];
  headers?: Record<string, string>;
}

const CASES: Case[] = [
  {
    name: 'adds a binding with the default lifetime (3600 s)',
    req: { contacts: [`<${UA1}>`] },
    status: 200,
    contacts: [`<${UA1}>;expires=3600`],
    bindings: [`${UA1} expires=3600`],
  },
  {
    name: 'refresh with a higher CSeq renews the lifetime of the same binding',
    before: [{ contacts: [`<${UA1}>`], expires: '600' }],
    advanceMs: 500_000,
    req: { contacts: [`<${UA1}>`], expires: '600', cseq: 2 },
    status: 200,
    contacts: [`<${UA1}>;expires=600`],
    bindings: [`${UA1} expires=600`],
  },
  {
    name: 'Expires: 0 removes the binding',
    before: [{ contacts: [`<${UA1}>`, `<${UA2}>`] }],
    req: { contacts: [`<${UA1}>`], expires: '0', cseq: 2 },
    status: 200,
    contacts: [`<${UA2}>;expires=3600`],
    bindings: [`${UA2} expires=3600`],
  },
  {
    name: 'Contact: * with Expires: 0 removes every binding (§10.3 step 6)',
    before: [{ contacts: [`<${UA1}>`, `<${UA2}>`] }],
    req: { contacts: ['*'], expires: '0', cseq: 2 },
    status: 200,
    contacts: [],
    bindings: [],
  },
  {
    name: 'Contact: * with another contact is a 400 and changes nothing',
    before: [{ contacts: [`<${UA1}>`] }],
    req: { contacts: ['*', `<${UA2}>`], expires: '0', cseq: 2 },
    status: 400,
    bindings: [`${UA1} expires=3600`],
  },
  {
    name: 'Contact: * with a non-zero Expires is a 400',
    before: [{ contacts: [`<${UA1}>`] }],
    req: { contacts: ['*'], expires: '60', cseq: 2 },
    status: 400,
    bindings: [`${UA1} expires=3600`],
  },
  {
    name: 'Contact: * without Expires is a 400 (the default is not zero)',
    req: { contacts: ['*'], cseq: 2 },
    status: 400,
    bindings: [],
  },
  {
    name: 'Contact: * from the same Call-ID with a lower CSeq is a 500 and removes nothing',
    before: [{ contacts: [`<${UA1}>`], cseq: 5 }],
    req: { contacts: ['*'], expires: '0', cseq: 4 },
    status: 500,
    bindings: [`${UA1} expires=3600`],
  },
  {
    name: 'Contact: * from another Call-ID removes bindings whatever their CSeq',
    before: [{ contacts: [`<${UA1}>`], cseq: 5 }],
    req: { contacts: ['*'], expires: '0', cseq: 1, callId: 'other' },
    status: 200,
    contacts: [],
    bindings: [],
  },
  {
    name: 'an interval below Min-Expires is a 423 with Min-Expires',
    req: { contacts: [`<${UA1}>`], expires: '30' },
    status: 423,
    headers: { 'Min-Expires': '60' },
    bindings: [],
  },
  {
    name: 'a too-short contact expires param is a 423 even with a good Expires header',
    req: { contacts: [`<${UA1}>`, `<${UA2}>;expires=10`], expires: '600' },
    status: 423,
    headers: { 'Min-Expires': '60' },
    bindings: [],
  },
  {
    name: 'an interval above the maximum is shortened to it',
    req: { contacts: [`<${UA1}>`], expires: '86400' },
    status: 200,
    contacts: [`<${UA1}>;expires=3600`],
    bindings: [`${UA1} expires=3600`],
  },
  {
    name: 'a malformed Expires is treated as the default (§20.19)',
    req: { contacts: [`<${UA1}>`], expires: 'soon' },
    status: 200,
    contacts: [`<${UA1}>;expires=3600`],
    bindings: [`${UA1} expires=3600`],
  },
  {
    name: 'the contact expires param overrides the Expires header per contact',
    req: { contacts: [`<${UA1}>;expires=120`, `<${UA2}>`], expires: '900' },
    status: 200,
    contacts: [`<${UA1}>;expires=120`, `<${UA2}>;expires=900`],
    bindings: [`${UA1} expires=120`, `${UA2} expires=900`],
  },
  {
    name: 'expires=0 on one contact removes only that binding',
    before: [{ contacts: [`<${UA1}>`, `<${UA2}>`] }],
    req: { contacts: [`<${UA1}>;expires=0`, `<${UA2}>`], expires: '300', cseq: 2 },
    status: 200,
    contacts: [`<${UA2}>;expires=300`],
    bindings: [`${UA2} expires=300`],
  },
  {
    name: 'bindings are listed by q, highest first; q is echoed',
    req: { contacts: [`<${UA1}>;q=0.1`, `<sip:alice@192.0.2.30>`, `<${UA2}>;q=0.7`] },
    status: 200,
    contacts: [`<sip:alice@192.0.2.30>;expires=3600`, `<${UA2}>;expires=3600;q=0.7`, `<${UA1}>;expires=3600;q=0.1`],
    bindings: [`sip:alice@192.0.2.30 expires=3600`, `${UA2} expires=3600`, `${UA1} expires=3600`],
  },
  {
    name: 'a malformed q is a 400',
    req: { contacts: [`<${UA1}>;q=1.5`] },
    status: 400,
    bindings: [],
  },
  {
    name: 'same Call-ID with a lower CSeq is a 500 and nothing changes (§10.3 step 7)',
    before: [{ contacts: [`<${UA1}>`], expires: '600', cseq: 10 }],
    req: { contacts: [`<${UA1}>`, `<${UA2}>`], expires: '3600', cseq: 9 },
    status: 500,
    bindings: [`${UA1} expires=600`],
  },
  {
    name: 'same Call-ID with an equal CSeq is a 500 and nothing changes',
    before: [{ contacts: [`<${UA1}>`], expires: '600', cseq: 10 }],
    req: { contacts: [`<${UA2}>`, `<${UA1}>;expires=0`], cseq: 10 },
    status: 500,
    bindings: [`${UA1} expires=600`],
  },
  {
    name: 'a new Call-ID updates the binding whatever its CSeq',
    before: [{ contacts: [`<${UA1}>`], expires: '600', cseq: 10 }],
    req: { contacts: [`<${UA1}>`], expires: '1200', cseq: 1, callId: 'rebooted' },
    status: 200,
    contacts: [`<${UA1}>;expires=1200`],
    bindings: [`${UA1} expires=1200`],
  },
  {
    name: 'a contact equal by URI comparison (host case, escaping) refreshes the same binding',
    before: [{ contacts: [`<sip:alice@PC.example.net;transport=udp>`] }],
    req: { contacts: [`<sip:%61lice@pc.example.net;transport=UDP;ob>`], expires: '120', cseq: 2 },
    status: 200,
    contacts: [`<sip:alice@pc.example.net;transport=UDP;ob>;expires=120`],
    bindings: [`sip:alice@pc.example.net;transport=UDP;ob expires=120`],
  },
  {
    name: 'RFC 5626: the same +sip.instance and reg-id replaces the binding at a new address',
    before: [{ contacts: [`<${UA1}>;+sip.instance=${INSTANCE};reg-id=1`] }],
    req: { contacts: [`<sip:alice@203.0.113.5:6000>;+sip.instance=${INSTANCE};reg-id=1`], cseq: 1, callId: 'call-2' },
    status: 200,
    contacts: [`<sip:alice@203.0.113.5:6000>;expires=3600;+sip.instance=${INSTANCE};reg-id=1`],
    bindings: ['sip:alice@203.0.113.5:6000 expires=3600'],
  },
  {
    name: 'RFC 5626: the same instance with another reg-id is a second flow',
    before: [{ contacts: [`<${UA1}>;+sip.instance=${INSTANCE};reg-id=1`] }],
    req: { contacts: [`<sip:alice@203.0.113.5:6000>;+sip.instance=${INSTANCE};reg-id=2`], cseq: 2 },
    status: 200,
    contacts: [
      `<${UA1}>;expires=3600;+sip.instance=${INSTANCE};reg-id=1`,
      `<sip:alice@203.0.113.5:6000>;expires=3600;+sip.instance=${INSTANCE};reg-id=2`,
    ],
    bindings: [`${UA1} expires=3600`, 'sip:alice@203.0.113.5:6000 expires=3600'],
  },
  {
    name: 'RFC 5626: the instance replacement obeys the CSeq rule of the Call-ID',
    before: [{ contacts: [`<${UA1}>;+sip.instance=${INSTANCE}`], cseq: 7 }],
    req: { contacts: [`<sip:alice@203.0.113.5>;+sip.instance=${INSTANCE}`], cseq: 7 },
    status: 500,
    bindings: [`${UA1} expires=3600`],
  },
  {
    name: 'bindings lapse when their lifetime has passed',
    before: [{ contacts: [`<${UA1}>;expires=60`, `<${UA2}>;expires=120`] }],
    advanceMs: 60_000,
    req: {},
    status: 200,
    contacts: [`<${UA2}>;expires=60`],
    bindings: [`${UA2} expires=60`],
  },
  {
    name: 'a query (no Contact) lists the bindings and changes nothing',
    before: [{ contacts: [`<${UA1}>`] }],
    advanceMs: 1000,
    req: { cseq: 1 },
    status: 200,
    contacts: [`<${UA1}>;expires=3599`],
    bindings: [`${UA1} expires=3599`],
  },
  {
    name: 'the AOR is canonical: an IPv6 host matches however it is written',
    before: [{ contacts: [`<${UA1}>`], to: 'sip:alice@[2001:db8::1]' }],
    req: { to: 'sip:alice@[2001:DB8:0:0::1]' },
    status: 200,
    contacts: [`<${UA1}>;expires=3600`],
    bindings: [],
  },
  {
    name: 'a malformed Contact is a 400',
    req: { contacts: ['<sip:alice@192.0.2.1'] },
    status: 400,
    bindings: [],
  },
  {
    name: 'the AOR is canonical: parameters and sips of the To are ignored',
    before: [{ contacts: [`<${UA1}>`], to: 'sips:alice@EXAMPLE.net;user=phone' }],
    req: {},
    status: 200,
    contacts: [`<${UA1}>;expires=3600`],
    bindings: [`${UA1} expires=3600`],
  },
];

t.test('REGISTER processing (RFC 3261 §10.3 steps 6-8)', async (t) => {
  for (const c of CASES) {
    t.test(c.name, async (t) => {
      const { clock, registrar } = setup();
      for (const b of c.before ?? []) {
        if (b.advanceMs) clock.advance(b.advanceMs);
        t.equal(sync(registrar.register(register(b), 'alice')).status, 200, 'setup request accepted');
      }
      if (c.advanceMs) clock.advance(c.advanceMs);
      const res = sync(registrar.register(register(c.req), 'alice'));
      t.equal(res.status, c.status, 'status');
      if (c.contacts) t.same(contactsOf(res), c.contacts, 'response Contact values');
      for (const [name, value] of Object.entries(c.headers ?? {})) t.equal(res.headers.get(name), value, name);
      if (c.status === 200) t.ok(res.headers.get('date')?.endsWith(' GMT'), 'Date header');
      t.same(state(registrar, clock), c.bindings, 'bindings afterwards');
    });
  }
});

t.test('limits and configuration', async (t) => {
  t.test('more bindings than the per-AOR bound is refused with 403 and changes nothing', async (t) => {
    const { clock, registrar } = setup({ maxBindingsPerAor: 2 });
    t.equal(sync(registrar.register(register({ contacts: [`<${UA1}>`, `<${UA2}>`] }), 'alice')).status, 200);
    const res = sync(registrar.register(register({ contacts: ['<sip:alice@192.0.2.99>'], cseq: 2 }), 'alice'));
    t.equal(res.status, 403);
    t.same(state(registrar, clock), [`${UA1} expires=3600`, `${UA2} expires=3600`]);
    // Refreshing the bindings already held is still allowed at the bound.
    t.equal(sync(registrar.register(register({ contacts: [`<${UA1}>`], cseq: 3 }), 'alice')).status, 200);
  });

  t.test('maxExpires and minExpires are configurable', async (t) => {
    const { registrar } = setup({ maxExpires: 300, minExpires: 120 });
    const short = sync(registrar.register(register({ contacts: [`<${UA1}>`], expires: '100' }), 'alice'));
    t.equal(short.status, 423);
    t.equal(short.headers.get('min-expires'), '120');
    const long = sync(registrar.register(register({ contacts: [`<${UA1}>`], cseq: 2 }), 'alice'));
    t.same(contactsOf(long), [`<${UA1}>;expires=300`], 'the default is capped too');
  });

  t.test('the binding records its source, User-Agent, Call-ID, CSeq and Path', async (t) => {
    const { registrar } = setup();
    const req = register({
      contacts: [`<${UA1}>`],
      cseq: 3,
      extra: [
        ['User-Agent', 'baresip v3'],
        ['Path', '<sip:edge.example.net;lr>'],
      ],
    });
    sync(registrar.register(req, 'alice', { transport: 'tcp', address: '198.51.100.9', port: 41000 }));
    const [b] = registrar.lookup('alice');
    t.match(b, {
      aor: AOR,
      contact: UA1,
      callId: 'call-1',
      cseq: 3,
      userAgent: 'baresip v3',
      path: ['<sip:edge.example.net;lr>'],
      source: { transport: 'tcp', address: '198.51.100.9', port: 41000 },
    });
    sync(registrar.register(register({ contacts: [`<${UA2}>`], cseq: 4 }), 'alice'));
    t.same(
      registrar.lookup(AOR).find((x) => x.contact === UA2)?.source,
      { transport: 'udp', address: '198.51.100.7', port: 40000 },
      'without a transport source, the top Via received/rport is used',
    );
  });

  t.test('lookup by user spans domains; by AOR it does not; count() counts live bindings', async (t) => {
    const { clock, registrar } = setup();
    sync(registrar.register(register({ contacts: [`<${UA1}>;expires=60`] }), 'alice'));
    sync(registrar.register(register({ contacts: [`<${UA2}>;q=0.5`], to: 'sip:alice@192.0.2.1' }), 'alice'));
    sync(registrar.register(register({ contacts: ['<sip:bob@192.0.2.50>'], to: 'sip:bob@example.net' }), 'bob'));
    t.same(registrar.lookup('alice').map((b) => b.contact), [UA1, UA2]);
    t.same(registrar.lookup('sip:alice@192.0.2.1').map((b) => b.contact), [UA2]);
    t.same(registrar.lookup(parseUri('sip:bob@example.net;transport=udp')).map((b) => b.contact), ['sip:bob@192.0.2.50']);
    t.equal(registrar.count(), 3);
    clock.advance(61_000);
    t.equal(registrar.count(), 2, 'the expired binding is no longer counted');
    t.equal(registrar.store.purge(), 1, 'purge() drops it');
    t.equal(registrar.store.purge(), 0);
  });
});

t.test('snapshot and restore keep the remaining lifetime', async (t) => {
  const { clock, registrar } = setup();
  sync(registrar.register(
    register({ contacts: [`<${UA1}>;q=0.5;+sip.instance=${INSTANCE};reg-id=1`, `<${UA2}>;expires=100`], extra: [['User-Agent', 'x']] }),
    'alice',
  ));
  clock.advance(40_000);
  const records: BindingRecord[] = JSON.parse(JSON.stringify(registrar.store.snapshot()));
  t.equal(records.length, 2);

  // A new process starts later: 30 s of wall time have passed since the snapshot.
  const later = new ManualClock(0, clock.wallNow() + 30_000);
  const store = new BindingStore({ clock: later });
  const restored = new Registrar({ clock: later, store });
  const broken = [{ aor: 'x' }, null, { ...records[0], expiresAt: 'never' }];
  t.equal(store.restore([...records, ...broken], later.wallNow()), 2, 'malformed records are skipped');
  t.same(state(restored, later), [`${UA2} expires=30`, `${UA1} expires=3530`]);
  t.same(store.snapshot(), records, 'the records round-trip unchanged');

  const res = sync(restored.register(register({ cseq: 1 }), 'alice'));
  t.same(contactsOf(res), [`<${UA2}>;expires=30`, `<${UA1}>;expires=3530;q=0.5;+sip.instance=${INSTANCE};reg-id=1`]);
  t.equal(sync(restored.register(register({ contacts: [`<${UA1}>`], cseq: 1 }), 'alice')).status, 500, 'CSeq state survives');

  t.equal(store.restore(records, later.wallNow() + 3_600_000), 0, 'records expired at restore time are dropped');
  t.equal(store.count(), 0);
});

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'rfc4475');
function torture(name: string): SipRequest {
  const msg = parseMessage(readFileSync(join(FIXTURES, `${name}.sip`)));
  if (msg.kind !== 'request') throw new Error(`${name} is not a request`);
  return msg;
}

t.test('RFC 4475 REGISTER torture messages', async (t) => {
  const TORTURE: { name: string; fixtures: string[]; user: string; aor: string; bindings: string[] }[] = [
    {
      name: 'cparam01: a parameter after an addr-spec Contact is a contact parameter, not a URI parameter',
      fixtures: ['cparam01'],
      user: 'watson',
      aor: 'sip:watson@example.com',
      bindings: ['sip:+19725552222@gw1.example.net'],
    },
    {
      name: 'cparam02: a parameter inside <> is a URI parameter kept in the contact',
      fixtures: ['cparam02'],
      user: 'watson',
      aor: 'sip:watson@example.com',
      bindings: ['sip:+19725552222@gw1.example.net;unknownparam'],
    },
    {
      name: 'cparam01 then cparam02: the URIs are equal (§19.1.4), the new Call-ID replaces the binding',
      fixtures: ['cparam01', 'cparam02'],
      user: 'watson',
      aor: 'sip:watson@example.com',
      bindings: ['sip:+19725552222@gw1.example.net;unknownparam'],
    },
    {
      name: 'regescrt: the escaped Route header stays in the contact URI',
      fixtures: ['regescrt'],
      user: 'user',
      aor: 'sip:user@example.com',
      bindings: ['sip:user@example.com?Route=%3Csip:sip.example.com%3E'],
    },
    {
      name: 'escnull: %00 and %00%00 are two distinct contacts of an AOR whose user holds a NUL',
      fixtures: ['escnull'],
      user: 'null-\u0000-null',
      aor: 'sip:null-%00-null@example.com',
      bindings: ['sip:%00@host5.example.com', 'sip:%00%00@host5.example.com'],
    },
  ];
  for (const c of TORTURE) {
    t.test(c.name, async (t) => {
      const { registrar } = setup();
      let res: SipResponse | undefined;
      for (const f of c.fixtures) res = sync(registrar.register(torture(f), c.user));
      t.equal(res?.status, 200);
      t.same(
        registrar.lookup(c.aor).map((b) => b.contact),
        c.bindings,
      );
      t.same(contactsOf(res!), c.bindings.map((b) => `<${b}>;expires=3600`));
      t.same(registrar.lookup(c.user).map((b) => b.contact), c.bindings, 'lookup by user');
    });
  }
});
