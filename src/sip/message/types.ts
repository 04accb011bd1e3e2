/**
 * Typed views of SIP URIs and header values. Parsing functions live in `uri.ts` and
 * `header-values.ts`; they take byte-string values (see `headers.ts`) and throw
 * `SipParseError` with a stable code on malformed input.
 */

/** A SIP/SIPS URI (RFC 3261 §19.1) or a tel URI (RFC 3966). */
export interface SipUri {
  scheme: 'sip' | 'sips' | 'tel';
  /** User part with %-escapes decoded exactly once; undefined when absent. For tel: the number. */
  user?: string;
  /** Password part (deprecated, §19.1.1), decoded. */
  password?: string;
  /** Host: a domain name (lower-cased), an IPv4 address, or an IPv6 reference with its brackets. */
  host: string;
  port?: number;
  /** uri-parameters in order; keys lower-cased, values decoded (null for a flag like `;lr`). */
  params: Map<string, string | null>;
  /** URI headers (`?a=b&c=d`), decoded, in order. */
  headers: Map<string, string>;
}

/** A name-addr or addr-spec (From, To, Contact, Route, Record-Route, Refer-To, ...). */
export interface NameAddr {
  /** Display name, unquoted and unescaped, as a byte string; undefined when absent. */
  displayName?: string;
  uri: SipUri;
  /** Header parameters (after the URI; for addr-spec form, after the URI per §20), keys lower-cased. */
  params: Map<string, string | null>;
}

/** A Contact value: `*` or a name-addr. */
export type ContactValue = { star: true } | ({ star: false } & NameAddr);

/** One Via value (RFC 3261 §20.42, RFC 3581). */
export interface Via {
  /** Protocol name and version, normally `SIP` and `2.0`. */
  protocol: string;
  /** Transport upper-cased: UDP, TCP, TLS, SCTP, WS, WSS, or anything else received. */
  transport: string;
  /** sent-by host: domain, IPv4, or bracketed IPv6 reference. */
  host: string;
  port?: number;
  /** branch parameter, or undefined. */
  branch?: string;
  received?: string;
  /** `rport` present without a value is null; with a value, the number. Absent: undefined. */
  rport?: number | null;
  maddr?: string;
  ttl?: number;
  /** All parameters in order, keys lower-cased. */
  params: Map<string, string | null>;
}

export interface CSeq {
  seq: number;
  method: string;
}

/** A WWW-/Proxy-Authenticate or Authorization/Proxy-Authorization value. */
export interface AuthValue {
  /** Scheme as received, e.g. `Digest`. */
  scheme: string;
  /** Parameters with lower-cased keys; quoted values unquoted. */
  params: Map<string, string>;
}
