import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { B2bua, type CallMediaFactory, type CallSummary } from '../calls/b2bua.ts';
import { DialPlan } from '../calls/dialplan.ts';
import { MessageInbox } from '../calls/message-inbox.ts';
import { MessageRelay } from '../calls/message-relay.ts';
import type { Config } from '../config/config.ts';
import type { ConfigReloader } from './config-reloader.ts';
import { createReloader } from './reloader-wiring.ts';
import { relayedMediaFactory } from '../media/media-session.ts';
import { legSecurity } from '../media/srtp-policy.ts';
import { PortAllocator } from '../media/port-allocator.ts';
import { RtpRelayFactory } from '../media/rtp-relay.ts';
import { BindingFile } from '../registrar/binding-file.ts';
import { BindingStore } from '../registrar/binding-store.ts';
import { Qualifier, optionsPinger } from '../registrar/qualifier.ts';
import { Registrar } from '../registrar/registrar.ts';
import { defaultExtensions } from './default-extensions.ts';
import { createDeviceEndpoint } from './device-wiring.ts';
import { boardProfile, startPhone, type Phone } from './phone-wiring.ts';
import type { SimulatorBackend } from '../hardware/backends/simulator.ts';
import { ControlServer } from '../control/control-server.ts';
import type { ControlCommands, ControlReply } from '../control/control-protocol.ts';
import type { DeviceEndpoint } from '../device/device-endpoint.ts';
import { builtinCodecs } from '../media/codec/builtin.ts';
import { CodecRegistry } from '../media/codec/registry.ts';
import { loadSpeexResampler } from '../media/resample/speex-resampler.ts';
import { LocalAddresses } from './local-address.ts';
import type { ResolvedTrunk } from './trunks.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import { SourceGuard } from '../security/source-guard.ts';
import { DigestServer } from '../sip/auth/digest-server.ts';
import { SipStack } from '../sip/stack.ts';
import { TransportLayer } from '../sip/transport/transport-layer.ts';
import { TraceHub } from '../trace/trace-hub.ts';
import { daemonSocket } from '../cli/control-socket.ts';
import { createDiscovery, type LanDiscovery } from './discovery-wiring.ts';
import { GatewayMetrics, countingGuard, countingRegistrar, type GatewayMetricSources } from '../ops/gateway-metrics.ts';
import type { MetricsServer } from '../ops/metrics-server.ts';
import { startMetricsServer } from './metrics-wiring.ts';
import pkg from '../../package.json' with { type: 'json' };
import { formatEndpoint, type Endpoint } from '../sip/transport/transport.ts';
import { ExtensionCredentials } from '../sip/ua/request-authenticator.ts';
import { PeerAuthenticator } from '../calls/peer-authenticator.ts';
import { PeerRoute } from '../calls/peer-route.ts';
import type { RegistrationStatus } from '../sip/ua/registration-options.ts';
import { createUasCore } from './uas-wiring.ts';
import { createPresence, type Presence } from './presence-wiring.ts';
import { controlCommands } from './control-wiring.ts';
import { resolveTrunks, TrunkRegistrations, UNREGISTER_WAIT_MS } from './trunk-registrations.ts';

export interface GatewayDeps {
  clock: Clock;
  random: Random;
  logger: Logger;
  /** `run --sim`: the simulated board standing in for the phone hardware. */
  simulator?: SimulatorBackend;
  /** The file the config was read from; reload re-reads it. Undefined: embedded defaults. */
  configPath?: string;
  /** Command-line settings that win over the file, applied again to a reloaded config. */
  overrides?: (config: Config) => void;
  /** Reads and validates a config file for a reload (the schema-checking store); a missing file is the defaults. */
  loadConfig?: (path: string) => Config;
}

/**
 * The composition root: the one place where sockets, files, timers and the protocol objects
 * are wired together. Everything below takes what it needs as constructor arguments.
 */
