import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExtensionConfig } from '../config/config.ts';
import { ConfigError } from '../config/config.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';

/** The extensions a box gets when its config defines none: the device and three phones. */
export const DEFAULT_EXTENSION_NUMBERS = ['100', '101', '102', '103'] as const;

const PASSWORD_ALPHABET = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const PASSWORD_LENGTH = 20;

/** A random password without look-alike characters (about 117 bits for 20 characters). */
export function randomPassword(random: Random, length = PASSWORD_LENGTH): string {
  let out = '';
  while (out.length < length) {
    for (const b of random.bytes(length)) {
      // Rejection sampling keeps every character equally likely.
      if (b < 256 - (256 % PASSWORD_ALPHABET.length) && out.length < length) out += PASSWORD_ALPHABET[b % PASSWORD_ALPHABET.length];
    }
  }
  return out;
}

/**
 * The extensions to use when the config defines none. The first start generates them with
 * random passwords and stores them in `<stateDir>/extensions.json` (mode 0600, written
 * atomically); later starts read that file. There is never a fixed default password.
 * A file that cannot be read is a {@link ConfigError}: it is never overwritten.
 */
export function defaultExtensions(stateDir: string, random: Random, log: Logger): Record<string, ExtensionConfig> {
  const file = join(stateDir, 'extensions.json');
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError([`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`]);
    }
  }
  if (text !== undefined) return parseStored(file, text);

  const extensions: Record<string, ExtensionConfig> = {};
  for (const number of DEFAULT_EXTENSION_NUMBERS) {
    extensions[number] = { password: randomPassword(random), name: number === '100' ? 'This device' : `Phone ${number}` };
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(extensions, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  log.info('created default extensions with random passwords', {
    extensions: DEFAULT_EXTENSION_NUMBERS.join(','),
    passwords: file,
    hint: `read them with: cat ${file}`,
  });
  return extensions;
}

function parseStored(file: string, text: string): Record<string, ExtensionConfig> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`${file} is not valid JSON (${(e as Error).message}); fix it or remove it to generate new passwords`]);
  }
  const out: Record<string, ExtensionConfig> = {};
  const valid =
    typeof json === 'object' &&
    json !== null &&
    Object.entries(json).every(([number, v]) => {
      if (!/^\d{1,15}$/.test(number) || typeof v !== 'object' || v === null) return false;
      const { password, name } = v as Record<string, unknown>;
      if (typeof password !== 'string' || password.length < 8) return false;
      out[number] = { password, ...(typeof name === 'string' ? { name } : {}) };
      return true;
    });
  if (!valid || Object.keys(out).length === 0) {
    throw new ConfigError([`${file} must map extension numbers to { "password": ... }; fix it or remove it`]);
  }
  return out;
}
