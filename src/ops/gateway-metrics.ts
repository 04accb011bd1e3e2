/**
 * The gateway's metrics: what `/metrics` shows and where each number comes from. Most are read
 * at scrape time from counters that already exist (the SIP stack's, the registrar's bindings,
 * the trunk registrations, the source guard's bans, the sound card's xruns); the rest are
 * counted here from the call layer's {@link CallObserver} events and two thin wrappers around
 * the registrar and the source guard as the UAS core sees them. Pure: no I/O, no timers.
 */
import type { CallEndSummary, CallObserver, LegMediaStats } from '../calls/types.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import type { StackCounters } from '../sip/stack.ts';
import type { Destination } from '../sip/transaction/types.ts';
import type { RegisterHandler, SourceGuard } from '../sip/ua/uas-core.ts';
import { MetricsRegistry, type Counter, type Gauge, type MetricSample } from './metrics.ts';

/** Where the gateway's existing numbers are read, at each scrape. */
export interface GatewayMetricSources {
  /** The SIP stack's counters; undefined before it exists. */
  sip(): StackCounters | undefined;
  /** Live registrar bindings (registered phones). */
  bindings(): number;
  /** Each trunk registration and its state (`registering`, `registered`, `failed`, `stopped`). */
  trunks(): readonly { trunk: string; state: string }[];
  /** Source addresses banned now. */
  bans(): number;
  /** Calls in progress (ringing or connected). */
  activeCalls(): number;
  /** The device's sound card counters since start; undefined without one. */
  audio(): { xruns: number; restarts: number } | undefined;
}

/** The states a trunk registration can be in; each is one sample, 1 for the current one. */
const TRUNK_STATES = ['registering', 'registered', 'failed', 'stopped'] as const;

/** The `reason` labels of `srtp_packets_dropped_total`, each shown from the start (0). */
const SRTP_DROP_REASONS = ['auth_failed', 'replayed', 'other'] as const;

/** Every metric name starts with this. */
const PREFIX = 'hookswitch_';

/**
 * The metrics of one gateway. Pass it to the B2BUA as its `observer`, wrap the registrar with
 * {@link countingRegistrar} and the source guard with {@link countingGuard}, and serve
 * {@link render} on `/metrics`.
 */
export class GatewayMetrics implements CallObserver {
  readonly registry = new MetricsRegistry();
  private readonly registers: Counter;
  private readonly authFailures: Counter;
  private readonly callsStarted: Counter;
  private readonly callsAnswered: Counter;
  private readonly callsFailed: Counter;
  private readonly rtpReceived: Counter;
  private readonly rtpSent: Counter;
  private readonly rtpLost: Counter;
  private readonly srtpDropped: Counter;
  private jitterSum = 0;
  private jitterCount = 0;
  private readonly lastLoss: Gauge;
  private readonly lastJitter: Gauge;

  constructor(sources: GatewayMetricSources, version: string) {
    const r = this.registry;
    const one = (value: number): MetricSample[] => [{ value }];
    r.collect(`${PREFIX}build_info`, 'Always 1; the version label says which hookswitch runs.', 'gauge', () => [{ labels: { version }, value: 1 }]);

    r.collect(`${PREFIX}registrar_bindings`, 'Phone registrations (live bindings) the registrar holds.', 'gauge', () => one(sources.bindings()));
    this.registers = r.counter(`${PREFIX}register_requests_total`, 'Authenticated REGISTER requests answered by the registrar, by result (ok: 2xx).', ['result']);
    r.collect(`${PREFIX}trunk_registration_state`, 'Trunk registration state: 1 for the state each trunk is in, 0 for the others.', 'gauge', () =>
      sources.trunks().flatMap(({ trunk, state }) => TRUNK_STATES.map((s) => ({ labels: { trunk, state: s }, value: s === state ? 1 : 0 }))),
    );

    r.collect(`${PREFIX}calls_active`, 'Calls in progress (ringing or connected).', 'gauge', () => one(sources.activeCalls()));
    this.callsStarted = r.counter(`${PREFIX}calls_started_total`, 'Calls routed and set up, by dial plan target kind.', ['target']);
    this.callsAnswered = r.counter(`${PREFIX}calls_answered_total`, 'Calls answered, by dial plan target kind.', ['target']);
    this.callsFailed = r.counter(
      `${PREFIX}calls_failed_total`,
      'Calls that ended without an answer for another reason than the caller cancelling, by dial plan target kind.',
      ['target'],
    );

    this.rtpReceived = r.counter(`${PREFIX}rtp_packets_received_total`, 'RTP and RTCP packets received from the parties of ended calls.');
    this.rtpSent = r.counter(`${PREFIX}rtp_packets_sent_total`, 'RTP and RTCP packets sent to the parties of ended calls.');
    this.rtpLost = r.counter(`${PREFIX}rtp_packets_lost_total`, 'RTP packets lost in ended calls, as the receiving ends reported (RFC 3550 cumulative lost).');
    this.srtpDropped = r.counter(
      `${PREFIX}srtp_packets_dropped_total`,
      'SRTP and SRTCP packets refused on the SRTP slots of ended calls, by reason (auth_failed: wrong tag, RFC 3711 §3.3; replayed: RFC 3711 §3.3.2; other).',
      ['reason'],
    );
    for (const reason of SRTP_DROP_REASONS) this.srtpDropped.inc({ reason }, 0);
    r.collect(`${PREFIX}call_jitter_seconds`, 'Interarrival jitter of ended answered calls (the worse slot of each call, RFC 3550 A.8).', 'summary', () => [
      { suffix: '_sum', value: this.jitterSum },
      { suffix: '_count', value: this.jitterCount },
    ]);
    this.lastLoss = r.gauge(`${PREFIX}last_call_loss_ratio`, 'Packet loss of the last ended answered call with RTCP figures (the worse slot), 0 to 1.');
    this.lastJitter = r.gauge(`${PREFIX}last_call_jitter_seconds`, 'Interarrival jitter of the last ended answered call with RTCP figures (the worse slot).');

    r.collect(`${PREFIX}sip_messages_received_total`, 'SIP messages received (datagrams and stream messages).', 'counter', () => one(sources.sip()?.received ?? 0));
    r.collect(
      `${PREFIX}sip_invalid_messages_total`,
      'SIP messages that failed parsing or validation: requests answered statelessly with an error, responses dropped.',
      'counter',
      () => {
        const c = sources.sip();
        return [
          { labels: { kind: 'request' }, value: c?.rejected ?? 0 },
          { labels: { kind: 'response' }, value: c?.droppedResponses ?? 0 },
        ];
      },
    );
    this.authFailures = r.counter(`${PREFIX}auth_failures_total`, 'Requests with wrong digest credentials (each request counted once, retransmissions not).');
    r.collect(`${PREFIX}sources_banned`, 'Source addresses banned now after repeated authentication failures.', 'gauge', () => one(sources.bans()));

    r.collect(`${PREFIX}audio_xruns_total`, 'Overruns and underruns the sound card reported since start.', 'counter', () => one(sources.audio()?.xruns ?? 0));
    r.collect(`${PREFIX}audio_device_restarts_total`, 'Times a sound card capture or playback process was restarted after failing.', 'counter', () =>
      one(sources.audio()?.restarts ?? 0),
    );
  }

