/**
 * `hookswitch doctor [--config FILE] [--json] [--socket PATH] [--state-dir DIR]`: runs every
 * check (src/ops/doctor.ts) and prints one line per check with its fix below it, or the checks as
 * JSON. Exit 0 when nothing failed, 1 when a check failed, 2 for bad usage.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, resolveConfig, type Config } from '../config/config.ts';
import { loadStoredConfig, resolveConfigPath } from '../config/config-file.ts';
import { doctorChecks, type Check } from '../ops/doctor.ts';
import { runProbes } from '../ops/doctor-probes.ts';

/** The service's config (systemd `ConfigurationDirectory=hookswitch`), read when no --config is given. */
/** The service's control socket (systemd `RuntimeDirectory=hookswitch`). */
const SERVICE_SOCKET = '/run/hookswitch/control.sock';

const USAGE = `Usage: hookswitch doctor [--config FILE] [--json] [--socket PATH] [--state-dir DIR]
  Checks the SIP ports, network, clock, Wi-Fi power saving, mDNS, sound card, board wiring and
  the daemon, each OK, WARN or FAIL with the fix. Exit 0 when no check fails, 1 otherwise.
  --config FILE     the configuration to check (default: the one run uses: /etc/hookswitch/config.json,
                    else ~/.config/hookswitch/config.json, else the embedded defaults)
  --json            print {"ok": ..., "checks": [{name, level, detail, fix?}]}
  --socket PATH     the daemon's control socket (default: STATE_DIR/control.sock, then ${SERVICE_SOCKET})
  --state-dir DIR   the daemon's state directory
`;

const LABEL: Record<Check['level'], string> = { ok: 'OK', warn: 'WARN', fail: 'FAIL' };
const INDENT = '     ';

/** The text report: `OK   name  detail`, continuation and fix lines indented under it, a summary last. */
export function formatChecks(checks: readonly Check[]): string {
  const out: string[] = [];
  for (const c of checks) {
    const [first, ...more] = c.detail.split('\n');
    out.push(`${LABEL[c.level].padEnd(5)}${c.name}  ${first}`);
    for (const l of more) out.push(`${INDENT}${l}`);
    if (c.fix) {
      const [f, ...rest] = c.fix.split('\n');
      out.push(`${INDENT}fix: ${f}`);
      for (const l of rest) out.push(`${INDENT}  ${l}`);
    }
  }
  const count = (l: Check['level']) => checks.filter((c) => c.level === l).length;
  out.push(`${count('ok')} OK, ${count('warn')} WARN, ${count('fail')} FAIL`);
  return `${out.join('\n')}\n`;
}

/** The config `run` would use: `--config`, else the service's, else the user's, else the defaults. */
function loadConfig(path: string | undefined): { config: Config; source: string; problems: string[] } {
  const file = resolveConfigPath(process.env, path);
  const source = existsSync(file) ? file : 'embedded defaults';
  try {
    return { config: loadStoredConfig(file, { mustExist: path !== undefined }).config, source, problems: [] };
  } catch (e) {
    if (e instanceof ConfigError) return { config: resolveConfig({}), source, problems: e.problems };
    throw e;
  }
}

/** Runs `hookswitch doctor` with the arguments after `doctor`; resolves with the exit code. */
export async function doctorCommand(argv: string[]): Promise<number> {
  let values: { config?: string; json?: boolean; socket?: string; 'state-dir'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, json: { type: 'boolean' }, socket: { type: 'string' }, 'state-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    process.stderr.write(`hookswitch: ${(e as Error).message} (see hookswitch doctor --help)\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { config, source, problems } = loadConfig(values.config);
  const stateDir = values['state-dir'] ?? (config.stateDir || process.env.STATE_DIRECTORY?.split(':')[0] || join(homedir(), '.local', 'state', 'hookswitch'));
  const sockets = values.socket ? [values.socket] : [join(stateDir, 'control.sock'), SERVICE_SOCKET];
  const checks = doctorChecks(await runProbes({ config, configSource: source, configProblems: problems, sockets }));
  const failed = checks.some((c) => c.level === 'fail');
  process.stdout.write(values.json ? `${JSON.stringify({ ok: !failed, checks }, null, 2)}\n` : formatChecks(checks));
  return failed ? 1 : 0;
}
