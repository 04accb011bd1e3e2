/**
 * When a trunk registration tries again: the jittered refresh before expiry (RFC 3261 §10.2.4)
 * and the exponential backoff after a failure. Pure functions of the granted lifetime or the
 * failure count and a random fraction, so that many gateways do not act in step.
 */
import type { Random } from '../../runtime/random.ts';
import { refreshDelaySeconds } from './registration-response.ts';

/** Fraction of a retry delay that jitter may remove, so that many gateways do not retry in step. */
const JITTER = 0.25;
/** Fraction of a refresh delay that jitter may remove (refreshes only ever come earlier). */
const REFRESH_JITTER = 0.1;

/** A random fraction in [0, 1], from two bytes of `random`. */
export function randomUnit(random: Random): number {
  return random.bytes(2).readUInt16BE(0) / 0xffff;
}

/** Seconds until the refresh of a binding granted for `grantedSeconds`, minus up to 10 % jitter (`unit` in [0, 1]). */
export function refreshDelayWithJitter(grantedSeconds: number, unit: number): number {
  return refreshDelaySeconds(grantedSeconds) * (1 - REFRESH_JITTER * unit);
}

/**
 * Milliseconds until the retry after the `failures`-th consecutive failure (1 or more):
 * `initialMs` × 2^(failures−1), capped at `maxMs`, minus up to 25 % jitter (`unit` in [0, 1]).
 */
export function retryDelayMs(failures: number, initialMs: number, maxMs: number, unit: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 30));
  return Math.round(base * (1 - JITTER * unit));
}
