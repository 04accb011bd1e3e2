/**
 * The gateway's registration with an upstream trunk (RFC 3261 §10.2): REGISTER with Digest
 * authentication (§22.2), refresh before expiry (§10.2.4), 423 handling (§10.2.8), retry with
 * backoff after a failure, and un-registration with `Expires: 0` on stop (§10.2.2). While
 * registered it keeps the path alive (CRLF on TCP/TLS, OPTIONS on UDP, see keep-alive.ts);
 * a failed keep-alive or refresh means the server restarted or the path is gone, and the
 * client registers again at once, then backs off. Several resolved servers (RFC 3263 §4.3)
 * are tried in turn when one does not answer.
 *
 * Pure: requests go out through the injected transaction layer, time comes from the injected
 * Clock, cnonces, tags and the Call-ID from the injected Random. No sockets, no real timers.
 */
import type { TrunkConfig } from '../../config/config.ts';
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Random } from '../../runtime/random.ts';
import { challengeIsStale, DigestClient } from '../auth/digest-client.ts';
import { buildRequest, newCallId, newTag } from '../dialog/request-builder.ts';
import type { SipRequest, SipResponse } from '../message/message.ts';
import type { SipUri } from '../message/types.ts';
import { formatHostPort, parseUri } from '../message/uri.ts';
import type { ClientTransactionHandlers, Destination } from '../transaction/types.ts';
import { crlfPinger, KeepAlive, sendOptionsPing } from './keep-alive.ts';
import { errorText, grantedExpires, refreshDelaySeconds, retryAfterMs, splitHostPort, statusText, uintHeader } from './registration-response.ts';

export { grantedExpires, refreshDelaySeconds, splitHostPort } from './registration-response.ts';

/** Where a registration stands, as `status` shows it. */
export type RegistrationState = 'registering' | 'registered' | 'failed' | 'stopped';

/** A snapshot of one trunk registration. */
export interface RegistrationStatus {
  /** The trunk's configured name. */
  trunk: string;
  state: RegistrationState;
  /** The reason of the most recent failure (status line, timeout, transport error), if any. */
  lastError?: string;
  /** Wall-clock time (ms since the epoch) at which the current binding expires; only when registered. */
  expiresAt?: number;
  /** Wall-clock time (ms since the epoch) of the next attempt after a failure; only when failed. */
  nextRetryAt?: number;
}

/**
 * What the client needs from the transaction layer; {@link TransactionLayer} provides both.
 * `sendRequest` starts a non-INVITE client transaction and reports exactly one final outcome
 * (final response, timeout or transport error) through the handlers.
 */
export interface RegistrationTransactions {
  newBranch(): string;
  sendRequest(request: SipRequest, dest: Destination, handlers: ClientTransactionHandlers): unknown;
}

/**
 * The trunk settings the client uses. The robustness settings are optional here (defaults in
 * brackets) so that tests and older configs need not spell them out.
 */
export type RegistrationTrunk = Pick<
  TrunkConfig,
  'name' | 'host' | 'port' | 'transport' | 'username' | 'authUsername' | 'password' | 'expires' | 'outboundProxy'
> & {
  /** Seconds between keep-alives while registered [30]; 0 turns them off. */
  keepAliveSeconds?: number;
  /** First retry delay after a failure [30], doubled per failure up to `maxRetrySeconds`. */
  retrySeconds?: number;
  /** Longest retry delay [600]. */
  maxRetrySeconds?: number;
  /** Host of the Request-URI, From and To [host]; `host` (or the proxy) still receives the requests. */
  domain?: string;
};

