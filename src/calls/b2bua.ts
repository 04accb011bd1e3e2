/**
 * The back-to-back user agent: every call is two legs joined by the gateway. An INVITE from an
 * extension (authenticated by UasCore) or from a trunk is routed by the dial plan to an
 * extension's registered contacts (forked in parallel), a trunk, or the echo target; the
 * gateway then relays provisional and final responses, offers and answers (through the media
 * session), in-dialog requests and hang-ups between the legs (see call.ts).
 */
import { DigestClient } from '../sip/auth/digest-client.ts';
import { buildResponse, newTag } from '../sip/dialog/request-builder.ts';
import { parseNameAddr, tagOf } from '../sip/message/header-values.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import { parseUri } from '../sip/message/uri.ts';
import type { Destination, ServerTransaction } from '../sip/transaction/types.ts';
import type { CallHandler } from '../sip/ua/uas-core.ts';
import { formatEndpoint } from '../sip/transport/transport.ts';
import { bindingFlow } from './binding-flow.ts';
import type { Route } from './dialplan.ts';
import { Call, type CallEnv, type CallState, type ForkSpec, type Party } from './call.ts';
import { ClientLeg } from './client-leg.ts';
import { DeviceCall } from './device-call.ts';
import { DialogEventReporter } from './dialog-events.ts';
import { DeviceLeg } from './device-leg.ts';
import { forksPeer } from './leg-peer.ts';
import { sdpOf, type Leg } from './leg.ts';
import { ServerLeg } from './server-leg.ts';
import { negotiateAsUas } from './session-timer.ts';
import type { B2buaOptions, CallMedia, LegMediaStats, LegName, LocalEnd } from './types.ts';

export type { B2buaOptions, TrunkTarget, CallMedia, CallMediaFactory, LegName } from './types.ts';

/** One call as `status` shows it. */
export interface CallSummary {
  id: string;
  /** The caller's number (extension or trunk caller ID). */
  from: string;
  /** The number the caller dialled (or, after a transfer, the current callee). */
  to: string;
  state: CallState;
  /** Wall-clock ms since the epoch. */
  startedAt: number;
  /** Slot `a` (the caller) and, once there is one, slot `b`. */
  legs: CallLegSummary[];
}

/** One slot of a call as `status` shows it. */
export interface CallLegSummary {
  slot: LegName;
  /** The party on the slot: an extension, a trunk caller ID, a dialled number. */
  party: string;
  /** Where the leg's signalling goes, e.g. `udp 192.0.2.7:5060`; absent for this box's device. */
  peer?: string;
  /** The slot's media; absent until something was negotiated, and for the device's own slot. */
  media?: LegMediaStats;
}

type Refusal = { status: number; reason: string };

function dialogKey(callId: string, localTag: string): string {
  return `${callId}\n${localTag}`;
}

function legKey(leg: Leg): string | undefined {
  if (leg instanceof ServerLeg) return dialogKey(leg.callId, leg.tag);
  if (leg instanceof ClientLeg) return dialogKey(leg.callId, leg.localTag);
  return undefined;
}

