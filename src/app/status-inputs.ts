/**
 * Gathers what the gateway's parts say into the {@link StatusInputs} of `hookswitch status`
 * (status-report.ts): the config's identity and STUN settings, and the device endpoint's
 * status reply mapped to a {@link DeviceInput}. Pure: the composition root reads its parts and
 * hands the values in.
 */
import pkg from '../../package.json' with { type: 'json' };
import type { CallSummary } from '../calls/b2bua.ts';
import type { Config } from '../config/config.ts';
import type { DiscoveryStatus } from '../discovery/mdns-discovery.ts';
import type { SubscriptionSummary } from '../presence/subscription.ts';
import type { Binding } from '../registrar/binding-store.ts';
import type { Endpoint } from '../sip/transport/transport.ts';
import type { RegistrationStatus } from '../sip/ua/registration-options.ts';
import type { Phone } from './phone-wiring.ts';
import type { DeviceInput, StatusInputs, TrunkInput } from './status-report.ts';

/** What the gateway's parts say now, in the order the gateway reads them. */
export interface GatewayParts {
  config: Config;
  /** When the gateway started (wall-clock ms). */
  startedAt: number;
  /** The mDNS status, when discovery runs (read before the rest). */
  discovery?: DiscoveryStatus;
  listening: Endpoint[];
  /** This box's external interface addresses. */
  localAddresses: string[];
  /** What STUN answered, or why it did not. */
  stun: { address?: string; error?: string };
  trunks: TrunkInput[];
  registrations: RegistrationStatus[];
  bindings: Binding[];
  calls: CallSummary[];
  /** The device endpoint's `status()` reply. */
  device: Record<string, unknown>;
  phone?: Phone;
  peers?: { name: string; isHookswitch: boolean }[];
  /** The presence subscriptions in force. */
  subscriptions?: SubscriptionSummary[];
}

/** The {@link StatusInputs} for `statusReport` from the gateway's parts. */
export function gatewayStatusInputs(p: GatewayParts): StatusInputs {
  const { config, device } = p;
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const stunServer = config.media.publicAddress ? undefined : config.media.stunServer;
  const { discovery } = p;
  const deviceInput: DeviceInput = {
    extension: config.device.extension,
    state: text(device.device) ?? 'unknown',
    ...(text(device.call) !== undefined ? { call: text(device.call)!, remote: text(device.remote) ?? '' } : {}),
    ...(typeof device.seconds === 'number' ? { seconds: device.seconds } : {}),
    ...(text(device.others) !== undefined ? { others: text(device.others)! } : {}),
    ...(text(device.digits) !== undefined ? { digits: text(device.digits)! } : {}),
  };
  return {
    version: pkg.version,
    domain: config.sip.domain,
    startedAt: p.startedAt,
    listening: p.listening,
    localAddresses: p.localAddresses,
    ...(config.media.publicAddress ? { configuredPublicAddress: config.media.publicAddress } : {}),
    ...(stunServer ? { stun: { server: stunServer, ...p.stun } } : {}),
    trunks: p.trunks,
    registrations: p.registrations,
    bindings: p.bindings,
    calls: p.calls,
    device: deviceInput,
    ...(p.phone ? { phone: { board: p.phone.profile.name, mode: p.phone.profile.mode, state: p.phone.state(), relayOn: p.phone.relayOn() } } : {}),
    ...(p.peers ? { peers: p.peers } : {}),
    ...(p.subscriptions ? { subscriptions: p.subscriptions } : {}),
    ...(discovery ? { discovery: { name: discovery.name, ...(discovery.error ? { error: discovery.error } : {}) } } : {}),
  };
}
