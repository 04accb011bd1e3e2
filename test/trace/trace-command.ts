/**
 * `hookswitch trace` against the real gateway process: SIPp sends OPTIONS over UDP and TCP, a
 * REGISTER with Digest credentials and a whole authenticated call to the echo test; the live
 * terminal log shows the request lines, the pcap opens in tshark with every request and response
 * decoded in order (the call as one dialog under one Call-ID, counted by tshark's SIP statistics),
 * while it grows and after Ctrl-C, and no Digest response value appears in either output.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT, findExecutable, freePort, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { PcapWriter } from '../../src/trace/pcap-writer.ts';
import { until } from '../helpers/wait.ts';

const missing = ['sipp', 'tshark'].filter((n) => !findExecutable(n));
if (missing.length > 0) throw new Error(`${missing.join(', ')} not installed: run scripts/ci-deps.sh (apt-get install sip-tester tshark)`);
const sipp = findExecutable('sipp')!;
const SIPP_DIR = join(REPO_ROOT, 'test', 'sipp');
const CLI = ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts')];
const PASSWORD = 'trace-101-secret';
/** The echo test in the default dial plan (src/config). */
const ECHO = '*43';
/**
 * The call as the gateway answers it: the INVITE challenged with 407 at once and ACKed (RFC 3261
 * §22.3, §17.1.1.3), retried with credentials, 100 Trying (§17.2.1), answered 200 by the echo test
 * with no ringing and ACKed (§13.2.2.4), then BYE and its 200 (§15.1.1).
 */
const CALL = ['udp INVITE', 'udp 407', 'udp ACK', 'udp INVITE', 'udp 100', 'udp 200', 'udp ACK', 'udp BYE', 'udp 200'];

const work = mkdtempSync(join(tmpdir(), 'hookswitch-trace-'));
const children = new Set<ChildProcess>();
let gateway: GatewayProcess | undefined;
t.teardown(() => {
  for (const c of children) c.kill('SIGKILL');
  gateway?.kill();
  rmSync(work, { recursive: true, force: true });
});

