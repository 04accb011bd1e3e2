/**
 * Qualify: the registrar pings every registered contact with OPTIONS (RFC 3261 §11) at a fixed
 * interval and remembers which answer. The ping goes to where the REGISTER came from (the
 * binding's source: the NAT binding of a UDP phone, RFC 3581), not to the Contact's host, which
 * behind NAT is a private address. Regular traffic on that path also keeps the NAT mapping open.
 *
 * Pure: time from the injected Clock, jitter from the injected Random, requests through the
 * injected sender ({@link optionsPinger} over the transaction layer in the gateway).
 */
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import { buildRequest } from '../sip/dialog/request-builder.ts';
import type { SipRequest } from '../sip/message/message.ts';
import { formatHostPort } from '../sip/message/uri.ts';
import type { ClientTransactionHandlers, Destination } from '../sip/transaction/types.ts';
import type { Binding, BindingStore } from './binding-store.ts';

/** What the last qualify of a contact found; `unknown` before the first answer or timeout. */
export type Reachability = 'reachable' | 'unreachable' | 'unknown';

/** One OPTIONS ping: the Request-URI (the registered contact) and where to send it. */
export interface QualifyTarget {
  uri: string;
  destination: Destination;
}

/**
 * Sends one OPTIONS and settles once: `reachable` on any final response, `unreachable` on
 * timeout or transport error. A rejection counts as `unreachable`.
 */
export type OptionsSender = (target: QualifyTarget) => Promise<'reachable' | 'unreachable'>;

export interface QualifierOptions {
  /** The bindings to ping: the store (its live snapshot) or a function listing them. */
  store: Pick<BindingStore, 'snapshot'> | (() => readonly Binding[]);
  /** Seconds between rounds (each ±10 % jitter); 0 or less turns qualify off. */
  intervalSeconds: number;
  clock: Clock;
  random: Random;
  /** The `registrar.qualify` logger: one line per change of a contact's state. */
  logger: Logger;
  sendOptions: OptionsSender;
  /** Most pings in flight at once (default 16), so a round never floods the transport. */
  maxInFlight?: number;
}

const JITTER = 0.1;
const TRANSPORTS: readonly string[] = ['udp', 'tcp', 'tls'];

/** The destination of a binding's pings: its source; undefined when it has none we can use. */
export function qualifyDestination(b: Binding): Destination | undefined {
  const s = b.source;
  if (!s || !TRANSPORTS.includes(s.transport)) return undefined;
  // For TCP/TLS the transport reuses the phone's connection by address and port.
  return { transport: s.transport as Destination['transport'], address: s.address, port: s.port };
}

/**
 * Pings each live binding once per interval and keeps each contact's {@link Reachability}.
 * Unreachable bindings are kept (the registration is the phone's to end); callers that route
 * calls may skip them via {@link status}. Contacts whose bindings are gone are forgotten.
 */
export class Qualifier {
  private opts: QualifierOptions;
  private readonly maxInFlight: number;
  private readonly states = new Map<string, 'reachable' | 'unreachable'>();
  private timer: TimerHandle | undefined;
  private running = false;
  /** Bumped by start/stop so that answers of an old round are ignored. */
  private generation = 0;

