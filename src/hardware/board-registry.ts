/**
 * The board profiles shipped in `board/` (`board/<name>.json`, each with `board/<name>/README.md`),
 * listed and loaded by name, or a user's own profile by file path. Used by the composition root
 * (config key `board`) and `hookswitch board list`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BoardProfileError, parseBoardProfile, type BoardProfile } from './board-profile.ts';

/** One line of `hookswitch board list`. */
export interface BoardSummary {
  name: string;
  description: string;
  mode: BoardProfile['mode'];
  connection: BoardProfile['connection'];
  ringer: BoardProfile['ringer']['mode'];
  /** The profile's file. */
  file: string;
}

/**
 * Where the shipped profiles are: `board/` at the repository root, reached from this module in
 * the source tree (`src/hardware/`) and from the bundle (`dist/hookswitch.mjs`). Undefined when
 * neither exists (a bundle copied without its `board/` folder).
 */
export function defaultBoardDir(): string | undefined {
  for (const rel of ['../../board/', '../board/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'README.md'))) return dir;
  }
  return undefined;
}

/** Lists and loads board profiles from one folder. */
export class BoardRegistry {
  /** @param dir the folder holding `<name>.json` profiles (default {@link defaultBoardDir}). */
  constructor(readonly dir: string | undefined = defaultBoardDir()) {}

  /** The names of the profiles in the folder, sorted. */
  names(): string[] {
    if (!this.dir) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort();
  }

  /** Every profile, loaded and validated (throws {@link BoardProfileError} at the first bad one). */
  list(): BoardSummary[] {
    return this.names().map((name) => {
      const p = this.load(name);
      return { name: p.name, description: p.description, mode: p.mode, connection: p.connection, ringer: p.ringer.mode, file: this.fileOf(name) };
    });
  }

  /**
   * Loads a profile by name (`pi-intercom`) or by file path (anything with a `/` or ending in
   * `.json`, relative to the working directory). Throws {@link BoardProfileError}, one line, when
   * the name is unknown (listing the known ones), the file is unreadable or not JSON, the profile is
   * invalid, or a shipped profile's `name` differs from its file name.
   */
  load(nameOrPath: string): BoardProfile {
    const byPath = nameOrPath.includes('/') || nameOrPath.endsWith('.json');
    let file: string;
    if (byPath) {
      file = isAbsolute(nameOrPath) ? nameOrPath : resolve(nameOrPath);
    } else {
      const names = this.names();
      if (!names.includes(nameOrPath)) {
        const known = names.length ? `known boards: ${names.join(', ')}` : 'no board profiles found (is the board/ folder beside hookswitch?)';
        throw new BoardProfileError(nameOrPath, '', `is not a known board; ${known}`);
      }
      file = this.fileOf(nameOrPath);
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new BoardProfileError(nameOrPath, '', `cannot be read from ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new BoardProfileError(nameOrPath, '', `is not valid JSON (${file}): ${(err as Error).message}`);
    }
    const profile = parseBoardProfile(doc, nameOrPath);
    if (!byPath && profile.name !== nameOrPath) throw new BoardProfileError(nameOrPath, 'name', `must match the file name (got ${JSON.stringify(profile.name)})`);
    return profile;
  }

  /** The README with the wiring table of a shipped profile. */
  readmeOf(name: string): string {
    return join(this.requireDir(), name, 'README.md');
  }

  private fileOf(name: string): string {
    return join(this.requireDir(), `${name}.json`);
  }

  private requireDir(): string {
    if (!this.dir) throw new BoardProfileError('registry', '', 'no board/ folder found beside hookswitch');
    return this.dir;
  }
}
