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
import type { TimerHandle } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import { DigestClient } from '../auth/digest-client.ts';
import { buildRequest, newCallId, newTag } from '../dialog/request-builder.ts';
import type { SipResponse } from '../message/message.ts';
import type { SipUri } from '../message/types.ts';
import { formatHostPort, parseUri } from '../message/uri.ts';
import type { Destination } from '../transaction/types.ts';
import { crlfPinger, KeepAlive, sendOptionsPing } from './keep-alive.ts';
import { challengeKindOf, RegisterChallenges, type ChallengeKind } from './register-challenges.ts';
import { randomUnit, refreshDelayWithJitter, retryDelayMs } from './registration-backoff.ts';
import type { RegistrationClientOptions, RegistrationState, RegistrationStatus, RegistrationTrunk } from './registration-options.ts';
import { errorText, grantedExpires, retryAfterMs, splitHostPort, statusText, uintHeader } from './registration-response.ts';

export { grantedExpires, refreshDelaySeconds, splitHostPort } from './registration-response.ts';

/** Default seconds between keep-alives: under common UDP NAT timeouts and the 32 s idle close of our TCP/TLS connections. */
const DEFAULT_KEEPALIVE_S = 30;

/**
 * Keeps one registration with one trunk. `start()` registers, `stop()` un-registers (best
 * effort) and resolves when that exchange is over. All requests share one Call-ID and carry
 * increasing CSeq numbers (§10.2.4: "A UA SHOULD use the same Call-ID for all registrations
 * during a single boot cycle"; the CSeq "MUST be incremented by one" per REGISTER).
 */
export class RegistrationClient {
  private readonly opts: RegistrationClientOptions;
  private readonly log: Logger;
  private readonly challenges: RegisterChallenges;
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
    const defaultPort = trunk.transport === 'tls' ? 5061 : 5060;
    const transportParam = trunk.transport === 'udp' ? '' : `;transport=${trunk.transport}`;
    this.domain = trunk.domain ?? trunk.host;
    // With a separate domain the host:port only says where requests go, not whom they address.
    const uriPort = trunk.domain !== undefined || trunk.port === defaultPort ? undefined : trunk.port;
    this.requestUri = `sip:${formatHostPort(this.domain, uriPort)}${transportParam}`;
    this.aor = `sip:${trunk.username}@${formatHostPort(this.domain)}`;
    const digest = new DigestClient({ username: trunk.authUsername ?? trunk.username, password: trunk.password, random: opts.random });
    this.challenges = new RegisterChallenges(digest, this.requestUri);
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
      this.challenges.newAttempt();
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
    this.challenges.newAttempt();
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
    const credentials = this.challenges.credentials(answering?.kind);
    if (credentials === undefined) {
      this.fail(`${answering?.status}: no Digest challenge we can answer`);
      return;
    }
    const extra: [string, string][] = [['Expires', String(expires)]];
    if (this.opts.userAgent) extra.push(['User-Agent', this.opts.userAgent]);
    extra.push(...credentials);
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
    const kind = challengeKindOf(res.status);
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

  /** §22.2: answers a 401/407 with credentials, unless this attempt's credentials were already refused. */
  private onChallenge(res: SipResponse, kind: ChallengeKind, sentExpires: number): void {
    if (!this.challenges.accept(res, kind)) {
      this.fail(`${statusText(res)}: credentials refused`);
      return;
    }
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
    const delay = refreshDelayWithJitter(granted, randomUnit(this.opts.random));
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

  /** Exponential backoff after `failures` consecutive failures (registration-backoff.ts). */
  private backoffMs(): number {
    const { trunk } = this.opts;
    const initial = this.opts.initialRetryMs ?? (trunk.retrySeconds ?? 30) * 1000;
    const max = this.opts.maxRetryMs ?? (trunk.maxRetrySeconds ?? 600) * 1000;
    return retryDelayMs(this.failures, initial, max, randomUnit(this.opts.random));
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
