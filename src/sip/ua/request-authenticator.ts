import type { ExtensionConfig } from '../../config/config.ts';
import type { Logger } from '../../runtime/logger.ts';
import { parseAuthValue } from '../auth/auth-header.ts';
import type { DigestServer, VerifyFailure } from '../auth/digest-server.ts';
import { buildResponse } from '../dialog/request-builder.ts';
import { byteString, trimWs } from '../message/headers.ts';
import type { SipRequest, SipResponse } from '../message/message.ts';

/** Looks up the password of a user in a realm; undefined for an unknown user. */
export interface CredentialStore {
  password(username: string): string | undefined;
}

/** The extensions of the config as a credential store. */
export class ExtensionCredentials implements CredentialStore {
  constructor(private extensions: Readonly<Record<string, ExtensionConfig>>) {}
  /** Replaces the extensions (config reload): requests from now on are checked against these. */
  set(extensions: Readonly<Record<string, ExtensionConfig>>): void {
    this.extensions = extensions;
  }
  password(username: string): string | undefined {
    return Object.hasOwn(this.extensions, username) ? this.extensions[username]!.password : undefined;
  }
}

/**
 * Result of {@link RequestAuthenticator.check}. On refusal, `response` is the challenge to send
 * and `failed` tells a source guard whether to count it: true when the request carried
 * credentials for our realm that did not verify (wrong password, unknown user, digest uri not
 * the Request-URI, replayed nonce-count, forged nonce), false for a first challenge (no
 * credentials, or only credentials for another realm) and for a stale nonce.
 */
export type AuthOutcome = { ok: true; username: string } | { ok: false; response: SipResponse; failed: boolean };

/** Verification failures that prove nothing against the sender: no answer yet, or an expired nonce. */
const NOT_COUNTED: ReadonlySet<VerifyFailure> = new Set(['missing', 'stale', 'realm-mismatch']);

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
    let failed = false;
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
          failed = true;
          break;
        }
        return { ok: true, username: result.username };
      }
      if (result.stale) stale = true;
      if (this.counts(result.reason, authorization)) failed = true;
      if (result.reason !== 'realm-mismatch') {
        this.opts.logger.warn('authentication failed', {
          method: req.method,
          reason: result.reason,
          callId: req.headers.get('call-id'),
        });
      }
    }
    return { ok: false, response: this.challenge(req, role, stale), failed };
  }

  /**
   * Whether a failure is a failed attempt. A replay is counted although it is re-challenged
   * with stale=true (RFC 7616 §3.4): a client that answers correctly never reuses a count.
   * Malformed answers and unoffered algorithms are counted only when they name our realm.
   */
  private counts(reason: VerifyFailure, authorization: string | undefined): boolean {
    if (NOT_COUNTED.has(reason)) return false;
    if (reason !== 'malformed' && reason !== 'algorithm') return true;
    try {
      return parseAuthValue(authorization ?? '').params.get('realm') === byteString(this.opts.digest.realm);
    } catch {
      return false;
    }
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
