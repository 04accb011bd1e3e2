/**
 * Which of this box's addresses a peer reaches it on: the address written into Via, Contact
 * and SDP `c=` lines. With a specific bind address that is the answer; with a wildcard bind
 * (`0.0.0.0`, `::`) it is the address of the interface whose subnet holds the peer, loopback
 * for loopback peers, else the first external address of the peer's family.
 *
 * Synchronous on purpose (the call layer asks per leg): the interface table is read through an
 * injected function and cached for {@link INTERFACE_CACHE_MS}.
 */
import { isIP } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { Clock } from '../runtime/clock.ts';

/** One interface address, as `os.networkInterfaces()` reports it. */
export type InterfaceAddress = Pick<NetworkInterfaceInfo, 'address' | 'family' | 'internal' | 'cidr'>;

export type InterfaceSource = () => InterfaceAddress[];

/** How long the interface table is trusted before it is read again. */
export const INTERFACE_CACHE_MS = 10_000;

export function systemInterfaces(): InterfaceAddress[] {
  return Object.values(networkInterfaces()).flatMap((list) => list ?? []);
}

export class LocalAddresses {
  private cached: InterfaceAddress[] = [];
  private readAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly bind: string,
    private readonly clock: Clock,
    private readonly source: InterfaceSource = systemInterfaces,
  ) {}

  /** The local address a peer at `remote` (an IP address) should use to reach us. */
  facing(remote: string): string {
    if (this.bind !== '0.0.0.0' && this.bind !== '::') return this.bind;
    const family = isIP(remote) === 6 && !remote.toLowerCase().startsWith('::ffff:') ? 6 : 4;
    if (isLoopback(remote)) return family === 6 ? '::1' : '127.0.0.1';
    const list = this.interfaces().filter((i) => (family === 6 ? i.family === 'IPv6' : i.family === 'IPv4'));
    const onLink = list.find((i) => i.cidr !== null && inSubnet(remote, i.cidr));
    if (onLink) return onLink.address;
    const external = list.find((i) => !i.internal && !(family === 6 && i.address.toLowerCase().startsWith('fe80:')));
    if (external) return external.address;
    return family === 6 ? '::1' : '127.0.0.1';
  }

  /** The current external addresses, sorted; a change means the box moved networks. */
  fingerprint(): string {
    this.readAt = Number.NEGATIVE_INFINITY;
    return this.interfaces()
      .filter((i) => !i.internal)
      .map((i) => i.address)
      .sort()
      .join(',');
  }

  private interfaces(): InterfaceAddress[] {
    const now = this.clock.now();
    if (now - this.readAt >= INTERFACE_CACHE_MS) {
      this.cached = this.source();
      this.readAt = now;
    }
    return this.cached;
  }
}

function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^::ffff:/, '');
  return a === '::1' || /^127\./.test(a);
}

/** Whether `address` lies in `cidr` (same family only; IPv4-mapped IPv6 counts as IPv4). */
export function inSubnet(address: string, cidr: string): boolean {
  const slash = cidr.lastIndexOf('/');
  const net = cidr.slice(0, slash);
  const bits = Number(cidr.slice(slash + 1));
  const a = toBytes(address.replace(/^::ffff:(?=\d+\.)/i, ''));
  const n = toBytes(net);
  if (!a || !n || a.length !== n.length || !Number.isInteger(bits)) return false;
  for (let i = 0; i < a.length; i++) {
    const left = Math.max(0, Math.min(8, bits - i * 8));
    if (left === 0) break;
    const mask = (0xff << (8 - left)) & 0xff;
    if ((a[i]! & mask) !== (n[i]! & mask)) return false;
  }
  return true;
}

function toBytes(address: string): number[] | undefined {
  const family = isIP(address);
  if (family === 4) return address.split('.').map(Number);
  if (family !== 6) return undefined;
  let text = address.toLowerCase().split('%')[0]!;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const words = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return words.flatMap((w) => {
    const n = parseInt(w || '0', 16);
    return [n >> 8, n & 0xff];
  });
}
