/**
 * The contract of `RegistrationClient` (registration-client.ts): what it needs from the
 * trunk settings, the transaction layer and the composition root, and the status it reports.
 * Types only.
 */
import type { TrunkConfig } from '../../config/config.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Random } from '../../runtime/random.ts';
import type { SipRequest } from '../message/message.ts';
import type { ClientTransactionHandlers, Destination } from '../transaction/types.ts';

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

/** Constructor options of `RegistrationClient`. */
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
