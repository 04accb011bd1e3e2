/**
 * The SRTP settings (`media.srtp`, `media.srtpOverPlainSignalling`, `extensions.<n>.srtp`,
 * `trunks[i].srtp`); see `src/media/srtp-policy.ts` for what each policy does. Runs after
 * config.ts and sections.ts accepted the key names and built the extensions and trunks.
 */
import { SRTP_POLICIES, type SrtpPolicy } from '../media/srtp-policy.ts';
import type { Config } from './config.ts';
import { isObject, show } from './sections.ts';

type Json = unknown;

function policy(v: Json, key: string, problems: string[]): SrtpPolicy | undefined {
  if (typeof v === 'string' && (SRTP_POLICIES as readonly string[]).includes(v)) return v as SrtpPolicy;
  problems.push(`${key} must be one of ${SRTP_POLICIES.join(', ')} (got ${show(v)})`);
  return undefined;
}

/** Checks and applies the SRTP keys of `input` to `cfg`. */
export function checkSrtpSection(input: Record<string, Json>, cfg: Config, problems: string[]): void {
  const media = input.media;
  if (isObject(media)) {
    if (media.srtp !== undefined) {
      const p = policy(media.srtp, 'media.srtp', problems);
      if (p) cfg.media.srtp = p;
    }
    const plain = media.srtpOverPlainSignalling;
    if (plain !== undefined) {
      if (typeof plain !== 'boolean') problems.push(`media.srtpOverPlainSignalling must be true or false (got ${show(plain)})`);
      else cfg.media.srtpOverPlainSignalling = plain;
    }
  }
  const extensions = input.extensions;
  if (isObject(extensions)) {
    for (const [number, value] of Object.entries(extensions)) {
      if (!isObject(value) || value.srtp === undefined) continue;
      const p = policy(value.srtp, `extensions.${number}.srtp`, problems);
      const ext = cfg.extensions[number];
      if (p && ext) ext.srtp = p;
    }
  }
  if (Array.isArray(input.trunks)) {
    input.trunks.forEach((value: Json, i) => {
      if (!isObject(value) || value.srtp === undefined) return;
      const p = policy(value.srtp, `trunks[${i}].srtp`, problems);
      const trunk = cfg.trunks.find((t) => t.name === value.name);
      if (p && trunk) trunk.srtp = p;
    });
  }
}
