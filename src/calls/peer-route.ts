/**
 * Calls between hookswitch boxes on one LAN (the dial plan's `peer` target): which peer a dialled
 * number or name means, the INVITE that reaches it, and who a call from a peer is. Pure: the peer
 * table, the secret and the addresses come in through the options.
 *
 * - `{ "match": "8x.", "to": "peer", "strip": 1 }`: the digits left are an extension that exactly
 *   one hookswitch peer advertises (its TXT `exts` or `dev`).
 * - `{ "match": "*7", "to": "peer", "peer": "kitchen" }`: that peer, its device extension unless
 *   digits remain after `strip`.
 * - `hookswitch call kitchen` or `call @kitchen`: a name, looked up like `hookswitch peers` shows
 *   it (exact name or instance id, the name without `hookswitch on `, or a unique prefix).
 *
 * The INVITE answers the peer's challenge with the credentials of peer-credentials.ts; without
 * `discovery.secret` no peer is ever called. Unknown numbers and names get 404, ambiguous ones 485
 * (RFC 3261 §21.4.23), each with a log line listing the candidates.
 */
import { DigestClient } from '../sip/auth/digest-client.ts';
import type { NameAddr } from '../sip/message/types.ts';
import type { Destination } from '../sip/transaction/types.ts';
import type { Peer, PeerLookup } from '../discovery/peer-table.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import type { ForkSpec, Party } from './call.ts';
import type { Route } from './dialplan.ts';
import { peerInstanceId, peerPassword, peerUsername } from './peer-credentials.ts';

/** The part of the peer table routing reads (src/discovery/peer-table.ts). */
export interface PeerDirectory {
  lookup(query: string): PeerLookup;
  list(): Peer[];
}

/** A refusal: the SIP status and reason phrase the caller gets. */
export type PeerRefusal = { status: number; reason: string };

/** What {@link PeerRoute} needs; the composition root provides it. */
export interface PeerRouteOptions {
  /** The peers seen on the LAN; undefined while discovery is off. */
  peers(): PeerDirectory | undefined;
  /** `discovery.secret`, read at each call; undefined when unset. */
  secret(): string | undefined;
  /** This box's DNS-SD instance id (our peer username); undefined while discovery is off. */
  instanceId(): string | undefined;
  /** Our address (and SIP port) facing a remote address, for Via, Contact and the From host. */
  localEndpoint(transport: 'udp', remoteAddress: string): { address: string; port: number };
  random: Random;
  logger: Logger;
}

/** The calls-to-peers part of the B2BUA (see the file comment). */
export interface PeerCalls {
  /** A route for a dialled peer name (`kitchen`, `@kitchen`); undefined for a dialled number. */
  byName(dialled: string): Route | undefined;
  /** The INVITE to the peer a `peer` route means, or the refusal. */
  forks(route: Route, caller: Party, maxForwards: number, headers: [string, string][]): ForkSpec[] | PeerRefusal;
  /** The caller of an INVITE authenticated as `username`, when that is a peer's username. */
  caller(username: string, from: NameAddr | undefined): Party | undefined;
}

/** The most candidates a log line lists. */
const MAX_LOGGED = 10;

