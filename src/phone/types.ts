/**
 * The contract between the phone logic (handset, intercom) and the device endpoint: the line
 * the phone logic drives. `src/device/device-endpoint.ts` implements it.
 */
import type { DtmfDigit } from '../media/dtmf/types.ts';
import type { ToneName } from '../media/tone/tone-sets.ts';

/** Who calls. */
export interface Caller {
  user: string;
  display?: string;
}

/** What the line tells the phone logic; handlers must not throw. */
export interface LineEvents {
  /** A call for the device rings (it is not answered until {@link PhoneLine.answer}). */
  incoming(caller: Caller): void;
  /** The far end of a call we placed rings (180/183). */
  ringing(): void;
  /** The call is connected (answered either way). */
  connected(): void;
  /** The call ended (hung up either side, refused, cancelled); `status` for calls that never connected. */
  ended(cause: string, status?: number): void;
  /** A DTMF digit from the far end (RFC 4733, SIP INFO or in-band). */
  digit(digit: DtmfDigit): void;
}

/** The device's line, as the phone logic drives it. */
export interface PhoneLine {
  /** Places a call through the dial plan; resolves once it is sent (or refused before that). */
  dial(number: string): Promise<{ ok: true } | { ok: false; status: number; reason: string }>;
  /** Answers the ringing call; false when there is none. */
  answer(): boolean;
  /** Hangs up or refuses the current call; nothing when there is none. */
  hangup(): void;
  /** Sends DTMF in the connected call. */
  sendDigits(digits: string): void;
  /** Plays a call-progress tone in the earpiece (country set), or stops it. Replaces any tone playing. */
  playTone(name: ToneName | undefined): void;
  /** Subscribes; the phone logic calls it once. */
  listen(events: LineEvents): void;
}
