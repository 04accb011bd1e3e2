import { defaultPort, type ConnectionId, type Endpoint } from './transport.ts';

/** The parts of the top Via of a request that decide where its responses go. */
export interface ViaForResponse {
  /** Transport token of the Via (`UDP`, `TCP`, `TLS`, ...); informational, the socket decides. */
  transport: string;
  /** sent-by host: domain name, IPv4 address, or IPv6 reference (brackets allowed). */
  host: string;
  port?: number;
  received?: string;
  /** RFC 3581: `null` for a bare `rport`, the number once the server filled it in. */
  rport?: number | null;
  maddr?: string;
}

/**
 * Where to send a response: an endpoint plus, for a reliable transport, the connection the
 * request arrived on. Pass `connectionId` to `TransportLayer.send`; when that connection has
 * closed the layer connects to the endpoint instead.
 */
export type ResponseDestination = Endpoint & { connectionId?: ConnectionId };

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function familyOf(address: string): 4 | 6 | undefined {
  if (address.includes(':')) return 6;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return 4;
  return undefined;
}

function endpoint(source: Endpoint, host: string, port: number, connectionId?: ConnectionId): ResponseDestination {
  const address = stripBrackets(host);
  const family = familyOf(address);
  const out: ResponseDestination = { transport: source.transport, address, port };
  if (family) out.family = family;
  if (connectionId !== undefined) out.connectionId = connectionId;
  return out;
}

/**
 * Chooses where a server transport sends a response (RFC 3261 §18.2.2 with RFC 3581 §4), given
 * the top Via of the request (after the server added `received`/`rport`, or before: both work)
 * and the socket endpoint the request came from. Pure: a domain name in the result still needs
 * RFC 3263 §5 resolution by the caller.
 */
export function responseDestination(via: ViaForResponse, source: Endpoint, connection?: ConnectionId): ResponseDestination {
  const sentByPort = via.port ?? defaultPort(source.transport);
  const receivedHost = via.received ?? source.address;

  if (source.transport !== 'udp') {
    // §18.2.2: "If the "sent-protocol" is a reliable transport protocol such as TCP or SCTP, or TLS
    // over those, the response MUST be sent using the existing connection to the source of the
    // original request ... If that connection is no longer open, the server SHOULD open a
    // connection to the IP address in the "received" parameter, if present, using the port in the
    // "sent-by" value, or the default port for that transport, if no port is specified."
    if (connection === undefined) return endpoint(source, source.address, source.port);
    return endpoint(source, receivedHost, sentByPort, connection);
  }

  if (via.maddr !== undefined) {
    // §18.2.2: "if the Via header field value contains a "maddr" parameter, the response MUST be
    // forwarded to the address listed there, using the port indicated in "sent-by", or port 5060
    // if none is present."
    return endpoint(source, via.maddr, sentByPort);
  }

  if (via.rport !== undefined) {
    // RFC 3581 §4: "the server MUST ... send the response to the IP address from which the request
    // was received, ... to the port from which the request was received" (the rport value once
    // filled in, the source port otherwise).
    return endpoint(source, receivedHost, via.rport ?? source.port);
  }

  if (via.received !== undefined) {
    // §18.2.2: "if it is not receiver-tagged [maddr], and the top Via has a "received" parameter,
    // the response MUST be sent to the address in the "received" parameter, using the port
    // indicated in the "sent-by" value, or using port 5060 if none is specified explicitly."
    return endpoint(source, via.received, sentByPort);
  }

  // §18.2.2: "Otherwise ... the response MUST be sent to the address indicated by the "sent-by"
  // value, using the procedures in Section 5 of [4] (RFC 3263)." No received parameter means
  // sent-by equals the source address.
  return endpoint(source, via.host, sentByPort);
}
