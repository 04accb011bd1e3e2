/**
 * The gateway's registrations with its trunks: one {@link RegistrationClient} per trunk with
 * `register: true`, and what keeps the Contact they advertise right — the public address learned
 * once with STUN (RFC 5389 Binding, `media.stunServer`), a new Contact when this box's addresses
 * change (DHCP renewal, Wi-Fi to Ethernet), and the un-registration and registration of the
 * trunks a reload removed, changed or added. Wiring for the composition root (gateway.ts): it
 * uses the sockets, stack and clock it is given and opens nothing itself.
 */
import type { Config, TrunkConfig } from '../config/config.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import { queryPublicAddress } from '../sip/nat/stun-client.ts';
import type { SipStack } from '../sip/stack.ts';
import type { TransportLayer } from '../sip/transport/transport-layer.ts';
import { RegistrationClient } from '../sip/ua/registration-client.ts';
import type { RegistrationStatus } from '../sip/ua/registration-options.ts';
import type { TrunkChanges } from './config-diff.ts';
import type { LocalAddresses } from './local-address.ts';
import { localAddressFor, ResolvedTrunk, resolveTrunk } from './trunks.ts';

/** How often the interface table is compared for address changes. */
const NETWORK_CHECK_MS = 30_000;

/** How long un-registrations are waited for before carrying on (gateway stop, trunk reload). */
export const UNREGISTER_WAIT_MS = 2_000;

/** Resolves every configured trunk (in parallel); a name that does not resolve is used as given. */
export function resolveTrunks(trunks: readonly TrunkConfig[], log: Logger, random: Random): Promise<ResolvedTrunk[]> {
  return Promise.all(
    trunks.map(async (t) => {
      const { destination, destinations, sources } = await resolveTrunk(t, log, random);
      return new ResolvedTrunk(t, destination, sources, destinations);
    }),
  );
}

/** What {@link TrunkRegistrations} works with; the composition root provides it once the stack exists. */
export interface TrunkRegistrationsOptions {
  config: Config;
  clock: Clock;
  random: Random;
  /** The gateway's logger; the clients log under its `sip.register` child. */
  logger: Logger;
  transports: TransportLayer;
  stack: SipStack;
  /** The gateway's resolved trunks, shared with the call layer: {@link TrunkRegistrations.replace} changes it in place. */
  trunks: ResolvedTrunk[];
  /** This box's addresses changed: called before the registrations are told. */
  onAddressChange: () => void;
  /** True once the gateway is stopping: no registration starts after that. */
  stopping: () => boolean;
}

