/**
 * The gateway's LAN discovery (mDNS/DNS-SD, src/discovery): the peer table, the advertised
 * identity and the instance id kept in the state directory across restarts. Wiring for the
 * composition root (gateway.ts), which starts and stops what {@link createDiscovery} returns.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pkg from '../../package.json' with { type: 'json' };
import type { Config } from '../config/config.ts';
import { instanceName, sipUri } from '../discovery/dns-sd-records.ts';
import { MdnsDiscovery } from '../discovery/mdns-discovery.ts';
import { PeerTable } from '../discovery/peer-table.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { TransportLayer } from '../sip/transport/transport-layer.ts';
import type { LocalAddresses } from './local-address.ts';

/** The discovery of one gateway: advertiser and browser, the peers it saw, and this box's instance id. */
export interface LanDiscovery {
  discovery: MdnsDiscovery;
  peers: PeerTable;
  instanceId: string;
}

/** What {@link createDiscovery} reads. */
export interface DiscoveryWiring {
  config: Config;
  clock: Clock;
  /** The gateway's logger: discovery logs under its `discovery` child. */
  logger: Logger;
  /** The bound SIP sockets (their port is advertised). */
  transports: TransportLayer;
  addresses: LocalAddresses;
  extensionNames: string[];
}

/**
 * The discovery to start, or undefined when `discovery.enabled` is off or SIP listens on
 * loopback only (logged): nobody on the LAN could reach what would be advertised. Reads (or
 * makes and saves) the instance id.
 */
export function createDiscovery(w: DiscoveryWiring): LanDiscovery | undefined {
  const { config, transports, addresses, extensionNames } = w;
  const log = w.logger.child('discovery');
  if (!config.discovery.enabled) return undefined;
  if (/^(127\.|::1$)/.test(config.sip.bind)) {
    log.info('discovery off: SIP listens on loopback only', { bind: config.sip.bind });
    return undefined;
  }
  const instanceId = loadInstanceId(config.stateDir, w.logger);
  const port = transports.localEndpoint(transports.has('udp') ? 'udp' : 'tcp').port;
  const bound = /^\d+\.\d+\.\d+\.\d+$/.test(config.sip.bind) && config.sip.bind !== '0.0.0.0' ? config.sip.bind : undefined;
  const iface = config.discovery.interface ?? bound;
  const peers = new PeerTable({ clock: w.clock, selfInstanceId: instanceId });
  const discovery = new MdnsDiscovery({
    config: iface === undefined ? config.discovery : { ...config.discovery, interface: iface },
    hostname: hostname(),
    ipv6: config.sip.bind.includes(':'),
    table: peers,
    clock: w.clock,
    logger: log,
    identity: () => ({
      instanceName: instanceName(config.discovery.name, hostname()),
      instanceId,
      version: pkg.version,
      port,
      contact: sipUri(config.device.extension, iface ?? addresses.facing('224.0.0.251'), port),
      extensions: extensionNames,
      deviceExtension: config.device.extension,
    }),
  });
  return { discovery, peers, instanceId };
}

/**
 * This box's DNS-SD instance id: the UUID in `<stateDir>/instance-id`, or a new one saved there
 * (mode 0600) on the first start. A file that cannot be written is logged; the id then lasts
 * until the process exits.
 */
export function loadInstanceId(stateDir: string, log: Logger): string {
  const file = join(stateDir, 'instance-id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch {
    // First start: made below.
  }
  const id = randomUUID();
  try {
    writeFileSync(file, `${id}\n`, { mode: 0o600 });
  } catch (e) {
    log.warn('could not save the instance id', { file, reason: (e as Error).message });
  }
  return id;
}
