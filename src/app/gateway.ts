import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import { DigestServer } from '../sip/auth/digest-server.ts';
import { SipStack } from '../sip/stack.ts';
import { TransportLayer } from '../sip/transport/transport-layer.ts';
import { formatEndpoint, type Endpoint } from '../sip/transport/transport.ts';
import { ExtensionCredentials, RequestAuthenticator } from '../sip/ua/request-authenticator.ts';
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
    const credentials = new ExtensionCredentials(config.extensions);
    const digest = new DigestServer({
      realm: config.sip.domain,
      algorithms: config.sip.authAlgorithms,
      secret: deps.random.bytes(32),
      clock: deps.clock,
      random: deps.random,
    });
    const auth = new RequestAuthenticator({ digest, credentials, logger: deps.logger.child('auth') });
    const core = new UasCore({ logger: deps.logger.child('uas'), auth, userAgent: `${config.sip.userAgent}` });

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
    this.log.info('started', { domain: config.sip.domain, stateDir: config.stateDir, extensions: Object.keys(config.extensions).length });
  }

  /** The bound endpoints (actual ports when port 0 was asked for). */
  endpoints(): Endpoint[] {
    const layer = this.transports;
    if (!layer) return [];
    return (['udp', 'tcp', 'tls'] as const).filter((t) => layer.has(t)).map((t) => layer.localEndpoint(t));
  }

  async stop(): Promise<void> {
    await this.transports?.close();
    this.transports = undefined;
    this.stack = undefined;
  }
}
