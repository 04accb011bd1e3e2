/**
 * The hookswitch serial line protocol (version 1), as specified in `docs/serial-protocol.md`:
 * framing of byte streams into lines, parsing and formatting of device→host messages and
 * host→device commands. Pure: no ports, no timers. Both directions parse and format, so the
 * host, the test microcontroller and round-trip tests share one definition.
 */

/** The protocol version this host speaks best (docs/serial-protocol.md §4). */
export const PROTOCOL_VERSION = 1;
/** Every version this host can speak; a device HELLO with another version is refused. */
export const SUPPORTED_VERSIONS: readonly number[] = [1];
/** Longest line in either direction, in bytes, without its terminator (§2). */
export const MAX_LINE_LENGTH = 80;
/** Longest ringing cadence, in on/off entries (§5, `RING`). */
export const MAX_CADENCE_ENTRIES = 8;
/** Longest duration in a command (cadence entries, blink times, relay pulses), in ms (§5). */
export const MAX_DURATION_MS = 60_000;
/** Highest LED, relay or button number (§5, §6). */
export const MAX_INDEX = 16;

const CR = 0x0d;
const LF = 0x0a;

/** What {@link LineFramer} cuts from a byte stream: a line (without terminator) or a line that was too long. */
export type Frame = { kind: 'line'; bytes: Uint8Array } | { kind: 'overlong'; length: number };

/**
 * Cuts a byte stream into lines (§2): CR or LF ends a line, empty lines are dropped, a line longer
 * than `maxLength` is discarded up to its terminator and reported once as `overlong`. Accepts any
 * split of the input; holds at most `maxLength` bytes.
 */
export class LineFramer {
  private readonly buf: Uint8Array;
  private len = 0;
  private overlong = 0;

  constructor(private readonly maxLength = MAX_LINE_LENGTH) {
    this.buf = new Uint8Array(maxLength);
  }

  /** Feeds bytes; returns the frames they completed, in order. */
  push(chunk: Uint8Array): Frame[] {
    const out: Frame[] = [];
    for (const b of chunk) {
      if (b === CR || b === LF) {
        if (this.overlong > 0) out.push({ kind: 'overlong', length: this.overlong });
        else if (this.len > 0) out.push({ kind: 'line', bytes: this.buf.slice(0, this.len) });
        this.len = 0;
        this.overlong = 0;
      } else if (this.overlong > 0) {
        this.overlong++;
      } else if (this.len === this.maxLength) {
        this.overlong = this.len + 1;
        this.len = 0;
      } else {
        this.buf[this.len++] = b;
      }
    }
    return out;
  }

  /** Forgets a partial line (the port was reopened). */
  reset(): void {
    this.len = 0;
    this.overlong = 0;
  }
}

/** Extension fields: trailing `KEY=VALUE` tokens, which receivers of this version ignore (§3). */
export type ExtensionFields = Record<string, string>;

/** A line from the device (§6). */
export type DeviceMessage =
  | { type: 'hello'; version: number; firmware: string; fields: ExtensionFields }
  | { type: 'hook'; offHook: boolean }
  | { type: 'digit'; digit: string }
  | { type: 'key'; key: string }
  | { type: 'button'; index: number; down: boolean }
  | { type: 'pong'; token?: string }
  | { type: 'ok' }
  | { type: 'err'; code: string; text: string }
  | { type: 'log'; text: string }
  /** A well-formed line with a keyword this version does not know (ignored, §3). */
  | { type: 'unknown'; keyword: string };

/** A relay command's action. */
export type RelayAction = { kind: 'on' } | { kind: 'off' } | { kind: 'pulse'; ms: number };

/** An LED mode (the device blinks by itself). */
export type LedMode = { kind: 'on' } | { kind: 'off' } | { kind: 'blink'; onMs: number; offMs: number };

/** A line from the host (§5). */
export type HostCommand =
  | { type: 'hello'; version: number; agent?: string }
  | { type: 'ping'; token?: string }
  | { type: 'ring'; cadence: readonly number[] }
  | { type: 'ringOff' }
  | { type: 'relay'; index: number; action: RelayAction }
  | { type: 'led'; index: number; mode: LedMode };

/** A line that breaks the protocol: why, for the log. */
export interface InvalidLine {
  type: 'invalid';
  reason: string;
}

