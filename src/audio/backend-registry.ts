import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { type AudioBackend, AudioDeviceError } from './audio-device.ts';
import { type AlsaBackendOptions, AlsaAudioBackend } from './backends/alsa.ts';
import { type FileBackendOptions, FileAudioBackend } from './backends/file.ts';
import { NullAudioBackend } from './backends/null.ts';
import type { SpawnFunction } from './backends/supervised-child.ts';

/** The names `audio.backend` accepts. */
export const AUDIO_BACKEND_NAMES = ['alsa', 'file', 'null'] as const;
export type AudioBackendName = (typeof AUDIO_BACKEND_NAMES)[number];

/** What the composition root hands to the chosen backend. */
export interface AudioBackendDeps {
  clock: Clock;
  /** The `audio` category logger; each backend logs under a child (`audio.alsa`, `audio.file`). */
  logger: Logger;
  /** Child-process spawner for `alsa`; default `node:child_process` spawn. */
  spawn?: SpawnFunction;
  alsa?: AlsaBackendOptions;
  file?: FileBackendOptions;
}

/**
 * The audio backend named by `audio.backend`. Throws `AUDIO_UNKNOWN_BACKEND` for any other name
 * (config validation normally catches it first).
 */
export function createAudioBackend(name: AudioBackendName, deps: AudioBackendDeps): AudioBackend {
  const logger = deps.logger.child(name);
  switch (name) {
    case 'alsa':
      return new AlsaAudioBackend({ clock: deps.clock, logger, spawn: deps.spawn, options: deps.alsa });
    case 'file':
      return new FileAudioBackend({ clock: deps.clock, logger, options: deps.file });
    case 'null':
      return new NullAudioBackend({ clock: deps.clock, logger });
    default:
      throw new AudioDeviceError('AUDIO_UNKNOWN_BACKEND', `unknown audio backend "${String(name)}" (expected one of ${AUDIO_BACKEND_NAMES.join(', ')})`);
  }
}
