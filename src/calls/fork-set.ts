/**
 * Parallel forking (in the spirit of RFC 3261 §16.7): one INVITE per contact, the first 2xx
 * wins, the other forks are cancelled (a later 2xx from one of them is ACKed and hung up), and
 * when every fork fails one response is chosen to report.
 */
import type { SipResponse } from '../sip/message/message.ts';
import type { ClientLeg, ClientLegEvents } from './client-leg.ts';

/** What the owner of a fork set learns. */
export interface ForkSetEvents {
  provisional(leg: ClientLeg, res: SipResponse): void;
  answered(leg: ClientLeg, res: SipResponse): void;
  failed(status: number, reason: string): void;
}

interface Failure {
  status: number;
  reason: string;
  /** A timeout or transport error of ours (408/503), reported as is. */
  local?: boolean;
}

/**
 * The status to report when every fork failed. §16.7: "the proxy MUST choose from the 6xx class
 * responses if any exist"; otherwise the lowest class, the first of it that arrived. Statuses
 * that mean nothing to the caller are mapped: a challenge we could not answer is 403, a
 * redirect we do not follow is 480, and "a 503 (Service Unavailable) response ... SHOULD be
 * converted to 500".
 */
export function chooseFailure(failures: readonly Failure[]): { status: number; reason: string } {
  if (failures.length === 0) return { status: 480, reason: 'Temporarily Unavailable' };
  const mapped = failures.map((f): { status: number; reason: string } => {
    if (f.status === 401 || f.status === 407) return { status: 403, reason: 'Forbidden' };
    if (f.status < 400) return { status: 480, reason: 'Temporarily Unavailable' };
    if (f.status === 503 && !f.local) return { status: 500, reason: 'Server Internal Error' };
    return f;
  });
  const sixes = mapped.filter((f) => f.status >= 600);
  if (sixes.length > 0) return sixes[0]!;
  const lowest = Math.min(...mapped.map((f) => Math.floor(f.status / 100)));
  return mapped.find((f) => Math.floor(f.status / 100) === lowest)!;
}

export class ForkSet implements ClientLegEvents {
  readonly legs: ClientLeg[] = [];
  winner: ClientLeg | undefined;
  private done = false;
  private readonly failures: Failure[] = [];

  constructor(private readonly events: ForkSetEvents) {}

  add(leg: ClientLeg): void {
    this.legs.push(leg);
  }

  start(): void {
    for (const leg of this.legs) leg.start();
  }

  get finished(): boolean {
    return this.done;
  }

  /** Cancels every fork (CANCEL from the caller, no answer): nothing is reported afterwards. */
  cancelAll(): void {
    this.done = true;
    for (const leg of this.legs) if (leg !== this.winner) leg.cancel();
  }

  provisional(leg: ClientLeg, res: SipResponse): void {
    if (!this.done) this.events.provisional(leg, res);
  }

  answered(leg: ClientLeg, res: SipResponse): void {
    if (this.done) {
      // A 2xx after another fork won, or after the call was abandoned: hang it up.
      leg.bye();
      return;
    }
    this.done = true;
    this.winner = leg;
    for (const other of this.legs) if (other !== leg) other.cancel();
    this.events.answered(leg, res);
  }

  failed(_leg: ClientLeg, status: number, res?: SipResponse): void {
    this.failures.push(
      res ? { status, reason: res.reason } : { status, reason: status === 408 ? 'Request Timeout' : 'Service Unavailable', local: true },
    );
    if (this.done || this.failures.length < this.legs.length) return;
    this.done = true;
    const chosen = chooseFailure(this.failures);
    this.events.failed(chosen.status, chosen.reason);
  }
}
