/**
 * The doctor's verdicts from canned probe results: the outputs of aplay/arecord, ss, ip, iw,
 * timedatectl, chronyc, gpiodetect and the /proc and /boot files, in the formats those tools print
 * (captured from the tools on Debian 12 and Raspberry Pi OS, or built to their documented format).
 */
import t from 'tap';
import { resolveConfig } from '../../src/config/config.ts';
import { BoardRegistry } from '../../src/hardware/board-registry.ts';
import { configTxtLines } from '../../src/hardware/board-profile.ts';
import { DEFAULT_CHIP_LABELS, parseGpiodetect } from '../../src/hardware/backends/gpiod.ts';
import { boardPaths, doctorChecks, type Check, type CommandOutput, type DoctorProbes } from '../../src/ops/doctor.ts';
import { isHookswitchRun, parseAlsaList, parseAlsaName, parseHwParamsRates, parseProcCards, parseSs, parseUsbStreamRates, upInterfaces } from '../../src/ops/doctor-parsers.ts';
import { formatChecks } from '../../src/cli/doctor-command.ts';

const out = (stdout: string, extra: Partial<CommandOutput> = {}): CommandOutput => ({ code: 0, stdout, stderr: '', ...extra });
const MISSING: CommandOutput = { code: null, stdout: '', stderr: 'not found', missing: true };
const failed = (stderr: string, code = 1): CommandOutput => ({ code, stdout: '', stderr });

/** `aplay -l` on a Raspberry Pi 4 (Bookworm) with a C-Media USB sound card. */
const APLAY_PI = `**** List of PLAYBACK Hardware Devices ****
card 0: Headphones [bcm2835 Headphones], device 0: bcm2835 Headphones [bcm2835 Headphones]
  Subdevices: 8/8
  Subdevice #0: subdevice #0
  Subdevice #1: subdevice #1
  Subdevice #2: subdevice #2
  Subdevice #3: subdevice #3
  Subdevice #4: subdevice #4
  Subdevice #5: subdevice #5
  Subdevice #6: subdevice #6
  Subdevice #7: subdevice #7
card 1: Device [USB PnP Sound Device], device 0: USB Audio [USB Audio]
  Subdevices: 1/1
  Subdevice #0: subdevice #0
card 2: vc4hdmi0 [vc4-hdmi-0], device 0: MAI PCM i2s-hifi-0 [MAI PCM i2s-hifi-0]
  Subdevices: 1/1
  Subdevice #0: subdevice #0
`;
/** `arecord -l` on the same Pi: only the USB card records. */
const ARECORD_PI = `**** List of CAPTURE Hardware Devices ****
card 1: Device [USB PnP Sound Device], device 0: USB Audio [USB Audio]
  Subdevices: 1/1
  Subdevice #0: subdevice #0
`;
/** `aplay -l` with no sound card (Debian 12, alsa-utils 1.2.8): exit 0, the note on stderr. */
const APLAY_NONE = out('', { stderr: 'aplay: device_list:274: no soundcards found...\n' });
const ARECORD_NONE = out('', { stderr: 'arecord: device_list:274: no soundcards found...\n' });
const PROC_CARDS = ` 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones
                      bcm2835 Headphones
 1 [Device         ]: USB-Audio - USB PnP Sound Device
                      C-Media Electronics Inc. USB PnP Sound Device at usb-0000:01:00.0-1.3, full speed
`;
/** `/proc/asound/card1/stream0` of the C-Media card (Linux sound/usb/proc.c). */
const STREAM_CMEDIA = `C-Media Electronics Inc. USB PnP Sound Device at usb-0000:01:00.0-1.3, full speed : USB Audio

Playback:
  Status: Stop
  Interface 1
    Altset 1
    Format: S16_LE
    Channels: 2
    Endpoint: 0x01 (1 OUT) (ADAPTIVE)
    Rates: 48000, 44100
    Bits: 16
    Channel map: FL FR

Capture:
  Status: Stop
  Interface 2
    Altset 1
    Format: S16_LE
    Channels: 1
    Endpoint: 0x82 (2 IN) (ADAPTIVE)
    Rates: 48000, 44100
    Bits: 16
    Channel map: MONO
`;
const STREAM_CONTINUOUS = STREAM_CMEDIA.replace('Rates: 48000, 44100\n    Bits: 16\n    Channel map: MONO', 'Rates: 8000 - 48000 (continuous)\n    Bits: 16\n    Channel map: MONO');
/** `aplay --dump-hw-params` on the Pi's headphone jack (stderr; alsa-lib snd_pcm_hw_params_dump). */
const HW_PARAMS_BCM = `Playing raw data '/dev/zero' : Signed 16 bit Little Endian, Rate 8000 Hz, Mono
HW Params of device "hw:CARD=Headphones,DEV=0":
--------------------
ACCESS:  MMAP_INTERLEAVED RW_INTERLEAVED
FORMAT:  U8 S16_LE
SUBFORMAT:  STD
SAMPLE_BITS: [8 16]
FRAME_BITS: [8 32]
CHANNELS: [1 2]
RATE: [8000 192000]
PERIOD_TIME: (156 1024000]
PERIOD_SIZE: [30 8192]
TICK_TIME: ALL
--------------------
`;
const HW_PARAMS_FIXED = HW_PARAMS_BCM.replace('RATE: [8000 192000]', 'RATE: 48000');
const HW_BUSY = 'arecord: main:850: audio open error: Device or resource busy\n';

