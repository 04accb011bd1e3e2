/**
 * The credentials hookswitch boxes on one LAN call each other with (the `peer` dial target),
 * derived from the shared `discovery.secret`:
 *
 * - username `peer-<instance id>`: the caller's DNS-SD `instance_id`, so the called box can name
 *   the caller from its peer table;
 * - password `base64url(HMAC-SHA256(key = secret, "hookswitch-peer:" + username))`.
 *
 * The secret itself is never a digest password and never leaves the box: a captured digest
 * answer can only be attacked by guessing the whole secret, and each username has its own
 * password. Anyone who holds the secret can derive every peer's password: the secret is what
 * admits a box to the group, as the issue asks ("a shared LAN secret"). Neither the secret nor a
 * derived password is ever logged.
 */
import { createHmac } from 'node:crypto';
import type { CredentialStore } from '../sip/ua/request-authenticator.ts';

/** What every peer username starts with; extension numbers are digits, so the two never collide. */
export const PEER_USER_PREFIX = 'peer-';

/** The HMAC message prefix (domain separation: the secret keys nothing else this way). */
const LABEL = 'hookswitch-peer:';

/** The longest peer username accepted (an instance id is at most 64 characters in our TXT parser). */
const MAX_PEER_USERNAME = PEER_USER_PREFIX.length + 64;

/** The username a box with DNS-SD instance id `instanceId` calls its peers with. */
export function peerUsername(instanceId: string): string {
  return `${PEER_USER_PREFIX}${instanceId}`;
}

/** Whether `username` is a peer's (`peer-` and a non-empty id of letters, digits and `-`). */
export function isPeerUsername(username: string): boolean {
  return username.length > PEER_USER_PREFIX.length && username.length <= MAX_PEER_USERNAME && /^peer-[0-9A-Za-z-]+$/.test(username);
}

/** The instance id in a peer username, or undefined when it is not one. */
export function peerInstanceId(username: string): string | undefined {
  return isPeerUsername(username) ? username.slice(PEER_USER_PREFIX.length) : undefined;
}

/** The digest password of peer `username` under `secret` (see the file comment). */
export function peerPassword(secret: string, username: string): string {
  return createHmac('sha256', secret).update(LABEL + username, 'utf8').digest('base64url');
}

/**
 * A credential store that knows the extensions (`inner`) and, while `secret()` returns one, every
 * peer username. Without a secret peer usernames are unknown users.
 */
export class PeerCredentials implements CredentialStore {
  constructor(
    private readonly inner: CredentialStore,
    private readonly secret: () => string | undefined,
  ) {}

  password(username: string): string | undefined {
    if (!isPeerUsername(username)) return this.inner.password(username);
    const secret = this.secret();
    return secret === undefined ? undefined : peerPassword(secret, username);
  }
}
