import t from 'tap';
import {
  encodeTraceDropped,
  encodeTraceEvent,
  handleControlLine,
  parseControlRequest,
  parseTraceLine,
  TraceStreamQueue,
  type ControlCommands,
  type ControlReply,
} from '../../src/control/control-protocol.ts';
import type { TransportTraceEvent } from '../../src/sip/transport/transport-layer.ts';

t.test('parseControlRequest: requests and refusals', async (t) => {
  const cases: { name: string; line: string; result: ReturnType<typeof parseControlRequest> }[] = [
    { name: 'call', line: '{"cmd":"call","number":"+4930123#*"}', result: { cmd: 'call', number: '+4930123#*' } },
    { name: 'answer', line: '{"cmd":"answer"}', result: { cmd: 'answer' } },
    { name: 'hangup with extra fields', line: '{"cmd":"hangup","why":"bored"}', result: { cmd: 'hangup' } },
    { name: 'status', line: ' {"cmd":"status"} ', result: { cmd: 'status' } },
    { name: 'reload', line: '{"cmd":"reload"}', result: { cmd: 'reload' } },
    { name: 'peers', line: '{"cmd":"peers"}', result: { cmd: 'peers' } },
    { name: 'trace', line: '{"cmd":"trace","pcap":true}', result: { cmd: 'trace' } },
    { name: 'dtmf is upper-cased', line: '{"cmd":"dtmf","digits":"12ab*#"}', result: { cmd: 'dtmf', digits: '12AB*#' } },
    { name: 'dtmf of 64 digits', line: JSON.stringify({ cmd: 'dtmf', digits: '1'.repeat(64) }), result: { cmd: 'dtmf', digits: '1'.repeat(64) } },
    { name: 'not JSON', line: 'call 123', result: 'request is not JSON' },
    { name: 'empty line', line: '', result: 'request is not JSON' },
    { name: 'JSON null', line: 'null', result: 'request is not an object' },
    { name: 'JSON string', line: '"status"', result: 'request is not an object' },
    { name: 'no cmd', line: '{}', result: 'unknown command undefined' },
    { name: 'unknown cmd', line: '{"cmd":"reboot"}', result: 'unknown command "reboot"' },
    { name: 'cmd of another type', line: '{"cmd":7}', result: 'unknown command 7' },
    { name: 'array', line: '["call","1"]', result: 'unknown command undefined' },
    { name: 'call without number', line: '{"cmd":"call"}', result: 'call needs a number of digits, *, # or + (up to 32), or a peer name (kitchen, @kitchen)' },
    { name: 'call with a numeric number', line: '{"cmd":"call","number":123}', result: 'call needs a number of digits, *, # or + (up to 32), or a peer name (kitchen, @kitchen)' },
    { name: 'call with letters', line: '{"cmd":"call","number":"12a"}', result: 'call needs a number of digits, *, # or + (up to 32), or a peer name (kitchen, @kitchen)' },
    { name: 'call with a SIP URI', line: '{"cmd":"call","number":"sip:1@x"}', result: 'call needs a number of digits, *, # or + (up to 32), or a peer name (kitchen, @kitchen)' },
    { name: 'call of 33 digits', line: JSON.stringify({ cmd: 'call', number: '1'.repeat(33) }), result: 'call needs a number of digits, *, # or + (up to 32), or a peer name (kitchen, @kitchen)' },
    { name: 'empty number', line: '{"cmd":"call","number":""}', result: 'call needs a number of digits, *, # or + (up to 32), or a peer name (kitchen, @kitchen)' },
    { name: 'dtmf with E', line: '{"cmd":"dtmf","digits":"1E"}', result: 'dtmf needs 1 to 64 of 0-9 * # A-D' },
    { name: 'dtmf of 65 digits', line: JSON.stringify({ cmd: 'dtmf', digits: '1'.repeat(65) }), result: 'dtmf needs 1 to 64 of 0-9 * # A-D' },
    { name: 'dtmf with a newline', line: '{"cmd":"dtmf","digits":"1\\n"}', result: 'dtmf needs 1 to 64 of 0-9 * # A-D' },
    { name: 'dtmf without digits', line: '{"cmd":"dtmf"}', result: 'dtmf needs 1 to 64 of 0-9 * # A-D' },
  ];
  for (const c of cases) t.same(parseControlRequest(c.line), c.result, c.name);
});

