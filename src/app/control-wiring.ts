/**
 * What the CLI can ask of the running gateway over the control socket (src/control/), wired for
 * the composition root (gateway.ts): the device commands, `reload`, `peers`, and `status` with
 * its {@link StatusReport} (status-report.ts, gathered by status-inputs.ts). Every part is read
 * through an accessor at the time of the command, so a part made or replaced later (a reload's
 * trunks, discovery started after the control server) is what the command sees.
 */
import type { CallSummary } from '../calls/b2bua.ts';
import type { MessageInbox } from '../calls/message-inbox.ts';
import type { Config } from '../config/config.ts';
import type { ControlCommands, ControlReply } from '../control/control-protocol.ts';
import type { DeviceEndpoint } from '../device/device-endpoint.ts';
import type { SubscriptionSummary } from '../presence/subscription.ts';
import type { Binding } from '../registrar/binding-store.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Endpoint } from '../sip/transport/transport.ts';
import type { RegistrationStatus } from '../sip/ua/registration-options.ts';
import type { LanDiscovery } from './discovery-wiring.ts';
import { systemInterfaces } from './local-address.ts';
import type { Phone } from './phone-wiring.ts';
import { gatewayStatusInputs } from './status-inputs.ts';
import { statusReport, type StatusReport, type TrunkInput } from './status-report.ts';

/** The gateway's parts as the control commands read them; each accessor is called per command. */
export interface ControlParts {
  /** The running config (a reload changes it in place). */
  config: Config;
  clock: Clock;
  /** When the gateway started (wall-clock ms), for the uptime. */
  startedAt(): number;
  /** The device endpoint; the control server starts after it exists. */
  device(): DeviceEndpoint;
  phone(): Phone | undefined;
  lan(): LanDiscovery | undefined;
  calls(): CallSummary[];
  registrations(): RegistrationStatus[];
  /** The bound SIP endpoints. */
  endpoints(): Endpoint[];
  /** What STUN answered, or why it did not. */
  stun(): { address?: string; error?: string };
  trunks(): TrunkInput[];
  bindings(): Binding[];
  /** The presence subscriptions (SUBSCRIBE/NOTIFY) in force. */
  subscriptions(): SubscriptionSummary[];
  /** The messages delivered to the device. */
  inbox: MessageInbox;
  reload(): Promise<ControlReply>;
}

/** The {@link ControlCommands} of a gateway made of `parts`. */
export function controlCommands(parts: ControlParts): ControlCommands {
  const { device } = parts;
  return {
    call: (number: string): Promise<ControlReply> => device().dial(number),
    answer: (): ControlReply => device().answer(),
    hangup: (): ControlReply => device().hangup(),
    dtmf: (digits: string): ControlReply => device().sendDigits(digits),
    reload: (): Promise<ControlReply> => parts.reload(),
    peers: (): ControlReply => ({ ok: true, discovery: parts.lan()?.discovery.status() ?? { enabled: false }, peers: parts.lan()?.peers.list() ?? [] }),
    status: (): ControlReply => {
      const d = device().status();
      if (!d.ok) return d;
      const phone = parts.phone();
      return {
        ...d,
        ...(phone ? { board: phone.profile.name, phone: phone.state() } : {}),
        calls: parts.calls().map((c) => `${c.from}->${c.to}:${c.state}`).join(' '),
        registrations: parts.registrations().map((r) => `${r.trunk}:${r.state}`).join(' '),
        messages: parts.inbox.list(),
        report: gatewayStatusReport(parts, d),
      };
    },
  };
}

/** `hookswitch status`: what every part of the gateway says now; `device` is the endpoint's status reply. */
function gatewayStatusReport(parts: ControlParts, device: Record<string, unknown>): StatusReport {
  const lan = parts.lan();
  const discovery = lan?.discovery.status();
  const phone = parts.phone();
  const inputs = gatewayStatusInputs({
    config: parts.config,
    startedAt: parts.startedAt(),
    ...(discovery ? { discovery } : {}),
    listening: parts.endpoints(),
    localAddresses: systemInterfaces().filter((i) => !i.internal).map((i) => i.address),
    stun: parts.stun(),
    trunks: parts.trunks(),
    registrations: parts.registrations(),
    bindings: parts.bindings(),
    calls: parts.calls(),
    device,
    ...(phone ? { phone } : {}),
    ...(lan ? { peers: lan.peers.list() } : {}),
    subscriptions: parts.subscriptions(),
  });
  return statusReport(inputs, parts.clock.wallNow());
}
