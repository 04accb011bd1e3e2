/**
 * Wires the phone hardware for the composition root: the board profile chooses the backend
 * (kernel GPIO, libgpiod tools, a serial microcontroller, or the simulator for `--sim`), the
 * input decoder turns its edges into phone events, and the handset or intercom state machine
 * drives the device's line.
 */
import type { Config } from '../config/config.ts';
import type { BoardProfile } from '../hardware/board-profile.ts';
import { BoardRegistry } from '../hardware/board-registry.ts';
import { GpiodBackend } from '../hardware/backends/gpiod.ts';
import { KernelGpioBackend, type KernelGpioInput, type KernelGpioOutput } from '../hardware/backends/kernel-gpio.ts';
import { SerialBackend } from '../hardware/backends/serial.ts';
import { SimulatorBackend } from '../hardware/backends/simulator.ts';
import type { HardwareBackend, InputRole, OutputRole } from '../hardware/types.ts';
import { DigitMap } from '../phone/digit-map.ts';
import { Handset, resolveHandsetConfig } from '../phone/handset.ts';
import { InputDecoder, type PhoneInputEvent } from '../phone/input-decoder.ts';
import { Intercom, withIntercomDefaults, type IntercomConfigInput } from '../phone/intercom.ts';
import { Ringer, type RingerDrive } from '../phone/ringer.ts';
import type { PhoneLine } from '../phone/types.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';

/** The running phone: its board, and a way to stop it. */
export interface Phone {
  readonly profile: BoardProfile;
  readonly hardware: HardwareBackend;
  /** The state machine's state, for `status`. */
  state(): string;
  /** Whether the door relay is pulsed right now (boards with a relay), for `status`. */
  relayOn(): boolean;
  stop(): Promise<void>;
}

export interface PhoneWiring {
  config: Config;
  clock: Clock;
  logger: Logger;
  line: PhoneLine;
  /** Extension numbers (the digit map completes them). */
  extensions: readonly string[];
  /** `--sim`: the simulator stands in for the board's hardware. */
  simulator?: SimulatorBackend;
}

/** The profile named by `board` (the simulator alone defaults to the Ag1171 handset). */
export function boardProfile(config: Config, simulated: boolean): BoardProfile | undefined {
  const name = config.board || (simulated ? 'pi-ag1171-handset' : '');
  return name ? new BoardRegistry().load(name) : undefined;
}

/** The evdev path the gpio-key overlay creates for a pin (its node is `button@<gpio in hex>`). */
function evdevPath(gpio: number): string {
  return `/dev/input/by-path/platform-button@${gpio.toString(16)}-event`;
}

function hardwareFor(profile: BoardProfile, w: PhoneWiring): HardwareBackend {
  const { config, clock } = w;
  const logger = w.logger.child('hardware');
  if (w.simulator) return w.simulator;
  if (profile.connection === 'serial') {
    const path = config.hardware.serialPort ?? profile.serial?.path;
    if (!path) throw new Error(`board ${profile.name}: no serial port (set hardware.serialPort)`);
    return new SerialBackend({ path, ...(profile.serial ? { baudRate: profile.serial.baudRate } : {}), clock, logger });
  }
  if (config.hardware.backend === 'gpiod') return new GpiodBackend({ profile, clock, logger });
  const inputs: Partial<Record<InputRole, KernelGpioInput>> = {};
  for (const [role, pin] of Object.entries(profile.inputs) as [InputRole, NonNullable<BoardProfile['inputs'][InputRole]>][]) {
    inputs[role] = { path: config.hardware.inputPaths[role] ?? evdevPath(pin.gpio), code: pin.keycode, gpio: pin.gpio };
  }
  const outputs: Partial<Record<OutputRole, KernelGpioOutput>> = {};
  for (const [role, pin] of Object.entries(profile.outputs) as [OutputRole, NonNullable<BoardProfile['outputs'][OutputRole]>][]) {
    outputs[role] = { led: pin.label, gpio: pin.gpio };
  }
  return new KernelGpioBackend({ inputs, outputs, clock, logger });
}

