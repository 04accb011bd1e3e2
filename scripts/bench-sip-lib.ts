/**
 * Pieces of the SIP load benchmark (scripts/bench-sip.ts) that do not depend on its run: SIPp
 * steps and how they are judged, rising-rate ramps run side by side for two servers, CPU time
 * of a process from /proc, a mu-law tone for SIPp's rtp_stream, and the hookswitch config.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { freePort, parseSippStats, type SippStats } from '../test/helpers/gateway-process.ts';
import { spawnSipp, type SippProcess } from '../test/helpers/sipp.ts';

/** One SIPp run at one rate, as judged. */
export interface StepResult {
  rate: number;
  stats: SippStats | null;
  /** Completed registrations or calls per second over the step. */
  achieved: number;
  clean: boolean;
  note: string;
  /** The first lines of SIPp's error log when the step was not clean (why it failed). */
  why: string;
}

/** Runs SIPp processes with a shared deadline and kills them all on cleanup. */
export class SippRunner {
  private readonly running = new Set<SippProcess>();

  constructor(
    private readonly sipp: string,
    private readonly remaining: () => number,
  ) {}

  /** Starts a long-running SIPp (a UAS); killed by {@link killAll}. */
  background(args: string[], timeoutMs: number): SippProcess {
    const proc = spawnSipp(this.sipp, args, timeoutMs);
    this.running.add(proc);
    void proc.result.finally(() => this.running.delete(proc));
    return proc;
  }

  /**
   * Runs `calls` SIPp calls at `rate` and returns the statistics, bounded by the time left.
   * `localPort` pins SIPp's port (its Contact), otherwise a free one is taken.
   */
  async run(args: string[], calls: number, rate: number, localPort?: number, extraMs = 10_000): Promise<{ stats: SippStats | null; timedOut: boolean; output: string }> {
    const timeoutMs = Math.min(this.remaining(), Math.ceil((calls / rate) * 1000) + extraMs);
    if (timeoutMs < 5_000) return { stats: null, timedOut: true, output: 'no time left' };
    const port = localPort ?? (await freePort());
    const proc = spawnSipp(this.sipp, [...args, '-i', '127.0.0.1', '-p', String(port), '-m', String(calls), '-r', String(rate), '-t', 'u1', '-max_socket', '100'], timeoutMs, { stat: true });
    this.running.add(proc);
    const r = await proc.result;
    this.running.delete(proc);
    return { stats: parseSippStats(r.stat), timedOut: r.timedOut, output: r.output };
  }

  killAll(): void {
    for (const p of this.running) p.kill();
  }
}

/**
 * A step is clean when every call completed and none failed; with `noRetransmissions` (the
 * registration benchmark) also when SIPp never had to retransmit, i.e. every answer came
 * within 500 ms.
 */
export function judge(rate: number, calls: number, run: { stats: SippStats | null; timedOut: boolean; output: string }, noRetransmissions: boolean): StepResult {
  const s = run.stats;
  const achieved = s && s.elapsedSeconds > 0 ? s.successful / s.elapsedSeconds : 0;
  const problems: string[] = [];
  if (run.timedOut) problems.push('timed out');
  if (!s) problems.push('no statistics');
  else {
    if (s.successful !== calls) problems.push(`${calls - s.successful} not completed`);
    if (s.failed > 0) problems.push(`${s.failed} failed (${Object.entries(s.failureKinds).map(([k, n]) => `${k.replace(/^Failed|\(C\)$/g, '')} ${n}`).join(', ')})`);
    if (s.retransmissions > 0) problems.push(`${s.retransmissions} retransmissions`);
  }
  const clean = !run.timedOut && s !== null && s.successful === calls && s.failed === 0 && (!noRetransmissions || s.retransmissions === 0);
  const errorLog = run.output.split('--- sipp error log ---')[1] ?? '';
  const why = clean ? '' : errorLog.split('\n').filter((l) => /Aborting|timeout|unexpected/i.test(l)).slice(0, 2).map((l) => l.slice(0, 200)).join(' | ');
  return { rate, stats: s, achieved, clean, note: problems.join(', ') || 'clean', why };
}

/** The best clean step's achieved rate (0 when none was clean). */
export function best(results: StepResult[]): number {
  return Math.max(0, ...results.filter((r) => r.clean).map((r) => r.achieved));
}

/** A server in a ramp: its label and how to run one step at a rate. */
export interface RampEntry {
  label: string;
  step(rate: number): Promise<StepResult>;
}

