/**
 * Configuration reload (SIGHUP, `hookswitch reload`): re-reads the file the gateway started
 * with, validates it, and applies what can change without dropping calls or registrations.
 *
 * Either everything live is applied or nothing is: the file is validated and every new object
 * (dial plan, trunk addresses) is built before the first one is handed over. Keys that need a
 * restart are reported, not applied; the running config keeps describing what actually runs.
 *
 * Extensions removed from the file lose their password at once (a refresh REGISTER or a call
 * from them is refused) and the dial plan no longer routes to them; the bindings they hold are
 * left to expire rather than dropped, so removing an extension never disturbs a call it is in.
 */
import { DialPlan } from '../calls/dialplan.ts';
import type { CallMediaFactory } from '../calls/types.ts';
import { ConfigError, type Config, type ExtensionConfig, type TrunkConfig } from '../config/config.ts';
import { loadStoredConfig } from '../config/config-file.ts';
import type { ControlReply } from '../control/control-protocol.ts';
import type { LogLevel, Logger } from '../runtime/logger.ts';
import { adoptLiveKeys, diffConfig, diffTrunks, type TrunkChanges } from './config-diff.ts';

/** The running parts a reload reaches, handed over by the composition root. */
export interface ReloadTargets {
  /** The config the gateway runs with; live keys are written into it in place. */
  running: Config;
  /** The file to re-read; undefined when the gateway runs on the embedded defaults. */
  configPath?: string;
  /** Command-line settings that win over the file (`run --bind/--sip-port/--state-dir`). */
  overrides?: (config: Config) => void;
  /** Reads and validates the file; throws {@link ConfigError}. Default: {@link loadStoredConfig} (a missing file is the defaults). */
  load?: (path: string) => Config;
  logger: Logger;
  setLogLevel(level: LogLevel): void;
  /** The extensions a config stands for (the generated ones when it defines none). */
  extensionsFor(config: Config): Record<string, ExtensionConfig>;
  credentials: { set(extensions: Readonly<Record<string, ExtensionConfig>>): void };
  /** The extension numbers the phone logic and mDNS advertise; replaced in place. */
  extensionNames: string[];
  guard: { configure(settings: Config['security']): void };
  calls: { reconfigure(settings: CallSettings): void };
  /** The call media factory offering `codecs` (for calls that start after the reload). */
  mediaFor(codecs: readonly string[]): CallMediaFactory;
  qualifier?: { setIntervalSeconds(seconds: number): void; start(): void };
  discovery?: { reannounce(): Promise<void> };
  /** The presence notifier: subscriptions to removed extensions end (RFC 6665 `noresource`). */
  presence?: { extensionsChanged(names: readonly string[]): void };
  /**
   * Swaps the trunks: resolves the added and changed ones first (rejecting with nothing changed),
   * then un-registers removed and changed trunks and registers added and changed ones. Unchanged
   * trunks keep their registration untouched.
   */
  replaceTrunks(next: readonly TrunkConfig[], changes: TrunkChanges): Promise<void>;
}

/** What the call layer takes on reload (see `B2bua.reconfigure`). */
export interface CallSettings {
  dialplan?: DialPlan;
  extensions?: Record<string, { name?: string }>;
  media?: CallMediaFactory;
  noAnswerSeconds?: number;
  rtpTimeoutSeconds?: number;
  sessionExpires?: number;
  minSessionExpires?: number;
}

/** The reply when the gateway runs without a file. */
export const NOTHING_TO_RELOAD = 'no configuration file; nothing to reload';

/** Runs reloads one at a time against the targets of one started gateway. */
export class ConfigReloader {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly t: ReloadTargets) {}

  /**
   * Re-reads and applies the configuration. Replies `{ok:true, applied, restartNeeded}` (changed
   * keys as dotted paths), or `{ok:false, error}` with one line per problem when the file is
   * invalid, in which case nothing changed. Never rejects.
   */
  reload(): Promise<ControlReply> {
    const run = this.queue.then(() => this.reloadNow());
    this.queue = run.catch(() => undefined);
    return run.catch((e: unknown) => {
      const error = `reload failed: ${(e as Error).message}`;
      this.t.logger.error('config reload failed', { reason: (e as Error).message });
      return { ok: false, error };
    });
  }

  private async reloadNow(): Promise<ControlReply> {
    const { t } = this;
    const log = t.logger;
    if (t.configPath === undefined) {
      log.info('config reload: nothing to reload', { reason: NOTHING_TO_RELOAD });
      return { ok: true, message: NOTHING_TO_RELOAD, applied: [], restartNeeded: [] };
    }
    let next: Config;
    try {
      next = (t.load ?? ((path: string) => loadStoredConfig(path).config))(t.configPath);
      t.overrides?.(next);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      for (const problem of e.problems) log.error('config reload refused; the running configuration stays', { problem });
      return { ok: false, error: e.message };
    }
    const { applied, restartNeeded } = diffConfig(t.running, next);
    const has = (key: string): boolean => applied.includes(key);

    // Everything that can fail is built before anything is handed over.
    const extensions = t.extensionsFor(next);
    const calls: CallSettings = {};
    if (has('extensions') || has('dialplan') || has('emergencyNumbers') || has('trunks')) {
      try {
        calls.dialplan = new DialPlan(next.dialplan, {
          extensions: Object.keys(extensions),
          deviceExtension: t.running.device.extension,
          trunks: next.trunks.map((x) => x.name),
          emergencyNumbers: next.emergencyNumbers,
        });
      } catch (e) {
        const error = `config: ${(e as Error).message}`;
        log.error('config reload refused; the running configuration stays', { problem: error });
        return { ok: false, error };
      }
    }
    if (has('extensions')) calls.extensions = extensions;
    if (has('media.codecs')) calls.media = t.mediaFor(next.media.codecs);
    if (has('media.rtpTimeoutSeconds')) calls.rtpTimeoutSeconds = next.media.rtpTimeoutSeconds;
    if (has('calls')) Object.assign(calls, next.calls);
    if (has('trunks')) await t.replaceTrunks(next.trunks, diffTrunks(t.running.trunks, next.trunks));

    if (has('extensions')) {
      t.credentials.set(extensions);
      t.extensionNames.splice(0, t.extensionNames.length, ...Object.keys(extensions));
      t.presence?.extensionsChanged(t.extensionNames);
    }
    if (has('security')) t.guard.configure(next.security);
    if (Object.keys(calls).length > 0) t.calls.reconfigure(calls);
    adoptLiveKeys(t.running, next, applied);
    if (has('log.level')) t.setLogLevel(next.log.level);
    if (has('registrar.qualifySeconds') && t.qualifier) {
      t.qualifier.setIntervalSeconds(next.registrar.qualifySeconds);
      t.qualifier.start();
    }
    if ((has('discovery.name') || has('extensions')) && t.discovery) {
      t.discovery.reannounce().catch((e: unknown) => log.warn('mDNS re-announcement failed', { reason: (e as Error).message }));
    }
    log.info('config reloaded', { applied: applied.join(','), restartNeeded: restartNeeded.join(',') });
    return { ok: true, applied, restartNeeded };
  }
}