/**
 * A board whose ringer is the sound card (`ringer.mode: "sound"`): ringing plays the country's
 * ringing tone through the device's speaker instead of driving an output.
 */
function ringThroughSpeaker(board: HardwareBackend, line: PhoneLine): HardwareBackend {
  return {
    name: board.name,
    start: (events) => board.start(events),
    setOutput: (role, state) => board.setOutput(role, state),
    pulse: (role, ms) => board.pulse(role, ms),
    ring: (cadence) => {
      line.playTone(cadence ? 'ringtone' : undefined);
      return true;
    },
    stop: () => board.stop(),
  };
}

/**
 * Starts the phone for `profile`: the hardware opened (rejecting with its one-line error), the
 * decoder and the state machine attached to the line.
 */
export async function startPhone(profile: BoardProfile, w: PhoneWiring): Promise<Phone> {
  const { config, clock } = w;
  const log = w.logger.child('phone');
  const board = hardwareFor(profile, w);
  const ringing = profile.ringer.mode === 'sound' ? ringThroughSpeaker(board, w.line) : board;
  // The relay's pulse is timed by the backend; `status` only needs to know until when it is on.
  let relayUntil = 0;
  const hardware: HardwareBackend = {
    name: ringing.name,
    start: (events) => ringing.start(events),
    setOutput: (role, state) => ringing.setOutput(role, state),
    pulse: (role, ms) => {
      if (role === 'relay') relayUntil = clock.now() + ms;
      ringing.pulse(role, ms);
    },
    stop: () => ringing.stop(),
    ...(ringing.ring ? { ring: (cadence: readonly number[] | undefined) => ringing.ring!(cadence) } : {}),
  };
  let onEvent: (e: PhoneInputEvent) => void = () => undefined;
  const decoder = new InputDecoder(clock, (e) => onEvent(e), {}, log.child('input'));
  let state: () => string;
  let close: () => void;
  if (profile.mode === 'intercom') {
    const ringer = new Ringer({
      backend: hardware,
      clock,
      logger: log.child('ringer'),
      country: config.tones.country,
      frequencyHz: profile.ringer.frequencyHz,
      ...(profile.ringer.mode === 'slic' || profile.ringer.mode === 'bell' ? { drive: profile.ringer.mode } : {}),
    });
    const intercom = new Intercom({
      config: withIntercomDefaults(config.intercom as IntercomConfigInput),
      line: w.line,
      hardware,
      clock,
      log: log.child('intercom'),
      ringer,
    });
    onEvent = (e) => {
      if (e.type === 'button') intercom.input({ type: 'button', pressed: e.pressed });
    };
    state = () => intercom.state;
    close = () => intercom.stop();
    await hardware.start(decoder);
    intercom.start();
  } else {
    const digitMap = new DigitMap({ rules: config.dialplan, extensions: [...w.extensions, config.device.extension], emergencyNumbers: config.emergencyNumbers });
    const drive: RingerDrive | undefined = profile.ringer.mode === 'slic' || profile.ringer.mode === 'bell' ? profile.ringer.mode : undefined;
    const handset = new Handset({
      line: w.line,
      hardware,
      ...(drive ? { ringerDrive: drive } : {}),
      digitMap,
      clock,
      logger: log.child('handset'),
      config: resolveHandsetConfig({ ...config.handset, country: config.tones.country, ringFrequencyHz: config.handset.ringFrequencyHz ?? profile.ringer.frequencyHz }),
    });
    onEvent = (e) => handset.input(e);
    state = () => handset.state;
    close = () => handset.close();
    await hardware.start(decoder);
  }
  log.info('phone started', { board: profile.name, mode: profile.mode, hardware: hardware.name });
  return {
    profile,
    hardware,
    state: () => state(),
    relayOn: () => clock.now() < relayUntil,
    stop: async () => {
      close();
      await hardware.stop();
    },
  };
}
