import type { ExtensionConfig } from '../../config/config.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { DigestServer } from '../auth/digest-server.ts';
import { buildResponse } from '../dialog/request-builder.ts';
import { trimWs } from '../message/headers.ts';
import type { SipRequest, SipResponse } from '../message/message.ts';

/** Looks up the password of a user in a realm; undefined for an unknown user. */
export interface CredentialStore {
  password(username: string): string | undefined;
}

/** The extensions of the config as a credential store. */
export class ExtensionCredentials implements CredentialStore {
  constructor(private readonly extensions: Readonly<Record<string, ExtensionConfig>>) {}
  password(username: string): string | undefined {
    return Object.hasOwn(this.extensions, username) ? this.extensions[username]!.password : undefined;
  }
}

export type AuthOutcome = { ok: true; username: string } | { ok: false; response: SipResponse };

export interface RequestAuthenticatorOptions {
  digest: DigestServer;
  credentials: CredentialStore;
  logger: Logger;
}

/**
 * Digest authentication of requests from the network (RFC 3261 §22). A registrar challenges
 * with 401 and WWW-Authenticate, a proxy or B2BUA with 407 and Proxy-Authenticate (§22.3).
 *
 * Unknown users and wrong passwords get exactly the same challenge, so extensions cannot be
 * enumerated; an expired nonce with an otherwise correct answer gets `stale=true` (RFC 7616).
 */
export class RequestAuthenticator {
  constructor(private readonly opts: RequestAuthenticatorOptions) {}

  check(req: SipRequest, role: 'registrar' | 'proxy'): AuthOutcome {
    const header = role === 'registrar' ? 'authorization' : 'proxy-authorization';
    const values = req.headers.getAll(header);
    let stale = false;
    for (const authorization of values) {
      const result = this.opts.digest.verify({
        method: req.method,
        authorization,
        lookup: (username) => {
          const password = this.opts.credentials.password(username);
          return password === undefined ? undefined : { password };
        },
      });
      if (result.ok) {
        if (!uriMatches(result.uri, req.uri)) {
          this.opts.logger.warn('digest uri does not match the Request-URI', { user: result.username, method: req.method });
          break;
        }
        return { ok: true, username: result.username };
      }
      if (result.stale) stale = true;
      if (result.reason !== 'realm-mismatch') {
        this.opts.logger.warn('authentication failed', {
          method: req.method,
          reason: result.reason,
          callId: req.headers.get('call-id'),
        });
      }
    }
    return { ok: false, response: this.challenge(req, role, stale) };
  }

  private challenge(req: SipRequest, role: 'registrar' | 'proxy', stale: boolean): SipResponse {
    const name = role === 'registrar' ? 'WWW-Authenticate' : 'Proxy-Authenticate';
    const challenges = this.opts.digest.challenge({ stale });
    return buildResponse(req, role === 'registrar' ? 401 : 407, undefined, {
      headers: challenges.map((c) => [name, c] as const),
    });
  }
}

/**
 * RFC 3261 §22.4: the digest `uri` is the Request-URI. Clients differ in the case of the scheme
 * and host, so compare case-insensitively.
 */
function uriMatches(digestUri: string, requestUri: string): boolean {
  return trimWs(digestUri).toLowerCase() === trimWs(requestUri).toLowerCase();
}
