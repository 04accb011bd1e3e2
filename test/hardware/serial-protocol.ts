import t from 'tap';
import {
  LineFramer,
  MAX_LINE_LENGTH,
  formatDeviceMessage,
  formatHostCommand,
  normalizeCadence,
  parseDeviceLine,
  parseHostLine,
  type DeviceMessage,
  type Frame,
  type HostCommand,
} from '../../src/hardware/serial/serial-protocol.ts';
import { prng } from '../helpers/prng.ts';

const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const text = (frames: Frame[]): string[] =>
  frames.map((f) => (f.kind === 'line' ? String.fromCharCode(...f.bytes) : `<overlong ${f.length}>`));

t.test('parseDeviceLine: messages of protocol version 1', async (t) => {
  const cases: { name: string; line: string; msg: DeviceMessage }[] = [
    { name: 'HELLO', line: 'HELLO 1 hookswitch-serial/0.1.0', msg: { type: 'hello', version: 1, firmware: 'hookswitch-serial/0.1.0', fields: {} } },
    {
      name: 'HELLO with extension fields',
      line: 'HELLO 1 fw/2 leds=2 RELAYS=1',
      msg: { type: 'hello', version: 1, firmware: 'fw/2', fields: { LEDS: '2', RELAYS: '1' } },
    },
    { name: 'HELLO of a future version', line: 'HELLO 2 fw', msg: { type: 'hello', version: 2, firmware: 'fw', fields: {} } },
    { name: 'HOOK OFF is off-hook', line: 'HOOK OFF', msg: { type: 'hook', offHook: true } },
    { name: 'HOOK ON is on-hook', line: 'HOOK ON', msg: { type: 'hook', offHook: false } },
    { name: 'lower case keywords', line: 'hook off', msg: { type: 'hook', offHook: true } },
    { name: 'tabs and runs of spaces', line: ' \tHOOK   ON\t', msg: { type: 'hook', offHook: false } },
    { name: 'DIGIT 0', line: 'DIGIT 0', msg: { type: 'digit', digit: '0' } },
    { name: 'DIGIT 5', line: 'DIGIT 5', msg: { type: 'digit', digit: '5' } },
    { name: 'KEY #', line: 'KEY #', msg: { type: 'key', key: '#' } },
    { name: 'KEY *', line: 'KEY *', msg: { type: 'key', key: '*' } },
    { name: 'KEY d is upper-cased', line: 'KEY d', msg: { type: 'key', key: 'D' } },
    { name: 'BUTTON DOWN', line: 'BUTTON 1 DOWN', msg: { type: 'button', index: 1, down: true } },
    { name: 'BUTTON UP', line: 'BUTTON 16 UP', msg: { type: 'button', index: 16, down: false } },
    { name: 'extension after an event', line: 'BUTTON 2 UP T=1234', msg: { type: 'button', index: 2, down: false } },
    { name: 'PONG with token', line: 'PONG 42', msg: { type: 'pong', token: '42' } },
    { name: 'PONG bare', line: 'PONG', msg: { type: 'pong' } },
    { name: 'OK', line: 'OK', msg: { type: 'ok' } },
    { name: 'OK with a comment', line: 'OK RING', msg: { type: 'ok' } },
    { name: 'ERR with text', line: 'ERR BADARG RELAY 9 not wired', msg: { type: 'err', code: 'BADARG', text: 'RELAY 9 not wired' } },
    { name: 'ERR code only', line: 'ERR TOOLONG', msg: { type: 'err', code: 'TOOLONG', text: '' } },
    { name: 'LOG keeps the text', line: 'LOG boot a=1 ok', msg: { type: 'log', text: 'boot a=1 ok' } },
    { name: 'unknown keyword is ignorable', line: 'BATTERY 87', msg: { type: 'unknown', keyword: 'BATTERY' } },
  ];
  for (const c of cases) {
    t.same(parseDeviceLine(c.line), c.msg, c.name);
    t.same(parseDeviceLine(bytes(c.line)), c.msg, `${c.name} (bytes)`);
  }
});