  started(target: string): void {
    this.callsStarted.inc({ target });
  }

  answered(target: string): void {
    this.callsAnswered.inc({ target });
  }

  ended(summary: CallEndSummary): void {
    if (!summary.answered && !summary.cancelled) this.callsFailed.inc({ target: summary.target });
    const slots = Object.values(summary.media).filter((m): m is LegMediaStats => m !== undefined);
    for (const m of slots) {
      this.rtpReceived.inc({}, m.packetsIn);
      this.rtpSent.inc({}, m.packetsOut);
      if (m.lost !== undefined && m.lost > 0) this.rtpLost.inc({}, m.lost);
      if (m.srtp !== undefined) {
        this.srtpDropped.inc({ reason: 'auth_failed' }, m.srtp.authFailed);
        this.srtpDropped.inc({ reason: 'replayed' }, m.srtp.replayed);
        this.srtpDropped.inc({ reason: 'other' }, m.srtp.other);
      }
    }
    if (!summary.answered) return;
    const jitters = slots.map((m) => m.jitterMs).filter((v) => v !== undefined);
    const losses = slots.map((m) => m.lossPercent).filter((v) => v !== undefined);
    if (jitters.length > 0) {
      const worst = Math.max(...jitters) / 1000;
      this.jitterSum += worst;
      this.jitterCount++;
      this.lastJitter.set({}, worst);
    }
    if (losses.length > 0) this.lastLoss.set({}, Math.max(...losses) / 100);
  }

  /** The registrar answered an authenticated REGISTER with `status`. */
  registerAnswered(status: number): void {
    this.registers.inc({ result: status >= 200 && status < 300 ? 'ok' : 'failed' });
  }

  /** A request carried wrong credentials. */
  authFailed(): void {
    this.authFailures.inc();
  }

  /** The exposition text for `GET /metrics`. */
  render(): string {
    return this.registry.render();
  }
}

/** `registrar` as the UAS core sees it, with each answer (or failure) counted in `metrics`. */
export function countingRegistrar(registrar: RegisterHandler, metrics: GatewayMetrics): RegisterHandler {
  return {
    register(req: SipRequest, username: string, source?: Destination): SipResponse | Promise<SipResponse> {
      let answer: SipResponse | Promise<SipResponse>;
      try {
        answer = registrar.register(req, username, source);
      } catch (err) {
        metrics.registerAnswered(500);
        throw err;
      }
      if (!(answer instanceof Promise)) {
        metrics.registerAnswered(answer.status);
        return answer;
      }
      return answer.then(
        (res) => {
          metrics.registerAnswered(res.status);
          return res;
        },
        (err: unknown) => {
          metrics.registerAnswered(500);
          throw err;
        },
      );
    },
  };
}

/** `guard` as the UAS core sees it, with each authentication failure counted in `metrics`. */
export function countingGuard(guard: SourceGuard, metrics: GatewayMetrics): SourceGuard {
  return {
    isAllowed: (address) => guard.isAllowed(address),
    authFailed: (address) => {
      metrics.authFailed();
      guard.authFailed(address);
    },
    authSucceeded: (address) => guard.authSucceeded(address),
  };
}
