import t from 'tap';
import { compileDialRule, DialPlan, parseDialTarget, type DialRule, type Route } from '../../src/calls/dialplan.ts';

t.test('digit maps match the whole number (RFC 3435 §2.1.5 syntax)', async (t) => {
  const cases: [name: string, pattern: string, matches: string[], rejects: string[]][] = [
    ['literal star code', '*43', ['*43'], ['*4', '*430', '43', '#43']],
    ['hash and plus are literals', '+49#', ['+49#'], ['49#', '+49']],
    ['x is any one digit', '1xx', ['100', '199'], ['10', '1000', '1a0', '200']],
    ['range class', '[1-9]', ['1', '9'], ['0', '10']],
    ['list class', '[135]', ['1', '3', '5'], ['2', '4']],
    ['mixed ranges', '[0-35-9]', ['0', '3', '5', '9'], ['4']],
    ['class with star and hash', '[*#]1', ['*1', '#1'], ['11']],
    ['dot repeats the preceding digit class zero or more times', '0[1-9]x.', ['01', '019', '0123456'], ['0', '00', '0123a', '10']],
    ['dot after a literal', '00.', ['0', '00', '0000'], ['', '01']],
    ['dot after a class', '9[0-9].', ['9', '90', '9123'], ['8']],
    ['upper-case X is any digit too', '1X', ['12'], ['1']],
    ['regex anchored to the whole number', '/1[0-9]{2}/', ['100', '199'], ['1000', '2100', '10']],
    ['regex alternation stays anchored', '/11|12/', ['11', '12'], ['112', '011']],
    ['regex with a character escape', '/\\+49\\d+/', ['+4930123'], ['4930123']],
  ];
  for (const [name, pattern, yes, no] of cases) {
    const test = compileDialRule({ match: pattern, to: 'echo' });
    for (const n of yes) t.equal(test(n), true, `${name}: ${pattern} matches ${JSON.stringify(n)}`);
    for (const n of no) t.equal(test(n), false, `${name}: ${pattern} does not match ${JSON.stringify(n)}`);
  }
});

t.test('a bad pattern throws a one-line message naming the problem and the pattern', async (t) => {
  const cases: [name: string, pattern: unknown, message: string][] = [
    ['empty', '', 'invalid dial pattern: the pattern must be a non-empty string (got "")'],
    ['not a string', 5, 'invalid dial pattern: the pattern must be a non-empty string (got 5)'],
    ['letter', '1a', 'invalid dial pattern: "a" at position 2 is not a digit, *, #, +, x, [class] or "." (got "1a")'],
    ['dot first', '.1', 'invalid dial pattern: "." at position 1 must follow a digit, "x" or a [class] (got ".1")'],
    ['two dots', 'x..', 'invalid dial pattern: "." at position 3 must follow a digit, "x" or a [class] (got "x..")'],
    ['unclosed class', '0[1-9', 'invalid dial pattern: "[" at position 2 is never closed (got "0[1-9")'],
    ['empty class', '[]', 'invalid dial pattern: the class at position 1 is empty (got "[]")'],
    ['reversed range', '[9-1]', 'invalid dial pattern: the class at position 1 has a bad range (ranges go from a lower to a higher digit) (got "[9-1]")'],
    ['open range', '[1-]', 'invalid dial pattern: the class at position 1 has a bad range (ranges go from a lower to a higher digit) (got "[1-]")'],
    ['letter in class', '[a]', 'invalid dial pattern: the class at position 1 may hold only digits, ranges, *, # and + (got "[a]")'],
    ['regex with flags', '/1x/i', 'invalid dial pattern: a regular expression must be written /.../ with no flags (got "/1x/i")'],
    ['empty regex', '//', 'invalid dial pattern: a regular expression must be written /.../ with no flags (got "//")'],
    ['regex that does not compile', '/1(/', 'invalid dial pattern: bad regular expression: Invalid regular expression: /1(/: Unterminated group (got "/1(/")'],
    ['regex that escapes the anchors', '/1)|(2/', 'invalid dial pattern: bad regular expression: Invalid regular expression: /1)|(2/: Unmatched \')\' (got "/1)|(2/")'],
  ];
  for (const [name, pattern, message] of cases) {
    t.throws(() => compileDialRule({ match: pattern as string, to: 'echo' }), { message }, name);
  }
});

t.test('dial targets parse from "to"', async (t) => {
  const known = { extensions: ['101', '102'], deviceExtension: '100', trunks: ['provider', 'pbx'] };
  const cases: [to: string, expected: unknown][] = [
    ['extension:101', { kind: 'extension', extension: '101' }],
    ['extension:100', { kind: 'device' }],
    ['device', { kind: 'device' }],
    ['echo', { kind: 'echo' }],
    ['peer', { kind: 'peer' }],
    ['trunk:pbx', { kind: 'trunk', trunk: 'pbx' }],
    ['extension:109', { error: 'names extension 109, which is not configured' }],
    ['extension:', { error: 'names an extension that is not a number' }],
    ['extension:abc', { error: 'names an extension that is not a number' }],
    ['trunk:other', { error: 'names trunk "other", which is not configured' }],
    ['extension', { error: 'must be "extension:<number>", "device", "trunk:<name>", "echo" or "peer"' }],
    ['voicemail', { error: 'must be "extension:<number>", "device", "trunk:<name>", "echo" or "peer"' }],
  ];
  for (const [to, expected] of cases) t.same(parseDialTarget(to, known), expected, to);
  t.same(parseDialTarget('extension:555', { deviceExtension: '100', trunks: [] }), { kind: 'extension', extension: '555' }, 'any number when no extension list is given');
});

