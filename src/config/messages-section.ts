/**
 * Validation of the `messages` section: instant messages (RFC 3428 MESSAGE) relayed between
 * extensions, trunks and the device (src/calls/message-relay.ts).
 */
import { isObject, show, wholeNumber } from './sections.ts';

type Json = unknown;

/** The `messages` settings. */
export interface MessagesConfig {
  /** Largest MESSAGE body accepted, in bytes; larger ones are refused with 413. */
  maxBytes: number;
  /** How many messages delivered to the device are kept for `hookswitch status`. */
  keep: number;
}

/**
 * RFC 3428 §8: "the size of MESSAGE requests outside of a media session MUST NOT exceed 1300
 * bytes, unless the UAC has positive knowledge that the message will not traverse a
 * congestion-unsafe link at any hop". The gateway sends on over UDP without such knowledge, so
 * that is the default limit, applied to the body (the relayed request adds a few hundred bytes
 * of headers, which the MTU margin the RFC asks for covers).
 */
export const DEFAULT_MESSAGE_MAX_BYTES = 1300;

/** The defaults, used when the section or one of its keys is absent. */
export const DEFAULT_MESSAGES: MessagesConfig = { maxBytes: DEFAULT_MESSAGE_MAX_BYTES, keep: 20 };

/** The largest `maxBytes`: a body that still fits one UDP datagram with the headers (RFC 768). */
const MAX_BYTES_LIMIT = 60_000;

const KEYS = ['maxBytes', 'keep'];

/**
 * Checks `input.messages` and writes the accepted values into `cfg.messages` (which the caller
 * has filled with {@link DEFAULT_MESSAGES}). Each problem is one line naming the key, the rule
 * and the value, pushed onto `problems`.
 */
export function checkMessagesSection(input: Record<string, Json>, cfg: { messages: MessagesConfig }, problems: string[]): void {
  const m = input.messages;
  if (m === undefined) return;
  if (!isObject(m)) {
    problems.push(`messages must be an object (got ${show(m)})`);
    return;
  }
  for (const k of Object.keys(m)) if (!KEYS.includes(k)) problems.push(`messages.${k} is not a known setting`);
  if (m.maxBytes !== undefined) {
    const v = wholeNumber(m.maxBytes, 'messages.maxBytes', 1, MAX_BYTES_LIMIT, problems);
    if (v !== undefined) cfg.messages.maxBytes = v;
  }
  if (m.keep !== undefined) {
    const v = wholeNumber(m.keep, 'messages.keep', 0, 1000, problems);
    if (v !== undefined) cfg.messages.keep = v;
  }
}
