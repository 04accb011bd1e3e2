/**
 * The codecs hookswitch ships, in the order they are registered: the device's preference list
 * (`media.codecs`) picks and orders from these.
 */
import { pcma, pcmu } from './g711.ts';
import { g722 } from './g722.ts';
import { l16Codecs } from './l16.ts';
import { opus } from './opus.ts';
import { CodecRegistry } from './registry.ts';

export function builtinCodecs(): CodecRegistry {
  return new CodecRegistry([opus, g722, pcmu, pcma, ...l16Codecs]);
}
