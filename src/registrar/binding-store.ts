/**
 * The location service: bindings from addresses of record to contact addresses (RFC 3261 §10.3
 * steps 6-8), with the RFC 5626 instance-id/reg-id key. Pure and in memory: time comes from the
 * injected {@link Clock}, persistence goes through {@link BindingStore.snapshot} and
 * {@link BindingStore.restore}, which trade plain serialisable records.
 */
import type { Clock } from '../runtime/clock.ts';
import type { SipUri } from '../sip/message/types.ts';
import { ipv6Words, isIpv6Reference, parseUri, serializeUri } from '../sip/message/uri.ts';
import { uriEquals } from '../sip/message/uri-equals.ts';

/** Where the REGISTER that created a binding came from. */
export interface BindingSource {
  /** `udp`, `tcp`, `tls`, or the Via transport in lower case. */
  transport: string;
  address: string;
  port: number;
}

/**
 * One binding as stored and as persisted. Every field is a string, number or array of strings,
 * so a record survives `JSON.stringify`/`JSON.parse` unchanged.
 */
export interface BindingRecord {
  /** The canonical address of record, `sip:user@domain` (§10.3 step 5). */
  aor: string;
  /** The contact URI with its URI parameters and headers (not the Contact header parameters). */
  contact: string;
  /** The `q` Contact parameter (0 to 1); absent when the UA gave none. */
  q?: number;
  /** When the binding lapses, in wall-clock milliseconds since the epoch. */
  expiresAt: number;
  callId: string;
  cseq: number;
  /** The `+sip.instance` value without its quotes, e.g. `<urn:uuid:...>` (RFC 5626 §4.1). */
  instanceId?: string;
  /** The `reg-id` Contact parameter (RFC 5626 §4.2). */
  regId?: number;
  source?: BindingSource;
  userAgent?: string;
  /** Path header values of the REGISTER, in order (RFC 3327). */
  path?: string[];
}

/** A binding handed to callers: a record they may read but not change. */
export type Binding = Readonly<BindingRecord>;

/** One contact of a REGISTER, already validated, with its granted lifetime. */
export interface ContactChange {
  uri: SipUri;
  /** Granted lifetime in seconds; 0 removes the binding. */
  expires: number;
  q?: number;
  instanceId?: string;
  regId?: number;
}

/** Everything one REGISTER asks of the store. */
export interface RegistrationChange {
  /** The To URI; it is reduced to its canonical form here. */
  aor: SipUri;
  callId: string;
  cseq: number;
  /** The contacts to add, refresh or remove, or `'*'` to remove every binding (§10.3 step 6). */
  contacts: readonly ContactChange[] | '*';
  source?: BindingSource;
  userAgent?: string;
  path?: readonly string[];
}

/** Why {@link BindingStore.apply} refused a change. Nothing was changed in either case. */
export type ApplyFailure =
  /** §10.3 steps 6-7: a binding with the same Call-ID has an equal or higher CSeq. */
  | 'out-of-order'
  /** The address of record would hold more than `maxBindingsPerAor` bindings. */
  | 'too-many-bindings'
  /** A new address of record would exceed `maxAors`. */
  | 'too-many-aors';

/** A change {@link BindingStore.apply} committed. */
export interface AppliedChange {
  ok: true;
  /** The bindings of the address of record afterwards, highest q first. */
  bindings: Binding[];
  /**
   * Whether a binding was added or removed, or a binding moved to a new contact URI (the
   * registrar makes these durable before answering). False for a pure refresh of existing
   * bindings, a query, or a removal of nothing.
   */
  changed: boolean;
  /**
   * Puts the address of record back as it was before this change (RFC 3261 §10.3 step 7: when
   * the back-end commit fails "all tentative binding updates MUST be removed"). Does nothing and
   * returns false when a later change has touched the address of record since; true when undone.
   */
  undo(): boolean;
}

export type ApplyResult = AppliedChange | { ok: false; reason: ApplyFailure; message: string };

export interface BindingStoreOptions {
  clock: Clock;
  /** Most bindings one address of record may hold (default 10). */
  maxBindingsPerAor?: number;
  /** Most addresses of record with bindings (default 1000). */
  maxAors?: number;
}

interface AorEntry {
  uri: SipUri;
  key: string;
  bindings: BindingRecord[];
}

