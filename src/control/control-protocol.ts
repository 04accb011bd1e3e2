/**
 * The control protocol between the `hookswitch` CLI and the running daemon: one JSON object per
 * line over a unix socket, a request and then its reply. Pure: parsing and dispatch only.
 */

/** A request from the CLI. */
export type ControlRequest =
  | { cmd: 'call'; number: string }
  | { cmd: 'answer' }
  | { cmd: 'hangup' }
  | { cmd: 'dtmf'; digits: string }
  | { cmd: 'status' };

/** The daemon's reply: `ok` with fields to show, or an error line for the user. */
export type ControlReply = { ok: true; [field: string]: unknown } | { ok: false; error: string };

/** What the daemon does for each command (the device endpoint and the gateway provide it). */
export interface ControlCommands {
  call(number: string): Promise<ControlReply>;
  answer(): ControlReply;
  hangup(): ControlReply;
  dtmf(digits: string): ControlReply;
  status(): ControlReply;
}

/** Longest request line accepted (bytes); longer input closes the connection. */
export const MAX_REQUEST_LINE = 4096;

/** DTMF digits a user may send: RFC 4733 events 0-15. */
export const DTMF_DIGITS = /^[0-9*#A-Da-d]{1,64}$/;
/** A dialable number: digits, *, #, + (a dial plan may take more; keep the CLI strict). */
const NUMBER = /^[0-9*#+]{1,32}$/;

/** Parses one request line; a string is the reason it is refused. */
export function parseControlRequest(line: string): ControlRequest | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'request is not JSON';
  }
  if (typeof value !== 'object' || value === null) return 'request is not an object';
  const r = value as Record<string, unknown>;
  switch (r.cmd) {
    case 'call':
      if (typeof r.number !== 'string' || !NUMBER.test(r.number)) return 'call needs a number of digits, *, # or + (up to 32)';
      return { cmd: 'call', number: r.number };
    case 'dtmf':
      if (typeof r.digits !== 'string' || !DTMF_DIGITS.test(r.digits)) return 'dtmf needs 1 to 64 of 0-9 * # A-D';
      return { cmd: 'dtmf', digits: r.digits.toUpperCase() };
    case 'answer':
    case 'hangup':
    case 'status':
      return { cmd: r.cmd };
    default:
      return `unknown command ${JSON.stringify(r.cmd)}`;
  }
}

/** Runs one request line against `commands`; never throws. */
export async function handleControlLine(line: string, commands: ControlCommands): Promise<ControlReply> {
  const req = parseControlRequest(line);
  if (typeof req === 'string') return { ok: false, error: req };
  try {
    switch (req.cmd) {
      case 'call':
        return await commands.call(req.number);
      case 'answer':
        return commands.answer();
      case 'hangup':
        return commands.hangup();
      case 'dtmf':
        return commands.dtmf(req.digits);
      case 'status':
        return commands.status();
    }
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}
