import type { Logger } from '../../runtime/logger.ts';
import { buildResponse } from '../dialog/request-builder.ts';
import { tagOf } from '../message/header-values.ts';
import { parseTokenList } from '../message/header-values.ts';
import { parseNameAddr } from '../message/header-values.ts';
import type { SipRequest, SipResponse } from '../message/message.ts';
import { parseContentType } from '../message/value-headers.ts';
import type { Destination, InviteServerTransaction, ServerTransaction, TransactionUser } from '../transaction/types.ts';
import { ALLOW } from '../stack.ts';
import type { AuthOutcome, RequestAuthenticator } from './request-authenticator.ts';

/** Option tags this element supports (RFC 3261 §19.2): session timers (RFC 4028). */
export const SUPPORTED: readonly string[] = ['timer'];

/** Body types the gateway accepts (Accept, and the 415 check). */
export const ACCEPT = 'application/sdp';

/**
 * Handles REGISTER once the sender is authenticated. The registrar (bindings, expiry,
 * persistence) plugs in here; without one the gateway answers 403.
 */
export interface RegisterHandler {
  /** `source` is where the REGISTER came from: the path to a NATed phone (RFC 3581). */
  register(req: SipRequest, username: string, source?: Destination): SipResponse | Promise<SipResponse>;
}

/**
 * The call layer (the B2BUA): INVITEs outside a dialog once authenticated (or from a trunk),
 * and everything inside the dialogs it owns. Without one the gateway answers INVITE with 480.
 */
export interface CallHandler {
  /** An INVITE from an authenticated extension. The handler answers on `tx`. */
  invite(req: SipRequest, tx: ServerTransaction, username: string): void;
  /** An INVITE from a trunk's address (not challenged: the trunk does not know our passwords). */
  inviteFromTrunk(req: SipRequest, tx: ServerTransaction, trunk: string): void;
  /** Whether a request with a To tag belongs to one of the handler's dialogs (§12.2.2). */
  ownsDialog(req: SipRequest): boolean;
  /** A request inside a dialog for which {@link ownsDialog} said yes. The handler answers on `tx`. */
  inDialog(req: SipRequest, tx: ServerTransaction): void;
  /** An ACK for a 2xx (§13.3.1.4; RFC 6026), or for a dialog the handler may not know. */
  ack(ack: SipRequest, source: Destination): void;
  /** The caller CANCELled `invite`; the core has answered 200 to the CANCEL and 487 to the INVITE. */
  cancel(invite: SipRequest): void;
  /** A 2xx to INVITE matching no client transaction: a retransmission to ACK again (§13.2.2.4). */
  strayResponse(res: SipResponse, source: Destination): void;
}

/**
 * Instant messages (RFC 3428 MESSAGE) outside a dialog, once admitted: authenticated like an
 * INVITE (407), or from a trunk's address. Without one the gateway answers MESSAGE with 405.
 */
export interface MessageHandler {
  /** The largest body accepted, in bytes; larger ones get 413 before authentication. */
  maxBytes(): number;
  /** A MESSAGE from an authenticated user or a trunk. The handler answers on `tx`. */
  message(req: SipRequest, tx: ServerTransaction, from: { kind: 'user'; username: string } | { kind: 'trunk'; trunk: string }): void;
}

/**
 * The notifier's subscription dialogs (RFC 6665; src/sip/ua/subscription-dialogs.ts): SUBSCRIBEs
 * outside a dialog once authenticated like an INVITE (407), and refreshes inside the dialogs it
 * owns. Without one the gateway answers SUBSCRIBE with 405.
 */
export interface PresenceHandler {
  /** The event packages served, for Allow-Events (RFC 6665 §8.2.2) in OPTIONS answers. */
  readonly allowEvents: string;
  /** Whether a request with a To tag belongs to one of the handler's subscription dialogs. */
  ownsDialog(req: SipRequest): boolean;
  /** A SUBSCRIBE outside a dialog from the authenticated `subscriber`. The handler answers on `tx`. */
  subscribe(req: SipRequest, tx: ServerTransaction, subscriber: string): void;
  /** A SUBSCRIBE for which {@link ownsDialog} said yes. The handler answers on `tx`. */
  inDialog(req: SipRequest, tx: ServerTransaction): void;
}

