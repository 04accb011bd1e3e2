import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Config, TrunkConfig } from '../config/config.ts';
import { Registrar } from '../registrar/registrar.ts';
import { defaultExtensions } from './default-extensions.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import { DigestServer } from '../sip/auth/digest-server.ts';
import { SipStack } from '../sip/stack.ts';
import { TransportLayer } from '../sip/transport/transport-layer.ts';
import type { Destination } from '../sip/transaction/types.ts';
import { formatEndpoint, type Endpoint } from '../sip/transport/transport.ts';
import { ExtensionCredentials, RequestAuthenticator } from '../sip/ua/request-authenticator.ts';
import { RegistrationClient, splitHostPort, type RegistrationStatus } from '../sip/ua/registration-client.ts';
import { UasCore } from '../sip/ua/uas-core.ts';

export interface GatewayDeps {
  clock: Clock;
  random: Random;
  logger: Logger;
}

/**
 * The composition root: the one place where sockets, files, timers and the protocol objects
 * are wired together. Everything below takes what it needs as constructor arguments.
 */
export class Gateway {
  private transports?: TransportLayer;
  private stack?: SipStack;
  private registrations: RegistrationClient[] = [];
  /** Settles once every trunk registration has been created (host names resolved). */
  private registrationsStarted: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly log: Logger;

  constructor(
    private readonly config: Config,
    private readonly deps: GatewayDeps,
  ) {
    this.log = deps.logger;
  }

  /** Opens the SIP sockets. Rejects with a one-line, user-facing message (port in use, ...). */
  async start(): Promise<void> {
    const { config, deps } = this;
    const extensions =
      Object.keys(config.extensions).length > 0 ? config.extensions : defaultExtensions(config.stateDir, deps.random, this.log);
    const credentials = new ExtensionCredentials(extensions);
    const digest = new DigestServer({
      realm: config.sip.domain,
      algorithms: config.sip.authAlgorithms,
      secret: deps.random.bytes(32),
      clock: deps.clock,
      random: deps.random,
    });
    const auth = new RequestAuthenticator({ digest, credentials, logger: deps.logger.child('auth') });
    const registrar = new Registrar({ clock: deps.clock, logger: deps.logger.child('registrar') });
    const core = new UasCore({ logger: deps.logger.child('uas'), auth, registrar, userAgent: `${config.sip.userAgent}` });

    const tls = config.sip.tls
      ? {
          port: config.sip.tls.port,
          cert: readFileSync(config.sip.tls.cert),
          key: readFileSync(config.sip.tls.key),
          ...(config.sip.tls.ca ? { ca: readFileSync(config.sip.tls.ca) } : {}),
        }
      : undefined;

    let stack: SipStack | undefined;
    const transports = new TransportLayer({
      bind: config.sip.bind,
      port: config.sip.port,
      transports: [...config.sip.transports, ...(tls ? (['tls'] as const) : [])],
      ...(tls ? { tls } : {}),
      idleTimeoutMs: config.sip.connectionIdleSeconds * 1000,
      clock: deps.clock,
      logger: deps.logger.child('sip.transport'),
      onMessage: (bytes, source, connection) => stack?.receive(bytes, source, connection),
      onStreamError: (source, reason) =>
        this.log.warn('stream framing error, connection closed', { peer: formatEndpoint(source), reason: reason.message }),
    });
    stack = new SipStack(
      { clock: deps.clock, random: deps.random, logger: deps.logger.child('sip'), transport: transports },
      core,
    );
    this.transports = transports;
    this.stack = stack;
    await transports.listen();
    this.log.info('started', { domain: config.sip.domain, stateDir: config.stateDir, extensions: Object.keys(extensions).length });
    // Not awaited: resolving a trunk's host name must not hold up the start (or SIGTERM).
    this.registrationsStarted = this.startRegistrations(transports, stack).catch((e: unknown) =>
      this.log.error('could not start trunk registrations', { reason: (e as Error).message }),
    );
  }

  /** One {@link RegistrationClient} per trunk with `register: true`, once the sockets are bound. */
  private async startRegistrations(transports: TransportLayer, stack: SipStack): Promise<void> {
    const { config, deps } = this;
    for (const trunk of config.trunks.filter((t) => t.register)) {
      if (!transports.has(trunk.transport)) {
        this.log.error('trunk transport is not enabled, not registering', { trunk: trunk.name, transport: trunk.transport });
        continue;
      }
      const destination = await trunkDestination(trunk, this.log);
      const local = transports.localEndpoint(trunk.transport);
      const address = await localAddressFor(local.address, destination.address, destination.port);
      if (this.stopping) return;
      const client = new RegistrationClient({
        trunk,
        local: { address, port: local.port },
        destination,
        transactions: stack.transactions,
        clock: deps.clock,
        random: deps.random,
        logger: deps.logger.child('sip.register'),
        userAgent: config.sip.userAgent,
      });
      this.registrations.push(client);
      client.start();
    }
  }

  /** Each trunk registration's state, for `status`. */
  registrationStatus(): RegistrationStatus[] {
    return this.registrations.map((r) => r.status());
  }

  /** The bound endpoints (actual ports when port 0 was asked for). */
  endpoints(): Endpoint[] {
    const layer = this.transports;
    if (!layer) return [];
    return (['udp', 'tcp', 'tls'] as const).filter((t) => layer.has(t)).map((t) => layer.localEndpoint(t));
  }

  /**
   * Un-registers from every trunk (best effort, at most {@link UNREGISTER_WAIT_MS}), then closes
   * the sockets.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, UNREGISTER_WAIT_MS);
    });
    const unregister = this.registrationsStarted.then(async () => {
      const registrations = this.registrations;
      this.registrations = [];
      await Promise.all(registrations.map((r) => r.stop()));
    });
    await Promise.race([unregister, deadline]);
    clearTimeout(timer);
    this.stack?.transactions.close();
    await this.transports?.close();
    this.transports = undefined;
    this.stack = undefined;
  }
}

/** How long `stop()` waits for un-registrations before closing the sockets anyway. */
const UNREGISTER_WAIT_MS = 2_000;

/** Where a trunk's requests go: the outbound proxy or the trunk, with the host name resolved. */
async function trunkDestination(trunk: TrunkConfig, log: Logger): Promise<Destination> {
  const defaultPort = trunk.transport === 'tls' ? 5061 : 5060;
  const { host, port } = trunk.outboundProxy
    ? (({ host: h, port: p }) => ({ host: h, port: p ?? defaultPort }))(splitHostPort(trunk.outboundProxy))
    : { host: trunk.host, port: trunk.port };
  let address = host;
  if (isIP(host) === 0) {
    try {
      address = (await lookup(host)).address;
    } catch (e) {
      log.warn('could not resolve trunk host; sending to the name as given', { trunk: trunk.name, host, reason: (e as Error).message });
    }
  }
  // The Request-URI keeps the name (TLS verifies it); only the packets go to the address.
  return { transport: trunk.transport, address, port };
}

/**
 * The local address to put in Via and Contact: the bind address, or for a wildcard bind the
 * address the kernel would send from towards the trunk (a connected UDP socket; no packet is
 * sent). Falls back to the bind address when that fails.
 */
async function localAddressFor(bind: string, remote: string, port: number): Promise<string> {
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
