/**
 * The callee side of a call: an INVITE the gateway sends (RFC 3261 §13.2), its provisional and
 * final responses, Digest retry on 401/407 (§22.2), CANCEL (§9.1), and the ACK of its 2xx
 * (§13.2.2.4). Once answered, the object is the leg of the established dialog.
 */
import { challengeIsStale, type DigestClient } from '../sip/auth/digest-client.ts';
import { Dialog } from '../sip/dialog/dialog.ts';
import { buildRequest, newCallId, newTag } from '../sip/dialog/request-builder.ts';
import { tagOf } from '../sip/message/header-values.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import { buildCancel } from '../sip/transaction/cancel.ts';
import type { Destination } from '../sip/transaction/types.ts';
import { allows, Leg, LEG_ALLOW, type LegEnv, type LocalAddress } from './leg.ts';
import type { LegName } from './types.ts';

/** What to send: the target and identities of a new INVITE. */
export interface OutboundInvite {
  requestUri: string;
  from: string;
  to: string;
  sdp: string;
  maxForwards: number;
  /** Session-Expires/Min-SE and the like. */
  headers: [string, string][];
  /** Answers 401/407 of this target (trunks); without it a challenge is a failure. */
  digest?: DigestClient;
  /** A label for logs (extension contact, trunk name). */
  label: string;
}

/** What a fork reports to its owner. Each is called at most once per response. */
export interface ClientLegEvents {
  provisional(leg: ClientLeg, res: SipResponse): void;
  answered(leg: ClientLeg, res: SipResponse): void;
  /** A final failure: the response's status, 408 on timeout, 503 on a transport error. */
  failed(leg: ClientLeg, status: number, res?: SipResponse): void;
}

type ForkState = 'calling' | 'proceeding' | 'answered' | 'failed';

const CHALLENGES = {
  401: { challenge: 'WWW-Authenticate', credentials: 'Authorization' },
  407: { challenge: 'Proxy-Authenticate', credentials: 'Proxy-Authorization' },
} as const;

export class ClientLeg extends Leg {
  state: ForkState = 'calling';
  readonly callId: string;
  private readonly fromTag: string;
  private cseq = 1;
  private invite: SipRequest | undefined;
  private cancelWanted = false;
  private cancelled = false;
  private credentials: [string, string][] = [];
  private challengesAnswered = 0;
  /** The 2xx that established the dialog. */
  success: SipResponse | undefined;

  constructor(
    env: LegEnv,
    slot: LegName,
    flow: Destination,
    local: LocalAddress,
    private readonly spec: OutboundInvite,
    private readonly events: ClientLegEvents,
  ) {
    super(env, slot, flow, local);
    this.callId = newCallId(env.random);
    this.fromTag = newTag(env.random);
  }

  get label(): string {
    return this.spec.label;
  }

  get initialInvite(): SipRequest | undefined {
    return this.invite;
  }

  /** Sends the INVITE (and, after a challenge, the retried INVITE with a new CSeq). */
  start(): void {
    const { request } = buildRequest({
      method: 'INVITE',
      requestUri: this.spec.requestUri,
      from: `${this.spec.from};tag=${this.fromTag}`,
      to: this.spec.to,
      contact: this.contact,
      callId: this.callId,
      cseq: this.cseq,
      random: this.env.random,
      maxForwards: this.spec.maxForwards,
      via: this.via(),
      extraHeaders: [
        ['Allow', LEG_ALLOW],
        ['User-Agent', this.env.userAgent],
        ...this.spec.headers,
        ...this.credentials,
      ],
      body: Buffer.from(this.spec.sdp, 'latin1'),
      contentType: 'application/sdp',
    });
    this.invite = request;
    try {
      this.env.transactions.sendRequest(request, this.flow, {
        onResponse: (res) => this.onResponse(request, res),
        onTimeout: () => this.fail(request, 408),
        onTransportError: () => this.fail(request, 503),
      });
    } catch (err) {
      this.env.logger.error('INVITE not sent', { target: this.spec.label, reason: err instanceof Error ? err.message : String(err) });
      queueMicrotask(() => this.fail(request, 500));
    }
  }

  /**
   * Cancels the INVITE (§9.1). "If no provisional response has been received, the CANCEL
   * request MUST NOT be sent; rather, the client MUST wait for the arrival of a provisional
   * response before sending the request." A fork that has answered is hung up with BYE.
   */
  cancel(): void {
    this.cancelWanted = true;
    if (this.state === 'proceeding') this.sendCancel();
    else if (this.state === 'answered') this.bye();
  }

