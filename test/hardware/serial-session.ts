import t from 'tap';
import { SerialSession } from '../../src/hardware/serial/serial-session.ts';
import type { HardwareEvents, InputRole } from '../../src/hardware/types.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';

interface Rig {
  clock: ManualClock;
  logger: MemoryLogger;
  session: SerialSession;
  /** Lines the host wrote, in order. */
  written: string[];
  /** Events the backend reported, as readable strings. */
  events: string[];
  reconnects: string[];
  /** Feeds device lines (CRLF, as Arduino's println writes them). */
  device(...lines: string[]): void;
  /** Takes and clears what the host wrote. */
  take(): string[];
}

function rig(): Rig {
  const clock = new ManualClock(1000);
  const logger = new MemoryLogger();
  const written: string[] = [];
  const events: string[] = [];
  const reconnects: string[] = [];
  const hw: HardwareEvents = {
    input: (role: InputRole, active: boolean, atMs: number) => events.push(`input ${role} ${active} @${atMs}`),
    key: (key: string, atMs: number) => events.push(`key ${key} @${atMs}`),
    connection: (up: boolean, reason?: string) => events.push(`connection ${up}${reason ? ` ${reason}` : ''}`),
  };
  const session = new SerialSession({ clock, logger, events: hw, write: (l) => written.push(l), reconnect: (r) => reconnects.push(r) });
  return {
    clock,
    logger,
    session,
    written,
    events,
    reconnects,
    device: (...lines) => session.receive(Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1')),
    take: () => written.splice(0),
  };
}

function ready(r: Rig): void {
  r.session.opened();
  r.device('HELLO 1 test-fw/1');
  for (const line of r.take()) if (!line.startsWith('HELLO')) r.device('OK');
  r.events.splice(0);
}

t.test('handshake: HELLO repeated until the device answers, then state is replayed', async (t) => {
  const r = rig();
  r.session.opened();
  t.same(r.take(), ['HELLO 1 hookswitch'], 'HELLO on open');
  r.clock.advance(1000);
  r.clock.advance(1000);
  t.same(r.take(), ['HELLO 1 hookswitch', 'HELLO 1 hookswitch'], 'repeated every second (Arduino boots after the port opens)');
  t.equal(r.session.state, 'handshake');
  r.device('HELLO 1 hookswitch-serial/0.1.0 LEDS=2');
  t.equal(r.session.state, 'ready');
  t.same(r.session.peer, { version: 1, firmware: 'hookswitch-serial/0.1.0' });
  t.same(r.take(), ['RING OFF'], 'the ringer is put in a known state');
  t.same(r.events, ['connection true']);
  r.clock.advance(1000);
  t.same(r.take(), [], 'no HELLO after the handshake');
  t.match(r.logger.records, [{ level: 'info', msg: 'device ready', fields: { firmware: 'hookswitch-serial/0.1.0', version: 1 } }]);
});

t.test('device events become HardwareEvents stamped with arrival time', async (t) => {
  const r = rig();
  ready(r);
  r.clock.advance(250);
  r.device('HOOK OFF', 'HOOK OFF', 'DIGIT 5', 'KEY #', 'BUTTON 1 DOWN', 'BUTTON 1 DOWN', 'BUTTON 1 UP', 'HOOK ON');
  t.same(r.events, [
    'input hook true @1250',
    'key 5 @1250',
    'key # @1250',
    'input button true @1250',
    'input button false @1250',
    'input hook false @1250',
  ], 'repeated states are reported once');
});

t.test('messages before the handshake are ignored', async (t) => {
  const r = rig();
  r.session.opened();
  r.device('HOOK OFF', 'DIGIT 1');
  t.same(r.events, []);
  r.session.receive(Buffer.from('HOOK OFF\n'));
  r.session.closed('gone');
  r.session.receive(Buffer.from('HOOK OFF\n'));
  t.same(r.events, [], 'nor after close');
});

t.test('no HELLO within 10 s: reconnect', async (t) => {
  const r = rig();
  r.session.opened();
  r.clock.advance(9999);
  t.same(r.reconnects, []);
  t.equal(r.take().length, 10, 'HELLO sent 10 times');
  r.clock.advance(1);
  t.same(r.reconnects, ['no HELLO from the device within 10000 ms']);
  t.equal(r.session.state, 'closed');
  t.same(r.events, [], 'never up, so no connection event');
  r.clock.advance(60_000);
  t.same(r.take(), [], 'silent once given up');
});

t.test('heartbeat: PING every 2 s; a silent device is dropped within 8 s', async (t) => {
  const r = rig();
  ready(r);
  for (let i = 1; i <= 30; i++) {
    r.clock.advance(2000);
    r.device(`PONG ${i}`);
  }
  t.equal(r.take().filter((l) => /^PING \d+$/.test(l)).length, 30, '30 pings in 60 s');
  t.same(r.reconnects, [], 'an answering device stays');
  r.clock.advance(8000);
  t.same(r.reconnects, ['device silent for 6000 ms']);
  t.same(r.events, ['connection false device silent for 6000 ms']);
  t.match(r.logger.records.at(-1), { level: 'warn', msg: 'serial device not answering; reconnecting' });
});

t.test('version negotiation', async (t) => {
  const cases: { name: string; reply: string; state: string; error?: RegExp }[] = [
    { name: 'same version', reply: 'HELLO 1 fw', state: 'ready' },
    { name: 'newer device', reply: 'HELLO 2 fw', state: 'incompatible', error: /device speaks protocol version 2, hookswitch speaks 1/ },
    { name: 'device refuses ours', reply: 'ERR BADVER need 2', state: 'incompatible', error: /device refuses protocol version 1: need 2/ },
  ];
  for (const c of cases) {
    const r = rig();
    r.session.opened();
    r.device(c.reply);
    t.equal(r.session.state, c.state, c.name);
    if (c.error) {
      t.match(r.logger.records.find((x) => x.level === 'error')?.fields.reason, c.error, `${c.name}: logged`);
      r.take();
      r.clock.advance(30_000);
      t.same(r.take(), [], `${c.name}: nothing sent to an incompatible device`);
      t.same(r.reconnects, [], `${c.name}: no reconnect loop`);
      r.device('HELLO 1 fw-updated');
      t.equal(r.session.state, 'ready', `${c.name}: a later compatible HELLO is accepted`);
    }
  }
});

t.test('outputs: kept while down, replayed after every handshake; pulses never late', async (t) => {
  const r = rig();
  r.session.ring([2000, 4000]);
  r.session.led(1, { kind: 'blink', onMs: 500, offMs: 500 });
  r.session.relay(2, { kind: 'on' });
  t.equal(r.session.relay(1, { kind: 'pulse', ms: 3000 }), false, 'pulse while closed is dropped');
  t.same(r.take(), [], 'nothing written while closed');
  ready(r);
  r.session.closed('x');
  r.session.opened();
  r.take();
  r.device('HELLO 1 fw');
  t.same(r.take(), ['RING 2000,4000', 'LED 1 BLINK 500,500', 'RELAY 2 ON'], 'replayed');
  t.equal(r.session.relay(1, { kind: 'pulse', ms: 3000 }), true);
  r.session.ring(undefined);
  r.session.led(1, { kind: 'off' });
  t.same(r.take(), ['RELAY 1 PULSE 3000', 'RING OFF', 'LED 1 OFF'], 'sent at once while ready');
  r.device('HELLO 1 fw');
  t.same(r.take(), ['RING OFF', 'LED 1 OFF', 'RELAY 2 ON', 'RELAY 1 OFF'], 'a device restart gets the state again, the pulse as OFF');
  t.same(r.events, ['connection false x', 'connection true'], 'a device restart is no reconnection');
});

t.test('error replies are logged with their command; bad lines are counted, never fatal', async (t) => {
  const r = rig();
  ready(r);
  r.session.led(3, { kind: 'on' });
  r.session.relay(1, { kind: 'pulse', ms: 100 });
  r.device('OK', 'ERR NOTSUP no relay 1');
  t.match(r.logger.records.at(-1), { level: 'warn', msg: 'device error reply', fields: { code: 'NOTSUP', text: 'no relay 1', command: 'RELAY 1 PULSE 100' } });
  r.session.receive(Buffer.from([0x00, 0xff, 0x0a]));
  r.device('HOOK MAYBE', 'FUTURE THING', 'LOG hello there', `${'x'.repeat(200)}`);
  t.same(r.session.counters, { invalid: 2, overlong: 1, unknown: 1, errors: 1, handshakes: 1 });
  t.match(r.logger.records.filter((x) => x.level === 'info').at(-1), { msg: 'device log', fields: { text: 'hello there' } });
  for (let i = 0; i < 50; i++) r.device('HOOK MAYBE');
  t.equal(r.logger.records.filter((x) => x.level === 'warn').length, 21, '20 warnings, then one saying the rest are counted');
  r.device('HOOK OFF');
  t.same(r.events, ['input hook true @1000'], 'still working after 54 bad lines');
});
