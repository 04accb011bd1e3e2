/**
 * The registrar (RFC 3261 §10.3): turns an authenticated REGISTER into changes of the
 * {@link BindingStore} and answers it. The UAS core has already done steps 1-5 (the To is a SIP
 * or SIPS URI owned by the authenticated user); this file does steps 6-8.
 */
import type { Clock } from '../runtime/clock.ts';
import type { LogFields, Logger } from '../runtime/logger.ts';
import { buildResponse } from '../sip/dialog/request-builder.ts';
import {
  parseContact,
  parseCSeq,
  parseNameAddr,
  parseTokenList,
  parseUint,
  parseVia,
  quote,
  unquote,
} from '../sip/message/header-values.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import type { ContactValue, SipUri } from '../sip/message/types.ts';
import { parseUri, serializeUri } from '../sip/message/uri.ts';
import type { Destination } from '../sip/transaction/types.ts';
import type { RegisterHandler } from '../sip/ua/uas-core.ts';
import { BindingStore } from './binding-store.ts';
import type { AppliedChange, Binding, BindingSource, ContactChange } from './binding-store.ts';

export interface RegistrarOptions {
  clock: Clock;
  /** The bindings; a fresh in-memory store when omitted. */
  store?: BindingStore;
  logger?: Logger;
  /** Lifetime granted when the REGISTER names none (default 3600 s, §10.2.1.1). */
  defaultExpires?: number;
  /** Shorter non-zero lifetimes are refused with 423 (default 60 s). */
  minExpires?: number;
  /** Longer lifetimes are shortened to this (default 3600 s). */
  maxExpires?: number;
  /**
   * Where bindings are made durable (a {@link BindingFile} in the gateway). Without it the
   * registrar is purely in memory and always answers synchronously.
   */
  persistence?: RegistrarPersistence;
  /** Retry-After (seconds) of the 500 sent when persisting a change failed (default 5). */
  retryAfterSeconds?: number;
}

/**
 * The durability the registrar asks for. `commit` resolves once every change made before the call
 * is on disk and rejects when the write failed; `markDirty` asks for a write some time soon.
 */
export interface RegistrarPersistence {
  commit(): Promise<void>;
  markDirty(): void;
}

/** A request the registrar refuses: the status, reason phrase and any extra header fields. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly headers: [string, string][] = [],
  ) {
    super(`${status} ${reason}`);
    this.name = 'Refusal';
  }
}

const MAX_UINT32 = 0xffffffff;

/**
 * Parses a `q` value (RFC 3261 §25.1: `"0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ]`).
 * Returns undefined when malformed.
 */
function parseQ(text: string): number | undefined {
  if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(text)) return undefined;
  return Number(text);
}

/** The q value as the grammar writes it (at most three decimals, no trailing dot). */
function formatQ(q: number): string {
  return String(Math.round(q * 1000) / 1000);
}

/**
 * Handles REGISTER for the UAS core ({@link RegisterHandler}) and answers the call layer's
 * "where is this user" ({@link lookup}).
 */
export class Registrar implements RegisterHandler {
  readonly store: BindingStore;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly defaultExpires: number;
  private readonly minExpires: number;
  private readonly maxExpires: number;
  private readonly persistence: RegistrarPersistence | undefined;
  private readonly retryAfter: number;

  constructor(opts: RegistrarOptions) {
    this.clock = opts.clock;
    this.store = opts.store ?? new BindingStore({ clock: opts.clock });
    this.logger = opts.logger;
    this.maxExpires = opts.maxExpires ?? 3600;
    this.minExpires = Math.min(opts.minExpires ?? 60, this.maxExpires);
    this.defaultExpires = Math.min(opts.defaultExpires ?? 3600, this.maxExpires);
    this.persistence = opts.persistence;
    this.retryAfter = opts.retryAfterSeconds ?? 5;
  }

  /**
   * Processes an authenticated REGISTER (RFC 3261 §10.3 steps 6-8) and returns the response:
   * 200 with every current binding, 400 for a malformed or contradictory request, 423 with
   * Min-Expires, 500 for an out-of-order request (step 7), 403 when the bounds are reached.
   *
   * With {@link RegistrarOptions.persistence}, a request that adds or removes a binding is
   * answered with a Promise: the 200 comes once the change is durable, so an answered binding
   * survives a crash. If the write fails, the change is undone (§10.3 step 7: "all tentative
   * binding updates MUST be removed") and the answer is 500 with Retry-After. A pure refresh,
   * a query and every refusal are answered synchronously; a refresh is written lazily.
   *
   * @param username the authenticated user; the core checked it owns the To URI.
   * @param source where the request came from; taken from the top Via when not given.
   */
  register(req: SipRequest, username: string, source?: Destination): SipResponse | Promise<SipResponse> {
    try {
      return this.process(req, username, source);
    } catch (err) {
      if (err instanceof Refusal) {
        this.logger?.warn('REGISTER refused', {
          status: err.status,
          reason: err.reason,
          user: username,
          callId: req.headers.get('call-id'),
        });
        return buildResponse(req, err.status, err.reason, { headers: err.headers });
      }
      throw err;
    }
  }

