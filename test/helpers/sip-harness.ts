/**
 * An in-memory gateway for call tests: SipStack → UasCore → B2bua with a ManualClock, a seeded
 * Random, a fake media session and fake phones. Test code plays the phones: each {@link Phone}
 * has an inbox of what the gateway sent to its address and sends requests and responses back.
 */
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';
import { SeededRandom } from '../../src/runtime/random.ts';
import { DigestClient } from '../../src/sip/auth/digest-client.ts';
import { DigestServer } from '../../src/sip/auth/digest-server.ts';
import { Dialog } from '../../src/sip/dialog/dialog.ts';
import { buildRequest, buildResponse } from '../../src/sip/dialog/request-builder.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../src/sip/message/message.ts';
import { parseMessage } from '../../src/sip/message/parser.ts';
import { serializeMessage } from '../../src/sip/message/serialize.ts';
import { SipStack } from '../../src/sip/stack.ts';
import type { Destination } from '../../src/sip/transaction/types.ts';
import type { Endpoint } from '../../src/sip/transport/transport.ts';
import { ExtensionCredentials, RequestAuthenticator } from '../../src/sip/ua/request-authenticator.ts';
import { UasCore } from '../../src/sip/ua/uas-core.ts';
import { B2bua } from '../../src/calls/b2bua.ts';
import { DialPlan } from '../../src/calls/dialplan.ts';
import type { Binding } from '../../src/registrar/binding-store.ts';
import type { B2buaOptions, CallMedia, CallMediaFactory, LegName, SdpResult, TrunkTarget } from '../../src/calls/types.ts';

export const DOMAIN = 'pbx.test';
export const GW: Endpoint = { transport: 'udp', address: '192.0.2.1', port: 5060 };

/** A recognisable SDP: `s=` names what it is, `a=` carries the direction. */
export function sdp(label: string, direction = 'sendrecv', codecs = '0 8'): string {
  return `v=0\r\no=- 1 1 IN IP4 10.9.9.9\r\ns=${label}\r\nc=IN IP4 10.9.9.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP ${codecs}\r\na=${direction}\r\n`;
}

/** The `s=` line of a message's SDP body. */
export function sdpLabel(msg: SipMessage | undefined): string | undefined {
  return /^s=(.*)$/m.exec(msg?.body.toString('latin1') ?? '')?.[1]?.replace(/\r$/, '');
}

function direction(body: string): string {
  return /^a=(sendrecv|sendonly|recvonly|inactive)/m.exec(body)?.[1] ?? 'sendrecv';
}

/** A media session that records what it was asked and answers with labelled SDP. */
export class FakeMedia implements CallMedia {
  readonly log: string[] = [];
  readonly local: Partial<Record<LegName, string>> = {};
  readonly idle: Record<LegName, number> = { a: 0, b: 0 };
  closed = false;
  private reoffered: LegName | undefined;

  setLocalAddress(leg: LegName, address: string): void {
    this.local[leg] = address;
  }
  offer(from: LegName, body: string): SdpResult {
    this.log.push(`offer ${from} ${sdpLabelOf(body)}`);
    if (body.includes('RTP/AVP 99')) return { ok: false, status: 488, reason: 'No common codec' };
    return { ok: true, sdp: sdp(`gw-offer-to-${from === 'a' ? 'b' : 'a'}`, direction(body)) };
  }
  answer(from: LegName, body: string): SdpResult {
    this.log.push(`answer ${from} ${sdpLabelOf(body)}`);
    if (this.reoffered === from) {
      this.reoffered = undefined;
      return { ok: true, sdp: '' };
    }
    return { ok: true, sdp: sdp(`gw-answer-to-${from === 'a' ? 'b' : 'a'}`, direction(body)) };
  }
  answerLocally(from: LegName, body: string): SdpResult {
    this.log.push(`echo ${from} ${sdpLabelOf(body)}`);
    return { ok: true, sdp: sdp('gw-echo') };
  }
  reoffer(to: LegName): string {
    this.log.push(`reoffer ${to}`);
    this.reoffered = to;
    return sdp(`gw-reoffer-to-${to}`);
  }
  idleMs(leg: LegName): number {
    return this.idle[leg];
  }
  close(): void {
    this.closed = true;
  }
}

function sdpLabelOf(body: string): string {
  return /^s=(.*?)\r?$/m.exec(body)?.[1] ?? '?';
}

