/**
 * Typed views of the headers whose value is one leading item plus parameters: Content-Type
 * (RFC 3261 §20.15), Event (RFC 6665 §8.2.1) and Session-Expires (RFC 4028 §4). Values are byte
 * strings; faults throw SipParseError with a stable code.
 */
import { SipParseError } from './errors.ts';
import { trimWs } from './headers.ts';
import { isToken, parseParams } from './params.ts';
import { parseUint } from './header-values.ts';

/** Splits `lead;params` at the first `;` (the lead parts here cannot hold quotes). */
function leadAndParams(value: string, code: string): { lead: string; params: Map<string, string | null> } {
  const semi = value.indexOf(';');
  const lead = trimWs(semi < 0 ? value : value.slice(0, semi));
  if (lead === '') throw new SipParseError(code, 'empty header value');
  let params: Map<string, string | null>;
  try {
    params = semi < 0 ? new Map() : parseParams(value.slice(semi));
  } catch (e) {
    if (e instanceof SipParseError) throw new SipParseError(code, e.message);
    throw e;
  }
  return { lead, params };
}

export interface ContentType {
  /** Lower-cased, e.g. `application`. */
  type: string;
  /** Lower-cased, e.g. `sdp`. */
  subtype: string;
  /** Parameters (`charset`, `boundary`, ...), keys lower-cased, quoted values kept quoted. */
  params: Map<string, string | null>;
}

/** `application/sdp;charset=utf-8` → type, subtype, params (media-type, RFC 3261 §20.15). */
export function parseContentType(value: string): ContentType {
  const { lead, params } = leadAndParams(value, 'bad-content-type');
  const slash = lead.indexOf('/');
  const type = slash < 0 ? '' : trimWs(lead.slice(0, slash));
  const subtype = slash < 0 ? '' : trimWs(lead.slice(slash + 1));
  if (!isToken(type) || !isToken(subtype)) throw new SipParseError('bad-content-type', 'Content-Type must be type/subtype');
  return { type: type.toLowerCase(), subtype: subtype.toLowerCase(), params };
}

export interface EventValue {
  /** The event package with its templates, e.g. `dialog` or `presence.winfo`. */
  event: string;
  /** The `id` parameter that tells subscriptions of one dialog apart, if any. */
  id?: string;
  params: Map<string, string | null>;
}

/** `dialog;id=7` → event and id (RFC 6665 §8.2.1: event-type is tokens joined by dots). */
export function parseEvent(value: string): EventValue {
  const { lead, params } = leadAndParams(value, 'bad-event');
  if (!lead.split('.').every(isToken)) throw new SipParseError('bad-event', 'Event must be a package name');
  const id = params.get('id');
  return { event: lead, ...(id ? { id } : {}), params };
}

export interface SessionExpires {
  /** The session interval in seconds. */
  seconds: number;
  /** Who refreshes the session, when the header says. */
  refresher?: 'uac' | 'uas';
  params: Map<string, string | null>;
}

/** `1800;refresher=uac` → interval and refresher (RFC 4028 §4: delta-seconds, refresher param). */
export function parseSessionExpires(value: string): SessionExpires {
  const { lead, params } = leadAndParams(value, 'bad-session-expires');
  const seconds = parseUint(lead, 2 ** 32 - 1, 'bad-session-expires');
  const refresher = params.get('refresher')?.toLowerCase();
  if (refresher !== undefined && refresher !== 'uac' && refresher !== 'uas') {
    throw new SipParseError('bad-session-expires', 'refresher must be uac or uas');
  }
  return { seconds, ...(refresher ? { refresher } : {}), params };
}
