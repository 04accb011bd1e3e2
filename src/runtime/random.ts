import { randomBytes } from 'node:crypto';

/**
 * Randomness, injected: branch parameters, tags, Call-IDs, nonces' salts, SSRCs and initial
 * sequence numbers all come from a Random so that tests can fix them.
 */
export interface Random {
  /** `n` random bytes. */
  bytes(n: number): Buffer;
}

/** Cryptographically strong randomness from `node:crypto`. */
export class SystemRandom implements Random {
  bytes(n: number): Buffer {
    return randomBytes(n);
  }
}

/** Deterministic randomness for tests: a xorshift32 stream from a seed. */
export class SeededRandom implements Random {
  private state: number;
  constructor(seed = 0x2545f491) {
    this.state = seed >>> 0 || 1;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      let x = this.state;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.state = x >>> 0;
      out[i] = this.state & 0xff;
    }
    return out;
  }
}

const TOKEN_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A random token of `length` characters from [a-z0-9] (tags, Call-ID local parts). */
export function randomToken(random: Random, length = 16): string {
  const bytes = random.bytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += TOKEN_ALPHABET[bytes[i]! % TOKEN_ALPHABET.length];
  return out;
}
