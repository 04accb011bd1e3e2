/**
 * `hookswitch trace`: attaches to the running daemon's control socket with a `trace` request and
 * prints every SIP message the gateway sends or receives, live; with `--pcap FILE` also writes
 * them as a pcap file (each record written with its own write, so the file opens in tshark or
 * Wireshark while it grows). Ends on SIGINT/SIGTERM (exit 0) or when the daemon goes away.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { createConnection } from 'node:net';
import { clientSocket } from './control-socket.ts';
import { parseArgs } from 'node:util';
import { parseTraceLine } from '../control/control-protocol.ts';
import { PcapWriter } from '../trace/pcap-writer.ts';
import { formatSipTrace, redactDigestResponses } from '../trace/sip-trace.ts';

/** The help of `hookswitch trace`. */
export const TRACE_USAGE = `Usage: hookswitch trace [--pcap FILE] [--summary | --quiet] [--utc] [--socket PATH | --state-dir DIR]
  Prints every SIP message the running gateway sends and receives, until Ctrl-C.
  --pcap FILE       Also write the messages to FILE as a pcap (tshark, Wireshark, sngrep).
                    TCP and TLS appear as TCP flows (TLS as its decrypted SIP). Digest
                    responses are blanked with x in every output.
  --summary         One line per message instead of the whole message.
  --quiet           Print nothing per message (with --pcap).
  --utc             Show times in UTC instead of local time.
  --socket PATH     The daemon's control socket (default: STATE_DIR/control.sock)
  --state-dir DIR   The daemon's state directory (where its control socket is)
`;

/** A trace line longer than this (a corrupt stream) ends the trace. */
const MAX_LINE = 16 << 20;

/** Runs `hookswitch trace ARGV`. Exits the process. */
export async function traceCommand(argv: string[]): Promise<void> {
  let values: { pcap?: string; summary?: boolean; quiet?: boolean; utc?: boolean; socket?: string; 'state-dir'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        pcap: { type: 'string' },
        summary: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        utc: { type: 'boolean' },
        socket: { type: 'string' },
        'state-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    usageError(`${(e as Error).message} (see hookswitch trace --help)`);
  }
  if (values.help) {
    process.stdout.write(TRACE_USAGE);
    return;
  }
  if (values.summary && values.quiet) usageError('--summary and --quiet exclude each other');
  const socketPath = clientSocket({ ...(values.socket ? { socket: values.socket } : {}), ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}) });

  const pcap = values.pcap !== undefined ? openPcap(values.pcap) : undefined;
  const mode = values.quiet ? undefined : values.summary ? 'summary' : 'full';
  const utc = values.utc ?? false;
  let messages = 0;
  let dropped = 0;
  let ended = false;

  const socket = createConnection(socketPath);
  const finish = (code: number, why?: string): void => {
    if (ended) return;
    ended = true;
    socket.destroy();
    if (pcap) closeSync(pcap.fd);
    if (why) process.stderr.write(`hookswitch: ${why}\n`);
    const where = values.pcap !== undefined ? `, written to ${values.pcap}` : '';
    process.stderr.write(`hookswitch: trace stopped: ${messages} messages${where}; ${dropped} dropped by the daemon\n`);
    process.exit(code);
  };
  process.on('SIGINT', () => finish(0));
  process.on('SIGTERM', () => finish(0));
  process.stdout.on('error', () => finish(0));

  let attached = false;
  let pending = '';
  socket.setEncoding('utf8');
  socket.once('connect', () => socket.write(`${JSON.stringify({ cmd: 'trace' })}\n`));
  socket.on('data', (chunk: string) => {
    pending += chunk;
    if (pending.length > MAX_LINE) return finish(1, 'the daemon sent an over-long trace line');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0 && !ended) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!attached) {
        attached = true;
        const reply = safeJson(line) as { ok?: unknown; error?: unknown } | undefined;
        if (reply?.ok !== true) return finish(1, typeof reply?.error === 'string' ? reply.error : 'the daemon refused the trace');
        const also = pcap ? `, writing ${values.pcap}` : '';
        process.stderr.write(`hookswitch: tracing SIP on ${socketPath}${also} (Ctrl-C to stop)\n`);
        continue;
      }
      const parsed = parseTraceLine(line);
      if (typeof parsed === 'string') {
        process.stderr.write(`hookswitch: ignoring a trace line: ${parsed}\n`);
        continue;
      }
      if (parsed.type === 'dropped') {
        dropped += parsed.count;
        process.stderr.write(`hookswitch: the daemon dropped ${parsed.count} messages (this terminal reads too slowly)\n`);
        continue;
      }
      const event = { ...parsed.event, bytes: redactDigestResponses(parsed.event.bytes) };
      messages++;
      if (pcap) writeSync(pcap.fd, pcap.writer.event(event));
      if (mode && !process.stdout.write(formatSipTrace(event, { mode, utc }))) {
        // Let the daemon's per-client limit drop messages rather than buffer them here.
        socket.pause();
        process.stdout.once('drain', () => socket.resume());
      }
    }
  });
  socket.once('error', (err: NodeJS.ErrnoException) =>
    finish(1, err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? `hookswitch is not running (no daemon on ${socketPath})` : err.message),
  );
  socket.once('close', () => finish(attached ? 0 : 1, 'the daemon closed the trace'));
}

function openPcap(path: string): { fd: number; writer: PcapWriter } {
  let fd: number;
  try {
    fd = openSync(path, 'w', 0o600);
  } catch (e) {
    usageError(`cannot write ${path}: ${(e as Error).message}`);
  }
  const writer = new PcapWriter();
  writeSync(fd, writer.header());
  return { fd, writer };
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function usageError(message: string): never {
  process.stderr.write(`hookswitch: ${message}\n`);
  process.exit(2);
}