t.test('routing: emergency first, then rules in order, then extension numbers', async (t) => {
  const rules: DialRule[] = [
    { match: '*43', to: 'echo' },
    { match: '0[1-9]x.', to: 'trunk:provider', strip: 1 },
    { match: '00x.', to: 'trunk:provider', strip: 2, prepend: '+' },
    { match: '9x.', to: 'trunk:pbx', strip: 1, prepend: '0049' },
    { match: '11x', to: 'extension:101' },
    { match: '*8', to: 'peer' },
    { match: '/2?112/', to: 'extension:102' },
    { match: '*0', to: 'device' },
    { match: '*9', to: 'trunk:pbx', strip: 5 },
  ];
  const plan = new DialPlan(rules, {
    extensions: ['100', '101', '102'],
    deviceExtension: '100',
    trunks: ['provider', 'pbx'],
    emergencyNumbers: ['112', '911'],
  });
  const cases: [name: string, dialled: string, expected: Route | undefined][] = [
    ['echo test code', '*43', { target: { kind: 'echo' }, number: '*43', rule: 0 }],
    ['national call strips the trunk prefix 0', '0301234567', { target: { kind: 'trunk', trunk: 'provider' }, number: '301234567', rule: 1 }],
    ['shortest national match', '01', { target: { kind: 'trunk', trunk: 'provider' }, number: '1', rule: 1 }],
    ['international: strip 00, prepend +', '00493012345', { target: { kind: 'trunk', trunk: 'provider' }, number: '+493012345', rule: 2 }],
    ['prepend after strip', '9301234', { target: { kind: 'trunk', trunk: 'pbx' }, number: '0049301234', rule: 3 }],
    ['fixed extension target', '115', { target: { kind: 'extension', extension: '101' }, number: '115', rule: 4 }],
    ['peer target', '*8', { target: { kind: 'peer' }, number: '*8', rule: 5 }],
    ['device target', '*0', { target: { kind: 'device' }, number: '*0', rule: 7 }],
    ['strip longer than the number leaves nothing', '*9', { target: { kind: 'trunk', trunk: 'pbx' }, number: '', rule: 8 }],
    ['emergency number beats a matching rule', '112', { target: { kind: 'trunk', trunk: 'provider' }, number: '112', rule: -1 }],
    ['emergency number with no rule', '911', { target: { kind: 'trunk', trunk: 'provider' }, number: '911', rule: -1 }],
    ['an earlier rule wins over a later one', '0112', { target: { kind: 'trunk', trunk: 'provider' }, number: '112', rule: 1 }],
    ['a regex rule', '2112', { target: { kind: 'extension', extension: '102' }, number: '2112', rule: 6 }],
    ['configured extension after the rules', '102', { target: { kind: 'extension', extension: '102' }, number: '102', rule: -1 }],
    ['the device extension routes to the device', '100', { target: { kind: 'device' }, number: '100', rule: -1 }],
    ['unknown number', '555', undefined],
    ['extension prefix only', '10', undefined],
    ['empty number', '', undefined],
    ['letters', 'alice', undefined],
    ['very long number never matches', `0${'1'.repeat(100)}`, undefined],
  ];
  for (const [name, dialled, expected] of cases) t.same(plan.route(dialled), expected, name);
});

t.test('emergency numbers fall through to the rules when there is no trunk', async (t) => {
  const plan = new DialPlan([{ match: '11x', to: 'echo' }], { extensions: ['112'], deviceExtension: '100', trunks: [], emergencyNumbers: ['112'] });
  t.same(plan.route('112'), { target: { kind: 'echo' }, number: '112', rule: 0 }, 'a rule');
  const bare = new DialPlan([], { extensions: ['112'], deviceExtension: '100', trunks: [], emergencyNumbers: ['112'] });
  t.same(bare.route('112'), { target: { kind: 'extension', extension: '112' }, number: '112', rule: -1 }, 'then an extension');
  const none = new DialPlan([], { extensions: [], deviceExtension: '100', trunks: [], emergencyNumbers: ['112'] });
  t.equal(none.route('112'), undefined, 'else nothing');
});

t.test('route never throws on odd input', async (t) => {
  const plan = new DialPlan([{ match: '/.*/', to: 'echo' }], { extensions: [], deviceExtension: '100', trunks: [], emergencyNumbers: [] });
  for (const n of ['\u0000', 'sip:100@x', '%31%30%30', '\u00a0', ' 1 ']) {
    t.same(plan.route(n), { target: { kind: 'echo' }, number: n, rule: 0 }, `a catch-all regex routes ${JSON.stringify(n)}`);
  }
  t.equal(plan.route(undefined as unknown as string), undefined, 'a non-string is no match');
});

t.test('the constructor rejects rules that config validation would reject', async (t) => {
  const opts = { extensions: ['101'], deviceExtension: '100', trunks: ['provider'], emergencyNumbers: [] };
  const cases: [name: string, rule: DialRule, message: string][] = [
    ['bad pattern', { match: '1[', to: 'echo' }, 'invalid dial pattern: "[" at position 2 is never closed (got "1[")'],
    ['unknown trunk', { match: '0x.', to: 'trunk:other' }, 'dialplan[0].to names trunk "other", which is not configured (got "trunk:other")'],
    ['unknown kind', { match: '0', to: 'voicemail' }, 'dialplan[0].to must be "extension:<number>", "device", "trunk:<name>", "echo" or "peer" (got "voicemail")'],
    ['negative strip', { match: '0', to: 'echo', strip: -1 }, 'dialplan[0].strip must be a whole number >= 0 (got -1)'],
    ['letters in prepend', { match: '0', to: 'echo', prepend: '9a' }, 'dialplan[0].prepend must hold only digits, +, * and # (got "9a")'],
  ];
  for (const [name, rule, message] of cases) t.throws(() => new DialPlan([rule], opts), { message }, name);
});
