/**
 * The dial plan: maps a dialled number (the user part of a request's target) to where the call
 * goes. Pure: no I/O, no clock.
 *
 * Order: emergency numbers (to the first trunk), then the configured rules in order, then an exact
 * extension number. Nothing matching means the caller answers 404.
 *
 * Patterns are MGCP digit maps (RFC 3435 §2.1.5) without the `|` alternatives and timers:
 * digits, `*`, `#` and `+` are literals, `x` is any digit, `[1-9]`, `[135]` and `[0-35-9]` are
 * character classes, and `.` repeats the preceding element zero or more times, so `0[1-9]x.`
 * matches `01`, `019` and `0123456`. A pattern written `/.../` is a JavaScript regular expression.
 * Either way the pattern must match the whole dialled number.
 */

/** Where a routed call goes. */
export type DialTarget =
  | { kind: 'extension'; extension: string }
  | { kind: 'device' }
  | { kind: 'trunk'; trunk: string }
  | { kind: 'echo' }
  /** A hookswitch box on the LAN: `peer` names it, else the number picks it (src/calls/peer-route.ts). */
  | { kind: 'peer'; peer?: string };

/** One configured rule (`dialplan[]` in the config). */
export interface DialRule {
  /** A digit map (`0[1-9]x.`) or a `/regex/` matched against the whole number. */
  match: string;
  /** `extension:<n>`, `device`, `trunk:<name>`, `echo` or `peer`. */
  to: string;
  /** Leading characters removed from the number before it is sent on. */
  strip?: number;
  /** Characters (digits, `+`, `*`, `#`) put in front after stripping. */
  prepend?: string;
  /**
   * With `to: "peer"`: the peer's name (as `hookswitch peers` shows it, or its short form). The
   * number left after `strip`, when it is all digits, is the extension called there; otherwise
   * (e.g. `*7` not stripped) the peer's device extension.
   */
  peer?: string;
}

/** The result of routing a number. */
export interface Route {
  target: DialTarget;
  /** The number to send on, after `strip` and `prepend`. */
  number: string;
  /** Index of the rule that matched; -1 for the built-ins (emergency, extension numbers). */
  rule: number;
}

/** What a DialPlan knows about the box, for the built-in routes and for checking `to`. */
export interface DialPlanOptions {
  /** Configured extension numbers. */
  extensions: readonly string[];
  /** The number of this device (the analog handset); routes to `{ kind: 'device' }`. */
  deviceExtension: string;
  /** Configured trunk names, in config order; emergency calls use the first. */
  trunks: readonly string[];
  emergencyNumbers: readonly string[];
}

/** Numbers longer than this never match (bounds the work a user-written regex can do). */
const MAX_NUMBER_LENGTH = 64;

