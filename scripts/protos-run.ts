/**
 * PROTOS c07-sip robustness run (OUSPG): sends all 4527 test INVITEs (each followed by its
 * teardown CANCEL) to a running hookswitch and checks that it survives them: the process stays
 * up, an OPTIONS sent after every 100 cases is answered 200 within 2 s, and its resident memory
 * grows by less than 20 MB.
 *
 *   npm run protos                       # starts a gateway on a free loopback port
 *   npm run protos -- --target 127.0.0.1:5060 --pid 1234   # an already running one
 *
 * The cases (GPLv2 test data) are read from the archive in ../shared/sip-torture/protos-c07-sip
 * and unpacked into a temporary directory; they are never copied into this repository.
 * Cases too large for one UDP datagram (> 65507 bytes) are sent over TCP instead.
 *
 * We act as a plain UAC (RFC 3261 §17.1.1.3): a non-2xx final response to an INVITE is ACKed,
 * a 2xx is ACKed and ended with BYE, so the gateway's transactions can finish normally.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { REPO_ROOT, probeOptions, residentKb, startGateway } from '../test/helpers/gateway-process.ts';

export const PROTOS_DIR = join(REPO_ROOT, '..', 'shared', 'sip-torture', 'protos-c07-sip');
export const PROTOS_ARCHIVE = join(PROTOS_DIR, 'c07-sip-cases.tar.gz');
/** Largest UDP payload over IPv4: 65535 - 8 (UDP header) - 20 (IP header). */
const MAX_UDP_PAYLOAD = 65_507;
const RSS_LIMIT_KB = 20 * 1024;

/** One case as stored: the test INVITE template and the teardown request template. */
export interface ProtosCase {
  index: number;
  invite: Buffer;
  teardown: Buffer;
}

/** Splits `<N> SP <N bytes><M> SP <M bytes>` (the format described in the suite's README). */
export function parseCaseFile(index: number, data: Buffer): ProtosCase {
  let pos = 0;
  const next = (what: string): Buffer => {
    const sp = data.indexOf(0x20, pos);
    const digits = data.toString('latin1', pos, sp);
    if (sp < 0 || !/^\d{1,7}$/.test(digits)) throw new Error(`case ${index}: bad ${what} length prefix at byte ${pos}`);
    const n = Number(digits);
    const start = sp + 1;
    if (start + n > data.length) throw new Error(`case ${index}: ${what} of ${n} bytes runs past the end of the file`);
    pos = start + n;
    return data.subarray(start, start + n);
  };
  const invite = next('invite');
  const teardown = next('teardown');
  if (pos !== data.length) throw new Error(`case ${index}: ${data.length - pos} bytes after the teardown template`);
  return { index, invite, teardown };
}

/** The values substituted for a case's placeholders. */
export interface CaseValues {
  to: string;
  from: string;
  fromAddress: string;
  fromIp: string;
  localPort: number;
  callId: string;
  cseq: number;
  branchId: string;
  teardownMethod: string;
}

/**
 * Fills a template's placeholders on its bytes (latin1, so fuzzed octets pass unchanged).
 * `<Content-Length>` becomes the length of what follows the first empty line, as a receiver
 * framing the datagram would count it.
 */
export function fillTemplate(template: Buffer, v: CaseValues): Buffer {
  const text = template
    .toString('latin1')
    .replaceAll('<Teardown-Method>', v.teardownMethod)
    .replaceAll('<From-Address>', v.fromAddress)
    .replaceAll('<From-IP>', v.fromIp)
    .replaceAll('<From>', v.from)
    .replaceAll('<To>', v.to)
    .replaceAll('<Local-Port>', String(v.localPort))
    .replaceAll('<Call-ID>', v.callId)
    .replaceAll('<CSeq>', String(v.cseq))
    .replaceAll('<Branch-ID>', v.branchId);
  const headEnd = text.indexOf('\r\n\r\n');
  const bodyLength = headEnd < 0 ? 0 : Buffer.byteLength(text, 'latin1') - (headEnd + 4);
  return Buffer.from(text.replaceAll('<Content-Length>', String(bodyLength)), 'latin1');
}

