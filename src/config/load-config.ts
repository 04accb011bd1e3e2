import { readFileSync } from 'node:fs';
import { ConfigError, resolveConfig, type Config } from './config.ts';

/**
 * Reads and validates a config file. A missing file, unreadable JSON or an invalid setting is a
 * {@link ConfigError} whose lines name the file or key; the file is never rewritten.
 */
export function loadConfigFile(path: string | undefined): Config {
  if (path === undefined) return resolveConfig({});
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError([`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code ?? String(e)}`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`${path} is not valid JSON: ${(e as Error).message}`]);
  }
  return resolveConfig(json);
}
