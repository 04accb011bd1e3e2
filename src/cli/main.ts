import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import pkg from '../../package.json' with { type: 'json' };
import type { Gateway } from '../app/gateway.ts';
import { ConfigError, type Config } from '../config/config.ts';
import { loadStoredConfig, resolveConfigPath } from '../config/config-file.ts';
import { SystemClock } from '../runtime/clock.ts';
import { LineLogger } from '../runtime/logger.ts';
import { SystemRandom } from '../runtime/random.ts';
import { controlRequest } from '../control/control-server.ts';
import { audioTest } from './audio-test-command.ts';
import { traceCommand } from './trace-command.ts';
import { clientSocket, defaultStateDir } from './control-socket.ts';
import { doctorCommand } from './doctor-command.ts';
import { SystemdNotifier } from '../runtime/systemd-notify.ts';
import type { TimerHandle } from '../runtime/clock.ts';
import { attachSimConsole } from './sim-console.ts';
import { SimulatorBackend } from '../hardware/backends/simulator.ts';
import { BoardRegistry } from '../hardware/board-registry.ts';
import { formatStatus } from './status-format.ts';
import type { StatusReport } from '../app/status-report.ts';
import type { ReceivedMessage } from '../calls/message-inbox.ts';

const USAGE = `hookswitch ${pkg.version}: a SIP gateway for single-board computers

Usage:
  hookswitch run [--config FILE] [--bind ADDR] [--sip-port N] [--state-dir DIR] [--sim]
      Start the gateway in the foreground (UDP and TCP, default 0.0.0.0:5060).
      SIGINT or SIGTERM stops it (exit 0). Configuration and bind errors exit 2.
      --sim drives the board (config "board", default pi-ag1171-handset) from the terminal.
  hookswitch board list   The board profiles shipped in board/.
  hookswitch call NUMBER  The device calls NUMBER (through the dial plan).
  hookswitch call NAME    The device calls the LAN peer NAME (kitchen or @kitchen; see peers).
  hookswitch answer       The device answers the ringing call.
  hookswitch hangup       The device hangs up.
  hookswitch dtmf DIGITS  The device sends DTMF (0-9 * # A-D) in the connected call.
  hookswitch status [--json]  The device's state, its call, calls, registrations.
  hookswitch peers [--json]   SIP services and hookswitch boxes seen on the LAN (mDNS).
  hookswitch reload       The daemon re-reads its configuration (as SIGHUP does).
  hookswitch config get [KEY] [--show-secrets] | set KEY VALUE | unset KEY | check [FILE] | path | schema
      Read or change the config file (validated, written atomically; set/unset make the
      daemon reload). See hookswitch config --help.
  hookswitch doctor [--config FILE] [--json] [--socket PATH] [--state-dir DIR]
      Checks SIP ports, network, clock, Wi-Fi power saving, mDNS, sound card, board wiring and
      the daemon: OK, WARN or FAIL each, with the fix. Exit 1 when a check fails.
  hookswitch trace [--pcap FILE] [--summary]   Live SIP message log (see trace --help).
  hookswitch audio-test [--config FILE]
      Plays a 1 kHz tone on the playback device while recording the capture device;
      prints level, clipping and (with a loopback cable) the round-trip latency.
  hookswitch version      Print the version.
  hookswitch --help       Print this help.
  hookswitch COMMAND --help   The help of one command (also -h).

Options of run:
  --config FILE     JSON configuration file (default: embedded defaults)
  --bind ADDR       Address to listen on (IPv4 or IPv6; overrides sip.bind)
  --sip-port N      SIP port for UDP and TCP (overrides sip.port)
  --state-dir DIR   Directory for registrations and generated secrets (overrides stateDir)

Options of call, answer, hangup, dtmf, status, peers and reload:
  --socket PATH     The daemon's control socket (default: /run/hookswitch/control.sock for the
                    service, else STATE_DIR/control.sock)
  --state-dir DIR   The daemon's state directory (where its control socket is)
`;

const SOCKET_OPTIONS = `  --socket PATH     The daemon's control socket (default: /run/hookswitch/control.sock for the
                    service, else STATE_DIR/control.sock)
  --state-dir DIR   The daemon's state directory (where its control socket is)
`;

