import type { Logger } from '../../runtime/logger.ts';
import { buildResponse } from '../dialog/request-builder.ts';
import { tagOf } from '../message/header-values.ts';
import { parseTokenList } from '../message/header-values.ts';
import { parseNameAddr } from '../message/header-values.ts';
import type { SipRequest, SipResponse } from '../message/message.ts';
import { parseContentType } from '../message/value-headers.ts';
import type { Destination, InviteServerTransaction, ServerTransaction, TransactionUser } from '../transaction/types.ts';
import { ALLOW } from '../stack.ts';
import type { RequestAuthenticator } from './request-authenticator.ts';

/** Option tags this element supports (RFC 3261 §19.2); none yet beyond the base protocol. */
export const SUPPORTED: readonly string[] = [];

/** Body types the gateway accepts (Accept, and the 415 check). */
export const ACCEPT = 'application/sdp';

/**
 * Handles REGISTER once the sender is authenticated. The registrar (bindings, expiry,
 * persistence) plugs in here; without one the gateway answers 403.
 */
export interface RegisterHandler {
  /** `source` is where the REGISTER came from: the path to a NATed phone (RFC 3581). */
  register(req: SipRequest, username: string, source?: Destination): SipResponse;
}

/**
 * Handles an authenticated INVITE outside a dialog. The call layer plugs in here; without one
 * the gateway answers 480 (nobody can take the call).
 */
export interface InviteHandler {
  invite(req: SipRequest, tx: ServerTransaction, username: string): void;
}

export interface UasCoreOptions {
  logger: Logger;
  auth: RequestAuthenticator;
  userAgent: string;
  registrar?: RegisterHandler;
  calls?: InviteHandler;
}

/**
 * The transaction user for requests addressed to the gateway itself (RFC 3261 §8.2): header
 * inspection (420), content inspection (415/406), authentication (§22: 401/407), then the
 * method: OPTIONS answered here, REGISTER to the registrar, INVITE to the call layer, in-dialog
 * requests that match no dialog get 481 (§12.2.2).
 *
 * Syntax checks happen before authentication on purpose: a request that cannot be processed is
 * refused without making the client compute a digest for nothing. Everything answered before
 * authentication is answered statelessly (see {@link TransactionUser.screen}).
 */
export class UasCore implements TransactionUser {
  /** Users authenticated by `screen`, for `onRequest` (a digest answer verifies only once). */
  private readonly authenticated = new WeakMap<SipRequest, string>();

  constructor(private readonly opts: UasCoreOptions) {}

  /**
   * Everything that can be answered without a transaction: header and content checks,
   * challenges, OPTIONS, 481 for unknown dialogs and transactions, 405. Only authenticated
   * REGISTER and INVITE requests, and CANCELs of a pending INVITE, go on to a transaction.
   */
  screen(req: SipRequest, _source: Destination, invite?: InviteServerTransaction): SipResponse | undefined {
    if (req.method === 'CANCEL') {
      // §9.2: "If the UAS did not find a matching transaction for the CANCEL ... it SHOULD
      // respond to the CANCEL with a 481".
      return invite ? undefined : buildResponse(req, 481);
    }
    // §8.2.2.3: Require lists extensions we must understand.
    const unsupported = req.headers.getAll('require').flatMap(parseTokenList).filter((o) => !SUPPORTED.includes(o));
    if (unsupported.length > 0) {
      return buildResponse(req, 420, undefined, { headers: [['Unsupported', unsupported.join(', ')]] });
    }
    // §12.2.2: a request with a To tag belongs to a dialog; we hold none for it.
    if (tagOf(req.headers.get('to') ?? '') !== undefined) return buildResponse(req, 481);

    switch (req.method) {
      case 'OPTIONS':
        // §11.2: answered like an INVITE would be, with the capabilities.
        return buildResponse(req, 200, undefined, { headers: this.capabilities() });
      case 'REGISTER':
        return this.screenRegister(req);
      case 'INVITE':
        return this.screenInvite(req);
      case 'BYE':
        return buildResponse(req, 481);
      default:
        // §8.2.1: understood but not allowed here.
        return buildResponse(req, 405, undefined, { headers: [['Allow', ALLOW]] });
    }
  }

