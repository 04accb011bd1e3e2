/**
 * The mDNS edge: publishes this box under `_sipuri._udp` and `_sip._udp` with bonjour-service,
 * browses the same types and feeds what it hears into a {@link PeerTable}. Only translation lives
 * here; names, TXT and peer interpretation are in dns-sd-records.ts, expiry in peer-table.ts.
 *
 * bonjour-service's Browser reports a service once and never again while its records stay the
 * same, so liveness comes from re-asking: every `refreshMs` a fresh browser per type queries
 * (RFC 6762 §5.2 continuous querying) and every answer refreshes the table. The long-lived
 * browsers are kept for goodbyes and changed records.
 */
import type { EventEmitter } from 'node:events';
import { Bonjour, type Browser, type Service } from 'bonjour-service';
import type { DiscoveryConfig } from '../config/discovery-section.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { buildTxt, decodeTxt, mdnsHostName, SERVICE_TYPES, txtFromObject, type AdvertisedIdentity, type DnsSdType, type ServiceSighting } from './dns-sd-records.ts';
import { DEFAULT_MAX_TTL_SECONDS, type PeerTable } from './peer-table.ts';

/** How often the browsers ask again and the table drops expired peers. */
export const DEFAULT_REFRESH_MS = 30_000;

/** How long `start()` waits for the socket to be bound. */
const READY_WAIT_MS = 2_000;

/** How long `stop()` and `reannounce()` wait for the goodbye to be sent. */
const GOODBYE_WAIT_MS = 1_000;

export interface MdnsDiscoveryOptions {
  config: DiscoveryConfig;
  /** This machine's host name (`os.hostname()`); the SRV target is its first label under `.local`. */
  hostname: string;
  /** What to advertise; called at start and at every re-announcement (addresses may have moved). */
  identity: () => AdvertisedIdentity;
  table: PeerTable;
  clock: Clock;
  logger: Logger;
  refreshMs?: number;
  /**
   * Publish AAAA records too (default false). bonjour-service publishes every IPv6 address,
   * link-local ones without their zone included, which no peer can use; turn this on only when
   * SIP listens on IPv6.
   */
  ipv6?: boolean;
}

/** What `status` shows about discovery. */
export interface DiscoveryStatus {
  enabled: boolean;
  name: string;
  /** The types whose announcement went out. */
  announced: DnsSdType[];
  peers: number;
  /** The last socket error, if any. */
  error?: string;
}

/** bonjour-service keeps its multicast-dns instance private; its 'error' must have a listener. */
interface WithServer {
  server?: { mdns?: EventEmitter };
}

/** Advertising and browsing over mDNS; see the file comment. Create one, `start()`, `stop()`. */
export class MdnsDiscovery {
  private bonjour: Bonjour | undefined;
  private browsers: Browser[] = [];
  private refreshers: Browser[] = [];
  private refreshTimer: TimerHandle | undefined;
  private announced = new Set<DnsSdType>();
  private lastError: string | undefined;
  private name = '';

  constructor(private readonly opts: MdnsDiscoveryOptions) {}

  /**
   * Opens the mDNS socket, publishes both types and starts browsing. Resolves once the socket is
   * bound; a failure is logged and reported by {@link status}, never thrown: the gateway runs on
   * without discovery.
   */
  async start(): Promise<void> {
    if (!this.opts.config.enabled || this.bonjour) return;
    const log = this.opts.logger;
    const iface = this.opts.config.interface;
    // bonjour-service/multicast-dns: with `interface` alone the socket binds to that address and
    // hears no multicast; bind the wildcard and join the group on that interface.
    const mdnsOptions = iface ? { interface: iface, bind: '0.0.0.0' } : {};
    const bonjour = new Bonjour(mdnsOptions as object, (err: Error) => this.fail('mDNS send failed', err));
    this.bonjour = bonjour;
    const mdns = (bonjour as unknown as WithServer).server?.mdns;
    const ready = new Promise<void>((resolve) => {
      if (!mdns) return resolve();
      const timer = this.opts.clock.setTimer(READY_WAIT_MS, resolve, 'mdns ready');
      mdns.once('ready', () => {
        timer.cancel();
        resolve();
      });
      mdns.on('error', (err: Error) => {
        this.fail('mDNS socket error', err);
        timer.cancel();
        resolve();
      });
      // multicast-dns retries a failed group join every 5 s: say it once, then quietly.
      let warned = false;
      mdns.on('warning', (err: Error) => {
        (warned ? log.debug : log.warn).call(log, 'mDNS warning', { reason: err.message });
        warned = true;
      });
    });
    this.publish(true);
    for (const type of SERVICE_TYPES) {
      const browser = bonjour.find({ type, protocol: 'udp' });
      browser.on('up', (s) => this.sighting(s));
      browser.on('srv-update', (s) => this.sighting(s));
      browser.on('txt-update', (s) => this.sighting(s));
      browser.on('down', (s) => this.down(s));
      this.browsers.push(browser);
    }
    this.scheduleRefresh();
    await ready;
    log.info('mDNS discovery started', { name: this.name, interface: iface ?? 'all' });
  }

