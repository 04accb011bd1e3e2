/**
 * SRTP key derivation (RFC 3711 §4.3) with the default AES-CM PRF (§4.3.3) and a
 * key_derivation_rate of 0: one initial derivation per master key, so the session keys never
 * change while the master key lives. RFC 4568 §6.3.1: "When the key derivation rate is not
 * specified (i.e., the KDR parameter is omitted), a single initial key derivation is performed."
 */
import { AesCm } from './aes-cm.ts';

/** The key derivation labels of RFC 3711 §4.3.1 (SRTP) and §4.3.2 (SRTCP). */
export const SRTP_LABEL = {
  rtpEncryption: 0x00,
  rtpAuthentication: 0x01,
  rtpSalt: 0x02,
  rtcpEncryption: 0x03,
  rtcpAuthentication: 0x04,
  rtcpSalt: 0x05,
} as const;

/** Master key and master salt lengths of the AES-CM PRF (RFC 3711 §4.3.3, §8.2 defaults). */
export const MASTER_KEY_LENGTH = 16;
export const MASTER_SALT_LENGTH = 14;

/**
 * `PRF_n(k_master, x)` (RFC 3711 §4.3.1, §4.3.3) for `label` with key_derivation_rate 0:
 * `key_id = label || r` with r = 0 (48 bits), `x = key_id XOR k_s` (key_id right-aligned in the
 * 112-bit master salt), and the output is the first `length` octets of the AES-CM keystream of
 * the master key from counter block `x * 2^16`. Throws RangeError on a master key that is not
 * 16 octets or a master salt that is not 14.
 */
export function srtpPrf(masterKey: Uint8Array, masterSalt: Uint8Array, label: number, length: number): Buffer {
  if (masterSalt.length !== MASTER_SALT_LENGTH) {
    throw new RangeError(`master salt of ${masterSalt.length} octets, expected ${MASTER_SALT_LENGTH}`);
  }
  const iv = Buffer.alloc(16);
  iv.set(masterSalt, 0);
  // key_id is 56 bits (8-bit label, 48-bit r = 0): the label lands on octet 14 - 7 = 7 of the salt.
  iv[7] = iv[7]! ^ label;
  return new AesCm(masterKey).keystream(iv, length);
}

/** The session keys one direction of one master key yields for SRTP or SRTCP. */
export interface SessionKeys {
  /** k_e: 128-bit AES-CM key. */
  encryptionKey: Buffer;
  /** k_a: 160-bit HMAC-SHA1 key (RFC 3711 §4.2.1, n_a = 160). */
  authKey: Buffer;
  /** k_s: 112-bit session salt. */
  salt: Buffer;
}

/**
 * Derives the session keys of RFC 3711 §4.3.1 (`rtp`, labels 0-2) or §4.3.2 (`rtcp`, labels
 * 3-5) from a master key and salt, for the AES_CM_128_HMAC_SHA1 suites (16-octet encryption key,
 * 20-octet authentication key, 14-octet salt).
 */
export function deriveSessionKeys(masterKey: Uint8Array, masterSalt: Uint8Array, kind: 'rtp' | 'rtcp'): SessionKeys {
  const [enc, auth, salt] =
    kind === 'rtp'
      ? [SRTP_LABEL.rtpEncryption, SRTP_LABEL.rtpAuthentication, SRTP_LABEL.rtpSalt]
      : [SRTP_LABEL.rtcpEncryption, SRTP_LABEL.rtcpAuthentication, SRTP_LABEL.rtcpSalt];
  return {
    encryptionKey: srtpPrf(masterKey, masterSalt, enc, 16),
    authKey: srtpPrf(masterKey, masterSalt, auth, 20),
    salt: srtpPrf(masterKey, masterSalt, salt, 14),
  };
}
