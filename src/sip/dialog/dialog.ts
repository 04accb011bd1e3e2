/**
 * A SIP dialog (RFC 3261 §12): the state two UAs share for a peer-to-peer relationship, and the
 * rules that turn it into in-dialog requests. Pure: it never sends anything. The caller (the call
 * layer) creates a dialog from the request/response that establishes it, feeds it every response
 * and in-dialog request, and sends what {@link Dialog.createRequest} builds through a client
 * transaction, which adds the Via.
 */
import { Headers } from '../message/headers.ts';
import { createRequest } from '../message/message.ts';
import type { SipRequest, SipResponse } from '../message/message.ts';
import type { NameAddr, SipUri } from '../message/types.ts';
import { parseCSeq, parseContact, parseNameAddr, tagOf } from '../message/header-values.ts';
import { parseUri } from '../message/uri.ts';
import { SipParseError } from '../message/errors.ts';
import type { Random } from '../../runtime/random.ts';
import { DEFAULT_MAX_FORWARDS, routeRequest } from './request-builder.ts';

/** The dialog ID (§12): Call-ID plus local and remote tags. */
export interface DialogId {
  callId: string;
  localTag: string;
  /** Empty when the peer sent no tag (RFC 2543 peers, §12.1.2: "considered to have a value of null"). */
  remoteTag: string;
}

export type DialogState = 'early' | 'confirmed' | 'terminated';

/**
 * Methods whose requests (and 2xx responses) replace the remote target (§12.2: re-INVITE;
 * RFC 3311 UPDATE; RFC 6665 §4.1.2 / §4.2 SUBSCRIBE and NOTIFY).
 */
const TARGET_REFRESH = new Set(['INVITE', 'UPDATE', 'SUBSCRIBE', 'NOTIFY']);

/** Methods whose in-dialog requests carry our Contact by default. */
const CONTACT_METHODS = new Set(['INVITE', 'UPDATE', 'SUBSCRIBE', 'NOTIFY', 'REFER']);

/** Options of {@link Dialog.createRequest} and {@link Dialog.createAck}. */
export interface InDialogRequestOptions {
  /** Further header fields (Authorization, Event, Refer-To, ...), appended in order. */
  headers?: Iterable<readonly [string, string]>;
  body?: Buffer;
  /** Content-Type of a non-empty body. */
  contentType?: string;
  /** Whether to include our Contact. Default: yes for INVITE, UPDATE, SUBSCRIBE, NOTIFY, REFER. */
  contact?: boolean;
}

/** An in-dialog request ready for a client transaction, and where it must go. */
export interface DialogRequest {
  /** The request without a Via: the client transaction prepends one with its branch. */
  request: SipRequest;
  /** Destination URI (§12.2.1.1 / §8.1.2): the first Route for a loose router, else the Request-URI. */
  nextHop: SipUri;
}

/** The verdict of {@link Dialog.receiveRequest}. */
export type ReceiveResult = { accepted: true } | { accepted: false; status: number; reason: string };

/** Options of {@link Dialog.asUas}. */
export interface UasDialogOptions {
  /** Default `early` (the UAS sent a 1xx with a tag); `confirmed` once it sends a 2xx. */
  state?: 'early' | 'confirmed';
  /** Picks the initial local CSeq (§12.2.1.1) when we first send a request; default 1. */
  random?: Random;
  /** Whether the request came over TLS (the secure flag needs TLS and a SIPS Request-URI). Default true. */
  overTls?: boolean;
}

/** Options of {@link Dialog.asUac}. */
export interface UacDialogOptions {
  /** Whether the request was sent over TLS. Default true (the flag then follows the Request-URI scheme). */
  overTls?: boolean;
}

interface DialogInit {
  id: DialogId;
  state: DialogState;
  localValue: string;
  remoteValue: string;
  localSeq: number | undefined;
  remoteSeq: number | undefined;
  remoteTarget: SipUri;
  routeSet: string[];
  secure: boolean;
  localContact: string | undefined;
  random: Random | undefined;
}

function cseqOf(msg: SipRequest | SipResponse): { seq: number; method: string } {
  const v = msg.headers.get('CSeq');
  if (v === undefined) throw new SipParseError('missing-cseq', 'message has no CSeq');
  return parseCSeq(v);
}

