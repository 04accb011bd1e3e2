/**
 * Board profiles (`board/<name>.json`): which wires a board has, by role, and how to reach them.
 * A GPIO board names the BCM GPIO number, polarity, pull and debounce of each input and output;
 * the kernel-GPIO backend reaches them through `gpio-key`/`gpio-led` overlays (the `config.txt`
 * lines come from {@link configTxtLines}), the libgpiod fallback through the same numbers as
 * line offsets. A serial board names its USB serial port instead. Pure: parsing and checking only;
 * the files are read by `board-registry.ts`.
 */
import type { InputRole, OutputRole } from './types.ts';

/** Every input role, in the order profiles and tables list them. */
export const INPUT_ROLES: readonly InputRole[] = ['hook', 'pulse', 'offNormal', 'button'];
/** Every output role, in the order profiles and tables list them. */
export const OUTPUT_ROLES: readonly OutputRole[] = ['ringMode', 'forwardReverse', 'bell', 'relay', 'ledGreen', 'ledRed'];

/** The pull resistor a GPIO input enables (`gpio_pull=` of the `gpio-key` overlay, libgpiod `--bias`). */
export type Pull = 'up' | 'down' | 'off';

/** One GPIO input: a `gpio-keys` key for the kernel backend, a monitored line for libgpiod. */
export interface GpioInput {
  /** BCM GPIO number; also the line offset on the Pi's main GPIO chip (`pinctrl-bcm2835/2711/rp1`). */
  gpio: number;
  /** The input is active when the pin is low (a contact to ground with a pull-up). */
  activeLow: boolean;
  pull: Pull;
  /** Edges closer together than this are contact bounce (applied by libgpiod 2 and the decoders). */
  debounceMs: number;
  /** The evdev key code the `gpio-key` overlay reports (linux/input-event-codes.h). */
  keycode: number;
  /** Overlay label, unique on the board: the name the kernel gives the key. */
  label: string;
}

/** One GPIO output: a `gpio-led` LED class device for the kernel backend, a `gpioset` line for libgpiod. */
export interface GpioOutput {
  gpio: number;
  /** The output is on when the pin is low. */
  activeLow: boolean;
  /** Overlay label: the LED appears as `/sys/class/leds/<label>`. */
  label: string;
}

/** How the phone rings: a SLIC's RM/FR pins, a bell driver output, a WAV through the sound card, or the MCU. */
export type RingerMode = 'slic' | 'bell' | 'sound' | 'serial';

/** The ringer section of a profile. */
export interface RingerSpec {
  mode: RingerMode;
  /** Ring frequency the SLIC's FR pin toggles at (20 Hz North America, 25 Hz most of Europe). */
  frequencyHz: number;
}

/** The USB serial microcontroller of a serial board. */
export interface SerialSpec {
  /** `/dev/serial/by-id/...`: stable across replugging, unlike `/dev/ttyACM0`. */
  path: string;
  baudRate: number;
}

/** A board profile after validation. */
export interface BoardProfile {
  name: string;
  description: string;
  /** Which state machine drives the board. */
  mode: 'handset' | 'intercom';
  /** `gpio`: kernel GPIO (or the libgpiod fallback); `serial`: a microcontroller on USB serial. */
  connection: 'gpio' | 'serial';
  inputs: Partial<Record<InputRole, GpioInput>>;
  outputs: Partial<Record<OutputRole, GpioOutput>>;
  /** For `serial` boards: the microcontroller pin of each role, for the wiring table only. */
  mcuPins: Record<string, string>;
  serial?: SerialSpec;
  ringer: RingerSpec;
  /** The sound card, by ALSA card id (`/proc/asound/cards`, e.g. `Device` for C-Media USB cards). */
  audio: { card: string; device: number };
}

/** A profile that fails validation: one line naming the profile and the key. */
export class BoardProfileError extends Error {
  readonly code = 'BOARD_PROFILE_INVALID';
  constructor(
    readonly source: string,
    /** The dotted key at fault (`inputs.hook.gpio`), or '' for the whole document. */
    readonly key: string,
    problem: string,
  ) {
    super(`board ${source}: ${key ? `${key} ` : ''}${problem}`);
    this.name = 'BoardProfileError';
  }
}