const KEYWORD = /^[A-Z][A-Z0-9_]*$/;
const TOKEN = /^[A-Za-z0-9]{1,16}$/;
const ERR_CODE = /^[A-Z][A-Z0-9_]{0,15}$/;
const FIRMWARE = /^[!-~]{1,32}$/;
const EXTENSION = /^[A-Za-z][A-Za-z0-9_]*=[!-~]*$/;
const KEYS = /^[0-9*#A-D]$/;

function invalid(reason: string): InvalidLine {
  return { type: 'invalid', reason };
}

/** Checks the characters (§2: printable ASCII and TAB) and splits on runs of spaces and tabs. */
function tokenize(line: Uint8Array | string): string[] | InvalidLine {
  const text = typeof line === 'string' ? line : String.fromCharCode(...line);
  if (text.length > MAX_LINE_LENGTH) return invalid(`line of ${text.length} bytes exceeds ${MAX_LINE_LENGTH}`);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c > 0x7e) return invalid(`byte 0x${c.toString(16).padStart(2, '0')} at column ${i + 1} is not printable ASCII`);
  }
  const tokens = text.trim().split(/[ \t]+/).filter((s) => s.length > 0);
  if (tokens.length === 0) return invalid('empty line');
  return tokens;
}

/** Splits trailing `KEY=VALUE` tokens (extensions, ignored) from the positional arguments. */
function positional(args: string[]): { args: string[]; fields: ExtensionFields } {
  const fields: ExtensionFields = {};
  let end = args.length;
  while (end > 0 && EXTENSION.test(args[end - 1]!)) end--;
  for (const a of args.slice(end)) {
    const eq = a.indexOf('=');
    fields[a.slice(0, eq).toUpperCase()] = a.slice(eq + 1);
  }
  return { args: args.slice(0, end), fields };
}

/** A decimal integer in [min, max] without sign or leading zeros (§3), or undefined. */
function integer(s: string | undefined, min: number, max: number): number | undefined {
  if (s === undefined || !/^(0|[1-9][0-9]{0,5})$/.test(s)) return undefined;
  const n = Number(s);
  return n >= min && n <= max ? n : undefined;
}

function arity(keyword: string, args: string[], min: number, max: number, usage: string): InvalidLine | undefined {
  if (args.length < min || args.length > max) return invalid(`${keyword} takes ${usage}`);
  return undefined;
}

/** Parses one device→host line (§6). Never throws; a broken line is an {@link InvalidLine}. */
export function parseDeviceLine(line: Uint8Array | string): DeviceMessage | InvalidLine {
  const tokens = tokenize(line);
  if (!Array.isArray(tokens)) return tokens;
  const keyword = tokens[0]!.toUpperCase();
  if (!KEYWORD.test(keyword)) return invalid(`${JSON.stringify(tokens[0])} is not a keyword`);
  if (keyword === 'LOG' || keyword === 'ERR') {
    const rest = tokens.slice(1);
    if (keyword === 'LOG') return { type: 'log', text: rest.join(' ') };
    const code = rest[0]?.toUpperCase();
    if (code === undefined || !ERR_CODE.test(code)) return invalid('ERR takes a code (A-Z, 0-9, _; up to 16) and an optional text');
    return { type: 'err', code, text: rest.slice(1).join(' ') };
  }
  const { args, fields } = positional(tokens.slice(1));
  const word = (i: number): string | undefined => args[i]?.toUpperCase();
  switch (keyword) {
    case 'HELLO': {
      const bad = arity(keyword, args, 2, 2, '<version> <firmware>');
      if (bad) return bad;
      const version = integer(args[0], 1, 999);
      if (version === undefined) return invalid('HELLO version must be an integer 1-999');
      if (!FIRMWARE.test(args[1]!)) return invalid('HELLO firmware must be 1-32 printable characters');
      return { type: 'hello', version, firmware: args[1]!, fields };
    }
    case 'HOOK': {
      const bad = arity(keyword, args, 1, 1, 'ON or OFF');
      if (bad) return bad;
      if (word(0) === 'OFF') return { type: 'hook', offHook: true };
      if (word(0) === 'ON') return { type: 'hook', offHook: false };
      return invalid('HOOK takes ON or OFF');
    }
    case 'DIGIT': {
      const digit = args.length === 1 && /^[0-9]$/.test(args[0]!) ? args[0]! : undefined;
      return digit === undefined ? invalid('DIGIT takes one digit 0-9') : { type: 'digit', digit };
    }
    case 'KEY': {
      const key = word(0);
      return args.length === 1 && key !== undefined && KEYS.test(key) ? { type: 'key', key } : invalid('KEY takes one of 0-9 * # A-D');
    }
    case 'BUTTON': {
      const index = integer(args[0], 1, MAX_INDEX);
      const state = word(1);
      if (args.length !== 2 || index === undefined || (state !== 'DOWN' && state !== 'UP')) {
        return invalid(`BUTTON takes a number 1-${MAX_INDEX} and DOWN or UP`);
      }
      return { type: 'button', index, down: state === 'DOWN' };
    }
    case 'PONG': {
      const bad = arity(keyword, args, 0, 1, 'an optional token');
      if (bad) return bad;
      if (args[0] !== undefined && !TOKEN.test(args[0])) return invalid('PONG token must be 1-16 letters or digits');
      return args[0] === undefined ? { type: 'pong' } : { type: 'pong', token: args[0] };
    }
    case 'OK':
      return { type: 'ok' };
    default:
      return { type: 'unknown', keyword };
  }
}

