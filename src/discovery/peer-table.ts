/**
 * The SIP peers seen on the LAN, keyed by instance name (case-insensitively, as DNS names compare).
 * One peer may be seen under several service types (`_sipuri._udp` and `_sip._udp`); it leaves
 * the table when every type said goodbye or expired. Pure: fed sightings by the mDNS adapter,
 * time from the injected Clock; `hookswitch peers` and the dial plan's `peer` target read it.
 */
import type { Clock } from '../runtime/clock.ts';
import { peerInfo, type DnsSdType, type PeerInfo, type ServiceSighting } from './dns-sd-records.ts';

/** A peer as `hookswitch peers` shows it. */
export interface Peer extends PeerInfo {
  /** The service types it was seen under, sorted. */
  types: DnsSdType[];
  /** Wall-clock time (ms since the epoch) of the last sighting. */
  lastSeen: number;
}

/**
 * Host records (SRV, A) carry a TTL of 120 s (RFC 6762 §10), the PTR far longer; a peer is
 * trusted no longer than this without being seen again, so a box unplugged without a goodbye
 * disappears within minutes rather than hours.
 */
export const DEFAULT_MAX_TTL_SECONDS = 120;

/** What a sighting changed. `self`: our own announcement, ignored. */
export type SightingResult = 'up' | 'update' | 'refresh' | 'self';

export interface PeerTableOptions {
  clock: Clock;
  /** Our own `instance_id`: sightings carrying it are our announcements looped back. */
  selfInstanceId?: string;
  /** Cap on the TTL a sighting is trusted for; {@link DEFAULT_MAX_TTL_SECONDS} by default. */
  maxTtlSeconds?: number;
}

interface TypeEntry {
  info: PeerInfo;
  /** Order of arrival, so the latest of two sightings at the same instant wins. */
  seq: number;
  wallSeenAt: number;
  expiresAt: number;
}

/** The result of looking a peer up by what a user typed. */
export type PeerLookup = { peer: Peer } | { error: 'not-found' } | { error: 'ambiguous'; candidates: string[] };

const DEFAULT_NAME_PREFIX = 'hookswitch on ';

/** Peers seen on the LAN; see the file comment. */
export class PeerTable {
  private readonly peers = new Map<string, Map<DnsSdType, TypeEntry>>();
  private readonly maxTtlMs: number;
  private seq = 0;

  constructor(private readonly opts: PeerTableOptions) {
    this.maxTtlMs = (opts.maxTtlSeconds ?? DEFAULT_MAX_TTL_SECONDS) * 1000;
  }

  /** Records a sighting (an answer or announcement); a TTL of 0 is taken as a goodbye. */
  seen(s: ServiceSighting): SightingResult {
    const info = peerInfo(s);
    if (this.opts.selfInstanceId !== undefined && info.instanceId === this.opts.selfInstanceId) return 'self';
    if (s.ttlSeconds <= 0) {
      this.goodbye(s.type, s.instance);
      return 'update';
    }
    const key = s.instance.toLowerCase();
    const now = this.opts.clock.now();
    let types = this.peers.get(key);
    const before = types ? this.view(types) : undefined;
    if (!types) {
      types = new Map();
      this.peers.set(key, types);
    }
    types.set(s.type, {
      info,
      seq: this.seq++,
      wallSeenAt: this.opts.clock.wallNow(),
      expiresAt: now + Math.min(s.ttlSeconds * 1000, this.maxTtlMs),
    });
    if (!before) return 'up';
    return sameInfo(before, this.view(types)) ? 'refresh' : 'update';
  }

  /**
   * A goodbye (RFC 6762 §10.1: the record sent with TTL 0) for one type of an instance. Returns
   * the peer when this removed it from the table, undefined when other types keep it (or it was
   * not known).
   */
  goodbye(type: DnsSdType, instance: string): Peer | undefined {
    const key = instance.toLowerCase();
    const types = this.peers.get(key);
    if (!types?.has(type)) return undefined;
    const last = this.view(types);
    types.delete(type);
    if (types.size > 0) return undefined;
    this.peers.delete(key);
    return last;
  }

  /** Drops the type entries whose TTL ran out; returns the peers that left the table. */
  expire(): Peer[] {
    const now = this.opts.clock.now();
    const gone: Peer[] = [];
    for (const [key, types] of this.peers) {
      const last = this.view(types);
      for (const [type, entry] of types) if (entry.expiresAt <= now) types.delete(type);
      if (types.size === 0) {
        this.peers.delete(key);
        gone.push(last);
      }
    }
    return gone;
  }

  /** The peers currently known and not expired, sorted by name. */
  list(): Peer[] {
    const now = this.opts.clock.now();
    const out: Peer[] = [];
    for (const types of this.peers.values()) {
      const live = new Map([...types].filter(([, e]) => e.expiresAt > now));
      if (live.size > 0) out.push(this.view(live));
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Finds one peer by what a user typed: the instance name or `instance_id` exactly, the name
   * without its `hookswitch on ` prefix exactly, else a prefix of either form that only one peer
   * has. All comparisons ignore case.
   */
  lookup(query: string): PeerLookup {
    const q = query.trim().toLowerCase();
    if (q === '') return { error: 'not-found' };
    const peers = this.list();
    const short = (p: Peer): string => {
      const n = p.name.toLowerCase();
      return n.startsWith(DEFAULT_NAME_PREFIX) ? n.slice(DEFAULT_NAME_PREFIX.length) : n;
    };
    const exact = peers.filter((p) => p.name.toLowerCase() === q || p.instanceId?.toLowerCase() === q);
    const pick = (found: Peer[]): PeerLookup | undefined =>
      found.length === 1 ? { peer: found[0]! } : found.length > 1 ? { error: 'ambiguous', candidates: found.map((p) => p.name) } : undefined;
    return (
      pick(exact) ??
      pick(peers.filter((p) => short(p) === q)) ??
      pick(peers.filter((p) => p.name.toLowerCase().startsWith(q) || short(p).startsWith(q))) ?? { error: 'not-found' }
    );
  }

  /** {@link lookup} reduced to the peer, undefined when none or several match. */
  find(nameOrPrefix: string): Peer | undefined {
    const r = this.lookup(nameOrPrefix);
    return 'peer' in r ? r.peer : undefined;
  }

  /** Forgets every peer (discovery stopped). */
  clear(): void {
    this.peers.clear();
  }

  /** The merged view of one peer: the latest sighting's data, every type, the latest time. */
  private view(types: ReadonlyMap<DnsSdType, TypeEntry>): Peer {
    const entries = [...types.values()];
    const latest = entries.reduce((a, b) => (b.seq > a.seq ? b : a));
    return {
      ...latest.info,
      types: [...types.keys()].sort(),
      lastSeen: Math.max(...entries.map((e) => e.wallSeenAt)),
    };
  }
}

function sameInfo(a: Peer, b: Peer): boolean {
  const strip = ({ lastSeen: _l, ...rest }: Peer): Omit<Peer, 'lastSeen'> => rest;
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