/**
 * The canonical form of an address of record (RFC 3261 §10.3 step 5): "all URI parameters MUST
 * be removed (including the user-param), and any escaped characters MUST be converted to their
 * unescaped form". The parser already unescaped; the scheme is reduced to `sip` so that a sips
 * registration and a sip lookup meet.
 */
export function canonicalAor(uri: SipUri): SipUri {
  const out: SipUri = { scheme: 'sip', host: uri.host, params: new Map(), headers: new Map() };
  if (uri.user !== undefined) out.user = uri.user;
  if (uri.port !== undefined) out.port = uri.port;
  return out;
}

/**
 * The map key of a canonical address of record. Canonical URIs carry no parameters, headers or
 * password, so RFC 3261 §19.1.4 equality reduces to: user and port equal, host equal ignoring
 * case (IPv6 references by value). One map lookup then finds an AOR however it was written.
 */
function aorKey(canonical: SipUri): string {
  let host = canonical.host.toLowerCase();
  if (isIpv6Reference(host)) {
    const inner = host.slice(1, -1);
    const words = ipv6Words(inner.includes(':::') ? inner.replace(':::', '::') : inner);
    if (words) host = `[${words.map((w) => w.toString(16)).join(':')}]`;
  }
  return `${canonical.user === undefined ? '\u0001' : canonical.user}\u0000${host}\u0000${canonical.port ?? ''}`;
}

function qOrder(b: BindingRecord): number {
  return b.q ?? 1;
}

/** Sorts by q, highest first; equal q keeps the order bindings were added. */
function byQ(list: readonly BindingRecord[]): Binding[] {
  return list
    .map((b, i) => ({ b, i }))
    .sort((x, y) => qOrder(y.b) - qOrder(x.b) || x.i - y.i)
    .map((x) => x.b);
}

function sameInstance(b: BindingRecord, c: ContactChange): boolean {
  return (
    b.instanceId !== undefined &&
    c.instanceId !== undefined &&
    b.instanceId.toLowerCase() === c.instanceId.toLowerCase() &&
    b.regId === c.regId
  );
}

/**
 * Bindings per address of record. The caller (the {@link Registrar}) validates the request and
 * works out each contact's lifetime; the store applies RFC 3261 §10.3 steps 6-7 atomically.
 * Expired bindings are never returned and are dropped whenever their address of record is
 * touched, or all at once by {@link purge}.
 */
export class BindingStore {
  private readonly clock: Clock;
  private readonly maxBindingsPerAor: number;
  private readonly maxAors: number;
  private readonly aors = new Map<string, AorEntry>();

  constructor(opts: BindingStoreOptions) {
    this.clock = opts.clock;
    this.maxBindingsPerAor = opts.maxBindingsPerAor ?? 10;
    this.maxAors = opts.maxAors ?? 1000;
  }