function required(msg: SipRequest | SipResponse, name: string): string {
  const v = msg.headers.get(name);
  if (v === undefined) throw new SipParseError(`missing-${name.toLowerCase()}`, `message has no ${name}`);
  return v;
}

/** The URI of the first Contact, or undefined when there is none (a `*` Contact is refused). */
function contactUri(msg: SipRequest | SipResponse): SipUri | undefined {
  const first = msg.headers.getAll('Contact')[0];
  if (first === undefined) return undefined;
  const c = parseContact(first);
  if (c.star) throw new SipParseError('bad-contact', 'Contact "*" cannot be a remote target');
  return c.uri;
}

/** A SIP dialog. Create one with {@link Dialog.asUac} or {@link Dialog.asUas}. */
export class Dialog {
  readonly id: DialogId;
  private stateValue: DialogState;
  /** Our From (UAC) or To (UAS) value, with our tag: the From of every request we send. */
  readonly localValue: string;
  /** The peer's value, with its tag: the To of every request we send. */
  readonly remoteValue: string;
  /** Local CSeq sequence number; undefined until a UAS sends its first request. */
  localSeq: number | undefined;
  /** Remote CSeq sequence number; undefined until the peer's first request (UAC side). */
  remoteSeq: number | undefined;
  /** Where requests go (the peer's Contact URI), replaced by target refreshes. */
  remoteTarget: SipUri;
  /** Route set as name-addr values in the order they become Route values. */
  routeSet: string[];
  /** §12.1: TLS plus a SIPS Request-URI. */
  readonly secure: boolean;
  /** Our Contact value for requests that need one. */
  readonly localContact: string | undefined;
  private readonly random: Random | undefined;

  private constructor(init: DialogInit) {
    this.id = init.id;
    this.stateValue = init.state;
    this.localValue = init.localValue;
    this.remoteValue = init.remoteValue;
    this.localSeq = init.localSeq;
    this.remoteSeq = init.remoteSeq;
    this.remoteTarget = init.remoteTarget;
    this.routeSet = init.routeSet;
    this.secure = init.secure;
    this.localContact = init.localContact;
    this.random = init.random;
  }

  /**
   * The UAC side (§12.1.2), from the request we sent and a 101-199 response with a To tag (early)
   * or a 2xx (confirmed). "The route set MUST be set to the list of URIs in the Record-Route
   * header field from the response, taken in reverse order"; the remote target is the response's
   * Contact (kept as the Request-URI when a non-conforming peer sends none); local CSeq is the
   * request's.
   *
   * @throws SipParseError when the messages lack or garble Call-ID, From, To, CSeq or Contact.
   * @throws Error when the response does not create a dialog (100, a final non-2xx, or a 1xx
   *   without To tag): a caller bug.
   */
  static asUac(request: SipRequest, response: SipResponse, opts: UacDialogOptions = {}): Dialog {
    const to = required(response, 'To');
    const remoteTag = tagOf(to);
    if (response.status < 101 || response.status > 299 || (response.status < 200 && remoteTag === undefined)) {
      throw new Error(`a ${response.status} response does not create a dialog (RFC 3261 §12.1)`);
    }
    const from = required(request, 'From');
    const localTag = tagOf(from);
    if (localTag === undefined) throw new SipParseError('missing-from-tag', 'request From has no tag');
    const requestUri = parseUri(request.uri);
    const localContact = request.headers.getAll('Contact')[0];
    return new Dialog({
      id: { callId: required(request, 'Call-ID'), localTag, remoteTag: remoteTag ?? '' },
      state: response.status >= 200 ? 'confirmed' : 'early',
      localValue: from,
      remoteValue: to,
      localSeq: cseqOf(request).seq,
      remoteSeq: undefined,
      remoteTarget: contactUri(response) ?? requestUri,
      routeSet: response.headers.getAll('Record-Route').reverse(),
      secure: (opts.overTls ?? true) && requestUri.scheme === 'sips',
      localContact,
      random: undefined,
    });
  }

