import { Headers } from '../message/headers.ts';
import { parseCSeq } from '../message/header-values.ts';
import { createRequest, type SipRequest } from '../message/message.ts';

/**
 * The CANCEL for a pending INVITE (RFC 3261 §9.1): "The Request-URI, Call-ID, To, the numeric
 * part of CSeq, and From header fields in the CANCEL request MUST be identical to those in the
 * request being cancelled, including tags. A CANCEL constructed by a client MUST have only a
 * single Via header field value matching the top Via value in the request being cancelled."
 * "If the request being cancelled contains a Route header field, the CANCEL request MUST include
 * that Route header field's values." The same branch makes the UAS match it to the INVITE
 * (§9.2); send it with `sendRequest` to the INVITE's destination (a CANCEL is a non-INVITE
 * client transaction of its own).
 */
export function createCancel(invite: SipRequest): SipRequest {
  const headers = new Headers();
  const via = invite.headers.getAll('Via')[0];
  if (via !== undefined) headers.append('Via', via);
  const routes = invite.headers.getAll('Route');
  if (routes.length > 0) headers.append('Route', routes.join(', '));
  headers.append('Max-Forwards', '70');
  for (const name of ['From', 'To', 'Call-ID']) {
    const value = invite.headers.get(name);
    if (value !== undefined) headers.append(name, value);
  }
  headers.append('CSeq', `${parseCSeq(invite.headers.get('CSeq') ?? '').seq} CANCEL`);
  return createRequest('CANCEL', invite.uri, headers);
}