/** GPIO 0 and 1 carry the HAT ID EEPROM (ID_SD/ID_SC) and are reserved by the Pi firmware. */
const GPIO_MIN = 2;
/** The 40-pin header brings out BCM GPIO 0-27. */
const GPIO_MAX = 27;
/** KEY_MAX in linux/input-event-codes.h is 0x2ff. */
const KEYCODE_MAX = 0x2ff;
/** Overlay parameters are comma-separated and LED names are sysfs names: keep labels plain. */
const LABEL = /^[a-z][a-z0-9-]{0,31}$/;
const NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;
const CARD = /^[A-Za-z0-9_]{1,32}$/;
const PULLS: readonly Pull[] = ['up', 'down', 'off'];
const RINGERS: readonly RingerMode[] = ['slic', 'bell', 'sound', 'serial'];

type Json = unknown;
type Obj = Record<string, Json>;

const isObj = (v: Json): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: Json): string => JSON.stringify(v) ?? String(v);

/**
 * Checks a parsed profile document and returns the typed profile. `source` names it in errors
 * (the profile name or file). Throws {@link BoardProfileError} at the first problem: unknown keys,
 * wrong types or ranges, a GPIO, label or key code used twice, a mode without its required roles
 * (a handset needs `hook`; an intercom `button` and `relay`), a ringer without its outputs.
 */