/** @deprecated use {@link CallHandler}. */
export type InviteHandler = CallHandler;

/**
 * Source-address policy (security.allowedSources, bans after repeated authentication
 * failures). Consulted for requests outside a dialog.
 */
export interface SourceGuard {
  /** False for addresses outside the allowed networks and for banned ones: they get 403. */
  isAllowed(address: string): boolean;
  /** A request from `address` carried wrong credentials. */
  authFailed(address: string): void;
  /** A request from `address` authenticated. */
  authSucceeded(address: string): void;
}

export interface UasCoreOptions {
  logger: Logger;
  auth: RequestAuthenticator;
  userAgent: string;
  registrar?: RegisterHandler;
  calls?: CallHandler;
  messages?: MessageHandler;
  presence?: PresenceHandler;
  guard?: SourceGuard;
  /** The trunk whose address `source` is, if any: its INVITEs are not challenged. */
  trunkFor?(source: Destination): string | undefined;
}

/** Why `screen` let a request through, for `onRequest`. */
type Admitted = { kind: 'user'; username: string } | { kind: 'trunk'; trunk: string } | { kind: 'dialog' } | { kind: 'subscription' };

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
/** How many failed requests are remembered for {@link UasCore} retransmission de-duplication. */
const MAX_COUNTED_FAILURES = 4096;

export class UasCore implements TransactionUser {
  /** Requests `screen` let through and why, for `onRequest` (a digest answer verifies only once). */
  private readonly admitted = new WeakMap<SipRequest, Admitted>();
  /**
   * Requests (source and top Via branch) whose failed credentials were already counted: the
   * retransmissions of one request are one failure, not several (a phone whose 407 got lost
   * must not be banned for it). Bounded; the oldest entries go first.
   */
  private readonly countedFailures = new Set<string>();

  constructor(private readonly opts: UasCoreOptions) {}

  /**
   * Everything that can be answered without a transaction: header and content checks,
   * challenges, OPTIONS, 481 for unknown dialogs and transactions, 405. Only authenticated
   * REGISTER and INVITE requests, and CANCELs of a pending INVITE, go on to a transaction.
   */
  screen(req: SipRequest, source: Destination, invite?: InviteServerTransaction): SipResponse | undefined {
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
    // §12.2.2: a request with a To tag belongs to a dialog; the call layer holds it or nobody does.
    if (tagOf(req.headers.get('to') ?? '') !== undefined) {
      if (req.method === 'SUBSCRIBE' && this.opts.presence?.ownsDialog(req)) {
        this.admitted.set(req, { kind: 'subscription' });
        return undefined;
      }
      if (!this.opts.calls?.ownsDialog(req)) return buildResponse(req, 481);
      this.admitted.set(req, { kind: 'dialog' });
      return undefined;
    }
    const trunk = this.opts.trunkFor?.(source);
    if (trunk === undefined && this.opts.guard && !this.opts.guard.isAllowed(source.address)) {
      this.opts.logger.info('request from a source that is not allowed', { method: req.method, peer: source.address });
      return buildResponse(req, 403, 'Forbidden (source not allowed)');
    }

    switch (req.method) {
      case 'OPTIONS':
        // §11.2: answered like an INVITE would be, with the capabilities.
        return buildResponse(req, 200, undefined, { headers: this.capabilities() });
      case 'REGISTER':
        return this.screenRegister(req, source);
      case 'INVITE':
        return this.screenInvite(req, source, trunk);
      case 'SUBSCRIBE':
        if (this.opts.presence) return this.screenSubscribe(req, source);
        return buildResponse(req, 405, undefined, { headers: [['Allow', ALLOW]] });
      case 'MESSAGE':
        if (this.opts.messages) return this.screenMessage(req, source, trunk);
        return buildResponse(req, 405, undefined, { headers: [['Allow', ALLOW]] });
      case 'BYE':
        return buildResponse(req, 481);
      default:
        // §8.2.1: understood but not allowed here.
        return buildResponse(req, 405, undefined, { headers: [['Allow', ALLOW]] });
    }
  }

