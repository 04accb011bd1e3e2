/**
 * NTP timestamps as RTCP uses them (RFC 3550 §4): the 64-bit form of sender reports, and the
 * compact middle 32 bits of LSR and DLSR.
 */

/** A 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 and a binary fraction, both u32. */
export interface NtpTimestamp {
  seconds: number;
  fraction: number;
}

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
export const NTP_UNIX_OFFSET_SECONDS = 2_208_988_800;
const TWO_32 = 4294967296;

/** The NTP timestamp of Unix time `ms` (RFC 3550 §4); seconds wrap at era 1 (2036). */
export function ntpFromUnixMs(ms: number): NtpTimestamp {
  const s = Math.floor(ms / 1000);
  const fraction = Math.min(TWO_32 - 1, Math.floor(((ms - s * 1000) / 1000) * TWO_32));
  return { seconds: (s + NTP_UNIX_OFFSET_SECONDS) % TWO_32, fraction };
}

/** Unix milliseconds of `ntp`; seconds with the top bit clear are taken as era 1 (RFC 4330 §3). */
export function ntpToUnixMs(ntp: NtpTimestamp): number {
  const seconds = ntp.seconds >= 0x80000000 ? ntp.seconds : ntp.seconds + TWO_32;
  return (seconds - NTP_UNIX_OFFSET_SECONDS) * 1000 + (ntp.fraction / TWO_32) * 1000;
}

/** The middle 32 bits of `ntp` (the LSR field, RFC 3550 §6.4.1), in 1/65536 s. */
export function compactNtp(ntp: NtpTimestamp): number {
  return (((ntp.seconds & 0xffff) << 16) | (ntp.fraction >>> 16)) >>> 0;
}

/** Milliseconds as a compact NTP duration (the DLSR unit, 1/65536 s), rounded, clamped to u32. */
export function msToCompactNtp(ms: number): number {
  return Math.min(0xffffffff, Math.max(0, Math.round((ms * 65536) / 1000)));
}

/** A compact NTP duration (1/65536 s) in milliseconds. */
export function compactNtpToMs(units: number): number {
  return (units * 1000) / 65536;
}
