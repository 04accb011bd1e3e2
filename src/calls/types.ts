/**
 * What the call layer needs from its surroundings: the media session (SDP in, SDP out), the
 * registrar's bindings, the trunks and the gateway's addresses. The media types repeat the
 * contract of `src/media/media-session.ts` structurally, so that the call layer depends on the
 * shape, not on the module, and tests pass a fake.
 */
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import type { Binding } from '../registrar/binding-store.ts';
import type { Destination } from '../sip/transaction/types.ts';
import type { TransactionLayer } from '../sip/transaction/transaction-layer.ts';
import type { DialPlan } from './dialplan.ts';
import type { DeviceCall } from './device-call.ts';
import type { Party } from './call.ts';
import type { PeerCalls } from './peer-route.ts';
import type { DialogStateSink } from './dialog-events.ts';

/** The two media slots of a call: `a` faces the caller, `b` the callee. */
export type LegName = 'a' | 'b';

/** The outcome of an SDP operation: the SDP to send on, or the status to refuse with. */
export type SdpResult = { ok: true; sdp: string } | { ok: false; status: 488 | 400; reason: string };

/**
 * One call's media (see `src/media/media-session.ts`): opaque SDP strings in and out. The call
 * layer calls `offer` when an offer arrives on a leg, `answer` when the answer to it arrives on
 * the other leg, and `close` when the call ends.
 */
export interface CallMedia {
  setLocalAddress(leg: LegName, address: string): void;
  offer(from: LegName, sdp: string): SdpResult;
  answer(from: LegName, sdp: string): SdpResult;
  answerLocally(from: LegName, sdp: string): SdpResult;
  reoffer(to: LegName): string;
  /** Who is on the slot and over which transports (its SRTP policy); set before the slot's first SDP. */
  setLegPeer?(leg: LegName, peer: LegPeerInfo): void;
  idleMs(leg: LegName): number;
  /** The media of one slot for `status`; undefined for a slot without media of its own (the device). */
  stats?(leg: LegName): LegMediaStats | undefined;
  close(): void;
}

/**
 * One slot's media as `hookswitch status` shows it. Loss, jitter and round trip are what the
 * RTCP reports say (RFC 3550 §6.4): absent until the first report arrived.
 */
export interface LegMediaStats {
  /** The codec in use on the slot, e.g. `PCMU/8000`; absent before negotiation. */
  codec?: string;
  /** RTP and RTCP datagrams that arrived from the slot's peer. */
  packetsIn: number;
  /** Datagrams sent to the slot's peer. */
  packetsOut: number;
  /** Percent of the packets lost, as the receiving end reported. */
  lossPercent?: number;
  /** Packets lost in all, as the receiving end reported. */
  lost?: number;
  /** Interarrival jitter in ms (RFC 3550 A.8). */
  jitterMs?: number;
  /** Round-trip time in ms (RFC 3550 §6.4.1 LSR/DLSR). */
  rttMs?: number;
  /** The slot's SRTP (RFC 3711) while it is keyed; absent for plain RTP. */
  srtp?: LegSrtpStats;
}

/**
 * A slot's SRTP as `status` and the metrics show it: the crypto suite and the datagrams SRTP
 * refused on the slot (RTP and RTCP together), counted since the slot was first keyed.
 */
export interface LegSrtpStats {
  /** The suite in use (RFC 4568 §6.2), e.g. `AES_CM_128_HMAC_SHA1_80`. */
  suite: string;
  /** Refused for a wrong authentication tag (RFC 3711 §3.3 step 5). */
  authFailed: number;
  /** Refused as replayed or older than the replay window (RFC 3711 §3.3.2). */
  replayed: number;
  /** Refused for any other reason: too short, malformed, unknown MKI, key exhausted, too many streams, or not protectable for sending. */
  other: number;
}

/** A slot's party and signalling transports, for the media's SRTP policy (`src/media/srtp-policy.ts`). */
export interface LegPeerInfo {
  /** The caller's transport, or every fork's towards the callee. */
  transports: readonly ('udp' | 'tcp' | 'tls')[];
  extension?: string;
  trunk?: string;
}

/** Creates one {@link CallMedia} per call; rejects when no RTP ports are left (the call gets 503). */
export interface CallMediaFactory {
  create(): Promise<CallMedia>;
}

