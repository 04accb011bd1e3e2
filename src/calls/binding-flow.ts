/**
 * Where a registered phone is reached: the flow its REGISTER came from (the NAT path, RFC 3581
 * §4 / RFC 5626 §5.3's "flow"), else the host of its Contact when that is an IP address.
 * Pure. The same rule as the B2BUA's INVITE forks, so a MESSAGE reaches the phone where a call
 * would.
 */
import type { Binding } from '../registrar/binding-store.ts';
import { parseUri } from '../sip/message/uri.ts';
import type { Destination } from '../sip/transaction/types.ts';

function transportOf(name: string | undefined): Destination['transport'] | undefined {
  const t = (name ?? 'udp').toLowerCase();
  return t === 'udp' || t === 'tcp' || t === 'tls' ? t : undefined;
}

function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('[');
}

/**
 * The destination of requests to `binding`, or undefined when there is none we can use (a
 * Contact naming a host name or an unknown transport, and no recorded source). Default ports:
 * 5060, and 5061 for TLS (RFC 3261 §19.1.2).
 */
export function bindingFlow(binding: Binding): Destination | undefined {
  if (binding.source) {
    const transport = transportOf(binding.source.transport);
    if (transport) return { transport, address: binding.source.address, port: binding.source.port };
  }
  try {
    const uri = parseUri(binding.contact);
    const transport = transportOf(uri.params.get('transport') ?? (uri.scheme === 'sips' ? 'tls' : 'udp'));
    if (!transport || !isIpLiteral(uri.host)) return undefined;
    return { transport, address: uri.host.replace(/^\[|\]$/g, ''), port: uri.port ?? (transport === 'tls' ? 5061 : 5060) };
  } catch {
    return undefined;
  }
}
