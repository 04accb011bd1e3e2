import { Headers } from '../message/headers.ts';
import { createRequest, type SipRequest } from '../message/message.ts';

/**
 * A request that belongs to the transaction of an earlier request: the CANCEL of a pending
 * request (RFC 3261 §9.1) or the ACK of a non-2xx final response to INVITE (§17.1.1.3).
 *
 * §9.1: "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the
 * CANCEL request MUST be identical to those in the request being cancelled, including tags. A
 * CANCEL constructed by a client MUST have only a single Via header field value matching the top
 * Via value in the request being cancelled." §17.1.1.3 says the same of the ACK, except that
 * "the To header field in the ACK MUST equal the To header field in the response being
 * acknowledged" (pass it as `to`). Both carry the Route header fields of the original request.
 * Never throws: copies what the original has.
 */
export function sameTransactionRequest(original: SipRequest, method: 'CANCEL' | 'ACK', to?: string): SipRequest {
  const headers = new Headers();
  const topVia = original.headers.getAll('Via')[0];
  if (topVia !== undefined) headers.append('Via', topVia);
  headers.append('Max-Forwards', '70');
  for (const f of original.headers) if (f.key === 'route') headers.append('Route', f.value);
  const from = original.headers.get('From');
  if (from !== undefined) headers.append('From', from);
  const toValue = to ?? original.headers.get('To');
  if (toValue !== undefined) headers.append('To', toValue);
  const callId = original.headers.get('Call-ID');
  if (callId !== undefined) headers.append('Call-ID', callId);
  const seq = /^\s*(\d+)/.exec(original.headers.get('CSeq') ?? '')?.[1];
  if (seq !== undefined) headers.append('CSeq', `${seq} ${method}`);
  return createRequest(method, original.uri, headers);
}

/**
 * The CANCEL for a pending request (§9.1). Send it with `sendRequest` to the original's
 * destination: a CANCEL is a non-INVITE client transaction of its own, and its branch (the
 * original's) lets the UAS match it to the INVITE (§9.2).
 */
export function buildCancel(request: SipRequest): SipRequest {
  return sameTransactionRequest(request, 'CANCEL');
}
