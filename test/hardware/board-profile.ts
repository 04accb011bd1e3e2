import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alsaDevice, BoardProfileError, configTxtLineFor, configTxtLines, INPUT_ROLES, OUTPUT_ROLES, parseBoardProfile, type BoardProfile } from '../../src/hardware/board-profile.ts';
import { BoardRegistry, defaultBoardDir } from '../../src/hardware/board-registry.ts';

/** BCM GPIO → physical pin of the 40-pin header (Raspberry Pi pinout). */
const HEADER_PIN: Record<number, number> = {
  2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32, 13: 33, 14: 8, 15: 10,
  16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16, 24: 18, 25: 22, 26: 37, 27: 13,
};
/** Pins a user likely needs for something else: I2C1, SPI0, UART0, I2S/PCM. */
const RESERVED = new Set([2, 3, 7, 8, 9, 10, 11, 14, 15, 18, 19, 20, 21]);

const registry = new BoardRegistry();

t.test('the shipped board folder is found from the source tree', async (t) => {
  t.ok(defaultBoardDir(), 'board/ found');
  t.same(registry.names(), ['pi-ag1171-handset', 'pi-intercom', 'pi-rotary-bell', 'serial-handset']);
});

t.test('every shipped profile loads, validates and has a README with a wiring table', async (t) => {
  for (const name of registry.names()) {
    t.test(name, async (t) => {
      const p = registry.load(name);
      t.equal(p.name, name);
      const readme = readFileSync(registry.readmeOf(name), 'utf8');
      const header = readme.split('\n').find((l) => l.startsWith('| Pi header pin'));
      t.equal(header, '| Pi header pin | BCM GPIO | Signal | Part pin | Notes |', 'wiring table header');
      const rows = readme.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| Pi header') && !l.startsWith('|---'));
      const gpioRoles = [...INPUT_ROLES.filter((r) => p.inputs[r]).map((r) => [r, p.inputs[r]!.gpio] as const), ...OUTPUT_ROLES.filter((r) => p.outputs[r]).map((r) => [r, p.outputs[r]!.gpio] as const)];
      for (const [role, gpio] of gpioRoles) {
        const row = rows.find((l) => l.includes(`| GPIO${gpio} |`));
        t.ok(row, `row for GPIO${gpio}`);
        t.ok(row?.startsWith(`| ${HEADER_PIN[gpio]} | GPIO${gpio} | ${role} `), `GPIO${gpio} is header pin ${HEADER_PIN[gpio]} and carries ${role}`);
        t.notOk(RESERVED.has(gpio), `GPIO${gpio} avoids I2C/SPI/UART/I2S`);
      }
      for (const line of configTxtLines(p)) t.ok(readme.includes(line), `README lists ${line}`);
      for (const [role, pin] of Object.entries(p.mcuPins)) t.ok(rows.some((l) => l.includes(`| ${role} `) && l.includes(` ${pin} `)), `row for ${role} on ${pin}`);
      t.ok(rows.length >= Math.max(gpioRoles.length, Object.keys(p.mcuPins).length), 'a row per wired role');
    });
  }
  t.same(
    registry.list().map((b) => [b.name, b.mode, b.connection, b.ringer]),
    [
      ['pi-ag1171-handset', 'handset', 'gpio', 'slic'],
      ['pi-intercom', 'intercom', 'gpio', 'sound'],
      ['pi-rotary-bell', 'handset', 'gpio', 'bell'],
      ['serial-handset', 'handset', 'serial', 'serial'],
    ],
  );
});

t.test('the README index names every profile', async (t) => {
  const index = readFileSync(join(registry.dir!, 'README.md'), 'utf8');
  for (const name of registry.names()) t.ok(index.includes(`\`${name}\``) && index.includes(`(${name}/README.md)`), name);
});