/**
 * Runs the servers side by side through `rates` (at each rate one server, then the other, so
 * slow drifts of the shared machine's load hit both alike), each until its first unclean step.
 * An unclean step is run once more before it counts: other work on the machine can stall a
 * step now and then. Returns every server's steps.
 */
export async function rampTogether(entries: RampEntry[], rates: number[], remaining: () => number, out: (line: string) => void): Promise<Map<string, StepResult[]>> {
  const results = new Map<string, StepResult[]>(entries.map((e) => [e.label, []]));
  const stopped = new Set<string>();
  for (const rate of rates) {
    for (const e of entries) {
      if (stopped.has(e.label)) continue;
      if (remaining() < 15_000) {
        stopped.add(e.label);
        out(`    ${e.label}: out of time budget`);
        continue;
      }
      let r = await e.step(rate);
      let retried = false;
      if (!r.clean && remaining() > 15_000) {
        retried = true;
        r = await e.step(rate);
      }
      results.get(e.label)!.push(r);
      const status = r.clean ? `clean${retried ? ' (on the second try)' : ''}` : `STOP: ${r.note}${r.why ? ` [${r.why}]` : ''}`;
      out(`    ${e.label.padEnd(12)} ${String(rate).padStart(5)}/s offered: ${r.achieved.toFixed(0).padStart(5)}/s done, ${status}`);
      if (!r.clean) stopped.add(e.label);
    }
    if (stopped.size === entries.length) break;
  }
  return results;
}

/** utime + stime of a process in seconds (Linux /proc/PID/stat fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** Clock ticks per second of /proc times (sysconf(_SC_CLK_TCK)): 100 on every Linux architecture Node runs on. */
const USER_HZ = 100;

/**
 * A mu-law (G.711, WAVE_FORMAT_MULAW) WAV of a tone, for SIPp's `<exec rtp_stream>` with
 * payload type 0: the encoder follows ITU-T G.711 (bias 0x84, segment and 4-bit mantissa,
 * all bits inverted).
 */
export function writeMulawWav(path: string, frequency: number, seconds: number): void {
  const n = Math.round(8000 * seconds);
  const samples = Buffer.alloc(n);
  for (let i = 0; i < n; i++) samples[i] = mulaw(Math.round(6000 * Math.sin((2 * Math.PI * frequency * i) / 8000)));
  const h = Buffer.alloc(46);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(38 + n, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(18, 16); // fmt chunk size (with cbSize)
  h.writeUInt16LE(7, 20); // WAVE_FORMAT_MULAW
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(8000, 24); // sample rate
  h.writeUInt32LE(8000, 28); // bytes per second
  h.writeUInt16LE(1, 32); // block align
  h.writeUInt16LE(8, 34); // bits per sample
  h.writeUInt16LE(0, 36); // cbSize
  h.write('data', 38, 'latin1');
  h.writeUInt32LE(n, 42);
  writeFileSync(path, Buffer.concat([h, samples]));
}

function mulaw(pcm: number): number {
  const sign = pcm < 0 ? 0x80 : 0;
  const magnitude = Math.min(Math.abs(pcm), 32635) + 0x84;
  let segment = 7;
  while (segment > 0 && (magnitude & (0x4000 >> (7 - segment))) === 0) segment--;
  const mantissa = (magnitude >> (segment + 3)) & 0x0f;
  return ~(sign | (segment << 4) | mantissa) & 0xff;
}

/** The hookswitch config of the benchmark: the users, digest MD5 first (SIPp 3.6.1 knows only MD5), and `7000` dialled to a trunk that is the SIPp UAS. */
export function hookswitchConfig(users: [string, string][], uasPort: number): object {
  return {
    sip: { domain: 'bench.test', authAlgorithms: ['MD5', 'SHA-256'] },
    extensions: Object.fromEntries(users.map(([u, p]) => [u, { password: p }])),
    security: { maxAuthFailures: 1000 },
    // A wide range: each call takes two RTP/RTCP pairs until its BYE.
    media: { rtpPorts: [20000, 39999], bind: '127.0.0.1' },
    dialplan: [{ match: '7000', to: 'trunk:uas' }],
    trunks: [{ name: 'uas', host: '127.0.0.1', port: uasPort, username: 'bench', password: 'unused-by-the-uas', register: false, keepAliveSeconds: 0 }],
  };
}
