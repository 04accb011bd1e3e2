/**
 * What the device endpoint holds of a call it takes part in: answer it (a call to the device),
 * hang up, and send INFO (DTMF) to the far end. The call layer reports back through the
 * {@link LocalEnd} the device gave for the call.
 */
import type { Call, Party } from './call.ts';
import type { Leg } from './leg.ts';
import type { LegName } from './types.ts';

export class DeviceCall {
  constructor(
    private readonly call: Call,
    /** The media slot of the far end: 'a' when the device is called, 'b' when it called. */
    readonly remoteSlot: LegName,
    /** The SDP answer prepared when the offer arrived (calls to the device). */
    private readonly answerSdp?: string,
  ) {}

  get id(): string {
    return this.call.id;
  }

  /** The call's media (the device endpoint created it). */
  get media(): Call['media'] {
    return this.call.media;
  }

  /** Whether the device is the called party. */
  get incoming(): boolean {
    return this.remoteSlot === 'a';
  }

  /** The far end: the caller of a call to the device, else the number the device dialled. */
  get remote(): Party {
    return this.call.parties[this.remoteSlot];
  }

  get state(): Call['state'] {
    return this.call.state;
  }

  /** Answers a ringing call to the device (200 with the prepared SDP); false when there is none. */
  answer(): boolean {
    if (!this.incoming || this.call.state !== 'calling' || this.answerSdp === undefined) return false;
    this.call.answerLocally(this.answerSdp);
    return true;
  }

  /** Refuses a call to the device that is still ringing (486 Busy Here when the handset is off-hook). */
  reject(status: number, reason?: string): boolean {
    if (!this.incoming || this.call.state !== 'calling') return false;
    this.call.reject(status, reason);
    return true;
  }

  /** Hangs up: BYE when connected, CANCEL of the forks or 480 to the caller while ringing. */
  hangup(reason?: string): void {
    this.call.hangup(reason, 'hung up by the device');
  }

  /**
   * Puts the far end on hold or takes it off (RFC 3264 §8.4): the device's media must already
   * say so ({@link DeviceMedia.setHeld}); this sends the re-INVITE. False when the call is not
   * connected or an offer is in progress; otherwise `done` gets whether the far end accepted.
   */
  hold(on: boolean, done: (accepted: boolean) => void): boolean {
    return this.call.reofferLocal(this.remoteSlot, on, done);
  }

  /**
   * Sends an INFO with `body` to the far end of a connected call (RFC 6086); `done` gets the
   * final status (408/503 when it could not be delivered, 481 when there is no dialog).
   */
  info(contentType: string, body: string, done?: (status: number) => void): void {
    const leg: Leg | undefined = this.remoteSlot === 'a' ? this.call.a : this.call.b;
    const sent = this.call.state === 'connected' && leg?.request('INFO', { body: Buffer.from(body, 'latin1'), contentType }, (status) => done?.(status));
    if (!sent) done?.(481);
  }
}