  onRequest(req: SipRequest, tx: ServerTransaction): void {
    const admitted = this.admitted.get(req);
    if (admitted === undefined) {
      // Only requests that `screen` let through arrive here.
      tx.respond(buildResponse(req, 500, 'Request Not Screened'));
      return;
    }
    if (admitted.kind === 'dialog') {
      this.opts.calls!.inDialog(req, tx);
    } else if (admitted.kind === 'subscription') {
      this.opts.presence!.inDialog(req, tx);
    } else if (req.method === 'SUBSCRIBE' && admitted.kind === 'user') {
      this.opts.presence!.subscribe(req, tx, admitted.username);
    } else if (req.method === 'MESSAGE') {
      this.opts.messages!.message(req, tx, admitted.kind === 'trunk' ? admitted : { kind: 'user', username: admitted.username });
    } else if (admitted.kind === 'trunk') {
      this.opts.calls!.inviteFromTrunk(req, tx, admitted.trunk);
    } else if (req.method === 'REGISTER') {
      this.register(req, admitted.username, tx);
    } else if (req.method === 'INVITE') {
      this.opts.calls!.invite(req, tx, admitted.username);
    }
  }

  /** The registrar may answer later (once the binding is durable); a failure is a 500. */
  private register(req: SipRequest, username: string, tx: ServerTransaction): void {
    let result: SipResponse | Promise<SipResponse>;
    try {
      result = this.opts.registrar!.register(req, username, tx.source);
    } catch (err) {
      this.opts.logger.error('registrar failed', { reason: err instanceof Error ? err.message : String(err) });
      tx.respond(buildResponse(req, 500));
      return;
    }
    if (!(result instanceof Promise)) {
      tx.respond(result);
      return;
    }
    result.then(
      (res) => tx.respond(res),
      (err: unknown) => {
        this.opts.logger.error('registrar failed', { reason: err instanceof Error ? err.message : String(err) });
        tx.respond(buildResponse(req, 500));
      },
    );
  }

  onAck(ack: SipRequest, source: Destination, _invite?: InviteServerTransaction): void {
    // The ACK for a 2xx (§13.3.1.4) belongs to the call layer; an ACK for a stateless
    // challenge or a dialog nobody holds goes there too and is ignored.
    this.opts.calls?.ack(ack, source);
  }

  onStrayResponse(res: SipResponse, source: Destination): void {
    this.opts.calls?.strayResponse(res, source);
  }

  onCancel(_cancel: SipRequest, invite: InviteServerTransaction | undefined, cancelTx: ServerTransaction): void {
    if (!invite) {
      cancelTx.respond(buildResponse(cancelTx.request, 481));
      return;
    }
    // §9.2: the CANCEL gets 200; the INVITE, if not yet answered finally, 487.
    cancelTx.respond(buildResponse(cancelTx.request, 200));
    const last = invite.lastResponse;
    if (!last || last.status < 200) {
      invite.respond(buildResponse(invite.request, 487));
      this.opts.calls?.cancel(invite.request);
    }
  }

  private capabilities(): [string, string][] {
    return [
      ['Allow', ALLOW],
      ['Accept', ACCEPT],
      ['Accept-Encoding', 'identity'],
      ['Accept-Language', 'en'],
      ['Supported', SUPPORTED.join(', ')],
      ['Server', this.opts.userAgent],
      ...(this.opts.presence ? ([['Allow-Events', this.opts.presence.allowEvents]] as [string, string][]) : []),
    ];
  }

  /** Digest check with the source guard told about wrong credentials and successes. */
  private authenticate(req: SipRequest, role: 'registrar' | 'proxy', source: Destination): AuthOutcome {
    const auth = this.opts.auth.check(req, role);
    if (auth.ok) this.opts.guard?.authSucceeded(source.address);
    else if (auth.failed && this.firstFailure(req, source)) this.opts.guard?.authFailed(source.address);
    return auth;
  }

