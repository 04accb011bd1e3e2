/**
 * `hookswitch run` under a fake service manager, as systemd starts it from
 * systemd/hookswitch.service (Type=notify, WatchdogSec=, RuntimeDirectory=): `$NOTIFY_SOCKET` is
 * a unix datagram socket received by /usr/bin/python3 (monotonic timestamps, passed file
 * descriptors closed so systemd-notify's BARRIER=1 completes), `WATCHDOG_USEC=1000000`,
 * `$RUNTIME_DIRECTORY` a temporary directory. On every `READY=1` the receiver itself probes the
 * SIP port (an OPTIONS on a connected UDP socket, which sees ECONNREFUSED if nothing is bound, and
 * a TCP connect) before it reads the next datagram, so "ready" is checked at the moment systemd
 * would act on it. Timestamps on both sides are CLOCK_MONOTONIC (Python's time.monotonic, Node's
 * process.hrtime), as is the MONOTONIC_USEC= of RELOADING=1.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { findExecutable, freePort, REPO_ROOT, startGateway } from '../helpers/gateway-process.ts';
import { logLines } from '../helpers/logfmt.ts';
import { notifyReceiver, PYTHON } from '../helpers/notify-receiver.ts';
import { scratch } from '../helpers/scratch.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { sleep, until } from '../helpers/wait.ts';

const MAIN = join(REPO_ROOT, 'src', 'cli', 'main.ts');
const SCENARIOS = join(REPO_ROOT, 'test', 'sipp');
const sipp = findExecutable('sipp');
if (!existsSync('/usr/bin/systemd-notify')) throw new Error('/usr/bin/systemd-notify is missing: apt install systemd (scripts/ci-deps.sh)');
if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: apt install python3`);
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');

const space = scratch('systemd-daemon');
/** WatchdogSec=1 as systemd passes it; the gateway pings at half of it (sd_watchdog_enabled(3)). */
const WATCHDOG_USEC = 1_000_000;
const PHONE = '101';
const PHONE_PASSWORD = 'phone-101-secret';

const RECEIVER = `
import json, os, socket, struct, sys, time
path, port = sys.argv[1], int(sys.argv[2])
OPTIONS = ('OPTIONS sip:127.0.0.1:%d SIP/2.0\\r\\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-sdready-%%d;rport\\r\\n'
           'Max-Forwards: 70\\r\\nFrom: <sip:probe@127.0.0.1>;tag=sdready\\r\\nTo: <sip:127.0.0.1:%d>\\r\\n'
           'Call-ID: sdready-%%d@127.0.0.1\\r\\nCSeq: 1 OPTIONS\\r\\nContent-Length: 0\\r\\n\\r\\n') % (port, port)

def probe(n):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(1.0)
    udp = 'timeout'
    try:
        u.connect(('127.0.0.1', port))
        u.send((OPTIONS % (n, n)).encode())
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            line = u.recv(65535).split(b'\\r\\n', 1)[0].decode('latin1')
            if not line.startswith('SIP/2.0 1'):
                udp = line
                break
    except ConnectionRefusedError:
        udp = 'refused'
    except socket.timeout:
        pass
    finally:
        u.close()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(1.0)
    tcp = c.connect_ex(('127.0.0.1', port))
    c.close()
    return {'udp': udp, 'tcp': tcp}

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
n = 0
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64))
    ms = time.monotonic() * 1000
    for level, kind, d in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for i in range(len(d) // 4):
                os.close(struct.unpack_from('i', d, i * 4)[0])
    fields = data.decode().split('\\n')
    out = {'ms': ms, 'fields': fields}
    if 'READY=1' in fields:
        n += 1
        out['probe'] = probe(n)
        out['probeMs'] = time.monotonic() * 1000 - ms
    print(json.dumps(out), flush=True)
`;

interface Datagram {
  ms: number;
  fields: string[];
  probe?: { udp: string; tcp: number };
  probeMs?: number;
}