/** `ss -Hlunp sport = :5060` lines as root (ss from iproute2 6.1). */
const SS_NODE = 'UNCONN 0      0      0.0.0.0:5060 0.0.0.0:* users:(("node",pid=25183,fd=20))\n';
const SS_ASTERISK = 'UNCONN 0      0      0.0.0.0:5060 0.0.0.0:* users:(("asterisk",pid=812,fd=17))\n';
const SS_UNNAMED = 'UNCONN 0      0      0.0.0.0:5060 0.0.0.0:*\n';
const SS_OTHER_ADDR = 'UNCONN 0      0      192.168.1.50:5060 0.0.0.0:* users:(("baresip",pid=700,fd=9))\n';
const SS_V6 = 'UNCONN 0      0      [::]:5060 [::]:* users:(("kamailio",pid=990,fd=5),("kamailio",pid=991,fd=5))\n';
const SS_MDNS = 'UNCONN 0      0      0.0.0.0:5353 0.0.0.0:* users:(("avahi-daemon",pid=402,fd=12))\nUNCONN 0      0      127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=300,fd=13))\n';

/** `ip -j addr` and `ip -j route` of the test machine (iproute2 6.1). */
const IP_ADDR = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], operstate: 'UNKNOWN', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
  { ifindex: 2, ifname: 'ifb0', flags: ['BROADCAST', 'NOARP'], operstate: 'DOWN', addr_info: [] },
  {
    ifindex: 4, ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], operstate: 'UP',
    addr_info: [
      { family: 'inet', local: '192.0.2.2', prefixlen: 24, broadcast: '192.0.2.255', scope: 'global', label: 'eth0' },
      { family: 'inet6', local: 'fd00::2', prefixlen: 64, scope: 'global' },
      { family: 'inet6', local: 'fe80::fc:ff:fe00:1', prefixlen: 64, scope: 'link' },
    ],
  },
]);
const IP_ADDR_NOMULTICAST = IP_ADDR.replace('"BROADCAST","MULTICAST","UP"', '"BROADCAST","UP"');
const IP_ADDR_NONE = JSON.stringify([{ ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] }]);
const IP_ROUTE = '[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2","flags":[]}]\n';
const IP_ROUTE_LAN = '[{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2","flags":[]}]\n';
/** `gpiodetect` on a Pi 4 (libgpiod 1.6) and on a PC (no Pi pin controller). */
const GPIODETECT_PI4 = 'gpiochip0 [pinctrl-bcm2711] (58 lines)\ngpiochip1 [raspberrypi-exp-gpio] (8 lines)\n';
const CHRONY_NORMAL = 'Reference ID    : C0A80101 (192.168.1.1)\nStratum         : 3\nLeap status     : Normal\n';
const CHRONY_UNSYNC = 'Reference ID    : 00000000 ()\nStratum         : 0\nLeap status     : Not synchronised\n';

const NOW = Date.UTC(2026, 5, 1, 12);
const registry = new BoardRegistry();

/** A healthy Pi: free ports, network, NTP, no Wi-Fi, the C-Media card, the daemon answering. */
function base(config: unknown = {}): DoctorProbes {
  const c = resolveConfig(config);
  return {
    config: c,
    configSource: '/etc/hookswitch/config.json',
    configProblems: [],
    now: NOW,
    sip: c.sip.transports.map((transport) => ({ transport, bind: c.sip.bind, port: c.sip.port, ss: out(''), cmdlines: {} })),
    audio: { aplay: out(APLAY_PI), arecord: out(ARECORD_PI), procCards: PROC_CARDS, streams: { 1: STREAM_CMEDIA }, hwParams: {} },
    board: { known: registry.names(), exists: {}, serialById: [], chipLabels: DEFAULT_CHIP_LABELS },
    wifi: { interfaces: [], powerSave: {} },
    network: { addr: out(IP_ADDR), route: out(IP_ROUTE) },
    clock: { timedatectl: out('yes\n'), timesyncFlag: true, chrony: MISSING },
    mdns: { avahi: out('402\n'), ss: out(SS_MDNS) },
    daemon: { socket: '/run/hookswitch/control.sock', reply: { ok: true, state: 'idle' }, pid: 4242 },
  };
}