  constructor(opts: QualifierOptions) {
    this.opts = opts;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 16);
  }

  /** Schedules the first round one (jittered) interval from now. Idempotent. */
  start(): void {
    if (this.running || this.opts.intervalSeconds <= 0) return;
    this.running = true;
    this.generation++;
    this.schedule();
  }

  /** Cancels the next round; answers still in flight are ignored. */
  stop(): void {
    this.running = false;
    this.generation++;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /**
   * Changes the interval (config reload). A running qualifier starts its rounds afresh, one
   * jittered new interval from now; 0 stops it. A stopped one only takes the value for its next
   * {@link start}. Known reachability is kept.
   */
  setIntervalSeconds(seconds: number): void {
    if (seconds === this.opts.intervalSeconds) return;
    const wasRunning = this.running;
    this.stop();
    this.opts = { ...this.opts, intervalSeconds: seconds };
    if (wasRunning) this.start();
  }

  /** The last qualify result of a contact URI (as stored in the binding). */
  status(contact: string): Reachability {
    return this.states.get(contact) ?? 'unknown';
  }

  /** Runs one round now: pings every live binding; resolves when all have settled. */
  async qualifyAll(): Promise<void> {
    const gen = this.generation;
    const targets = this.targets();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length && gen === this.generation) {
        const target = targets[next++]!;
        let result: 'reachable' | 'unreachable';
        try {
          result = await this.opts.sendOptions(target);
        } catch {
          result = 'unreachable';
        }
        if (gen !== this.generation) return;
        this.record(target, result);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.maxInFlight, targets.length) }, worker));
    if (gen !== this.generation) return;
    const live = new Set(targets.map((t) => t.uri));
    for (const contact of [...this.states.keys()]) if (!live.has(contact)) this.states.delete(contact);
  }

  private schedule(): void {
    const u = this.opts.random.bytes(2).readUInt16BE(0) / 0xffff;
    const ms = this.opts.intervalSeconds * 1000 * (1 - JITTER + 2 * JITTER * u);
    const gen = this.generation;
    this.timer = this.opts.clock.setTimer(
      ms,
      () => {
        this.timer = undefined;
        void this.qualifyAll().then(() => {
          if (this.running && gen === this.generation) this.schedule();
        });
      },
      'qualify',
    );
  }

  /** One target per contact URI; bindings without a usable source are not pinged. */
  private targets(): QualifyTarget[] {
    const list = typeof this.opts.store === 'function' ? this.opts.store() : this.opts.store.snapshot();
    const seen = new Set<string>();
    const out: QualifyTarget[] = [];
    for (const b of list) {
      if (seen.has(b.contact)) continue;
      const destination = qualifyDestination(b);
      if (!destination) continue;
      seen.add(b.contact);
      out.push({ uri: b.contact, destination });
    }
    return out;
  }

  private record(target: QualifyTarget, result: 'reachable' | 'unreachable'): void {
    const before = this.states.get(target.uri);
    this.states.set(target.uri, result);
    if (before === result) return;
    const fields = {
      contact: target.uri,
      peer: `${target.destination.transport}:${formatHostPort(target.destination.address, target.destination.port)}`,
    };
    if (result === 'unreachable') this.opts.logger.warn('contact unreachable', fields);
    else if (before === undefined) this.opts.logger.debug('contact reachable', fields);
    else this.opts.logger.info('contact reachable again', fields);
  }
}

/** What {@link optionsPinger} needs of the transaction layer ({@link TransactionLayer} has both). */
export interface QualifyTransactions {
  newBranch(): string;
  sendRequest(request: SipRequest, dest: Destination, handlers: ClientTransactionHandlers): unknown;
}

export interface OptionsPingerOptions {
  /** The gateway's address and port on a transport, written into the Via sent-by. */
  localAddress(transport: Destination['transport'], remoteAddress: string): { address: string; port: number };
  /** User-Agent header value, if any. */
  userAgent?: string;
  /** The host of the From URI (`sip:hookswitch@<domain>`). */
  domain: string;
  random: Random;
}

/**
 * An {@link OptionsSender} over the transaction layer: builds an out-of-dialog OPTIONS
 * (RFC 3261 §11.1, §8.1.1) to the contact and starts a non-INVITE client transaction, which
 * retransmits over UDP and gives up after Timer F (§17.1.2.2).
 */
export function optionsPinger(transactions: QualifyTransactions, opts: OptionsPingerOptions): OptionsSender {
  return (target) =>
    new Promise((resolve) => {
      let settled = false;
      const settle = (r: 'reachable' | 'unreachable'): void => {
        if (settled) return;
        settled = true;
        resolve(r);
      };
      try {
        const local = opts.localAddress(target.destination.transport, target.destination.address);
        const extra: [string, string][] = [['Accept', 'application/sdp']];
        if (opts.userAgent) extra.push(['User-Agent', opts.userAgent]);
        const { request } = buildRequest({
          method: 'OPTIONS',
          requestUri: target.uri,
          from: `<sip:hookswitch@${opts.domain}>`,
          to: `<${target.uri}>`,
          random: opts.random,
          via: `SIP/2.0/${target.destination.transport.toUpperCase()} ${formatHostPort(local.address, local.port)};branch=${transactions.newBranch()};rport`,
          extraHeaders: extra,
        });
        transactions.sendRequest(request, target.destination, {
          // Any final response, even 4xx/5xx, shows that the UA is alive at that address (§11.2).
          onResponse: (res) => {
            if (res.status >= 200) settle('reachable');
          },
          onTimeout: () => settle('unreachable'),
          onTransportError: () => settle('unreachable'),
        });
      } catch {
        // A contact that cannot be made into a request, or a transaction that cannot start.
        settle('unreachable');
      }
    });
}
