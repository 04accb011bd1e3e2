/**
 * `hookswitch status`, in the spirit of FreeSWITCH's `sofia status`: what the gateway listens on,
 * its addresses, each trunk's registration, the registered phones, the presence subscriptions,
 * the calls with their media, the device and the LAN peers, as one typed {@link StatusReport}. Pure: the composition root
 * hands in what its parts say ({@link StatusInputs}) and the wall-clock `now`; the CLI renders
 * the report (`src/cli/status-format.ts`) or prints it as JSON.
 */
import type { CallLegSummary, CallSummary } from '../calls/b2bua.ts';
import type { LegMediaStats } from '../calls/types.ts';
import type { SubscriptionSummary } from '../presence/subscription.ts';
import type { Binding } from '../registrar/binding-store.ts';
import type { Endpoint } from '../sip/transport/transport.ts';
import { formatHostPort } from '../sip/transport/transport.ts';
import type { RegistrationStatus } from '../sip/ua/registration-options.ts';

/** A configured trunk, as far as `status` shows it (never its password). */
export interface TrunkInput {
  name: string;
  host: string;
  port: number;
  transport: 'udp' | 'tcp' | 'tls';
  username: string;
  register: boolean;
}

/** The device endpoint's own status fields (`DeviceEndpoint.status()`), as far as the report uses them. */
export interface DeviceInput {
  /** The device's extension number (`device.extension`). */
  extension: string;
  /** `idle`, `ringing`, `dialing`, `connected` or `held`. */
  state: string;
  call?: string;
  remote?: string;
  seconds?: number;
  /** Other calls of the device (held, waiting), one text. */
  others?: string;
  /** The digits received in the current call, `digit:source:ms` separated by spaces. */
  digits?: string;
}

/** The phone hardware and its state machine (`Phone` in `phone-wiring.ts`), when a board is configured. */
export interface PhoneInput {
  board: string;
  mode: 'handset' | 'intercom';
  /** The handset's or intercom's state (`Phone.state()`). */
  state: string;
  /** Whether the door relay is pulsed right now, when the wiring can tell. */
  relayOn?: boolean;
}

/** Everything {@link statusReport} reads; the gateway gathers it from its parts. */
export interface StatusInputs {
  version: string;
  domain: string;
  /** When the gateway started (wall-clock ms since the epoch). */
  startedAt: number;
  listening: readonly Endpoint[];
  /** This box's external interface addresses. */
  localAddresses: readonly string[];
  /** `media.publicAddress` from the config. */
  configuredPublicAddress?: string;
  /** `media.stunServer`, what it answered, or why it did not. */
  stun?: { server: string; address?: string; error?: string };
  trunks: readonly TrunkInput[];
  registrations: readonly RegistrationStatus[];
  bindings: readonly Binding[];
  calls: readonly CallSummary[];
  device?: DeviceInput;
  phone?: PhoneInput;
  /** The peer table's names; undefined when discovery is off. */
  peers?: readonly { name: string; isHookswitch: boolean }[];
  /** The DNS-SD instance name the box advertises, and the last mDNS error. */
  discovery?: { name: string; error?: string };
  /** The presence subscriptions (RFC 6665) in force; none when absent. */
  subscriptions?: readonly SubscriptionSummary[];
}

/** A trunk's line in the report. `state` is `off` for a trunk that is not registered with. */
export interface TrunkStatus {
  name: string;
  /** Where it is, e.g. `udp sip.example.net:5060`. */
  server: string;
  username: string;
  state: RegistrationStatus['state'] | 'off';
  lastError?: string;
  /** Seconds until the registration lapses (registered). */
  expiresIn?: number;
  /** Seconds until the next attempt (failed). */
  nextRetryIn?: number;
}