/** A trunk as the call layer sees it (the gateway resolves the addresses). */
export interface TrunkTarget {
  name: string;
  /** Host for Request-URI/From/To (trunk.domain ?? trunk.host). */
  domain: string;
  transport: 'udp' | 'tcp' | 'tls';
  username: string;
  authUsername?: string;
  password: string;
  /** Where requests to this trunk are sent (outbound proxy or resolved host). */
  destination(): Destination;
  /** Addresses calls from this trunk arrive from (resolved host and proxy addresses). */
  sources(): string[];
}

/** Everything {@link B2bua} needs; the composition root (`src/app/gateway.ts`) provides it. */
export interface B2buaOptions {
  transactions: TransactionLayer;
  clock: Clock;
  random: Random;
  logger: Logger;
  /** The SIP domain (From of calls from extensions, To of calls to them). */
  domain: string;
  userAgent: string;
  /** The gateway's SIP address and port for a transport, facing a remote address (Via/Contact/c=). */
  localEndpoint(transport: 'udp' | 'tcp' | 'tls', remoteAddress: string): { address: string; port: number };
  /** Public address for c=/Contact on trunk legs (STUN/config), when known. */
  publicAddress?(): string | undefined;
  registrar: { lookup(user: string): readonly Binding[] };
  /** Qualifier status of a contact; unknown counts as reachable. */
  reachable?(contact: string): boolean;
  dialplan: Pick<DialPlan, 'route'>;
  deviceExtension: string;
  trunks: readonly TrunkTarget[];
  extensions: Record<string, { name?: string }>;
  media: CallMediaFactory;
  noAnswerSeconds: number;
  rtpTimeoutSeconds: number;
  sessionExpires: number;
  minSessionExpires: number;
  /** This box's handset or intercom; without it calls to `device` ring the device extension's phones. */
  device?: DevicePort;
  /** Calls to and from hookswitch peers on the LAN (the `peer` target); without it they get 404. */
  peers?: PeerCalls;
  /** T1/T2 for 2xx retransmission (RFC 3261 §13.3.1.4); defaults 500/4000 ms. */
  timers?: { T1: number; T2: number };
  /** Told when calls start, are answered and end (the metrics); optional. */
  observer?: CallObserver;
  /** Told each local user's dialog states (RFC 4235, the presence core); optional. */
  presence?: DialogStateSink;
}

/**
 * The device as one end of a call: this box's own handset or intercom, which terminates the
 * call's media and signalling inside the gateway. The call layer tells it how the call goes;
 * the device endpoint (`src/device/`) answers, hangs up and sends DTMF through {@link DeviceCall}.
 */
export interface LocalEnd {
  /** The far end is ringing (180/183) — a call the device placed. */
  ringing(): void;
  /** The call is answered, the media flows. */
  connected(): void;
  /**
   * An INFO from the far end (RFC 6086; DTMF as application/dtmf-relay or application/dtmf):
   * returns the status to answer it with.
   */
  info(contentType: string | undefined, body: Buffer): number;
  /** The call has ended; `status` is the final failure status of a call that never connected. */
  ended(cause: string, status?: number): void;
}

/** The device endpoint as the B2BUA sees it (see `src/device/device-endpoint.ts`). */
export interface DevicePort {
  /** Media for one device call: RTP towards the far end, audio through the device. */
  media(): Promise<CallMedia>;
  /**
   * A call for the device arrived (authenticated, routed, its offer acceptable): returns the
   * {@link LocalEnd} that follows it, or the status to refuse it with (486 when busy).
   */
  incoming(call: DeviceCall, caller: Party): LocalEnd | { status: number; reason?: string };
}

/** A call as it ended, for the {@link CallObserver}; see `call-summary.ts`. */
export interface CallEndSummary {
  /** The dial plan target kind the call was routed to (`extension`, `trunk`, `device`, `echo`). */
  target: string;
  answered: boolean;
  /** The caller cancelled before an answer (not a failure of the gateway or the callee). */
  cancelled: boolean;
  seconds: number;
  /** Seconds from the answer to the end; 0 when never answered. */
  talkSeconds: number;
  /** Each slot's media figures at the end (absent for a slot without media of its own). */
  media: Partial<Record<LegName, LegMediaStats>>;
}

/**
 * Follows the calls of a {@link B2bua} (the composition root passes the metrics). Called
 * synchronously from the call layer: implementations only count, never call back into it.
 */
export interface CallObserver {
  /** A call was routed to `target` and is being set up. */
  started(target: string): void;
  /** The call to `target` was answered. */
  answered(target: string): void;
  /** The call ended (answered or not); once per started call. */
  ended(summary: CallEndSummary): void;
}
