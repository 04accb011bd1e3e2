/**
 * `--help` and `-h` everywhere: every `hookswitch` command prints its usage on stdout and exits 0
 * without doing anything else (no daemon contacted, no config read, no audio opened), even when
 * its other arguments are missing or would be wrong.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../helpers/gateway-process.ts';

const CLI = ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts')];
/** Processes run at once: tsx needs ~0.5 s of CPU per start and the machine has 2 cores. */
const PARALLEL = 3;

/** The environment without tap's coverage hook (NODE_OPTIONS, _TAPJS_*): it slows each start. */
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS_')));

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function runCli(args: readonly string[]): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 15_000, env: { ...ENV, NO_COLOR: '1' } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr, ms: performance.now() - started }),
    );
  });
}

/** Runs every argument list, at most {@link PARALLEL} at a time, keeping the order. */
async function runAll(cases: readonly (readonly string[])[]): Promise<Outcome[]> {
  const out: Outcome[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      out[i] = await runCli(cases[i]!);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return out;
}

/** Each command with `--help`, and a line its usage must contain. */
const COMMANDS: readonly [command: string, usage: RegExp][] = [
  ['run', /hookswitch run \[--config FILE\] \[--bind ADDR\]/],
  ['status', /^Usage: hookswitch status \[--json\]/],
  ['call', /^Usage: hookswitch call NUMBER\|NAME/],
  ['answer', /^Usage: hookswitch answer /],
  ['hangup', /^Usage: hookswitch hangup /],
  ['dtmf', /^Usage: hookswitch dtmf DIGITS/],
  ['peers', /^Usage: hookswitch peers \[--json\]/],
  ['reload', /^Usage: hookswitch reload /],
  ['config', /hookswitch config get \[KEY\]/],
  ['doctor', /^Usage: hookswitch doctor /],
  ['trace', /^Usage: hookswitch trace /],
  ['board', /^Usage: hookswitch board list/],
  ['audio-test', /^Usage: hookswitch audio-test /],
  ['version', /^Usage: hookswitch version/],
];

/**
 * `-h` through each way a command parses its arguments (the control commands share one), and
 * help winning over arguments that are missing, wrong, or point at no daemon.
 */
const OTHER_HELP: readonly [name: string, args: string[], usage: RegExp][] = [
  ['status -h with a socket that does not exist', ['status', '--socket', '/nonexistent/control.sock', '-h'], /^Usage: hookswitch status/],
  ['call -h with a number', ['call', '101', '-h'], /^Usage: hookswitch call/],
  ['dtmf --help with too many arguments', ['dtmf', '1', '2', '--help'], /^Usage: hookswitch dtmf/],
  ['board list -h', ['board', 'list', '-h'], /^Usage: hookswitch board list/],
  ['config set -h without a value', ['config', 'set', 'sip.port', '-h'], /hookswitch config get/],
  ['run -h with a config file that does not exist', ['run', '--config', '/nonexistent/config.json', '-h'], /hookswitch run \[--config FILE\]/],
  ['doctor -h', ['doctor', '-h'], /^Usage: hookswitch doctor /],
  ['trace -h', ['trace', '-h'], /^Usage: hookswitch trace /],
  ['audio-test -h', ['audio-test', '-h'], /^Usage: hookswitch audio-test /],
  ['version -h', ['version', '-h'], /^Usage: hookswitch version/],
];

/** Without help, what the control commands do not know is still refused. */
const REFUSED: readonly [name: string, args: string[], stderr: RegExp][] = [
  ['status with an unknown option', ['status', '--bogus'], /Unknown option '--bogus'/],
  ['call without a number', ['call', '--socket', '/nonexistent/control.sock'], /call takes a NUMBER/],
];

const outcomes = (async () => {
  const started = performance.now();
  const all = await runAll([...COMMANDS.map(([c]) => [c, '--help']), ...OTHER_HELP.map(([, a]) => a), ...REFUSED.map(([, a]) => a)]);
  const times = all.map((o) => o.ms);
  t.comment(`${all.length} processes, ${PARALLEL} at a time: ${((performance.now() - started) / 1000).toFixed(1)} s wall, each ${Math.min(...times).toFixed(0)}-${Math.max(...times).toFixed(0)} ms`);
  return { commands: all.slice(0, COMMANDS.length), other: all.slice(COMMANDS.length, -REFUSED.length), refused: all.slice(-REFUSED.length) };
})();

t.test('every command prints its usage on --help and exits 0', async (t) => {
  const { commands } = await outcomes;
  COMMANDS.forEach(([command, usage], i) => {
    const o = commands[i]!;
    t.equal(o.code, 0, `${command} --help exits 0`, { stderr: o.stderr });
    t.match(o.stdout, usage, `${command} --help prints its usage`);
    t.equal(o.stderr, '', `${command} --help writes nothing to stderr`);
  });
});

t.test('-h works as --help, and help wins over the other arguments', async (t) => {
  const { other } = await outcomes;
  OTHER_HELP.forEach(([name, , usage], i) => {
    const o = other[i]!;
    t.equal(o.code, 0, `${name}: exit 0`, { stderr: o.stderr });
    t.match(o.stdout, usage, `${name}: the usage`);
    t.equal(o.stderr, '', `${name}: nothing on stderr`);
  });
});

t.test('without help the control commands still refuse what they do not know', async (t) => {
  const { refused } = await outcomes;
  REFUSED.forEach(([name, , stderr], i) => {
    const o = refused[i]!;
    t.equal(o.code, 2, `${name}: exit 2`);
    t.match(o.stderr, stderr, `${name}: says why`);
    t.equal(o.stdout, '', `${name}: nothing on stdout`);
  });
});