/** The trunk registrations of one started gateway; on stop, `halt()` and then `unregisterAll()`. */
export class TrunkRegistrations {
  private registrations: RegistrationClient[] = [];
  /** Settles once every trunk registration has been created (host names resolved). */
  private started: Promise<void> = Promise.resolve();
  private networkTimer?: TimerHandle;
  /** The public address learned with STUN, when configured and answered. */
  private stunAddress?: string;
  /** Why the STUN query failed, for `status`. */
  private stunError?: string;
  /** Trunk un-registrations and registrations a reload started, one after another. */
  private work: Promise<void> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly o: TrunkRegistrationsOptions) {
    this.log = o.logger;
  }

  /**
   * Registers with the trunks and then watches the addresses, and asks STUN; returns at once:
   * resolving a trunk's host name must not hold up the start (or SIGTERM).
   */
  start(addresses: LocalAddresses): void {
    this.started = this.startRegistrations(addresses).catch((e: unknown) =>
      this.log.error('could not start trunk registrations', { reason: (e as Error).message }),
    );
    void this.learnPublicAddress();
  }

  /** The address trunk legs are reached on: `media.publicAddress`, else what STUN learned. */
  publicAddress(): string | undefined {
    return this.o.config.media.publicAddress ?? this.stunAddress;
  }

  /** What STUN answered, or why it did not, for `status`. */
  stunStatus(): { address?: string; error?: string } {
    return { ...(this.stunAddress ? { address: this.stunAddress } : {}), ...(this.stunError ? { error: this.stunError } : {}) };
  }

  /** Each trunk registration's state. */
  status(): RegistrationStatus[] {
    return this.registrations.map((r) => r.status());
  }

  /** The gateway is stopping: no more address checks. */
  halt(): void {
    this.networkTimer?.cancel();
  }

  /**
   * Un-registers from every trunk (best effort) once the registrations have started; resolves
   * when all answered or failed. The caller bounds the wait ({@link UNREGISTER_WAIT_MS}).
   */
  unregisterAll(): Promise<void> {
    return this.started.then(async () => {
      const registrations = this.registrations;
      this.registrations = [];
      await Promise.all(registrations.map((r) => r.stop()));
    });
  }

  /**
   * Reload: resolves the added and changed trunks (before anything changes), swaps them into the
   * trunk list the call layer and the source guard read, then in the background un-registers the
   * removed and changed ones (bounded, so the trunk never removes the new binding after making
   * it) and registers the added and changed ones. Unchanged trunks are not touched.
   */
  async replace(next: readonly TrunkConfig[], changes: TrunkChanges): Promise<void> {
    await this.started;
    const fresh = new Map<string, ResolvedTrunk>();
    for (const name of [...changes.added, ...changes.changed]) {
      const t = next.find((x) => x.name === name)!;
      const { destination, destinations, sources } = await resolveTrunk(t, this.log, this.o.random);
      fresh.set(name, new ResolvedTrunk(t, destination, sources, destinations));
    }
    const gone = new Set([...changes.removed, ...changes.changed]);
    const old = this.registrations.filter((r) => gone.has(r.status().trunk));
    this.registrations = this.registrations.filter((r) => !gone.has(r.status().trunk));
    const trunks = this.o.trunks;
    const kept = new Map(trunks.map((t) => [t.name, t]));
    trunks.splice(0, trunks.length, ...next.map((t) => fresh.get(t.name) ?? kept.get(t.name)!));
    this.log.info('trunks reloaded', { added: changes.added.join(','), removed: changes.removed.join(','), changed: changes.changed.join(',') });
    this.work = this.work.then(async () => {
      let timer: TimerHandle | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = this.o.clock.setTimer(UNREGISTER_WAIT_MS, resolve);
      });
      await Promise.race([Promise.all(old.map((r) => r.stop())), deadline]);
      timer?.cancel();
      for (const trunk of fresh.values()) {
        if (this.o.stopping()) return;
        if (trunk.config.register) await this.register(trunk);
      }
    });
  }

  /** One {@link RegistrationClient} per trunk with `register: true`, once the sockets are bound. */
  private async startRegistrations(addresses: LocalAddresses): Promise<void> {
    for (const trunk of this.o.trunks.filter((t) => t.config.register)) {
      await this.register(trunk);
      if (this.o.stopping()) return;
    }
    this.watchNetwork(addresses);
  }

  /** Creates and starts the {@link RegistrationClient} of one trunk (at start, or on reload). */
  private async register(trunk: ResolvedTrunk): Promise<void> {
    const { config, transports, stack } = this.o;
    if (!transports.has(trunk.transport)) {
      this.log.error('trunk transport is not enabled, not registering', { trunk: trunk.name, transport: trunk.transport });
      return;
    }
    const destination = trunk.destination();
    const local = transports.localEndpoint(trunk.transport);
    const address = await localAddressFor(local.address, destination.address, destination.port);
    if (this.o.stopping()) return;
    const client = new RegistrationClient({
      trunk: trunk.config,
      local: { address: this.publicAddress() ?? address, port: local.port },
      destination,
      destinations: trunk.destinations,
      sendRaw: (bytes, dest) => transports.send(bytes, dest),
      transactions: stack.transactions,
      clock: this.o.clock,
      random: this.o.random,
      logger: this.o.logger.child('sip.register'),
      userAgent: config.sip.userAgent,
    });
    this.registrations.push(client);
    client.start();
  }

  /** The trunk a registration belongs to (by name: reloads change the list). */
  private trunkOf(client: RegistrationClient): ResolvedTrunk | undefined {
    const name = client.status().trunk;
    return this.o.trunks.find((t) => t.name === name);
  }

  /**
   * Re-registers with the trunks when this box's addresses change (DHCP renewal, Wi-Fi to
   * Ethernet): the Contact the trunk holds would point nowhere.
   */
  private watchNetwork(addresses: LocalAddresses): void {
    const { transports } = this.o;
    let seen = addresses.fingerprint();
    const check = (): void => {
      this.networkTimer = this.o.clock.setTimer(NETWORK_CHECK_MS, check);
      const now = addresses.fingerprint();
      if (now === seen) return;
      seen = now;
      this.log.info('local addresses changed, re-registering', { addresses: now });
      this.o.onAddressChange();
      void Promise.all(
        this.registrations.map(async (client) => {
          const trunk = this.trunkOf(client);
          if (!trunk) return;
          const local = transports.localEndpoint(trunk.transport);
          const address = await localAddressFor(local.address, trunk.destination().address, trunk.destination().port);
          client.setLocal({ address: this.publicAddress() ?? address, port: local.port });
        }),
      );
    };
    this.networkTimer = this.o.clock.setTimer(NETWORK_CHECK_MS, check);
  }

  /**
   * Asks the STUN server (RFC 5389 Binding) for this box's public address, once at start; trunk
   * registrations then advertise it. Failure is logged and leaves the local addresses in use.
   */
  private async learnPublicAddress(): Promise<void> {
    const { config, transports } = this.o;
    const server = config.media.stunServer;
    if (!server || config.media.publicAddress) return;
    try {
      const mapped = await queryPublicAddress({ server, random: this.o.random, clock: this.o.clock });
      this.stunAddress = mapped.address;
      this.log.info('public address learned with STUN', { server, address: mapped.address });
      await this.started;
      this.registrations.forEach((client) => {
        const trunk = this.trunkOf(client);
        if (trunk) client.setLocal({ address: mapped.address, port: transports.localEndpoint(trunk.transport).port });
      });
    } catch (e) {
      this.stunError = (e as Error).message;
      this.log.warn('STUN query failed; using local addresses', { server, reason: (e as Error).message });
    }
  }
}
