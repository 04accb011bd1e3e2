/**
 * The contract between the phone logic (handset, intercom) and the device endpoint: the line
 * the phone logic drives. `src/device/device-endpoint.ts` implements it.
 *
 * The line holds up to two calls: the active one (ringing, dialling or connected) and, for a
 * handset, one more that is held or waiting (call waiting, hold and swap on hook flash). Events
 * and commands name a call by its id where there can be two.
 */
import type { DtmfDigit } from '../media/dtmf/types.ts';
import type { DeviceSound } from '../device/call-progress.ts';

/** Who calls. */
export interface Caller {
  user: string;
  display?: string;
}

/** What the line tells the phone logic; handlers must not throw. */
export interface LineEvents {
  /** A call for the device rings (it is not answered until {@link PhoneLine.answer}). */
  incoming(caller: Caller, call: string): void;
  /**
   * A second call arrives while the device is in a call (call waiting). Optional: a line whose
   * phone logic does not handle it refuses second calls with 486 Busy Here.
   */
  waiting?(caller: Caller, call: string): void;
  /** The far end of a call we placed rings (180/183). */
  ringing(): void;
  /** The call is connected (answered either way). */
  connected(call: string): void;
  /** A call ended (hung up either side, refused, cancelled); `status` for calls that never connected. */
  ended(cause: string, status: number | undefined, call: string): void;
  /** A DTMF digit from the far end of the active call (RFC 4733, SIP INFO or in-band). */
  digit(digit: DtmfDigit): void;
}

/** The device's line, as the phone logic drives it. */
export interface PhoneLine {
  /** Places a call through the dial plan; resolves once it is sent (or refused before that). */
  dial(number: string): Promise<{ ok: true } | { ok: false; status: number; reason: string }>;
  /** Answers the ringing call, or the waiting `call` once the active call is held; false when there is none. */
  answer(call?: string): boolean;
  /** Hangs up or refuses the active call, or `call`; nothing when there is none. */
  hangup(call?: string): void;
  /**
   * Holds the connected active call (a re-INVITE with `a=inactive`, RFC 3264 §8.4); the line is
   * then free to dial or answer. False when there is no connected active call or one is held already.
   */
  hold(): boolean;
  /**
   * Takes the held call back (re-INVITE with `a=sendrecv`); a connected active call goes on hold
   * in its place (swap). False when nothing is held or the active call is not connected.
   */
  resume(): boolean;
  /** Sends DTMF in the connected call. */
  sendDigits(digits: string): void;
  /**
   * Plays a call-progress tone in the earpiece (country set) or the ringtone (`tones.ringtone`,
   * for boards that ring through the speaker), or stops it. Replaces any tone playing; during a
   * connected call the tone is mixed into the far end's audio (call waiting).
   */
  playTone(name: DeviceSound | undefined): void;
  /** Subscribes; the phone logic calls it once. */
  listen(events: LineEvents): void;
}
