/**
 * Instant messages (RFC 3428 MESSAGE) through the gateway, a child process on 127.0.0.1, with
 * baresip 1.0.0 as the phones:
 * - baresip 101 sends a MESSAGE to 102 with its `message` command (the contact module sends to
 *   the current contact; `contact_next` moves on): 102 shows the text with the sender. baresip
 *   1.0.0 raises no ctrl_tcp event for a received MESSAGE: its menu module writes
 *   `<from>: "<text>"` to the UI output, which reaches a client of the `cons` module's TCP
 *   console (found by experiment; without a UI module the line goes nowhere). Its own failures
 *   (`480 Temporarily Unavailable`) it writes to stderr;
 * - to 103, configured but not registered: 480, which baresip 101 prints;
 * - to an unknown number: 404;
 * - to the device extension: 200, the gateway logs `message received` with the sender and the
 *   size, and `status` lists it with its text;
 * - to the echo number: the text comes back to 101;
 * - a text over `messages.maxBytes`: 413;
 * - a SIPp MESSAGE without credentials: 407.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { controlRequest } from '../../src/control/control-server.ts';
import { registeredPhone, type Baresip } from '../helpers/baresip.ts';
import { REPO_ROOT, findExecutable, freePort, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { logLines } from '../helpers/logfmt.ts';
import { scratch } from '../helpers/scratch.ts';
import { spawnSipp } from '../helpers/sipp.ts';
import { until } from '../helpers/wait.ts';

const sipp = findExecutable('sipp');
if (!sipp) throw new Error('sipp is not installed: run scripts/ci-deps.sh');
if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const SCENARIOS = join(import.meta.dirname, '..', 'sipp');
const DEVICE = '100';
const MAX_BYTES = 600;
const password = (ext: string): string => `message-${ext}-secret`;

const { dir: work, defer } = scratch('message-baresip');
const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions: { '101': { password: password('101'), name: 'Alice' }, '102': { password: password('102') }, '103': { password: password('103') } },
    device: { extension: DEVICE },
    dialplan: [{ match: '*43', to: 'echo' }],
    media: { rtpPorts: [24000, 24099], bind: '127.0.0.1' },
    registrar: { qualifySeconds: 0 },
    messages: { maxBytes: MAX_BYTES, keep: 5 },
  }),
);
const gw: GatewayProcess = await startGateway({ args: ['--config', config] });
defer(() => gw.stop());

const at = (user: string): string => `<sip:${user}@127.0.0.1:${gw.port}>`;

/** A phone's UI output, read from its `cons` console (see the file comment). */
async function screen(port: number): Promise<() => string> {
  let text = '';
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
  defer(() => socket.destroy());
  return () => text;
}

// Started before the first test: tap ends the root test once its last queued test is done.
const consoles = { bob: await freePort(), alice: await freePort() };
const cons = (port: number): string[] => ['module cons.so', `cons_listen 127.0.0.1:${port}`];
await registeredPhone({ ext: '102', password: password('102'), gateway: gw, defer, rtpPorts: [24100, 24139], extraConfig: cons(consoles.bob) });
const alice = await registeredPhone({
  ext: '101',
  password: password('101'),
  gateway: gw,
  defer,
  rtpPorts: [24140, 24179],
  extraConfig: cons(consoles.alice),
  contacts: [`"Bob" ${at('102')}`, `"Carol" ${at('103')}`, `"Nobody" ${at('999')}`, `"Door" ${at(DEVICE)}`, `"Echo" ${at('*43')}`],
});
const bobScreen = await screen(consoles.bob);
const aliceScreen = await screen(consoles.alice);