/** Commands that record what they were asked and reply, throw or reject as told. */
function commands(behaviour: 'reply' | 'throw' | 'throw-string' | 'reject'): { calls: string[]; commands: ControlCommands } {
  const calls: string[] = [];
  const act = (what: string): ControlReply => {
    calls.push(what);
    if (behaviour === 'throw') throw new Error(`${what} failed`);
    if (behaviour === 'throw-string') throw `${what} broke`;
    return { ok: true, did: what };
  };
  return {
    calls,
    commands: {
      call: async (n) => {
        if (behaviour === 'reject') {
          calls.push(`call ${n}`);
          throw new Error('dial failed');
        }
        return act(`call ${n}`);
      },
      answer: () => act('answer'),
      hangup: () => act('hangup'),
      dtmf: (d) => act(`dtmf ${d}`),
      status: () => act('status'),
      reload: async () => act('reload'),
      peers: () => act('peers'),
    },
  };
}

t.test('handleControlLine dispatches and never throws', async (t) => {
  const cases: { name: string; line: string; behaviour: 'reply' | 'throw' | 'throw-string' | 'reject'; reply: ControlReply; calls: string[] }[] = [
    { name: 'call', line: '{"cmd":"call","number":"200"}', behaviour: 'reply', reply: { ok: true, did: 'call 200' }, calls: ['call 200'] },
    { name: 'answer', line: '{"cmd":"answer"}', behaviour: 'reply', reply: { ok: true, did: 'answer' }, calls: ['answer'] },
    { name: 'hangup', line: '{"cmd":"hangup"}', behaviour: 'reply', reply: { ok: true, did: 'hangup' }, calls: ['hangup'] },
    { name: 'dtmf', line: '{"cmd":"dtmf","digits":"9d"}', behaviour: 'reply', reply: { ok: true, did: 'dtmf 9D' }, calls: ['dtmf 9D'] },
    { name: 'status', line: '{"cmd":"status"}', behaviour: 'reply', reply: { ok: true, did: 'status' }, calls: ['status'] },
    { name: 'reload', line: '{"cmd":"reload"}', behaviour: 'reply', reply: { ok: true, did: 'reload' }, calls: ['reload'] },
    { name: 'peers', line: '{"cmd":"peers"}', behaviour: 'reply', reply: { ok: true, did: 'peers' }, calls: ['peers'] },
    { name: 'a reload that throws', line: '{"cmd":"reload"}', behaviour: 'throw', reply: { ok: false, error: 'reload failed' }, calls: ['reload'] },
    { name: 'trace is for the server to stream', line: '{"cmd":"trace"}', behaviour: 'reply', reply: { ok: false, error: 'trace is not available on this connection' }, calls: [] },
    { name: 'a bad request reaches no command', line: '{"cmd":"call","number":"1x"}', behaviour: 'reply', reply: { ok: false, error: 'call needs a number of digits, *, # or + (up to 32), or a peer name (kitchen, @kitchen)' }, calls: [] },
    { name: 'garbage', line: '\u0000\uffff', behaviour: 'reply', reply: { ok: false, error: 'request is not JSON' }, calls: [] },
    { name: 'a command that throws', line: '{"cmd":"hangup"}', behaviour: 'throw', reply: { ok: false, error: 'hangup failed' }, calls: ['hangup'] },
    { name: 'a command that throws a string', line: '{"cmd":"status"}', behaviour: 'throw-string', reply: { ok: false, error: 'status broke' }, calls: ['status'] },
    { name: 'a call that rejects', line: '{"cmd":"call","number":"1"}', behaviour: 'reject', reply: { ok: false, error: 'dial failed' }, calls: ['call 1'] },
  ];
  for (const c of cases) {
    const fake = commands(c.behaviour);
    t.same(await handleControlLine(c.line, fake.commands), c.reply, `${c.name}: reply`);
    t.same(fake.calls, c.calls, `${c.name}: commands run`);
  }
});

