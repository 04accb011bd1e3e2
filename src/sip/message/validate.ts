import { SipParseError } from './errors.ts';
import { parseCSeq, parseNameAddr, parseUint, parseVia } from './header-values.ts';
import type { SipRequest, SipResponse } from './message.ts';
import type { CSeq, SipUri, Via } from './types.ts';
import { parseUri } from './uri.ts';

/** Headers that may appear at most once (RFC 3261 §7.3.1: only list headers may repeat). */
const SINGLE_VALUED = ['from', 'to', 'call-id', 'cseq', 'max-forwards', 'content-type'] as const;

/** The pieces every later layer needs, parsed once by validation. */
export interface ValidatedRequest {
  uri: SipUri;
  via: Via;
  cseq: CSeq;
  callId: string;
  fromTag?: string;
  toTag?: string;
  /** Max-Forwards, or undefined when absent (RFC 2543 peers omit it). */
  maxForwards?: number;
}

export interface ValidateOptions {
  /** Methods this element implements; others get 501 (RFC 3261 §8.2.1). */
  knownMethods: ReadonlySet<string>;
}

/**
 * Checks a parsed request for what RFC 3261 §8.2 and §16.3 require before it is processed,
 * throwing {@link SipParseError} carrying the response status: 400 for missing or malformed
 * mandatory headers, repeated single-valued headers, overlarge scalars (CSeq > 2^32-1) and a
 * CSeq method that differs from the request method; 501 for an unknown method (checked before
 * the CSeq method match, as RFC 4475 §3.1.2.18 prefers); 416 for a Request-URI scheme other than
 * sip, sips or tel.
 */
export function validateRequest(req: SipRequest, opts: ValidateOptions): ValidatedRequest {
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq'] as const) {
    if (!req.headers.has(name)) throw new SipParseError('missing-header', `missing mandatory header ${name}`);
  }
  for (const name of SINGLE_VALUED) {
    if (req.headers.count(name) > 1) throw new SipParseError('repeated-header', `header ${name} appears more than once`);
  }
  // The top Via decides transaction matching and where responses go (§17.2.3, §18.2.2); the
  // others are only echoed back in responses, so they are not parsed here.
  const topValue = req.headers.getAll('via')[0];
  if (topValue === undefined) throw new SipParseError('missing-header', 'missing mandatory header via');
  const via: Via = parseVia(topValue);

  const cseq = parseCSeq(req.headers.get('cseq')!);
  const fromTag = nameAddrTag(req.headers.get('from')!, 'from');
  const toTag = nameAddrTag(req.headers.get('to')!, 'to');
  for (const contact of req.headers.getAll('contact')) {
    if (contact !== '*') nameAddrTag(contact, 'contact');
  }

  const mfText = req.headers.get('max-forwards');
  const maxForwards = mfText === undefined ? undefined : parseUint(mfText, 255);

  if (!opts.knownMethods.has(req.method)) {
    throw new SipParseError('unknown-method', `method ${req.method} is not implemented`, 501);
  }
  if (cseq.method !== req.method) {
    throw new SipParseError('cseq-mismatch', `CSeq method ${cseq.method} does not match ${req.method}`);
  }

  const uri = parseUri(req.uri);
  if (uri.headers.size > 0) {
    // §19.1.1: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11: 400 is acceptable).
    throw new SipParseError('request-uri-headers', 'the Request-URI carries URI headers');
  }
  return { uri, via, cseq, callId: req.headers.get('call-id')!, fromTag, toTag, maxForwards };
}

/** A From/To value's tag; URIs of schemes we do not route on are allowed here (§8.1.1.2). */
function nameAddrTag(value: string, header: string): string | undefined {
  try {
    const parsed = parseNameAddr(value);
    const tag = parsed.params.get('tag');
    return tag ?? undefined;
  } catch (e) {
    if (e instanceof SipParseError && e.code === 'unsupported-uri-scheme') return undefined;
    if (e instanceof SipParseError) throw new SipParseError(e.code, `${header}: ${e.message}`, 400);
    throw e;
  }
}

/**
 * Checks a parsed response. Malformed responses are dropped by the caller (there is nobody to
 * answer), so every fault is a plain SipParseError.
 */
export function validateResponse(res: SipResponse): { via: Via; cseq: CSeq } {
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq'] as const) {
    if (!res.headers.has(name)) throw new SipParseError('missing-header', `missing mandatory header ${name}`);
  }
  if (res.version.toUpperCase() !== 'SIP/2.0') throw new SipParseError('unsupported-version', `version ${res.version}`);
  const via = parseVia(res.headers.getAll('via')[0] ?? '');
  const cseq = parseCSeq(res.headers.get('cseq')!);
  return { via, cseq };
}
