import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { B2bua, type CallMediaFactory, type CallSummary } from '../calls/b2bua.ts';
import { DialPlan } from '../calls/dialplan.ts';
import type { Config, TrunkConfig } from '../config/config.ts';
import type { TrunkChanges } from './config-diff.ts';
import { ConfigReloader } from './config-reloader.ts';
import { relayedMediaFactory } from '../media/media-session.ts';
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
import type { ControlReply } from '../control/control-protocol.ts';
import type { DeviceEndpoint } from '../device/device-endpoint.ts';
import { builtinCodecs } from '../media/codec/builtin.ts';
import { CodecRegistry } from '../media/codec/registry.ts';
import { loadSpeexResampler } from '../media/resample/speex-resampler.ts';
import { LocalAddresses } from './local-address.ts';
import { ResolvedTrunk, localAddressFor, resolveTrunk } from './trunks.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import { LineLogger, type Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import { SourceGuard } from '../security/source-guard.ts';
import { queryPublicAddress } from '../sip/nat/stun-client.ts';
import { DigestServer } from '../sip/auth/digest-server.ts';
import { SipStack } from '../sip/stack.ts';
import { TransportLayer } from '../sip/transport/transport-layer.ts';
import { TraceHub } from '../trace/trace-hub.ts';
import { daemonSocket } from '../cli/control-socket.ts';
import { instanceName, sipUri } from '../discovery/dns-sd-records.ts';
import { MdnsDiscovery } from '../discovery/mdns-discovery.ts';
import { PeerTable } from '../discovery/peer-table.ts';
import { GatewayMetrics, countingGuard, countingRegistrar, type GatewayMetricSources } from '../ops/gateway-metrics.ts';
import { MetricsServer } from '../ops/metrics-server.ts';
import pkg from '../../package.json' with { type: 'json' };
import { formatEndpoint, type Endpoint } from '../sip/transport/transport.ts';
import { ExtensionCredentials } from '../sip/ua/request-authenticator.ts';
import { PeerAuthenticator } from '../calls/peer-authenticator.ts';
import { PeerRoute } from '../calls/peer-route.ts';
import { RegistrationClient, type RegistrationStatus } from '../sip/ua/registration-client.ts';
import { UasCore } from '../sip/ua/uas-core.ts';
import { statusReport, type StatusReport } from './status-report.ts';
import { systemInterfaces } from './local-address.ts';

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
  private registrations: RegistrationClient[] = [];
  /** Settles once every trunk registration has been created (host names resolved). */
  private registrationsStarted: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly log: Logger;
  private bindingFile?: BindingFile;
  private qualifier?: Qualifier;
  private relays?: RtpRelayFactory;
  private calls?: B2bua;
  private trunks: ResolvedTrunk[] = [];
  private networkTimer?: TimerHandle;
  /** The public address learned with STUN (`media.stunServer`), when configured and answered. */
  private stunAddress?: string;
  /** Why the STUN query failed, for `status`. */
  private stunError?: string;
  /** When start() began (wall clock), for `status`'s uptime. */
  private startedAt = 0;
  private device?: DeviceEndpoint;
  private control?: ControlServer;
  private phone?: Phone;
  private discovery?: MdnsDiscovery;
  private store?: BindingStore;
  /** Other hookswitch boxes and SIP services seen on the LAN (`hookswitch peers`). */
  private peers?: PeerTable;
  /** Counters and gauges for `GET /metrics`, kept whether or not the endpoint is on. */
  private readonly metrics = new GatewayMetrics(this.metricSources(), pkg.version);
  private metricsServer?: MetricsServer;
  private sourceGuard?: SourceGuard;
  private savedInstanceId?: string;
  private reloader?: ConfigReloader;
  /** Trunk un-registrations and registrations a reload started, one after another. */
  private trunkWork: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: Config,
    private readonly deps: GatewayDeps,
  ) {
    this.log = deps.logger;
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
    this.trunks = await Promise.all(
      config.trunks.map(async (t) => {
        const { destination, destinations, sources } = await resolveTrunk(t, this.log, deps.random);
        return new ResolvedTrunk(t, destination, sources, destinations);
      }),
    );
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
    const core = new UasCore({
      logger: deps.logger.child('uas'),
      auth,
      registrar: countingRegistrar(registrar, this.metrics),
      guard: countingGuard(guard, this.metrics),
      trunkFor: (source) => this.trunks.find((t) => t.accepts(source))?.name,
      userAgent: `${config.sip.userAgent}`,
      calls: {
        // The call layer is created once the stack exists; requests cannot arrive before.
        invite: (req, tx, user) => this.calls!.invite(req, tx, user),
        inviteFromTrunk: (req, tx, trunk) => this.calls!.inviteFromTrunk(req, tx, trunk),
        ownsDialog: (req) => this.calls?.ownsDialog(req) ?? false,
        inDialog: (req, tx) => this.calls!.inDialog(req, tx),
        ack: (ack, source) => this.calls?.ack(ack, source),
        cancel: (invite) => this.calls?.cancel(invite),
        strayResponse: (res, source) => this.calls?.strayResponse(res, source),
      },
    });
    stack = new SipStack(
      { clock: deps.clock, random: deps.random, logger: deps.logger.child('sip'), transport: transports },
      core,
    );
    this.calls = new B2bua({
      transactions: stack.transactions,
      clock: deps.clock,
      random: deps.random,
      logger: deps.logger.child('calls'),
      domain: config.sip.domain,
      userAgent: config.sip.userAgent,
      localEndpoint,
      publicAddress: () => this.publicAddress(),
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
    this.reloader = this.createReloader({ credentials, guard, extensionNames, resamplers });
    await this.control.start();
    await this.startMetrics();
    this.log.info('started', {
      domain: config.sip.domain,
      stateDir: config.stateDir,
      extensions: extensionNames.length,
      bindingsRestored: restored,
    });
    // Not awaited: resolving a trunk's host name must not hold up the start (or SIGTERM).
    this.registrationsStarted = this.startRegistrations(transports, stack, addresses).catch((e: unknown) =>
      this.log.error('could not start trunk registrations', { reason: (e as Error).message }),
    );
    void this.learnPublicAddress(transports);
  }

  /**
   * Advertises the box on the LAN and browses for peers (mDNS/DNS-SD). Not when SIP listens on
   * loopback only: nobody on the LAN could reach what would be advertised.
   */
  private async startDiscovery(transports: TransportLayer, addresses: LocalAddresses, extensionNames: string[]): Promise<void> {
    const { config, deps } = this;
    const log = deps.logger.child('discovery');
    if (!config.discovery.enabled) return;
    if (/^(127\.|::1$)/.test(config.sip.bind)) {
      log.info('discovery off: SIP listens on loopback only', { bind: config.sip.bind });
      return;
    }
    const instanceId = this.instanceId();
    const port = transports.localEndpoint(transports.has('udp') ? 'udp' : 'tcp').port;
    const bound = /^\d+\.\d+\.\d+\.\d+$/.test(config.sip.bind) && config.sip.bind !== '0.0.0.0' ? config.sip.bind : undefined;
    const iface = config.discovery.interface ?? bound;
    this.peers = new PeerTable({ clock: deps.clock, selfInstanceId: instanceId });
    this.discovery = new MdnsDiscovery({
      config: iface === undefined ? config.discovery : { ...config.discovery, interface: iface },
      hostname: hostname(),
      ipv6: config.sip.bind.includes(':'),
      table: this.peers,
      clock: deps.clock,
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
    await this.discovery.start();
  }

  /** Calls to and from the hookswitch boxes that discovery finds (the dial plan's `peer` target). */
  private peerRoute(localEndpoint: (transport: 'udp', remote: string) => { address: string; port: number }): PeerRoute {
    return new PeerRoute({
      peers: () => this.peers,
      secret: () => this.config.discovery.secret,
      instanceId: () => (this.peers ? this.instanceId() : undefined),
      localEndpoint,
      random: this.deps.random,
      logger: this.deps.logger.child('calls.peer'),
    });
  }

  /**
   * Serves `GET /metrics` when `metrics.enabled`. A port that cannot be had is logged, not
   * fatal: the phone keeps working without its metrics.
   */
  private async startMetrics(): Promise<void> {
    const { bind, port, enabled } = this.config.metrics;
    if (!enabled) return;
    const server = new MetricsServer({ bind, port, render: () => this.metrics.render(), logger: this.deps.logger.child('metrics') });
    try {
      await server.start();
      this.metricsServer = server;
    } catch (e) {
      this.log.error('metrics endpoint not started', { reason: (e as Error).message });
    }
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

  /** This box's DNS-SD instance id: a UUID kept in the state directory across restarts. */
  private instanceId(): string {
    this.savedInstanceId ??= this.readInstanceId();
    return this.savedInstanceId;
  }

  private readInstanceId(): string {
    const file = join(this.config.stateDir, 'instance-id');
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
      this.log.warn('could not save the instance id', { file, reason: (e as Error).message });
    }
    return id;
  }

  /** One {@link RegistrationClient} per trunk with `register: true`, once the sockets are bound. */
  private async startRegistrations(transports: TransportLayer, stack: SipStack, addresses: LocalAddresses): Promise<void> {
    for (const trunk of this.trunks.filter((t) => t.config.register)) {
      await this.registerTrunk(trunk, transports, stack);
      if (this.stopping) return;
    }
    this.watchNetwork(addresses, transports);
  }

  /** Creates and starts the {@link RegistrationClient} of one trunk (at start, or on reload). */
  private async registerTrunk(trunk: ResolvedTrunk, transports: TransportLayer, stack: SipStack): Promise<void> {
    const { config, deps } = this;
    if (!transports.has(trunk.transport)) {
      this.log.error('trunk transport is not enabled, not registering', { trunk: trunk.name, transport: trunk.transport });
      return;
    }
    const destination = trunk.destination();
    const local = transports.localEndpoint(trunk.transport);
    const address = await localAddressFor(local.address, destination.address, destination.port);
    if (this.stopping) return;
    const client = new RegistrationClient({
      trunk: trunk.config,
      local: { address: this.publicAddress() ?? address, port: local.port },
      destination,
      destinations: trunk.destinations,
      sendRaw: (bytes, dest) => transports.send(bytes, dest),
      transactions: stack.transactions,
      clock: deps.clock,
      random: deps.random,
      logger: deps.logger.child('sip.register'),
      userAgent: config.sip.userAgent,
    });
    this.registrations.push(client);
    client.start();
  }

  /** The trunk a registration belongs to (by name: reloads change the list). */
  private trunkOf(client: RegistrationClient): ResolvedTrunk | undefined {
    const name = client.status().trunk;
    return this.trunks.find((t) => t.name === name);
  }

  /**
   * Re-registers with the trunks when this box's addresses change (DHCP renewal, Wi-Fi to
   * Ethernet): the Contact the trunk holds would point nowhere.
   */
  private watchNetwork(addresses: LocalAddresses, transports: TransportLayer): void {
    let seen = addresses.fingerprint();
    const check = (): void => {
      this.networkTimer = this.deps.clock.setTimer(NETWORK_CHECK_MS, check);
      const now = addresses.fingerprint();
      if (now === seen) return;
      seen = now;
      this.log.info('local addresses changed, re-registering', { addresses: now });
      void this.discovery?.reannounce();
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
    this.networkTimer = this.deps.clock.setTimer(NETWORK_CHECK_MS, check);
  }

  /** The address trunk legs are reached on: `media.publicAddress`, else what STUN learned. */
  private publicAddress(): string | undefined {
    return this.config.media.publicAddress ?? this.stunAddress;
  }

  /**
   * Asks the STUN server (RFC 5389 Binding) for this box's public address, once at start; trunk
   * registrations then advertise it. Failure is logged and leaves the local addresses in use.
   */
  private async learnPublicAddress(transports: TransportLayer): Promise<void> {
    const server = this.config.media.stunServer;
    if (!server || this.config.media.publicAddress) return;
    try {
      const mapped = await queryPublicAddress({ server, random: this.deps.random, clock: this.deps.clock });
      this.stunAddress = mapped.address;
      this.log.info('public address learned with STUN', { server, address: mapped.address });
      await this.registrationsStarted;
      this.registrations.forEach((client) => {
        const trunk = this.trunkOf(client);
        if (trunk) client.setLocal({ address: mapped.address, port: transports.localEndpoint(trunk.transport).port });
      });
    } catch (e) {
      this.stunError = (e as Error).message;
      this.log.warn('STUN query failed; using local addresses', { server, reason: (e as Error).message });
    }
  }

  /** What the CLI can ask of the running gateway (control socket). */
  private controlCommands() {
    const device = (): DeviceEndpoint => this.device!;
    return {
      call: (number: string): Promise<ControlReply> => device().dial(number),
      answer: (): ControlReply => device().answer(),
      hangup: (): ControlReply => device().hangup(),
      dtmf: (digits: string): ControlReply => device().sendDigits(digits),
      reload: (): Promise<ControlReply> => this.reload(),
      peers: (): ControlReply => ({ ok: true, discovery: this.discovery?.status() ?? { enabled: false }, peers: this.peers?.list() ?? [] }),
      status: (): ControlReply => {
        const d = device().status();
        if (!d.ok) return d;
        return {
          ...d,
          ...(this.phone ? { board: this.phone.profile.name, phone: this.phone.state() } : {}),
          calls: this.callStatus().map((c) => `${c.from}->${c.to}:${c.state}`).join(' '),
          registrations: this.registrationStatus().map((r) => `${r.trunk}:${r.state}`).join(' '),
          report: this.statusReport(d),
        };
      },
    };
  }

  /** `hookswitch status`: what every part of the gateway says now (see status-report.ts); `device` is the endpoint's status reply. */
  private statusReport(device: Record<string, unknown>): StatusReport {
    const { config } = this;
    const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    const stunServer = config.media.publicAddress ? undefined : config.media.stunServer;
    const discovery = this.discovery?.status();
    return statusReport(
      {
        version: pkg.version,
        domain: config.sip.domain,
        startedAt: this.startedAt,
        listening: this.endpoints(),
        localAddresses: systemInterfaces().filter((i) => !i.internal).map((i) => i.address),
        ...(config.media.publicAddress ? { configuredPublicAddress: config.media.publicAddress } : {}),
        ...(stunServer
          ? { stun: { server: stunServer, ...(this.stunAddress ? { address: this.stunAddress } : {}), ...(this.stunError ? { error: this.stunError } : {}) } }
          : {}),
        trunks: this.trunks.map((t) => t.config),
        registrations: this.registrationStatus(),
        bindings: this.store?.snapshot() ?? [],
        calls: this.callStatus(),
        device: {
          extension: config.device.extension,
          state: text(device.device) ?? 'unknown',
          ...(text(device.call) !== undefined ? { call: text(device.call)!, remote: text(device.remote) ?? '' } : {}),
          ...(typeof device.seconds === 'number' ? { seconds: device.seconds } : {}),
          ...(text(device.others) !== undefined ? { others: text(device.others)! } : {}),
          ...(text(device.digits) !== undefined ? { digits: text(device.digits)! } : {}),
        },
        ...(this.phone ? { phone: { board: this.phone.profile.name, mode: this.phone.profile.mode, state: this.phone.state() } } : {}),
        ...(this.peers ? { peers: this.peers.list() } : {}),
        ...(discovery ? { discovery: { name: discovery.name, ...(discovery.error ? { error: discovery.error } : {}) } } : {}),
      },
      this.deps.clock.wallNow(),
    );
  }

  /** Re-reads the configuration and applies what can change without dropping calls (SIGHUP, `hookswitch reload`). */
  async reload(): Promise<ControlReply> {
    if (!this.reloader || this.stopping) return { ok: false, error: 'the gateway is not running' };
    return this.reloader.reload();
  }

  /** The relayed media of calls, offering `codecs` (`media.codecs`) in that order. */
  private callMedia(codecs: readonly string[], resamplers: Awaited<ReturnType<typeof loadSpeexResampler>>): CallMediaFactory {
    return relayedMediaFactory(this.relays!, {
      random: this.deps.random,
      codecs: new CodecRegistry(builtinCodecs().ordered([...codecs])),
      resamplers,
      logger: this.deps.logger.child('media'),
    });
  }

  /** What a reload reaches (see config-reloader.ts for what is applied live). */
  private createReloader(parts: {
    credentials: ExtensionCredentials;
    guard: SourceGuard;
    extensionNames: string[];
    resamplers: Awaited<ReturnType<typeof loadSpeexResampler>>;
  }): ConfigReloader {
    const { deps } = this;
    return new ConfigReloader({
      running: this.config,
      ...(deps.configPath !== undefined ? { configPath: deps.configPath } : {}),
      ...(deps.overrides ? { overrides: deps.overrides } : {}),
      ...(deps.loadConfig ? { load: deps.loadConfig } : {}),
      logger: this.log,
      setLogLevel: (level) => {
        if (deps.logger instanceof LineLogger) deps.logger.setLevel(level);
      },
      extensionsFor: (c) =>
        Object.keys(c.extensions).length > 0 ? c.extensions : defaultExtensions(this.config.stateDir, deps.random, this.log),
      credentials: parts.credentials,
      extensionNames: parts.extensionNames,
      guard: parts.guard,
      calls: this.calls!,
      mediaFor: (codecs) => this.callMedia(codecs, parts.resamplers),
      ...(this.qualifier ? { qualifier: this.qualifier } : {}),
      ...(this.discovery ? { discovery: this.discovery } : {}),
      replaceTrunks: (next, changes) => this.replaceTrunks(next, changes),
    });
  }

  /**
   * Reload: resolves the added and changed trunks (before anything changes), swaps them into the
   * trunk list the call layer and the source guard read, then in the background un-registers the
   * removed and changed ones (bounded, so the trunk never removes the new binding after making
   * it) and registers the added and changed ones. Unchanged trunks are not touched.
   */
  private async replaceTrunks(next: readonly TrunkConfig[], changes: TrunkChanges): Promise<void> {
    await this.registrationsStarted;
    const fresh = new Map<string, ResolvedTrunk>();
    for (const name of [...changes.added, ...changes.changed]) {
      const t = next.find((x) => x.name === name)!;
      const { destination, destinations, sources } = await resolveTrunk(t, this.log, this.deps.random);
      fresh.set(name, new ResolvedTrunk(t, destination, sources, destinations));
    }
    const gone = new Set([...changes.removed, ...changes.changed]);
    const old = this.registrations.filter((r) => gone.has(r.status().trunk));
    this.registrations = this.registrations.filter((r) => !gone.has(r.status().trunk));
    const kept = new Map(this.trunks.map((t) => [t.name, t]));
    this.trunks.splice(0, this.trunks.length, ...next.map((t) => fresh.get(t.name) ?? kept.get(t.name)!));
    this.log.info('trunks reloaded', { added: changes.added.join(','), removed: changes.removed.join(','), changed: changes.changed.join(',') });
    this.trunkWork = this.trunkWork.then(async () => {
      let timer: TimerHandle | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = this.deps.clock.setTimer(UNREGISTER_WAIT_MS, resolve);
      });
      await Promise.race([Promise.all(old.map((r) => r.stop())), deadline]);
      timer?.cancel();
      const { transports, stack } = this;
      if (!transports || !stack) return;
      for (const trunk of fresh.values()) {
        if (this.stopping) return;
        if (trunk.config.register) await this.registerTrunk(trunk, transports, stack);
      }
    });
  }

  /** How many phone registrations (live bindings) the registrar holds. */
  registeredExtensions(): number {
    return this.store?.count() ?? 0;
  }

  /** Each trunk registration's state, for `status`. */
  registrationStatus(): RegistrationStatus[] {
    return this.registrations.map((r) => r.status());
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
    this.networkTimer?.cancel();
    this.calls?.close();
    await this.phone?.stop();
    await this.device?.close();
    await this.control?.stop();
    await this.metricsServer?.stop();
    await this.discovery?.stop();
    this.qualifier?.stop();
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
    await this.bindingFile?.close().catch((e: unknown) => this.log.error('could not save bindings', { reason: (e as Error).message }));
    this.stack?.transactions.close();
    this.relays?.closeAll();
    await this.transports?.close();
    this.transports = undefined;
    this.stack = undefined;
  }
}

/** How often the interface table is compared for address changes. */
const NETWORK_CHECK_MS = 30_000;

/** How long `stop()` waits for un-registrations before closing the sockets anyway. */
const UNREGISTER_WAIT_MS = 2_000;
