/**
 * The contract between phone hardware and the phone logic. A backend (kernel GPIO through
 * evdev and LED class devices, libgpiod tools, a serial microcontroller, the simulator) turns
 * wires into input events and output requests into wire states; it knows roles, not behaviour.
 * Roles come from the board profile (`board/*.json`).
 */

/** Input roles a board may wire. */
export type InputRole =
  /** Hook switch (SLIC SHK, or a switch): active = off-hook. */
  | 'hook'
  /** Rotary dial pulse contact: active = contact open (a "break"). */
  | 'pulse'
  /** Rotary dial off-normal contact: active = the dial is turned away from rest. */
  | 'offNormal'
  /** Door station / intercom call button: active = pressed. */
  | 'button';

/** Output roles a board may wire. */
export type OutputRole =
  /** SLIC ring mode (Ag1171 RM). */
  | 'ringMode'
  /** SLIC forward/reverse (Ag1171 FR), toggled at the ring frequency while ringing. */
  | 'forwardReverse'
  /** A bell driver (relay or H-bridge enable): on while the bell should ring. */
  | 'bell'
  /** The door relay. */
  | 'relay'
  /** Status LEDs. */
  | 'ledGreen'
  | 'ledRed';

/** What an output does: steady, or blinking (the kernel's LED `timer` trigger or the MCU does it). */
export type OutputState = { mode: 'off' } | { mode: 'on' } | { mode: 'blink'; onMs: number; offMs: number };

/** What a backend reports. Called on the event loop; handlers must not throw. */
export interface HardwareEvents {
  /**
   * A raw input changed. `active` is after the profile's polarity; `atMs` is when it happened on
   * the monotonic clock (the kernel's timestamp for evdev, arrival time otherwise), so decoders
   * can measure pulse widths exactly even when the event loop was late.
   */
  input(role: InputRole, active: boolean, atMs: number): void;
  /** A key decoded by the device itself (a serial keypad `KEY x`, a decoded rotary `DIGIT n`). */
  key(key: string, atMs: number): void;
  /** The hardware went away or came back (serial port unplugged, reopened); already logged. */
  connection?(up: boolean, reason?: string): void;
}

/**
 * One board's hardware. `start` opens the devices (rejecting with a one-line error that names the
 * role, the device path or pin and the fix when something is missing); outputs may be driven
 * after it resolved; `stop` releases everything (idempotent, never rejects).
 */
export interface HardwareBackend {
  readonly name: string;
  start(events: HardwareEvents): Promise<void>;
  /** Drives an output role; a role the board lacks is ignored. */
  setOutput(role: OutputRole, state: OutputState): void;
  /** Turns an output on for `ms`, then off (the door relay). */
  pulse(role: OutputRole, ms: number): void;
  /**
   * Rings with `cadence` (ms on, ms off, ...; repeated) when the hardware rings by itself (a
   * serial microcontroller's `RING`), or stops it (`undefined`). Returns false when it cannot,
   * and the phone logic drives the ringer outputs itself.
   */
  ring?(cadence: readonly number[] | undefined): boolean;
  stop(): Promise<void>;
}