/** What `hookswitch COMMAND --help` prints for the commands without a help of their own file. */
const COMMAND_USAGE: Readonly<Record<string, string>> = {
  call: `Usage: hookswitch call NUMBER|NAME [--socket PATH | --state-dir DIR]
  The device calls NUMBER through the dial plan, or the LAN peer NAME (kitchen or @kitchen;
  see hookswitch peers).
${SOCKET_OPTIONS}`,
  answer: `Usage: hookswitch answer [--socket PATH | --state-dir DIR]
  The device answers the ringing call.
${SOCKET_OPTIONS}`,
  hangup: `Usage: hookswitch hangup [--socket PATH | --state-dir DIR]
  The device hangs up.
${SOCKET_OPTIONS}`,
  dtmf: `Usage: hookswitch dtmf DIGITS [--socket PATH | --state-dir DIR]
  The device sends DIGITS (0-9 * # A-D) as DTMF in the connected call.
${SOCKET_OPTIONS}`,
  status: `Usage: hookswitch status [--json] [--socket PATH | --state-dir DIR]
  Listening addresses, trunk registrations, registered phones, active calls with their RTP
  figures, the device's state and LAN peers.
  --json            The daemon's report as JSON.
${SOCKET_OPTIONS}`,
  peers: `Usage: hookswitch peers [--json] [--socket PATH | --state-dir DIR]
  SIP services and hookswitch boxes seen on the LAN (mDNS), and how this box is advertised.
  --json            The list as JSON.
${SOCKET_OPTIONS}`,
  reload: `Usage: hookswitch reload [--socket PATH | --state-dir DIR]
  The daemon re-reads its configuration, as SIGHUP does, and says which changes were applied
  and which need a restart.
${SOCKET_OPTIONS}`,
  board: `Usage: hookswitch board list
  The board profiles shipped in board/: name, mode, connection, ringer, description.
`,
  version: `Usage: hookswitch version
  Prints the version.
`,
};

/** `--help` or `-h` among the arguments (before a `--`). */
function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Exit codes: 0 success, 1 unexpected failure, 2 bad usage, configuration or bind error. */
const EXIT_USAGE = 2;