/** A registered phone: one binding of the registrar. */
export interface ExtensionStatus {
  /** The user part of the address of record. */
  extension: string;
  aor: string;
  contact: string;
  /** The User-Agent header of its REGISTER. */
  userAgent?: string;
  /** Seconds until the binding lapses. */
  expiresIn: number;
  /** Where the REGISTER came from, e.g. `udp 192.0.2.7:5060`. */
  source?: string;
}

/** A presence subscription (RFC 6665): who watches which extension, for which event package. */
export interface SubscriptionStatus {
  /** The subscribing user (its authenticated user name). */
  subscriber: string;
  /** The watched extension. */
  resource: string;
  /** `dialog` (RFC 4235) or `presence` (RFC 3856). */
  event: string;
  /** Seconds until the subscription expires unless refreshed. */
  expiresIn: number;
}

/** One call; durations in whole seconds. */
export interface CallStatus {
  id: string;
  from: string;
  to: string;
  state: string;
  duration: number;
  legs: CallLegSummary[];
}

/** The device: the endpoint's state, and the phone hardware's when a board is configured. */
export interface DeviceStatus {
  extension: string;
  state: string;
  call?: string;
  remote?: string;
  seconds?: number;
  others?: string;
  digits?: string;
  board?: string;
  mode?: 'handset' | 'intercom';
  /** The handset's or intercom's state machine state. */
  phone?: string;
  /** Handset boards: whether the receiver is lifted. */
  hook?: 'on' | 'off';
  ringing: boolean;
  /** Intercom boards: the door relay, when the wiring can tell. */
  relay?: 'on' | 'off';
}

/** The whole of `hookswitch status`. Every time is relative to the report's `now`. */
export interface StatusReport {
  version: string;
  domain: string;
  uptime: number;
  listening: { transport: string; address: string; port: number }[];
  addresses: { local: string[]; public?: string; publicSource?: 'config' | 'stun'; stunServer?: string; stunError?: string };
  trunks: TrunkStatus[];
  extensions: ExtensionStatus[];
  /** Sorted by resource, then event and subscriber. */
  subscriptions: SubscriptionStatus[];
  calls: CallStatus[];
  device?: DeviceStatus;
  peers: { discovery: boolean; name?: string; error?: string; count: number; names: string[] };
}

/** Handset states in which the receiver rests on the hook (`src/phone/handset.ts`). */
const ON_HOOK_STATES = new Set(['idle', 'ringing']);

const seconds = (ms: number): number => Math.max(0, Math.round(ms / 1000));

/** Builds the report from what the gateway's parts say at wall-clock `now` (ms since the epoch). */
export function statusReport(inputs: StatusInputs, now: number): StatusReport {
  const report: StatusReport = {
    version: inputs.version,
    domain: inputs.domain,
    uptime: seconds(now - inputs.startedAt),
    listening: inputs.listening.map((e) => ({ transport: e.transport, address: e.address, port: e.port })),
    addresses: addresses(inputs),
    trunks: inputs.trunks.map((t) => trunkStatus(t, inputs.registrations.find((r) => r.trunk === t.name), now)),
    extensions: inputs.bindings.map((b) => extensionStatus(b, now)).sort((x, y) => x.extension.localeCompare(y.extension, 'en', { numeric: true })),
    subscriptions: (inputs.subscriptions ?? []).map(subscriptionStatus).sort(bySubscription),
    calls: inputs.calls.map((c) => ({ id: c.id, from: c.from, to: c.to, state: c.state, duration: seconds(now - c.startedAt), legs: c.legs.map(roundLeg) })),
    peers: {
      discovery: inputs.peers !== undefined,
      ...(inputs.discovery ? { name: inputs.discovery.name, ...(inputs.discovery.error ? { error: inputs.discovery.error } : {}) } : {}),
      count: inputs.peers?.length ?? 0,
      names: (inputs.peers ?? []).map((p) => p.name),
    },
  };
  if (inputs.device) report.device = deviceStatus(inputs.device, inputs.phone);
  return report;
}

