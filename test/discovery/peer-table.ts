import t from 'tap';
import { decodeTxt, type DnsSdType, type ServiceSighting } from '../../src/discovery/dns-sd-records.ts';
import { PeerTable } from '../../src/discovery/peer-table.ts';
import { ManualClock } from '../../src/runtime/clock.ts';

const enc = new TextEncoder();
const SELF = '00000000-0000-4000-8000-000000000000';

function sighting(instance: string, type: DnsSdType = 'sipuri', txt: Record<string, string> = {}, over: Partial<ServiceSighting> = {}): ServiceSighting {
  return {
    type,
    instance,
    host: `${instance.replace(/\W/g, '-')}.local`,
    port: 5060,
    addresses: ['10.0.0.9'],
    txt: decodeTxt(Object.entries({ product: 'hookswitch', exts: '101', ...txt }).map(([k, v]) => enc.encode(`${k}=${v}`))),
    ttlSeconds: 120,
    ...over,
  };
}

function table(maxTtlSeconds?: number): { clock: ManualClock; peers: PeerTable } {
  const clock = new ManualClock(0, 1_700_000_000_000);
  return { clock, peers: new PeerTable({ clock, selfInstanceId: SELF, ...(maxTtlSeconds ? { maxTtlSeconds } : {}) }) };
}

t.test('sightings: up, refresh, update; both types merge into one peer', async (t) => {
  const { clock, peers } = table();
  t.equal(peers.seen(sighting('hookswitch on hall')), 'up');
  clock.advance(1000);
  t.equal(peers.seen(sighting('hookswitch on hall')), 'refresh', 'same records again');
  t.equal(peers.seen(sighting('Hookswitch on Hall', 'sip')), 'update', 'a second type (names compare ignoring case)');
  t.equal(peers.seen(sighting('hookswitch on hall', 'sip', { exts: '101,102' })), 'update', 'TXT changed');
  const list = peers.list();
  t.equal(list.length, 1);
  t.same(list[0]!.types, ['sip', 'sipuri']);
  t.same(list[0]!.extensions, ['101', '102'], 'the latest sighting wins');
  t.equal(list[0]!.lastSeen, 1_700_000_001_000, 'wall-clock time of the last sighting');
  t.equal(list[0]!.isHookswitch, true);
});

t.test('our own announcement looped back is not a peer', async (t) => {
  const { peers } = table();
  t.equal(peers.seen(sighting('hookswitch on me', 'sipuri', { instance_id: SELF })), 'self');
  t.same(peers.list(), []);
});

t.test('goodbye (RFC 6762 §10.1) removes a type; the peer leaves with its last type', async (t) => {
  const { peers } = table();
  peers.seen(sighting('hall', 'sipuri'));
  peers.seen(sighting('hall', 'sip'));
  t.equal(peers.goodbye('sip', 'HALL'), undefined, 'still there under _sipuri');
  t.same(peers.list()[0]!.types, ['sipuri']);
  t.equal(peers.goodbye('sipuri', 'hall')?.name, 'hall', 'the last type: the peer is returned');
  t.same(peers.list(), []);
  t.equal(peers.goodbye('sipuri', 'hall'), undefined, 'unknown: nothing');
  peers.seen(sighting('attic'));
  peers.seen(sighting('attic', 'sipuri', {}, { ttlSeconds: 0 }));
  t.same(peers.list(), [], 'a sighting with TTL 0 is a goodbye');
});

t.test('expiry: the TTL, capped at 120 s by default, counts from the last sighting', async (t) => {
  const cases: [string, number | undefined, number, number][] = [
    // name, maxTtlSeconds, record TTL, expected lifetime in ms
    ['short TTL as given', undefined, 10, 10_000],
    ['long PTR TTL capped', undefined, 4500, 120_000],
    ['configured cap', 30, 4500, 30_000],
  ];
  for (const [name, cap, ttl, lifetime] of cases) {
    const { clock, peers } = table(cap);
    peers.seen(sighting('hall', 'sipuri', {}, { ttlSeconds: ttl }));
    clock.advance(lifetime - 1);
    t.equal(peers.list().length, 1, `${name}: alive just before`);
    t.same(peers.expire(), [], `${name}: nothing expires yet`);
    clock.advance(1);
    t.same(peers.list(), [], `${name}: gone from the list at the TTL`);
    t.same(peers.expire().map((p) => p.name), ['hall'], `${name}: expire() reports it`);
  }
  const { clock, peers } = table();
  peers.seen(sighting('hall'));
  clock.advance(100_000);
  peers.seen(sighting('hall'));
  clock.advance(100_000);
  t.equal(peers.list().length, 1, 'a refresh restarts the TTL');
  peers.seen(sighting('hall', 'sip', {}, { ttlSeconds: 10 }));
  clock.advance(10_000);
  t.same(peers.expire(), [], 'one type expiring leaves the peer');
  t.same(peers.list()[0]!.types, ['sipuri']);
});

t.test('lookup by name, short name, prefix or instance_id', async (t) => {
  const { peers } = table();
  for (const [name, id] of [
    ['hookswitch on kitchen', 'id-k'],
    ['hookswitch on hall', 'id-h'],
    ['hookswitch on hallway', 'id-w'],
    ['Alice', 'id-a'],
  ] as const) peers.seen(sighting(name, 'sipuri', { instance_id: id }));
  const cases: [string, string, string | { error: string; candidates?: string[] }][] = [
    ['exact name', 'hookswitch on kitchen', 'hookswitch on kitchen'],
    ['ignores case and spaces around', '  ALICE ', 'Alice'],
    ['short name without "hookswitch on"', 'kitchen', 'hookswitch on kitchen'],
    ['an exact short name beats a longer prefix match', 'hall', 'hookswitch on hall'],
    ['unique prefix of a short name', 'kit', 'hookswitch on kitchen'],
    ['unique prefix of a full name', 'al', 'Alice'],
    ['instance_id', 'id-w', 'hookswitch on hallway'],
    ['ambiguous prefix', 'ha', { error: 'ambiguous', candidates: ['hookswitch on hall', 'hookswitch on hallway'] }],
    ['ambiguous full-name prefix', 'hookswitch', { error: 'ambiguous', candidates: ['hookswitch on hall', 'hookswitch on hallway', 'hookswitch on kitchen'] }],
    ['nothing', 'garage', { error: 'not-found' }],
    ['empty', '', { error: 'not-found' }],
  ];
  for (const [name, query, expected] of cases) {
    const r = peers.lookup(query);
    if (typeof expected === 'string') {
      t.equal('peer' in r ? r.peer.name : r, expected, name);
      t.equal(peers.find(query)?.name, expected, `${name}: find`);
    } else {
      t.same(r, expected, name);
      t.equal(peers.find(query), undefined, `${name}: find gives nothing`);
    }
  }
  t.same(peers.list().map((p) => p.name), ['Alice', 'hookswitch on hall', 'hookswitch on hallway', 'hookswitch on kitchen'], 'list sorted by name');
  peers.clear();
  t.same(peers.list(), []);
});
