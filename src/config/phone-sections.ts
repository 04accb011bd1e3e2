/**
 * Validation of the phone hardware settings: `board`, `hardware`, `handset`, `intercom`. The
 * state machines own their defaults and range checks (src/phone/handset.ts, intercom.ts); this
 * file checks the shape of the JSON and names the key of every problem.
 */
import type { Config } from './config.ts';
import { isObject, show, wholeNumber } from './sections.ts';

type Json = unknown;

/** How a `gpio` board is driven and where its devices are. */
export interface HardwareConfig {
  /** `kernel`: gpio-keys and gpio-led overlays (default); `gpiod`: libgpiod's command-line tools. */
  backend: 'kernel' | 'gpiod';
  /** evdev path per input role, when the overlay's device is not where the default guesses. */
  inputPaths: Record<string, string>;
  /** The serial board's port, overriding the profile's (`/dev/serial/by-id/...`). */
  serialPort?: string;
}

/** `handset`: see HandsetConfig in src/phone/handset.ts. */
export interface HandsetSettings {
  interDigitMs?: number;
  offHookWarningMs?: number;
  failureToneMs?: number;
  hotline?: string;
  ringFrequencyHz?: number;
}

/** `intercom`: see IntercomConfig in src/phone/intercom.ts; targets may be plain numbers. */
export interface IntercomSettings {
  [key: string]: unknown;
}

const INPUT_ROLES = ['hook', 'pulse', 'offNormal', 'button'];

export function checkPhoneSections(input: Record<string, Json>, cfg: Config, problems: string[]): void {
  if (input.board !== undefined) {
    if (typeof input.board !== 'string' || !/^[A-Za-z0-9_./-]{0,200}$/.test(input.board)) {
      problems.push(`board must be the name of a profile in board/ (see hookswitch board list) or a path to one (got ${show(input.board)})`);
    } else cfg.board = input.board;
  }

  const hw = input.hardware;
  if (hw !== undefined) {
    if (!isObject(hw)) problems.push(`hardware must be an object (got ${show(hw)})`);
    else {
      for (const k of Object.keys(hw)) if (!['backend', 'inputPaths', 'serialPort'].includes(k)) problems.push(`hardware.${k} is not a known setting`);
      if (hw.backend !== undefined) {
        if (hw.backend !== 'kernel' && hw.backend !== 'gpiod') problems.push(`hardware.backend must be "kernel" or "gpiod" (got ${show(hw.backend)})`);
        else cfg.hardware.backend = hw.backend;
      }
      if (hw.inputPaths !== undefined) {
        if (!isObject(hw.inputPaths)) problems.push(`hardware.inputPaths must map input roles to /dev/input paths (got ${show(hw.inputPaths)})`);
        else {
          for (const [role, path] of Object.entries(hw.inputPaths)) {
            if (!INPUT_ROLES.includes(role)) problems.push(`hardware.inputPaths.${role} is not an input role (${INPUT_ROLES.join(', ')})`);
            else if (typeof path !== 'string' || !path.startsWith('/dev/')) problems.push(`hardware.inputPaths.${role} must be a /dev/input path (got ${show(path)})`);
            else cfg.hardware.inputPaths[role] = path;
          }
        }
      }
      if (hw.serialPort !== undefined) {
        if (typeof hw.serialPort !== 'string' || !hw.serialPort.startsWith('/')) problems.push(`hardware.serialPort must be an absolute path like /dev/serial/by-id/... (got ${show(hw.serialPort)})`);
        else cfg.hardware.serialPort = hw.serialPort;
      }
    }
  }

  const handset = input.handset;
  if (handset !== undefined) {
    if (!isObject(handset)) problems.push(`handset must be an object (got ${show(handset)})`);
    else {
      const ranges: Record<string, [number, number]> = {
        interDigitMs: [500, 30_000],
        offHookWarningMs: [5_000, 600_000],
        failureToneMs: [1_000, 600_000],
        ringFrequencyHz: [15, 50],
      };
      for (const k of Object.keys(handset)) if (!(k in ranges) && k !== 'hotline') problems.push(`handset.${k} is not a known setting`);
      for (const [k, [lo, hi]] of Object.entries(ranges)) {
        if (handset[k] === undefined) continue;
        const n = wholeNumber(handset[k], `handset.${k}`, lo, hi, problems);
        if (n !== undefined) (cfg.handset as Record<string, number>)[k] = n;
      }
      if (handset.hotline !== undefined) {
        if (typeof handset.hotline !== 'string' || !/^[0-9*#+]{1,32}$/.test(handset.hotline)) problems.push(`handset.hotline must be a number of digits, *, # or + (got ${show(handset.hotline)})`);
        else cfg.handset.hotline = handset.hotline;
      }
    }
  }

  const intercom = input.intercom;
  if (intercom !== undefined) {
    if (!isObject(intercom)) problems.push(`intercom must be an object (got ${show(intercom)})`);
    else {
      const targets = intercom.targets;
      if (targets !== undefined && (!Array.isArray(targets) || !targets.every((x) => typeof x === 'string' || (isObject(x) && typeof x.number === 'string')))) {
        problems.push(`intercom.targets must be a list of numbers ("101") or {"number": "101", "timeoutMs": 20000} (got ${show(targets)})`);
      } else cfg.intercom = { ...intercom, ...(targets ? { targets: targets.map((x) => (typeof x === 'string' ? { number: x } : x)) } : {}) };
    }
  }
}