export class FakeMediaFactory implements CallMediaFactory {
  readonly sessions: FakeMedia[] = [];
  exhausted = false;
  async create(): Promise<CallMedia> {
    if (this.exhausted) throw new Error('no RTP ports left');
    const m = new FakeMedia();
    this.sessions.push(m);
    return m;
  }
  get last(): FakeMedia {
    return this.sessions.at(-1)!;
  }
}

export interface HarnessOptions {
  noAnswerSeconds?: number;
  rtpTimeoutSeconds?: number;
  sessionExpires?: number;
  minSessionExpires?: number;
  /** Source addresses that may talk to the gateway (default: 192.0.2.0/24 and the trunk). */
  allowed?: (address: string) => boolean;
  /** Told each local user's dialog states (the B2BUA's `presence` option). */
  presence?: B2buaOptions['presence'];
}

export const TRUNK_ADDRESS = '198.51.100.5';

export class SipHarness {
  readonly clock = new ManualClock();
  readonly random = new SeededRandom(11);
  readonly logger = new MemoryLogger();
  readonly media = new FakeMediaFactory();
  readonly bindings = new Map<string, Binding[]>();
  readonly phones = new Map<string, Phone>();
  readonly authFailures: string[] = [];
  readonly stack: SipStack;
  readonly b2bua: B2bua;
  readonly trunk: TrunkTarget = {
    name: 'itsp',
    domain: 'itsp.example',
    transport: 'udp',
    username: 'gwuser',
    password: 'trunk-secret',
    destination: () => ({ transport: 'udp', address: TRUNK_ADDRESS, port: 5060 }),
    sources: () => [TRUNK_ADDRESS],
  };

  constructor(opts: HarnessOptions = {}) {
    const { clock, random, logger } = this;
    const digest = new DigestServer({ realm: DOMAIN, secret: Buffer.alloc(32, 3), clock, random, algorithms: ['MD5'] });
    const passwords: Record<string, { password: string }> = {};
    for (const ext of ['100', '101', '102', '103', '104']) passwords[ext] = { password: `pw${ext}` };
    const auth = new RequestAuthenticator({ digest, credentials: new ExtensionCredentials(passwords), logger });
    const dialplan = new DialPlan([{ match: '*43', to: 'echo' }, { match: '0x.', to: 'trunk:itsp', strip: 1 }, { match: '555', to: 'peer' }], {
      extensions: ['101', '102', '103', '104'],
      deviceExtension: '100',
      trunks: ['itsp'],
      emergencyNumbers: ['112'],
    });
    // As in the gateway: the stack first, then the B2BUA on its transaction layer, then the core.
    this.stack = new SipStack(
      {
        clock,
        random,
        logger,
        transport: {
          send: async (bytes, dest) => {
            const msg = parseMessage(bytes);
            const phone = this.phones.get(`${dest.address}:${dest.port}`);
            if (phone) phone.inbox.push(msg);
            else this.unrouted.push({ msg, dest });
          },
        },
      },
      { onRequest: () => undefined },
    );
    this.b2bua = new B2bua({
      transactions: this.stack.transactions,
      clock,
      random,
      logger,
      domain: DOMAIN,
      userAgent: 'hookswitch-test',
      localEndpoint: () => ({ address: GW.address, port: GW.port }),
      publicAddress: () => '203.0.113.1',
      registrar: { lookup: (user) => this.bindings.get(user) ?? [] },
      dialplan,
      deviceExtension: '100',
      trunks: [this.trunk],
      extensions: { '101': { name: 'Alice' }, '102': { name: 'Bob' } },
      media: this.media,
      noAnswerSeconds: opts.noAnswerSeconds ?? 60,
      rtpTimeoutSeconds: opts.rtpTimeoutSeconds ?? 60,
      sessionExpires: opts.sessionExpires ?? 1800,
      minSessionExpires: opts.minSessionExpires ?? 90,
      ...(opts.presence ? { presence: opts.presence } : {}),
    });
    const allowed = opts.allowed ?? ((a: string) => a.startsWith('192.0.2.'));
    const core = new UasCore({
      logger,
      auth,
      userAgent: 'hookswitch-test',
      calls: this.b2bua,
      guard: {
        isAllowed: allowed,
        authFailed: (a) => void this.authFailures.push(a),
        authSucceeded: () => undefined,
      },
      trunkFor: (source) => (this.trunk.sources().includes(source.address) ? this.trunk.name : undefined),
    });
    this.stack.transactions.setUser(core);
  }