/** baresip's output since `from`, without the colour escapes. */
const output = (p: Baresip, from = 0): string => p.log().slice(from).replace(/\x1b\[[0-9;]*m/g, '');

/** Sends `text` to Alice's current contact; resolves with what her baresip printed meanwhile. */
async function send(text: string, settled: (out: string) => boolean): Promise<string> {
  const from = alice.log().length;
  const r = await alice.command('message', text);
  if (!r.ok) throw new Error(`message command failed: ${r.data}`);
  await until(() => settled(output(alice, from)), 8_000);
  return output(alice, from);
}

async function nextContact(name: string): Promise<void> {
  const r = await alice.command('contact_next');
  if (!r.data.includes(name)) throw new Error(`contact_next did not reach ${name}: ${r.data}`);
}

await t.test('baresip 101 to baresip 102: the text arrives with its sender, answered 200', async (t) => {
  const out = await send('hello Bob, this is Alice', () => bobScreen().includes('hello Bob'));
  t.match(bobScreen(), /sip:101@hookswitch\.test: "hello Bob, this is Alice"/, 'Bob shows the text and its sender');
  t.notMatch(out, /\b[3-6]\d\d [A-Z]/, 'Alice sees no failure (baresip prints only statuses >= 300)');
  const relayed = logLines(gw.log(), 'message').at(-1);
  t.match(relayed, { from: '101', to: '102', target: 'extension', bytes: '24' }, 'the gateway logs the relay');
});

await t.test('to an extension without a registered phone: 480', async (t) => {
  await nextContact('Carol');
  const out = await send('are you there?', (o) => /\b480\b/.test(o));
  t.match(out, /480 Temporarily Unavailable/);
});

await t.test('to an unknown number: 404', async (t) => {
  await nextContact('Nobody');
  const out = await send('hello?', (o) => /\b404\b/.test(o));
  t.match(out, /404 Not Found/);
});

await t.test('to the device: 200, one log line with sender and size, kept for status', async (t) => {
  await nextContact('Door');
  const before = logLines(gw.log(), 'message received').length;
  const out = await send('open the door please', () => logLines(gw.log(), 'message received').length > before);
  t.notMatch(out, /\b[3-6]\d\d [A-Z]/, 'answered 2xx');
  const line = logLines(gw.log(), 'message received').at(-1);
  t.match(line, { from: '101', to: DEVICE, bytes: '20', type: 'text/plain' }, 'msg="message received" from=101 bytes=20');
  t.notMatch(gw.log(), /open the door/, 'the text is not logged');
  const reply = (await controlRequest(join(gw.stateDir, 'control.sock'), { cmd: 'status' })) as { ok: boolean; messages?: { from: string; display?: string; text?: string }[] };
  t.match(reply.messages?.at(-1), { from: '101', display: 'Alice', text: 'open the door please' }, 'status lists it with its text');
  const text = execFileSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'status', '--state-dir', gw.stateDir], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 20_000 });
  t.match(text, /Messages for the device \(\d+\)\n.*Alice <101>: "open the door please"/, 'hookswitch status shows it', { text });
});

await t.test('to the echo number: the text comes back', async (t) => {
  await nextContact('Echo');
  const out = await send('ping', () => aliceScreen().includes('"ping"'));
  t.match(aliceScreen(), /sip:\*43@hookswitch\.test: "ping"/, 'Alice shows the echo from *43');
  t.notMatch(out, /\b[3-6]\d\d [A-Z]/, 'answered 2xx');
});

await t.test(`a text over messages.maxBytes (${MAX_BYTES}): 413`, async (t) => {
  const out = await send('x'.repeat(MAX_BYTES + 1), (o) => /\b413\b/.test(o));
  t.match(out, /413 Request Entity Too Large/);
});

await t.test('a SIPp MESSAGE without credentials: 407', async (t) => {
  const local = await freePort();
  const run = spawnSipp(sipp, ['-sf', join(SCENARIOS, 'message-noauth-uac.xml'), '-m', '1', '-s', '102', '-i', '127.0.0.1', '-p', String(local), `127.0.0.1:${gw.port}`], 20_000);
  defer(() => run.kill());
  const result = await run.result;
  t.equal(result.exitCode, 0, `SIPp got the 407\n${result.output}`);
});