  /**
   * Sends a goodbye for the current records and announces afresh: the A records and the contact
   * follow the box's new addresses. The gateway calls this when its local addresses change.
   */
  async reannounce(): Promise<void> {
    if (!this.bonjour) return;
    await this.unpublish();
    this.publish(false);
    this.opts.logger.info('mDNS re-announced', { name: this.name });
  }

  /** Sends the goodbye (RFC 6762 §10.1), stops browsing and closes the socket; forgets the peers. */
  async stop(): Promise<void> {
    const bonjour = this.bonjour;
    if (!bonjour) return;
    this.refreshTimer?.cancel();
    for (const b of [...this.browsers, ...this.refreshers]) b.stop();
    this.browsers = [];
    this.refreshers = [];
    await this.unpublish();
    await new Promise<void>((resolve) => bonjour.destroy(() => resolve()));
    this.bonjour = undefined;
    this.opts.table.clear();
  }

  status(): DiscoveryStatus {
    return {
      enabled: this.opts.config.enabled,
      name: this.name,
      announced: SERVICE_TYPES.filter((t) => this.announced.has(t)),
      peers: this.opts.table.list().length,
      ...(this.lastError ? { error: this.lastError } : {}),
    };
  }

  private publish(probe: boolean): void {
    const bonjour = this.bonjour!;
    const id = this.opts.identity();
    this.name = id.instanceName;
    const txt = buildTxt(id);
    for (const type of SERVICE_TYPES) {
      // RFC 6762 §8.1 probing makes sure the name is free; on a re-announcement it is ours.
      const service = bonjour.publish({ name: id.instanceName, type, protocol: 'udp', port: id.port, host: mdnsHostName(this.opts.hostname), txt, probe, disableIPv6: !this.opts.ipv6 });
      service.on('up', () => {
        this.announced.add(type);
        this.opts.logger.debug('mDNS service announced', { type: `_${type}._udp`, name: id.instanceName });
      });
    }
  }

  private unpublish(): Promise<void> {
    const bonjour = this.bonjour;
    this.announced.clear();
    if (!bonjour) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = this.opts.clock.setTimer(GOODBYE_WAIT_MS, resolve, 'mdns goodbye');
      bonjour.unpublishAll(() => {
        timer.cancel();
        resolve();
      });
    });
  }

  private scheduleRefresh(): void {
    this.refreshTimer = this.opts.clock.setTimer(
      this.opts.refreshMs ?? DEFAULT_REFRESH_MS,
      () => {
        for (const peer of this.opts.table.expire()) this.opts.logger.info('LAN peer expired', { peer: peer.name });
        for (const b of this.refreshers) b.stop();
        this.refreshers = SERVICE_TYPES.map((type) => {
          const browser = this.bonjour!.find({ type, protocol: 'udp' });
          browser.on('up', (s) => this.sighting(s));
          return browser;
        });
        this.scheduleRefresh();
      },
      'mdns refresh',
    );
  }

  private sighting(service: Service): void {
    const s = toSighting(service);
    if (!s) return;
    const result = this.opts.table.seen(s);
    if (result === 'up' || result === 'update') {
      this.opts.logger.info(result === 'up' ? 'LAN peer found' : 'LAN peer changed', {
        peer: s.instance,
        type: `_${s.type}._udp`,
        host: s.host,
        port: s.port,
        addresses: s.addresses.join(','),
      });
    }
  }

  private down(service: Service): void {
    if (!isDnsSdType(service.type)) return;
    const gone = this.opts.table.goodbye(service.type, service.name);
    if (gone) this.opts.logger.info('LAN peer left', { peer: gone.name });
  }

  private fail(what: string, err: Error): void {
    this.lastError = err.message;
    this.opts.logger.warn(what, { reason: err.message });
  }
}

const isDnsSdType = (t: unknown): t is DnsSdType => typeof t === 'string' && (SERVICE_TYPES as readonly string[]).includes(t);

/** bonjour-service's Service as our sighting; undefined for what is not one of our types. */
function toSighting(service: Service): ServiceSighting | undefined {
  if (!isDnsSdType(service.type) || typeof service.name !== 'string' || typeof service.port !== 'number') return undefined;
  const raw = (service as unknown as { rawTxt?: unknown }).rawTxt;
  const txt = Array.isArray(raw) && raw.every((b) => b instanceof Uint8Array) ? decodeTxt(raw) : txtFromObject((service.txt as Record<string, unknown> | undefined) ?? {});
  const addresses = service.addresses?.length ? service.addresses : service.referer ? [service.referer.address] : [];
  return {
    type: service.type,
    instance: service.name,
    host: service.host,
    port: service.port,
    addresses,
    txt,
    ttlSeconds: service.ttl ?? DEFAULT_MAX_TTL_SECONDS,
  };
}
