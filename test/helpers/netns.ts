/**
 * Two network namespaces joined by a veth pair, for tests whose traffic must not be loopback
 * (mDNS never advertises loopback addresses): `a` and `b` each get one end with an address in a
 * private /24, multicast on, and a multicast route (mDNS, RFC 6762 §3: 224.0.0.251), no default
 * route. Names carry a random id, so parallel runs do not clash; `remove()` is idempotent and
 * safe when creation failed halfway.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Runs `ip` with an argument array; throws with its stderr on failure. */
export const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export interface NamespacePair {
  a: { ns: string; dev: string; address: string };
  b: { ns: string; dev: string; address: string };
  /** Deletes both namespaces (and with them the veth pair). */
  remove(): void;
}

/**
 * Creates the pair. `tag` names the test in the namespace names (`hsw-<tag>-<id>-a`); `subnet` is
 * the first three octets, e.g. `10.213.0` (hosts .1 and .2).
 */
export function createNamespacePair(tag: string, subnet: string): NamespacePair {
  const id = randomBytes(3).toString('hex');
  const a = { ns: `hsw-${tag}-${id}-a`, dev: `hs${tag.slice(0, 2)}a${id}`, address: `${subnet}.1` };
  const b = { ns: `hsw-${tag}-${id}-b`, dev: `hs${tag.slice(0, 2)}b${id}`, address: `${subnet}.2` };
  const remove = (): void => {
    for (const ns of [a.ns, b.ns]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // never created, or deleted already
      }
    }
  };
  try {
    ip('netns', 'add', a.ns);
    ip('netns', 'add', b.ns);
    ip('link', 'add', a.dev, 'type', 'veth', 'peer', 'name', b.dev);
    for (const end of [a, b]) {
      ip('link', 'set', end.dev, 'netns', end.ns);
      ip('-n', end.ns, 'addr', 'add', `${end.address}/24`, 'dev', end.dev);
      ip('-n', end.ns, 'link', 'set', end.dev, 'multicast', 'on', 'up');
      ip('-n', end.ns, 'link', 'set', 'lo', 'up');
      ip('-n', end.ns, 'route', 'add', '224.0.0.0/4', 'dev', end.dev);
    }
  } catch (e) {
    remove();
    throw e;
  }
  return { a, b, remove };
}
