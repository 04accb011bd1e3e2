/**
 * Instant messages (RFC 3428 MESSAGE) between extensions, trunks and the device, routed by the
 * dial plan like calls.
 *
 * The gateway relays as a B2BUA, not as a proxy, like every call it carries: each MESSAGE it
 * sends on is a new request of its own (new Call-ID, our From tag, our Via, Max-Forwards one
 * less than received, To and From rewritten to the gateway's domain as on call legs) carrying the
 * sender's body and content headers unchanged, and the sender gets one final response chosen from
 * the outcomes. So the phones never learn each other's addresses, trunk credentials stay on this
 * box, and a trunk sees the account identity it knows, as with INVITEs.
 *
 * Targets (see {@link MessageRelay.receive} for the statuses):
 * - an extension: one MESSAGE per live binding in parallel; the first 2xx is the answer;
 * - a trunk: one MESSAGE to the trunk, answering its 401/407 with the trunk's credentials;
 * - the device: delivered to its {@link MessageSink} and answered 200 (RFC 3428 §7);
 * - echo: answered 200, and the same body sent back to the sending extension;
 * - a LAN peer: not relayed (404).
 */
import { DigestClient } from '../sip/auth/digest-client.ts';
import { buildResponse } from '../sip/dialog/request-builder.ts';
import { parseNameAddr } from '../sip/message/header-values.ts';
import type { SipRequest } from '../sip/message/message.ts';
import { parseUri } from '../sip/message/uri.ts';
import { parseContentType } from '../sip/message/value-headers.ts';
import type { Destination, ServerTransaction } from '../sip/transaction/types.ts';
import type { Binding } from '../registrar/binding-store.ts';
import type { Clock } from '../runtime/clock.ts';
import { bindingFlow } from './binding-flow.ts';
import type { DialPlan, Route } from './dialplan.ts';
import { chooseFailure } from './fork-set.ts';
import type { MessageSink, ReceivedMessage } from './message-inbox.ts';
import { sendMessage, type MessageClientEnv, type OutboundMessage } from './message-client.ts';
import { isPeerUsername } from './peer-credentials.ts';
import type { TrunkTarget } from './types.ts';

/** Who sent a MESSAGE, as the UAS core admitted it: an authenticated user, or a trunk by address. */
export type MessageOrigin = { kind: 'user'; username: string } | { kind: 'trunk'; trunk: string };

/** Everything {@link MessageRelay} needs; the composition root provides it. */
export interface MessageRelayOptions extends MessageClientEnv {
  clock: Clock;
  /** The SIP domain (From and To of messages to and from extensions). */
  domain: string;
  /** The gateway's SIP address and port for a transport, facing a remote address (Via). */
  localEndpoint(transport: Destination['transport'], remoteAddress: string): { address: string; port: number };
  registrar: { lookup(user: string): readonly Binding[] };
  /** Qualifier status of a contact; unknown counts as reachable. */
  reachable?(contact: string): boolean;
  dialplan: Pick<DialPlan, 'route'>;
  deviceExtension: string;
  /** The trunks; the array may be changed in place (reload). */
  trunks: readonly TrunkTarget[];
  extensions: Record<string, { name?: string }>;
  /** The device's inbox; without it, messages to the device ring its extension's phones. */
  device?: MessageSink;
}

/** The content headers a relayed MESSAGE keeps (RFC 3261 §20; Date and Expires per RFC 3428 §4). */
const CARRIED = ['Content-Type', 'Content-Encoding', 'Content-Language', 'Content-Disposition', 'Date', 'Expires', 'Subject'];

/** Status and reason of a refusal. */
type Refusal = { status: number; reason?: string };

/** The sender as the relayed request shows it. */
interface Sender {
  user: string;
  display?: string;
}