t.test('config.txt lines follow the gpio-key and gpio-led overlay parameters', async (t) => {
  const p = registry.load('pi-rotary-bell');
  t.same(configTxtLines(p), [
    'dtoverlay=gpio-key,gpio=17,active_low=1,gpio_pull=up,keycode=169,label=hook',
    'dtoverlay=gpio-key,gpio=27,active_low=0,gpio_pull=up,keycode=183,label=dial-pulse',
    'dtoverlay=gpio-key,gpio=22,active_low=1,gpio_pull=up,keycode=184,label=dial-off-normal',
    'dtoverlay=gpio-led,gpio=23,label=bell',
  ]);
  t.equal(configTxtLineFor(p, 'bell'), 'dtoverlay=gpio-led,gpio=23,label=bell');
  t.equal(configTxtLineFor(p, 'relay'), undefined);
  t.same(configTxtLines(registry.load('serial-handset')), []);
  t.equal(alsaDevice(p), 'plughw:CARD=Device,DEV=0');
  const withLowLed = parseBoardProfile({ ...doc(), outputs: { ...doc().outputs, relay: { gpio: 23, activeLow: true, label: 'door-relay' } } }, 'x');
  t.ok(configTxtLines(withLowLed).includes('dtoverlay=gpio-led,gpio=23,label=door-relay,active_low=1'));
});

function doc(): Record<string, any> {
  return JSON.parse(readFileSync(join(registry.dir!, 'pi-intercom.json'), 'utf8'));
}

t.test('bad profiles fail with one line naming the key', async (t) => {
  const cases: Array<[string, (d: Record<string, any>) => unknown, string]> = [
    ['not an object', () => [], 'board x: must be a JSON object (got [])'],
    ['unknown top-level key', (d) => ({ ...d, colour: 'red' }), 'board x: colour is not a known key'],
    ['missing mode', (d) => ({ ...d, mode: undefined }), 'board x: mode is missing'],
    ['bad mode', (d) => ({ ...d, mode: 'fax' }), 'board x: mode must be one of "handset", "intercom" (got "fax")'],
    ['gpio out of range', (d) => ({ ...d, inputs: { button: { ...d.inputs.button, gpio: 40 } } }), 'board x: inputs.button.gpio must be a whole number from 2 to 27 (got 40)'],
    ['reserved EEPROM gpio', (d) => ({ ...d, inputs: { button: { ...d.inputs.button, gpio: 1 } } }), 'board x: inputs.button.gpio must be a whole number from 2 to 27 (got 1)'],
    ['gpio used twice', (d) => ({ ...d, outputs: { ...d.outputs, ledRed: { gpio: 17, activeLow: false, label: 'led-red' } } }), 'board x: outputs.ledRed.gpio uses GPIO 17, already used by inputs.button'],
    ['label used twice', (d) => ({ ...d, outputs: { ...d.outputs, ledRed: { gpio: 26, activeLow: false, label: 'led-green' } } }), 'board x: outputs.ledRed.label "led-green" is already the label of outputs.ledGreen'],
    ['label with a comma', (d) => ({ ...d, outputs: { ...d.outputs, ledRed: { gpio: 26, activeLow: false, label: 'red,trigger=cpu' } } }), 'board x: outputs.ledRed.label must be lower-case letters'],
    ['unknown input role', (d) => ({ ...d, inputs: { ...d.inputs, doorbell: {} } }), 'board x: inputs.doorbell is not a known key'],
    ['unknown input key', (d) => ({ ...d, inputs: { button: { ...d.inputs.button, bounce: 3 } } }), 'board x: inputs.button.bounce is not a known key'],
    ['bad polarity type', (d) => ({ ...d, inputs: { button: { ...d.inputs.button, activeLow: 'yes' } } }), 'board x: inputs.button.activeLow must be true or false (got "yes")'],
    ['bad pull', (d) => ({ ...d, inputs: { button: { ...d.inputs.button, pull: 'sideways' } } }), 'board x: inputs.button.pull must be one of "up", "down", "off" (got "sideways")'],
    ['debounce too long', (d) => ({ ...d, inputs: { button: { ...d.inputs.button, debounceMs: 500 } } }), 'board x: inputs.button.debounceMs must be a whole number from 0 to 100 (got 500)'],
    ['keycode out of range', (d) => ({ ...d, inputs: { button: { ...d.inputs.button, keycode: 1000 } } }), 'board x: inputs.button.keycode must be a whole number from 1 to 767 (got 1000)'],
    ['intercom without button', (d) => ({ ...d, inputs: {} }), 'board x: inputs.button is required by "mode": "intercom"'],
    ['intercom without relay', (d) => ({ ...d, outputs: { ledGreen: d.outputs.ledGreen } }), 'board x: outputs.relay is required by "mode": "intercom"'],
    ['handset without hook', (d) => ({ ...d, mode: 'handset' }), 'board x: inputs.hook is required by "mode": "handset"'],
    ['slic ringer without RM', (d) => ({ ...d, ringer: { mode: 'slic' } }), 'board x: outputs.ringMode is required by "ringer": {"mode": "slic"}'],
    ['bell ringer without bell', (d) => ({ ...d, ringer: { mode: 'bell' } }), 'board x: outputs.bell is required by "ringer": {"mode": "bell"}'],
    ['serial ringer on a gpio board', (d) => ({ ...d, ringer: { mode: 'serial' } }), 'board x: ringer.mode "serial" goes with "connection": "serial"'],
    ['ring frequency out of range', (d) => ({ ...d, ringer: { mode: 'sound', frequencyHz: 100 } }), 'board x: ringer.frequencyHz must be a whole number from 15 to 50 (got 100)'],
    ['bad card id', (d) => ({ ...d, audio: { card: 'hw:1' } }), 'board x: audio.card must be an ALSA card id'],
    ['missing audio', (d) => ({ ...d, audio: undefined }), 'board x: audio is missing'],
    ['serial section on a gpio board', (d) => ({ ...d, serial: { path: '/dev/ttyACM0', baudRate: 115200 } }), 'board x: serial is only for "connection": "serial"'],
    ['serial board with gpio inputs', (d) => ({ ...d, connection: 'serial', ringer: { mode: 'serial' } }), 'board x: inputs is only for "connection": "gpio"'],
    ['serial path not a device', () => ({ ...serialDoc(), serial: { path: 'COM3', baudRate: 115200 } }), 'board x: serial.path must be a device path'],
    ['serial without baud rate', () => ({ ...serialDoc(), serial: { path: '/dev/ttyACM0' } }), 'board x: serial.baudRate is missing'],
  ];
  for (const [name, mutate, expected] of cases) {
    const input = mutate(doc());
    const err = t.throws(() => parseBoardProfile(input, 'x'), BoardProfileError, name) as BoardProfileError;
    t.ok(err.message.startsWith(expected), `${name}: ${err.message}`);
    t.notOk(err.message.includes('\n'), `${name}: one line`);
    t.equal(err.code, 'BOARD_PROFILE_INVALID');
  }
});