function fail(message: string): never {
  process.stderr.write(`hookswitch: ${message}\n`);
  process.exit(EXIT_USAGE);
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
  // --config, else systemd's ConfigurationDirectory, else /etc/hookswitch, else ~/.config/hookswitch;
  // no file at all: the embedded defaults (nothing is created).
  const configPath = resolveConfigPath(process.env, values.config);
  try {
    config = loadStoredConfig(configPath, { mustExist: values.config !== undefined }).config;
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
  const systemd = SystemdNotifier.fromEnv(process.env, { logger: logger.child('systemd'), clock });
  // The notify socket is ours: arecord, aplay and gpiomon must not inherit it.
  for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete process.env[k];
  // From the first moment: systemd's watchdog runs from the start of the service.
  systemd.startWatchdog();
  let statusTimer: TimerHandle | undefined;
  let ready = false;
  const simulator = values.sim ? new SimulatorBackend({ clock }) : undefined;
  // Loaded here, not at the top: the other commands start twice as fast without the gateway's modules.
  const { Gateway } = await import('../app/gateway.ts');
  const gateway = new Gateway(config, {
    clock,
    random: new SystemRandom(),
    logger,
    ...(simulator ? { simulator } : {}),
    // Always: a file `config set` creates later is reloaded too.
    configPath,
    loadConfig: (path: string) => loadStoredConfig(path).config,
    // A reloaded file gets the same command-line settings as the one read at start.
    overrides: (next) => {
      if (values.bind !== undefined) next.sip.bind = config.sip.bind;
      if (values['sip-port'] !== undefined) next.sip.port = config.sip.port;
      next.stateDir = values['state-dir'] ?? (next.stateDir || defaultStateDir());
    },
  });
  // Signals are handled from the first moment: a SIGTERM while starting stops once started.
  let stopping = false;
  let started: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    systemd.stopping(`stopping (${signal})`);
    statusTimer?.cancel();
    (started ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => gateway.stop())
      .then(() => systemd.close())
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
  // Node's default for SIGHUP ends the process; here it reloads the configuration.
  process.on('SIGHUP', () => {
    if (stopping || !ready) {
      logger.warn('SIGHUP ignored', { reason: stopping ? 'stopping' : 'starting' });
      return;
    }
    systemd.reloading('reloading configuration');
    gateway.reload().then(
      (reply) => systemd.ready(reply.ok ? serviceStatus(gateway) : `reload failed: ${reply.error}; ${serviceStatus(gateway)}`),
      (e: unknown) => systemd.ready(`reload failed: ${(e as Error).message}; ${serviceStatus(gateway)}`),
    );
  });
  started = gateway.start();
  try {
    await started;
  } catch (e) {
    await gateway.stop().catch(() => undefined);
    await systemd.close();
    fail((e as Error).message);
  }
  ready = true;
  let last = serviceStatus(gateway);
  systemd.ready(last);
  if (systemd.enabled) {
    const refresh = () => {
      const now = serviceStatus(gateway);
      if (now !== last) systemd.status((last = now));
      statusTimer = clock.setTimer(STATUS_REFRESH_MS, refresh);
    };
    statusTimer = clock.setTimer(STATUS_REFRESH_MS, refresh);
  }
  if (simulator) {
    const rotary = config.board === '' || boardHasDial(config.board);
    const console_ = attachSimConsole(simulator, { rotary, quit: () => stop('sim quit') });
    process.once('exit', () => console_.stop());
  }
}

/** How often the systemd STATUS= line is brought up to date. */
const STATUS_REFRESH_MS = 5000;

/** The STATUS= line for `systemctl status`, e.g. "3 phones registered, 1/1 trunks registered, 1 call". */
function serviceStatus(gateway: Gateway): string {
  const regs = gateway.registrationStatus();
  const up = regs.filter((r) => r.state === 'registered').length;
  const calls = gateway.callStatus().length;
  const phones = gateway.registeredExtensions();
  return `${phones} ${phones === 1 ? 'phone' : 'phones'} registered, ${regs.length ? `${up}/${regs.length} trunks registered` : 'no trunks'}, ${calls} ${calls === 1 ? 'call' : 'calls'}`;
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
  if (wantsHelp(argv)) {
    process.stdout.write(COMMAND_USAGE.board!);
    return;
  }
  if (argv[0] !== 'list' || argv.length !== 1) fail('usage: hookswitch board list');
  for (const b of new BoardRegistry().list()) {
    process.stdout.write(`${b.name.padEnd(20)} ${b.mode.padEnd(9)} ${b.connection.padEnd(7)} ringer ${b.ringer.padEnd(7)} ${b.description}\n`);
  }
}

/** Sends one command to the running daemon over its control socket and prints the reply. */
async function control(command: string, argv: string[]): Promise<void> {
  if (wantsHelp(argv)) {
    process.stdout.write(COMMAND_USAGE[command] ?? USAGE);
    return;
  }
  let parsed: { values: { socket?: string; 'state-dir'?: string; json?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { socket: { type: 'string' }, 'state-dir': { type: 'string' }, json: { type: 'boolean' } },
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
  const socket = clientSocket({ ...(values.socket ? { socket: values.socket } : {}), ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}) });
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
  if (values.json) {
    process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
    return;
  }
  if (command === 'peers') {
    process.stdout.write(formatPeers(reply));
    return;
  }
  if (command === 'status' && typeof reply.report === 'object' && reply.report !== null) {
    // NO_COLOR (no-color.org): any non-empty value turns colours off.
    process.stdout.write(formatStatus(reply.report as StatusReport, { color: process.stdout.isTTY === true && !process.env.NO_COLOR }));
    process.stdout.write(formatMessages((reply.messages ?? []) as ReceivedMessage[]));
    return;
  }
  const { ok: _ok, ...fields } = reply;
  for (const [k, v] of Object.entries(fields)) process.stdout.write(`${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}\n`);
}

/** The device's inbox for `status`: newest last, one line each (the text on one line, cut at 80). */
function formatMessages(messages: readonly ReceivedMessage[]): string {
  if (messages.length === 0) return '';
  const lines = ['', `Messages for the device (${messages.length})`];
  for (const m of messages) {
    const when = new Date(m.at).toISOString().replace('T', ' ').slice(0, 19);
    const text = m.text === undefined ? `(${m.contentType}, ${m.bytes} bytes)` : JSON.stringify(m.text.length > 80 ? `${m.text.slice(0, 79)}…` : m.text);
    lines.push(`  ${when}  ${m.display ? `${m.display} <${m.from}>` : m.from}: ${text}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `hookswitch peers` as a table: name, address, kind, extensions. */
function formatPeers(reply: { [k: string]: unknown }): string {
  const discovery = reply.discovery as { enabled?: boolean; name?: string; error?: string } | undefined;
  const peers = (reply.peers ?? []) as { name: string; addresses: string[]; port: number; isHookswitch: boolean; extensions: string[]; contact?: string }[];
  const lines: string[] = [];
  if (!discovery?.enabled) lines.push('discovery is off (config discovery.enabled, or SIP bound to loopback)');
  else lines.push(`advertised as "${discovery.name ?? ''}"${discovery.error ? ` (error: ${discovery.error})` : ''}`);
  if (peers.length === 0) lines.push('no peers seen');
  for (const p of peers) {
    const where = `${p.addresses[0] ?? '?'}:${p.port}`;
    lines.push(`${p.name.padEnd(32)} ${where.padEnd(22)} ${p.isHookswitch ? `hookswitch ${p.extensions.join(',')}` : (p.contact ?? 'sip')}`);
  }
  return `${lines.join('\n')}\n`;
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
      process.stdout.write(wantsHelp(rest) ? COMMAND_USAGE.version! : `hookswitch ${pkg.version}\n`);
      return;
    case 'run':
      await run(rest);
      return;
    case 'call':
    case 'answer':
    case 'hangup':
    case 'dtmf':
    case 'status':
    case 'peers':
    case 'reload':
      await control(command, rest);
      return;
    case 'doctor':
      process.exitCode = await doctorCommand(rest);
      return;
    case 'config': {
      // Loaded only here: conf's writer hooks every signal when it is imported (see config-file.ts).
      const { configCommand } = await import('./config-command.ts');
      process.exitCode = await configCommand(rest);
      return;
    }
    case 'audio-test':
      await audioTest(rest);
      return;
    case 'trace':
      await traceCommand(rest);
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