/** Characters a digit-map literal or `prepend` may hold. */
const DIAL_CHARS = /^[0-9*#+]*$/;

/**
 * Compiles a rule's `match` into a predicate over whole dialled numbers. Throws an Error with a
 * one-line message when the pattern is invalid (`invalid dial pattern: ... (got "0[1-")`).
 */
export function compileDialRule(rule: DialRule): (n: string) => boolean {
  const pattern: unknown = rule.match;
  if (typeof pattern !== 'string' || pattern === '') fail('the pattern must be a non-empty string', pattern);
  let source: string;
  if (pattern.startsWith('/')) {
    if (pattern.length < 3 || !pattern.endsWith('/')) fail('a regular expression must be written /.../ with no flags', pattern);
    source = pattern.slice(1, -1);
    try {
      new RegExp(source);
    } catch (e) {
      fail(`bad regular expression: ${oneLine((e as Error).message)}`, pattern);
    }
  } else {
    source = digitMapToRegExp(pattern);
  }
  const re = new RegExp(`^(?:${source})$`);
  return (n: string) => typeof n === 'string' && n.length <= MAX_NUMBER_LENGTH && re.test(n);
}

/**
 * Parses a rule's `to` (`extension:101`, `device`, `trunk:provider`, `echo`, `peer`). Returns a
 * one-line reason instead when it is malformed or names an unknown extension or trunk; extension
 * numbers are only checked against `extensions` when that list is given.
 */
export function parseDialTarget(
  to: string,
  known: { extensions?: readonly string[]; deviceExtension: string; trunks: readonly string[] },
): DialTarget | { error: string } {
  if (to === 'device' || to === 'echo' || to === 'peer') return { kind: to };
  if (to.startsWith('extension:')) {
    const extension = to.slice('extension:'.length);
    if (!/^[0-9]{1,15}$/.test(extension)) return { error: 'names an extension that is not a number' };
    if (extension === known.deviceExtension) return { kind: 'device' };
    if (known.extensions && !known.extensions.includes(extension)) return { error: `names extension ${extension}, which is not configured` };
    return { kind: 'extension', extension };
  }
  if (to.startsWith('trunk:')) {
    const trunk = to.slice('trunk:'.length);
    if (!known.trunks.includes(trunk)) return { error: `names trunk ${JSON.stringify(trunk)}, which is not configured` };
    return { kind: 'trunk', trunk };
  }
  return { error: 'must be "extension:<number>", "device", "trunk:<name>", "echo" or "peer"' };
}

interface CompiledRule {
  test: (n: string) => boolean;
  target: DialTarget;
  strip: number;
  prepend: string;
}

/**
 * Routes dialled numbers. Construct it from a validated config (`resolveConfig` checks the same
 * things); the constructor throws on a rule that does not compile, names an unknown target or
 * has a bad `strip`/`prepend`. {@link DialPlan.route} never throws.
 */
export class DialPlan {
  private readonly rules: CompiledRule[];
  private readonly extensions: ReadonlySet<string>;
  private readonly emergency: ReadonlySet<string>;

  constructor(
    rules: readonly DialRule[],
    private readonly opts: DialPlanOptions,
  ) {
    this.extensions = new Set(opts.extensions);
    this.emergency = new Set(opts.emergencyNumbers);
    this.rules = rules.map((rule, i) => {
      let target = parseDialTarget(rule.to, { deviceExtension: opts.deviceExtension, trunks: opts.trunks });
      if ('error' in target) throw new Error(`dialplan[${i}].to ${target.error} (got ${JSON.stringify(rule.to)})`);
      if (rule.peer !== undefined) {
        if (target.kind !== 'peer') throw new Error(`dialplan[${i}].peer needs "to": "peer" (got ${JSON.stringify(rule.to)})`);
        target = { kind: 'peer', peer: rule.peer };
      }
      const strip = rule.strip ?? 0;
      if (!Number.isInteger(strip) || strip < 0) throw new Error(`dialplan[${i}].strip must be a whole number >= 0 (got ${strip})`);
      const prepend = rule.prepend ?? '';
      if (!DIAL_CHARS.test(prepend)) throw new Error(`dialplan[${i}].prepend must hold only digits, +, * and # (got ${JSON.stringify(prepend)})`);
      return { test: compileDialRule(rule), target, strip, prepend };
    });
  }

  /**
   * Where `number` goes, or undefined when nothing matches (the caller answers 404).
   * 1. An emergency number goes to the first trunk unchanged, whatever the rules say; with no
   *    trunk it falls through to the rules.
   * 2. The first rule whose pattern matches the whole number; the number is sent on with
   *    `strip` leading characters removed and `prepend` added.
   * 3. A configured extension number (the device's own number routes to the device).
   */
  route(number: string): Route | undefined {
    if (typeof number !== 'string' || number === '' || number.length > MAX_NUMBER_LENGTH) return undefined;
    const firstTrunk = this.opts.trunks[0];
    if (firstTrunk !== undefined && this.emergency.has(number)) {
      return { target: { kind: 'trunk', trunk: firstTrunk }, number, rule: -1 };
    }
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      if (rule.test(number)) return { target: rule.target, number: rule.prepend + number.slice(rule.strip), rule: i };
    }
    if (number === this.opts.deviceExtension) return { target: { kind: 'device' }, number, rule: -1 };
    if (this.extensions.has(number)) return { target: { kind: 'extension', extension: number }, number, rule: -1 };
    return undefined;
  }
}

function fail(reason: string, pattern: unknown): never {
  throw new Error(`invalid dial pattern: ${reason} (got ${JSON.stringify(pattern) ?? String(pattern)})`);
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** Translates a digit map into a regular-expression source; throws on a bad pattern. */
function digitMapToRegExp(pattern: string): string {
  let out = '';
  let canRepeat = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    const pos = i + 1;
    if (c >= '0' && c <= '9') out += c;
    else if (c === '*' || c === '#' || c === '+') out += `\\${c}`;
    else if (c === 'x' || c === 'X') out += '[0-9]';
    else if (c === '.') {
      // RFC 3435 §2.1.5: "." matches an arbitrary number, including zero, of occurrences of the
      // preceding construct.
      if (!canRepeat) fail(`"." at position ${pos} must follow a digit, "x" or a [class]`, pattern);
      out += '*';
      canRepeat = false;
      continue;
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) fail(`"[" at position ${pos} is never closed`, pattern);
      out += `[${digitClass(pattern.slice(i + 1, end), pos, pattern)}]`;
      i = end;
    } else fail(`${JSON.stringify(c)} at position ${pos} is not a digit, *, #, +, x, [class] or "."`, pattern);
    canRepeat = true;
  }
  return out;
}

/** The inside of a `[...]` class: digits, `*#+`, and digit ranges like `0-3`. */
function digitClass(body: string, pos: number, pattern: string): string {
  if (body === '') fail(`the class at position ${pos} is empty`, pattern);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (body[i + 1] === '-') {
      const hi = body[i + 2];
      if (hi === undefined || !/[0-9]/.test(c) || !/[0-9]/.test(hi) || hi < c) {
        fail(`the class at position ${pos} has a bad range (ranges go from a lower to a higher digit)`, pattern);
      }
      out += `${c}-${hi}`;
      i += 2;
    } else if (/[0-9]/.test(c)) out += c;
    else if (c === '*' || c === '#' || c === '+') out += `\\${c}`;
    else fail(`the class at position ${pos} may hold only digits, ranges, *, # and +`, pattern);
  }
  return out;
}
