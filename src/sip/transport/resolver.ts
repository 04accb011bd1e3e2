/**
 * Locating a SIP server (RFC 3263 §4): from a host (and optionally a port and transport) to an
 * ordered list of transport/address/port candidates. A NAPTR lookup picks the transports and
 * SRV names, SRV records (RFC 2782) pick hosts and ports, A/AAAA records the addresses.
 *
 * An adapter: it queries DNS through {@link DnsFunctions}, which default to `node:dns/promises`
 * and are replaced by tables in tests. The ordering logic takes its randomness from an injected
 * {@link Random}.
 */
import dns from 'node:dns/promises';
import { isIP } from 'node:net';
import { SystemRandom, type Random } from '../../runtime/random.ts';
import type { Destination } from '../transaction/types.ts';

type TransportName = Destination['transport'];

/** The DNS queries the resolver makes; `node:dns/promises` provides them. */
export interface DnsFunctions {
  resolveNaptr(name: string): Promise<{ flags: string; service: string; replacement: string; order: number; preference: number }[]>;
  resolveSrv(name: string): Promise<{ name: string; port: number; priority: number; weight: number }[]>;
  /** Every A and AAAA address of `host`. */
  lookup(host: string): Promise<{ address: string; family: number }[]>;
}

/** What to resolve: a SIP URI's host, with its port and transport when the URI names them. */
export interface ResolveTarget {
  host: string;
  port?: number;
  transport?: TransportName;
}

const systemDns: DnsFunctions = {
  resolveNaptr: (name) => dns.resolveNaptr(name),
  resolveSrv: (name) => dns.resolveSrv(name),
  lookup: (host) => dns.lookup(host, { all: true, verbatim: true }),
};

/** NAPTR services (RFC 3263 §4.1, RFC 3261 §26 registrations) for the transports this stack speaks. */
const NAPTR_SERVICES: Record<string, TransportName> = { 'sip+d2u': 'udp', 'sip+d2t': 'tcp', 'sips+d2t': 'tls' };

/** SRV owner-name prefixes per transport (RFC 3263 §4.2). */
const SRV_PREFIX: Record<TransportName, string> = { udp: '_sip._udp.', tcp: '_sip._tcp.', tls: '_sips._tcp.' };

const ALL_TRANSPORTS: TransportName[] = ['udp', 'tcp', 'tls'];

/** The default port of a transport when neither the URI nor an SRV record gives one (RFC 3261 §19.1.2). */
function defaultPortOf(transport: TransportName): number {
  return transport === 'tls' ? 5061 : 5060;
}

/**
 * Every candidate for `target`, most preferred first (RFC 3263 §4.3: on a timeout or transport
 * error the client tries the next one).
 *
 * - A numeric IP address is used as it is, with the given port or 5060 (5061 for TLS), over
 *   the given transport or UDP (§4.1, §4.2).
 * - A given port skips NAPTR and SRV: A/AAAA of the host (§4.2).
 * - Otherwise NAPTR records of the SIP services we support, by order then preference, give SRV
 *   names; without usable NAPTR records the SRV names `_sip._udp`, `_sip._tcp` and `_sips._tcp`
 *   are tried (§4.1). A given transport keeps only its own records: §4.1 lets a client skip
 *   NAPTR then, and keeping the domain's own SRV name is equivalent or better.
 * - SRV records are ordered by priority, then by weighted random choice (RFC 2782), and each
 *   target's A/AAAA addresses become candidates with the SRV port. No SRV record: A/AAAA of
 *   the host with the default port (§4.2).
 *
 * NXDOMAIN, no data and any other DNS failure of one query only moves on to the next step.
 * Rejects with a one-line Error naming the host when no address at all was found.
 */