/** A dialled string that is digits (and `*#+`) is a number, anything else a name. */
const DIAL_STRING = /^[0-9*#+]+$/;

/** Routes calls to peers; see the file comment. */
export class PeerRoute implements PeerCalls {
  constructor(private readonly opts: PeerRouteOptions) {}

  byName(dialled: string): Route | undefined {
    if (DIAL_STRING.test(dialled)) return undefined;
    const name = dialled.startsWith('@') ? dialled.slice(1) : dialled;
    if (name.trim() === '') return undefined;
    return { target: { kind: 'peer', peer: name }, number: '', rule: -1 };
  }

  forks(route: Route, caller: Party, maxForwards: number, headers: [string, string][]): ForkSpec[] | PeerRefusal {
    const log = this.opts.logger;
    if (route.target.kind !== 'peer') return { status: 500, reason: 'Server Internal Error (not a peer route)' };
    const secret = this.opts.secret();
    if (secret === undefined) {
      log.warn('peer call refused: discovery.secret is not set; set the same discovery.secret on both boxes', { to: route.target.peer ?? route.number });
      return { status: 403, reason: 'Forbidden (peer calls need discovery.secret)' };
    }
    const directory = this.opts.peers();
    const self = this.opts.instanceId();
    if (!directory || self === undefined) {
      log.warn('peer call refused: discovery is off', { to: route.target.peer ?? route.number });
      return { status: 404, reason: 'Not Found (discovery is off)' };
    }
    const found = route.target.peer !== undefined ? this.byPeerName(directory, route.target.peer, route.number) : this.byExtension(directory, route.number);
    if ('status' in found) return found;
    const { peer, number } = found;
    const address = addressOf(peer);
    if (address === undefined) {
      log.warn('peer call refused: the peer advertised no address', { peer: peer.name });
      return { status: 480, reason: 'Temporarily Unavailable (peer has no address)' };
    }
    const flow: Destination = { transport: 'udp', address, port: peer.port };
    const local = this.opts.localEndpoint('udp', address);
    const host = address.includes(':') ? `[${address}]` : address;
    const username = peerUsername(self);
    const display = caller.display ? `${quoted(caller.display)} ` : '';
    log.info('calling peer', { peer: peer.name, number, address: `${host}:${peer.port}` });
    return [
      {
        flow,
        local,
        invite: {
          requestUri: `sip:${number}@${host}:${peer.port}`,
          from: `${display}<sip:${caller.user}@${local.address.includes(':') ? `[${local.address}]` : local.address}>`,
          to: `<sip:${number}@${host}>`,
          maxForwards,
          headers,
          digest: new DigestClient({ username, password: peerPassword(secret, username), random: this.opts.random }),
          label: `peer ${peer.name}`,
        },
      },
    ];
  }

  caller(username: string, from: NameAddr | undefined): Party | undefined {
    const id = peerInstanceId(username);
    if (id === undefined) return undefined;
    const peer = this.opts.peers()?.list().find((p) => p.instanceId === id);
    const display = peer?.name ?? from?.displayName;
    return { user: from?.uri.user ?? username, ...(display ? { display } : {}) };
  }

  /** The peer a rule's `peer` names, and the number to call there: `digits`, else its device. */
  private byPeerName(directory: PeerDirectory, name: string, digits: string): { peer: Peer; number: string } | PeerRefusal {
    const log = this.opts.logger;
    const found = directory.lookup(name);
    if ('error' in found) {
      const candidates = found.error === 'ambiguous' ? found.candidates : directory.list().map((p) => p.name);
      log.warn(found.error === 'ambiguous' ? 'peer name is ambiguous' : 'no peer by that name', { peer: name, candidates: listed(candidates) });
      return found.error === 'ambiguous' ? { status: 485, reason: 'Ambiguous' } : { status: 404, reason: 'Not Found (no such peer)' };
    }
    const peer = found.peer;
    if (!peer.isHookswitch) {
      log.warn('peer is not a hookswitch box', { peer: peer.name });
      return { status: 404, reason: 'Not Found (not a hookswitch peer)' };
    }
    const number = /^[0-9]+$/.test(digits) ? digits : peer.deviceExtension;
    if (number === undefined) {
      log.warn('peer has no device extension: dial its extension after the prefix', { peer: peer.name, extensions: listed(peer.extensions) });
      return { status: 404, reason: 'Not Found (peer has no device extension)' };
    }
    return { peer, number };
  }

  /** The one hookswitch peer that advertises extension `number`. */
  private byExtension(directory: PeerDirectory, number: string): { peer: Peer; number: string } | PeerRefusal {
    const hookswitches = directory.list().filter((p) => p.isHookswitch);
    const owners = hookswitches.filter((p) => p.deviceExtension === number || p.extensions.includes(number));
    if (owners.length === 1) return { peer: owners[0]!, number };
    const candidates = (owners.length > 1 ? owners : hookswitches).map((p) => `${p.name} (${[...new Set([p.deviceExtension, ...p.extensions].filter(Boolean))].join(',')})`);
    if (owners.length > 1) {
      this.opts.logger.warn('peer extension is ambiguous', { number, candidates: listed(candidates) });
      return { status: 485, reason: 'Ambiguous' };
    }
    this.opts.logger.warn('no peer has that extension', { number, candidates: listed(candidates) });
    return { status: 404, reason: 'Not Found (no peer has that extension)' };
  }
}

/** The address to send to: the contact's host when the peer advertised it, else IPv4 first. */
function addressOf(peer: Peer): string | undefined {
  const contactHost = peer.contact ? /^sips?:[^@]*@\[?([^\]>;]+?)\]?(?::\d+)?(?:[;>].*)?$/.exec(peer.contact)?.[1] : undefined;
  if (contactHost !== undefined && peer.addresses.includes(contactHost)) return contactHost;
  return peer.addresses.find((a) => !a.includes(':')) ?? peer.addresses[0];
}

function quoted(display: string): string {
  return `"${display.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function listed(items: readonly string[]): string {
  const shown = items.slice(0, MAX_LOGGED).join(', ');
  return items.length > MAX_LOGGED ? `${shown}, ... (${items.length} in all)` : shown || '(none)';
}
