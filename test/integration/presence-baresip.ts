/**
 * Presence (RFC 3856, PIDF basic open/closed) through the gateway, a child process on 127.0.0.1,
 * with baresip 1.0.0's `presence` module as the watcher. Its contacts file marks extensions with
 * `;presence=p2p`; the module sends each of them a SUBSCRIBE (`Event: presence`, `Expires: 600`,
 * no Accept, an empty `Supported:`) to the address in the contact, answers the 407 with the
 * account's password, refreshes at 90 % of the granted Expires (libre's sipsub), and reads
 * `<basic>` out of each `application/pidf+xml` NOTIFY (any other Content-Type gets 415). What it
 * concluded is what its `contacts` command prints; it raises no ctrl_tcp event for a change.
 * - 203 is `Offline` until a baresip phone registers as 203, `Online` then, `Offline` once it
 *   un-registers, and `Offline` again when a phone that vanished (SIGKILL) lets its binding lapse;
 * - the device extension is always `Online`; an unknown number is refused with 404, which
 *   baresip logs and shows as `Unknown`;
 * - with `presence.maxExpires` 6 s, baresip's 600 s is shortened and its refreshes keep the one
 *   subscription alive for the whole file (they come at 90 % of the `expires` in each NOTIFY's
 *   Subscription-State, which therefore must not overstate the time left);
 * - a watcher that quits ends its subscription (`Expires: 0`);
 * - the gateway's shutdown ends the subscriptions with `deactivated`, which baresip logs.
 * baresip 1.0.0 PUBLISHes its own status (RFC 3903) only for an account with `pubint` > 0; the
 * gateway derives presence from registrations and answers PUBLISH with 405, which baresip logs
 * and lives with: the phone registered as 203 in the first test has `pubint=60`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { StatusReport } from '../../src/app/status-report.ts';
import { controlRequest } from '../../src/control/control-server.ts';
import { registeredPhone, startBaresip, type Baresip } from '../helpers/baresip.ts';
import { findExecutable, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { scratch } from '../helpers/scratch.ts';
import { sleep, until } from '../helpers/wait.ts';

if (!findExecutable('baresip')) throw new Error('baresip is not installed: run scripts/ci-deps.sh');

const { dir: work, defer } = scratch('presence-baresip');
const DEVICE = '100';
const WATCHER = '201';
const QUITTER = '202';
const WATCHED = '203';
const UNKNOWN = '299';
/** The most the gateway grants: baresip asks for 600 s and refreshes at 90 % of this. */
const MAX_EXPIRES = 6;
/** The registration interval of the phone that vanishes: its binding lapses this long after its last REGISTER. */
const SHORT_REGINT = 6;
const password = (ext: string): string => `presence-${ext}-secret`;

const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    // baresip 1.0.0 fails a challenge set that includes SHA-256 (see test/helpers/baresip.ts).
    sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
    extensions: Object.fromEntries([WATCHER, QUITTER, WATCHED].map((e) => [e, { password: password(e) }])),
    device: { extension: DEVICE, autoAnswer: false },
    media: { rtpPorts: [29000, 29099], bind: '127.0.0.1' },
    registrar: { qualifySeconds: 0, minExpires: 5 },
    presence: { minExpires: 5, maxExpires: MAX_EXPIRES, presenceNotifyIntervalMs: 1000 },
  }),
);
const gw: GatewayProcess = await startGateway({ args: ['--config', config] });
defer(() => gw.stop());

const uri = (ext: string): string => `sip:${ext}@127.0.0.1:${gw.port}`;
const contact = (name: string, ext: string): string => `"${name}" <${uri(ext)}>;presence=p2p`;