export interface ProtosOptions {
  host: string;
  port: number;
  /** Gateway process id, for the liveness and memory checks; without it they are not made. */
  pid?: number;
  /** Address we send from (and put in Via/From); default 127.0.0.1. */
  localHost?: string;
  /** Directory holding `cases/0000000...`; default: unpack the archive to a temporary directory. */
  casesDir?: string;
  /** First and last case index to send (inclusive); default all. */
  first?: number;
  last?: number;
  /** Cases sent back-to-back before a pause of `gapMs`; defaults 5 and 2. */
  burst?: number;
  gapMs?: number;
  /** Stop sending after this many milliseconds (the summary says how many were sent); default 120000. */
  budgetMs?: number;
  /** True while the process under test is running (default: /proc/PID exists). */
  isAlive?: () => boolean;
  log?: (line: string) => void;
}

export interface ProtosResult {
  total: number;
  sentUdp: number;
  sentTcp: number;
  probes: number;
  probesAnswered: number;
  probeMaxMs: number;
  /** Final responses we received, keyed `METHOD STATUS` from their CSeq (e.g. `INVITE 400`). */
  responses: Record<string, number>;
  alive: boolean | null;
  rssBeforeKb: number | null;
  rssAfterKb: number | null;
  durationMs: number;
  pass: boolean;
  failures: string[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Unpacks the archive into a new temporary directory (tar with an argv array, no shell). */
export async function extractCases(archive = PROTOS_ARCHIVE): Promise<{ dir: string; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'hookswitch-protos-'));
  await promisify(execFile)('tar', ['-xzf', archive, '-C', dir], { timeout: 60_000 });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Builds the ACK (and, after a 2xx, a BYE) that a UAC owes for an INVITE's final response. */
function ackFor(response: string, requestUri: string, status: number): Buffer[] {
  const headers = response.split('\r\n\r\n')[0]!.split('\r\n');
  const first = (name: string, compact: string) =>
    headers.find((h) => new RegExp(`^(?:${name}|${compact})[ \\t]*:`, 'i').test(h));
  const via = first('Via', 'v');
  const from = first('From', 'f');
  const to = first('To', 't');
  const callId = first('Call-ID', 'i');
  const cseq = first('CSeq', 'CSeq');
  const cseqNum = cseq ? /:\s*(\d+)/.exec(cseq)?.[1] : undefined;
  if (!via || !from || !to || !callId || !cseqNum) return [];
  const make = (method: string, viaLine: string, num: string) =>
    Buffer.from([`${method} ${requestUri} SIP/2.0`, viaLine, 'Max-Forwards: 70', from, to, callId, `CSeq: ${num} ${method}`, 'Content-Length: 0', '', ''].join('\r\n'), 'latin1');
  if (status >= 300) return [make('ACK', via, cseqNum)]; // §17.1.1.3: same branch as the INVITE
  // §13.2.2.4: the ACK for a 2xx is its own transaction (new branch); then hang up.
  const fresh = (tag: string) => via.replace(/branch=[^;,\s]*/i, `branch=z9hG4bK-protos-${tag}-${randomBytes(6).toString('hex')}`);
  return [make('ACK', fresh('ack'), cseqNum), make('BYE', fresh('bye'), String(Number(cseqNum) + 1))];
}

/** True while /proc/PID exists and is not a zombie. */
function procAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Sends one oversized case over its own TCP connection and waits briefly for the gateway to react. */
async function sendTcp(host: string, port: number, bytes: Buffer[]): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const sock = connect({ host, port });
    let written = false;
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(written);
    };
    const timer = setTimeout(done, 2_000);
    sock.on('error', done);
    sock.on('close', done);
    sock.on('data', () => undefined);
    sock.on('connect', () => {
      for (const b of bytes) sock.write(b);
      written = true;
      sock.end();
    });
  });
}