t.test('parseDeviceLine: broken lines are reported, never thrown', async (t) => {
  const cases: { name: string; line: string | Uint8Array; reason: RegExp }[] = [
    { name: 'empty', line: '', reason: /empty line/ },
    { name: 'blank', line: '  \t ', reason: /empty line/ },
    { name: 'NUL byte', line: bytes('HOOK\0OFF'), reason: /byte 0x00 at column 5/ },
    { name: 'high byte', line: Uint8Array.from([0x48, 0xf0, 0x4b]), reason: /byte 0xf0 at column 2/ },
    { name: 'DEL', line: 'HOOK OFF\x7f', reason: /0x7f/ },
    { name: 'not a keyword', line: '#$% garbage', reason: /not a keyword/ },
    { name: 'keyword starting with a digit', line: '5 DIGIT', reason: /not a keyword/ },
    { name: 'HOOK without state', line: 'HOOK', reason: /HOOK takes ON or OFF/ },
    { name: 'HOOK MAYBE', line: 'HOOK MAYBE', reason: /HOOK takes ON or OFF/ },
    { name: 'HOOK with an extra word', line: 'HOOK OFF NOW', reason: /HOOK takes ON or OFF/ },
    { name: 'DIGIT 12', line: 'DIGIT 12', reason: /DIGIT takes one digit/ },
    { name: 'DIGIT *', line: 'DIGIT *', reason: /DIGIT takes one digit/ },
    { name: 'KEY E', line: 'KEY E', reason: /KEY takes one of/ },
    { name: 'KEY without key', line: 'KEY', reason: /KEY takes one of/ },
    { name: 'BUTTON 0', line: 'BUTTON 0 DOWN', reason: /BUTTON takes a number 1-16/ },
    { name: 'BUTTON 17', line: 'BUTTON 17 DOWN', reason: /BUTTON takes/ },
    { name: 'BUTTON leading zero', line: 'BUTTON 01 DOWN', reason: /BUTTON takes/ },
    { name: 'BUTTON PRESSED', line: 'BUTTON 1 PRESSED', reason: /BUTTON takes/ },
    { name: 'HELLO without firmware', line: 'HELLO 1', reason: /HELLO takes <version> <firmware>/ },
    { name: 'HELLO version 0', line: 'HELLO 0 fw', reason: /version must be an integer 1-999/ },
    { name: 'HELLO version x', line: 'HELLO x fw', reason: /version must be/ },
    { name: 'HELLO firmware too long', line: `HELLO 1 ${'f'.repeat(33)}`, reason: /firmware must be 1-32/ },
    { name: 'PONG token with punctuation', line: 'PONG a-b', reason: /PONG token/ },
    { name: 'ERR without code', line: 'ERR', reason: /ERR takes a code/ },
    { name: 'ERR code with punctuation', line: 'ERR BAD-ARG x', reason: /ERR takes a code/ },
    { name: 'line over 80 bytes', line: `LOG ${'x'.repeat(MAX_LINE_LENGTH)}`, reason: /exceeds 80/ },
  ];
  for (const c of cases) {
    const r = parseDeviceLine(c.line);
    t.equal(r.type, 'invalid', c.name);
    if (r.type === 'invalid') t.match(r.reason, c.reason, `${c.name}: reason`);
  }
});

t.test('parseDeviceLine: 5000 random garbage lines never throw', async (t) => {
  const rnd = prng(5);
  const alphabet = 'HOOKDIGTBUNPLERWSYA0123456789 #*=\t,\x00\xff';
  let invalid = 0;
  let results = 0;
  for (let i = 0; i < 5000; i++) {
    const len = Math.floor(rnd() * 40);
    const line = Uint8Array.from({ length: len }, () => (rnd() < 0.8 ? alphabet.charCodeAt(Math.floor(rnd() * alphabet.length)) : Math.floor(rnd() * 256)));
    const r = parseDeviceLine(line);
    const h = parseHostLine(line);
    if (r.type === 'invalid') invalid++;
    if (typeof r.type === 'string' && typeof h.type === 'string') results++;
  }
  t.equal(results, 5000, 'every line gave a result in both directions');
  t.ok(invalid > 4000, `most garbage is invalid (${invalid} of 5000)`);
});

