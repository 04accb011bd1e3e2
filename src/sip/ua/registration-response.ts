/**
 * Pure helpers for the trunk registration client: reading what a REGISTER response grants
 * (RFC 3261 §10.2.4), when to refresh, Retry-After, and host/port splitting.
 */
import { parseContact, parseUint } from '../message/header-values.ts';
import type { SipResponse } from '../message/message.ts';
import type { SipUri } from '../message/types.ts';
import { uriEquals } from '../message/uri-equals.ts';

/** Shortest refresh interval, unless the binding itself is shorter (then expiry − 5 s). */
export const MIN_REFRESH_S = 30;

/** Splits `host`, `host:port`, `[v6]` or `[v6]:port`. A bare IPv6 address has no port. */
export function splitHostPort(text: string): { host: string; port?: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) return v6[2] ? { host: v6[1]!, port: Number(v6[2]) } : { host: v6[1]! };
  const m = /^([^:]+):(\d+)$/.exec(text);
  if (m) return { host: m[1]!, port: Number(m[2]) };
  return { host: text };
}

/**
 * The lifetime the registrar granted (§10.2.4): the `expires` parameter of the Contact in the
 * 200 that matches ours (§19.1.4 URI equality), else the Expires header, else what we asked for.
 */
export function grantedExpires(res: SipResponse, ours: SipUri, requested: number): number {
  for (const value of res.headers.getAll('contact')) {
    try {
      const c = parseContact(value);
      if (c.star || !uriEquals(c.uri, ours)) continue;
      const e = c.params.get('expires');
      if (e !== undefined && e !== null) return parseUint(e, 0xffffffff);
    } catch {
      // Somebody else's malformed binding: not ours.
    }
  }
  return uintHeader(res, 'expires') ?? requested;
}

/**
 * When to refresh a binding of `granted` seconds: at half its life, but not sooner than 30 s
 * unless the binding is so short that 30 s would miss it (then 5 s before it ends).
 */
export function refreshDelaySeconds(granted: number): number {
  return Math.max(granted / 2, Math.min(MIN_REFRESH_S, granted - 5), 1);
}

export function uintHeader(res: SipResponse, name: string): number | undefined {
  const v = res.headers.get(name);
  if (v === undefined) return undefined;
  try {
    return parseUint(v, 0xffffffff);
  } catch {
    return undefined;
  }
}

/** Retry-After in ms (RFC 3261 §20.33) for 5xx/6xx/4xx answers that carry one, capped at 1 h. */
export function retryAfterMs(res: SipResponse): number | undefined {
  const v = res.headers.get('retry-after');
  if (v === undefined) return undefined;
  const m = /^[ \t]*(\d{1,7})/.exec(v);
  return m ? Math.min(Number(m[1]), 3600) * 1000 : undefined;
}

export function statusText(res: SipResponse): string {
  return `${res.status} ${res.reason}`;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
