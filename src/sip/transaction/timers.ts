/**
 * RFC 3261 timer values (§17.1.1.1, §17.1.2.1, §17.2.1, §17.2.2, Table 4) and the RFC 6026
 * additions (Timers L and M), in milliseconds.
 */

/** The three base values from which every transaction timer is derived. */
export interface TimerSettings {
  /** RTT estimate. RFC 3261 default 500 ms. */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses. Default 4 s. */
  T2: number;
  /** Maximum time a message stays in the network. Default 5 s. */
  T4: number;
}

export const DEFAULT_TIMER_SETTINGS: Readonly<TimerSettings> = { T1: 500, T2: 4000, T4: 5000 };

/**
 * How long an INVITE server transaction waits for the TU's first response before sending
 * 100 Trying itself (§17.2.1: "MUST generate a 100 (Trying) response unless it knows that the
 * TU will generate a provisional or final response within 200 ms").
 */
export const TRYING_DELAY = 200;

/** Timer values for one transaction; the retransmission timers (A, E, G) give the first interval. */
export interface TimerValues extends TimerSettings {
  /** INVITE request retransmit, initially T1, doubling (unreliable only). */
  A: number;
  /** INVITE transaction timeout, 64*T1. */
  B: number;
  /** Wait for response retransmits: at least 32 s unreliable, 0 reliable. */
  D: number;
  /** Non-INVITE request retransmit, initially T1, doubling to T2 (unreliable only). */
  E: number;
  /** Non-INVITE transaction timeout, 64*T1. */
  F: number;
  /** INVITE response retransmit, initially T1, doubling to T2 (unreliable only). */
  G: number;
  /** Wait for ACK receipt, 64*T1. */
  H: number;
  /** Wait for ACK retransmits: T4 unreliable, 0 reliable. */
  I: number;
  /** Wait for non-INVITE request retransmits: 64*T1 unreliable, 0 reliable. */
  J: number;
  /** Wait for response retransmits: T4 unreliable, 0 reliable. */
  K: number;
  /** RFC 6026: wait for INVITE retransmits after a 2xx was sent, 64*T1. */
  L: number;
  /** RFC 6026: wait for 2xx retransmits after the first 2xx arrived, 64*T1. */
  M: number;
}

/** The timer values for a transaction on a reliable (TCP/TLS) or unreliable (UDP) transport. */
export function timerValues(settings: TimerSettings, reliable: boolean): TimerValues {
  const { T1, T2, T4 } = settings;
  return {
    T1,
    T2,
    T4,
    A: T1,
    B: 64 * T1,
    D: reliable ? 0 : Math.max(32_000, 64 * T1),
    E: T1,
    F: 64 * T1,
    G: T1,
    H: 64 * T1,
    I: reliable ? 0 : T4,
    J: reliable ? 0 : 64 * T1,
    K: reliable ? 0 : T4,
    L: 64 * T1,
    M: 64 * T1,
  };
}
