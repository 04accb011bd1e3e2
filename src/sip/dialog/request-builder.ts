/**
 * Construction of requests outside a dialog (RFC 3261 §8.1.1), of UAS responses (§8.2.6), of
 * CANCEL (§9.1), and the route-set rule shared with in-dialog requests (§12.2.1.1).
 *
 * Everything here is pure: randomness comes from the injected {@link Random}; nothing is sent.
 * Via is left to the caller (the client transaction owns the branch), so a built request has no
 * Via unless one is passed in.
 */
import { createHash } from 'node:crypto';
import { Headers } from '../message/headers.ts';
import { createRequest, createResponse, reasonPhrase } from '../message/message.ts';
import type { SipRequest, SipResponse } from '../message/message.ts';
import type { NameAddr, SipUri } from '../message/types.ts';
import { parseNameAddr, serializeNameAddr, tagOf } from '../message/header-values.ts';
import { parseUri, serializeUri } from '../message/uri.ts';
import { randomToken } from '../../runtime/random.ts';
import type { Random } from '../../runtime/random.ts';

/** Max-Forwards of every request a UAC originates (RFC 3261 §8.1.1.6: "SHOULD be 70"). */
export const DEFAULT_MAX_FORWARDS = 70;

/** Length of generated tags (≥ 32 bits of randomness, §19.3): 16 base-36 characters ≈ 82 bits. */
const TAG_LENGTH = 16;
const CALL_ID_LENGTH = 24;

/** A fresh From/To tag (§19.3). */
export function newTag(random: Random): string {
  return randomToken(random, TAG_LENGTH);
}

/** A fresh Call-ID (§8.1.1.4): globally unique over space and time, random from `random`. */
export function newCallId(random: Random): string {
  return randomToken(random, CALL_ID_LENGTH);
}

/** Where a request goes and what its Request-URI and Route header say. */
export interface RoutedTarget {
  /** The Request-URI, as a byte string. */
  requestUri: string;
  /** Route header values in order (each a name-addr); empty means no Route header. */
  routes: string[];
  /**
   * The URI the request must be sent to (§8.1.2, §12.2.1.1): the first Route when the route set
   * starts with a loose router, the Request-URI otherwise (no route set, or a strict router that
   * now sits in the Request-URI).
   */
  nextHop: SipUri;
}

/** A copy of a URI fit for a Request-URI: without the `method` parameter and URI headers (§19.1.1 table). */
function requestUriOf(uri: SipUri): SipUri {
  const params = new Map(uri.params);
  params.delete('method');
  return { ...uri, params, headers: new Map() };
}

/**
 * Applies a route set to a target (RFC 3261 §12.2.1.1, also §8.1.1.1 for a preloaded route set).
 *
 * - Empty route set: Request-URI = target, no Route.
 * - First route has `lr` (loose router): "the UAC MUST place the remote target URI into the
 *   Request-URI and MUST include a Route header field containing the route set values in order".
 * - First route lacks `lr` (strict router): "the UAC MUST place the first URI from the route set
 *   into the Request-URI, stripping any parameters that are not allowed in a Request-URI. The UAC
 *   MUST add a Route header field containing the remainder of the route set values in order,
 *   including all parameters. The UAC MUST then place the remote target URI into the Route header
 *   field as the last value."
 *
 * @param routeSet name-addr values (as they appeared in Record-Route), in the order they apply.
 * @throws SipParseError when a route value is not a valid name-addr.
 */
export function routeRequest(target: SipUri, routeSet: readonly string[]): RoutedTarget {
  const targetForRuri = requestUriOf(target);
  if (routeSet.length === 0) {
    return { requestUri: serializeUri(targetForRuri), routes: [], nextHop: targetForRuri };
  }
  const first = parseNameAddr(routeSet[0]!);
  if (first.uri.params.has('lr')) {
    return { requestUri: serializeUri(targetForRuri), routes: [...routeSet], nextHop: first.uri };
  }
  const strict = requestUriOf(first.uri);
  return {
    requestUri: serializeUri(strict),
    routes: [...routeSet.slice(1), `<${serializeUri(target)}>`],
    nextHop: strict,
  };
}

/** Inputs of {@link buildRequest}. */
export interface BuildRequestOptions {
  method: string;
  /** The target: Request-URI when there is no route set. */
  requestUri: string | SipUri;
  /** From value (name-addr text or parsed). A tag is added unless it already has one. */
  from: string | NameAddr;
  /** To value; out-of-dialog requests carry no To tag (§8.1.1.2), so none is added. */
  to: string | NameAddr;
  /** Contact value (e.g. `<sip:gw@192.0.2.1:5060>`); required for INVITE/SUBSCRIBE/REGISTER by the caller's logic. */
  contact?: string;
  /** Defaults to a fresh random Call-ID. */
  callId?: string;
  /** CSeq sequence number; defaults to 1 (§8.1.1.5: any value below 2**31). */
  cseq?: number;
  random: Random;
  /** Defaults to 70. */
  maxForwards?: number;
  /** A preloaded route set (§8.1.1.1), name-addr values in order; routed like §12.2.1.1. */
  routeSet?: readonly string[];
  /** A complete top Via value, if the caller already has one; otherwise the transaction adds it. */
  via?: string;
  /** Further header fields, appended in order after the core headers. */
  extraHeaders?: Iterable<readonly [string, string]>;
  body?: Buffer;
  /** Content-Type of `body`; written only when a non-empty body is given. */
  contentType?: string;
}