/** Probes for a board: its profile loaded, `present` paths existing, config.txt holding `lines`. */
function withBoard(p: DoctorProbes, name: string, present: 'all' | 'none', lines: string[] | undefined): DoctorProbes {
  const profile = registry.load(name);
  p.config.board = name;
  p.board.profile = profile;
  for (const x of boardPaths(profile, p.config)) p.board.exists[x.path] = present === 'all';
  if (lines) p.board.configTxt = { path: '/boot/firmware/config.txt', text: `# For more options see config.txt(5)\ndtparam=audio=on\n[all]\n${lines.join('\n')}\n` };
  return p;
}

const ALSA_CMEDIA = { audio: { backend: 'alsa', capture: 'plughw:CARD=Device,DEV=0', playback: 'plughw:CARD=Device,DEV=0' } };

function find(checks: Check[], name: string): Check {
  const c = checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check named ${name} in: ${checks.map((x) => x.name).join(', ')}`);
  return c;
}

t.test('parsers read the tools\' formats', async (t) => {
  t.same(parseAlsaList(APLAY_PI), [
    { index: 0, id: 'Headphones', name: 'bcm2835 Headphones', devices: [0] },
    { index: 1, id: 'Device', name: 'USB PnP Sound Device', devices: [0] },
    { index: 2, id: 'vc4hdmi0', name: 'vc4-hdmi-0', devices: [0] },
  ]);
  t.same(parseAlsaList(APLAY_NONE.stdout), []);
  t.same(parseProcCards(PROC_CARDS).map((c) => [c.index, c.id, c.name]), [[0, 'Headphones', 'bcm2835 Headphones'], [1, 'Device', 'USB PnP Sound Device']]);
  const names: [string, ReturnType<typeof parseAlsaName>][] = [
    ['plughw:CARD=Device,DEV=0', { card: 'Device', device: 0, strict: false }],
    ['hw:CARD=Device,DEV=1', { card: 'Device', device: 1, strict: true }],
    ['hw:1,0', { card: '1', device: 0, strict: true }],
    ['plughw:Device', { card: 'Device', device: 0, strict: false }],
    ['sysdefault:CARD=Device', { card: 'Device', device: 0, strict: false }],
    ['default', { device: 0, strict: false }],
    ['pulse', { device: 0, strict: false }],
  ];
  for (const [name, want] of names) t.same(parseAlsaName(name), want, name);
  t.same(parseHwParamsRates(HW_PARAMS_BCM), { min: 8000, max: 192000 });
  t.same(parseHwParamsRates(HW_PARAMS_FIXED), { list: [48000] });
  t.same(parseHwParamsRates('RATE: (44099 48001)\n'), { min: 44100, max: 48000 }, 'open interval ends are excluded');
  t.equal(parseHwParamsRates(HW_BUSY), undefined);
  t.same(parseUsbStreamRates(STREAM_CMEDIA, 'capture'), { list: [44100, 48000] });
  t.same(parseUsbStreamRates(STREAM_CONTINUOUS, 'capture'), { min: 8000, max: 48000 });
  t.same(parseUsbStreamRates(STREAM_CONTINUOUS, 'playback'), { list: [44100, 48000] });
  t.equal(parseUsbStreamRates('Playback:\n    Rates: 48000\n', 'capture'), undefined);
  t.same(parseSs(SS_V6), [{ address: '[::]', port: 5060, processes: [{ name: 'kamailio', pid: 990 }, { name: 'kamailio', pid: 991 }] }]);
  t.same(parseSs(SS_MDNS).map((l) => [l.address, l.port, l.processes[0]?.name]), [['0.0.0.0', 5353, 'avahi-daemon'], ['127.0.0.53', 53, 'systemd-resolve']]);
  t.same(parseSs(SS_UNNAMED), [{ address: '0.0.0.0', port: 5060, processes: [] }]);
  t.same(upInterfaces(IP_ADDR), [{ ifname: 'eth0', multicast: true, addresses: ['192.0.2.2/24', 'fd00::2/64'] }], 'up, not loopback, global addresses only');
  t.same(upInterfaces('Error: ...'), []);
  const runs: [string[], boolean][] = [
    [['/usr/bin/node', '/usr/lib/hookswitch/hookswitch.mjs', 'run'], true],
    [['node', '--import', 'tsx', '/home/pi/hookswitch/src/cli/main.ts', 'run', '--sim'], true],
    [['/usr/bin/hookswitch', 'doctor'], false],
    [['node', '/home/runner/hookswitch/test/ops/doctor-run.ts'], false],
  ];
  for (const [argv, want] of runs) t.equal(isHookswitchRun(argv), want, argv.join(' '));
});

type Case = [name: string, probes: () => DoctorProbes, check: string, level: Check['level'], detail: RegExp, fix?: RegExp];

const cases: Case[] = [
  ['port free', () => base(), 'sip port udp 0.0.0.0:5060', 'ok', /^free$/],
  ['port held by another process, named', () => {
    const p = base();
    Object.assign(p.sip[0]!, { bindError: 'EADDRINUSE', ss: out(SS_ASTERISK), cmdlines: { 812: ['/usr/sbin/asterisk', '-f'] } });
    p.daemon = { socket: '/run/hookswitch/control.sock', error: 'hookswitch is not running' };
    return p;
  }, 'sip port udp 0.0.0.0:5060', 'fail', /in use by asterisk \(pid 812\) on 0\.0\.0\.0/, /stop asterisk \(sudo kill 812.*sip\.port/],
  ['port held by the running hookswitch', () => {
    const p = base();
    Object.assign(p.sip[0]!, { bindError: 'EADDRINUSE', ss: out(SS_NODE), cmdlines: { 25183: ['node', '/usr/lib/hookswitch/hookswitch.mjs', 'run'] } });
    return p;
  }, 'sip port udp 0.0.0.0:5060', 'ok', /held by hookswitch \(node, pid 25183\)/],
  ['port held by the process listening on the control socket', () => {
    const p = base();
    Object.assign(p.sip[1]!, { bindError: 'EADDRINUSE', ss: out(SS_NODE.replace('UNCONN', 'LISTEN').replace('25183', '4242')), cmdlines: {} });
    return p;
  }, 'sip port tcp 0.0.0.0:5060', 'ok', /held by hookswitch \(node, pid 4242\)/],
  ['port held by a process ss cannot name, no daemon', () => {
    const p = base();
    Object.assign(p.sip[0]!, { bindError: 'EADDRINUSE', ss: out(SS_UNNAMED) });
    p.daemon = { socket: '/run/hookswitch/control.sock', error: 'no control socket' };
    return p;
  }, 'sip port udp 0.0.0.0:5060', 'fail', /another user's process/, /sudo hookswitch doctor/],
  ['port held by a process ss cannot name, daemon up', () => {
    const p = base();
    Object.assign(p.sip[0]!, { bindError: 'EADDRINUSE', ss: out(SS_UNNAMED) });
    return p;
  }, 'sip port udp 0.0.0.0:5060', 'ok', /most likely by the running hookswitch/],
  ['port held by another user while the daemon socket refuses this user', () => {
    const p = base();
    Object.assign(p.sip[0]!, { bindError: 'EADDRINUSE', ss: out(SS_UNNAMED) });
    p.daemon = { socket: '/run/hookswitch/control.sock', error: 'connect EACCES /run/hookswitch/control.sock' };
    return p;
  }, 'sip port udp 0.0.0.0:5060', 'ok', /most likely by the running hookswitch/],
  ['a wildcard holder conflicts with a specific bind', () => {
    const p = base({ sip: { bind: '192.168.1.50' } });
    Object.assign(p.sip[0]!, { bindError: 'EADDRINUSE', ss: out(SS_V6 + SS_OTHER_ADDR) });
    p.daemon = { socket: 's', error: 'no control socket' };
    return p;
  }, 'sip port udp 192.168.1.50:5060', 'fail', /kamailio \(pid 990\) on \[::\], kamailio \(pid 991\) on \[::\], baresip \(pid 700\) on 192\.168\.1\.50/],
  ['ss missing', () => {
    const p = base();
    Object.assign(p.sip[0]!, { bindError: 'EADDRINUSE', ss: MISSING });
    p.daemon = { socket: 's', error: 'no control socket' };
    return p;
  }, 'sip port udp 0.0.0.0:5060', 'fail', /in use by another process/, /sudo apt install iproute2/],
  ['privileged port', () => {
    const p = base({ sip: { port: 506 } });
    p.sip[0]!.bindError = 'EACCES';
    return p;
  }, 'sip port udp 0.0.0.0:506', 'fail', /below 1024/, /1024 or above/],
  ['address not on this machine', () => {
    const p = base({ sip: { bind: '10.9.9.9' } });
    p.sip[0]!.bindError = 'EADDRNOTAVAIL';
    return p;
  }, 'sip port udp 10.9.9.9:5060', 'fail', /not an address of this machine/, /sip\.bind/],

  ['no sound cards, null backend', () => {
    const p = base();
    Object.assign(p.audio, { aplay: APLAY_NONE, arecord: ARECORD_NONE, procCards: undefined, streams: {} });
    return p;
  }, 'sound cards', 'warn', /^no sound cards \(audio\.backend is "null"/, /audio\.backend to "alsa"/],
  ['no sound cards, alsa backend', () => {
    const p = base(ALSA_CMEDIA);
    Object.assign(p.audio, { aplay: APLAY_NONE, arecord: ARECORD_NONE, streams: {} });
    return p;
  }, 'audio capture plughw:CARD=Device,DEV=0', 'fail', /card Device is not present/, /no sound cards/],
  ['cards listed', () => base(ALSA_CMEDIA), 'sound cards', 'ok', /0 Headphones \[bcm2835 Headphones\] \(playback\); 1 Device \[USB PnP Sound Device\] \(playback, capture\); 2 vc4hdmi0/],
  ['configured card present', () => base(ALSA_CMEDIA), 'audio capture plughw:CARD=Device,DEV=0', 'ok', /card 1 Device \[USB PnP Sound Device\]/],
  ['configured card missing, others present', () => base({ audio: { ...ALSA_CMEDIA.audio, playback: 'plughw:CARD=Set,DEV=0' } }), 'audio playback plughw:CARD=Set,DEV=0', 'fail', /card Set is not present/, /one of plughw:CARD=Headphones,DEV=0, plughw:CARD=Device,DEV=0, plughw:CARD=vc4hdmi0,DEV=0/],
  ['card without a capture device', () => base({ audio: { ...ALSA_CMEDIA.audio, capture: 'plughw:CARD=Headphones,DEV=0' } }), 'audio capture plughw:CARD=Headphones,DEV=0', 'fail', /card Headphones has no capture device/, /plughw:CARD=Device,DEV=0/],
  ['card by number', () => base({ audio: { ...ALSA_CMEDIA.audio, capture: 'plughw:1,0' } }), 'audio capture plughw:1,0', 'warn', /named by number/, /plughw:CARD=Device,DEV=0/],
  ['alsa-utils missing: /proc/asound/cards lists the cards', () => {
    const p = base(ALSA_CMEDIA);
    Object.assign(p.audio, { aplay: MISSING, arecord: MISSING });
    return p;
  }, 'alsa-utils', 'fail', /aplay\/arecord not found/, /sudo apt install alsa-utils/],
  ['rate the USB card takes', () => base(ALSA_CMEDIA), 'audio capture rate 48000 Hz', 'ok', /takes 44100, 48000 Hz/],
  ['rate the USB card lacks, plug converts', () => base({ audio: { ...ALSA_CMEDIA.audio, rate: 16000 } }), 'audio playback rate 16000 Hz', 'warn', /takes 44100, 48000 Hz, not 16000: ALSA's plug layer resamples/, /audio\.rate to 44100/],
  ['rate the card lacks on hw:', () => base({ audio: { ...ALSA_CMEDIA.audio, capture: 'hw:CARD=Device,DEV=0', rate: 8000 } }), 'audio capture rate 8000 Hz', 'fail', /does not convert/, /audio\.rate to 44100, or use plughw:CARD=Device,DEV=0/],
  ['continuous range takes the rate', () => {
    const p = base({ audio: { ...ALSA_CMEDIA.audio, rate: 16000 } });
    p.audio.streams[1] = STREAM_CONTINUOUS;
    return p;
  }, 'audio capture rate 16000 Hz', 'ok', /takes 8000 to 48000 Hz/],
  ['non-USB card: rates from --dump-hw-params', () => {
    const p = base({ audio: { ...ALSA_CMEDIA.audio, playback: 'plughw:CARD=Headphones,DEV=0', rate: 16000 } });
    p.audio.hwParams.playback = failed(HW_PARAMS_BCM);
    return p;
  }, 'audio playback rate 16000 Hz', 'ok', /card Headphones takes 8000 to 192000 Hz/],
  ['fixed-rate card', () => {
    const p = base({ audio: { ...ALSA_CMEDIA.audio, playback: 'hw:CARD=Headphones,DEV=0', rate: 16000 } });
    p.audio.hwParams.playback = failed(HW_PARAMS_FIXED);
    return p;
  }, 'audio playback rate 16000 Hz', 'fail', /takes 48000 Hz, not 16000/, /audio\.rate to 48000/],
  ['busy card', () => {
    const p = base({ audio: { ...ALSA_CMEDIA.audio, capture: 'plughw:CARD=Headphones,DEV=0' } });
    p.audio.arecord = out(APLAY_PI.replace('PLAYBACK', 'CAPTURE'));
    p.audio.hwParams.capture = failed(HW_BUSY);
    return p;
  }, 'audio capture rate 48000 Hz', 'ok', /busy/],
  ['rate probe timed out', () => {
    const p = base({ audio: { ...ALSA_CMEDIA.audio, capture: 'plughw:CARD=Headphones,DEV=0' } });
    p.audio.arecord = out(APLAY_PI.replace('PLAYBACK', 'CAPTURE'));
    p.audio.hwParams.capture = { code: null, stdout: '', stderr: '', timedOut: true };
    return p;
  }, 'audio capture rate 48000 Hz', 'warn', /the probe timed out/, /arecord -D hw:CARD=Headphones --dump-hw-params/],
  ['card-less name, board card absent', () => {
    const p = withBoard(base({ audio: { backend: 'alsa', capture: 'default', playback: 'default' } }), 'pi-intercom', 'all', configTxtLines(registry.load('pi-intercom')));
    Object.assign(p.audio, { aplay: APLAY_NONE, arecord: ARECORD_NONE });
    return p;
  }, 'audio capture default', 'warn', /board pi-intercom expects card Device, which is not present/, /plug in card Device/],

  ['no board', () => base(), 'board', 'warn', /none configured/, /pi-ag1171-handset, pi-intercom, pi-rotary-bell, serial-handset/],
  ['unknown board', () => {
    const p = base();
    p.config.board = 'pi-nope';
    p.board.error = 'board pi-nope: is not a known board; known boards: pi-ag1171-handset';
    return p;
  }, 'board pi-nope', 'fail', /is not a known board/, /hookswitch board list/],
  ['overlays and devices present', () => withBoard(base(), 'pi-intercom', 'all', configTxtLines(registry.load('pi-intercom'))), 'board devices', 'ok', /4 present \(button, relay, ledGreen, ledRed\)/],
  ['overlay lines missing', () => withBoard(base(), 'pi-intercom', 'none', configTxtLines(registry.load('pi-intercom')).slice(0, 2)), 'board overlays', 'fail', /2 of 4 dtoverlay lines missing/, /^add these lines to \/boot\/firmware\/config\.txt and reboot.*\ndtoverlay=gpio-led,gpio=24,label=led-green\ndtoverlay=gpio-led,gpio=25,label=led-red$/],
  ['a commented-out overlay line does not count', () => withBoard(base(), 'pi-ag1171-handset', 'none', configTxtLines(registry.load('pi-ag1171-handset')).map((l, i) => (i === 0 ? `#${l}` : l))), 'board overlays', 'fail', /1 of 3 dtoverlay lines missing/],
  ['devices missing though config.txt has the lines: reboot', () => withBoard(base(), 'pi-ag1171-handset', 'none', configTxtLines(registry.load('pi-ag1171-handset'))), 'board devices', 'fail', /missing: hook \/dev\/input\/by-path\/platform-button@11-event, ringMode \/sys\/class\/leds\/slic-rm, forwardReverse \/sys\/class\/leds\/slic-fr/, /^reboot/],
  ['not a Pi: no config.txt', () => withBoard(base(), 'pi-ag1171-handset', 'none', undefined), 'board overlays', 'fail', /no \/boot\/firmware\/config\.txt/, /hardware\.backend to "gpiod"/],
  ['serial port present', () => withBoard(base(), 'serial-handset', 'all', undefined), 'serial port /dev/serial/by-id/usb-hookswitch_handset_0001-if00', 'ok', /present/],
  ['serial port missing, others plugged in', () => {
    const p = withBoard(base(), 'serial-handset', 'none', undefined);
    p.board.serialById = ['usb-Arduino__www.arduino.cc__0043_75735323-if00'];
    return p;
  }, 'serial port /dev/serial/by-id/usb-hookswitch_handset_0001-if00', 'fail', /not present/, /hardware\.serialPort to one of \/dev\/serial\/by-id\/usb-Arduino__www\.arduino\.cc__0043_75735323-if00/],
  ['serial port missing, nothing plugged in', () => withBoard(base(), 'serial-handset', 'none', undefined), 'serial port /dev/serial/by-id/usb-hookswitch_handset_0001-if00', 'fail', /not present/, /\/dev\/serial\/by-id is empty/],
  ['serial port not writable', () => {
    const p = withBoard(base(), 'serial-handset', 'all', undefined);
    p.board.serialWritable = false;
    return p;
  }, 'serial port /dev/serial/by-id/usb-hookswitch_handset_0001-if00', 'warn', /cannot open it/, /dialout/],
  ['gpiod: the Pi 4 chip', () => {
    const p = withBoard(base({ hardware: { backend: 'gpiod' } }), 'pi-rotary-bell', 'none', []);
    p.board.chips = parseGpiodetect(GPIODETECT_PI4);
    return p;
  }, 'gpio chip', 'ok', /gpiochip0 \[pinctrl-bcm2711\]/],
  ['gpiod: no Pi chip', () => {
    const p = withBoard(base({ hardware: { backend: 'gpiod' } }), 'pi-rotary-bell', 'none', []);
    p.board.chips = [];
    return p;
  }, 'gpio chip', 'fail', /no chip labelled pinctrl-rp1 or pinctrl-bcm2711 or pinctrl-bcm2835 \(found: no GPIO chips\)/],
  ['gpiod: tools missing', () => withBoard(base({ hardware: { backend: 'gpiod' } }), 'pi-rotary-bell', 'none', []), 'gpio chip', 'fail', /gpiodetect not found/, /sudo apt install gpiod/],
  ['gpiod: overlays claim the pins', () => {
    const p = withBoard(base({ hardware: { backend: 'gpiod' } }), 'pi-rotary-bell', 'none', configTxtLines(registry.load('pi-rotary-bell')));
    p.board.chips = [{ name: 'gpiochip0', label: 'pinctrl-bcm2711' }];
    return p;
  }, 'board overlays', 'warn', /claims 4 of the board's pins/, /remove those dtoverlay lines/],

  ['wifi power saving on', () => {
    const p = base();
    p.wifi = { interfaces: ['wlan0'], powerSave: { wlan0: out('Power save: on\n') } };
    return p;
  }, 'wifi wlan0 power saving', 'warn', /^on: /, /sudo iw wlan0 set power_save off/],
  ['wifi power saving off', () => {
    const p = base();
    p.wifi = { interfaces: ['wlan0'], powerSave: { wlan0: out('Power save: off\n') } };
    return p;
  }, 'wifi wlan0 power saving', 'ok', /^off$/],
  ['iw missing', () => {
    const p = base();
    p.wifi = { interfaces: ['wlan0'], powerSave: { wlan0: MISSING } };
    return p;
  }, 'wifi wlan0 power saving', 'warn', /iw is not installed/, /sudo apt install iw/],
  ['no wifi', () => base(), 'wifi power saving', 'ok', /no Wi-Fi interface/],

  ['address', () => base(), 'network address', 'ok', /^eth0 192\.0\.2\.2\/24 fd00::2\/64$/],
  ['no address', () => {
    const p = base();
    p.network.addr = out(IP_ADDR_NONE);
    return p;
  }, 'network address', 'fail', /no interface has an IP address/, /nmtui/],
  ['default route', () => base(), 'default route', 'ok', /via 192\.0\.2\.1 dev eth0/],
  ['no default route, no trunks', () => {
    const p = base();
    p.network.route = out(IP_ROUTE_LAN);
    return p;
  }, 'default route', 'warn', /only the local network/],
  ['no default route with a trunk', () => {
    const p = base({ trunks: [{ name: 'up', host: 'sip.example.net', username: 'u', password: 'secret' }] });
    p.network.route = out(IP_ROUTE_LAN);
    return p;
  }, 'default route', 'fail', /not the 1 trunk/],

  ['timedatectl: synchronised', () => base(), 'clock', 'ok', /synchronised \(2026-06-01T12:00:00Z\)/],
  ['timedatectl: not synchronised', () => {
    const p = base();
    p.clock.timedatectl = out('no\n');
    return p;
  }, 'clock', 'warn', /not synchronised/, /timedatectl set-ntp true/],
  ['no systemd: chrony normal', () => {
    const p = base();
    p.clock = { timedatectl: failed('System has not been booted with systemd as init system (PID 1). Can\'t operate.\n'), timesyncFlag: false, chrony: out(CHRONY_NORMAL) };
    return p;
  }, 'clock', 'ok', /synchronised/],
  ['no systemd: chrony unsynchronised', () => {
    const p = base();
    p.clock = { timedatectl: MISSING, timesyncFlag: false, chrony: out(CHRONY_UNSYNC) };
    return p;
  }, 'clock', 'warn', /not synchronised/],
  ['nothing tells', () => {
    const p = base();
    p.clock = { timedatectl: MISSING, timesyncFlag: false, chrony: MISSING };
    return p;
  }, 'clock', 'warn', /cannot tell/],
  ['clock in 1970', () => {
    const p = base();
    p.now = 0;
    return p;
  }, 'clock', 'fail', /1970-01-01T00:00:00Z/, /NTP/],

  ['mdns healthy', () => base(), 'mdns', 'ok', /multicast on eth0; avahi-daemon running .*port 5353: avahi-daemon \(pid 402\)/],
  ['mdns without avahi', () => {
    const p = base();
    p.mdns = { avahi: failed('', 1), ss: out('') };
    return p;
  }, 'mdns', 'ok', /avahi-daemon not running \(hookswitch answers mDNS itself\)$/],
  ['no multicast', () => {
    const p = base();
    p.network.addr = out(IP_ADDR_NOMULTICAST);
    return p;
  }, 'mdns', 'warn', /eth0 lack MULTICAST/, /ip link set eth0 multicast on/],

  ['daemon running', () => base(), 'daemon', 'ok', /running, answers on \/run\/hookswitch\/control\.sock \(pid 4242\): state idle/],
  ['daemon not running', () => {
    const p = base();
    p.daemon = { socket: '/run/hookswitch/control.sock', error: 'hookswitch is not running (no daemon on /run/hookswitch/control.sock)' };
    return p;
  }, 'daemon', 'warn', /not running/, /systemctl start hookswitch/],
  ['daemon socket not permitted', () => {
    const p = base();
    p.daemon = { socket: '/run/hookswitch/control.sock', error: 'connect EACCES /run/hookswitch/control.sock' };
    return p;
  }, 'daemon', 'warn', /permission denied/, /hookswitch group/],
  ['daemon answers with an error', () => {
    const p = base();
    p.daemon = { socket: 's', reply: { ok: false, error: 'no device' } };
    return p;
  }, 'daemon', 'fail', /answers with an error: no device/, /journalctl/],
  ['invalid config', () => {
    const p = base();
    p.configProblems = ['sip.port must be <= 65535 (got 70000)'];
    return p;
  }, 'config', 'fail', /is invalid.*\nconfig: sip\.port must be <= 65535 \(got 70000\)/],
];

t.test('verdicts', async (t) => {
  for (const [name, probes, check, level, detail, fix] of cases) {
    const c = find(doctorChecks(probes()), check);
    t.equal(c.level, level, `${name}: ${level}`);
    t.match(c.detail, detail, `${name}: detail`);
    if (fix) t.match(c.fix ?? '', fix, `${name}: fix`);
    else if (level === 'ok') t.equal(c.fix, undefined, `${name}: no fix on OK`);
  }
});

t.test('every non-OK verdict of the table carries a fix', async (t) => {
  for (const [name, probes] of cases) {
    for (const c of doctorChecks(probes())) if (c.level !== 'ok') t.ok(c.fix, `${name}: ${c.name} has a fix`);
  }
});

t.test('the healthy Pi passes', async (t) => {
  const checks = doctorChecks(withBoard(base(ALSA_CMEDIA), 'pi-ag1171-handset', 'all', configTxtLines(registry.load('pi-ag1171-handset'))));
  t.same(checks.filter((c) => c.level !== 'ok'), []);
  t.same(checks.map((c) => c.name), [
    'config', 'daemon', 'sip port udp 0.0.0.0:5060', 'sip port tcp 0.0.0.0:5060', 'network address', 'default route', 'clock', 'wifi power saving', 'mdns',
    'sound cards', 'audio capture plughw:CARD=Device,DEV=0', 'audio capture rate 48000 Hz', 'audio playback plughw:CARD=Device,DEV=0', 'audio playback rate 48000 Hz',
    'board pi-ag1171-handset', 'board overlays', 'board devices',
  ]);
});

t.test('the text report: a line per check, the fix indented under it', async (t) => {
  const text = formatChecks([
    { name: 'sip port udp 0.0.0.0:5060', level: 'ok', detail: 'free' },
    { name: 'board overlays', level: 'fail', detail: '1 of 3 missing', fix: 'add to config.txt:\ndtoverlay=gpio-key,gpio=17' },
    { name: 'config', level: 'warn', detail: 'first\nsecond' },
  ]);
  t.equal(text, [
    'OK   sip port udp 0.0.0.0:5060  free',
    'FAIL board overlays  1 of 3 missing',
    '     fix: add to config.txt:',
    '       dtoverlay=gpio-key,gpio=17',
    'WARN config  first',
    '     second',
    '1 OK, 1 WARN, 1 FAIL',
    '',
  ].join('\n'));
});
