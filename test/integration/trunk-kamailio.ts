/**
 * hookswitch as a trunk client of a real registrar: kamailio 5.6 (test/kamailio/registrar.cfg)
 * challenges the gateway's REGISTER with digest (RFC 3261 §10.2, §22.2) and keeps the binding
 * in usrloc, which `kamcmd ul.lookup` reads back. kamailio grants at most 20 s (max_expires),
 * so the gateway must refresh before that; then kamailio is killed (losing its in-memory
 * usrloc), restarted on the same port, and the gateway must be registered again within the
 * granted lifetime plus its retry backoff (retrySeconds 2).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { findExecutable, freePort, startGateway } from '../helpers/gateway-process.ts';
import { startKamailio, type Kamailio } from '../helpers/kamailio.ts';

if (!findExecutable('kamailio') && !findExecutable('kamcmd')) {
  throw new Error('kamailio is not installed: run scripts/ci-deps.sh (apt-get install kamailio)');
}

const TRUNK_USER = 'hookswitch';
const TRUNK_PASSWORD = 'trunk-secret-4711';
const GRANTED = 20;
const RETRY = 2;

const work = mkdtempSync(join(tmpdir(), 'hookswitch-trunk-kamailio-'));
const kamailios = new Set<Kamailio>();
t.teardown(() => {
  for (const k of kamailios) k.kill();
  rmSync(work, { recursive: true, force: true });
});

async function kamailio(port: number): Promise<Kamailio> {
  const k = await startKamailio({ mode: 'registrar', port, users: { [TRUNK_USER]: TRUNK_PASSWORD }, maxExpires: GRANTED, workers: 2 });
  kamailios.add(k);
  void k.exited.then(() => kamailios.delete(k));
  return k;
}

/** Polls kamailio's usrloc until `user` has a contact; resolves with it and the time taken, or null. */
async function waitForContact(k: Kamailio, user: string, timeoutMs: number): Promise<{ contact: string; ms: number } | null> {
  const start = performance.now();
  while (performance.now() - start < timeoutMs) {
    const contacts = k.contacts(user);
    if (contacts.length > 0) return { contact: contacts[0]!, ms: performance.now() - start };
    await new Promise((r) => setTimeout(r, 250));
  }
  return null;
}

const port = await freePort();
let kam = await kamailio(port);
const config = join(work, 'hookswitch.json');
writeFileSync(
  config,
  JSON.stringify({
    sip: { domain: 'hookswitch.test' },
    extensions: { '101': { password: 'kitchen-101-secret' } },
    trunks: [
      {
        name: 'kam',
        host: '127.0.0.1',
        port,
        username: TRUNK_USER,
        password: TRUNK_PASSWORD,
        register: true,
        expires: 60,
        retrySeconds: RETRY,
        keepAliveSeconds: 2,
      },
    ],
  }),
);
const gw = await startGateway({ args: ['--config', config] });
t.teardown(() => gw.kill());

await t.test('the gateway registers with kamailio through its digest challenge', async (t) => {
  const got = await waitForContact(kam, TRUNK_USER, 10_000);
  t.ok(got, 'kamailio holds a contact for the trunk user within 10 s', { log: gw.log().slice(-3_000), kamailio: kam.log().slice(-3_000) });
  t.match(got?.contact ?? '', new RegExp(`^sip:${TRUNK_USER}@127\\.0\\.0\\.1:${gw.port}\\b`), 'the contact is the gateway\'s address and port');
  t.notMatch(gw.log(), TRUNK_PASSWORD, 'the trunk password never appears in the gateway log');
});

await t.test(`the gateway refreshes within the ${GRANTED} s kamailio granted (not the 60 s it asked for)`, async (t) => {
  // usrloc drops an expired contact; it must still be there past the granted lifetime.
  await new Promise((r) => setTimeout(r, (GRANTED + 3) * 1000));
  t.ok(kam.contacts(TRUNK_USER).length > 0, `still registered ${GRANTED + 3} s later`, { log: gw.log().slice(-3_000) });
});

await t.test('after kamailio is killed and restarted, the gateway registers again within lifetime + backoff', async (t) => {
  kam.kill();
  await kam.exited;
  await new Promise((r) => setTimeout(r, 3_000));
  kam = await kamailio(port);
  t.same(kam.contacts(TRUNK_USER), [], 'the restarted kamailio starts with an empty usrloc');
  const limit = (GRANTED + 4 * RETRY + 5) * 1000;
  const got = await waitForContact(kam, TRUNK_USER, limit);
  t.ok(got, `registered again within ${limit / 1000} s`, { log: gw.log().slice(-3_000), kamailio: kam.log().slice(-2_000) });
  t.comment(`re-registered ${got ? (got.ms / 1000).toFixed(1) : '-'} s after the restart`);
  t.ok(gw.alive(), 'the gateway is still running');
});

await t.test('the gateway un-registers on SIGTERM', async (t) => {
  const status = await gw.stop();
  t.same(status, { code: 0, signal: null }, 'exit 0');
  t.same(kam.contacts(TRUNK_USER), [], 'kamailio no longer holds the contact');
  await kam.stop();
});
