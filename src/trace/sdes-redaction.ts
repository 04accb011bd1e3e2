/**
 * Blanks SRTP master keys (SDES `inline:` key||salt, RFC 4568 §6.1) in SIP messages on their way
 * to a trace, keeping every length so that Content-Length and the pcap's lengths stay true
 * (`redactSdesKeys` in `src/media/srtp/sdes.ts` shortens text, for log lines).
 */
import { REDACTION_CHAR } from './sip-trace.ts';

/** `inline:` then the base64 key||salt up to a lifetime/MKI `|`, a `;` between keys, or white space. */
const INLINE_KEY = /inline:([^|;\s]+)/gi;

/**
 * `bytes` with the key||salt of every `inline:` key parameter (any `a=crypto` line, in any body
 * part) replaced by {@link REDACTION_CHAR}s of the same length; lifetime and MKI stay. Returns
 * `bytes` itself when there is none.
 */
export function redactSdesKeyBytes(bytes: Buffer): Buffer {
  // latin1 maps each byte to one character, so string offsets are byte offsets.
  const text = bytes.toString('latin1');
  if (!/inline:/i.test(text)) return bytes;
  let out: Buffer | undefined;
  for (const m of text.matchAll(INLINE_KEY)) {
    const at = m.index + 'inline:'.length;
    out ??= Buffer.from(bytes);
    out.fill(REDACTION_CHAR, at, at + m[1]!.length, 'latin1');
  }
  return out ?? bytes;
}