  /**
   * Applies one REGISTER's contacts. Either every change is committed or none is (§10.3 step 7:
   * "The binding updates MUST be committed ... if and only if all binding updates and additions
   * succeed"). Returns the bindings of the address of record afterwards, sorted by q.
   */
  apply(change: RegistrationChange): ApplyResult {
    const now = this.clock.wallNow();
    const aorUri = canonicalAor(change.aor);
    const entry = this.find(aorUri);
    const current = entry ? this.live(entry, now) : [];
    const next: BindingRecord[] = [...current];
    const added = new Set<BindingRecord>();
    let changed = false;

    const outOfOrder = (b: BindingRecord): boolean => b.callId === change.callId && b.cseq >= change.cseq;
    const refused = (b: BindingRecord): ApplyResult => ({
      ok: false,
      reason: 'out-of-order',
      message: `CSeq ${change.cseq} is not higher than ${b.cseq} of the binding ${b.contact} (same Call-ID)`,
    });

    if (change.contacts === '*') {
      // §10.3 step 6: "If it does agree, it MUST remove the binding only if the CSeq in the
      // request is higher than the value stored for that binding. Otherwise, the update MUST be
      // aborted and the request fails."
      const stale = current.find(outOfOrder);
      if (stale) return refused(stale);
      changed = current.length > 0;
      next.length = 0;
    } else {
      for (const c of change.contacts) {
        // §10.3 step 7: an existing binding is found by URI comparison; RFC 5626 §6: a contact
        // carrying the same instance-id (and reg-id) is the same binding even at a new URI.
        const matches = next.filter((b) => sameInstance(b, c) || uriEquals(parseUri(b.contact), c.uri));
        for (const b of matches) {
          // Bindings added earlier in this same request are not "existing" for the CSeq rule.
          if (!added.has(b) && outOfOrder(b)) return refused(b);
        }
        const at = matches.length > 0 ? next.indexOf(matches[0]!) : next.length;
        const rest = next.filter((b) => !matches.includes(b));
        if (c.expires > 0) {
          const record = this.record(aorUri, c, change, now);
          // A refresh keeps exactly one binding at the same contact; anything else adds,
          // merges or moves bindings.
          if (matches.length !== 1 || matches[0]!.contact !== record.contact) changed = true;
          added.add(record);
          rest.splice(Math.min(at, rest.length), 0, record);
        } else if (matches.length > 0) {
          changed = true;
        }
        next.length = 0;
        next.push(...rest);
      }
    }

    if (next.length > this.maxBindingsPerAor && next.length > current.length) {
      return {
        ok: false,
        reason: 'too-many-bindings',
        message: `an address of record may hold at most ${this.maxBindingsPerAor} bindings`,
      };
    }
    if (!entry && next.length > 0 && this.aors.size >= this.maxAors) {
      this.purge();
      if (this.aors.size >= this.maxAors) {
        return { ok: false, reason: 'too-many-aors', message: `at most ${this.maxAors} addresses of record` };
      }
    }
    const before = entry?.bindings;
    this.commit(aorUri, entry, next);
    return { ok: true, bindings: byQ(next), changed, undo: () => this.undo(aorUri, before, next) };
  }

  /**
   * The live bindings of an address of record (a URI, or its text), highest q first. The URI is
   * compared in canonical form, so parameters and escaping do not matter.
   */
  bindings(aor: SipUri | string): Binding[] {
    const uri = canonicalAor(typeof aor === 'string' ? parseUri(aor) : aor);
    const entry = this.find(uri);
    if (!entry) return [];
    const live = this.live(entry, this.clock.wallNow());
    this.commit(uri, entry, live);
    return byQ(live);
  }

  /** The live bindings of every address of record whose user part is `user`, highest q first. */
  bindingsOfUser(user: string): Binding[] {
    const now = this.clock.wallNow();
    const out: BindingRecord[] = [];
    for (const entry of [...this.aors.values()]) {
      if (entry.uri.user !== user) continue;
      const live = this.live(entry, now);
      this.commit(entry.uri, entry, live);
      out.push(...live);
    }
    return byQ(out);
  }

  /** How many live bindings the store holds in all. */
  count(): number {
    const now = this.clock.wallNow();
    let n = 0;
    for (const entry of this.aors.values()) n += this.live(entry, now).length;
    return n;
  }

  /** Drops every expired binding and empty address of record; returns how many bindings went. */
  purge(): number {
    const now = this.clock.wallNow();
    let removed = 0;
    for (const entry of [...this.aors.values()]) {
      const live = this.live(entry, now);
      removed += entry.bindings.length - live.length;
      this.commit(entry.uri, entry, live);
    }
    return removed;
  }

  /** Copies of every live binding, fit for `JSON.stringify`. */
  snapshot(): BindingRecord[] {
    const now = this.clock.wallNow();
    const out: BindingRecord[] = [];
    for (const entry of this.aors.values()) {
      for (const b of this.live(entry, now)) out.push(copyRecord(b));
    }
    return out;
  }

  /**
   * Replaces the store's content with persisted records. Records already expired at `now`
   * (wall-clock ms), malformed ones, and those beyond the configured bounds are skipped, so a
   * damaged file cannot break the registrar. Returns how many bindings were restored.
   */
  restore(records: readonly unknown[], now: number = this.clock.wallNow()): number {
    this.aors.clear();
    let restored = 0;
    for (const raw of records) {
      const rec = validRecord(raw);
      if (!rec || rec.expiresAt <= now) continue;
      let aorUri: SipUri;
      try {
        aorUri = canonicalAor(parseUri(rec.aor));
        parseUri(rec.contact);
      } catch {
        continue;
      }
      const entry = this.find(aorUri);
      if (!entry && this.aors.size >= this.maxAors) continue;
      const list = entry ? [...entry.bindings] : [];
      if (list.length >= this.maxBindingsPerAor) continue;
      list.push({ ...rec, aor: serializeUri(aorUri) });
      this.commit(aorUri, entry, list);
      restored++;
    }
    return restored;
  }