function serialDoc(): Record<string, any> {
  return JSON.parse(readFileSync(join(registry.dir!, 'serial-handset.json'), 'utf8'));
}

t.test('offNormal without a pulse contact is refused', async (t) => {
  const d = JSON.parse(readFileSync(join(registry.dir!, 'pi-rotary-bell.json'), 'utf8'));
  delete d.inputs.pulse;
  const err = t.throws(() => parseBoardProfile(d, 'x')) as BoardProfileError;
  t.equal(err.key, 'inputs.offNormal');
  t.equal(err.message, 'board x: inputs.offNormal needs inputs.pulse (the off-normal contact belongs to a rotary dial)');
});

t.test('the registry loads user profiles by path and explains unknown names', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'board-'));
  const mine: BoardProfile = parseBoardProfile(doc(), 'x');
  writeFileSync(join(dir, 'mine.json'), JSON.stringify({ ...doc(), name: 'my-door' }));
  writeFileSync(join(dir, 'broken.json'), '{ "name": ');
  t.equal(registry.load(join(dir, 'mine.json')).name, 'my-door');
  t.equal(mine.outputs.relay?.gpio, 23);
  t.throws(() => registry.load('pi-nonesuch'), { message: /^board pi-nonesuch: is not a known board; known boards: pi-ag1171-handset, pi-intercom, pi-rotary-bell, serial-handset$/ });
  t.throws(() => registry.load(join(dir, 'broken.json')), { message: /is not valid JSON/ });
  t.throws(() => registry.load(join(dir, 'absent.json')), { message: /cannot be read from .*ENOENT/ });
  const other = new BoardRegistry(dir);
  t.same(other.names(), ['broken', 'mine']);
  const err = t.throws(() => other.load('mine')) as BoardProfileError;
  t.equal(err.key, 'name');
  t.equal(err.message, 'board mine: name must match the file name (got "my-door")');
});