  /** Messages sent to addresses no phone listens on. */
  readonly unrouted: { msg: SipMessage; dest: Destination }[] = [];

  phone(ext: string, address: string, port = 5062): Phone {
    const p = new Phone(this, ext, { transport: 'udp', address, port });
    this.phones.set(`${address}:${port}`, p);
    return p;
  }

  /** Registers a phone's contact as a binding of its extension (the NAT path = its address). */
  bind(phone: Phone, ext = phone.ext): void {
    const list = this.bindings.get(ext) ?? [];
    list.push({
      aor: `sip:${ext}@${DOMAIN}`,
      contact: `sip:${ext}@${phone.endpoint.address}:${phone.endpoint.port}`,
      expiresAt: this.clock.wallNow() + 3_600_000,
      callId: `reg-${phone.endpoint.address}`,
      cseq: 1,
      source: { transport: 'udp', address: phone.endpoint.address, port: phone.endpoint.port },
    });
    this.bindings.set(ext, list);
  }

  /** Lets the stack's promises and the B2BUA's awaits settle. */
  async flush(): Promise<void> {
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }

  /** Advances the clock and settles. */
  async advance(ms: number): Promise<void> {
    this.clock.advance(ms);
    await this.flush();
  }
}

export interface SendOptions {
  sdp?: string;
  headers?: [string, string][];
}

/** A phone (or trunk) played by the test. One dialog at a time. */
export class Phone {
  readonly inbox: SipMessage[] = [];
  dialog: Dialog | undefined;
  /** The INVITE this phone sent last (as UAC). */
  invite: SipRequest | undefined;
  private readonly tag: string;
  private branchSeq = 0;
  private cseq = 1;

  constructor(
    readonly h: SipHarness,
    readonly ext: string,
    readonly endpoint: Destination,
  ) {
    this.tag = `tag-${ext}-${endpoint.address}`;
  }

  get contact(): string {
    return `<sip:${this.ext}@${this.endpoint.address}:${this.endpoint.port}>`;
  }

  via(): string {
    return `SIP/2.0/UDP ${this.endpoint.address}:${this.endpoint.port};branch=z9hG4bK-${this.ext}-${this.endpoint.address}-${++this.branchSeq};rport`;
  }

  async send(msg: SipMessage): Promise<void> {
    this.h.stack.receive(serializeMessage(msg), { transport: 'udp', address: this.endpoint.address, port: this.endpoint.port });
    await this.h.flush();
  }

  /** Removes and returns the first message in the inbox that matches. */
  take(what: string | number | ((m: SipMessage) => boolean)): SipMessage | undefined {
    const match =
      typeof what === 'function'
        ? what
        : typeof what === 'number'
          ? (m: SipMessage) => m.kind === 'response' && m.status === what
          : (m: SipMessage) => m.kind === 'request' && m.method === what;
    const i = this.inbox.findIndex(match);
    if (i < 0) return undefined;
    return this.inbox.splice(i, 1)[0];
  }

  takeRequest(method: string): SipRequest | undefined {
    return this.take(method) as SipRequest | undefined;
  }

  takeResponse(status: number): SipResponse | undefined {
    return this.take(status) as SipResponse | undefined;
  }

  /** Statuses of the responses in the inbox, in order (they stay there). */
  statuses(): number[] {
    return this.inbox.flatMap((m) => (m.kind === 'response' ? [m.status] : []));
  }

  /** Methods of the requests in the inbox, in order. */
  methods(): string[] {
    return this.inbox.flatMap((m) => (m.kind === 'request' ? [m.method] : []));
  }