  private record(aorUri: SipUri, c: ContactChange, change: RegistrationChange, now: number): BindingRecord {
    const r: BindingRecord = {
      aor: serializeUri(aorUri),
      contact: serializeUri(c.uri),
      expiresAt: now + c.expires * 1000,
      callId: change.callId,
      cseq: change.cseq,
    };
    if (c.q !== undefined) r.q = c.q;
    if (c.instanceId !== undefined) r.instanceId = c.instanceId;
    if (c.regId !== undefined) r.regId = c.regId;
    if (change.source) r.source = { ...change.source };
    if (change.userAgent !== undefined) r.userAgent = change.userAgent;
    if (change.path && change.path.length > 0) r.path = [...change.path];
    return r;
  }

  private find(canonical: SipUri): AorEntry | undefined {
    return this.aors.get(aorKey(canonical));
  }

  private live(entry: AorEntry, now: number): BindingRecord[] {
    return entry.bindings.filter((b) => b.expiresAt > now);
  }

  /** See {@link AppliedChange.undo}: restores `before` only while `applied` is still current. */
  private undo(aorUri: SipUri, before: BindingRecord[] | undefined, applied: BindingRecord[]): boolean {
    const entry = this.find(aorUri);
    const current = entry?.bindings;
    // An emptied address of record is deleted, so "still current" means absent.
    if (applied.length === 0 ? current !== undefined : current !== applied) return false;
    this.commit(aorUri, entry, before ?? []);
    return true;
  }

  private commit(uri: SipUri, entry: AorEntry | undefined, bindings: BindingRecord[]): void {
    if (entry) {
      if (bindings.length === 0) this.aors.delete(entry.key);
      // Keeping the array when nothing changed lets undo() tell whether anyone touched it.
      else if (!sameRecords(entry.bindings, bindings)) entry.bindings = bindings;
    } else if (bindings.length > 0) {
      const key = aorKey(uri);
      this.aors.set(key, { uri, key, bindings });
    }
  }
}

function sameRecords(a: readonly BindingRecord[], b: readonly BindingRecord[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

function copyRecord(b: BindingRecord): BindingRecord {
  const out: BindingRecord = { ...b };
  if (b.source) out.source = { ...b.source };
  if (b.path) out.path = [...b.path];
  return out;
}

function isString(v: unknown): v is string {
  return typeof v === 'string';
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** A persisted record checked field by field; undefined when anything is off. */
function validRecord(raw: unknown): BindingRecord | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (!isString(r.aor) || !isString(r.contact) || !isString(r.callId)) return undefined;
  if (!isFiniteNumber(r.expiresAt) || !isFiniteNumber(r.cseq)) return undefined;
  const out: BindingRecord = { aor: r.aor, contact: r.contact, expiresAt: r.expiresAt, callId: r.callId, cseq: r.cseq };
  if (r.q !== undefined) {
    if (!isFiniteNumber(r.q) || r.q < 0 || r.q > 1) return undefined;
    out.q = r.q;
  }
  if (r.instanceId !== undefined) {
    if (!isString(r.instanceId)) return undefined;
    out.instanceId = r.instanceId;
  }
  if (r.regId !== undefined) {
    if (!isFiniteNumber(r.regId)) return undefined;
    out.regId = r.regId;
  }
  if (r.source !== undefined) {
    const s = r.source as Record<string, unknown> | null;
    if (typeof s !== 'object' || s === null || !isString(s.transport) || !isString(s.address) || !isFiniteNumber(s.port)) {
      return undefined;
    }
    out.source = { transport: s.transport, address: s.address, port: s.port };
  }
  if (r.userAgent !== undefined) {
    if (!isString(r.userAgent)) return undefined;
    out.userAgent = r.userAgent;
  }
  if (r.path !== undefined) {
    if (!Array.isArray(r.path) || !r.path.every(isString)) return undefined;
    out.path = [...r.path];
  }
  return out;
}