function addresses(inputs: StatusInputs): StatusReport['addresses'] {
  const out: StatusReport['addresses'] = { local: [...inputs.localAddresses] };
  if (inputs.configuredPublicAddress !== undefined) {
    out.public = inputs.configuredPublicAddress;
    out.publicSource = 'config';
  } else if (inputs.stun?.address !== undefined) {
    out.public = inputs.stun.address;
    out.publicSource = 'stun';
  }
  if (inputs.stun) {
    out.stunServer = inputs.stun.server;
    if (inputs.stun.error !== undefined) out.stunError = inputs.stun.error;
  }
  return out;
}

function trunkStatus(t: TrunkInput, reg: RegistrationStatus | undefined, now: number): TrunkStatus {
  const out: TrunkStatus = {
    name: t.name,
    server: `${t.transport} ${formatHostPort(t.host, t.port)}`,
    username: t.username,
    // A trunk with `register` whose client is missing has not started yet (host name being resolved).
    state: reg?.state ?? (t.register ? 'registering' : 'off'),
  };
  if (reg?.lastError !== undefined) out.lastError = reg.lastError;
  if (reg?.expiresAt !== undefined) out.expiresIn = seconds(reg.expiresAt - now);
  if (reg?.nextRetryAt !== undefined) out.nextRetryIn = seconds(reg.nextRetryAt - now);
  return out;
}

function extensionStatus(b: Binding, now: number): ExtensionStatus {
  const user = /^sips?:([^@;]+)@/i.exec(b.aor)?.[1] ?? b.aor;
  const out: ExtensionStatus = { extension: user, aor: b.aor, contact: b.contact, expiresIn: seconds(b.expiresAt - now) };
  if (b.userAgent !== undefined) out.userAgent = b.userAgent;
  if (b.source) out.source = `${b.source.transport} ${formatHostPort(b.source.address, b.source.port)}`;
  return out;
}

function subscriptionStatus(s: SubscriptionSummary): SubscriptionStatus {
  return { subscriber: s.subscriber, resource: s.resource, event: s.event, expiresIn: s.expiresIn };
}

function bySubscription(x: SubscriptionStatus, y: SubscriptionStatus): number {
  const order = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });
  return order(x.resource, y.resource) || order(x.event, y.event) || order(x.subscriber, y.subscriber);
}

/** Figures to the precision a person reads: loss in 0.1 %, jitter and RTT in 0.1 ms; SRTP suite and refusals as they are. */
function roundLeg(leg: CallLegSummary): CallLegSummary {
  if (leg.media === undefined) return { ...leg };
  const m: LegMediaStats = { ...leg.media };
  const tenth = (v: number): number => Math.round(v * 10) / 10;
  if (m.lossPercent !== undefined) m.lossPercent = tenth(m.lossPercent);
  if (m.jitterMs !== undefined) m.jitterMs = tenth(m.jitterMs);
  if (m.rttMs !== undefined) m.rttMs = tenth(m.rttMs);
  if (m.srtp !== undefined) m.srtp = { ...m.srtp };
  return { ...leg, media: m };
}

function deviceStatus(d: DeviceInput, phone: PhoneInput | undefined): DeviceStatus {
  const out: DeviceStatus = { extension: d.extension, state: d.state, ringing: d.state === 'ringing' || phone?.state === 'ringing' };
  if (d.call !== undefined) out.call = d.call;
  if (d.remote !== undefined) out.remote = d.remote;
  if (d.seconds !== undefined) out.seconds = d.seconds;
  if (d.others) out.others = d.others;
  if (d.digits) out.digits = d.digits;
  if (phone) {
    out.board = phone.board;
    out.mode = phone.mode;
    out.phone = phone.state;
    if (phone.mode === 'handset') out.hook = ON_HOOK_STATES.has(phone.state) ? 'on' : 'off';
    if (phone.relayOn !== undefined) out.relay = phone.relayOn ? 'on' : 'off';
  }
  return out;
}