export function parseBoardProfile(doc: Json, source: string): BoardProfile {
  const fail = (key: string, problem: string): never => {
    throw new BoardProfileError(source, key, problem);
  };
  if (!isObj(doc)) return fail('', `must be a JSON object (got ${show(doc)})`);
  known(doc, '', ['name', 'description', 'mode', 'connection', 'inputs', 'outputs', 'mcuPins', 'serial', 'ringer', 'audio'], fail);

  const name = str(doc.name, 'name', fail);
  if (!NAME.test(name)) fail('name', `must be lower-case letters, digits and dashes (got ${show(name)})`);
  const description = str(doc.description, 'description', fail);
  const mode = oneOf(doc.mode, 'mode', ['handset', 'intercom'] as const, fail);
  const connection = oneOf(doc.connection, 'connection', ['gpio', 'serial'] as const, fail);

  const gpios = new Map<number, string>();
  const labels = new Map<string, string>();
  const useGpio = (gpio: number, label: string, key: string): void => {
    const other = gpios.get(gpio);
    if (other) fail(`${key}.gpio`, `uses GPIO ${gpio}, already used by ${other}`);
    gpios.set(gpio, key);
    const otherLabel = labels.get(label);
    if (otherLabel) fail(`${key}.label`, `${show(label)} is already the label of ${otherLabel}`);
    labels.set(label, key);
  };

  const inputs: Partial<Record<InputRole, GpioInput>> = {};
  const outputs: Partial<Record<OutputRole, GpioOutput>> = {};
  const mcuPins: Record<string, string> = {};
  let serial: SerialSpec | undefined;

  if (connection === 'gpio') {
    if (doc.serial !== undefined) fail('serial', 'is only for "connection": "serial"');
    if (doc.mcuPins !== undefined) fail('mcuPins', 'is only for "connection": "serial"');
    const ins = obj(doc.inputs ?? {}, 'inputs', fail);
    known(ins, 'inputs', INPUT_ROLES, fail);
    const keycodes = new Map<number, string>();
    for (const role of INPUT_ROLES) {
      if (ins[role] === undefined) continue;
      const key = `inputs.${role}`;
      const spec = obj(ins[role], key, fail);
      known(spec, key, ['gpio', 'activeLow', 'pull', 'debounceMs', 'keycode', 'label'], fail);
      const input: GpioInput = {
        gpio: int(spec.gpio, `${key}.gpio`, GPIO_MIN, GPIO_MAX, fail),
        activeLow: bool(spec.activeLow, `${key}.activeLow`, fail),
        pull: oneOf(spec.pull, `${key}.pull`, PULLS, fail),
        debounceMs: int(spec.debounceMs, `${key}.debounceMs`, 0, 100, fail),
        keycode: int(spec.keycode, `${key}.keycode`, 1, KEYCODE_MAX, fail),
        label: label(spec.label, `${key}.label`, fail),
      };
      useGpio(input.gpio, input.label, key);
      const other = keycodes.get(input.keycode);
      if (other) fail(`${key}.keycode`, `${input.keycode} is already the key code of ${other}`);
      keycodes.set(input.keycode, key);
      inputs[role] = input;
    }
    const outs = obj(doc.outputs ?? {}, 'outputs', fail);
    known(outs, 'outputs', OUTPUT_ROLES, fail);
    for (const role of OUTPUT_ROLES) {
      if (outs[role] === undefined) continue;
      const key = `outputs.${role}`;
      const spec = obj(outs[role], key, fail);
      known(spec, key, ['gpio', 'activeLow', 'label'], fail);
      const output: GpioOutput = {
        gpio: int(spec.gpio, `${key}.gpio`, GPIO_MIN, GPIO_MAX, fail),
        activeLow: bool(spec.activeLow, `${key}.activeLow`, fail),
        label: label(spec.label, `${key}.label`, fail),
      };
      useGpio(output.gpio, output.label, key);
      outputs[role] = output;
    }
  } else {
    if (doc.inputs !== undefined) fail('inputs', 'is only for "connection": "gpio" (the microcontroller reads the wires)');
    if (doc.outputs !== undefined) fail('outputs', 'is only for "connection": "gpio" (the microcontroller drives the wires)');
    const pins = obj(doc.mcuPins ?? {}, 'mcuPins', fail);
    known(pins, 'mcuPins', [...INPUT_ROLES, ...OUTPUT_ROLES, 'keypad'], fail);
    for (const [role, pin] of Object.entries(pins)) mcuPins[role] = str(pin, `mcuPins.${role}`, fail);
    const s = obj(doc.serial, 'serial', fail);
    known(s, 'serial', ['path', 'baudRate'], fail);
    const path = str(s.path, 'serial.path', fail);
    if (!path.startsWith('/dev/')) fail('serial.path', `must be a device path such as /dev/serial/by-id/... (got ${show(path)})`);
    serial = { path, baudRate: int(s.baudRate, 'serial.baudRate', 1200, 4_000_000, fail) };
  }

  const r = obj(doc.ringer, 'ringer', fail);
  known(r, 'ringer', ['mode', 'frequencyHz'], fail);
  const ringer: RingerSpec = {
    mode: oneOf(r.mode, 'ringer.mode', RINGERS, fail),
    frequencyHz: r.frequencyHz === undefined ? 25 : int(r.frequencyHz, 'ringer.frequencyHz', 15, 50, fail),
  };
  if (ringer.mode === 'slic') for (const role of ['ringMode', 'forwardReverse'] as const) if (!outputs[role]) fail(`outputs.${role}`, 'is required by "ringer": {"mode": "slic"}');
  if (ringer.mode === 'bell' && !outputs.bell) fail('outputs.bell', 'is required by "ringer": {"mode": "bell"}');
  if ((ringer.mode === 'serial') !== (connection === 'serial')) fail('ringer.mode', `"serial" goes with "connection": "serial" and only with it (got ${show(ringer.mode)})`);

  if (connection === 'gpio') {
    if (mode === 'handset' && !inputs.hook) fail('inputs.hook', 'is required by "mode": "handset"');
    if (mode === 'intercom' && !inputs.button) fail('inputs.button', 'is required by "mode": "intercom"');
    if (mode === 'intercom' && !outputs.relay) fail('outputs.relay', 'is required by "mode": "intercom"');
    if (inputs.offNormal && !inputs.pulse) fail('inputs.offNormal', 'needs inputs.pulse (the off-normal contact belongs to a rotary dial)');
  }

  const a = obj(doc.audio, 'audio', fail);
  known(a, 'audio', ['card', 'device'], fail);
  const card = str(a.card, 'audio.card', fail);
  if (!CARD.test(card)) fail('audio.card', `must be an ALSA card id (letters, digits, _), as in /proc/asound/cards (got ${show(card)})`);
  const audio = { card, device: a.device === undefined ? 0 : int(a.device, 'audio.device', 0, 31, fail) };

  return { name, description, mode, connection, inputs, outputs, mcuPins, ...(serial ? { serial } : {}), ringer, audio };
}

