/**
 * Every RFC 4475 and RFC 5118 torture message, sent byte-exact over UDP to the real gateway
 * process, gets the answer `shared/sip-torture/INDEX.md` names (table in
 * test/helpers/torture-verdicts.ts). Responses are read with a regex, not with our parser.
 *
 * The messages' Via headers name hosts that do not exist; the gateway adds `received` with the
 * packet's source address and answers to that address at the Via's port (RFC 3261 §18.2.2), so
 * each message is sent from 127.0.0.2 at the port its top Via names.
 */
import { createSocket, type Socket } from 'node:dgram';
import t from 'tap';
import { fixture } from '../helpers/fixtures.ts';
import { startGateway } from '../helpers/gateway-process.ts';
import { SERVER_VERDICTS } from '../helpers/torture-verdicts.ts';

const SENDER = '127.0.0.2';

/** The port of the first Via's sent-by, read with a regex (5060 when absent). */
function viaPort(bytes: Buffer): number {
  const text = bytes.toString('latin1');
  const m = /^(?:via|v)[ \t]*:[ \t]*SIP[ \t]*\/[ \t]*[\d.]+[ \t]*\/[ \t]*\w+[ \t]+(\[[^\]]*\]|[^\s;:,]+)(?::(\d+))?/im.exec(text);
  return m?.[2] ? Number(m[2]) : 5060;
}

const sockets = new Map<number, { socket: Socket; inbox: Buffer[] }>();
async function senderAt(port: number) {
  let entry = sockets.get(port);
  if (!entry) {
    const socket = createSocket('udp4');
    const inbox: Buffer[] = [];
    socket.on('message', (msg) => inbox.push(msg));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, SENDER, () => resolve());
    });
    entry = { socket, inbox };
    sockets.set(port, entry);
  }
  return entry;
}

/** The Call-ID of a message, read with a regex ('' when absent). */
function callIdOf(bytes: Buffer): string {
  return /^(?:call-id|i)[ \t]*:[ \t]*(\S*)/im.exec(bytes.toString('latin1'))?.[1] ?? '';
}

/**
 * Sends one message and returns the distinct statuses answered to it. Responses are matched by
 * Call-ID: the gateway retransmits final responses to INVITEs that are never ACKed (Timer G),
 * and those retransmissions may arrive while a later message is being tried.
 */
async function exchange(bytes: Buffer, gatewayPort: number, waitMs: number): Promise<number[]> {
  const { socket, inbox } = await senderAt(viaPort(bytes));
  const callId = callIdOf(bytes);
  inbox.length = 0;
  await new Promise<void>((resolve, reject) => socket.send(bytes, gatewayPort, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline && !inbox.some((m) => callIdOf(m) === callId)) await new Promise((r) => setTimeout(r, 10));
  // Give a possible second response (e.g. a final after a 100) a moment to arrive.
  await new Promise((r) => setTimeout(r, 30));
  const statuses = inbox
    .filter((m) => callIdOf(m) === callId)
    .map((m) => Number(/^SIP\/2\.0 (\d{3})/.exec(m.toString('latin1'))?.[1] ?? 0));
  return [...new Set(statuses)];
}

/**
 * The RFC messages reuse branches (`z9hG4bKkdjuw` with the same sent-by in several of them),
 * and RFC 3261 §17.2.3 rightly treats a second request with the same branch, sent-by and
 * method as a retransmission. So the messages are split into rounds in which no such key
 * repeats, each round against a freshly started gateway.
 */
function transactionKey(bytes: Buffer): string {
  const text = bytes.toString('latin1');
  const via = /^(?:via|v)[ \t]*:[ \t]*SIP[ \t]*\/[^\r\n]*/im.exec(text)?.[0] ?? '';
  const sentBy = /\/\s*\w+\s+([^;\s]+)/.exec(via)?.[1] ?? '';
  const branch = /branch\s*=\s*([^;,\s]+)/i.exec(via)?.[1] ?? '';
  const method = /^(\S+)/.exec(text)?.[1] ?? '';
  return `${branch.toLowerCase()}|${sentBy.toLowerCase()}|${method === 'ACK' ? 'INVITE' : method}`;
}

type Case = { corpus: 'rfc4475' | 'rfc5118'; name: string; expected: number | null | readonly number[]; bytes: Buffer };
const cases: Case[] = (Object.entries(SERVER_VERDICTS) as [Case['corpus'], (typeof SERVER_VERDICTS)[string]][]).flatMap(
  ([corpus, table]) => Object.entries(table).map(([name, expected]) => ({ corpus, name, expected, bytes: fixture(corpus, name) })),
);
const rounds: Case[][] = [];
for (const c of cases) {
  const key = transactionKey(c.bytes);
  let round = rounds.find((r) => !r.some((o) => transactionKey(o.bytes) === key));
  if (!round) rounds.push((round = []));
  round.push(c);
}

t.test('torture messages get the verdicts of INDEX.md from the running gateway', async (t) => {
  t.teardown(() => {
    for (const { socket } of sockets.values()) socket.close();
  });
  t.ok(rounds.length <= 4, `${cases.length} messages in ${rounds.length} rounds`);
  for (const round of rounds) {
    const gw = await startGateway();
    try {
      for (const { corpus, name, expected, bytes } of round) {
        const statuses = await exchange(bytes, gw.port, expected === null ? 250 : 2000);
        const finals = statuses.filter((s) => s >= 200 || s === 0);
        if (expected === null) t.same(statuses, [], `${corpus}/${name}: no answer`);
        else if (typeof expected === 'number') t.same(finals, [expected], `${corpus}/${name}: ${expected}`);
        else t.ok(finals.length === 1 && expected.includes(finals[0]!), `${corpus}/${name}: one of ${expected.join('/')} (got ${finals.join(',')})`);
      }
      t.ok(gw.alive(), 'the gateway is still running after the round');
    } finally {
      await gw.stop();
    }
  }
});
