/**
 * What the calls tell the `dialog` event package (RFC 4235): for each extension or device that
 * takes part in a call, its dialog going trying → (proceeding) → early → confirmed → terminated.
 * The B2BUA reports the moments ({@link DialogEventReporter.routed}, `provisional`, `ringing`,
 * `answered`, `ended`); this file turns them into one {@link DialogInfo} per participant for the
 * presence core. A trunk or hookswitch peer on the other end is not monitored: only local users
 * are resources.
 */
import type { DialogInfo, DialogInfoState, DialogTerminationEvent } from '../presence/dialog-info.ts';
import { tagOf } from '../sip/message/header-values.ts';
import type { SipResponse } from '../sip/message/message.ts';
import type { Route } from './dialplan.ts';
import type { LegName } from './types.ts';

/** Where dialog states go (the presence core's `dialogChanged`). Called synchronously. */
export interface DialogStateSink {
  dialogChanged(resource: string, dialog: DialogInfo): void;
}

/** The call as this file sees it: an id and who is on its slots (see `Call` in call.ts). */
export interface ReportedCall {
  readonly id: string;
  readonly parties: Record<LegName, { user: string; display?: string }>;
}

/** A local user taking part in a call. */
interface Participant {
  resource: string;
  slot: LegName;
  state: DialogInfoState;
}

/** The `call ended` causes that name the slot that hung up (call.ts `byeReceived`, `DeviceCall.hangup`). */
const BYE_FROM = /^BYE from leg ([ab])$/;
const DEVICE_HANGUP = 'hung up by the device';
const REJECTED = /^rejected (\d{3})$/;

/**
 * Turns call events into dialog states per participant. Reports only forward moves (RFC 4235
 * §3.7.1; the presence core ignores the others too), and forgets a call once it reported its end.
 */
export class DialogEventReporter {
  private readonly calls = new WeakMap<ReportedCall, Participant[]>();

  /**
   * @param sink the presence core.
   * @param domain the SIP domain, for the participants' identities (`sip:101@domain`).
   * @param deviceExtension the device's number: its slot ends with {@link DEVICE_HANGUP}.
   */
  constructor(
    private readonly sink: DialogStateSink,
    private readonly domain: string,
    private readonly deviceExtension: () => string,
  ) {}

  /**
   * A call was routed: `caller` is the local user who placed it (an extension or the device;
   * undefined for a trunk or a peer); the callee is the extension or device `route` reaches (none
   * for a trunk, a peer or the echo). Both are `trying` (RFC 4235 §3.7.1: INVITE sent / received).
   */
  routed(call: ReportedCall, caller: string | undefined, route: Route): void {
    const target = route.target;
    const callee = target.kind === 'extension' ? target.extension : target.kind === 'device' ? this.deviceExtension() : undefined;
    const list: Participant[] = [];
    if (caller !== undefined) list.push({ resource: caller, slot: 'a', state: 'trying' });
    if (callee !== undefined) list.push({ resource: callee, slot: 'b', state: 'trying' });
    if (list.length === 0) return;
    this.calls.set(call, list);
    for (const p of list) this.report(call, p);
  }

  /**
   * A provisional response from the callee's side (a fork). RFC 4235 §3.7.1: with a To tag the
   * dialog is `early`, without one `proceeding`. The caller's own leg always gets our tagged
   * provisional, so the caller's dialog is `early` either way.
   */
  provisional(call: ReportedCall, res: SipResponse): void {
    const withTag = tagOf(res.headers.get('To') ?? '') !== undefined;
    for (const p of this.calls.get(call) ?? []) this.move(call, p, p.slot === 'a' || withTag ? 'early' : 'proceeding');
  }

  /** The device rings for a call to it (its 180 carries our tag): every participant is `early`. */
  ringing(call: ReportedCall): void {
    for (const p of this.calls.get(call) ?? []) this.move(call, p, 'early');
  }

  /** The call connected (a 2xx sent or received, RFC 4235 §3.7.1): `confirmed`. */
  answered(call: ReportedCall): void {
    for (const p of this.calls.get(call) ?? []) this.move(call, p, 'confirmed');
  }

  /**
   * The call ended with `cause` (the `call ended` reason of call.ts). RFC 4235 §4.1.2 events:
   * before an answer `rejected` (with the failure `code`) or `cancelled`; after it `local-bye`
   * for the participant whose side hung up and `remote-bye` for the others (a hang-up by the
   * gateway itself, e.g. an RTP timeout, reaches every participant as a BYE: `remote-bye`).
   */
  ended(call: ReportedCall, cause: string): void {
    const list = this.calls.get(call);
    if (list === undefined) return;
    this.calls.delete(call);
    const rejected = REJECTED.exec(cause);
    const byeSlot = BYE_FROM.exec(cause)?.[1];
    for (const p of list) {
      if (p.state === 'terminated') continue;
      let event: DialogTerminationEvent;
      let code: number | undefined;
      if (p.state !== 'confirmed') {
        event = rejected ? 'rejected' : 'cancelled';
        if (rejected) code = Number(rejected[1]);
      } else {
        const local = p.slot === byeSlot || (cause === DEVICE_HANGUP && p.resource === this.deviceExtension());
        event = local ? 'local-bye' : 'remote-bye';
      }
      p.state = 'terminated';
      this.report(call, p, event, code);
    }
  }

  private move(call: ReportedCall, p: Participant, to: DialogInfoState): void {
    if (p.state === to || p.state === 'terminated' || p.state === 'confirmed') return;
    if (to === 'proceeding' && p.state === 'early') return;
    p.state = to;
    this.report(call, p);
  }

  private report(call: ReportedCall, p: Participant, event?: DialogTerminationEvent, code?: number): void {
    const other = call.parties[p.slot === 'a' ? 'b' : 'a'];
    const me = call.parties[p.slot];
    const dialog: DialogInfo = {
      id: `${call.id}-${p.slot}`,
      direction: p.slot === 'a' ? 'initiator' : 'recipient',
      state: p.state,
      ...(event !== undefined ? { event } : {}),
      ...(code !== undefined ? { code } : {}),
      local: { identity: this.uri(p.resource), ...(me.display !== undefined ? { display: me.display } : {}) },
      remote: { identity: this.uri(other.user), ...(other.display !== undefined ? { display: other.display } : {}) },
    };
    this.sink.dialogChanged(p.resource, dialog);
  }

  private uri(user: string): string {
    return `sip:${encodeURIComponent(user)}@${this.domain}`;
  }
}