const traced = (over: Partial<TransportTraceEvent> = {}): TransportTraceEvent => ({
  time: 1_700_000_000_123.5,
  direction: 'out',
  transport: 'tcp',
  local: { transport: 'tcp', address: '::1', port: 5060 },
  remote: { transport: 'tcp', address: '::1', port: 40000 },
  connection: 'tcp-3',
  bytes: Buffer.from([0x4f, 0x50, 0x00, 0xff, 0x0d, 0x0a]),
  ...over,
});

t.test('trace lines: an event round-trips with its bytes intact', async (t) => {
  for (const e of [traced(), traced({ direction: 'in', transport: 'udp', connection: undefined, local: { transport: 'udp', address: '0.0.0.0', port: 1 }, remote: { transport: 'udp', address: '10.0.0.1', port: 65535 } })]) {
    const line = encodeTraceEvent(e);
    t.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one line');
    const expected = { ...e };
    if (e.connection === undefined) delete expected.connection;
    t.same(parseTraceLine(line.trim()), { type: 'sip', event: expected }, `${e.transport} ${e.direction}`);
  }
  t.same(parseTraceLine(encodeTraceDropped(7).trim()), { type: 'dropped', count: 7 });
});

t.test('trace lines: refusals', async (t) => {
  const good = JSON.parse(encodeTraceEvent(traced())) as Record<string, unknown>;
  const cases: [string, string, string][] = [
    ['not JSON', 'x', 'trace line is not JSON'],
    ['null', 'null', 'trace line is not an object'],
    ['unknown type', '{"type":"rtp"}', 'unknown trace line type "rtp"'],
    ['dropped without count', '{"type":"dropped"}', 'dropped needs a count'],
    ['negative dropped', '{"type":"dropped","count":-1}', 'dropped needs a count'],
    ['bad transport', JSON.stringify({ ...good, transport: 'sctp' }), 'trace event needs a transport udp, tcp or tls'],
    ['bad direction', JSON.stringify({ ...good, direction: 'up' }), 'trace event needs a direction in or out'],
    ['no time', JSON.stringify({ ...good, time: 'now' }), 'trace event needs a time'],
    ['no bytes', JSON.stringify({ ...good, bytes: 3 }), 'trace event needs bytes'],
    ['port out of range', JSON.stringify({ ...good, remote: { address: '::1', port: 70000 } }), 'trace event needs local and remote endpoints'],
    ['no local', JSON.stringify({ ...good, local: null }), 'trace event needs local and remote endpoints'],
  ];
  for (const [name, line, reason] of cases) t.equal(parseTraceLine(line), reason, name);
});

t.test('TraceStreamQueue: a slow client loses messages, counted, and never holds the gateway', async (t) => {
  const q = new TraceStreamQueue(1000);
  const steps: { name: string; buffered: number; writes: string }[] = [
    { name: 'room: written', buffered: 0, writes: encodeTraceEvent(traced()) },
    { name: 'at the limit: written', buffered: 1000, writes: encodeTraceEvent(traced()) },
    { name: 'over the limit: dropped', buffered: 1001, writes: '' },
    { name: 'still over: dropped', buffered: 5000, writes: '' },
    { name: 'drained: the count, then the message', buffered: 10, writes: encodeTraceDropped(2) + encodeTraceEvent(traced()) },
    { name: 'no new drops: just the message', buffered: 10, writes: encodeTraceEvent(traced()) },
  ];
  for (const s of steps) t.equal(q.offer(traced(), s.buffered), s.writes, s.name);
  t.equal(q.dropped, 2, 'total dropped');
});