  /**
   * Calls `number` through the gateway: INVITE, and (unless `auth` is false) the 407 answered
   * with this extension's password. Leaves the final INVITE in {@link invite}.
   */
  async call(number: string, opts: SendOptions & { auth?: boolean; maxForwards?: number } = {}): Promise<void> {
    const body = opts.sdp ?? sdp(`phone-${this.ext}`);
    const callId = `call-${this.ext}-${this.endpoint.address}-${this.h.random.bytes(2).toString('hex')}`;
    const build = (extra: [string, string][]) =>
      buildRequest({
        method: 'INVITE',
        requestUri: `sip:${number}@${DOMAIN}`,
        from: `<sip:${this.ext}@${DOMAIN}>;tag=${this.tag}`,
        to: `<sip:${number}@${DOMAIN}>`,
        contact: this.contact,
        callId,
        cseq: this.cseq++,
        random: this.h.random,
        via: this.via(),
        maxForwards: opts.maxForwards ?? 70,
        extraHeaders: [['Allow', 'INVITE, ACK, CANCEL, BYE, UPDATE, INFO, REFER, NOTIFY'], ...(opts.headers ?? []), ...extra],
        body: Buffer.from(body, 'latin1'),
        contentType: 'application/sdp',
      }).request;
    let invite = build([]);
    this.invite = invite;
    await this.send(invite);
    if (opts.auth === false) return;
    const challenge = this.takeResponse(407);
    if (!challenge) return;
    await this.send(this.ackFor(invite, challenge));
    const client = new DigestClient({ username: this.ext, password: `pw${this.ext}`, random: this.h.random });
    const value = client.authorize({ challenges: challenge.headers.getAll('Proxy-Authenticate'), method: 'INVITE', uri: invite.uri })!;
    invite = build([['Proxy-Authorization', value]]);
    this.invite = invite;
    await this.send(invite);
  }

  /** The ACK of a non-2xx final response (§17.1.1.3): same branch as the INVITE. */
  ackFor(invite: SipRequest, res: SipResponse): SipRequest {
    const h = invite.headers;
    return buildRequest({
      method: 'ACK',
      requestUri: invite.uri,
      from: h.get('From')!,
      to: res.headers.get('To')!,
      callId: h.get('Call-ID')!,
      cseq: Number.parseInt(h.get('CSeq')!, 10),
      random: this.h.random,
      via: h.getAll('Via')[0]!,
    }).request;
  }

  /** ACKs the gateway's 2xx to our INVITE and keeps the dialog (§13.2.2.4). */
  async ack2xx(res: SipResponse, invite = this.invite!): Promise<void> {
    this.dialog ??= Dialog.asUac(invite, res);
    const { request } = this.dialog.createAck(Number.parseInt(res.headers.get('CSeq')!, 10));
    request.headers.prepend('Via', this.via());
    await this.send(request);
  }

  /** CANCELs our pending INVITE (§9.1). */
  async cancel(): Promise<void> {
    const inv = this.invite!;
    const h = inv.headers;
    const cancel = buildRequest({
      method: 'CANCEL',
      requestUri: inv.uri,
      from: h.get('From')!,
      to: h.get('To')!,
      callId: h.get('Call-ID')!,
      cseq: Number.parseInt(h.get('CSeq')!, 10),
      random: this.h.random,
      via: h.getAll('Via')[0]!,
    }).request;
    await this.send(cancel);
  }

  /** Sends a request in our dialog (BYE, re-INVITE, INFO, REFER, ...). Returns it. */
  async request(method: string, opts: SendOptions & { body?: string; contentType?: string } = {}): Promise<SipRequest> {
    const body = opts.sdp ?? opts.body;
    const { request } = this.dialog!.createRequest(method, {
      headers: opts.headers ?? [],
      ...(body !== undefined ? { body: Buffer.from(body, 'latin1'), contentType: opts.contentType ?? 'application/sdp' } : {}),
    });
    request.headers.prepend('Via', this.via());
    await this.send(request);
    return request;
  }

  /** Answers a request from the gateway; a 2xx to INVITE creates our dialog as UAS. */
  async reply(req: SipRequest, status: number, opts: SendOptions = {}): Promise<SipResponse> {
    const res = buildResponse(req, status, undefined, {
      toTag: newTagFor(this, req),
      headers: [
        ...(status > 100 && status < 300 && (req.method === 'INVITE' || req.method === 'UPDATE') ? ([['Contact', this.contact]] as [string, string][]) : []),
        ...(opts.headers ?? []),
      ],
      ...(opts.sdp ? { body: Buffer.from(opts.sdp, 'latin1'), contentType: 'application/sdp' } : {}),
    });
    if (req.method === 'INVITE' && status >= 200 && status < 300 && !this.dialog) {
      this.dialog = Dialog.asUas(req, newTagFor(this, req), this.contact, { state: 'confirmed' });
    }
    await this.send(res);
    return res;
  }
}

function newTagFor(phone: Phone, req: SipRequest): string {
  const existing = /;tag=([^;>\s]+)/.exec(req.headers.get('To') ?? '')?.[1];
  return existing ?? `uas-${phone.ext}-${phone.endpoint.address.replace(/\./g, '')}`;
}

