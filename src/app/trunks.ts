/**
 * The trunks as the rest of the gateway sees them: where each one's requests go (outbound
 * proxy or the trunk, names resolved), which addresses its calls come from, and its
 * registration. I/O edge: DNS and the interface table are read here.
 */
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { TrunkTarget } from '../calls/types.ts';
import type { TrunkConfig } from '../config/config.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Destination } from '../sip/transaction/types.ts';
import { resolveTarget } from '../sip/transport/resolver.ts';
import { splitHostPort } from '../sip/ua/registration-client.ts';
import type { Random } from '../runtime/random.ts';

/** A trunk with its resolved addresses; the addresses are refreshed by {@link resolveTrunk}. */
export class ResolvedTrunk implements TrunkTarget {
  readonly name: string;
  readonly domain: string;
  readonly transport: 'udp' | 'tcp' | 'tls';
  readonly username: string;
  readonly authUsername?: string;
  readonly password: string;
  private target: Destination;
  private addresses: string[];

  constructor(
    readonly config: TrunkConfig,
    destination: Destination,
    sources: string[],
    /** Every resolved candidate, in the order to try them (RFC 3263 §4.3). */
    readonly destinations: Destination[] = [destination],
  ) {
    this.name = config.name;
    this.domain = config.domain ?? config.host;
    this.transport = config.transport;
    this.username = config.username;
    if (config.authUsername !== undefined) this.authUsername = config.authUsername;
    this.password = config.password;
    this.target = destination;
    this.addresses = sources;
  }

  destination(): Destination {
    return this.target;
  }

  sources(): string[] {
    return this.addresses;
  }

  /**
   * Whether a request from `source` comes from this trunk: its address is one of the trunk's,
   * and over UDP also its port (a PBX on the same host as the phones must not make every phone a
   * trunk). Stream connections come from ephemeral ports, so only the address counts there.
   */
  accepts(source: Destination): boolean {
    if (!this.addresses.includes(source.address)) return false;
    if (source.transport !== 'udp') return true;
    return this.destinations.some((d) => d.port === source.port) || this.target.port === source.port;
  }

  update(destination: Destination, sources: string[]): void {
    this.target = destination;
    this.addresses = sources;
  }
}

/**
 * Where a trunk's requests go, in the order to try them (RFC 3263: NAPTR, SRV, A/AAAA for a
 * host name; the outbound proxy instead when configured), and the addresses its calls may come
 * from (every candidate). A port equal to the transport's default is treated as "not given", so
 * that SRV records are used for a plain host name.
 */
export async function resolveTrunk(
  trunk: TrunkConfig,
  log: Logger,
  random?: Random,
): Promise<{ destination: Destination; destinations: Destination[]; sources: string[] }> {
  const defaultPort = trunk.transport === 'tls' ? 5061 : 5060;
  const target = trunk.outboundProxy
    ? (({ host, port }) => ({ host, port }))(splitHostPort(trunk.outboundProxy))
    : { host: trunk.host, port: trunk.port === defaultPort ? undefined : trunk.port };
  let destinations: Destination[] = [];
  try {
    destinations = await resolveTarget(
      { host: target.host, transport: trunk.transport, ...(target.port !== undefined ? { port: target.port } : {}) },
      undefined,
      random,
    );
  } catch (e) {
    log.warn('could not resolve trunk host; sending to the name as given', { trunk: trunk.name, reason: (e as Error).message });
  }
  const first = destinations[0] ?? { transport: trunk.transport, address: target.host, port: target.port ?? defaultPort };
  const sources = destinations.map((d) => d.address);
  if (trunk.outboundProxy) {
    // Calls may also come straight from the trunk's own host.
    const bare = trunk.host.replace(/^\[(.*)\]$/, '$1');
    if (isIP(bare) !== 0) sources.push(bare);
    else sources.push(...(await lookup(bare, { all: true }).catch(() => [])).map((a) => a.address));
  }
  return { destination: first, destinations: destinations.length > 0 ? destinations : [first], sources };
}

/**
 * The local address to put in Via and Contact towards `remote`: the bind address, or for a
 * wildcard bind the address the kernel would send from (a connected UDP socket; no packet is
 * sent). Falls back to the bind address when that fails.
 */
export async function localAddressFor(bind: string, remote: string, port: number): Promise<string> {
  if (bind !== '0.0.0.0' && bind !== '::') return bind;
  const family = isIP(remote);
  if (family === 0) return bind;
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    return await new Promise<string>((resolve) => {
      socket.once('error', () => resolve(bind));
      socket.connect(port, remote, () => resolve(socket.address().address));
    });
  } finally {
    socket.close();
  }
}