  onRequest(req: SipRequest, tx: ServerTransaction): void {
    const username = this.authenticated.get(req);
    if (username === undefined) {
      // Only requests that `screen` let through arrive here.
      tx.respond(buildResponse(req, 500, 'Request Not Screened'));
      return;
    }
    if (req.method === 'REGISTER') {
      tx.respond(this.opts.registrar!.register(req, username, tx.source));
    } else if (req.method === 'INVITE') {
      this.opts.calls!.invite(req, tx, username);
    }
  }

  onAck(_ack: SipRequest, _source: Destination, _invite?: InviteServerTransaction): void {
    // An ACK for a 2xx of a dialog we do not hold, or for a stateless challenge: nothing to do.
  }

  onCancel(_cancel: SipRequest, invite: InviteServerTransaction | undefined, cancelTx: ServerTransaction): void {
    if (!invite) {
      cancelTx.respond(buildResponse(cancelTx.request, 481));
      return;
    }
    // §9.2: the CANCEL gets 200; the INVITE, if not yet answered finally, 487.
    cancelTx.respond(buildResponse(cancelTx.request, 200));
    const last = invite.lastResponse;
    if (!last || last.status < 200) invite.respond(buildResponse(invite.request, 487));
  }

  private capabilities(): [string, string][] {
    return [
      ['Allow', ALLOW],
      ['Accept', ACCEPT],
      ['Accept-Encoding', 'identity'],
      ['Accept-Language', 'en'],
      ['Supported', SUPPORTED.join(', ')],
      ['Server', this.opts.userAgent],
    ];
  }

  private screenRegister(req: SipRequest): SipResponse | undefined {
    // §10.3 step 3 via RFC 4475 §3.3.4: the To of a REGISTER must be a SIP or SIPS address of record.
    let aorUser: string | undefined;
    try {
      const to = parseNameAddr(req.headers.get('to') ?? '');
      if (to.uri.scheme === 'tel') throw new Error('tel');
      aorUser = to.uri.user;
    } catch {
      return buildResponse(req, 400, 'Address of Record Must Be a SIP URI');
    }
    const auth = this.opts.auth.check(req, 'registrar');
    if (!auth.ok) return auth.response;
    if (aorUser !== auth.username) {
      this.opts.logger.warn('REGISTER for another user refused', { user: auth.username, aor: aorUser });
      return buildResponse(req, 403, 'Forbidden (user does not own the address of record)');
    }
    if (!this.opts.registrar) return buildResponse(req, 403, 'Registration Not Enabled');
    this.authenticated.set(req, auth.username);
    return undefined;
  }

  private screenInvite(req: SipRequest): SipResponse | undefined {
    // §8.2.3: content processing. A body must be a type we understand.
    if (req.body.length > 0) {
      let type: string;
      try {
        const ct = parseContentType(req.headers.get('content-type') ?? '');
        type = `${ct.type}/${ct.subtype}`;
      } catch {
        return buildResponse(req, 400, 'Malformed Content-Type');
      }
      if (type !== ACCEPT) return buildResponse(req, 415, undefined, { headers: [['Accept', ACCEPT]] });
    }
    // RFC 4475 §3.3.15: an Accept that excludes SDP leaves no answer we could send.
    const accept = req.headers.getAll('accept');
    if (accept.length > 0 && !accept.some((a) => /^\s*(application\/sdp|application\/\*|\*\/\*)\s*(;|$)/i.test(a))) {
      return buildResponse(req, 406, undefined, { headers: [['Accept', ACCEPT]] });
    }
    const auth = this.opts.auth.check(req, 'proxy');
    if (!auth.ok) return auth.response;
    if (!this.opts.calls) return buildResponse(req, 480, 'No Call Routing Configured');
    this.authenticated.set(req, auth.username);
    return undefined;
  }
}