  /**
   * The live bindings of an address of record (`sip:alice@example.net`, or a parsed URI) or, for
   * text without a `sip:`/`sips:` scheme, of every address of record of that user; highest q
   * first.
   */
  lookup(aorOrUser: string | SipUri): Binding[] {
    if (typeof aorOrUser !== 'string') return this.store.bindings(aorOrUser);
    if (/^sips?:/i.test(aorOrUser)) {
      try {
        return this.store.bindings(parseUri(aorOrUser));
      } catch {
        return [];
      }
    }
    return this.store.bindingsOfUser(aorOrUser);
  }

  /** How many live bindings the registrar holds. */
  count(): number {
    return this.store.count();
  }

  private process(req: SipRequest, username: string, source: Destination | undefined): SipResponse | Promise<SipResponse> {
    let aor: SipUri;
    try {
      aor = parseNameAddr(req.headers.get('to') ?? '').uri;
    } catch {
      throw new Refusal(400, 'Address of Record Must Be a SIP URI');
    }
    const callId = req.headers.get('call-id');
    if (callId === undefined) throw new Refusal(400, 'Missing Call-ID');
    let cseq: number;
    try {
      cseq = parseCSeq(req.headers.get('cseq') ?? '').seq;
    } catch {
      throw new Refusal(400, 'Bad CSeq');
    }

    const values = this.contactValues(req);
    if (values.length > 0) {
      const contacts = this.contactChanges(req, values);
      const change = {
        aor,
        callId,
        cseq,
        contacts,
        source: sourceOf(req, source),
        ...optional('userAgent', req.headers.get('user-agent')),
        ...(req.headers.has('path') ? { path: req.headers.getAll('path') } : {}),
      };
      const result = this.store.apply(change);
      if (!result.ok) {
        if (result.reason === 'out-of-order') throw new Refusal(500, 'Out of Order Registration');
        throw new Refusal(403, result.reason === 'too-many-bindings' ? 'Too Many Registered Contacts' : 'Registrar Full');
      }
      const fields = { user: username, aor: serializeUri(aor), bindings: result.bindings.length, callId };
      if (this.persistence && result.changed) {
        return this.persistence.commit().then(
          () => {
            this.logger?.info('registration updated', fields);
            return this.ok(req, result.bindings);
          },
          (err: unknown) => this.persistFailed(req, result, fields, err),
        );
      }
      if (this.persistence) this.persistence.markDirty();
      this.logger?.[result.changed ? 'info' : 'debug']('registration updated', fields);
      return this.ok(req, result.bindings);
    }
    // §10.3 step 8 for a query: no Contact, nothing changes, the bindings are listed.
    return this.ok(req, this.store.bindings(aor));
  }

  /** The write of a new or removed binding failed: undo it when nobody changed the AOR since, answer 500. */
  private persistFailed(req: SipRequest, result: AppliedChange, fields: LogFields, err: unknown): SipResponse {
    const undone = result.undo();
    this.logger?.error(
      undone
        ? 'could not persist registration; change undone'
        : 'could not persist registration; a later change superseded it, binding kept in memory',
      { ...fields, error: err instanceof Error ? err.message : String(err) },
    );
    return buildResponse(req, 500, 'Server Internal Error', { headers: [['Retry-After', String(this.retryAfter)]] });
  }

  private contactValues(req: SipRequest): ContactValue[] {
    const out: ContactValue[] = [];
    for (const v of req.headers.getAll('contact')) {
      try {
        out.push(parseContact(v));
      } catch {
        throw new Refusal(400, 'Malformed Contact');
      }
    }
    return out;
  }