export class Gateway {
  private transports?: TransportLayer;
  private stack?: SipStack;
  /** The trunk registrations, their STUN address and address watch; made once the stack exists. */
  private trunkRegistrations?: TrunkRegistrations;
  private stopping = false;
  private readonly log: Logger;
  private bindingFile?: BindingFile;
  private qualifier?: Qualifier;
  private relays?: RtpRelayFactory;
  private calls?: B2bua;
  /** Instant messages (RFC 3428): the relay, and the device's inbox that `status` shows. */
  private messages?: MessageRelay;
  /** SUBSCRIBE/NOTIFY for the dialog and presence packages (busy-lamp field). */
  private presence?: Presence;
  private readonly inbox: MessageInbox;
  private trunks: ResolvedTrunk[] = [];
  /** When start() began (wall clock), for `status`'s uptime. */
  private startedAt = 0;
  private device?: DeviceEndpoint;
  private control?: ControlServer;
  private phone?: Phone;
  /** mDNS discovery and the other hookswitch boxes and SIP services seen on the LAN (`hookswitch peers`). */
  private lan?: LanDiscovery;
  private store?: BindingStore;
  /** Counters and gauges for `GET /metrics`, kept whether or not the endpoint is on. */
  private readonly metrics = new GatewayMetrics(this.metricSources(), pkg.version);
  private metricsServer?: MetricsServer;
  private sourceGuard?: SourceGuard;
  private reloader?: ConfigReloader;

  constructor(
    private readonly config: Config,
    private readonly deps: GatewayDeps,
  ) {
    this.log = deps.logger;
    this.inbox = new MessageInbox({ logger: deps.logger.child('messages'), keep: () => config.messages.keep });
  }

