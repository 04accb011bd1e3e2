/**
 * Changing the config file: one key at a time through conf 15, which writes atomically (a
 * temporary file in the same directory, fsync, rename) and validates against
 * {@link CONFIG_SCHEMA} once more before writing. Reading is `config-file.ts`.
 *
 * A file is only ever written by {@link ConfigStore.set} and {@link ConfigStore.unset}, and only
 * when both the current file and the result are valid: a hand-edited file with a mistake is never
 * rewritten, and reading (`get`, `check`, `hookswitch run`) never creates a file.
 */
import { statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import Conf from 'conf';
import { ConfigError, resolveConfig, type Config } from './config.ts';
import { AJV_OPTIONS, CONFIG_SCHEMA, formatKeyPath, maskSecrets, schemaAt, type KeySegment } from './config-schema.ts';
import { configProblems, loadStoredConfig, parseKeyPath } from './config-file.ts';

/** Mode of a newly created config file: it holds passwords. */
const NEW_FILE_MODE = 0o600;

export { checkConfigFile, configProblems, loadStoredConfig, parseKeyPath, resolveConfigPath, SYSTEM_CONFIG_PATH, type StoredConfig } from './config-file.ts';

/** A value read with {@link ConfigStore.get}. */
export interface ConfigValue {
  /** The value, with secrets as `***` unless asked for; undefined when neither set nor defaulted. */
  value: unknown;
  /** `file`: set in the file (or derived from it); `default`: the embedded default. */
  source: 'file' | 'default';
}

/** Reads and changes one config file; every method reads the file afresh. */
export class ConfigStore {
  constructor(readonly path: string) {}

  /**
   * The effective value of `key` (the resolved config, defaults included), or the whole config
   * for `''`. Throws {@link ConfigError} for an unknown key or an invalid file.
   */
  get(key: string, opts: { showSecrets?: boolean } = {}): ConfigValue {
    const segments = key === '' ? [] : parseKeyPath(key);
    const schema = knownSetting(key, segments);
    const { doc, config } = loadStoredConfig(this.path);
    let value = valueAt(config, segments);
    const source = doc !== undefined && valueAt(doc, segments) !== undefined ? 'file' : 'default';
    if (value === undefined) value = schema.default;
    return { value: opts.showSecrets ? value : maskSecrets(value, schema), source };
  }

  /**
   * Sets `key` to `raw` (JSON when it parses, else the text; a bare word or number for a string
   * setting stays text, so `device.extension 101` is "101"), validates the whole result and writes
   * it atomically, keeping the file's mode (0600 for a new file). Throws {@link ConfigError} with
   * every problem when the current file or the result is invalid; the file is then untouched.
   */
  set(key: string, raw: string): Config {
    const segments = parseKeyPath(key);
    const schema = knownSetting(key, segments);
    const current = loadStoredConfig(this.path);
    const doc = structuredClone(current.doc ?? {});
    setValueAt(doc, segments, parseValue(raw, schema), current.config);
    const problems = configProblems(doc);
    if (problems.length > 0) throw new ConfigError(problems);
    this.write(doc, current.doc !== undefined);
    return resolveConfig(doc);
  }

  /**
   * Removes `key` from the file (a list entry is taken out, the ones after it move up), so the
   * default applies again; validated and written like {@link ConfigStore.set}. Returns false,
   * writing nothing, when the file does not set `key`.
   */
  unset(key: string): boolean {
    const segments = parseKeyPath(key);
    knownSetting(key, segments);
    const current = loadStoredConfig(this.path);
    const doc = structuredClone(current.doc ?? {});
    const parent = valueAt(doc, segments.slice(0, -1));
    const last = segments[segments.length - 1]!;
    if (typeof parent !== 'object' || parent === null || !Object.hasOwn(parent, last)) return false;
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete (parent as Record<string, unknown>)[last];
    const problems = configProblems(doc);
    if (problems.length > 0) throw new ConfigError(problems);
    this.write(doc, true);
    return true;
  }

  private write(doc: Record<string, unknown>, exists: boolean): void {
    const { properties, ...rootSchema } = CONFIG_SCHEMA;
    const store = new Conf<Record<string, unknown>>({
      cwd: dirname(this.path),
      configName: basename(this.path),
      fileExtension: '',
      schema: properties as never,
      rootSchema: rootSchema as never,
      ajvOptions: AJV_OPTIONS,
      configFileMode: exists ? statSync(this.path).mode & 0o7777 : NEW_FILE_MODE,
      accessPropertiesByDotNotation: false,
      serialize: (value) => `${JSON.stringify(value, null, 2)}\n`,
    });
    store.store = doc;
  }
}

function knownSetting(key: string, segments: readonly KeySegment[]) {
  const schema = schemaAt(segments);
  if (schema === undefined) throw new ConfigError([`${key} is not a known setting`]);
  return schema;
}

function valueAt(root: unknown, segments: readonly KeySegment[]): unknown {
  let node = root;
  for (const seg of segments) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, seg)) return undefined;
    node = (node as Record<KeySegment, unknown>)[seg];
  }
  return node;
}

function parseValue(raw: string, schema: { type?: string }): unknown {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return raw;
  }
  return schema.type === 'string' && typeof value !== 'string' && typeof value !== 'object' ? raw : value;
}

/**
 * Sets a value deep in `doc`, creating objects on the way; a list the file lacks starts as the
 * effective one (`media.rtpPorts[1]` changes the default range's last port).
 */
function setValueAt(doc: Record<string, unknown>, segments: readonly KeySegment[], value: unknown, effective: Config): void {
  let node: Record<KeySegment, unknown> | unknown[] = doc;
  segments.forEach((name, i) => {
    const seg = Array.isArray(node) && typeof name === 'string' && /^[0-9]+$/.test(name) ? Number(name) : name;
    const key = formatKeyPath(segments.slice(0, i + 1));
    const container = node as Record<KeySegment, unknown>;
    if (Array.isArray(node) && (typeof seg !== 'number' || seg > node.length)) {
      throw new ConfigError([`${key}: the list has ${node.length} ${node.length === 1 ? 'entry' : 'entries'} (use [${node.length}] to add one)`]);
    }
    if (!Array.isArray(node) && typeof seg === 'number') throw new ConfigError([`${key}: ${formatKeyPath(segments.slice(0, i))} is not a list`]);
    if (i === segments.length - 1) {
      container[seg] = value;
      return;
    }
    const next = container[seg];
    if (typeof next !== 'object' || next === null) {
      const seed = valueAt(effective, segments.slice(0, i + 1));
      container[seg] = typeof segments[i + 1] !== 'number' ? {} : Array.isArray(seed) ? structuredClone(seed) : [];
    }
    node = container[seg] as Record<KeySegment, unknown>;
  });
}
