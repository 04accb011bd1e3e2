/**
 * Request authentication that also admits hookswitch peers (see peer-credentials.ts): an INVITE
 * whose Proxy-Authorization carries a `peer-<instance id>` username verifies against the
 * password derived from `discovery.secret`. Where a plain challenge would leave the calling box
 * retrying in vain, a peer gets a final 403 and this box logs why:
 *
 * - no `discovery.secret` here: 403, "set the same discovery.secret on both boxes";
 * - a wrong answer (the boxes' secrets differ): 403, counted as a failed attempt by the source
 *   guard like any wrong password;
 * - peer credentials on a REGISTER: 403 (peers call; they never register).
 *
 * A stale nonce is re-challenged as usual (RFC 7616 §3.3), and requests without peer credentials
 * are handled exactly as by {@link RequestAuthenticator}.
 */
import { parseAuthValue } from '../sip/auth/auth-header.ts';
import { buildResponse } from '../sip/dialog/request-builder.ts';
import type { SipRequest } from '../sip/message/message.ts';
import { RequestAuthenticator, type AuthOutcome, type RequestAuthenticatorOptions } from '../sip/ua/request-authenticator.ts';
import { isPeerUsername, PeerCredentials } from './peer-credentials.ts';

/** {@link RequestAuthenticatorOptions} plus the current `discovery.secret`. */
export interface PeerAuthenticatorOptions extends RequestAuthenticatorOptions {
  /** The shared LAN secret, read at each request (so a reload applies); undefined when unset. */
  secret(): string | undefined;
}

/** Hint logged with every refusal of a peer. */
const HINT = 'set the same discovery.secret on both boxes';

/** A {@link RequestAuthenticator} that admits peers holding the shared secret; see the file comment. */
export class PeerAuthenticator extends RequestAuthenticator {
  constructor(private readonly peerOpts: PeerAuthenticatorOptions) {
    super({ ...peerOpts, credentials: new PeerCredentials(peerOpts.credentials, () => peerOpts.secret()) });
  }

  override check(req: SipRequest, role: 'registrar' | 'proxy'): AuthOutcome {
    const peer = peerUsernameOf(req, role);
    if (peer === undefined) return super.check(req, role);
    const log = this.peerOpts.logger;
    const fields = { peer, method: req.method, callId: req.headers.get('call-id') };
    if (role !== 'proxy') {
      log.warn('peer credentials refused: peers may only call', fields);
      return { ok: false, response: buildResponse(req, 403, 'Forbidden (peers may only call)'), failed: true };
    }
    if (this.peerOpts.secret() === undefined) {
      log.warn(`peer call refused: discovery.secret is not set on this box; ${HINT}`, fields);
      return { ok: false, response: buildResponse(req, 403, 'Forbidden (peer calls need discovery.secret)'), failed: false };
    }
    const outcome = super.check(req, role);
    if (outcome.ok || !outcome.failed) return outcome;
    log.warn(`peer call refused: its credentials do not match discovery.secret; ${HINT}`, fields);
    return { ok: false, response: buildResponse(req, 403, 'Forbidden (peer secret mismatch)'), failed: true };
  }
}

/** The peer username of the request's credentials for `role`, if any value carries one. */
function peerUsernameOf(req: SipRequest, role: 'registrar' | 'proxy'): string | undefined {
  for (const value of req.headers.getAll(role === 'registrar' ? 'authorization' : 'proxy-authorization')) {
    let username: string | undefined;
    try {
      username = parseAuthValue(value).params.get('username');
    } catch {
      continue;
    }
    if (username !== undefined && isPeerUsername(username)) return username;
  }
  return undefined;
}