export interface RegistrationClientOptions {
  trunk: RegistrationTrunk;
  /** Our address and port as the trunk should reach us: written into Via and Contact. */
  local: { address: string; port: number };
  transactions: RegistrationTransactions;
  clock: Clock;
  random: Random;
  /** Category logger (e.g. `sip.register`); one line per state change, never the password. */
  logger: Logger;
  /**
   * Where requests are sent. Defaults to the outbound proxy if configured, else the trunk's
   * host and port. The composition root passes a resolved IP address here.
   */
  destination?: Destination;
  /**
   * Every resolved candidate, most preferred first (`resolveTarget` in transport/resolver.ts).
   * When a REGISTER times out or cannot be sent, the next one is tried (RFC 3263 §4.3); a new
   * attempt after a failure starts again at the first. Takes precedence over `destination`.
   */
  destinations?: Destination[];
  /**
   * Writes raw bytes to a destination (the TransportLayer's `send`): used for CRLFCRLF
   * keep-alives on TCP/TLS. Without it, TCP/TLS keep-alives are OPTIONS requests too.
   */
  sendRaw?: (bytes: Buffer, dest: Destination) => Promise<void>;
  /**
   * The open TCP/TLS connection to a destination, if any. With it, a CRLF keep-alive fails when
   * the connection that carried the registration closed (a restarted registrar forgets
   * bindings of its old connections, RFC 5626 §4.4), even when a new one would open.
   */
  connectionTo?: (dest: Destination) => string | undefined;
  /** User-Agent header value. */
  userAgent?: string;
  /** First retry delay after a failure (default `trunk.retrySeconds`, else 30 s), doubled per failure up to `maxRetryMs`. */
  initialRetryMs?: number;
  /** Longest retry delay (default `trunk.maxRetrySeconds`, else 10 min). */
  maxRetryMs?: number;
  /** How long one keep-alive may take before it counts as failed (default 5 s). */
  keepAliveTimeoutMs?: number;
}

/** Fraction of a retry delay that jitter may remove, so that many gateways do not retry in step. */
const JITTER = 0.25;
/** Fraction of a refresh delay that jitter may remove (refreshes only ever come earlier). */
const REFRESH_JITTER = 0.1;
/** Default seconds between keep-alives: under common UDP NAT timeouts and the 32 s idle close of our TCP/TLS connections. */
const DEFAULT_KEEPALIVE_S = 30;
/** Consecutive `stale=true` challenges answered in one attempt before giving up (a looping server). */
const MAX_STALE_RETRIES = 2;

type ChallengeKind = 'www' | 'proxy';

const CHALLENGE: Record<ChallengeKind, { status: number; challenge: string; credentials: string }> = {
  www: { status: 401, challenge: 'WWW-Authenticate', credentials: 'Authorization' },
  proxy: { status: 407, challenge: 'Proxy-Authenticate', credentials: 'Proxy-Authorization' },
};

/**
 * Keeps one registration with one trunk. `start()` registers, `stop()` un-registers (best
 * effort) and resolves when that exchange is over. All requests share one Call-ID and carry
 * increasing CSeq numbers (§10.2.4: "A UA SHOULD use the same Call-ID for all registrations
 * during a single boot cycle"; the CSeq "MUST be incremented by one" per REGISTER).
 */
export class RegistrationClient {
  private readonly opts: RegistrationClientOptions;
  private readonly log: Logger;
  private readonly digest: DigestClient;
  private readonly requestUri: string;
  private readonly domain: string;
  private readonly aor: string;
  private local: { address: string; port: number };
  private contact = '';
  private contactUri!: SipUri;
  private readonly destinations: Destination[];
  /** The candidate requests go to now. */
  private destIndex = 0;
  /** Candidates tried by the current attempt (RFC 3263 §4.3 failover). */
  private triedInAttempt = 1;
  private keepAlive: KeepAlive | undefined;
  private readonly callId: string;
  private readonly fromTag: string;
  private cseq = 0;
  private state: RegistrationState | 'idle' = 'idle';
  private lastError: string | undefined;
  private expiresAt: number | undefined;
  /** When the retry after the last failure is due (wall clock), while one is scheduled. */
  private retryAt: number | undefined;
  /** Lifetime to ask for; raised by a 423's Min-Expires (§10.2.8). */
  private requestExpires: number;
  /** Latest challenges per kind, answered pre-emptively on later requests (RFC 7616 §3.4 nonce reuse). */
  private readonly challenges: Partial<Record<ChallengeKind, string[]>> = {};
  /** Challenges answered during the current attempt: one per kind, more only when stale. */
  private answered: Record<ChallengeKind, number> = { www: 0, proxy: 0 };
  /** Bumped whenever an outstanding transaction's outcome must be ignored. */
  private generation = 0;
  private inFlight = false;
  private failures = 0;
  private timer: TimerHandle | undefined;
  private unregistering: (() => void) | undefined;