/** Runs the suite against a gateway at host:port. Never throws for a gateway failure: see `pass`. */
export async function runProtos(opts: ProtosOptions): Promise<ProtosResult> {
  const log = opts.log ?? (() => undefined);
  const localHost = opts.localHost ?? '127.0.0.1';
  const burst = opts.burst ?? 5;
  const gapMs = opts.gapMs ?? 2;
  const budgetMs = opts.budgetMs ?? 120_000;
  const isAlive = opts.isAlive ?? (opts.pid !== undefined ? () => procAlive(opts.pid!) : () => true);
  const failures: string[] = [];
  const started = performance.now();

  const extracted = opts.casesDir ? null : await extractCases();
  const casesDir = join(opts.casesDir ?? extracted!.dir, 'cases');
  const sock = createSocket('udp4');
  try {
    const names = readdirSync(casesDir).filter((n) => /^\d{7}$/.test(n)).sort();
    const first = opts.first ?? 0;
    const last = Math.min(opts.last ?? names.length - 1, names.length - 1);
    const selected = names.filter((n) => Number(n) >= first && Number(n) <= last);
    log(`PROTOS c07-sip: sending cases ${first}-${last} (${selected.length}) to ${opts.host}:${opts.port}`);

    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, localHost, () => resolve());
    });
    const localPort = sock.address().port;
    const hostPort = `${opts.host}:${opts.port}`;
    const requestUri = `sip:protos@${hostPort}`;
    const responses: Record<string, number> = {};
    sock.on('message', (msg) => {
      const text = msg.toString('latin1');
      const status = /^SIP\/2\.0 (\d{3}) /.exec(text);
      if (!status) return;
      const code = Number(status[1]);
      if (code < 200) return;
      const cseqMethod = /^CSeq[ \t]*:[ \t]*\d+[ \t]+(\S+)/im.exec(text)?.[1] ?? '';
      // A fuzzed CSeq method comes back echoed; group those rather than list each one.
      const method = ['INVITE', 'CANCEL', 'ACK', 'BYE'].includes(cseqMethod) ? cseqMethod : 'other';
      responses[`${method} ${code}`] = (responses[`${method} ${code}`] ?? 0) + 1;
      if (method === 'INVITE') for (const b of ackFor(text, requestUri, code)) sock.send(b, opts.port, opts.host);
    });
    const sendUdp = (b: Buffer) =>
      new Promise<void>((resolve, reject) => sock.send(b, opts.port, opts.host, (err) => (err ? reject(err) : resolve())));

    let probes = 0;
    let probesAnswered = 0;
    let probeMaxMs = 0;
    const probe = async (label: string): Promise<boolean> => {
      probes++;
      const reply = await probeOptions(opts.host, opts.port, 2_000);
      if (reply?.status === 200) {
        probesAnswered++;
        probeMaxMs = Math.max(probeMaxMs, reply.ms);
        return true;
      }
      failures.push(`OPTIONS ${label}: ${reply ? `answered ${reply.status}` : 'no answer within 2 s'}`);
      return false;
    };

    await probe('before the first case');
    const rssBeforeKb = opts.pid !== undefined ? await residentKb(opts.pid) : null;

    const run = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
    let sentUdp = 0;
    let sentTcp = 0;
    let sinceProbe = 0;
    let inBurst = 0;
    for (const name of selected) {
      if (performance.now() - started > budgetMs) {
        failures.push(`time budget of ${budgetMs} ms ran out after ${sentUdp + sentTcp} cases`);
        break;
      }
      const index = Number(name);
      const c = parseCaseFile(index, readFileSync(join(casesDir, name)));
      const values: CaseValues = {
        to: `protos@${hostPort}`,
        from: `protos-uac@${localHost}`,
        fromAddress: localHost,
        fromIp: localHost,
        localPort,
        callId: `p${index}-${run}`,
        cseq: index + 1,
        branchId: `${index}x${run}`,
        teardownMethod: 'CANCEL',
      };
      const invite = fillTemplate(c.invite, values);
      const teardown = fillTemplate(c.teardown, values);
      if (invite.length > MAX_UDP_PAYLOAD || teardown.length > MAX_UDP_PAYLOAD) {
        if (await sendTcp(opts.host, opts.port, [invite, teardown])) sentTcp++;
        else failures.push(`case ${index}: TCP connection to ${hostPort} failed`);
      } else {
        try {
          await sendUdp(invite);
          await sendUdp(teardown);
          sentUdp++;
        } catch (e) {
          failures.push(`case ${index}: UDP send failed: ${(e as Error).message}`);
        }
      }
      if (++inBurst >= burst) {
        inBurst = 0;
        await sleep(gapMs);
      }
      if (++sinceProbe >= 100) {
        sinceProbe = 0;
        await probe(`after case ${index}`);
        if (!isAlive()) {
          failures.push(`the gateway died by case ${index}`);
          break;
        }
      }
    }
    if (sinceProbe > 0 || selected.length === 0) await probe('after the last case');
    // Let final responses and our ACKs drain before measuring memory.
    await sleep(500);
    const alive = opts.pid !== undefined || opts.isAlive ? isAlive() : null;
    if (alive === false) failures.push('the gateway is not running after the run');
    const rssAfterKb = opts.pid !== undefined && alive ? await residentKb(opts.pid) : null;
    if (rssBeforeKb !== null && rssAfterKb !== null && rssAfterKb - rssBeforeKb >= RSS_LIMIT_KB) {
      failures.push(`resident memory grew by ${((rssAfterKb - rssBeforeKb) / 1024).toFixed(1)} MB (limit 20 MB)`);
    }
    const total = selected.length;
    if (sentUdp + sentTcp !== total) failures.push(`sent ${sentUdp + sentTcp} of ${total} cases`);
    return {
      total,
      sentUdp,
      sentTcp,
      probes,
      probesAnswered,
      probeMaxMs,
      responses,
      alive,
      rssBeforeKb,
      rssAfterKb,
      durationMs: performance.now() - started,
      pass: failures.length === 0,
      failures,
    };
  } finally {
    sock.close();
    extracted?.cleanup();
  }
}