/** A duration list `a,b,...` of 1..max entries each 1..MAX_DURATION_MS, or undefined. */
function durations(s: string | undefined, max: number): number[] | undefined {
  if (s === undefined) return undefined;
  const parts = s.split(',');
  if (parts.length > max) return undefined;
  const values = parts.map((p) => integer(p, 1, MAX_DURATION_MS));
  return values.every((v): v is number => v !== undefined) ? values : undefined;
}

/** Parses one host→device line (§5), as firmware does. Never throws. */
export function parseHostLine(line: Uint8Array | string): HostCommand | InvalidLine {
  const tokens = tokenize(line);
  if (!Array.isArray(tokens)) return tokens;
  const keyword = tokens[0]!.toUpperCase();
  const { args } = positional(tokens.slice(1));
  const word = (i: number): string | undefined => args[i]?.toUpperCase();
  switch (keyword) {
    case 'HELLO': {
      const version = integer(args[0], 1, 999);
      if (args.length < 1 || args.length > 2 || version === undefined) return invalid('HELLO takes <version> [<agent>]');
      if (args[1] !== undefined && !FIRMWARE.test(args[1])) return invalid('HELLO agent must be 1-32 printable characters');
      return args[1] === undefined ? { type: 'hello', version } : { type: 'hello', version, agent: args[1] };
    }
    case 'PING':
      if (args.length > 1 || (args[0] !== undefined && !TOKEN.test(args[0]))) return invalid('PING takes an optional token');
      return args[0] === undefined ? { type: 'ping' } : { type: 'ping', token: args[0] };
    case 'RING': {
      if (args.length === 1 && word(0) === 'OFF') return { type: 'ringOff' };
      const cadence = args.length === 1 ? durations(args[0], MAX_CADENCE_ENTRIES) : undefined;
      if (cadence === undefined || cadence.length % 2 !== 0) return invalid(`RING takes OFF or 2-${MAX_CADENCE_ENTRIES} on,off durations`);
      return { type: 'ring', cadence };
    }
    case 'RELAY': {
      const index = integer(args[0], 1, MAX_INDEX);
      const action = word(1);
      if (index !== undefined && args.length === 2 && (action === 'ON' || action === 'OFF')) {
        return { type: 'relay', index, action: { kind: action === 'ON' ? 'on' : 'off' } };
      }
      const ms = integer(args[2], 1, MAX_DURATION_MS);
      if (index !== undefined && args.length === 3 && action === 'PULSE' && ms !== undefined) return { type: 'relay', index, action: { kind: 'pulse', ms } };
      return invalid('RELAY takes <n> ON, OFF or PULSE <ms>');
    }
    case 'LED': {
      const index = integer(args[0], 1, MAX_INDEX);
      const mode = word(1);
      if (index !== undefined && args.length === 2 && (mode === 'ON' || mode === 'OFF')) {
        return { type: 'led', index, mode: { kind: mode === 'ON' ? 'on' : 'off' } };
      }
      const times = durations(args[2], 2);
      if (index !== undefined && args.length === 3 && mode === 'BLINK' && times?.length === 2) {
        return { type: 'led', index, mode: { kind: 'blink', onMs: times[0]!, offMs: times[1]! } };
      }
      return invalid('LED takes <n> ON, OFF or BLINK <on>,<off>');
    }
    default:
      return invalid(`unknown command ${JSON.stringify(tokens[0])}`);
  }
}

function checkInt(what: string, n: number, min: number, max: number): number {
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`${what} ${n} outside ${min}-${max}`);
  return n;
}

/** A formatted line must itself obey §2 (printable ASCII, at most MAX_LINE_LENGTH bytes). */
function finish(line: string): string {
  if (line.length > MAX_LINE_LENGTH || !/^[ -~]*$/.test(line)) throw new RangeError(`line ${JSON.stringify(line)} breaks the serial framing`);
  return line;
}

function checkToken(what: string, s: string, re: RegExp): string {
  if (!re.test(s)) throw new RangeError(`${what} ${JSON.stringify(s)} is not allowed in the serial protocol`);
  return s;
}

