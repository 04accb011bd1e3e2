/**
 * The device's side of a call it placed: a leg without a SIP dialog. The gateway itself is the
 * caller, so there is nothing to send on this leg; the call reports its progress to the device
 * through {@link LocalEnd} instead.
 */
import { Leg, type LegEnv } from './leg.ts';

export class DeviceLeg extends Leg {
  constructor(env: LegEnv) {
    super(env, 'a', { transport: 'udp', address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0 });
  }

  override get live(): boolean {
    return false;
  }
}