function quoted(display: string): string {
  return `"${display.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** A dialled number as a URI user part (RFC 3261 §25.1: `#` is not allowed unescaped). */
function uriUser(number: string): string {
  return number.replace(/[^0-9A-Za-z*+\-_.!~'()&=$,;?/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export class B2bua implements CallHandler {
  private env: CallEnv;
  private readonly legs = new Map<string, { call: Call; leg: Leg }>();
  private readonly invites = new Map<SipRequest, Call>();
  private readonly cancelledEarly = new WeakSet<SipRequest>();
  private readonly active = new Set<Call>();
  /** Dialog states of the local users in calls, for the presence core (RFC 4235). */
  private readonly dialogs: DialogEventReporter | undefined;

  constructor(private opts: B2buaOptions) {
    this.dialogs = opts.presence && new DialogEventReporter(opts.presence, opts.domain, () => this.opts.deviceExtension);
    const timers = opts.timers ?? { T1: 500, T2: 4000 };
    this.env = {
      transactions: opts.transactions,
      clock: opts.clock,
      random: opts.random,
      logger: opts.logger,
      userAgent: opts.userAgent,
      T1: timers.T1,
      T2: timers.T2,
      rtpTimeoutSeconds: opts.rtpTimeoutSeconds,
      sessionExpires: opts.sessionExpires,
      minSessionExpires: opts.minSessionExpires,
      noAnswerSeconds: opts.noAnswerSeconds,
      register: (call, leg) => {
        const key = legKey(leg);
        if (key !== undefined) this.legs.set(key, { call, leg });
      },
      ended: (call, cause) => {
        this.dialogs?.ended(call, cause ?? 'ended');
        this.forget(call);
      },
      answered: (call) => {
        this.opts.observer?.answered(call.target);
        this.dialogs?.answered(call);
      },
      provisional: (call, res) => this.dialogs?.provisional(call, res),
      transferTargets: (number, caller, slot) => this.transferTargets(number, caller, slot),
    };
  }

  /** The calls in progress, for `status`. */
  calls(): CallSummary[] {
    return [...this.active].map((c) => ({
      id: c.id,
      from: c.parties.a.user,
      to: c.parties.b.user,
      state: c.state,
      startedAt: c.startedAt,
      legs: (['a', 'b'] as const).map((slot) => this.legSummary(c, slot)).filter((l) => l !== undefined),
    }));
  }

  private legSummary(call: Call, slot: LegName): CallLegSummary | undefined {
    const leg = [call.a, call.b].find((l) => l?.slot === slot);
    const media = call.media.stats?.(slot);
    if (leg === undefined && media === undefined && slot === 'b' && call.local === undefined) return undefined;
    const out: CallLegSummary = { slot, party: call.parties[slot].user };
    if (leg !== undefined && !(leg instanceof DeviceLeg)) out.peer = formatEndpoint(leg.flow);
    if (media !== undefined) out.media = media;
    return out;
  }

  /**
   * New settings for the calls that start from now on (config reload). Calls in progress keep
   * the timers they started with; their legs and media are not touched.
   */
  reconfigure(settings: Partial<Pick<B2buaOptions, 'dialplan' | 'extensions' | 'media' | 'noAnswerSeconds' | 'rtpTimeoutSeconds' | 'sessionExpires' | 'minSessionExpires'>>): void {
    this.opts = { ...this.opts, ...settings };
    const { noAnswerSeconds, rtpTimeoutSeconds, sessionExpires, minSessionExpires } = this.opts;
    this.env = { ...this.env, noAnswerSeconds, rtpTimeoutSeconds, sessionExpires, minSessionExpires };
  }

  /** Hangs up every call (BYE, or CANCEL/480 while ringing): shutdown. */
  close(): void {
    for (const call of [...this.active]) call.hangup('SIP;cause=503;text="Gateway shutting down"');
  }

  // ---- CallHandler (called by UasCore) ----

  ownsDialog(req: SipRequest): boolean {
    return this.find(req.headers.get('Call-ID'), tagOf(req.headers.get('To') ?? '')) !== undefined;
  }

  invite(req: SipRequest, tx: ServerTransaction, username: string): void {
    const from = this.fromOf(req);
    const peer = this.opts.peers?.caller(username, from);
    if (peer) {
      void this.start(req, tx, peer, undefined, true);
      return;
    }
    const name = this.opts.extensions[username]?.name ?? from?.displayName;
    void this.start(req, tx, { user: username, ...(name ? { display: name } : {}) }, undefined);
  }

  inviteFromTrunk(req: SipRequest, tx: ServerTransaction, trunk: string): void {
    const from = this.fromOf(req);
    const user = from?.uri.user ?? (from?.uri.scheme === 'tel' ? from.uri.host : undefined) ?? 'anonymous';
    void this.start(req, tx, { user, ...(from?.displayName ? { display: from.displayName } : {}) }, trunk);
  }

  inDialog(req: SipRequest, tx: ServerTransaction): void {
    const entry = this.find(req.headers.get('Call-ID'), tagOf(req.headers.get('To') ?? ''));
    if (!entry) {
      tx.respond(buildResponse(req, 481));
      return;
    }
    entry.call.inDialog(entry.leg, req, tx);
  }

  ack(ack: SipRequest, _source: Destination): void {
    const entry = this.find(ack.headers.get('Call-ID'), tagOf(ack.headers.get('To') ?? ''));
    if (entry) entry.call.ack(entry.leg, ack);
  }

  cancel(invite: SipRequest): void {
    const call = this.invites.get(invite);
    if (call) call.cancelled();
    else this.cancelledEarly.add(invite);
  }

  strayResponse(res: SipResponse, _source: Destination): void {
    const entry = this.find(res.headers.get('Call-ID'), tagOf(res.headers.get('From') ?? ''));
    if (entry?.leg instanceof ClientLeg) entry.leg.stray(res);
    else this.opts.logger.debug('stray 2xx for no call', { callId: res.headers.get('Call-ID') });
  }

  // ---- call set-up ----

  private find(callId: string | undefined, localTag: string | undefined): { call: Call; leg: Leg } | undefined {
    if (callId === undefined || localTag === undefined) return undefined;
    return this.legs.get(dialogKey(callId, localTag));
  }

  private fromOf(req: SipRequest) {
    try {
      return parseNameAddr(req.headers.get('From') ?? '');
    } catch {
      return undefined;
    }
  }

  private async start(req: SipRequest, tx: ServerTransaction, caller: Party, trunk: string | undefined, fromPeer = false): Promise<void> {
    const refuse = (status: number, reason?: string, headers: [string, string][] = []) =>
      tx.respond(buildResponse(req, status, reason, { headers }));
    // §16.6 step 3 spirit: a B2BUA passes the hop limit on; 0 left means the request looped.
    const mf = Number.parseInt(req.headers.get('Max-Forwards') ?? '70', 10);
    if (!(mf > 0)) {
      refuse(483);
      return;
    }
    tx.respond(buildResponse(req, 100));
    const timer = negotiateAsUas(req, this.opts.sessionExpires, this.opts.minSessionExpires);
    if (!timer.ok) {
      refuse(timer.status, undefined, [['Min-SE', String(timer.minSE)]]);
      return;
    }
    const offer = sdpOf(req);
    if (offer === undefined) {
      // Delayed offer (an INVITE without SDP) is not supported yet.
      refuse(488, 'Not Acceptable Here (INVITE without SDP offer)');
      return;
    }
    let number: string | undefined;
    try {
      const uri = parseUri(req.uri);
      number = uri.user ?? (uri.scheme === 'tel' ? uri.host : undefined);
    } catch {
      number = undefined;
    }
    let route: Route | undefined = number === undefined ? undefined : this.opts.dialplan.route(number);
    if (trunk !== undefined) {
      // Calls from a trunk go where the dial plan says, else to this device; never back out.
      route ??= { target: { kind: 'device' }, number: number ?? '', rule: -1 };
      if (route.target.kind === 'trunk') {
        refuse(403, 'Forbidden (no calls from a trunk to a trunk)');
        return;
      }
    }
    if (!route) {
      refuse(404);
      return;
    }
    if (fromPeer && (route.target.kind === 'trunk' || route.target.kind === 'peer')) {
      // A peer's call ends on this box: never out to a trunk (toll fraud) or on to a peer (loops).
      refuse(403, 'Forbidden (calls from a peer end on this box)');
      return;
    }
    const device = route.target.kind === 'device' ? this.opts.device : undefined;
    const specs = route.target.kind === 'echo' || device ? [] : this.forksFor(route, caller, mf - 1);
    if (!Array.isArray(specs)) {
      refuse(specs.status, specs.reason);
      return;
    }
    const source = tx.source;
    const local = this.localFor(source, trunk !== undefined);
    let a: ServerLeg;
    try {
      a = new ServerLeg(this.env, tx, local);
    } catch (err) {
      refuse(400, err instanceof Error ? err.message.slice(0, 80) : 'Bad Request');
      return;
    }
    let media: CallMedia;
    try {
      media = await (device ? device.media() : this.opts.media.create());
    } catch (err) {
      this.opts.logger.warn('no media session for a call', { reason: err instanceof Error ? err.message : String(err) });
      a.reject(503, 'Service Unavailable (no RTP ports)');
      return;
    }
    if (this.cancelledEarly.has(req)) {
      media.close();
      return;
    }
    const id = newTag(this.opts.random).slice(0, 10);
    const call = new Call(this.env, id, media, a, { a: caller, b: { user: route.number } }, timer.terms);
    this.track(call, route.target.kind);
    this.dialogs?.routed(call, trunk === undefined && !fromPeer ? caller.user : undefined, route);
    this.invites.set(req, call);
    this.env.register(call, a);
    media.setLocalAddress('a', local.address);
    media.setLegPeer?.('a', { transports: [source.transport], ...(trunk !== undefined ? { trunk } : fromPeer ? {} : { extension: caller.user }) });
    this.opts.logger.info('call', { call: id, from: caller.user, to: route.number, target: route.target.kind });
    if (route.target.kind === 'echo') {
      const r = media.answerLocally('a', offer);
      if (!r.ok) call.reject(r.status, r.reason);
      else call.answerLocally(r.sdp);
      return;
    }
    if (device) {
      // The device answers with its own media; it decides when (auto-answer, or the handset).
      const r = media.answerLocally('a', offer);
      if (!r.ok) {
        call.reject(r.status, r.reason);
        return;
      }
      const local = device.incoming(new DeviceCall(call, 'a', r.sdp), caller);
      if ('status' in local) {
        call.reject(local.status, local.reason);
        return;
      }
      call.local = local;
      if (call.state === 'calling') a.provisional(180);
      if (call.state === 'calling') this.dialogs?.ringing(call);
      return;
    }
    media.setLocalAddress('b', specs[0]!.local.address);
    media.setLegPeer?.('b', forksPeer(specs));
    const r = media.offer('a', offer);
    if (!r.ok) {
      call.reject(r.status, r.reason);
      return;
    }
    call.dial(specs, r.sdp);
  }

  /**
   * A call from the device to `number`, routed by the dial plan like a call from its extension.
   * `follow` gives the {@link LocalEnd} that the call reports to. Resolves to the call, or to
   * the status that refuses it (404 no route, 480 callee not registered, 503 no RTP ports).
   */
  async dialFromDevice(number: string, follow: (call: DeviceCall) => LocalEnd): Promise<DeviceCall | Refusal> {
    const device = this.opts.device;
    if (!device) return { status: 503, reason: 'Service Unavailable (no device)' };
    const route = this.opts.peers?.byName(number) ?? this.opts.dialplan.route(number);
    if (!route) return { status: 404, reason: 'Not Found' };
    if (route.target.kind === 'device' || route.target.kind === 'echo' || (route.target.kind !== 'peer' && route.number === this.opts.deviceExtension)) {
      return { status: 486, reason: 'Busy Here (the device cannot call itself)' };
    }
    const extension = this.opts.deviceExtension;
    const name = this.opts.extensions[extension]?.name;
    const caller: Party = { user: extension, ...(name ? { display: name } : {}) };
    const specs = this.forksFor(route, caller, 70);
    if (!Array.isArray(specs)) return specs;
    let media: CallMedia;
    try {
      media = await device.media();
    } catch (err) {
      return { status: 503, reason: `Service Unavailable (${err instanceof Error ? err.message : String(err)})` };
    }
    const id = newTag(this.opts.random).slice(0, 10);
    const terms = { interval: this.opts.sessionExpires, weRefresh: false, peerSupports: false };
    const call = new Call(this.env, id, media, new DeviceLeg(this.env), { a: caller, b: { user: route.number } }, terms);
    const handle = new DeviceCall(call, 'b');
    this.track(call, route.target.kind);
    this.dialogs?.routed(call, extension, route);
    media.setLocalAddress('b', specs[0]!.local.address);
    media.setLegPeer?.('b', forksPeer(specs));
    call.local = follow(handle);
    this.opts.logger.info('call', { call: id, from: caller.user, to: route.number, target: route.target.kind });
    call.dial(specs, media.reoffer('b'));
    return handle;
  }

  /** Our address facing a source; on trunk legs the public address when one is known. */
  private localFor(dest: Destination, trunk: boolean): { address: string; port: number } {
    const local = this.opts.localEndpoint(dest.transport, dest.address);
    const pub = trunk ? this.opts.publicAddress?.() : undefined;
    return pub ? { address: pub, port: local.port } : local;
  }

  /** The INVITEs that reach a routed target, or why there are none. */
  private forksFor(route: Route, caller: Party, maxForwards: number): ForkSpec[] | Refusal {
    const target = route.target;
    switch (target.kind) {
      case 'extension':
        return this.extensionForks(target.extension, caller, maxForwards);
      case 'device':
        // Without a device endpoint, the device extension's registered phones ring.
        return this.extensionForks(this.opts.deviceExtension, caller, maxForwards);
      case 'trunk':
        return this.trunkFork(target.trunk, route.number, maxForwards);
      case 'peer':
        return this.opts.peers?.forks(route, caller, maxForwards, this.timerHeaders()) ?? { status: 404, reason: 'Not Found (discovery is off)' };
      case 'echo':
        return { status: 404, reason: 'Not Found' };
    }
  }

  private timerHeaders(): [string, string][] {
    return [
      ['Supported', 'timer'],
      ['Session-Expires', `${this.opts.sessionExpires};refresher=uac`],
      ['Min-SE', String(this.opts.minSessionExpires)],
    ];
  }

  private extensionForks(extension: string, caller: Party, maxForwards: number): ForkSpec[] | Refusal {
    const live = this.opts.registrar.lookup(extension).filter((b) => this.opts.reachable?.(b.contact) !== false);
    const specs: ForkSpec[] = [];
    for (const binding of live) {
      const flow = bindingFlow(binding);
      if (!flow) continue;
      specs.push({
        flow,
        local: this.localFor(flow, false),
        party: { extension },
        invite: {
          requestUri: binding.contact,
          from: `${caller.display ? `${quoted(caller.display)} ` : ''}<sip:${uriUser(caller.user)}@${this.opts.domain}>`,
          to: `<sip:${uriUser(extension)}@${this.opts.domain}>`,
          maxForwards,
          headers: this.timerHeaders(),
          label: `${extension} ${binding.contact}`,
        },
      });
    }
    if (specs.length === 0) return { status: 480, reason: 'Temporarily Unavailable (not registered)' };
    return specs;
  }

  private trunkFork(name: string, number: string, maxForwards: number): ForkSpec[] | Refusal {
    const trunk = this.opts.trunks.find((t) => t.name === name);
    if (!trunk) return { status: 503, reason: 'Service Unavailable (trunk not configured)' };
    const flow = trunk.destination();
    const transport = trunk.transport === 'udp' ? '' : `;transport=${trunk.transport}`;
    return [
      {
        flow,
        local: this.localFor(flow, true),
        party: { trunk: trunk.name },
        invite: {
          requestUri: `sip:${uriUser(number)}@${trunk.domain}${transport}`,
          from: `<sip:${uriUser(trunk.username)}@${trunk.domain}>`,
          to: `<sip:${uriUser(number)}@${trunk.domain}>`,
          maxForwards,
          headers: this.timerHeaders(),
          digest: new DigestClient({ username: trunk.authUsername ?? trunk.username, password: trunk.password, random: this.opts.random }),
          label: `trunk ${trunk.name}`,
        },
      },
    ];
  }

  private transferTargets(number: string, caller: Party, _slot: LegName): ForkSpec[] | Refusal {
    const route = this.opts.dialplan.route(number);
    if (!route) return { status: 404, reason: 'Not Found' };
    return this.forksFor(route, caller, 70);
  }

  /** A routed call: in progress from now on, and told to the observer. */
  private track(call: Call, target: string): void {
    call.target = target;
    this.active.add(call);
    this.opts.observer?.started(target);
  }

  private forget(call: Call): void {
    if (this.active.has(call) && call.endSummary) this.opts.observer?.ended(call.endSummary);
    this.active.delete(call);
    for (const [key, entry] of this.legs) if (entry.call === call) this.legs.delete(key);
    for (const [req, c] of this.invites) if (c === call) this.invites.delete(req);
  }
}
