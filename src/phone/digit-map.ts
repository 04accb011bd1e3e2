/**
 * Number completion for the handset: after each dialled digit, is the number complete (dial it
 * now), a prefix of something longer (wait for more), or unobtainable? Pure: no I/O, no clock.
 *
 * The patterns are the dial plan's (`dialplan[].match`, see `src/calls/dialplan.ts`), plus every
 * extension number and emergency number as a literal. Digit maps follow RFC 3435 §2.1.5 without
 * `|` alternatives and timers: digits, `*`, `#`, `+` are literals, `x` any digit, `[...]` a class,
 * `.` repeats the preceding element zero or more times. Whole-number matching uses the dial plan's
 * own {@link compileDialRule}, so "matches" here means exactly what routing will accept.
 *
 * A `/regex/` rule cannot be tested for prefixes, so it is treated as "could match a longer
 * number" for every input: with a regex rule in the plan, no number is ever unobtainable or
 * complete at once; it is dialled on `#` or at the inter-digit timeout when the regex matches.
 */
import { compileDialRule, type DialRule } from '../calls/dialplan.ts';

/**
 * `complete`: some pattern matches and none could match a longer number (dial at once).
 * `partial`: some pattern could still match a longer number (wait; see {@link DigitMap.matches}).
 * `none`: no pattern matches this number or any longer one (number unobtainable).
 */
export type Completion = 'complete' | 'partial' | 'none';

/** What the digit map is built from; the same lists the dial plan routes with. */
export interface DigitMapSource {
  /** The configured dial plan rules; only `match` is used. */
  rules: readonly Pick<DialRule, 'match'>[];
  /** Extension numbers (and the device's own), matched literally. */
  extensions?: readonly string[];
  /** Emergency numbers, matched literally. */
  emergencyNumbers?: readonly string[];
}

/** Mirrors the dial plan's bound on number length (`MAX_NUMBER_LENGTH` in dialplan.ts). */
const MAX_NUMBER_LENGTH = 64;

/** One digit-map element: the characters it accepts, and whether `.` lets it repeat. */
interface Element {
  chars: ReadonlySet<string>;
  repeat: boolean;
}

interface Pattern {
  full: (n: string) => boolean;
  /** Elements for prefix analysis; undefined for a regex (prefixes unknown). */
  elements: readonly Element[] | undefined;
}

const DIGITS = '0123456789';

/**
 * A compiled digit map. The constructor throws (with the dial plan's one-line message) on a rule
 * that does not compile; config validation rejects those earlier, so that means a caller bug.
 */
export class DigitMap {
  private readonly patterns: readonly Pattern[];

  constructor(source: DigitMapSource) {
    const literals = [...(source.extensions ?? []), ...(source.emergencyNumbers ?? [])];
    this.patterns = [
      ...source.rules.map((rule) => ({
        full: compileDialRule({ match: rule.match, to: 'device' }),
        elements: rule.match.startsWith('/') ? undefined : parseElements(rule.match),
      })),
      ...literals.map((n) => ({ full: (x: string) => x === n, elements: [...n].map((c) => ({ chars: new Set([c]), repeat: false })) })),
    ];
  }

  /** True when some pattern matches the whole of `number` (routing would accept it). */
  matches(number: string): boolean {
    return number !== '' && this.patterns.some((p) => p.full(number));
  }

  /**
   * True when `number` is known to be of use: some pattern matches it, or a digit map (not a
   * regex, whose prefixes are unknown) could match a longer number starting with it. The handset
   * asks this to tell whether `#` is part of a number or the send key.
   */
  uses(number: string): boolean {
    return this.matches(number) || (number.length < MAX_NUMBER_LENGTH && this.patterns.some((p) => p.elements !== undefined && canExtend(p.elements, number)));
  }

  /** Whether `number` is complete, a prefix of something longer, or unobtainable. */
  completion(number: string): Completion {
    const extendable = number.length < MAX_NUMBER_LENGTH && this.patterns.some((p) => p.elements === undefined || canExtend(p.elements, number));
    if (extendable) return 'partial';
    return this.matches(number) ? 'complete' : 'none';
  }
}

/**
 * True when `elements` can match some string that starts with `number` and is longer: simulate
 * the digit map as an NFA whose states are element positions (a repeating element may be skipped
 * or stay put), and see whether any live state still has an element to consume.
 */
function canExtend(elements: readonly Element[], number: string): boolean {
  let states = closure(elements, new Set([0]));
  for (const c of number) {
    const next = new Set<number>();
    for (const i of states) {
      const el = elements[i];
      if (el?.chars.has(c)) next.add(el.repeat ? i : i + 1);
    }
    states = closure(elements, next);
    if (states.size === 0) return false;
  }
  for (const i of states) if (i < elements.length) return true;
  return false;
}

/** Adds the positions reachable by skipping repeating elements (they match zero times). */
function closure(elements: readonly Element[], states: Set<number>): Set<number> {
  const out = new Set(states);
  for (const start of states) {
    let i = start;
    while (i < elements.length && elements[i]!.repeat) out.add(++i);
  }
  return out;
}

/** Splits a digit map into elements; the pattern was already validated by compileDialRule. */
function parseElements(pattern: string): Element[] {
  const out: Element[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '.') {
      // RFC 3435 §2.1.5: "." matches an arbitrary number, including zero, of occurrences of the
      // preceding construct.
      out[out.length - 1]!.repeat = true;
    } else if (c === 'x' || c === 'X') {
      out.push({ chars: new Set(DIGITS), repeat: false });
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      out.push({ chars: classChars(pattern.slice(i + 1, end)), repeat: false });
      i = end;
    } else {
      out.push({ chars: new Set([c]), repeat: false });
    }
  }
  return out;
}

function classChars(body: string): Set<string> {
  const chars = new Set<string>();
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (body[i + 1] === '-' && body[i + 2] !== undefined) {
      for (let d = Number(c); d <= Number(body[i + 2]); d++) chars.add(String(d));
      i += 2;
    } else chars.add(c);
  }
  return chars;
}
