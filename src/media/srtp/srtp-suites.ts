/**
 * The SRTP crypto suites hookswitch speaks, with the lengths each fixes (RFC 4568 §6.2 table;
 * RFC 3711 §5 for the default transforms and §9.2 for the packet limits). Both suites use AES-128
 * in counter mode and HMAC-SHA1; they differ only in the SRTP tag, which is 80 or 32 bits while
 * the SRTCP tag stays 80 bits (RFC 4568 §6.2: "SRTCP auth. tag | 80 bits | 80 bits").
 */

/** A suite name as written in `a=crypto` (RFC 4568 §10.3.2.1). */
export type SrtpSuiteName = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32';

/** The parameters of one suite, in octets unless named otherwise. */
export interface SrtpSuite {
  readonly name: SrtpSuiteName;
  /** Master key (128 bits) and master salt (112 bits); SDES carries them concatenated (30 octets). */
  readonly masterKeyLength: number;
  readonly masterSaltLength: number;
  /** Session encryption key, authentication key (160 bits) and salt, RFC 4568 §6.2.1. */
  readonly encryptionKeyLength: number;
  readonly authKeyLength: number;
  readonly sessionSaltLength: number;
  /** Authentication tag appended to each SRTP / SRTCP packet. */
  readonly srtpTagLength: number;
  readonly srtcpTagLength: number;
  /** Packets one master key may protect: 2^48 SRTP, 2^31 SRTCP (RFC 4568 §6.2, RFC 3711 §9.2). */
  readonly srtpLifetime: number;
  readonly srtcpLifetime: number;
}

const COMMON = {
  masterKeyLength: 16,
  masterSaltLength: 14,
  encryptionKeyLength: 16,
  authKeyLength: 20,
  sessionSaltLength: 14,
  srtcpTagLength: 10,
  srtpLifetime: 2 ** 48,
  srtcpLifetime: 2 ** 31,
} as const;

/** Every supported suite by name, strongest (longest tag) first: the order an offer lists them. */
export const SRTP_SUITES: Readonly<Record<SrtpSuiteName, SrtpSuite>> = {
  AES_CM_128_HMAC_SHA1_80: { name: 'AES_CM_128_HMAC_SHA1_80', ...COMMON, srtpTagLength: 10 },
  AES_CM_128_HMAC_SHA1_32: { name: 'AES_CM_128_HMAC_SHA1_32', ...COMMON, srtpTagLength: 4 },
};

/** The suite named `name` (case-insensitive, RFC 4568 §4), or undefined when hookswitch lacks it. */
export function srtpSuite(name: string): SrtpSuite | undefined {
  const upper = name.toUpperCase();
  return upper === 'AES_CM_128_HMAC_SHA1_80' || upper === 'AES_CM_128_HMAC_SHA1_32' ? SRTP_SUITES[upper] : undefined;
}
