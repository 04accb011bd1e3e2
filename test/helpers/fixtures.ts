import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** A torture message's bytes, e.g. `fixture('rfc4475', 'wsinv')`. */
export function fixture(corpus: 'rfc4475' | 'rfc5118', name: string): Buffer {
  return readFileSync(join(FIXTURES, corpus, `${name}.sip`));
}

/** Names (without `.sip`) of every fixture in a corpus. */
export function fixtureNames(corpus: 'rfc4475' | 'rfc5118'): string[] {
  return readdirSync(join(FIXTURES, corpus))
    .filter((f) => f.endsWith('.sip'))
    .map((f) => f.slice(0, -4))
    .sort();
}
