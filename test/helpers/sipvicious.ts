/**
 * Runs SIPVicious' svwar (extension enumeration) and svcrack (digest password guessing) against
 * a loopback target with a hard time limit, and parses the table they print when they find
 * something:
 *
 *   +-----------+----------------+
 *   | Extension | Authentication |      (svcrack: | Extension | Password |)
 *   +===========+================+
 *   | 101       | reqauth        |
 *   +-----------+----------------+
 *
 * or "found nothing" on stderr. HOME points at a temporary directory: sipvicious saves its
 * sessions under ~/.sipvicious.
 *
 * sipvicious 0.3.3 (Debian/Ubuntu) parses `-b BINDINGIP` but never passes it on: its packets
 * leave from the default address whatever `-b` says. So the tools are started through a tiny
 * Python shim that imports the installed module (next to the real script, with the script's
 * interpreter) and forces the binding address into the scanner's constructor.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { findExecutable, freePort } from './gateway-process.ts';

export interface SipviciousResult {
  exitCode: number | null;
  timedOut: boolean;
  /** Rows of the result table: extension → second column (svwar: "reqauth"/"noauth"/..., svcrack: the password). */
  found: Record<string, string>;
  /** The tool said "found nothing". */
  nothingFound: boolean;
  /** The command line, stdout and stderr, for diagnostics. */
  output: string;
}

export interface Target {
  host: string;
  port: number;
}

interface Common {
  /** Source address to bind (`-b`), also written into Via/Contact (`-x`); default 127.0.0.1. */
  bind?: string;
  /** Hard limit; the process is SIGKILLed past it. Default 60000. */
  timeoutMs?: number;
  /** Seconds to keep sending without any response (`--maximumtime`); default 10. */
  maximumTime?: number;
}

export interface SvwarOptions extends Common {
  /** `-e` range, e.g. "100-199". */
  extensions: string;
  method?: 'REGISTER' | 'INVITE' | 'OPTIONS';
  /**
   * `--force`: scan even when the target challenges a made-up extension (without it svwar
   * gives up at once on a server that answers every user alike). Default true.
   */
  force?: boolean;
}

export interface SvcrackOptions extends Common {
  user: string;
  /** Numeric password range (`-r`, e.g. "1-100"). */
  range?: string;
  /** Password guesses, tried in order (written to a dictionary file, `-d`). */
  dictionary?: string[];
}

/** Parses the `| a | b |` rows after the `+===+` separator. */
export function parseTable(text: string): Record<string, string> {
  const found: Record<string, string> = {};
  let inBody = false;
  for (const line of text.split(/\r?\n/)) {
    if (/^\+=+\+/.test(line)) {
      inBody = true;
      continue;
    }
    if (!inBody) continue;
    const m = /^\|\s*(\S+)\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (m) found[m[1]!] = m[2]!;
    else if (!/^\+-+/.test(line)) inBody = false;
  }
  return found;
}

/** Imports sipvicious.<tool> from LIBDIR and runs its main() with `bindingip` forced to BIND. */
const SHIM = `import importlib, sys
tool, libdir, bind = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, libdir)
mod = importlib.import_module('sipvicious.' + tool)
cls = getattr(mod, 'ASipOfRedWine' if tool == 'svcrack' else 'TakeASip')
original = cls.__init__
def init(self, *args, **kwargs):
    kwargs['bindingip'] = bind
    original(self, *args, **kwargs)
cls.__init__ = init
sys.argv = [tool] + sys.argv[4:]
sys.exit(mod.main())
`;

async function run(tool: 'svwar' | 'svcrack', args: string[], common: Common, files: Record<string, string> = {}): Promise<SipviciousResult> {
  const bin = findExecutable(tool);
  if (!bin) throw new Error(`${tool} is not installed (scripts/ci-deps.sh installs it: apt-get install sipvicious)`);
  const home = mkdtempSync(join(tmpdir(), `hookswitch-${tool}-`));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(home, name), content);
  const bind = common.bind ?? '127.0.0.1';
  const localPort = await freePort(bind);
  const argv = [...args.map((a) => a.replace('$HOME', home)), '-b', bind, '-x', bind, '-P', String(localPort), '--maximumtime', String(common.maximumTime ?? 10)];
  // The script is a symlink into the package directory; its first line names the interpreter.
  const script = realpathSync(bin);
  const python = /^#!\s*(\S+)/.exec(readFileSync(script, 'latin1').split('\n', 1)[0]!)?.[1] ?? 'python3';
  writeFileSync(join(home, 'shim.py'), SHIM);
  const child = spawn(python, [join(home, 'shim.py'), tool, dirname(script), bind, ...argv], {
    cwd: home,
    env: { ...process.env, HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-100_000)));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-100_000)));
  let timedOut = false;
  const timeoutMs = common.timeoutMs ?? 60_000;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  try {
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    });
    return {
      exitCode,
      timedOut,
      found: parseTable(stdout),
      nothingFound: /found nothing/.test(stdout + stderr),
      output: `${tool} ${argv.join(' ')}\n--- stdout ---\n${stdout.slice(-5_000)}\n--- stderr ---\n${stderr.slice(-5_000)}`,
    };
  } finally {
    clearTimeout(timer);
    process.removeListener('exit', killOnExit);
    rmSync(home, { recursive: true, force: true });
  }
}

/** svwar: which extensions in `extensions` does the target reveal? */
export function runSvwar(target: Target, opts: SvwarOptions): Promise<SipviciousResult> {
  const args = [
    ...(opts.force ?? true ? ['--force'] : []),
    '-m', opts.method ?? 'REGISTER',
    '-e', opts.extensions,
    `udp://${target.host}:${target.port}`,
  ];
  return run('svwar', args, opts);
}

/** svcrack: guesses `user`'s digest password from a range and/or a dictionary. */
export function runSvcrack(target: Target, opts: SvcrackOptions): Promise<SipviciousResult> {
  if (!opts.range && !opts.dictionary) throw new Error('runSvcrack needs a range or a dictionary');
  const args = [
    '-u', opts.user,
    ...(opts.range ? ['-r', opts.range] : []),
    ...(opts.dictionary ? ['-d', '$HOME/dictionary.txt'] : []),
    `udp://${target.host}:${target.port}`,
  ];
  return run('svcrack', args, opts, opts.dictionary ? { 'dictionary.txt': `${opts.dictionary.join('\n')}\n` } : {});
}