  /** Opens the SIP sockets. Rejects with a one-line, user-facing message (port in use, ...). */
  async start(): Promise<void> {
    const { config, deps } = this;
    this.startedAt = deps.clock.wallNow();
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
    // Extensions, and hookswitch peers holding discovery.secret (src/calls/peer-credentials.ts).
    const auth = new PeerAuthenticator({ digest, credentials, logger: deps.logger.child('auth'), secret: () => this.config.discovery.secret });

    // Trunks first: their addresses are trusted sources and the call layer's targets.
    this.trunks = await resolveTrunks(config.trunks, this.log, deps.random);
    const guard = new SourceGuard({
      allowedSources: config.security.allowedSources,
      maxAuthFailures: config.security.maxAuthFailures,
      banSeconds: config.security.banSeconds,
      clock: deps.clock,
      logger: deps.logger.child('security'),
      trusted: () => this.trunks.flatMap((t) => t.sources()),
    });
    this.sourceGuard = guard;

    // Bindings survive restarts: restored before the sockets open, written before each 200.
    const store = new BindingStore({ clock: deps.clock });
    this.store = store;
    const bindingFile = new BindingFile({
      path: join(config.stateDir, 'bindings.json'),
      store,
      clock: deps.clock,
      logger: deps.logger.child('registrar'),
    });
    const restored = await bindingFile.load();
    this.bindingFile = bindingFile;
    const registrar = new Registrar({
      clock: deps.clock,
      store,
      persistence: bindingFile,
      logger: deps.logger.child('registrar'),
      minExpires: config.registrar.minExpires,
      maxExpires: config.registrar.maxExpires,
      defaultExpires: config.registrar.defaultExpires,
    });

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
      onMessage: (bytes, source, connection) => {
        // A banned source is ignored entirely: no answer tells it anything.
        if (guard.isBanned(source.address)) return;
        stack?.receive(bytes, source, connection);
      },
      onStreamError: (source, reason) =>
        this.log.warn('stream framing error, connection closed', { peer: formatEndpoint(source), reason: reason.message }),
    });
    const addresses = new LocalAddresses(config.sip.bind, deps.clock);
    const localEndpoint = (transport: 'udp' | 'tcp' | 'tls', remote: string): { address: string; port: number } => ({
      address: addresses.facing(remote),
      port: transports.localEndpoint(transport).port,
    });

    const extensionNames = Object.keys(extensions);
    const dialplan = new DialPlan(config.dialplan, {
      extensions: extensionNames,
      deviceExtension: config.device.extension,
      trunks: config.trunks.map((t) => t.name),
      emergencyNumbers: config.emergencyNumbers,
    });
    // One allocator for media.rtpPorts: the call relays and the device's own RTP take from it.
    const rtpPorts = new PortAllocator(config.media.rtpPorts[0], config.media.rtpPorts[1]);
    this.relays = new RtpRelayFactory({
      allocator: rtpPorts,
      random: deps.random,
      bind: config.media.bind,
      ports: config.media.rtpPorts,
      clock: deps.clock,
      logger: deps.logger.child('media'),
    });
    const resamplers = await loadSpeexResampler();
    // The board is read first: an intercom (speaker and microphone) gets echo suppression.
    const profile = boardProfile(config, deps.simulator !== undefined);
    this.device = createDeviceEndpoint({
      ports: rtpPorts,
      echoSuppression: profile?.mode === 'intercom',
      config,
      clock: deps.clock,
      random: deps.random,
      logger: deps.logger,
      resamplers,
      dial: (number, follow) => this.calls!.dialFromDevice(number, follow),
    });
    let qualifier: Qualifier | undefined;
    const presence = createPresence({ ...deps, config, extensionNames, lookup: (u) => registrar.lookup(u), transactions: () => stack!.transactions, localEndpoint });
    this.presence = presence;
    const core = createUasCore({
      logger: deps.logger.child('uas'),
      auth,
      registrar: countingRegistrar(presence.registrar(registrar), this.metrics),
      presence: presence.handler,
      guard: countingGuard(guard, this.metrics),
      trunkFor: (source) => this.trunks.find((t) => t.accepts(source))?.name,
      userAgent: `${config.sip.userAgent}`,
      // The call layer and the MESSAGE relay are created once the stack exists; requests cannot arrive before.
      calls: () => this.calls,
      messages: () => this.messages,
      maxMessageBytes: () => this.config.messages.maxBytes,
    });
    stack = new SipStack(
      { clock: deps.clock, random: deps.random, logger: deps.logger.child('sip'), transport: transports },
      core,
    );
    this.trunkRegistrations = new TrunkRegistrations({
      config,
      clock: deps.clock,
      random: deps.random,
      logger: deps.logger,
      transports,
      stack,
      trunks: this.trunks,
      onAddressChange: () => void this.lan?.discovery.reannounce(),
      stopping: () => this.stopping,
    });
    this.calls = new B2bua({
      transactions: stack.transactions,
      clock: deps.clock,
      random: deps.random,
      logger: deps.logger.child('calls'),
      domain: config.sip.domain,
      userAgent: config.sip.userAgent,
      localEndpoint,
      publicAddress: () => this.trunkRegistrations?.publicAddress(),
      registrar: { lookup: (user) => registrar.lookup(user) },
      reachable: (contact) => qualifier?.status(contact) !== 'unreachable',
      dialplan,
      peers: this.peerRoute(localEndpoint),
      deviceExtension: config.device.extension,
      trunks: this.trunks,
      extensions,
      media: this.callMedia(config.media.codecs, resamplers),
      device: this.device,
      noAnswerSeconds: config.calls.noAnswerSeconds,
      rtpTimeoutSeconds: config.media.rtpTimeoutSeconds,
      sessionExpires: config.calls.sessionExpires,
      minSessionExpires: config.calls.minSessionExpires,
      observer: this.metrics,
      presence: presence.dialogs,
    });
    this.messages = new MessageRelay({
      transactions: stack.transactions,
      clock: deps.clock,
      random: deps.random,
      logger: deps.logger.child('messages'),
      userAgent: config.sip.userAgent,
      domain: config.sip.domain,
      localEndpoint,
      registrar: { lookup: (user) => registrar.lookup(user) },
      reachable: (contact) => qualifier?.status(contact) !== 'unreachable',
      dialplan,
      deviceExtension: config.device.extension,
      trunks: this.trunks,
      extensions,
      device: this.inbox,
    });
    this.transports = transports;
    this.stack = stack;
    await transports.listen();
    // Made even with qualifySeconds 0 (it then stays idle): a reload may turn it on.
    qualifier = new Qualifier({
      store,
      intervalSeconds: config.registrar.qualifySeconds,
      clock: deps.clock,
      random: deps.random,
      logger: deps.logger.child('registrar.qualify'),
      sendOptions: optionsPinger(stack.transactions, {
        localAddress: localEndpoint,
        userAgent: config.sip.userAgent,
        domain: config.sip.domain,
        random: deps.random,
      }),
    });
    qualifier.start();
    this.qualifier = qualifier;
    if (profile) {
      this.phone = await startPhone(profile, {
        config,
        clock: deps.clock,
        logger: deps.logger,
        line: this.device.line,
        extensions: extensionNames,
        ...(deps.simulator ? { simulator: deps.simulator } : {}),
      });
    }
    // `hookswitch trace`: the transport tap is set only while a trace client is attached.
    const trace = new TraceHub({
      localAddressFor: (remote) => addresses.facing(remote),
      onActiveChange: (active) => {
        transports.onTrace = active ? (event) => trace.publish(event) : undefined;
      },
    });
    const socket = daemonSocket(config.stateDir);
    this.control = new ControlServer(socket.path, this.controlCommands(), deps.logger.child('control'), trace, socket.mode);
    await this.startDiscovery(transports, addresses, extensionNames);
    this.reloader = createReloader(config, deps, {
      credentials,
      guard,
      extensionNames,
      calls: {
        reconfigure: (settings) => {
          this.calls!.reconfigure(settings);
          this.messages!.reconfigure(settings);
        },
      },
      mediaFor: (codecs) => this.callMedia(codecs, resamplers),
      ...(this.qualifier ? { qualifier: this.qualifier } : {}),
      ...(this.lan ? { discovery: this.lan.discovery } : {}),
      replaceTrunks: (next, changes) => this.trunkRegistrations!.replace(next, changes),
      presence,
    });
    await this.control.start();
    this.metricsServer = await startMetricsServer(config.metrics, () => this.metrics.render(), deps.logger);
    this.log.info('started', {
      domain: config.sip.domain,
      stateDir: config.stateDir,
      extensions: extensionNames.length,
      bindingsRestored: restored,
    });
    // Not awaited: resolving a trunk's host name must not hold up the start (or SIGTERM).
    this.trunkRegistrations.start(addresses);
  }

  /**
   * Advertises the box on the LAN and browses for peers (mDNS/DNS-SD); see discovery-wiring.ts
   * for when it stays off.
   */
  private async startDiscovery(transports: TransportLayer, addresses: LocalAddresses, extensionNames: string[]): Promise<void> {
    this.lan = createDiscovery({ config: this.config, clock: this.deps.clock, logger: this.deps.logger, transports, addresses, extensionNames });
    await this.lan?.discovery.start();
  }

  /** Calls to and from the hookswitch boxes that discovery finds (the dial plan's `peer` target). */
  private peerRoute(localEndpoint: (transport: 'udp', remote: string) => { address: string; port: number }): PeerRoute {
    return new PeerRoute({
      peers: () => this.lan?.peers,
      secret: () => this.config.discovery.secret,
      instanceId: () => this.lan?.instanceId,
      localEndpoint,
      random: this.deps.random,
      logger: this.deps.logger.child('calls.peer'),
    });
  }

  /** Where the metrics read the numbers that already exist elsewhere, at each scrape. */
  private metricSources(): GatewayMetricSources {
    return {
      sip: () => this.stack?.counters,
      bindings: () => this.registeredExtensions(),
      trunks: () => this.registrationStatus().map((r) => ({ trunk: r.trunk, state: r.state })),
      bans: () => this.sourceGuard?.banned().length ?? 0,
      activeCalls: () => this.callStatus().length,
      audio: () => this.device?.audioCounters(),
    };
  }

  /** Re-reads the configuration and applies what can change without dropping calls (SIGHUP, `hookswitch reload`). */
  async reload(): Promise<ControlReply> {
    if (!this.reloader || this.stopping) return { ok: false, error: 'the gateway is not running' };
    return this.reloader.reload();
  }

  /** What the CLI can ask of the running gateway (control socket; see control-wiring.ts). */
  private controlCommands(): ControlCommands {
    return controlCommands({
      config: this.config,
      clock: this.deps.clock,
      startedAt: () => this.startedAt,
      device: () => this.device!,
      phone: () => this.phone,
      lan: () => this.lan,
      calls: () => this.callStatus(),
      registrations: () => this.registrationStatus(),
      endpoints: () => this.endpoints(),
      stun: () => this.trunkRegistrations?.stunStatus() ?? {},
      trunks: () => this.trunks.map((t) => t.config),
      bindings: () => this.store?.snapshot() ?? [],
      subscriptions: () => this.presence?.subscriptions() ?? [],
      inbox: this.inbox,
      reload: () => this.reload(),
    });
  }

  /** The relayed media of calls, offering `codecs` (`media.codecs`) in that order. */
  private callMedia(codecs: readonly string[], resamplers: Awaited<ReturnType<typeof loadSpeexResampler>>): CallMediaFactory {
    return relayedMediaFactory(this.relays!, {
      random: this.deps.random,
      codecs: new CodecRegistry(builtinCodecs().ordered([...codecs])),
      resamplers,
      logger: this.deps.logger.child('media'),
      // The running config: a reload's media.srtp, extensions and trunks count for new calls.
      srtp: (peer) => legSecurity(this.config, peer),
    });
  }

  /** How many phone registrations (live bindings) the registrar holds. */
  registeredExtensions(): number {
    return this.store?.count() ?? 0;
  }

  /** Each trunk registration's state, for `status`. */
  registrationStatus(): RegistrationStatus[] {
    return this.trunkRegistrations?.status() ?? [];
  }

  /** The calls in progress, for `status`. */
  callStatus(): CallSummary[] {
    return this.calls?.calls() ?? [];
  }

  /** The bound endpoints (actual ports when port 0 was asked for). */
  endpoints(): Endpoint[] {
    const layer = this.transports;
    if (!layer) return [];
    return (['udp', 'tcp', 'tls'] as const).filter((t) => layer.has(t)).map((t) => layer.localEndpoint(t));
  }

  /**
   * Hangs up the calls, un-registers from every trunk (best effort, at most
   * {@link UNREGISTER_WAIT_MS}), writes the bindings, then closes the sockets.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.trunkRegistrations?.halt();
    this.calls?.close();
    this.presence?.close();
    await this.phone?.stop();
    await this.device?.close();
    await this.control?.stop();
    await this.metricsServer?.stop();
    await this.lan?.discovery.stop();
    this.qualifier?.stop();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, UNREGISTER_WAIT_MS);
    });
    await Promise.race([this.trunkRegistrations?.unregisterAll() ?? Promise.resolve(), deadline]);
    clearTimeout(timer);
    await this.bindingFile?.close().catch((e: unknown) => this.log.error('could not save bindings', { reason: (e as Error).message }));
    this.stack?.transactions.close();
    this.relays?.closeAll();
    await this.transports?.close();
    this.transports = undefined;
    this.stack = undefined;
  }
}
