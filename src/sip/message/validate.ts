import { SipParseError } from './errors.ts';
import { firstListValue, splitList, type HeaderField, type Headers } from './headers.ts';
import { checkNameAddr, parseCSeq, parseUint, parseVia } from './header-values.ts';
import type { SipRequest, SipResponse } from './message.ts';
import type { CSeq, SipUri, Via } from './types.ts';
import { parseUri } from './uri.ts';

/** Headers that may appear at most once (RFC 3261 §7.3.1: only list headers may repeat). */
const SINGLE_VALUED = ['from', 'to', 'call-id', 'cseq', 'max-forwards', 'content-type'] as const;

/** The mandatory headers of every request and response (RFC 3261 §8.1.1), in reporting order. */
const MANDATORY = ['via', 'from', 'to', 'call-id', 'cseq'] as const;

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
 * What validation reads from the header fields, gathered in one pass over them (instead of one
 * lookup per header): the first value of each mandatory or single-valued header (as
 * `headers.get` gives it), the top Via and the Contact fields.
 */
interface HeaderScan {
  via: string | undefined;
  from: string | undefined;
  to: string | undefined;
  callId: string | undefined;
  cseq: string | undefined;
  maxForwards: string | undefined;
  /** The first single-valued header (in SINGLE_VALUED order) that appears more than once. */
  repeated: string | undefined;
  /** The top Via value (`headers.getAll('via')[0]`). */
  topVia: string | undefined;
  contacts: HeaderField[];
}

function scanHeaders(headers: Headers): HeaderScan {
  const scan: HeaderScan = {
    via: undefined,
    from: undefined,
    to: undefined,
    callId: undefined,
    cseq: undefined,
    maxForwards: undefined,
    repeated: undefined,
    topVia: undefined,
    contacts: [],
  };
  // Occurrences of each SINGLE_VALUED header, by its index there.
  const counts = [0, 0, 0, 0, 0, 0];
  for (const f of headers) {
    switch (f.key) {
      case 'via':
        scan.via ??= f.value;
        scan.topVia ??= firstListValue(f.value);
        break;
      case 'contact':
        scan.contacts.push(f);
        break;
      case 'from':
        scan.from ??= f.value;
        counts[0]!++;
        break;
      case 'to':
        scan.to ??= f.value;
        counts[1]!++;
        break;
      case 'call-id':
        scan.callId ??= f.value;
        counts[2]!++;
        break;
      case 'cseq':
        scan.cseq ??= f.value;
        counts[3]!++;
        break;
      case 'max-forwards':
        scan.maxForwards ??= f.value;
        counts[4]!++;
        break;
      case 'content-type':
        counts[5]!++;
        break;
    }
  }
  for (let k = 0; k < counts.length; k++) {
    if (counts[k]! > 1) {
      scan.repeated = SINGLE_VALUED[k];
      break;
    }
  }
  return scan;
}

function checkMandatory(scan: HeaderScan): void {
  const present = [scan.via, scan.from, scan.to, scan.callId, scan.cseq];
  for (let k = 0; k < MANDATORY.length; k++) {
    if (present[k] === undefined) throw new SipParseError('missing-header', `missing mandatory header ${MANDATORY[k]}`);
  }
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
  const scan = scanHeaders(req.headers);
  checkMandatory(scan);
  if (scan.repeated !== undefined) {
    throw new SipParseError('repeated-header', `header ${scan.repeated} appears more than once`);
  }
  // The top Via decides transaction matching and where responses go (§17.2.3, §18.2.2); the
  // others are only echoed back in responses, so they are not parsed here.
  if (scan.topVia === undefined) throw new SipParseError('missing-header', 'missing mandatory header via');
  const via: Via = parseVia(scan.topVia);

  const cseq = parseCSeq(scan.cseq!);
  const fromTag = nameAddrTag(scan.from!, 'from');
  const toTag = nameAddrTag(scan.to!, 'to');
  for (const field of scan.contacts) {
    for (const contact of splitList(field.value)) {
      if (contact !== '*') nameAddrTag(contact, 'contact');
    }
  }

  const mfText = scan.maxForwards;
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
  return { uri, via, cseq, callId: scan.callId!, fromTag, toTag, maxForwards };
}

/**
 * A From/To/Contact value's tag, checked without building its structure (checkNameAddr accepts
 * exactly what parseNameAddr does). URIs of schemes we do not route on are allowed here (§8.1.1.2).
 */
function nameAddrTag(value: string, header: string): string | undefined {
  try {
    return checkNameAddr(value) ?? undefined;
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
  const scan = scanHeaders(res.headers);
  checkMandatory(scan);
  if (res.version.toUpperCase() !== 'SIP/2.0') throw new SipParseError('unsupported-version', `version ${res.version}`);
  const via = parseVia(scan.topVia ?? '');
  const cseq = parseCSeq(scan.cseq!);
  return { via, cseq };
}