  /**
   * The UAS side (§12.1.1), from the request that creates the dialog. "The route set MUST be set
   * to the list of URIs in the Record-Route header field from the request, taken in order"; the
   * remote target is the request's Contact; the remote CSeq is the request's; the local CSeq stays
   * empty until we send a request.
   *
   * @param localTag the To tag we put in the dialog-creating response.
   * @param localContact our Contact value, also sent in that response.
   * @throws SipParseError when the request lacks or garbles Call-ID, From tag, To, CSeq or Contact.
   */
  static asUas(request: SipRequest, localTag: string, localContact: string, opts: UasDialogOptions = {}): Dialog {
    const from = required(request, 'From');
    const remoteTag = tagOf(from);
    if (remoteTag === undefined) throw new SipParseError('missing-from-tag', 'request From has no tag');
    const to = required(request, 'To');
    const requestUri = parseUri(request.uri);
    return new Dialog({
      id: { callId: required(request, 'Call-ID'), localTag, remoteTag },
      state: opts.state ?? 'early',
      localValue: tagOf(to) === undefined ? `${to};tag=${localTag}` : to,
      remoteValue: from,
      localSeq: undefined,
      remoteSeq: cseqOf(request).seq,
      remoteTarget: contactUri(request) ?? parseNameAddr(from).uri,
      routeSet: request.headers.getAll('Record-Route'),
      secure: (opts.overTls ?? true) && requestUri.scheme === 'sips',
      localContact,
      random: opts.random,
    });
  }

  get state(): DialogState {
    return this.stateValue;
  }

  /** Our URI and display name (the From of our requests). */
  get localUri(): NameAddr {
    return parseNameAddr(this.localValue);
  }

  /** The peer's URI and display name (the To of our requests). */
  get remoteUri(): NameAddr {
    return parseNameAddr(this.remoteValue);
  }

  /** UAS: we sent a 2xx (§12.1.1 / §13.3.1.4: the dialog is confirmed). */
  confirm(): void {
    if (this.stateValue === 'terminated') throw new Error('cannot confirm a terminated dialog');
    this.stateValue = 'confirmed';
  }

  /** Ends the dialog (BYE sent or received, §15; or the session failed). */
  terminate(): void {
    this.stateValue = 'terminated';
  }

  /**
   * Applies a response to a request we sent in this dialog (or to the dialog-creating INVITE).
   * - INVITE 2xx in the early state: confirmed, and "the route set for the dialog MUST be
   *   recomputed based on the 2xx response" (§13.2.2.4); the remote target follows its Contact.
   * - 2xx to a target refresh (§12.2.1.2): "MUST replace the dialog's remote target URI with the
   *   URI from the Contact header field in that response, if present". A 1xx with Contact does the
   *   same while early (RFC 6141 §3.3).
   * - A non-2xx final response to the INVITE of an early dialog terminates it (§12.3).
   * - 481 or 408 to any in-dialog request: "the UAC SHOULD terminate the dialog" (§12.2.1.2).
   * A response without a usable CSeq or Contact is ignored rather than thrown: it came from the
   * network. Returns the state afterwards.
   */
  receiveResponse(response: SipResponse): DialogState {
    if (this.stateValue === 'terminated') return this.stateValue;
    let method: string;
    try {
      method = cseqOf(response).method;
    } catch {
      return this.stateValue;
    }
    const status = response.status;
    if (status === 481 || status === 408) {
      this.stateValue = 'terminated';
      return this.stateValue;
    }
    if (method === 'INVITE' && this.stateValue === 'early') {
      if (status >= 300) {
        this.stateValue = 'terminated';
      } else if (status >= 200) {
        this.stateValue = 'confirmed';
        this.routeSet = response.headers.getAll('Record-Route').reverse();
        this.refreshTarget(response);
      } else if (status > 100) {
        this.refreshTarget(response);
      }
      return this.stateValue;
    }
    if (status >= 200 && status < 300 && TARGET_REFRESH.has(method)) this.refreshTarget(response);
    return this.stateValue;
  }