  /** Works out each contact's lifetime (§10.3 step 7) and checks the `*` form (step 6). */
  private contactChanges(req: SipRequest, values: ContactValue[]): ContactChange[] | '*' {
    const headerExpires = this.expiresHeader(req);
    if (values.some((v) => v.star)) {
      // §10.3 step 6: "If the request has additional Contact fields or an expiration time
      // other than zero, the request is invalid, and the server MUST return a 400".
      if (values.length > 1) throw new Refusal(400, 'Contact * Must Be the Only Contact');
      if (headerExpires !== 0) throw new Refusal(400, 'Contact * Requires Expires: 0');
      return '*';
    }
    const changes: ContactChange[] = [];
    for (const v of values) {
      if (v.star) continue;
      if (v.uri.scheme === 'tel') throw new Refusal(400, 'Contact Must Be a SIP URI');
      const change: ContactChange = { uri: v.uri, expires: this.grant(v.params.get('expires'), headerExpires) };
      const q = v.params.get('q');
      if (q !== undefined) {
        const n = q === null ? undefined : parseQ(q);
        if (n === undefined) throw new Refusal(400, 'Bad q Value in Contact');
        change.q = n;
      }
      const instance = v.params.get('+sip.instance');
      if (instance !== undefined && instance !== null) change.instanceId = unquote(instance);
      const regId = v.params.get('reg-id');
      if (regId !== undefined && change.instanceId !== undefined) {
        try {
          change.regId = parseUint(regId ?? '', 0x7fffffff);
        } catch {
          throw new Refusal(400, 'Bad reg-id in Contact');
        }
        if (change.regId === 0) throw new Refusal(400, 'Bad reg-id in Contact');
      }
      changes.push(change);
    }
    return changes;
  }

  /**
   * The Expires header in seconds, or undefined when absent. RFC 3261 §20.19: "Malformed values
   * SHOULD be treated as equivalent to 3600", i.e. as the default lifetime.
   */
  private expiresHeader(req: SipRequest): number | undefined {
    const text = req.headers.get('expires');
    if (text === undefined) return undefined;
    try {
      return parseUint(text, MAX_UINT32);
    } catch {
      return this.defaultExpires;
    }
  }

  /**
   * §10.3 step 7: the Contact `expires` parameter wins over the Expires header, which wins over
   * the registrar's default. "If and only if the requested expiration interval is greater than
   * zero AND smaller than one hour AND less than a registrar-configured minimum, the registrar
   * MAY reject the registration with a response of 423 (Interval Too Brief). This response MUST
   * contain a Min-Expires header field". A longer interval is shortened to the maximum.
   */
  private grant(param: string | null | undefined, headerExpires: number | undefined): number {
    let requested: number;
    if (param !== undefined) {
      try {
        requested = parseUint(param ?? '', MAX_UINT32);
      } catch {
        requested = this.defaultExpires;
      }
    } else {
      requested = headerExpires ?? this.defaultExpires;
    }
    if (requested > 0 && requested < 3600 && requested < this.minExpires) {
      throw new Refusal(423, 'Interval Too Brief', [['Min-Expires', String(this.minExpires)]]);
    }
    return Math.min(requested, this.maxExpires);
  }

  /** §10.3 step 8: "The response SHOULD include a Contact header field value enumerating all current bindings". */
  private ok(req: SipRequest, bindings: readonly Binding[]): SipResponse {
    const now = this.clock.wallNow();
    const headers: [string, string][] = [];
    for (const b of bindings) headers.push(['Contact', this.contactHeader(b, now)]);
    // RFC 3327 §5.3: echo Path to a UA that said it supports the extension.
    const supported = req.headers.getAll('supported').flatMap((v) => {
      try {
        return parseTokenList(v);
      } catch {
        return [];
      }
    });
    if (req.headers.has('path') && supported.some((t) => t.toLowerCase() === 'path')) {
      headers.push(['Path', req.headers.getAll('path').join(', ')]);
    }
    headers.push(['Date', new Date(now).toUTCString()]);
    return buildResponse(req, 200, undefined, { headers });
  }

  private contactHeader(b: Binding, now: number): string {
    const remaining = Math.max(0, Math.ceil((b.expiresAt - now) / 1000));
    let out = `<${b.contact}>;expires=${remaining}`;
    if (b.q !== undefined) out += `;q=${formatQ(b.q)}`;
    if (b.instanceId !== undefined) out += `;+sip.instance=${quote(b.instanceId)}`;
    if (b.regId !== undefined) out += `;reg-id=${b.regId}`;
    return out;
  }
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

/** The given source, else the top Via's received/rport or sent-by (RFC 3261 §18.2.1, RFC 3581). */
function sourceOf(req: SipRequest, source: Destination | undefined): BindingSource | undefined {
  if (source) return { transport: source.transport, address: source.address, port: source.port };
  const top = req.headers.getAll('via')[0];
  if (top === undefined) return undefined;
  try {
    const via = parseVia(top);
    const port = typeof via.rport === 'number' ? via.rport : (via.port ?? (via.transport === 'TLS' ? 5061 : 5060));
    return { transport: via.transport.toLowerCase(), address: via.received ?? via.host, port };
  } catch {
    return undefined;
  }
}