export async function resolveTarget(target: ResolveTarget, dnsFns: DnsFunctions = systemDns, random: Random = new SystemRandom()): Promise<Destination[]> {
  const host = target.host.startsWith('[') && target.host.endsWith(']') ? target.host.slice(1, -1) : target.host;
  if (isIP(host) !== 0) {
    const transport = target.transport ?? 'udp';
    return [{ transport, address: host, port: target.port ?? defaultPortOf(transport) }];
  }
  const errors: string[] = [];
  const out = new Candidates();
  const query = async <T>(what: () => Promise<T[]>): Promise<T[]> => {
    try {
      return await what();
    } catch (e) {
      errors.push(errorCode(e));
      return [];
    }
  };
  const addHost = async (name: string, port: number, transport: TransportName): Promise<void> => {
    for (const a of await query(() => dnsFns.lookup(name))) out.add({ transport, address: a.address, port });
  };

  if (target.port !== undefined) {
    // §4.2: "If the TARGET was not a numeric IP address, but a port is present in the URI, the
    // client performs an A or AAAA record lookup of the domain name."
    await addHost(host, target.port, target.transport ?? 'udp');
    return out.orFail(host, errors);
  }

  const wanted = target.transport ? [target.transport] : ALL_TRANSPORTS;
  const srvNames: { name: string; transport: TransportName }[] = [];
  const naptr = (await query(() => dnsFns.resolveNaptr(host)))
    .filter((r) => r.flags.toLowerCase() === 's' && wanted.includes(NAPTR_SERVICES[r.service.toLowerCase()]!))
    .sort((a, b) => a.order - b.order || a.preference - b.preference);
  for (const r of naptr) srvNames.push({ name: r.replacement, transport: NAPTR_SERVICES[r.service.toLowerCase()]! });
  // §4.1: "If no NAPTR records are found, the client constructs SRV queries for those transport
  // protocols it supports".
  if (srvNames.length === 0) for (const t of wanted) srvNames.push({ name: SRV_PREFIX[t] + host, transport: t });

  let anySrv = false;
  for (const { name, transport } of srvNames) {
    const records = await query(() => dnsFns.resolveSrv(name));
    // RFC 2782: a single record with target "." means the service is decidedly not available.
    const usable = records.filter((r) => r.name !== '' && r.name !== '.');
    if (usable.length > 0) anySrv = true;
    for (const r of orderSrv(usable, random)) await addHost(r.name, r.port, transport);
  }
  // §4.2: "If no SRV records were found, the client performs an A or AAAA record lookup".
  if (!anySrv) {
    const transport = target.transport ?? 'udp';
    await addHost(host, defaultPortOf(transport), transport);
  }
  return out.orFail(host, errors);
}

/**
 * RFC 2782 order: ascending priority; within one priority, repeatedly pick a record at random
 * with probability proportional to its weight (zero-weight records first in the running sum,
 * so they are chosen only rarely, when all else is equal).
 */
export function orderSrv<T extends { priority: number; weight: number }>(records: readonly T[], random: Random): T[] {
  const byPriority = new Map<number, T[]>();
  for (const r of records) {
    const list = byPriority.get(r.priority) ?? [];
    list.push(r);
    byPriority.set(r.priority, list);
  }
  const out: T[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    // "arrange all SRV RRs (that have not been ordered yet) in any order, except that all
    // those with weight 0 are placed at the beginning of the list."
    const left = byPriority.get(priority)!.sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (left.length > 0) {
      const total = left.reduce((s, r) => s + r.weight, 0);
      const pick = uniform(random, total);
      let sum = 0;
      let index = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        sum += left[i]!.weight;
        if (sum >= pick) {
          index = i;
          break;
        }
      }
      out.push(left.splice(index, 1)[0]!);
    }
  }
  return out;
}

/** A uniform integer in [0, max]. */
function uniform(random: Random, max: number): number {
  if (max <= 0) return 0;
  return random.bytes(4).readUInt32BE(0) % (max + 1);
}

/** Candidates in order, without duplicates. */
class Candidates {
  private readonly list: Destination[] = [];
  private readonly seen = new Set<string>();
  add(d: Destination): void {
    const key = `${d.transport} ${d.address} ${d.port}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push(d);
  }
  orFail(host: string, errors: string[]): Destination[] {
    if (this.list.length > 0) return this.list;
    const why = [...new Set(errors)].join(', ') || 'no records';
    throw new Error(`could not resolve ${host}: no usable NAPTR, SRV, A or AAAA records (${why})`);
  }
}

function errorCode(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && typeof e.code === 'string') return e.code;
  return e instanceof Error ? e.message : String(e);
}
