/**
 * Fans the transport layer's trace tap out to `hookswitch trace` subscribers (pure: no I/O).
 * Every event is redacted once here, before any subscriber sees it, so digest responses and SRTP
 * keys (SDES `inline:`) never leave the process through a trace.
 */
import type { TransportTraceEvent } from '../sip/transport/transport-layer.ts';
import { redactDigestResponses } from './sip-trace.ts';
import { redactSdesKeyBytes } from './sdes-redaction.ts';

/** Receives trace events; must not throw (a throw is swallowed and the others still get the event). */
export type TraceListener = (event: TransportTraceEvent) => void;

/** Anything trace subscribers can attach to (the control server takes this). */
export interface TraceSource {
  /** Starts delivering events to `listener`; the returned function stops it (idempotent). */
  subscribe(listener: TraceListener): () => void;
}

export interface TraceHubOptions {
  /**
   * Called with `true` when the first subscriber arrives and `false` when the last one leaves:
   * the composition root sets or clears the transport tap here, so an unwatched gateway pays
   * nothing for tracing.
   */
  onActiveChange?: (active: boolean) => void;
  /**
   * The local address a peer at `remote` reaches us on; replaces a wildcard local address
   * (`0.0.0.0`, `::`) so that pcap packets carry a real destination.
   */
  localAddressFor?: (remote: string) => string;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

export class TraceHub implements TraceSource {
  private readonly listeners = new Set<TraceListener>();

  constructor(private readonly opts: TraceHubOptions = {}) {}

  /** Number of current subscribers. */
  get size(): number {
    return this.listeners.size;
  }

  subscribe(listener: TraceListener): () => void {
    const wrapped: TraceListener = (e) => listener(e);
    this.listeners.add(wrapped);
    if (this.listeners.size === 1) this.opts.onActiveChange?.(true);
    return () => {
      if (!this.listeners.delete(wrapped)) return;
      if (this.listeners.size === 0) this.opts.onActiveChange?.(false);
    };
  }

  /** Redacts `event`, fills in a wildcard local address, and hands it to every subscriber. */
  publish(event: TransportTraceEvent): void {
    if (this.listeners.size === 0) return;
    let local = event.local;
    if (WILDCARDS.has(local.address) && this.opts.localAddressFor) {
      local = { ...local, address: this.opts.localAddressFor(event.remote.address) };
    }
    const safe: TransportTraceEvent = { ...event, local, bytes: redactSdesKeyBytes(redactDigestResponses(event.bytes)) };
    for (const l of [...this.listeners]) {
      try {
        l(safe);
      } catch {
        // A subscriber's failure is its own; the gateway and the other subscribers carry on.
      }
    }
  }
}
