import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import pkg from '../../package.json' with { type: 'json' };
import { Gateway } from '../app/gateway.ts';
import { ConfigError, type Config } from '../config/config.ts';
import { loadConfigFile } from '../config/load-config.ts';
import { SystemClock } from '../runtime/clock.ts';
import { LineLogger } from '../runtime/logger.ts';
import { SystemRandom } from '../runtime/random.ts';
import { controlRequest } from '../control/control-server.ts';
import { audioTest } from './audio-test-command.ts';
import { traceCommand } from './trace-command.ts';
import { attachSimConsole } from './sim-console.ts';
import { SimulatorBackend } from '../hardware/backends/simulator.ts';
import { BoardRegistry } from '../hardware/board-registry.ts';

const USAGE = `hookswitch ${pkg.version}: a SIP gateway for single-board computers

Usage:
  hookswitch run [--config FILE] [--bind ADDR] [--sip-port N] [--state-dir DIR] [--sim]
      Start the gateway in the foreground (UDP and TCP, default 0.0.0.0:5060).
      SIGINT or SIGTERM stops it (exit 0). Configuration and bind errors exit 2.
      --sim drives the board (config "board", default pi-ag1171-handset) from the terminal.
  hookswitch board list   The board profiles shipped in board/.
  hookswitch call NUMBER  The device calls NUMBER (through the dial plan).
  hookswitch answer       The device answers the ringing call.
  hookswitch hangup       The device hangs up.
  hookswitch dtmf DIGITS  The device sends DTMF (0-9 * # A-D) in the connected call.
  hookswitch status       The device's state, its call and the last digits received.
  hookswitch trace [--pcap FILE] [--summary]   Live SIP message log (see trace --help).
  hookswitch audio-test [--config FILE]
      Plays a 1 kHz tone on the playback device while recording the capture device;
      prints level, clipping and (with a loopback cable) the round-trip latency.
  hookswitch version      Print the version.
  hookswitch --help       Print this help.

Options of run:
  --config FILE     JSON configuration file (default: embedded defaults)
  --bind ADDR       Address to listen on (IPv4 or IPv6; overrides sip.bind)
  --sip-port N      SIP port for UDP and TCP (overrides sip.port)
  --state-dir DIR   Directory for registrations and generated secrets (overrides stateDir)

Options of call, answer, hangup, dtmf and status:
  --socket PATH     The daemon's control socket (default: STATE_DIR/control.sock)
  --state-dir DIR   The daemon's state directory (where its control socket is)
`;

/** Exit codes: 0 success, 1 unexpected failure, 2 bad usage, configuration or bind error. */
const EXIT_USAGE = 2;

function fail(message: string): never {
  process.stderr.write(`hookswitch: ${message}\n`);
  process.exit(EXIT_USAGE);
}

function defaultStateDir(): string {
  return process.env.STATE_DIRECTORY?.split(':')[0] || join(homedir(), '.local', 'state', 'hookswitch');
}