  constructor(opts: RegistrationClientOptions) {
    this.opts = opts;
    const { trunk } = opts;
    this.log = opts.logger;
    this.digest = new DigestClient({ username: trunk.authUsername ?? trunk.username, password: trunk.password, random: opts.random });
    const defaultPort = trunk.transport === 'tls' ? 5061 : 5060;
    const transportParam = trunk.transport === 'udp' ? '' : `;transport=${trunk.transport}`;
    this.domain = trunk.domain ?? trunk.host;
    // With a separate domain the host:port only says where requests go, not whom they address.
    const uriPort = trunk.domain !== undefined || trunk.port === defaultPort ? undefined : trunk.port;
    this.requestUri = `sip:${formatHostPort(this.domain, uriPort)}${transportParam}`;
    this.aor = `sip:${trunk.username}@${formatHostPort(this.domain)}`;
    this.local = { ...opts.local };
    this.updateContact();
    this.destinations = opts.destinations?.length ? [...opts.destinations] : [opts.destination ?? defaultDestination(trunk)];
    this.callId = newCallId(opts.random);
    this.fromTag = newTag(opts.random);
    this.requestExpires = trunk.expires;
  }

  /** The current state, for `status` and tests. */
  status(): RegistrationStatus {
    const state = this.state === 'idle' ? 'registering' : this.state;
    const out: RegistrationStatus = { trunk: this.opts.trunk.name, state };
    if (this.lastError !== undefined) out.lastError = this.lastError;
    if (state === 'registered' && this.expiresAt !== undefined) out.expiresAt = this.expiresAt;
    if (state === 'failed' && this.retryAt !== undefined) out.nextRetryAt = this.retryAt;
    return out;
  }

  /**
   * Our address as the trunk reaches us changed (new interface address, new NAT mapping, new
   * bound port): when address or port differ, registers again at once with the new Contact
   * (outstanding requests are abandoned). The binding of the old Contact is not removed: it
   * cannot be reached any more, so it is left to expire at the registrar. Before `start()` it
   * only changes what the first REGISTER will say; after `stop()` it does nothing.
   */
  setLocal(local: { address: string; port: number }): void {
    if (local.address === this.local.address && local.port === this.local.port) return;
    if (this.state === 'stopped') return;
    const from = formatHostPort(this.local.address, this.local.port);
    this.local = { address: local.address, port: local.port };
    this.updateContact();
    this.log.info('local address changed', { trunk: this.opts.trunk.name, from, to: formatHostPort(local.address, local.port) });
    if (this.state === 'idle') return;
    this.generation++;
    this.inFlight = false;
    this.expiresAt = undefined;
    this.reRegisterNow();
  }

  /** Sends the first REGISTER. Throws if called twice or after `stop()` (a wiring error). */
  start(): void {
    if (this.state !== 'idle') throw new Error(`registration ${this.opts.trunk.name} already started`);
    this.setState('registering');
    this.attempt(true);
  }

