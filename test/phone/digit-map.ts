import t from 'tap';
import { DigitMap, type Completion, type DigitMapSource } from '../../src/phone/digit-map.ts';

const PLAN: DigitMapSource = {
  rules: [{ match: '0[1-9]x.' }, { match: '*43' }, { match: '9[2-8]xx' }],
  extensions: ['101', '102', '1234'],
  emergencyNumbers: ['112', '911'],
};

t.test('completion of a dialled number against the dial plan', async (t) => {
  const cases: [name: string, number: string, completion: Completion, matches: boolean][] = [
    ['nothing dialled yet could become anything', '', 'partial', false],
    ['a first digit that starts some pattern', '1', 'partial', false],
    ['a fixed-length extension is complete at once', '101', 'complete', true],
    ['an extension that is a prefix of a longer one waits', '1', 'partial', false],
    ['an emergency number is complete', '112', 'complete', true],
    ['911 is complete', '911', 'complete', true],
    ['a prefix of a 4-digit extension', '123', 'partial', false],
    ['the 4-digit extension', '1234', 'complete', true],
    ['a star code is complete', '*43', 'complete', true],
    ['a star code prefix', '*4', 'partial', false],
    ['an open-ended trunk pattern matches but waits for more', '01', 'partial', true],
    ['still open-ended after many digits', '0301234567', 'partial', true],
    ['the trunk prefix alone does not match', '0', 'partial', false],
    ['a class rejects the second digit', '00', 'none', false],
    ['a fixed-length pattern with a class', '9345', 'complete', true],
    ['a class prefix', '93', 'partial', false],
    ['outside the class', '91', 'partial', false],
    ['unknown first digit', '5', 'none', false],
    ['too long for any extension', '1011', 'none', false],
    ['a star code with a wrong digit', '*44', 'none', false],
    ['a hash after a complete number matches nothing', '101#', 'none', false],
  ];
  const map = new DigitMap(PLAN);
  for (const [name, number, completion, matches] of cases) {
    t.equal(map.completion(number), completion, `${name}: completion(${JSON.stringify(number)})`);
    t.equal(map.matches(number), matches, `${name}: matches(${JSON.stringify(number)})`);
  }
});

t.test('a regex rule cannot be prefix-tested, so it keeps every number partial', async (t) => {
  const map = new DigitMap({ rules: [{ match: '/1[0-9]{2}/' }], extensions: ['200'] });
  const cases: [number: string, completion: Completion, matches: boolean][] = [
    ['5', 'partial', false],
    ['100', 'partial', true],
    ['200', 'partial', true],
    ['99999', 'partial', false],
  ];
  for (const [number, completion, matches] of cases) {
    t.equal(map.completion(number), completion, `completion(${number})`);
    t.equal(map.matches(number), matches, `matches(${number})`);
  }
});

t.test('uses: whether a number (with # at the end) is of use to some pattern', async (t) => {
  const map = new DigitMap({ rules: [{ match: '/1[0-9]{2}/' }, { match: '*21*x.#' }, { match: '/#31#/' }], extensions: ['101'] });
  const cases: [number: string, uses: boolean][] = [
    ['#', false],
    ['#31#', true],
    ['*21*', true],
    ['*21*0171#', true],
    ['12#', false],
    ['101#', false],
    ['101', true],
    ['5', false],
  ];
  for (const [number, uses] of cases) t.equal(map.uses(number), uses, `uses(${number})`);
});

t.test('x. matches everything and completes nothing', async (t) => {
  const map = new DigitMap({ rules: [{ match: 'x.' }] });
  t.equal(map.completion('1'), 'partial');
  t.equal(map.matches('1'), true);
  t.equal(map.completion('*'), 'none', 'x is digits only');
});

t.test('no number is partial past the dial plan length bound', async (t) => {
  const map = new DigitMap({ rules: [{ match: 'x.' }] });
  t.equal(map.completion('1'.repeat(63)), 'partial');
  t.equal(map.completion('1'.repeat(64)), 'complete');
  t.equal(map.completion('1'.repeat(65)), 'none', 'the dial plan refuses numbers past 64 characters');
});

t.test('a bad rule throws the dial plan message', async (t) => {
  t.throws(() => new DigitMap({ rules: [{ match: '0[1-' }] }), { message: /invalid dial pattern: "\[" at position 2 is never closed/ });
});

t.test('completion agrees with brute force over every number up to 3 keys', async (t) => {
  // Brute force: "partial" iff some longer string (up to 4 more keys, enough for these patterns)
  // starting with the number matches; otherwise "complete" iff the number matches.
  const alphabet = ['0', '1', '5', '9', '*', '#'];
  const plan: DigitMapSource = { rules: [{ match: '1[0-5]' }, { match: '9x.' }, { match: '*5#' }, { match: '[05]1.5' }], extensions: ['55'] };
  const map = new DigitMap(plan);
  const strings = (len: number): string[] => (len === 0 ? [''] : strings(len - 1).flatMap((s) => alphabet.map((c) => s + c)));
  const suffixes = [1, 2, 3, 4].flatMap((n) => strings(n));
  let checked = 0;
  let mismatches = 0;
  for (const len of [0, 1, 2, 3]) {
    for (const number of strings(len)) {
      const longer = suffixes.some((s) => map.matches(number + s));
      const expected: Completion = longer ? 'partial' : map.matches(number) ? 'complete' : 'none';
      if (map.completion(number) !== expected) {
        mismatches++;
        t.fail(`completion(${JSON.stringify(number)}) = ${map.completion(number)}, brute force says ${expected}`);
      }
      checked++;
    }
  }
  t.equal(checked, 1 + 6 + 36 + 216);
  t.equal(mismatches, 0);
});
