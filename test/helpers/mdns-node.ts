/**
 * A hookswitch discovery node as a process, for tests that run it inside a network namespace:
 * `node --import=tsx test/helpers/mdns-node.ts '<json MdnsNodeSpec>'`. It starts MdnsDiscovery
 * and writes one JSON line per event on stdout: `{"event":"ready"}`, `{"event":"peers","peers":[...]}`
 * whenever the peer list changes, `{"event":"stopped"}`. Commands on stdin, one per line:
 * `reannounce`, `stop` (sends the goodbye, then exits).
 */
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { LocalAddresses } from '../../src/app/local-address.ts';
import { instanceName, sipUri } from '../../src/discovery/dns-sd-records.ts';
import { MdnsDiscovery } from '../../src/discovery/mdns-discovery.ts';
import { PeerTable } from '../../src/discovery/peer-table.ts';
import { SystemClock } from '../../src/runtime/clock.ts';
import { LineLogger } from '../../src/runtime/logger.ts';

/** What the node advertises and how. */
export interface MdnsNodeSpec {
  name: string;
  hostname?: string;
  interface?: string;
  instanceId: string;
  extensions: string[];
  deviceExtension?: string;
  port: number;
  refreshMs?: number;
  /** The peer table's TTL cap (default 120 s). */
  maxTtlSeconds?: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as MdnsNodeSpec;
const clock = new SystemClock();
const host = spec.hostname ?? hostname();
const logger = new LineLogger((line) => process.stderr.write(`${line}\n`), 'discovery', 'debug');
const table = new PeerTable({ clock, selfInstanceId: spec.instanceId, ...(spec.maxTtlSeconds ? { maxTtlSeconds: spec.maxTtlSeconds } : {}) });
const addresses = new LocalAddresses(spec.interface ?? '0.0.0.0', clock);
const emit = (o: object): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);

const discovery = new MdnsDiscovery({
  config: { enabled: true, name: spec.name, ...(spec.interface ? { interface: spec.interface } : {}) },
  hostname: host,
  identity: () => ({
    instanceName: instanceName(spec.name, host),
    instanceId: spec.instanceId,
    version: '0.0.0-test',
    port: spec.port,
    // Any multicast group stands for "the LAN": facing() picks the external address.
    contact: sipUri(spec.deviceExtension ?? 'hookswitch', addresses.facing('224.0.0.251'), spec.port),
    extensions: spec.extensions,
    ...(spec.deviceExtension ? { deviceExtension: spec.deviceExtension } : {}),
  }),
  table,
  clock,
  logger,
  refreshMs: spec.refreshMs ?? 3000,
});

let shown = '';
const poll = setInterval(() => {
  const peers = table.list();
  const key = JSON.stringify(peers.map(({ lastSeen: _l, ...p }) => p));
  if (key === shown) return;
  shown = key;
  emit({ event: 'peers', peers });
}, 100);

await discovery.start();
emit({ event: 'ready', status: discovery.status() });

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'reannounce') {
    await discovery.reannounce();
    emit({ event: 'reannounced' });
  } else if (line === 'stop') break;
}
clearInterval(poll);
await discovery.stop();
emit({ event: 'stopped' });
process.exit(0);