  /**
   * Stops refreshing. When a binding may exist (registered, or a REGISTER is outstanding),
   * sends REGISTER with `Expires: 0` (§10.2.2) answering at most one challenge, and resolves
   * once that gets a final response, times out or fails to send; otherwise resolves at once.
   * Never rejects. Callers bound the wait themselves (Timer F is 32 s over UDP).
   */
  stop(): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    const mayBeBound = this.state === 'registered' || this.inFlight;
    this.cancelTimer();
    this.stopKeepAlive();
    this.generation++;
    this.inFlight = false;
    this.setState('stopped');
    if (!mayBeBound) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.unregistering = resolve;
      this.answered = { www: 0, proxy: 0 };
      this.send(0);
    });
  }

  /**
   * Starts a fresh attempt (initial, refresh or retry): one challenge of each kind may be
   * answered. `fromFirst` goes back to the most preferred server (after a failure); a refresh
   * stays with the server that holds the binding.
   */
  private attempt(fromFirst: boolean): void {
    if (fromFirst) this.destIndex = 0;
    this.triedInAttempt = 1;
    this.answered = { www: 0, proxy: 0 };
    this.send(this.requestExpires);
  }

  /** Registers again now, from the first server, without waiting for a backoff. */
  private reRegisterNow(): void {
    this.cancelTimer();
    this.stopKeepAlive();
    this.setState('registering');
    this.attempt(true);
  }

  /**
   * The server that holds the binding (or is being asked for one): after an RFC 3263 failover
   * not necessarily the first candidate. Requests to the trunk may follow it.
   */
  destination(): Destination {
    return this.destinations[this.destIndex]!;
  }

  private updateContact(): void {
    const { trunk } = this.opts;
    const uri = `sip:${trunk.username}@${formatHostPort(this.local.address, this.local.port)};transport=${trunk.transport}`;
    this.contactUri = parseUri(uri);
    this.contact = `<${uri}>`;
  }

  /**
   * Builds and sends one REGISTER, with credentials for every challenge remembered. `answering`
   * names the challenge just received: when it cannot be answered, nothing is sent and the
   * attempt fails.
   */
  private send(expires: number, answering?: { kind: ChallengeKind; status: string }): void {
    const extra: [string, string][] = [['Expires', String(expires)]];
    if (this.opts.userAgent) extra.push(['User-Agent', this.opts.userAgent]);
    for (const kind of ['proxy', 'www'] as const) {
      const challenges = this.challenges[kind];
      if (!challenges) continue;
      const value = this.digest.authorize({ challenges, method: 'REGISTER', uri: this.requestUri });
      if (value !== undefined) extra.push([CHALLENGE[kind].credentials, value]);
      else if (answering?.kind === kind) {
        delete this.challenges[kind];
        this.fail(`${answering.status}: no Digest challenge we can answer`);
        return;
      }
    }
    const gen = ++this.generation;
    this.cseq++;
    const viaTransport = this.destination().transport.toUpperCase();
    const { request } = buildRequest({
      method: 'REGISTER',
      requestUri: this.requestUri,
      from: `<${this.aor}>;tag=${this.fromTag}`,
      to: `<${this.aor}>`,
      contact: this.contact,
      callId: this.callId,
      cseq: this.cseq,
      random: this.opts.random,
      via: `SIP/2.0/${viaTransport} ${formatHostPort(this.local.address, this.local.port)};branch=${this.opts.transactions.newBranch()};rport`,
      extraHeaders: extra,
    });
    this.inFlight = true;
    // Only the first outcome of the latest request counts: a superseded request's answer and
    // anything after a final response are ignored.
    const current = () => gen === this.generation && settled === false;
    let settled = false;
    try {
      this.opts.transactions.sendRequest(request, this.destination(), {
        onResponse: (res) => {
          if (!current() || res.status < 200) return;
          settled = true;
          this.onFinal(res, expires);
        },
        onTimeout: () => {
          if (!current()) return;
          settled = true;
          this.onNoAnswer('timeout: no final response from the registrar', expires);
        },
        onTransportError: (err) => {
          if (!current()) return;
          settled = true;
          this.onNoAnswer(`transport error: ${errorText(err)}`, expires);
        },
      });
    } catch (err) {
      // A wiring error (duplicate branch): treated as a failure so the retry logic still runs.
      this.onFailure(`could not send REGISTER: ${errorText(err)}`);
    }
  }

  /**
   * RFC 3263 §4.3: on a timeout or transport error "the client SHOULD create a new request,
   * which is identical to the previous, but has a different value of the Via branch ID" and
   * send it to the next element. When every candidate was tried, the attempt failed.
   */
  private onNoAnswer(reason: string, expires: number): void {
    if (!this.unregistering && this.triedInAttempt < this.destinations.length) {
      this.inFlight = false;
      const failed = this.destination();
      this.destIndex = (this.destIndex + 1) % this.destinations.length;
      this.triedInAttempt++;
      const next = this.destination();
      this.log.info('registrar did not answer, trying the next one', {
        trunk: this.opts.trunk.name,
        failed: formatHostPort(failed.address, failed.port),
        next: `${next.transport}:${formatHostPort(next.address, next.port)}`,
        reason,
      });
      this.send(expires);
      return;
    }
    this.onFailure(reason);
  }

  private onFinal(res: SipResponse, sentExpires: number): void {
    this.inFlight = false;
    const kind: ChallengeKind | undefined = res.status === 401 ? 'www' : res.status === 407 ? 'proxy' : undefined;
    if (kind !== undefined) {
      this.onChallenge(res, kind, sentExpires);
      return;
    }
    if (this.unregistering) {
      this.finishUnregister(res.status >= 200 && res.status < 300 ? undefined : statusText(res));
      return;
    }
    if (res.status >= 200 && res.status < 300) {
      this.onRegistered(res);
      return;
    }
    if (res.status === 423) {
      // §10.2.8: "the UA MAY retry with an expiration interval at least as long as the
      // Min-Expires header field value". A 423 without a larger Min-Expires is a failure.
      const min = uintHeader(res, 'min-expires');
      if (min !== undefined && min > this.requestExpires) {
        this.log.info('registrar asks for a longer registration', { trunk: this.opts.trunk.name, expires: min });
        this.requestExpires = min;
        this.send(min);
        return;
      }
    }
    this.onFailure(statusText(res), retryAfterMs(res));
  }

  /**
   * §22.2: on 401/407 the UAC "MAY re-originate the request with the proper credentials". After
   * credentials this attempt already answered were refused, the same credentials would be
   * refused again: only a `stale=true` challenge (RFC 7616 §3.3: the credentials were right,
   * the nonce expired) is answered once more.
   */
  private onChallenge(res: SipResponse, kind: ChallengeKind, sentExpires: number): void {
    const challenges = res.headers.getAll(CHALLENGE[kind].challenge);
    const stale = challengeIsStale(challenges);
    if (this.answered[kind] > 0 && !(stale && this.answered[kind] <= MAX_STALE_RETRIES)) {
      this.fail(`${statusText(res)}: credentials refused`);
      return;
    }
    this.challenges[kind] = challenges;
    this.answered[kind]++;
    this.send(sentExpires, { kind, status: statusText(res) });
  }

  private fail(reason: string): void {
    if (this.unregistering) this.finishUnregister(reason);
    else this.onFailure(reason);
  }

  private onRegistered(res: SipResponse): void {
    const granted = grantedExpires(res, this.contactUri, this.requestExpires);
    if (granted === 0) {
      this.onFailure('registrar granted no binding (expires 0)');
      return;
    }
    this.failures = 0;
    this.lastError = undefined;
    this.expiresAt = this.opts.clock.wallNow() + granted * 1000;
    // §10.2.4 refresh before expiry; jitter keeps many gateways from refreshing in step.
    const delay = refreshDelaySeconds(granted) * (1 - REFRESH_JITTER * this.unit());
    const server = this.destination();
    this.setState('registered', { expires: granted, refreshIn: Math.round(delay), server: formatHostPort(server.address, server.port) });
    this.schedule(delay * 1000, 'register-refresh', false);
    this.startKeepAlive();
  }

  /** Pings the registrar while registered; a failed ping means it restarted or the path broke. */
  private startKeepAlive(): void {
    const interval = this.opts.trunk.keepAliveSeconds ?? DEFAULT_KEEPALIVE_S;
    this.stopKeepAlive();
    if (!(interval > 0)) return;
    const dest = this.destination();
    const options = () =>
      sendOptionsPing(this.opts.transactions, dest, {
        requestUri: this.requestUri,
        aor: this.aor,
        domain: this.domain,
        local: this.local,
        random: this.opts.random,
        userAgent: this.opts.userAgent,
      });
    const raw = this.opts.sendRaw;
    const keepAlive = new KeepAlive({
      intervalSeconds: interval,
      transport: dest.transport,
      destination: dest,
      clock: this.opts.clock,
      random: this.opts.random,
      logger: this.log,
      timeoutMs: this.opts.keepAliveTimeoutMs,
      sendOptions: options,
      sendCrlf: raw ? crlfPinger(raw, dest, this.opts.connectionTo) : options,
      onFailure: (reason) => {
        if (this.keepAlive !== keepAlive) return;
        this.keepAlive = undefined;
        // While a REGISTER is outstanding its own outcome decides.
        if (this.state !== 'registered' || this.inFlight) return;
        this.onFailure(`keep-alive failed: ${reason}`);
      },
    });
    this.keepAlive = keepAlive;
    keepAlive.start();
  }

  private stopKeepAlive(): void {
    this.keepAlive?.stop();
    this.keepAlive = undefined;
  }

  private onFailure(reason: string, retryAfter?: number): void {
    this.inFlight = false;
    if (this.unregistering) {
      this.finishUnregister(reason);
      return;
    }
    if (this.state === 'stopped') return;
    this.stopKeepAlive();
    this.lastError = reason;
    this.expiresAt = undefined;
    if (this.state === 'registered' && retryAfter === undefined) {
      // A refresh or keep-alive failed: the registrar restarted (and may have lost our
      // binding) or the path changed. Register afresh now; further failures back off.
      this.setState('failed', { reason, retryIn: 0 });
      this.reRegisterNow();
      return;
    }
    this.failures++;
    const delay = retryAfter ?? this.backoffMs();
    this.setState('failed', { reason, retryIn: Math.round(delay / 1000) });
    this.schedule(delay, 'register-retry', true);
    this.retryAt = this.opts.clock.wallNow() + delay;
  }

  private finishUnregister(error: string | undefined): void {
    const done = this.unregistering;
    this.unregistering = undefined;
    this.generation++;
    this.expiresAt = undefined;
    if (error === undefined) this.log.info('unregistered', { trunk: this.opts.trunk.name });
    else this.log.warn('un-registration failed', { trunk: this.opts.trunk.name, reason: error });
    done?.();
  }

  /** Exponential backoff: initial × 2^(failures−1), capped, minus up to 25 % jitter. */
  private backoffMs(): number {
    const { trunk } = this.opts;
    const initial = this.opts.initialRetryMs ?? (trunk.retrySeconds ?? 30) * 1000;
    const max = this.opts.maxRetryMs ?? (trunk.maxRetrySeconds ?? 600) * 1000;
    const base = Math.min(max, initial * 2 ** Math.min(this.failures - 1, 30));
    return Math.round(base * (1 - JITTER * this.unit()));
  }

  /** A random fraction in [0, 1]. */
  private unit(): number {
    return this.opts.random.bytes(2).readUInt16BE(0) / 0xffff;
  }

  private schedule(ms: number, label: string, fromFirst: boolean): void {
    this.cancelTimer();
    this.timer = this.opts.clock.setTimer(
      ms,
      () => {
        this.timer = undefined;
        this.retryAt = undefined;
        if (this.state === 'stopped') return;
        if (this.state === 'failed') this.setState('registering');
        this.attempt(fromFirst);
      },
      label,
    );
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private setState(state: RegistrationState, fields: Record<string, string | number> = {}): void {
    const previous = this.state;
    if (previous === state && state !== 'failed') return;
    this.state = state;
    const line = { trunk: this.opts.trunk.name, state, previous, ...fields };
    if (state === 'failed') this.log.warn('registration state changed', line);
    else this.log.info('registration state changed', line);
  }
}

/** The outbound proxy (`host` or `host:port`) if set, else the trunk itself. */
function defaultDestination(trunk: RegistrationTrunk): Destination {
  const defaultPort = trunk.transport === 'tls' ? 5061 : 5060;
  if (trunk.outboundProxy) {
    const { host, port } = splitHostPort(trunk.outboundProxy);
    return { transport: trunk.transport, address: host, port: port ?? defaultPort };
  }
  return { transport: trunk.transport, address: trunk.host, port: trunk.port };
}