/** The human summary of a run, one fact per line. */
export function formatSummary(r: ProtosResult): string {
  const mb = (kb: number | null) => (kb === null ? 'n/a' : `${(kb / 1024).toFixed(1)} MB`);
  const responses = Object.entries(r.responses)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} x${n}`)
    .join(', ');
  const growth = r.rssBeforeKb !== null && r.rssAfterKb !== null ? `${((r.rssAfterKb - r.rssBeforeKb) / 1024).toFixed(1)} MB` : 'not measured';
  return [
    `cases:     ${r.sentUdp + r.sentTcp}/${r.total} sent (${r.sentUdp} over UDP, ${r.sentTcp} over TCP: larger than one UDP datagram) in ${(r.durationMs / 1000).toFixed(1)} s`,
    `responses: ${responses || 'none'}`,
    `OPTIONS:   ${r.probesAnswered}/${r.probes} answered 200 within 2 s (slowest ${r.probeMaxMs.toFixed(0)} ms)`,
    `gateway:   ${r.alive === null ? 'liveness not checked (no --pid)' : r.alive ? 'alive' : 'DEAD'}; RSS ${mb(r.rssBeforeKb)} -> ${mb(r.rssAfterKb)} (growth ${growth}, limit 20 MB)`,
    ...r.failures.map((f) => `FAILED:    ${f}`),
    r.pass ? 'PROTOS c07-sip: PASS' : 'PROTOS c07-sip: FAIL',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      pid: { type: 'string' },
      'local-host': { type: 'string' },
      cases: { type: 'string' },
      first: { type: 'string' },
      last: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.cases && !existsSync(PROTOS_ARCHIVE)) {
    console.error(`protos: ${PROTOS_ARCHIVE} not found (the PROTOS c07-sip cases live outside the repository)`);
    process.exit(2);
  }
  const common = {
    localHost: values['local-host'],
    casesDir: values.cases,
    first: values.first !== undefined ? Number(values.first) : undefined,
    last: values.last !== undefined ? Number(values.last) : undefined,
    log: (line: string) => console.log(line),
  };
  let result: ProtosResult;
  if (values.target) {
    const m = /^(.+):(\d+)$/.exec(values.target);
    if (!m) {
      console.error('protos: --target must be HOST:PORT');
      process.exit(2);
    }
    result = await runProtos({ ...common, host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), pid: values.pid ? Number(values.pid) : undefined });
  } else {
    const gw = await startGateway();
    console.log(`started hookswitch pid ${gw.pid} on ${gw.host}:${gw.port}`);
    try {
      result = await runProtos({ ...common, host: gw.host, port: gw.port, pid: gw.pid, isAlive: gw.alive });
    } finally {
      const status = await gw.stop();
      if (status.code !== 0) console.log(`hookswitch exited with ${JSON.stringify(status)} on SIGTERM; log tail:\n${gw.log().slice(-2_000)}`);
    }
  }
  console.log(formatSummary(result));
  if (values.json) console.log(JSON.stringify(result));
  process.exitCode = result.pass ? 0 : 1;
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  await main();
}
