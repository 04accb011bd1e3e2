/**
 * The config file on disk without conf: where it is, and reading it with both validators
 * (`resolveConfig`'s one-line problems, then the JSON schema's). `hookswitch run` needs only this;
 * writing goes through `config-store.ts` (conf 15), which the daemon never loads: conf's atomic
 * writer hooks every signal at import and re-raises it, which would make one SIGHUP two reloads.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, resolveConfig, type Config } from './config.ts';
import { schemaProblems, type KeySegment } from './config-schema.ts';

/** The file a packaged install keeps its config in (systemd `ConfigurationDirectory=hookswitch`). */
export const SYSTEM_CONFIG_PATH = '/etc/hookswitch/config.json';

/**
 * Where the config file is, first match wins:
 * 1. `--config FILE` (an explicit choice always wins);
 * 2. `$CONFIGURATION_DIRECTORY/config.json`, set by systemd for `ConfigurationDirectory=` (first
 *    entry when it lists several, colon-separated);
 * 3. {@link SYSTEM_CONFIG_PATH} when it exists (an installed package, used from a shell);
 * 4. `$XDG_CONFIG_HOME/hookswitch/config.json`, else `~/.config/hookswitch/config.json`.
 * The file need not exist: `run` then uses the embedded defaults and `config set` creates it.
 */
export function resolveConfigPath(env: NodeJS.ProcessEnv, flag?: string, exists: (path: string) => boolean = existsSync): string {
  if (flag !== undefined && flag !== '') return resolve(flag);
  const systemd = env.CONFIGURATION_DIRECTORY?.split(':')[0];
  if (systemd) return join(systemd, 'config.json');
  if (exists(SYSTEM_CONFIG_PATH)) return SYSTEM_CONFIG_PATH;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'hookswitch', 'config.json');
}

/**
 * `trunks[0].port` → `['trunks', 0, 'port']`; `extensions.101.password` keeps `101` a name.
 * Throws {@link ConfigError} on a malformed path.
 */
export function parseKeyPath(key: string): KeySegment[] {
  if (!/^[^.[\]]+(\.[^.[\]]+|\[[0-9]+\])*$/.test(key)) {
    throw new ConfigError([`${JSON.stringify(key)} is not a key like sip.port, trunks[0].port or extensions.101.password`]);
  }
  return [...key.matchAll(/[^.[\]]+|\[([0-9]+)\]/g)].map((m) => (m[1] !== undefined ? Number(m[1]) : m[0]));
}

/**
 * Every problem of a parsed config document, one line each without the `config: ` prefix:
 * `resolveConfig`'s lines first, then the schema's about keys those lines do not already name.
 */
export function configProblems(doc: unknown): string[] {
  const problems: string[] = [];
  try {
    resolveConfig(doc);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(...e.problems);
  }
  // The key each line is about: `trunks[0].port must be ...` → `trunks[0].port`.
  const subjects = new Set(problems.map((line) => /^[^ :]+/.exec(line)?.[0]));
  const named = (key: string): boolean => {
    if (key === '') return problems.length > 0;
    // A line about `trunks[0]` covers `trunks[0].port`.
    for (let k = key, up = ''; k !== up; up = k, k = k.replace(/(\.[^.[\]]*|\[[0-9]+\])$/, '')) if (subjects.has(k)) return true;
    return false;
  };
  for (const p of schemaProblems(doc)) if (!named(p.key)) problems.push(p.line);
  return problems;
}

/** A file read from disk: its JSON (undefined when there is no file) and the config it gives. */
export interface StoredConfig {
  path: string;
  doc: Record<string, unknown> | undefined;
  config: Config;
}

/**
 * Reads and validates `path`. A missing file gives the embedded defaults unless `mustExist`;
 * unreadable or invalid JSON and every invalid setting throw {@link ConfigError}.
 */
export function loadStoredConfig(path: string, opts: { mustExist?: boolean } = {}): StoredConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !opts.mustExist) return { path, doc: undefined, config: resolveConfig({}) };
    throw new ConfigError([`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code ?? String(e)}`]);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`${path} is not valid JSON: ${(e as Error).message}`]);
  }
  const problems = configProblems(doc);
  if (problems.length > 0) throw new ConfigError(problems);
  return { path, doc: doc as Record<string, unknown>, config: resolveConfig(doc) };
}

/** The problems of the file at `path` (`config check`); [] when it is valid. */
export function checkConfigFile(path: string): string[] {
  try {
    loadStoredConfig(path, { mustExist: true });
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}