/**
 * Turns a cadence (ms on, ms off, ...; repeated, as {@link HardwareBackend.ring} takes it) into
 * one the protocol can carry: rounded, each entry 1..MAX_DURATION_MS, an odd list doubled (its
 * repetition alternates), at most MAX_CADENCE_ENTRIES. A string says why it cannot.
 */
export function normalizeCadence(cadence: readonly number[]): number[] | string {
  if (cadence.length === 0) return 'empty cadence';
  if (!cadence.every((v) => Number.isFinite(v) && v >= 0.5)) return `cadence ${cadence.join(',')} has an entry under 1 ms`;
  const rounded = cadence.map((v) => Math.min(MAX_DURATION_MS, Math.round(v)));
  const even = rounded.length % 2 === 0 ? rounded : [...rounded, ...rounded];
  if (even.length > MAX_CADENCE_ENTRIES) return `cadence ${cadence.join(',')} has more than ${MAX_CADENCE_ENTRIES} entries`;
  return even;
}

/** Formats a host command as its line, without terminator. Throws RangeError on values the protocol cannot carry. */
export function formatHostCommand(cmd: HostCommand): string {
  return finish(hostLine(cmd));
}

function hostLine(cmd: HostCommand): string {
  switch (cmd.type) {
    case 'hello':
      return `HELLO ${checkInt('version', cmd.version, 1, 999)}${cmd.agent === undefined ? '' : ` ${checkToken('agent', cmd.agent, FIRMWARE)}`}`;
    case 'ping':
      return cmd.token === undefined ? 'PING' : `PING ${checkToken('token', cmd.token, TOKEN)}`;
    case 'ringOff':
      return 'RING OFF';
    case 'ring': {
      if (cmd.cadence.length === 0 || cmd.cadence.length % 2 !== 0 || cmd.cadence.length > MAX_CADENCE_ENTRIES) {
        throw new RangeError(`cadence needs 2-${MAX_CADENCE_ENTRIES} entries, an even number`);
      }
      return `RING ${cmd.cadence.map((v) => checkInt('cadence entry', v, 1, MAX_DURATION_MS)).join(',')}`;
    }
    case 'relay': {
      const n = checkInt('relay', cmd.index, 1, MAX_INDEX);
      const a = cmd.action;
      return a.kind === 'pulse' ? `RELAY ${n} PULSE ${checkInt('pulse', a.ms, 1, MAX_DURATION_MS)}` : `RELAY ${n} ${a.kind.toUpperCase()}`;
    }
    case 'led': {
      const n = checkInt('LED', cmd.index, 1, MAX_INDEX);
      const m = cmd.mode;
      if (m.kind !== 'blink') return `LED ${n} ${m.kind.toUpperCase()}`;
      return `LED ${n} BLINK ${checkInt('blink on', m.onMs, 1, MAX_DURATION_MS)},${checkInt('blink off', m.offMs, 1, MAX_DURATION_MS)}`;
    }
  }
}

/** Formats a device message as its line, without terminator (for simulated devices and tests). Throws RangeError on bad values. */
export function formatDeviceMessage(msg: DeviceMessage): string {
  return finish(deviceLine(msg));
}

function deviceLine(msg: DeviceMessage): string {
  switch (msg.type) {
    case 'hello': {
      const ext = Object.entries(msg.fields).map(([k, v]) => ` ${checkToken('field', `${k}=${v}`, EXTENSION)}`);
      return `HELLO ${checkInt('version', msg.version, 1, 999)} ${checkToken('firmware', msg.firmware, FIRMWARE)}${ext.join('')}`;
    }
    case 'hook':
      return `HOOK ${msg.offHook ? 'OFF' : 'ON'}`;
    case 'digit':
      return `DIGIT ${checkToken('digit', msg.digit, /^[0-9]$/)}`;
    case 'key':
      return `KEY ${checkToken('key', msg.key, KEYS)}`;
    case 'button':
      return `BUTTON ${checkInt('button', msg.index, 1, MAX_INDEX)} ${msg.down ? 'DOWN' : 'UP'}`;
    case 'pong':
      return msg.token === undefined ? 'PONG' : `PONG ${checkToken('token', msg.token, TOKEN)}`;
    case 'ok':
      return 'OK';
    case 'err':
      return `ERR ${checkToken('code', msg.code, ERR_CODE)}${msg.text ? ` ${msg.text}` : ''}`;
    case 'log':
      return `LOG ${msg.text}`;
    case 'unknown':
      return checkToken('keyword', msg.keyword, KEYWORD);
  }
}
