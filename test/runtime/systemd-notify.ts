/**
 * The notifier as a process under a fake service manager: a unix datagram socket received by
 * /usr/bin/python3 (timestamps on its monotonic clock, credentials via SO_PASSCRED, passed file
 * descriptors closed so systemd-notify's BARRIER=1 completes as it does with systemd), with the
 * real /usr/bin/systemd-notify and the timeline of test/fixtures/systemd/notify-program.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../helpers/gateway-process.ts';
import { notifyReceiver, PYTHON } from '../helpers/notify-receiver.ts';
import { scratch } from '../helpers/scratch.ts';
import { until } from '../helpers/wait.ts';

const PROGRAM = join(REPO_ROOT, 'test', 'fixtures', 'systemd', 'notify-program.ts');
const space = scratch('sdnotify');

const RECEIVER = `
import json, os, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64))
    pid = None
    for level, kind, d in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', d[:12])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for i in range(len(d) // 4):
                os.close(struct.unpack_from('i', d, i * 4)[0])
    print(json.dumps({'ms': time.monotonic() * 1000, 'pid': pid, 'fields': data.decode().split('\\n')}), flush=True)
`;

interface Datagram {
  ms: number;
  pid: number | null;
  fields: string[];
}

interface Receiver {
  readonly path: string;
  messages(): Datagram[];
}

function receiver(name: string): Promise<Receiver> {
  return notifyReceiver<Datagram>(RECEIVER, join(space.dir, `${name}.sock`), [], space.defer);
}

interface Run {
  code: number | null;
  pid: number;
  stdout: string;
  stderr: string;
  report: { enabled: boolean; watchdog: boolean; watchdogMs: number | null; stats: Record<string, number>; blockStartMs?: number; blockEndMs?: number };
}

function runProgram(env: NodeJS.ProcessEnv): Promise<Run> {
  const clean = { ...process.env };
  for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'BLOCK_MS', 'NOTIFY_COMMAND']) delete clean[k];
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', PROGRAM], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  space.defer(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      let report: Run['report'];
      try {
        report = JSON.parse(stdout.trim()) as Run['report'];
      } catch {
        report = { enabled: false, watchdog: false, watchdogMs: null, stats: {} };
      }
      resolve({ code, pid: child.pid!, stdout, stderr, report });
    });
  });
}

const isPing = (m: Datagram) => m.fields.length === 1 && m.fields[0] === 'WATCHDOG=1';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

t.test('the tools are installed', async (t) => {
  t.ok(existsSync('/usr/bin/systemd-notify'), '/usr/bin/systemd-notify (apt install systemd)');
  t.ok(existsSync(PYTHON), `${PYTHON} (apt install python3)`);
});

t.test('READY, STATUS, watchdog pings at half WATCHDOG_USEC, and a gap while the event loop is blocked', async (t) => {
  const rx = await receiver('main');
  const run = await runProgram({ NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '400000', BLOCK_MS: '1000' });
  t.equal(run.code, 0, 'the program exits 0');
  await until(() => rx.messages().some((m) => m.fields.includes('STOPPING=1')), 2000);
  const msgs = rx.messages();
  const nonPings = msgs.filter((m) => !isPing(m)).map((m) => m.fields);
  t.equal(nonPings.length, 5, 'five state messages');
  t.same(nonPings[0], ['READY=1', 'STATUS=5 registered, 0 calls'], 'READY=1 with the first status');
  t.same(nonPings[1], ['STATUS=5 registered, 1 call'], 'a status update, its newline made a space');
  t.match(nonPings[2], ['RELOADING=1', /^MONOTONIC_USEC=\d+$/], 'RELOADING=1 carries MONOTONIC_USEC');
  t.same(nonPings.slice(3), [['READY=1', 'STATUS=reloaded'], ['STOPPING=1', 'STATUS=stopping']], 'then READY and STOPPING, in the order sent');
  t.equal(isPing(msgs[1]!), true, 'the first ping follows READY at once');

  const pings = msgs.filter(isPing).map((m) => m.ms);
  const gaps = pings.slice(1).map((ms, i) => ({ from: pings[i]!, ms: ms - pings[i]! }));
  const { blockStartMs = NaN, blockEndMs = NaN } = run.report;
  const spansBlock = (g: { from: number; ms: number }) => g.from <= blockStartMs + 100 && g.from + g.ms >= blockEndMs;
  const normal = gaps.filter((g) => !spansBlock(g)).map((g) => g.ms);
  const block = gaps.filter(spansBlock);
  t.comment(`pings: ${pings.length}; gaps ms: ${gaps.map((g) => `${g.ms.toFixed(0)}${spansBlock(g) ? '(blocked)' : ''}`).join(' ')}`);
  t.ok(blockEndMs - blockStartMs >= 1000, 'the program blocked its event loop for 1 s');
  t.ok(pings.length >= 8, `about one ping per 200 ms over ~3 s of runtime (got ${pings.length})`);
  t.equal(block.length, 1, 'one gap spans the blocked second: no ping was sent during it');
  t.ok(block[0] !== undefined && block[0].ms >= 950 && block[0].ms <= 2000, `that gap is ${block[0]?.ms.toFixed(0)} ms`);
  t.ok(normal.length >= 6, 'regular gaps outside the block');
  const m = median(normal);
  t.ok(m >= 150 && m <= 300, `median gap ${m.toFixed(0)} ms is about WATCHDOG_USEC/2 = 200 ms`);
  t.ok(Math.max(...normal) < 800, `no other long gap (longest ${Math.max(...normal).toFixed(0)} ms)`);
  t.equal(run.report.stats.failed, 0, 'no failed deliveries');
  t.equal(run.report.watchdogMs, 400);
  const senders = new Set(msgs.map((m) => m.pid));
  t.notOk(senders.has(null), 'every datagram carried credentials');
  t.comment(`sender pids: ${[...senders].join(', ')} (program ${run.pid}; root may fake its parent's pid, others send their own)`);
});

t.test('without NOTIFY_SOCKET nothing is spawned; a missing systemd-notify is logged once and never fatal', async (t) => {
  const marker = join(space.dir, 'spawned');
  const fake = join(space.dir, 'fake-systemd-notify');
  writeFileSync(fake, `#!/bin/sh\necho "$@" >> '${marker}'\n`);
  chmodSync(fake, 0o755);
  const rx = await receiver('other-pid');
  const [unset, missing, otherPid] = await Promise.all([
    runProgram({ WATCHDOG_USEC: '400000', NOTIFY_COMMAND: fake }),
    runProgram({ NOTIFY_SOCKET: join(space.dir, 'nobody.sock'), WATCHDOG_USEC: '400000', NOTIFY_COMMAND: join(space.dir, 'no-such-systemd-notify') }),
    runProgram({ NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '400000', WATCHDOG_PID: '1' }),
  ]);

  t.equal(unset.code, 0);
  const { enabled, watchdog, watchdogMs, stats } = unset.report;
  t.same({ enabled, watchdog, watchdogMs, stats }, { enabled: false, watchdog: false, watchdogMs: null, stats: { delivered: 0, failed: 0, pings: 0, pingsSkipped: 0, dropped: 0 } });
  t.notOk(existsSync(marker), 'the notify command never ran');
  t.match(unset.stderr, /systemd watchdog not used.*NOTIFY_SOCKET is not/, 'the stray WATCHDOG_USEC is explained');

  t.equal(missing.code, 0, 'spawn failures are not fatal');
  t.equal(missing.report.stats.delivered, 0);
  t.ok(missing.report.stats.failed >= 10, `every message failed (${missing.report.stats.failed})`);
  const warnings = missing.stderr.split('\n').filter((l) => l.startsWith('level=warn'));
  t.equal(warnings.length, 1, 'one warning for all the failures');
  t.match(warnings[0], /systemd notification failed.*ENOENT/);

  t.equal(otherPid.code, 0);
  t.equal(otherPid.report.watchdog, false, 'WATCHDOG_PID of another process: no watchdog');
  await until(() => rx.messages().some((m) => m.fields.includes('STOPPING=1')), 2000);
  t.equal(rx.messages().filter(isPing).length, 0, 'no pings');
  t.same(rx.messages()[0]?.fields, ['READY=1', 'STATUS=5 registered, 0 calls'], 'READY still sent');
});