  /** True the first time a failed request (by source address and branch) is seen. */
  private firstFailure(req: SipRequest, source: Destination): boolean {
    const branch = /;\s*branch\s*=\s*([^;,\s]+)/i.exec(req.headers.get('via') ?? '')?.[1];
    if (branch === undefined) return true;
    const key = `${source.address} ${branch}`;
    if (this.countedFailures.has(key)) return false;
    this.countedFailures.add(key);
    if (this.countedFailures.size > MAX_COUNTED_FAILURES) {
      this.countedFailures.delete(this.countedFailures.values().next().value as string);
    }
    return true;
  }

  private screenRegister(req: SipRequest, source: Destination): SipResponse | undefined {
    // §10.3 step 3 via RFC 4475 §3.3.4: the To of a REGISTER must be a SIP or SIPS address of record.
    let aorUser: string | undefined;
    try {
      const to = parseNameAddr(req.headers.get('to') ?? '');
      if (to.uri.scheme === 'tel') throw new Error('tel');
      aorUser = to.uri.user;
    } catch {
      return buildResponse(req, 400, 'Address of Record Must Be a SIP URI');
    }
    const auth = this.authenticate(req, 'registrar', source);
    if (!auth.ok) return auth.response;
    if (aorUser !== auth.username) {
      this.opts.logger.warn('REGISTER for another user refused', { user: auth.username, aor: aorUser });
      return buildResponse(req, 403, 'Forbidden (user does not own the address of record)');
    }
    if (!this.opts.registrar) return buildResponse(req, 403, 'Registration Not Enabled');
    this.admitted.set(req, { kind: 'user', username: auth.username });
    return undefined;
  }

  private screenInvite(req: SipRequest, source: Destination, trunk: string | undefined): SipResponse | undefined {
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
    if (trunk !== undefined && this.opts.calls) {
      // Calls from a trunk are accepted by source address only.
      this.admitted.set(req, { kind: 'trunk', trunk });
      return undefined;
    }
    const auth = this.authenticate(req, 'proxy', source);
    if (!auth.ok) return auth.response;
    if (!this.opts.calls) return buildResponse(req, 480, 'No Call Routing Configured');
    this.admitted.set(req, { kind: 'user', username: auth.username });
    return undefined;
  }

  /**
   * RFC 3428 MESSAGE: the size limit and the body's type are checked before authentication,
   * like an INVITE's content (§8.2.3), then the sender is challenged as for an INVITE (407) unless
   * it is a trunk. RFC 3261 §21.4.11: 413 when "the request entity body is larger than the server
   * is willing or able to process"; RFC 3261 §7.4.1: a non-empty body needs a Content-Type.
   */
  private screenMessage(req: SipRequest, source: Destination, trunk: string | undefined): SipResponse | undefined {
    if (req.body.length > this.opts.messages!.maxBytes()) return buildResponse(req, 413);
    if (req.body.length > 0) {
      try {
        parseContentType(req.headers.get('content-type') ?? '');
      } catch {
        return buildResponse(req, 400, 'Malformed or Missing Content-Type');
      }
    }
    if (trunk !== undefined) {
      this.admitted.set(req, { kind: 'trunk', trunk });
      return undefined;
    }
    const auth = this.authenticate(req, 'proxy', source);
    if (!auth.ok) return auth.response;
    this.admitted.set(req, { kind: 'user', username: auth.username });
    return undefined;
  }

  /**
   * RFC 6665 §4.2.1: a SUBSCRIBE is authenticated like an INVITE (a proxy-style 407 challenge,
   * RFC 3261 §22.3); the package, Expires and Accept are the notifier's to judge.
   */
  private screenSubscribe(req: SipRequest, source: Destination): SipResponse | undefined {
    const auth = this.authenticate(req, 'proxy', source);
    if (!auth.ok) return auth.response;
    this.admitted.set(req, { kind: 'user', username: auth.username });
    return undefined;
  }
}
