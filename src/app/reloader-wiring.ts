/**
 * What a configuration reload reaches in a started gateway: the {@link ReloadTargets} of
 * config-reloader.ts built from the gateway's parts (the extensions a config stands for, the
 * log level, the file and command-line overrides). Wiring for the composition root (gateway.ts).
 */
import type { Config } from '../config/config.ts';
import { LineLogger, type Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';
import { ConfigReloader, type ReloadTargets } from './config-reloader.ts';
import { defaultExtensions } from './default-extensions.ts';

/** The gateway's dependencies a reload uses (`GatewayDeps` in gateway.ts has them all). */
export interface ReloadDeps {
  random: Random;
  /** The gateway's logger; its level follows `logLevel` when it is a {@link LineLogger}. */
  logger: Logger;
  configPath?: string;
  overrides?: (config: Config) => void;
  loadConfig?: (path: string) => Config;
}

/** The running parts handed to the reloader as they are. */
export type ReloadParts = Pick<
  ReloadTargets,
  'credentials' | 'extensionNames' | 'guard' | 'calls' | 'mediaFor' | 'qualifier' | 'discovery' | 'replaceTrunks' | 'presence'
>;

/** The reloader of a gateway running `config` (see config-reloader.ts for what is applied live). */
export function createReloader(config: Config, deps: ReloadDeps, parts: ReloadParts): ConfigReloader {
  const log = deps.logger;
  return new ConfigReloader({
    running: config,
    ...(deps.configPath !== undefined ? { configPath: deps.configPath } : {}),
    ...(deps.overrides ? { overrides: deps.overrides } : {}),
    ...(deps.loadConfig ? { load: deps.loadConfig } : {}),
    logger: log,
    setLogLevel: (level) => {
      if (log instanceof LineLogger) log.setLevel(level);
    },
    extensionsFor: (c) => (Object.keys(c.extensions).length > 0 ? c.extensions : defaultExtensions(config.stateDir, deps.random, log)),
    ...parts,
  });
}