  private sendCancel(): void {
    if (this.cancelled || !this.invite) return;
    this.cancelled = true;
    const cancel = buildCancel(this.invite);
    this.env.transactions.sendRequest(cancel, this.flow, { onResponse: () => undefined, onTimeout: () => undefined, onTransportError: () => undefined });
  }

  private onResponse(request: SipRequest, res: SipResponse): void {
    if (request !== this.invite) return;
    const status = res.status;
    if (status < 200) {
      if (this.state === 'calling') this.state = 'proceeding';
      if (this.cancelWanted) {
        this.sendCancel();
        return;
      }
      if (status > 100 && tagOf(res.headers.get('To') ?? '') !== undefined && !this.dialog) {
        try {
          this.dialog = Dialog.asUac(request, res);
        } catch {
          // A garbled 1xx does not create the early dialog; the 2xx will.
        }
      }
      if (status > 100 && this.state === 'proceeding') this.events.provisional(this, res);
      return;
    }
    if (status < 300) {
      this.onSuccess(request, res);
      return;
    }
    if ((status === 401 || status === 407) && this.retryWithCredentials(request, res)) return;
    this.fail(request, status, res);
  }

  private onSuccess(request: SipRequest, res: SipResponse): void {
    const toTag = tagOf(res.headers.get('To') ?? '') ?? '';
    if (this.state === 'answered') {
      if (this.dialog && toTag === this.dialog.id.remoteTag) {
        // §13.2.2.4: a retransmitted 2xx gets the same ACK again.
        this.ack(res, this.credentials);
      } else {
        // A second 2xx from another branch downstream: ACK and BYE it (§13.2.2.4).
        this.hangUpStray(request, res);
      }
      return;
    }
    if (this.state === 'failed') {
      this.hangUpStray(request, res);
      return;
    }
    try {
      this.dialog = Dialog.asUac(request, res);
    } catch (err) {
      this.env.logger.warn('2xx without a usable dialog', { reason: err instanceof Error ? err.message : String(err) });
      this.fail(request, 502, res);
      return;
    }
    this.state = 'answered';
    this.success = res;
    this.allowsUpdate = allows(res, 'UPDATE');
    this.ack(res, this.credentials);
    if (this.cancelWanted) {
      // The CANCEL lost the race against the 2xx (§9.1): the call is hung up with BYE.
      this.bye();
      return;
    }
    this.events.answered(this, res);
  }

  /** ACKs a 2xx that cannot be used and hangs it up (a forked 2xx, a 2xx after failure). */
  private hangUpStray(request: SipRequest, res: SipResponse): void {
    let stray: Leg;
    try {
      stray = new Leg(this.env, this.slot, this.flow, this.local);
      stray.dialog = Dialog.asUac(request, res);
    } catch {
      return;
    }
    stray.ack(res);
    stray.bye();
  }

  /**
   * §22.2: a 401/407 is answered once with credentials for the challenge, on a new INVITE with
   * the next CSeq and the same Call-ID and From tag ("the same Call-ID ... the CSeq MUST be
   * incremented"). A further challenge is answered only when it says the nonce was stale.
   */
  private retryWithCredentials(request: SipRequest, res: SipResponse): boolean {
    const digest = this.spec.digest;
    if (!digest || this.cancelWanted) return false;
    const kind = CHALLENGES[res.status as 401 | 407];
    const challenges = res.headers.getAll(kind.challenge);
    if (this.challengesAnswered > 0 && !challengeIsStale(challenges)) return false;
    if (this.challengesAnswered >= 3) return false;
    const value = digest.authorize({ challenges, method: 'INVITE', uri: request.uri, body: request.body });
    if (value === undefined) return false;
    this.challengesAnswered++;
    this.credentials = [...this.credentials.filter(([n]) => n !== kind.credentials), [kind.credentials, value]];
    this.cseq++;
    this.state = 'calling';
    this.start();
    return true;
  }

  private fail(request: SipRequest, status: number, res?: SipResponse): void {
    if (request !== this.invite || this.state === 'answered' || this.state === 'failed') return;
    this.state = 'failed';
    this.dialog?.terminate();
    this.events.failed(this, status, res);
  }

  /** A 2xx that reached the UAS core as a stray (after Timer M): ACK it again. */
  stray(res: SipResponse): void {
    if (this.dialog && (tagOf(res.headers.get('To') ?? '') ?? '') === this.dialog.id.remoteTag) this.ack(res, this.credentials);
  }

  /** The From tag (our local tag): with the Call-ID, the key of this leg's dialog. */
  get localTag(): string {
    return this.fromTag;
  }
}