/** CLOCK_MONOTONIC in milliseconds, the receiver's time base. */
const monoMs = () => Number(process.hrtime.bigint()) / 1e6;
const isPing = (m: Datagram) => m.fields.length === 1 && m.fields[0] === 'WATCHDOG=1';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function receiver(port: number): Promise<{ path: string; messages(): Datagram[] }> {
  return notifyReceiver<Datagram>(RECEIVER, join(space.dir, 'notify.sock'), [String(port)], space.defer);
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: REPO_ROOT, timeout: 20_000, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: performance.now() - started }),
    );
  });
}

t.test('hookswitch run as a Type=notify service with WatchdogSec=1', async (t) => {
  const port = await freePort();
  const runtimeDir = join(space.dir, 'run');
  const stateDir = join(space.dir, 'state');
  const configFile = join(space.dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({ sip: { authAlgorithms: ['MD5'] }, extensions: { [PHONE]: { password: PHONE_PASSWORD } }, registrar: { qualifySeconds: 0 }, log: { level: 'info' } }),
  );
  mkdirSync(runtimeDir);
  mkdirSync(stateDir);
  const rx = await receiver(port);
  const kinds = () => rx.messages().filter((m) => !isPing(m));
  const timings: string[] = [];

  const spawnedMs = monoMs();
  const gw = await startGateway({
    port,
    stateDir,
    args: ['--config', configFile],
    env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: String(WATCHDOG_USEC), RUNTIME_DIRECTORY: runtimeDir },
  });
  space.defer(() => gw.kill());
  const listeningMs = monoMs();
  t.ok(await until(() => kinds().some((m) => m.fields.includes('READY=1')), 10_000), 'READY=1 arrives');
  const ready = kinds()[0]!;
  timings.push(`spawn→"listening" log ${(listeningMs - spawnedMs).toFixed(0)} ms`, `spawn→READY ${(ready.ms - spawnedMs).toFixed(0)} ms`);

  t.test('READY=1 once the SIP port answers, with the status line', async (t) => {
    t.same(ready.fields, ['READY=1', 'STATUS=0 phones registered, no trunks, 0 calls'], 'the first state message is READY=1 with STATUS=');
    t.match(ready.probe?.udp, /^SIP\/2\.0 200 /, `an OPTIONS sent when READY arrived was answered (${ready.probe?.udp}, ${ready.probeMs?.toFixed(1)} ms)`);
    t.equal(ready.probe?.tcp, 0, 'the TCP port accepted a connection when READY arrived');
    const pingsBefore = rx.messages().filter((m) => isPing(m) && m.ms < ready.ms).length;
    t.ok(pingsBefore >= 1, `the watchdog was fed while starting (${pingsBefore} pings before READY)`);
  });

  t.test('the control socket is $RUNTIME_DIRECTORY/control.sock, mode 0660, and the CLI reaches it', async (t) => {
    const sock = join(runtimeDir, 'control.sock');
    const st = statSync(sock);
    t.ok(st.isSocket(), `${sock} is a socket`);
    t.equal((st.mode & 0o777).toString(8), '660', 'mode 0660 (group hookswitch may use the CLI)');
    t.notOk(existsSync(join(stateDir, 'control.sock')), 'no socket in the state directory');
    const status = await cli(['status', '--socket', sock]);
    timings.push(`hookswitch status ${status.ms.toFixed(0)} ms`);
    t.equal(status.code, 0, 'hookswitch status --socket exits 0');
    t.match(status.stdout, new RegExp(`${port}`), 'and shows the SIP port');
    const json = await cli(['status', '--json'], { RUNTIME_DIRECTORY: runtimeDir });
    t.equal(json.code, 0, 'hookswitch status --json finds the socket through $RUNTIME_DIRECTORY');
    t.equal((JSON.parse(json.stdout) as { ok: boolean }).ok, true);
  });

  t.test('STATUS= follows a registration within the 5 s refresh', async (t) => {
    const local = await freePort();
    const reg = await spawnSipp(
      sipp,
      ['-sf', join(SCENARIOS, 'register-auth-uac.xml'), '-m', '1', '-s', PHONE, '-au', PHONE, '-ap', PHONE_PASSWORD, '-i', '127.0.0.1', '-p', String(local), `127.0.0.1:${port}`],
      10_000,
    ).result;
    const registeredMs = monoMs();
    t.equal(reg.exitCode, 0, 'SIPp registered 101', { output: reg.output });
    const want = 'STATUS=1 phone registered, no trunks, 0 calls';
    t.ok(await until(() => kinds().some((m) => m.fields.includes(want)), 7_000), `"${want}" sent`);
    const update = kinds().find((m) => m.fields.includes(want));
    t.same(update?.fields, [want], 'as a status-only message');
    const delay = (update?.ms ?? NaN) - registeredMs;
    timings.push(`registration→STATUS ${delay.toFixed(0)} ms`);
    t.ok(delay <= 5_500, `within one refresh period (${delay.toFixed(0)} ms)`);
  });

  t.test('SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1, one reload', async (t) => {
    const before = kinds().length;
    const reloadsBefore = logLines(gw.log(), 'config reloaded').length;
    const hupMs = monoMs();
    process.kill(gw.pid, 'SIGHUP');
    t.ok(await until(() => kinds().slice(before).some((m) => m.fields.includes('READY=1')), 10_000), 'READY=1 after the reload');
    const [reloading, again, ...rest] = kinds().slice(before);
    t.match(reloading?.fields, ['RELOADING=1', /^MONOTONIC_USEC=\d+$/, 'STATUS=reloading configuration'], 'RELOADING=1 first');
    const usec = Number(/^MONOTONIC_USEC=(\d+)$/.exec(reloading?.fields[1] ?? '')?.[1]);
    t.ok(usec / 1000 >= hupMs - 1 && usec / 1000 <= reloading!.ms + 1, `MONOTONIC_USEC is CLOCK_MONOTONIC between SIGHUP and its arrival (+${(usec / 1000 - hupMs).toFixed(0)} ms)`);
    t.same(again?.fields, ['READY=1', 'STATUS=1 phone registered, no trunks, 0 calls'], 'then READY=1 with the status line');
    t.match(again?.probe?.udp, /^SIP\/2\.0 200 /, 'the SIP port still answers');
    timings.push(`SIGHUP→RELOADING ${(reloading!.ms - hupMs).toFixed(0)} ms, →READY ${(again!.ms - hupMs).toFixed(0)} ms`);
    await sleep(500);
    t.same(rest, [], 'nothing else');
    t.equal(logLines(gw.log(), 'config reloaded').length - reloadsBefore, 1, 'exactly one "config reloaded" log line');
  });

  t.test('watchdog pings every WATCHDOG_USEC/2 from the event loop, SIGTERM: STOPPING=1 and exit 0', async (t) => {
    const termMs = monoMs();
    const status = await gw.stop(10_000);
    const exitMs = monoMs();
    t.same(status, { code: 0, signal: null }, 'exit 0');
    t.ok(await until(() => kinds().some((m) => m.fields.includes('STOPPING=1')), 3_000), 'STOPPING=1 sent');
    const stopping = kinds().find((m) => m.fields.includes('STOPPING=1'))!;
    t.same(stopping.fields, ['STOPPING=1', 'STATUS=stopping (SIGTERM)']);
    t.ok(stopping.ms < exitMs, 'before the process exited');
    timings.push(`SIGTERM→STOPPING ${(stopping.ms - termMs).toFixed(0)} ms, →exit ${(exitMs - termMs).toFixed(0)} ms`);

    const pings = rx.messages().filter((m) => isPing(m) && m.ms >= ready.ms && m.ms <= termMs).map((m) => m.ms);
    const gaps = pings.slice(1).map((ms, i) => ms - pings[i]!);
    const m = median(gaps);
    const longest = Math.max(...gaps);
    timings.push(`${pings.length} pings over ${((termMs - ready.ms) / 1000).toFixed(1)} s, gap median ${m.toFixed(0)} ms, longest ${longest.toFixed(0)} ms`);
    t.ok(pings.length >= ((termMs - ready.ms) / 500) * 0.8, `about one ping per 500 ms (${pings.length})`);
    t.ok(m >= 450 && m <= 600, `median gap ${m.toFixed(0)} ms is about WATCHDOG_USEC/2`);
    t.ok(longest < WATCHDOG_USEC / 1000, `no gap reaches WatchdogSec (longest ${longest.toFixed(0)} ms)`);
    t.match(gw.log(), /msg="?stopped"?/, 'the log says it stopped');
    t.comment(`timings: ${timings.join('; ')}`);
  });
});
