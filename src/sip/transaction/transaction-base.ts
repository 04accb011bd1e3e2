/**
 * What the four transaction state machines share: a state with an explicit table of legal
 * transitions (an illegal one throws, as SIP.js's `stateTransition` does), named timers on the
 * injected clock, and sends whose failure becomes a transport error (§17.1.4, §17.2.4).
 */
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import type { LogFields, Logger } from '../../runtime/logger.ts';
import type { SipMessage, SipRequest } from '../message/message.ts';
import type { TimerSettings, TimerValues } from './timers.ts';
import { timerValues } from './timers.ts';
import { isReliable, TransactionError, type Destination, type SendFunction } from './types.ts';

/** What the transaction layer gives each transaction. */
export interface TransactionContext {
  clock: Clock;
  logger: Logger;
  send: SendFunction;
  timers: TimerSettings;
  /** Called once when the transaction enters Terminated: the layer removes it from its tables. */
  terminated(tx: TransactionBase<string>): void;
}

export type TransitionTable<S extends string> = { readonly [K in S]: readonly S[] };

export abstract class TransactionBase<S extends string> {
  protected current: S;
  protected readonly t: TimerValues;
  protected readonly reliable: boolean;
  private readonly running = new Map<string, TimerHandle>();

  constructor(
    readonly id: string,
    readonly request: SipRequest,
    /** The peer: where the request goes (client) or where it came from (server). */
    peer: Destination,
    initial: S,
    private readonly table: TransitionTable<S>,
    protected readonly ctx: TransactionContext,
  ) {
    this.current = initial;
    this.reliable = isReliable(peer);
    this.t = timerValues(ctx.timers, this.reliable);
  }

  get state(): S {
    return this.current;
  }

  get isTerminated(): boolean {
    return this.current === 'terminated';
  }

  /** Log fields naming this transaction. */
  protected fields(extra: LogFields = {}): LogFields {
    return { tx: this.id, method: this.request.method, callId: this.request.headers.get('Call-ID'), state: this.current, ...extra };
  }

  /**
   * Moves to `to`. Throws when the table does not allow it: that is a bug in this layer, never
   * a network event. Entering `terminated` cancels every timer and removes the transaction.
   */
  protected transition(to: S): void {
    const from = this.current;
    if (!this.table[from].includes(to)) {
      throw new TransactionError('ERR_INVALID_STATE_TRANSITION', `Invalid state transition from ${from} to ${to}`);
    }
    this.current = to;
    this.ctx.logger.debug('transaction state', this.fields({ from }));
    if (to === 'terminated') {
      for (const handle of this.running.values()) handle.cancel();
      this.running.clear();
      this.ctx.terminated(this as TransactionBase<string>);
    }
  }

  /** Starts (or restarts) the timer `name`; `fn` runs unless the timer is stopped first. */
  protected startTimer(name: string, ms: number, fn: () => void): void {
    this.stopTimer(name);
    const handle = this.ctx.clock.setTimer(
      ms,
      () => {
        this.running.delete(name);
        fn();
      },
      `Timer ${name}`,
    );
    this.running.set(name, handle);
  }

  protected stopTimer(name: string): void {
    this.running.get(name)?.cancel();
    this.running.delete(name);
  }

  /** Whether timer `name` is pending (for tests and logs). */
  hasTimer(name: string): boolean {
    return this.running.has(name);
  }

  /** Passes a message to the transport; a synchronous throw or a rejection is a transport error. */
  protected transmit(msg: SipMessage, dest: Destination): void {
    let pending: Promise<void>;
    try {
      pending = this.ctx.send(msg, dest);
    } catch (err) {
      this.failTransport(err);
      return;
    }
    pending.then(undefined, (err: unknown) => this.failTransport(err));
  }

  private failTransport(err: unknown): void {
    if (this.isTerminated) return;
    this.ctx.logger.warn('transport error', this.fields({ error: err instanceof Error ? err.message : String(err) }));
    this.onTransportError(err);
  }

  /** §17.1.4 / §17.2.4: inform the TU and terminate. */
  protected abstract onTransportError(err: unknown): void;

  /** Ends the transaction without telling the TU (layer shutdown). */
  dispose(): void {
    if (!this.isTerminated) this.transition('terminated' as S);
  }
}
