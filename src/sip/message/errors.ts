/**
 * A SIP message that cannot be accepted. `code` is stable (for logs, counters and tests);
 * `status` is the response a UAS sends for it (400 unless the rule says otherwise:
 * 505 for a bad version, 416 for a bad URI scheme, 513 for an oversized message).
 */
export class SipParseError extends Error {
  constructor(
    public readonly code: string,
    message: string,
    public readonly status = 400,
  ) {
    super(message);
    this.name = 'SipParseError';
  }
}
