/**
 * `hookswitch config get|set|check|path|schema`: reads and changes the config file through
 * {@link ConfigStore}, then asks a running daemon to reload it over the control socket.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config.ts';
import { CONFIG_SCHEMA } from '../config/config-schema.ts';
import { checkConfigFile, ConfigStore, loadStoredConfig, resolveConfigPath } from '../config/config-store.ts';
import { controlRequest } from '../control/control-server.ts';

/** The help text of `hookswitch config`. */
export const CONFIG_USAGE = `Usage:
  hookswitch config get [KEY] [--show-secrets]
      Print a setting (trunks[0].port, extensions.101.password, ...) as the daemon sees it,
      defaults included; the whole config without KEY. Passwords print as *** unless
      --show-secrets.
  hookswitch config set KEY VALUE
      Validate and write one setting atomically, then make a running daemon reload.
      VALUE is JSON when it parses ('["udp"]', 5070, true), else text.
  hookswitch config unset KEY
      Remove a setting from the file (a list entry: the ones after it move up), so its
      default applies again; then make a running daemon reload.
  hookswitch config check [FILE]   Validate a file: one line per problem, exit 2.
  hookswitch config path           Print which file is used.
  hookswitch config schema         Print the JSON Schema of the file.

Options:
  --config FILE     The config file (default: $CONFIGURATION_DIRECTORY/config.json under
                    systemd, /etc/hookswitch/config.json when it exists, else
                    ~/.config/hookswitch/config.json)
  --socket PATH     The daemon's control socket, for the reload after set
  --state-dir DIR   The daemon's state directory (where its control socket is)
`;

/** What the command reads and writes; tests pass their own. */
export interface ConfigCommandIo {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  request(socketPath: string, request: object): Promise<unknown>;
}

const processIo: ConfigCommandIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  request: (path, request) => controlRequest(path, request),
};

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** Runs `hookswitch config ARGS`; resolves to the exit code (0 done, 1 failed, 2 usage or invalid config). */
export async function configCommand(argv: string[], io: ConfigCommandIo = processIo): Promise<number> {
  let values: { config?: string; socket?: string; 'state-dir'?: string; 'show-secrets'?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        socket: { type: 'string' },
        'state-dir': { type: 'string' },
        'show-secrets': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    io.err(`hookswitch config: ${(e as Error).message} (see hookswitch config --help)\n`);
    return EXIT_USAGE;
  }
  const [action, ...args] = positionals;
  if (values.help || action === undefined || action === 'help') {
    (values.help || action === 'help' ? io.out : io.err)(CONFIG_USAGE);
    return values.help || action === 'help' ? EXIT_OK : EXIT_USAGE;
  }
  const usage = (message: string): number => {
    io.err(`hookswitch config: ${message} (see hookswitch config --help)\n`);
    return EXIT_USAGE;
  };
  const path = resolveConfigPath(io.env, values.config);
  const store = new ConfigStore(path);
  try {
    switch (action) {
      case 'get': {
        if (args.length > 1) return usage('get takes one KEY');
        const { value } = store.get(args[0] ?? '', { showSecrets: values['show-secrets'] === true });
        if (value === undefined) {
          io.err(`config: ${args[0]} is not set and has no default\n`);
          return EXIT_FAILED;
        }
        io.out(typeof value === 'string' ? `${value}\n` : `${JSON.stringify(value, null, 2)}\n`);
        return EXIT_OK;
      }
      case 'set': {
        if (args.length !== 2) return usage('set takes KEY and VALUE');
        store.set(args[0]!, args[1]!);
        io.out(`config: ${args[0]} set in ${path}\n`);
        return await reload(values, io);
      }
      case 'unset': {
        if (args.length !== 1) return usage('unset takes one KEY');
        if (!store.unset(args[0]!)) {
          io.out(`config: ${args[0]} is not set in ${path}; nothing changed\n`);
          return EXIT_OK;
        }
        io.out(`config: ${args[0]} removed from ${path}\n`);
        return await reload(values, io);
      }
      case 'check': {
        if (args.length > 1) return usage('check takes one FILE');
        const file = args[0] ?? path;
        const problems = checkConfigFile(file);
        if (problems.length > 0) {
          io.err(`${new ConfigError(problems).message}\n`);
          return EXIT_USAGE;
        }
        io.out(`config: ${file} is valid\n`);
        return EXIT_OK;
      }
      case 'path':
        if (args.length > 0) return usage('path takes no arguments');
        io.out(`${path}\n`);
        if (!existsSync(path)) io.err(`config: ${path} does not exist yet; the embedded defaults apply\n`);
        return EXIT_OK;
      case 'schema':
        io.out(`${JSON.stringify(CONFIG_SCHEMA, null, 2)}\n`);
        return EXIT_OK;
      default:
        return usage(`unknown action ${JSON.stringify(action)}`);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') {
      io.err(`config: cannot write ${path}: ${code} (${(e as Error).message})\n`);
      return EXIT_FAILED;
    }
    if (!(e instanceof ConfigError)) throw e;
    io.err(`${e.message}\n`);
    if (action === 'set' || action === 'unset') io.err(`config: ${path} was not changed\n`);
    return EXIT_USAGE;
  }
}

/**
 * The daemon's control socket: `--socket`, `--state-dir`, systemd's `RuntimeDirectory=`
 * (`/run/hookswitch`), then the state directory the config names or the default one.
 */
function controlSocketPath(values: { config?: string; socket?: string; 'state-dir'?: string }, env: NodeJS.ProcessEnv): string {
  if (values.socket) return values.socket;
  if (values['state-dir']) return join(values['state-dir'], 'control.sock');
  const runtime = env.RUNTIME_DIRECTORY?.split(':')[0];
  if (runtime) return join(runtime, 'control.sock');
  if (existsSync('/run/hookswitch/control.sock')) return '/run/hookswitch/control.sock';
  const configured = loadStoredConfig(resolveConfigPath(env, values.config)).config.stateDir;
  const stateDir = configured || env.STATE_DIRECTORY?.split(':')[0] || join(env.HOME || homedir(), '.local', 'state', 'hookswitch');
  return join(stateDir, 'control.sock');
}

async function reload(values: { config?: string; socket?: string; 'state-dir'?: string }, io: ConfigCommandIo): Promise<number> {
  const socket = controlSocketPath(values, io.env);
  let reply: { ok?: boolean; error?: string; message?: string; applied?: unknown; restartNeeded?: unknown };
  try {
    reply = (await io.request(socket, { cmd: 'reload' })) as typeof reply;
  } catch (e) {
    const message = (e as Error).message;
    if (/not running/.test(message)) {
      io.out(`config: hookswitch is not running (no daemon on ${socket}); the change applies when it starts\n`);
      return EXIT_OK;
    }
    io.err(`config: the change is saved but the daemon did not answer: ${message}\n`);
    return EXIT_FAILED;
  }
  if (reply.ok !== true) {
    io.err(`config: the change is saved but the daemon did not reload: ${reply.error ?? 'no reason given'}\n`);
    return EXIT_FAILED;
  }
  const list = (v: unknown): string => (Array.isArray(v) && v.length > 0 ? v.join(', ') : '');
  const details = [
    reply.message ?? '',
    list(reply.applied) && `applied: ${list(reply.applied)}`,
    list(reply.restartNeeded) && `needs a restart: ${list(reply.restartNeeded)}`,
  ].filter((x) => x !== '');
  io.out(`config: the running daemon reloaded its config${details.length > 0 ? ` (${details.join('; ')})` : ''}\n`);
  return EXIT_OK;
}