/** A request built by {@link buildRequest} with the identifiers a caller tracks. */
export interface BuiltRequest {
  request: SipRequest;
  /** Where to send it (first loose Route, else the Request-URI). */
  nextHop: SipUri;
  callId: string;
  fromTag: string;
}

function nameAddrText(v: string | NameAddr): string {
  return typeof v === 'string' ? v : serializeNameAddr(v);
}

/**
 * Builds a request outside any dialog (RFC 3261 §8.1.1): Request-URI and Route from the route
 * set, To, From with a new tag, Call-ID, CSeq, Max-Forwards, Contact, then the extra headers and
 * the body. Content-Length is left to the serialiser.
 *
 * @throws SipParseError when `requestUri`, a route or a name-addr given as text is malformed
 *   (these come from configuration or the caller, not from the network).
 */
export function buildRequest(opts: BuildRequestOptions): BuiltRequest {
  const target = typeof opts.requestUri === 'string' ? parseUri(opts.requestUri) : opts.requestUri;
  const routed = routeRequest(target, opts.routeSet ?? []);
  let from = nameAddrText(opts.from);
  let fromTag = tagOf(from);
  if (fromTag === undefined) {
    fromTag = newTag(opts.random);
    from = `${from};tag=${fromTag}`;
  }
  const callId = opts.callId ?? newCallId(opts.random);
  const headers = new Headers();
  if (opts.via !== undefined) headers.append('Via', opts.via);
  headers.append('Max-Forwards', String(opts.maxForwards ?? DEFAULT_MAX_FORWARDS));
  if (routed.routes.length > 0) headers.append('Route', routed.routes.join(', '));
  headers.append('To', nameAddrText(opts.to));
  headers.append('From', from);
  headers.append('Call-ID', callId);
  headers.append('CSeq', `${opts.cseq ?? 1} ${opts.method}`);
  if (opts.contact !== undefined) headers.append('Contact', opts.contact);
  for (const [name, value] of opts.extraHeaders ?? []) headers.append(name, value);
  const body = opts.body ?? Buffer.alloc(0);
  if (body.length > 0 && opts.contentType !== undefined) headers.set('Content-Type', opts.contentType);
  return {
    request: createRequest(opts.method, routed.requestUri, headers, body),
    nextHop: routed.nextHop,
    callId,
    fromTag,
  };
}

/** Options of {@link buildResponse}. */
export interface BuildResponseOptions {
  /**
   * The To tag to add when the request's To has none. Defaults to a tag derived from the
   * request's Call-ID, From tag, top Via branch and CSeq, so every response to one request (and
   * to its retransmissions) carries the same tag, as §8.2.6.2 requires.
   */
  toTag?: string;
  /** Further header fields appended after the copied ones (Contact, Allow, Warning, ...). */
  headers?: Iterable<readonly [string, string]>;
  /**
   * Copy Record-Route from the request (§12.1.1: a response that establishes a dialog "MUST copy
   * all Record-Route header field values from the request"). Defaults to true for 101-299.
   */
  copyRecordRoute?: boolean;
  body?: Buffer;
  contentType?: string;
}

/** The deterministic default To tag of {@link BuildResponseOptions.toTag}. */
export function derivedToTag(request: SipRequest): string {
  const h = request.headers;
  const material = [h.get('Call-ID'), h.get('From'), h.getAll('Via')[0], h.get('CSeq'), request.uri]
    .map((v) => v ?? '')
    .join('\n');
  return createHash('sha256').update(material, 'latin1').digest('hex').slice(0, TAG_LENGTH);
}

/**
 * Builds a response to a request as a UAS (RFC 3261 §8.2.6): copies every Via in order, From,
 * To (adding a tag unless the status is 100 or the To is already tagged, §8.2.6.2), Call-ID and
 * CSeq; a 100 (Trying) also copies Timestamp (§8.2.6.1). Works on a request that lacks any of
 * these headers (copies what exists) and never throws, so it can answer malformed requests.
 */
export function buildResponse(
  request: SipRequest,
  status: number,
  reason?: string,
  opts: BuildResponseOptions = {},
): SipResponse {
  const h = new Headers();
  for (const f of request.headers) if (f.key === 'via') h.append('Via', f.value);
  const copyRecordRoute = opts.copyRecordRoute ?? (status > 100 && status < 300);
  if (copyRecordRoute) {
    for (const f of request.headers) if (f.key === 'record-route') h.append('Record-Route', f.value);
  }
  const from = request.headers.get('From');
  if (from !== undefined) h.append('From', from);
  const to = request.headers.get('To');
  if (to !== undefined) {
    const needsTag = status !== 100 && tagOf(to) === undefined;
    h.append('To', needsTag ? `${to};tag=${opts.toTag ?? derivedToTag(request)}` : to);
  }
  for (const name of ['Call-ID', 'CSeq']) {
    const v = request.headers.get(name);
    if (v !== undefined) h.append(name, v);
  }
  if (status === 100) {
    const ts = request.headers.get('Timestamp');
    if (ts !== undefined) h.append('Timestamp', ts);
  }
  for (const [name, value] of opts.headers ?? []) h.append(name, value);
  const body = opts.body ?? Buffer.alloc(0);
  if (body.length > 0 && opts.contentType !== undefined) h.set('Content-Type', opts.contentType);
  return createResponse(status, reason ?? reasonPhrase(status), h, body);
}