/** Each contact's status as baresip's `contacts` command prints it (`>  Online Bob <sip:...>`, ANSI colours removed). */
async function statuses(phone: Baresip): Promise<Record<string, string>> {
  const r = await phone.command('contacts');
  const out: Record<string, string> = {};
  for (const m of r.data.replace(/\x1b\[[0-9;]*m/g, '').matchAll(/^[ >]\s+(\w+) .*<sip:([^@>]+)@[^>]*>$/gm)) out[m[2]!] = m[1]!;
  return out;
}

/** Polls `contacts` until `ext` shows `want`; resolves with the milliseconds it took, or throws naming what it showed. */
async function waitStatus(phone: Baresip, ext: string, want: string, timeoutMs: number): Promise<number> {
  const start = performance.now();
  let last: Record<string, string> = {};
  while (performance.now() - start < timeoutMs) {
    last = await statuses(phone);
    if (last[ext] === want) return performance.now() - start;
    await sleep(100);
  }
  throw new Error(`${ext} not ${want} within ${timeoutMs} ms: ${JSON.stringify(last)}\n--- baresip ---\n${phone.log().slice(-2000)}\n--- gateway ---\n${gw.log().slice(-3000)}`);
}

const created = (subscriber: string, resource: string): number =>
  gw.log().split('\n').filter((l) => l.includes('msg="subscription created"') && l.includes(`subscriber=${subscriber} `) && l.includes(`resource=${resource} `)).length;

async function subscriptions(): Promise<{ subscriber: string; resource: string; event: string; expiresIn: number }[]> {
  const reply = (await controlRequest(join(gw.stateDir, 'control.sock'), { cmd: 'status' })) as { ok: boolean; report: StatusReport };
  return [...(reply.report.subscriptions ?? [])];
}

const watcher = await registeredPhone({
  ext: WATCHER,
  password: password(WATCHER),
  gateway: gw,
  defer,
  rtpPorts: [29100, 29139],
  contacts: [contact('Bob', WATCHED), contact('Door', DEVICE), contact('Nobody', UNKNOWN)],
  presence: true,
});
const subscribedAt = performance.now();

await t.test('baresip watches 203 through the gateway: Offline, Online while a phone is registered as 203, Offline after it un-registers', async (t) => {
  await waitStatus(watcher, WATCHED, 'Offline', 5000);
  t.pass('203 Offline before anything registered as 203 (the first NOTIFY: basic closed)');
  t.equal(created(WATCHER, WATCHED), 1, 'the gateway created the subscription of 201 (digest-authenticated) to 203');

  const bob = await registeredPhone({
    ext: WATCHED,
    password: password(WATCHED),
    gateway: gw,
    defer,
    rtpPorts: [29140, 29179],
    presence: true,
    accountParams: ['pubint=60'],
  });
  const online = await waitStatus(watcher, WATCHED, 'Online', 5000);
  t.ok(online < 3000, `Online ${online.toFixed(0)} ms after 203's REGISTER_OK`);
  t.match(watcher.log(), new RegExp(`<${uri(WATCHED)}> changed status from \\S*Offline\\S* to \\S*Online`), 'baresip logged the change');
  t.match(bob.log(), /publisher got error response 405 Method Not Allowed/, '203\'s PUBLISH got 405; its registration is what counts');

  await bob.stop();
  const offline = await waitStatus(watcher, WATCHED, 'Offline', 5000);
  t.ok(offline < 3000, `Offline ${offline.toFixed(0)} ms after 203 quit (un-REGISTER)`);
  t.match(watcher.log(), new RegExp(`<${uri(WATCHED)}> changed status from \\S*Online\\S* to \\S*Offline`), 'baresip logged the change back');
});

await t.test('a phone that vanishes without un-registering goes Offline when its binding lapses', async (t) => {
  const bob = await startBaresip({
    name: 'vanishing',
    account: { user: WATCHED, password: password(WATCHED), registrar: `127.0.0.1:${gw.port}`, regint: SHORT_REGINT },
    rtpPorts: [29140, 29179],
  });
  defer(() => bob.stop());
  await bob.waitEvent('REGISTER_OK', { timeoutMs: 10_000 });
  await waitStatus(watcher, WATCHED, 'Online', 5000);
  bob.kill();
  const killedAt = performance.now();
  await sleep(1000);
  t.equal((await statuses(watcher))[WATCHED], 'Online', 'still Online 1 s after SIGKILL: the binding has not lapsed yet');
  const offline = await waitStatus(watcher, WATCHED, 'Offline', (SHORT_REGINT + 5) * 1000);
  const after = (performance.now() - killedAt) / 1000;
  t.ok(after <= SHORT_REGINT + 2, `Offline ${after.toFixed(1)} s after SIGKILL (binding of at most ${SHORT_REGINT} s; ${offline.toFixed(0)} ms of polling)`);
  await bob.stop();
});

await t.test('the device is always Online; an unknown number is refused with 404, which baresip shows as Unknown', async (t) => {
  const now = await statuses(watcher);
  t.equal(now[DEVICE], 'Online', 'the device extension: basic open');
  t.equal(now[UNKNOWN], 'Unknown', 'the unknown number: no subscription, status Unknown');
  t.match(watcher.log(), new RegExp(`presence: subscriber closed <${uri(UNKNOWN)}>: 404 Not Found; will retry in 30 secs`), 'baresip logged the 404 and backs off');
  t.equal(created(WATCHER, UNKNOWN), 0, 'the gateway created no subscription for it');
});

await t.test('baresip refreshes the shortened subscription: one subscription for the whole file', async (t) => {
  const wait = 2.5 * MAX_EXPIRES * 1000 - (performance.now() - subscribedAt);
  if (wait > 0) await sleep(wait);
  const lived = (performance.now() - subscribedAt) / 1000;
  t.equal(created(WATCHER, WATCHED), 1, `one subscription to 203 in ${lived.toFixed(1)} s, more than twice the ${MAX_EXPIRES} s granted`);
  t.equal(created(WATCHER, DEVICE), 1, 'one to the device');
  t.notMatch(watcher.log(), new RegExp(`subscriber closed <${uri(WATCHED)}>`), 'baresip never saw it end');
  const subs = await subscriptions();
  const mine = subs.filter((s) => s.subscriber === WATCHER).map((s) => `${s.resource} ${s.event}`).sort();
  t.same(mine, [`${DEVICE} presence`, `${WATCHED} presence`], 'status lists both subscriptions');
  t.ok(subs.every((s) => s.expiresIn >= 0 && s.expiresIn <= MAX_EXPIRES), `each expires within the ${MAX_EXPIRES} s granted (${subs.map((s) => s.expiresIn).join(', ')})`);
});

await t.test('a watcher that quits ends its subscription', async (t) => {
  const quitter = await registeredPhone({
    ext: QUITTER,
    password: password(QUITTER),
    gateway: gw,
    defer,
    rtpPorts: [29180, 29199],
    contacts: [contact('Door', DEVICE)],
    presence: true,
  });
  await waitStatus(quitter, DEVICE, 'Online', 5000);
  t.equal(created(QUITTER, DEVICE), 1, 'subscribed to the device');
  await quitter.stop();
  t.ok(
    await until(() => gw.log().split('\n').some((l) => l.includes('msg="subscription ended by the subscriber"') && l.includes(`subscriber=${QUITTER} `)), 5000),
    'the gateway saw the un-SUBSCRIBE (Expires: 0)',
    { log: gw.log().slice(-2000) },
  );
  t.notOk((await subscriptions()).some((s) => s.subscriber === QUITTER), 'status no longer lists it');
});

await t.test('the gateway shutting down ends the subscriptions with deactivated', async (t) => {
  const status = await gw.stop();
  t.same(status, { code: 0, signal: null }, 'the gateway exits 0 on SIGTERM');
  t.ok(
    await until(() => new RegExp(`presence: subscriber closed <${uri(WATCHED)}>: deactivated; will retry in 5 secs`).test(watcher.log()), 3000),
    'baresip got the final NOTIFY (terminated;reason=deactivated) and will retry in 5 s',
    { log: watcher.log().slice(-2000) },
  );
  const now = await statuses(watcher);
  t.same([now[WATCHED], now[DEVICE]], ['Unknown', 'Unknown'], 'baresip shows both as Unknown');
});