/**
 * The `config.txt` lines a GPIO board needs for the kernel-GPIO backend: one `gpio-key` overlay
 * per input and one `gpio-led` overlay per output, in role order. Parameters as documented in the
 * Raspberry Pi overlay README (`gpio-key`: gpio, active_low (default 1), gpio_pull (default up),
 * label, keycode; `gpio-led`: gpio, label, active_low). Empty for serial boards.
 */
export function configTxtLines(profile: BoardProfile): string[] {
  const lines: string[] = [];
  for (const role of INPUT_ROLES) {
    const i = profile.inputs[role];
    if (i) lines.push(`dtoverlay=gpio-key,gpio=${i.gpio},active_low=${i.activeLow ? 1 : 0},gpio_pull=${i.pull},keycode=${i.keycode},label=${i.label}`);
  }
  for (const role of OUTPUT_ROLES) {
    const o = profile.outputs[role];
    if (o) lines.push(`dtoverlay=gpio-led,gpio=${o.gpio},label=${o.label}${o.activeLow ? ',active_low=1' : ''}`);
  }
  return lines;
}

/** The `config.txt` line of one role, for "add this line" errors; undefined when the board lacks it. */
export function configTxtLineFor(profile: BoardProfile, role: InputRole | OutputRole): string | undefined {
  const spec = (profile.inputs as Record<string, GpioInput | undefined>)[role] ?? (profile.outputs as Record<string, GpioOutput | undefined>)[role];
  if (!spec) return undefined;
  return configTxtLines(profile).find((l) => l.includes(`,gpio=${spec.gpio},`));
}

/** The ALSA device of the board's sound card by name (`plughw:CARD=Device,DEV=0`), stable across USB re-enumeration. */
export function alsaDevice(profile: BoardProfile): string {
  return `plughw:CARD=${profile.audio.card},DEV=${profile.audio.device}`;
}

type Fail = (key: string, problem: string) => never;

function known(o: Obj, prefix: string, keys: readonly string[], fail: Fail): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(prefix ? `${prefix}.${k}` : k, `is not a known key (known: ${keys.join(', ')})`);
}

function obj(v: Json, key: string, fail: Fail): Obj {
  if (v === undefined) return fail(key, 'is missing');
  return isObj(v) ? v : fail(key, `must be an object (got ${show(v)})`);
}

function str(v: Json, key: string, fail: Fail): string {
  if (v === undefined) return fail(key, 'is missing');
  return typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : fail(key, `must be a non-empty string (got ${show(v)})`);
}

function bool(v: Json, key: string, fail: Fail): boolean {
  if (v === undefined) return fail(key, 'is missing');
  return typeof v === 'boolean' ? v : fail(key, `must be true or false (got ${show(v)})`);
}

function int(v: Json, key: string, min: number, max: number, fail: Fail): number {
  if (v === undefined) return fail(key, 'is missing');
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : fail(key, `must be a whole number from ${min} to ${max} (got ${show(v)})`);
}

function oneOf<T extends string>(v: Json, key: string, values: readonly T[], fail: Fail): T {
  if (v === undefined) return fail(key, 'is missing');
  return values.includes(v as T) ? (v as T) : fail(key, `must be one of ${values.map((x) => `"${x}"`).join(', ')} (got ${show(v)})`);
}

function label(v: Json, key: string, fail: Fail): string {
  const s = str(v, key, fail);
  return LABEL.test(s) ? s : fail(key, `must be lower-case letters, digits and dashes, starting with a letter (got ${show(s)})`);
}