function quoted(display: string): string {
  return `"${display.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** A number as a URI user part (RFC 3261 §25.1: `#` and the like are escaped). */
function uriUser(number: string): string {
  return number.replace(/[^0-9A-Za-z*+\-_.!~'()&=$,;?/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/**
 * The status reported when every MESSAGE sent on failed: {@link chooseFailure}'s choice (6xx
 * first, else the lowest class; 401/407 → 403, 3xx → 480, a remote 503 → 500), except that a
 * 408 becomes 480. RFC 4320 §4.2: "A transaction-stateful SIP element MUST NOT send a response
 * with Status-Code of 408 to a non-INVITE request"; by the time our Timer F fires, the sender's
 * has too, so the answer only frees our server transaction.
 */
export function messageFailure(failures: readonly { status: number; reason: string; local?: boolean }[]): { status: number; reason: string } {
  return chooseFailure(failures.map((f) => (f.status === 408 ? { status: 480, reason: 'Temporarily Unavailable (no response)' } : f)));
}

/** Relays MESSAGE requests admitted by the UAS core; see the file comment. */
export class MessageRelay {
  constructor(private opts: MessageRelayOptions) {}

  /** New dial plan and extensions for the messages that arrive from now on (config reload). */
  reconfigure(settings: Partial<Pick<MessageRelayOptions, 'dialplan' | 'extensions'>>): void {
    this.opts = { ...this.opts, ...settings };
  }

  /**
   * Routes one MESSAGE and answers it on `tx`, exactly once:
   * - 483 when Max-Forwards is 0 (RFC 3261 §16.3 item 2, which a B2BUA honours as a proxy would);
   * - 403 from a LAN peer (peers may only call), from a trunk to a trunk, and echo from a trunk;
   * - 404 when the dial plan has no route, and for LAN peers;
   * - 480 for an extension without a live binding;
   * - the first 2xx of a target, else {@link messageFailure} of their answers;
   * - 200 for the device (RFC 3428 §7: "a 200 OK ... when the message was delivered") and echo.
   */
  receive(req: SipRequest, tx: ServerTransaction, origin: MessageOrigin): void {
    const answer = (status: number, reason?: string): void => tx.respond(buildResponse(req, status, reason));
    const maxForwards = Number.parseInt(req.headers.get('Max-Forwards') ?? '70', 10);
    if (!(maxForwards > 0)) {
      answer(483);
      return;
    }
    if (origin.kind === 'user' && isPeerUsername(origin.username)) {
      answer(403, 'Forbidden (peers may only call)');
      return;
    }
    const sender = this.senderOf(req, origin);
    const number = numberOf(req.uri);
    let route: Route | undefined = number === undefined ? undefined : this.opts.dialplan.route(number);
    if (origin.kind === 'trunk') {
      // As for calls: what a trunk sends goes where the dial plan says, else to this device.
      route ??= { target: { kind: 'device' }, number: number ?? '', rule: -1 };
      if (route.target.kind === 'trunk' || route.target.kind === 'echo') {
        answer(403, 'Forbidden (no messages from a trunk back out)');
        return;
      }
    }
    if (!route) {
      answer(404);
      return;
    }
    const log = { from: sender.user, to: route.number, target: route.target.kind, bytes: req.body.length };
    this.opts.logger.info('message', log);
    const settle = (status: number, reason?: string): void => {
      if (status >= 300) this.opts.logger.info('message not delivered', { ...log, status });
      answer(status, reason);
    };
    const target = route.target;
    switch (target.kind) {
      case 'peer':
        settle(404, 'Not Found (messages are not relayed to LAN peers)');
        return;
      case 'echo':
        settle(200);
        this.echo(req, sender, route.number, maxForwards - 1);
        return;
      case 'device':
        if (this.opts.device) {
          this.opts.device.deliver(this.received(req, sender, route.number));
          settle(200);
          return;
        }
        this.toExtension(req, sender, this.opts.deviceExtension, maxForwards - 1, settle);
        return;
      case 'extension':
        this.toExtension(req, sender, target.extension, maxForwards - 1, settle);
        return;
      case 'trunk':
        this.toTrunk(req, target.trunk, route.number, maxForwards - 1, settle);
        return;
    }
  }

  /** Sends to every live binding of `extension`: the first 2xx answers; all failed: the best failure. */
  private toExtension(req: SipRequest, sender: Sender, extension: string, maxForwards: number, settle: (status: number, reason?: string) => void): void {
    const specs = this.extensionSpecs(req, sender, extension, maxForwards);
    if ('status' in specs) {
      settle(specs.status, specs.reason);
      return;
    }
    let done = false;
    const failures: { status: number; reason: string; local?: boolean }[] = [];
    for (const spec of specs) {
      sendMessage(this.opts, spec, (status, res) => {
        if (done) return;
        if (status >= 200 && status < 300) {
          done = true;
          settle(status, res?.reason);
          return;
        }
        failures.push(res ? { status, reason: res.reason } : { status, reason: localReason(status), local: true });
        if (failures.length < specs.length) return;
        done = true;
        const chosen = messageFailure(failures);
        settle(chosen.status, chosen.reason);
      });
    }
  }

  /** One MESSAGE per live binding of `extension`, or 480 when there is none. */
  private extensionSpecs(req: SipRequest, sender: Sender, extension: string, maxForwards: number): OutboundMessage[] | Refusal {
    const specs: OutboundMessage[] = [];
    for (const binding of this.opts.registrar.lookup(extension)) {
      if (this.opts.reachable?.(binding.contact) === false) continue;
      const flow = bindingFlow(binding);
      if (!flow) continue;
      specs.push({
        flow,
        local: this.opts.localEndpoint(flow.transport, flow.address),
        requestUri: binding.contact,
        from: `${sender.display ? `${quoted(sender.display)} ` : ''}<sip:${uriUser(sender.user)}@${this.opts.domain}>`,
        to: `<sip:${uriUser(extension)}@${this.opts.domain}>`,
        maxForwards,
        headers: carried(req),
        body: req.body,
        label: `${extension} ${binding.contact}`,
      });
    }
    if (specs.length === 0) return { status: 480, reason: 'Temporarily Unavailable (not registered)' };
    return specs;
  }

  /** Sends to the trunk as its account, answering its challenges with the trunk's credentials. */
  private toTrunk(req: SipRequest, name: string, number: string, maxForwards: number, settle: (status: number, reason?: string) => void): void {
    const trunk = this.opts.trunks.find((t) => t.name === name);
    if (!trunk) {
      settle(503, 'Service Unavailable (trunk not configured)');
      return;
    }
    const flow = trunk.destination();
    const transport = trunk.transport === 'udp' ? '' : `;transport=${trunk.transport}`;
    const spec: OutboundMessage = {
      flow,
      local: this.opts.localEndpoint(flow.transport, flow.address),
      requestUri: `sip:${uriUser(number)}@${trunk.domain}${transport}`,
      from: `<sip:${uriUser(trunk.username)}@${trunk.domain}>`,
      to: `<sip:${uriUser(number)}@${trunk.domain}>`,
      maxForwards,
      headers: carried(req),
      body: req.body,
      digest: new DigestClient({ username: trunk.authUsername ?? trunk.username, password: trunk.password, random: this.opts.random }),
      label: `trunk ${trunk.name}`,
    };
    sendMessage(this.opts, spec, (status, res) => {
      if (status >= 200 && status < 300) settle(status, res?.reason);
      else {
        const chosen = messageFailure([res ? { status, reason: res.reason } : { status, reason: localReason(status), local: true }]);
        settle(chosen.status, chosen.reason);
      }
    });
  }

  /** Echo: the same body back to the sending extension's phones, from the echo number. */
  private echo(req: SipRequest, sender: Sender, echoNumber: string, maxForwards: number): void {
    const specs = this.extensionSpecs(req, { user: echoNumber }, sender.user, maxForwards);
    if ('status' in specs) return;
    for (const spec of specs) {
      sendMessage(this.opts, spec, (status) => {
        if (status >= 300) this.opts.logger.info('echo message not delivered', { to: sender.user, status });
      });
    }
  }

  /** The message as the device's inbox keeps it. */
  private received(req: SipRequest, sender: Sender, to: string): ReceivedMessage {
    let contentType = 'text/plain';
    try {
      const ct = parseContentType(req.headers.get('Content-Type') ?? 'text/plain');
      contentType = `${ct.type}/${ct.subtype}`;
    } catch {
      // The UAS core refuses a malformed Content-Type before we get here.
    }
    return {
      from: sender.user,
      ...(sender.display ? { display: sender.display } : {}),
      to,
      contentType,
      bytes: req.body.length,
      ...(contentType.startsWith('text/') ? { text: req.body.toString('utf8') } : {}),
      at: this.opts.clock.wallNow(),
    };
  }

  /** Extensions appear by number and configured name; a trunk's sender by its caller ID. */
  private senderOf(req: SipRequest, origin: MessageOrigin): Sender {
    let from: ReturnType<typeof parseNameAddr> | undefined;
    try {
      from = parseNameAddr(req.headers.get('From') ?? '');
    } catch {
      from = undefined;
    }
    if (origin.kind === 'user') {
      const display = this.opts.extensions[origin.username]?.name ?? from?.displayName;
      return { user: origin.username, ...(display ? { display } : {}) };
    }
    const user = from?.uri.user ?? 'anonymous';
    return { user, ...(from?.displayName ? { display: from.displayName } : {}) };
  }
}

/** The Request-URI's user part (or a tel URI's number): what the dial plan routes. */
function numberOf(uri: string): string | undefined {
  try {
    const parsed = parseUri(uri);
    return parsed.user ?? (parsed.scheme === 'tel' ? parsed.host : undefined);
  } catch {
    return undefined;
  }
}

function localReason(status: number): string {
  return status === 408 ? 'Request Timeout' : status === 503 ? 'Service Unavailable' : 'Server Internal Error';
}

/** The content headers of `req` to carry over, in order. */
function carried(req: SipRequest): [string, string][] {
  const out: [string, string][] = [];
  for (const name of CARRIED) for (const value of req.headers.getAll(name)) out.push([name, value]);
  return out;
}