/** A `hookswitch trace` child with its output collected. */
function startTrace(args: string[]) {
  const child = spawn(process.execPath, [...CLI, 'trace', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

async function sippRun(scenario: string, args: string[]) {
  const local = await freePort();
  const proc = spawnSipp(sipp, ['-sf', join(SIPP_DIR, scenario), '-i', '127.0.0.1', '-p', String(local), ...args, `127.0.0.1:${gateway!.port}`], 15_000, { log: true });
  return proc.result;
}

/** The SIP messages tshark decodes: `transport method-or-status`, and the Call-ID of each. */
function tsharkSip(pcap: string): { summary: string[]; callIds: string[] } {
  const out = execFileSync('tshark', ['-r', pcap, '-Y', 'sip', '-T', 'fields', '-E', 'separator=,', '-e', 'ip.proto', '-e', 'sip.Method', '-e', 'sip.Status-Code', '-e', 'sip.Call-ID'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const rows = out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split(','));
  return {
    summary: rows.map(([proto, method, status]) => `${proto === '6' ? 'tcp' : 'udp'} ${method || status}`),
    callIds: rows.map((r) => r[3] ?? ''),
  };
}

/**
 * tshark's SIP statistics (`-z sip,stat,FILTER`) of the messages matching `filter`: the counts of
 * requests by method and responses by status code, resends, and the average call setup time it
 * measured from an INVITE to its 200 (absent when it saw no answered call).
 */
function tsharkSipStat(pcap: string, filter: string): { messages: number; resent: number; counts: Record<string, number>; setupMs?: number } {
  const out = execFileSync('tshark', ['-r', pcap, '-q', '-z', `sip,stat,${filter}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const counts: Record<string, number> = {};
  for (const m of out.matchAll(/^\s+(?:SIP (\d{3}) .*?|([A-Z]+))\s+:\s+(\d+) Packets$/gm)) counts[m[1] ?? m[2]!] = Number(m[3]);
  const setup = /Average setup time (\d+) ms/.exec(out);
  return {
    messages: Number(/Number of SIP messages: (\d+)/.exec(out)?.[1] ?? NaN),
    resent: Number(/Number of resent SIP messages: (\d+)/.exec(out)?.[1] ?? NaN),
    counts,
    ...(setup ? { setupMs: Number(setup[1]) } : {}),
  };
}

t.test('tshark decodes IPv6 and a TLS flow on 5061 as SIP, checksums valid', async (t) => {
  const w = new PcapWriter();
  const gw = { transport: 'tls' as const, address: '::1', port: 5061 };
  const phone = { transport: 'tls' as const, address: '::1', port: 41000 };
  const msg = (first: string, cseq: string) =>
    Buffer.from(`${first}\r\nVia: SIP/2.0/TLS [::1]:41000;branch=z9hG4bK-t1\r\nFrom: <sip:101@gw>;tag=a\r\nTo: <sip:gw>\r\nCall-ID: tls-1\r\nCSeq: ${cseq}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`);
  const file = join(work, 'tls6.pcap');
  writeFileSync(
    file,
    Buffer.concat([
      w.header(),
      w.event({ time: 1_700_000_000_000, direction: 'in', transport: 'tls', local: gw, remote: phone, bytes: msg('OPTIONS sip:gw SIP/2.0', '1 OPTIONS') }),
      w.event({ time: 1_700_000_000_001, direction: 'out', transport: 'tls', local: gw, remote: phone, bytes: msg('SIP/2.0 200 OK', '1 OPTIONS') }),
    ]),
  );
  const out = execFileSync(
    'tshark',
    ['-r', file, '-o', 'tcp.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=,', '-e', 'ipv6.src', '-e', 'tcp.srcport', '-e', 'tcp.checksum.status', '-e', 'sip.Method', '-e', 'sip.Status-Code'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  t.same(out.trim().split('\n'), ['::1,41000,1,OPTIONS,', '::1,5061,1,,200']);
});

t.test('trace without a daemon fails with one line', async (t) => {
  const tr = startTrace(['--socket', join(work, 'nobody.sock')]);
  t.equal(await tr.exited, 1, 'exit 1');
  t.match(tr.stderr(), /hookswitch: hookswitch is not running \(no daemon on .*nobody\.sock\)/);
});

t.test('live log and pcap of OPTIONS over UDP and TCP, a digest REGISTER and a call', async (t) => {
  const config = join(work, 'config.json');
  writeFileSync(config, JSON.stringify({ sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] }, extensions: { '101': { password: PASSWORD } } }));
  gateway = await startGateway({ args: ['--config', config] });
  const socket = join(gateway.stateDir, 'control.sock');
  const pcap = join(work, 'sip.pcap');
  const full = startTrace(['--pcap', pcap, '--socket', socket, '--utc']);
  const summary = startTrace(['--summary', '--socket', socket]);
  for (const tr of [full, summary]) t.ok(await until(() => /tracing SIP on/.test(tr.stderr()), 15_000), 'trace attached', { stderr: tr.stderr() });

  const steps: [string, string[]][] = [
    ['options-uac.xml', ['-t', 'u1', '-m', '1']],
    ['options-uac.xml', ['-t', 't1', '-m', '1']],
    ['register-auth-uac.xml', ['-t', 'u1', '-m', '1', '-s', '101', '-au', '101', '-ap', PASSWORD]],
    // 101 calls the echo test (the default dial plan's *43), talks half a second, hangs up.
    ['call-auth-uac.xml', ['-t', 'u1', '-m', '1', '-s', ECHO, '-au', '101', '-ap', PASSWORD, '-key', 'caller', '101', '-auth_uri', `${ECHO}@127.0.0.1:${gateway.port}`, '-mp', String(await freePort())]],
  ];
  for (const [scenario, args] of steps) {
    const run = await sippRun(scenario, args);
    t.equal(run.exitCode, 0, `sipp ${scenario} ${args.join(' ')} succeeded`, { output: run.output });
    if (scenario.startsWith('register')) t.match(run.log, /register-outcome=200/, 'the REGISTER was accepted');
  }
  const expected = ['udp OPTIONS', 'udp 200', 'tcp OPTIONS', 'tcp 200', 'udp REGISTER', 'udp 401', 'udp REGISTER', 'udp 200', ...CALL];
  t.ok(await until(() => (full.stdout().match(/^(recv|send) /gm) ?? []).length >= expected.length, 5_000), 'every message printed');
  const growing = tsharkSip(pcap).summary;
  t.same(growing, expected, 'tshark reads the pcap while it is still being written');

  full.child.kill('SIGINT');
  summary.child.kill('SIGINT');
  t.equal(await full.exited, 0, 'SIGINT ends trace with exit 0');
  t.equal(await summary.exited, 0);
  t.match(full.stderr(), new RegExp(`trace stopped: ${expected.length} messages, written to .*sip\\.pcap; 0 dropped`));

  const { summary: decoded, callIds } = tsharkSip(pcap);
  t.same(decoded, expected, 'tshark decodes every request and response, in order');
  const callId = callIds[expected.length - CALL.length]!;
  t.match(callId, /\S/, 'the call has a Call-ID');
  t.same(
    callIds.map((id, i) => (id === callId ? i : -1)).filter((i) => i >= 0),
    CALL.map((_, i) => expected.length - CALL.length + i),
    'the whole call, and nothing else, under that one Call-ID',
  );
  const stat = tsharkSipStat(pcap, `sip.Call-ID == "${callId}"`);
  t.same(
    { messages: stat.messages, resent: stat.resent, counts: stat.counts },
    { messages: CALL.length, resent: 0, counts: { INVITE: 2, ACK: 2, BYE: 1, 100: 1, 200: 2, 407: 1 } },
    'tshark -z sip,stat counts the call\'s requests and responses, none resent',
  );
  t.ok(stat.setupMs !== undefined && stat.setupMs >= 0 && stat.setupMs < 5_000, `tshark measured the call's setup time (${stat.setupMs} ms)`);
  const port = gateway.port;
  const text = full.stdout();
  t.match(text, new RegExp(`^   OPTIONS sip:127\\.0\\.0\\.1:${port} SIP/2\\.0\\r?$`, 'm'), 'the OPTIONS request line is shown');
  t.match(text, new RegExp(`^   REGISTER sip:127\\.0\\.0\\.1:${port} SIP/2\\.0\\r?$`, 'm'), 'the REGISTER request line is shown');
  t.match(text, new RegExp(`^recv \\d+ bytes from tcp/127\\.0\\.0\\.1:\\d+ at \\d\\d:\\d\\d:\\d\\d\\.\\d{3} \\(local tcp/127\\.0\\.0\\.1:${port}\\):$`, 'm'), 'a header line names transport and endpoints');
  const lines = summary.stdout().trim().split('\n');
  t.equal(lines.length, expected.length, 'summary: one line per message');
  t.match(lines[0], new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} UDP 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${port}  OPTIONS sip:`));
  t.match(lines[3], new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} TCP 127\\.0\\.0\\.1:${port} -> 127\\.0\\.0\\.1:\\d+  SIP/2\\.0 200 `));

  const bytes = readFileSync(pcap).toString('latin1');
  const outputs: [string, string][] = [
    ['pcap', bytes],
    ['terminal', text],
  ];
  for (const [name, out] of outputs) {
    t.notMatch(out, /response="?[0-9a-f]{32}/i, `${name}: no digest response value`);
    t.match(out, /response="?x{32}"?/, `${name}: the response is blanked to x, same length`);
    t.notOk(out.includes(PASSWORD), `${name}: no password`);
  }
  t.ok(await until(() => /trace client detached/.test(gateway!.log()), 5_000), 'the daemon saw both clients leave');
  t.comment(`traced ${decoded.length} SIP messages (${decoded.filter((d) => d.startsWith('tcp')).length} over TCP); pcap ${bytes.length} bytes`);
  t.equal((await gateway.stop()).code, 0, 'the gateway stops cleanly');
});
