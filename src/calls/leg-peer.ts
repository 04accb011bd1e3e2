/**
 * Who a call leg reaches and over which transports, for the media session's SRTP policy
 * (`src/media/srtp-policy.ts`): keys travel only where every path of the leg is TLS.
 */
import type { ForkSpec } from './call.ts';
import type { LegPeerInfo } from './types.ts';

/** The callee leg of `specs` (one INVITE per fork): every fork's transport and the party they reach. */
export function forksPeer(specs: readonly ForkSpec[]): LegPeerInfo {
  return { transports: specs.map((s) => s.flow.transport), ...(specs[0]?.party ?? {}) };
}
