import type { SipMessage } from './message.ts';

/**
 * A SIP message that cannot be accepted. `code` is stable (for logs, counters and tests);
 * `status` is the response a UAS sends for it (400 unless the rule says otherwise:
 * 505 for a bad version, 416 for a bad URI scheme, 513 for an oversized message).
 */
export class SipParseError extends Error {
  /**
   * What could be read of a request that failed to parse (its header fields, where they were
   * readable), so that the UAS can still address an error response to the sender.
   */
  partial?: SipMessage;

  constructor(
    public readonly code: string,
    message: string,
    public readonly status = 400,
  ) {
    super(message);
    this.name = 'SipParseError';
  }
}