t.test('parseHostLine and formatHostCommand round-trip every command', async (t) => {
  const cases: { name: string; line: string; cmd: HostCommand }[] = [
    { name: 'HELLO with agent', line: 'HELLO 1 hookswitch/0.1.0', cmd: { type: 'hello', version: 1, agent: 'hookswitch/0.1.0' } },
    { name: 'HELLO bare', line: 'HELLO 1', cmd: { type: 'hello', version: 1 } },
    { name: 'PING with token', line: 'PING 17', cmd: { type: 'ping', token: '17' } },
    { name: 'PING bare', line: 'PING', cmd: { type: 'ping' } },
    { name: 'RING us cadence', line: 'RING 2000,4000', cmd: { type: 'ring', cadence: [2000, 4000] } },
    { name: 'RING gb cadence', line: 'RING 400,200,400,2000', cmd: { type: 'ring', cadence: [400, 200, 400, 2000] } },
    { name: 'RING of 8 entries', line: 'RING 1,2,3,4,5,6,7,60000', cmd: { type: 'ring', cadence: [1, 2, 3, 4, 5, 6, 7, 60000] } },
    { name: 'RING OFF', line: 'RING OFF', cmd: { type: 'ringOff' } },
    { name: 'RELAY PULSE', line: 'RELAY 1 PULSE 3000', cmd: { type: 'relay', index: 1, action: { kind: 'pulse', ms: 3000 } } },
    { name: 'RELAY ON', line: 'RELAY 2 ON', cmd: { type: 'relay', index: 2, action: { kind: 'on' } } },
    { name: 'RELAY OFF', line: 'RELAY 16 OFF', cmd: { type: 'relay', index: 16, action: { kind: 'off' } } },
    { name: 'LED ON', line: 'LED 1 ON', cmd: { type: 'led', index: 1, mode: { kind: 'on' } } },
    { name: 'LED OFF', line: 'LED 2 OFF', cmd: { type: 'led', index: 2, mode: { kind: 'off' } } },
    { name: 'LED BLINK', line: 'LED 2 BLINK 500,250', cmd: { type: 'led', index: 2, mode: { kind: 'blink', onMs: 500, offMs: 250 } } },
  ];
  for (const c of cases) {
    t.equal(formatHostCommand(c.cmd), c.line, `${c.name}: format`);
    t.same(parseHostLine(c.line), c.cmd, `${c.name}: parse`);
    t.same(parseHostLine(`${c.line.toLowerCase().replace(/hookswitch/, 'hookswitch')}`).type, c.cmd.type, `${c.name}: case-insensitive`);
    t.equal(formatHostCommand(parseHostLine(formatHostCommand(c.cmd)) as HostCommand), c.line, `${c.name}: re-encode`);
  }
});

t.test('parseHostLine refuses what firmware must answer with ERR', async (t) => {
  const cases: { name: string; line: string; reason: RegExp }[] = [
    { name: 'unknown command', line: 'DANCE', reason: /unknown command "DANCE"/ },
    { name: 'RING odd cadence', line: 'RING 2000', reason: /RING takes OFF or 2-8/ },
    { name: 'RING of 10 entries', line: 'RING 1,1,1,1,1,1,1,1,1,1', reason: /RING takes/ },
    { name: 'RING zero entry', line: 'RING 0,4000', reason: /RING takes/ },
    { name: 'RING over 60 s', line: 'RING 60001,1', reason: /RING takes/ },
    { name: 'RING with spaces', line: 'RING 2000, 4000', reason: /RING takes/ },
    { name: 'RELAY PULSE without ms', line: 'RELAY 1 PULSE', reason: /RELAY takes/ },
    { name: 'RELAY 0', line: 'RELAY 0 ON', reason: /RELAY takes/ },
    { name: 'LED BLINK one time', line: 'LED 1 BLINK 500', reason: /LED takes/ },
    { name: 'LED DIM', line: 'LED 1 DIM', reason: /LED takes/ },
    { name: 'HELLO without version', line: 'HELLO', reason: /HELLO takes/ },
  ];
  for (const c of cases) {
    const r = parseHostLine(c.line);
    t.equal(r.type, 'invalid', c.name);
    if (r.type === 'invalid') t.match(r.reason, c.reason, `${c.name}: reason`);
  }
});

t.test('formatDeviceMessage round-trips through parseDeviceLine', async (t) => {
  const msgs: DeviceMessage[] = [
    { type: 'hello', version: 1, firmware: 'hookswitch-serial/0.1.0', fields: { LEDS: '2' } },
    { type: 'hook', offHook: true },
    { type: 'hook', offHook: false },
    { type: 'digit', digit: '9' },
    { type: 'key', key: 'A' },
    { type: 'button', index: 3, down: true },
    { type: 'pong', token: 'abc' },
    { type: 'ok' },
    { type: 'err', code: 'NOTSUP', text: 'no relay 3' },
    { type: 'log', text: 'debounced 4 edges' },
  ];
  for (const m of msgs) t.same(parseDeviceLine(formatDeviceMessage(m)), m, formatDeviceMessage(m));
});

