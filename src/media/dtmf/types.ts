/**
 * What every DTMF path (RTP events, SIP INFO, in-band detection) hands to the call layer: one
 * key press, reported once, with how long it was held.
 */

/** Where a digit came from. */
export type DtmfSource = 'rfc4733' | 'info' | 'inband';

/**
 * One received DTMF key press. Producers emit it once, when the press has ended (its duration is
 * then known); consumers (the call layer, the door relay) never see duplicates from retransmitted
 * or repeated reports.
 */
export interface DtmfDigit {
  /** One of `0`-`9`, `*`, `#`, `A`-`D` (upper case), or `!` for a hook flash (RFC 4733 event 16). */
  digit: string;
  /** How long the key was held, in milliseconds (rounded). */
  durationMs: number;
  source: DtmfSource;
}

/** The sixteen DTMF keys in RFC 4733 event-code order (§3.2, table 3: events 0-15). */
export const DTMF_KEYS = '0123456789*#ABCD';

/** The digit used for a hook flash (RFC 4733 event 16). */
export const DTMF_FLASH = '!';

/**
 * The RFC 4733 event code (§3.2) of a key: `0`-`9` → 0-9, `*` → 10, `#` → 11, `A`-`D` (either
 * case) → 12-15, `!` → 16; anything else → undefined.
 */
export function dtmfEventCode(digit: string): number | undefined {
  if (digit === DTMF_FLASH) return 16;
  if (digit.length !== 1) return undefined;
  const i = DTMF_KEYS.indexOf(digit.toUpperCase());
  return i < 0 ? undefined : i;
}

/** The key of an RFC 4733 event code 0-16 (inverse of {@link dtmfEventCode}); undefined otherwise. */
export function dtmfDigitOfEvent(event: number): string | undefined {
  if (event === 16) return DTMF_FLASH;
  return Number.isInteger(event) && event >= 0 && event < 16 ? DTMF_KEYS[event] : undefined;
}