async function run(argv: string[]): Promise<void> {
  let values: { config?: string; bind?: string; 'sip-port'?: string; 'state-dir'?: string; help?: boolean; sim?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        bind: { type: 'string' },
        'sip-port': { type: 'string' },
        'state-dir': { type: 'string' },
        sim: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    fail(`${(e as Error).message} (see hookswitch --help)`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  let config: Config;
  try {
    config = loadConfigFile(values.config);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(EXIT_USAGE);
    }
    throw e;
  }
  if (values.bind !== undefined) config.sip.bind = values.bind;
  if (values['sip-port'] !== undefined) {
    const port = Number(values['sip-port']);
    if (!/^\d+$/.test(values['sip-port']) || port > 65535) fail(`--sip-port must be a port number 0-65535 (got ${values['sip-port']})`);
    config.sip.port = port;
  }
  config.stateDir = values['state-dir'] ?? (config.stateDir || defaultStateDir());

  // The gateway wakes 100+ times a second in a call and its heap is small and steady: V8's memory
  // reducer (extra GCs it schedules when the process looks idle) costs more than it saves here.
  setFlagsFromString('--no-memory-reducer');
  const logger = new LineLogger((line) => process.stderr.write(`${line}\n`), 'hookswitch', config.log.level);
  const clock = new SystemClock();
  const simulator = values.sim ? new SimulatorBackend({ clock }) : undefined;
  const gateway = new Gateway(config, { clock, random: new SystemRandom(), logger, ...(simulator ? { simulator } : {}) });
  // Signals are handled from the first moment: a SIGTERM while starting stops once started.
  let stopping = false;
  let started: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    (started ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => gateway.stop())
      .then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (e: unknown) => {
          logger.error('error while stopping', { reason: (e as Error).message });
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  started = gateway.start();
  try {
    await started;
  } catch (e) {
    await gateway.stop().catch(() => undefined);
    fail((e as Error).message);
  }
  if (simulator) {
    const rotary = config.board === '' || boardHasDial(config.board);
    const console_ = attachSimConsole(simulator, { rotary, quit: () => stop('sim quit') });
    process.once('exit', () => console_.stop());
  }
}

function boardHasDial(board: string): boolean {
  try {
    return new BoardRegistry().load(board).inputs.pulse !== undefined;
  } catch {
    return false;
  }
}

/** `hookswitch board list`: the shipped profiles, one line each. */
function boards(argv: string[]): void {
  if (argv[0] !== 'list' || argv.length !== 1) fail('usage: hookswitch board list');
  for (const b of new BoardRegistry().list()) {
    process.stdout.write(`${b.name.padEnd(20)} ${b.mode.padEnd(9)} ${b.connection.padEnd(7)} ringer ${b.ringer.padEnd(7)} ${b.description}\n`);
  }
}

/** Sends one command to the running daemon over its control socket and prints the reply. */
async function control(command: string, argv: string[]): Promise<void> {
  let parsed: { values: { socket?: string; 'state-dir'?: string }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { socket: { type: 'string' }, 'state-dir': { type: 'string' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    fail(`${(e as Error).message} (see hookswitch --help)`);
  }
  const { values, positionals } = parsed;
  const wants = command === 'call' || command === 'dtmf' ? 1 : 0;
  if (positionals.length !== wants) fail(`${command} takes ${wants === 1 ? (command === 'call' ? 'a NUMBER' : 'DIGITS') : 'no arguments'} (see hookswitch --help)`);
  const request = command === 'call' ? { cmd: command, number: positionals[0] } : command === 'dtmf' ? { cmd: command, digits: positionals[0] } : { cmd: command };
  const socket = values.socket ?? join(values['state-dir'] ?? defaultStateDir(), 'control.sock');
  let reply: { ok?: boolean; error?: string; [k: string]: unknown };
  try {
    reply = (await controlRequest(socket, request)) as typeof reply;
  } catch (e) {
    process.stderr.write(`hookswitch: ${(e as Error).message}\n`);
    process.exit(1);
  }
  if (!reply.ok) {
    process.stderr.write(`hookswitch: ${reply.error ?? 'failed'}\n`);
    process.exit(1);
  }
  const { ok: _ok, ...fields } = reply;
  for (const [k, v] of Object.entries(fields)) process.stdout.write(`${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return;
    case 'version':
    case '--version':
      process.stdout.write(`hookswitch ${pkg.version}\n`);
      return;
    case 'run':
      await run(rest);
      return;
    case 'call':
    case 'answer':
    case 'hangup':
    case 'dtmf':
    case 'status':
      await control(command, rest);
      return;
    case 'audio-test':
      await audioTest(rest);
      return;
    case 'trace':
      await traceCommand(rest, defaultStateDir());
      return;
    case 'board':
      boards(rest);
      return;
    default:
      fail(`unknown command "${command}" (see hookswitch --help)`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`hookswitch: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