t.test('formatters refuse values the protocol cannot carry', async (t) => {
  const bad: { name: string; f: () => string }[] = [
    { name: 'odd cadence', f: () => formatHostCommand({ type: 'ring', cadence: [1000] }) },
    { name: 'empty cadence', f: () => formatHostCommand({ type: 'ring', cadence: [] }) },
    { name: 'fractional ms', f: () => formatHostCommand({ type: 'relay', index: 1, action: { kind: 'pulse', ms: 2.5 } }) },
    { name: 'LED 17', f: () => formatHostCommand({ type: 'led', index: 17, mode: { kind: 'on' } }) },
    { name: 'token with a space', f: () => formatHostCommand({ type: 'ping', token: 'a b' }) },
    { name: 'LOG with a newline', f: () => formatDeviceMessage({ type: 'log', text: 'a\nHOOK OFF' }) },
    { name: 'LOG over 80 bytes', f: () => formatDeviceMessage({ type: 'log', text: 'x'.repeat(80) }) },
  ];
  for (const b of bad) t.throws(b.f, RangeError, b.name);
});

t.test('normalizeCadence', async (t) => {
  const cases: { name: string; in: number[]; out: number[] | RegExp }[] = [
    { name: 'us', in: [2000, 4000], out: [2000, 4000] },
    { name: 'rounded', in: [399.6, 200.2], out: [400, 200] },
    { name: 'odd list doubled', in: [400, 200, 400], out: [400, 200, 400, 400, 200, 400] },
    { name: 'single entry', in: [1000], out: [1000, 1000] },
    { name: 'clamped to 60 s', in: [90_000, 1000], out: [60_000, 1000] },
    { name: 'empty', in: [], out: /empty/ },
    { name: 'zero', in: [0, 1000], out: /under 1 ms/ },
    { name: 'NaN', in: [Number.NaN, 1], out: /under 1 ms/ },
    { name: 'too long', in: [1, 2, 3, 4, 5], out: /more than 8/ },
  ];
  for (const c of cases) {
    const r = normalizeCadence(c.in);
    if (c.out instanceof RegExp) t.match(r, c.out, c.name);
    else t.same(r, c.out, c.name);
  }
});

t.test('LineFramer: terminators, empty lines and every split of the input', async (t) => {
  const stream = 'HELLO 1 fw\r\nHOOK OFF\n\n\rDIGIT 5\rKEY #\r\n   \nBUTTON 1 DOWN\n';
  const expected = ['HELLO 1 fw', 'HOOK OFF', 'DIGIT 5', 'KEY #', '   ', 'BUTTON 1 DOWN'];
  t.same(text(new LineFramer().push(bytes(stream))), expected, 'in one chunk');
  const all = bytes(stream);
  for (let a = 0; a <= all.length; a++) {
    for (let b = a; b <= all.length; b += 7) {
      const f = new LineFramer();
      const got = [...f.push(all.subarray(0, a)), ...f.push(all.subarray(a, b)), ...f.push(all.subarray(b))];
      if (JSON.stringify(text(got)) !== JSON.stringify(expected)) t.fail(`split at ${a}/${b}`);
    }
  }
  const f = new LineFramer();
  const byByte = [...all].flatMap((x) => f.push(Uint8Array.of(x)));
  t.same(text(byByte), expected, 'one byte at a time');
});

t.test('LineFramer: overlong lines are dropped whole and reported once', async (t) => {
  const max = 'x'.repeat(MAX_LINE_LENGTH);
  const cases: { name: string; input: string; out: string[] }[] = [
    { name: 'exactly 80 bytes pass', input: `${max}\n`, out: [max] },
    { name: '81 bytes are dropped', input: `${max}y\nHOOK ON\n`, out: ['<overlong 81>', 'HOOK ON'] },
    { name: '1000 bytes are dropped', input: `${'z'.repeat(1000)}\r\nOK\n`, out: ['<overlong 1000>', 'OK'] },
    { name: 'partial line waits', input: 'HOOK O', out: [] },
  ];
  for (const c of cases) t.same(text(new LineFramer().push(bytes(c.input))), c.out, c.name);

  const f = new LineFramer();
  t.same(text(f.push(bytes('y'.repeat(300)))), [], 'an endless line holds nothing back');
  t.same(text(f.push(bytes('y'.repeat(300) + '\nDIGIT 1\n'))), ['<overlong 600>', 'DIGIT 1'], 'and ends at its terminator');
  f.push(bytes('HOOK'));
  f.reset();
  t.same(text(f.push(bytes(' OFF\n'))), [' OFF'], 'reset forgets a partial line');
});