  /**
   * Checks an in-dialog request from the peer (§12.2.2) and records its CSeq. "If the remote
   * sequence number was not empty, but the sequence number of the request is lower than the
   * remote sequence number, the request is out of order and MUST be rejected with a 500 (Server
   * Internal Error) response." ACK and CANCEL reuse an earlier CSeq and are never out of order.
   * A target refresh with a Contact replaces the remote target ("When a UAS receives a target
   * refresh request, it MUST replace the dialog's remote target URI with the URI from the Contact
   * header field in that request, if present"). A request with a malformed CSeq or Contact gets
   * 400.
   */
  receiveRequest(request: SipRequest): ReceiveResult {
    let seq: number;
    try {
      seq = cseqOf(request).seq;
    } catch (e) {
      return { accepted: false, status: 400, reason: e instanceof Error ? e.message : 'Bad CSeq' };
    }
    const method = request.method;
    if (method === 'ACK' || method === 'CANCEL') return { accepted: true };
    if (this.remoteSeq !== undefined && seq < this.remoteSeq) {
      return { accepted: false, status: 500, reason: 'Server Internal Error' };
    }
    let target: SipUri | undefined;
    if (TARGET_REFRESH.has(method)) {
      try {
        target = contactUri(request);
      } catch (e) {
        return { accepted: false, status: 400, reason: e instanceof Error ? e.message : 'Bad Contact' };
      }
    }
    this.remoteSeq = seq;
    if (target !== undefined) this.remoteTarget = target;
    return { accepted: true };
  }

  /**
   * Builds a request within the dialog (§12.2.1.1): Request-URI and Route from the remote target
   * and route set (loose or strict routing, see {@link routeRequest}), To = remote URI and tag,
   * From = local URI and tag, the Call-ID, CSeq = local sequence number plus one ("MUST be
   * incremented by one"), Max-Forwards 70 and, for methods that need it, our Contact. The caller
   * adds the Via. Use {@link createAck} for the ACK of a 2xx; CANCEL is built from the request it
   * cancels (see `buildCancel` in transaction/cancel.ts).
   *
   * @throws Error for ACK/CANCEL or when the dialog is terminated (caller bugs).
   */
  createRequest(method: string, opts: InDialogRequestOptions = {}): DialogRequest {
    if (method === 'ACK' || method === 'CANCEL') {
      throw new Error(`${method} reuses the CSeq of the request it answers; use createAck or buildCancel`);
    }
    if (this.stateValue === 'terminated') throw new Error(`cannot send ${method} in a terminated dialog`);
    const seq = this.localSeq === undefined ? this.initialSeq() : this.localSeq + 1;
    this.localSeq = seq;
    const withContact = opts.contact ?? CONTACT_METHODS.has(method);
    return this.build(method, seq, withContact, opts);
  }

  /**
   * Builds the ACK for a 2xx to an INVITE (§13.2.2.4): formed like any in-dialog request, but
   * "the sequence number of the CSeq header field MUST be the same as the INVITE being
   * acknowledged, but the CSeq method MUST be ACK". The local CSeq does not advance. Pass the
   * INVITE's Authorization headers in `opts.headers`.
   */
  createAck(inviteCSeq: number, opts: InDialogRequestOptions = {}): DialogRequest {
    return this.build('ACK', inviteCSeq, opts.contact ?? false, opts);
  }

  private build(method: string, seq: number, withContact: boolean, opts: InDialogRequestOptions): DialogRequest {
    const routed = routeRequest(this.remoteTarget, this.routeSet);
    const h = new Headers();
    h.append('Max-Forwards', String(DEFAULT_MAX_FORWARDS));
    if (routed.routes.length > 0) h.append('Route', routed.routes.join(', '));
    h.append('To', this.remoteValue);
    h.append('From', this.localValue);
    h.append('Call-ID', this.id.callId);
    h.append('CSeq', `${seq} ${method}`);
    if (withContact && this.localContact !== undefined) h.append('Contact', this.localContact);
    for (const [name, value] of opts.headers ?? []) h.append(name, value);
    const body = opts.body ?? Buffer.alloc(0);
    if (body.length > 0 && opts.contentType !== undefined) h.set('Content-Type', opts.contentType);
    return { request: createRequest(method, routed.requestUri, h, body), nextHop: routed.nextHop };
  }

  /** §12.2.1.1: "If the local sequence number is empty, an initial value MUST be chosen" (below 2**31). */
  private initialSeq(): number {
    if (this.random === undefined) return 1;
    return (this.random.bytes(4).readUInt32BE(0) & 0x0fffffff) + 1;
  }

  private refreshTarget(msg: SipRequest | SipResponse): void {
    try {
      const uri = contactUri(msg);
      if (uri !== undefined) this.remoteTarget = uri;
    } catch {
      // A garbled Contact in a response leaves the target as it was (§12.2.1.2 "if present").
    }
  }
}
