/**
 * `hookswitch doctor`'s verdicts: each check turns what the probes found (command outputs, files,
 * a bind attempt; see doctor-probes.ts) into OK, WARN or FAIL with the reason and the fix. Pure:
 * no processes, files or clocks; the probes pass `now` and every output in.
 */
import type { Config } from '../config/config.ts';
import { configTxtLines, type BoardProfile } from '../hardware/board-profile.ts';
import type { InputRole, OutputRole } from '../hardware/types.ts';
import { isHookswitchRun, parseAlsaList, parseAlsaName, parseHwParamsRates, parseJsonList, parseProcCards, parseSs, parseUsbStreamRates, upInterfaces, type AlsaCard, type Direction, type IpRouteEntry, type RateSet } from './doctor-parsers.ts';

export type { Direction };

/** How bad a finding is: `fail` makes `doctor` exit 1. */
export type Level = 'ok' | 'warn' | 'fail';

/** One finding: what was checked, the verdict, what was seen and, unless OK, how to fix it. */
export interface Check {
  name: string;
  level: Level;
  detail: string;
  fix?: string;
}

/** What a command printed. `missing`: the program is not installed; `timedOut`: it was killed. */
export interface CommandOutput {
  code: number | null;
  stdout: string;
  stderr: string;
  missing?: boolean;
  timedOut?: boolean;
}

/** A SIP listening port: whether it could be bound, and who holds it. */
export interface PortProbe {
  transport: 'udp' | 'tcp' | 'tls';
  bind: string;
  port: number;
  /** The errno code of binding it (`EADDRINUSE`, `EACCES`, ...); undefined when the bind succeeded. */
  bindError?: string;
  /** `ss -Hl{u,t}np sport = :PORT`. */
  ss: CommandOutput;
  /** `/proc/PID/cmdline` of each process `ss` names. */
  cmdlines: Record<number, string[]>;
}

/** The sound cards and, for the configured card, the rates it takes. */
export interface AudioProbe {
  /** `aplay -l` and `arecord -l`. */
  aplay: CommandOutput;
  arecord: CommandOutput;
  /** `/proc/asound/cards`, the fallback list when alsa-utils is missing. */
  procCards?: string;
  /** `/proc/asound/card<N>/stream0` of USB cards, by card index. */
  streams: Record<number, string>;
  /** `arecord`/`aplay --dump-hw-params` on the configured card's `hw:` device. */
  hwParams: Partial<Record<Direction, CommandOutput>>;
}

/** The board's files and devices. */
export interface BoardProbe {
  /** The profile `board` names, or why it could not be loaded. */
  profile?: BoardProfile;
  error?: string;
  /** The shipped profile names, for the fix when none is configured. */
  known: string[];
  /** `/boot/firmware/config.txt` (or `/boot/config.txt`), when one exists. */
  configTxt?: { path: string; text: string };
  /** Whether each path of {@link boardPaths} exists. */
  exists: Record<string, boolean>;
  /** Whether the serial port can be opened for reading and writing by this user. */
  serialWritable?: boolean;
  /** Entries of `/dev/serial/by-id`. */
  serialById: string[];
  /** `gpiodetect` chips (gpiod backend): undefined when gpiodetect is missing. */
  chips?: { name: string; label: string }[];
  /** The chip labels the gpiod backend accepts. */
  chipLabels: readonly string[];
}

/** Everything the checks look at. */
export interface DoctorProbes {
  config: Config;
  /** Where the config came from (a path, or "embedded defaults"), and its problems when invalid. */
  configSource: string;
  configProblems: string[];
  now: number;
  sip: PortProbe[];
  audio: AudioProbe;
  board: BoardProbe;
  /** Wireless interfaces (`/sys/class/net/*\/wireless`) and `iw dev IF get power_save` of each. */
  wifi: { interfaces: string[]; powerSave: Record<string, CommandOutput> };
  /** `ip -j addr` and `ip -j route`. */
  network: { addr: CommandOutput; route: CommandOutput };
  /** `timedatectl show -p NTPSynchronized --value`, systemd-timesyncd's flag file, `chronyc -n tracking`. */
  clock: { timedatectl: CommandOutput; timesyncFlag: boolean; chrony: CommandOutput };
  /** `pgrep -x avahi-daemon` and `ss -Hlunp sport = :5353`. */
  mdns: { avahi: CommandOutput; ss: CommandOutput };
  /** The control socket asked for `status`: the reply, or why there was none; the pid listening on it. */
  daemon: { socket: string; reply?: Record<string, unknown>; error?: string; pid?: number };
}

/** Known tools and the Debian package that brings each. */
const PACKAGES: Record<string, string> = { aplay: 'alsa-utils', arecord: 'alsa-utils', ss: 'iproute2', ip: 'iproute2', iw: 'iw', gpiodetect: 'gpiod', timedatectl: 'systemd', pgrep: 'procps' };
const install = (tool: string): string => `install ${tool}: sudo apt install ${PACKAGES[tool] ?? tool}`;
/** A Pi without a real-time clock boots at its last saved time or 1970; anything before this is wrong. */
const CLOCK_FLOOR = Date.UTC(2025, 0, 1);
const WILDCARDS = new Set(['0.0.0.0', '*', '::', '[::]']);

const firstLine = (s: string): string => s.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
const showRates = (r: RateSet): string => ('list' in r ? r.list.join(', ') : `${r.min} to ${r.max}`);
const takes = (r: RateSet, rate: number): boolean => ('list' in r ? r.list.includes(rate) : rate >= r.min && rate <= r.max);
const overlaps = (a: string, b: string): boolean => a === b || WILDCARDS.has(a) || WILDCARDS.has(b) || a.replace(/^\[|\]$/g, '') === b.replace(/^\[|\]$/g, '');

function configCheck(p: DoctorProbes): Check {
  if (p.configProblems.length === 0) return { name: 'config', level: 'ok', detail: p.configSource };
  return {
    name: 'config',
    level: 'fail',
    detail: `${p.configSource} is invalid (the checks below use the embedded defaults):\n${p.configProblems.map((l) => `config: ${l}`).join('\n')}`,
    fix: 'correct the keys named above; the daemon refuses to start until then',
  };
}

function daemonCheck(p: DoctorProbes): Check {
  const d = p.daemon;
  if (d.reply?.ok === true) {
    const state = ['state', 'phone', 'registrations'].map((k) => (d.reply?.[k] ? `${k} ${String(d.reply[k])}` : '')).filter(Boolean).join(', ');
    return { name: 'daemon', level: 'ok', detail: `running, answers on ${d.socket}${d.pid ? ` (pid ${d.pid})` : ''}${state ? `: ${state}` : ''}` };
  }
  if (d.reply) return { name: 'daemon', level: 'fail', detail: `${d.socket} answers with an error: ${String(d.reply.error ?? 'unknown')}`, fix: 'restart it: sudo systemctl restart hookswitch; then read journalctl -u hookswitch' };
  if (/EACCES|permission denied/i.test(d.error ?? '')) {
    return { name: 'daemon', level: 'warn', detail: `cannot open ${d.socket}: permission denied`, fix: 'run as root, or add your user to the hookswitch group: sudo adduser $USER hookswitch' };
  }
  return { name: 'daemon', level: 'warn', detail: `not running (${d.error ?? `no daemon on ${d.socket}`})`, fix: 'start it: sudo systemctl start hookswitch (or hookswitch run in a terminal); journalctl -u hookswitch says why it stopped' };
}

function portCheck(p: PortProbe, daemon: DoctorProbes['daemon']): Check {
  const name = `sip port ${p.transport} ${p.bind.includes(':') ? `[${p.bind}]` : p.bind}:${p.port}`;
  const fixPort = `or set sip.${p.transport === 'tls' ? 'tls.port' : 'port'} to a free port`;
  if (p.bindError === undefined) return { name, level: 'ok', detail: 'free' };
  if (p.bindError === 'EACCES') {
    return { name, level: 'fail', detail: `port ${p.port} is below 1024 and this user may not bind it`, fix: `run doctor as the service user or root (the service has CAP_NET_BIND_SERVICE), ${fixPort} of 1024 or above` };
  }
  if (p.bindError === 'EADDRNOTAVAIL') return { name, level: 'fail', detail: `${p.bind} is not an address of this machine`, fix: 'set sip.bind to one of the addresses under "network address" (or 0.0.0.0 for all)' };
  if (p.bindError !== 'EADDRINUSE') return { name, level: 'fail', detail: `cannot bind: ${p.bindError}`, fix: `check sip.bind and sip.port ${fixPort}` };
  const holders = parseSs(p.ss.stdout).filter((l) => l.port === p.port && overlaps(l.address, p.bind));
  const procs = holders.flatMap((h) => h.processes.map((x) => ({ ...x, address: h.address })));
  const ours = procs.find((x) => x.pid === daemon.pid || isHookswitchRun(p.cmdlines[x.pid] ?? []));
  if (ours) return { name, level: 'ok', detail: `held by hookswitch (${ours.name}, pid ${ours.pid}): the daemon is running` };
  if (procs.length > 0) {
    const who = procs.map((x) => `${x.name} (pid ${x.pid}) on ${x.address}`).filter((v, i, a) => a.indexOf(v) === i).join(', ');
    const first = procs[0]!;
    return { name, level: 'fail', detail: `in use by ${who}`, fix: `stop ${first.name} (sudo kill ${first.pid}, or disable its service) ${fixPort}` };
  }
  // A daemon that answers, or whose socket exists but refuses this user, is running as another user.
  if (daemon.reply?.ok === true || /EACCES/.test(daemon.error ?? '')) return { name, level: 'ok', detail: 'in use, most likely by the running hookswitch (run doctor as root to name the process)' };
  if (p.ss.missing) return { name, level: 'fail', detail: 'in use by another process', fix: `${install('ss')} to see which, ${fixPort}` };
  return { name, level: 'fail', detail: "in use by another user's process (only root sees which)", fix: `sudo hookswitch doctor names it (or: sudo ss -l${p.transport === 'udp' ? 'u' : 't'}np 'sport = :${p.port}'); stop it ${fixPort}` };
}

/** The configured ALSA devices of each direction. */
function audioDevices(c: Config): [Direction, string][] {
  return [['capture', c.audio.capture], ['playback', c.audio.playback]];
}

/** Which card (by index) and device to probe for each direction; the probes call this with the parsed lists. */
export function audioTargets(config: Config, lists: Record<Direction, AlsaCard[]>): Partial<Record<Direction, { card: AlsaCard; device: number }>> {
  const out: Partial<Record<Direction, { card: AlsaCard; device: number }>> = {};
  if (config.audio.backend !== 'alsa') return out;
  for (const [dir, dev] of audioDevices(config)) {
    const n = parseAlsaName(dev);
    const card = n.card === undefined ? undefined : findCard(lists[dir], n.card);
    if (card) out[dir] = { card, device: n.device };
  }
  return out;
}

function findCard(cards: AlsaCard[], ref: string): AlsaCard | undefined {
  return cards.find((c) => c.id === ref) ?? (/^\d+$/.test(ref) ? cards.find((c) => c.index === Number(ref)) : undefined);
}

function audioChecks(p: DoctorProbes): Check[] {
  const c = p.config;
  const a = p.audio;
  const alsa = c.audio.backend === 'alsa';
  const checks: Check[] = [];
  const lists: Record<Direction, AlsaCard[]> = { playback: parseAlsaList(a.aplay.stdout), capture: parseAlsaList(a.arecord.stdout) };
  const haveTools = !a.aplay.missing && !a.arecord.missing;
  const all = haveTools ? [...lists.playback, ...lists.capture.filter((x) => !lists.playback.some((y) => y.index === x.index))] : parseProcCards(a.procCards ?? '');
  if (!haveTools) for (const d of ['capture', 'playback'] as const) lists[d] = all;
  const describe = (x: AlsaCard): string => `${x.index} ${x.id} [${x.name}]${haveTools ? ` (${[lists.playback.some((y) => y.index === x.index) && 'playback', lists.capture.some((y) => y.index === x.index) && 'capture'].filter(Boolean).join(', ')})` : ''}`;
  const present = all.length ? `cards present: ${all.map(describe).join('; ')}` : 'no sound cards';
  const unused = `audio.backend is "${c.audio.backend}": the device uses no sound card`;
  if (all.length === 0) {
    const plug = 'plug in the USB sound card (lsusb shows it; dmesg | grep -i audio says why it failed)';
    checks.push({ name: 'sound cards', level: alsa ? 'fail' : 'warn', detail: alsa ? 'no sound cards' : `no sound cards (${unused})`, fix: alsa ? plug : `${plug}, then set audio.backend to "alsa"` });
  } else checks.push({ name: 'sound cards', level: 'ok', detail: all.map(describe).join('; ') + (alsa ? '' : ` (${unused})`) });
  if (!haveTools) checks.push({ name: 'alsa-utils', level: alsa ? 'fail' : 'warn', detail: 'aplay/arecord not found: hookswitch plays and records through them', fix: install('aplay') });
  if (!alsa) return checks;

  const targets = audioTargets(c, lists);
  for (const [dir, dev] of audioDevices(c)) {
    const name = `audio ${dir} ${dev}`;
    const n = parseAlsaName(dev);
    const board = p.board.profile?.audio;
    if (n.card === undefined) {
      const boardNote = board ? `; board ${p.board.profile!.name} expects card ${board.card}${findCard(lists[dir], board.card) ? '' : ', which is not present'}` : '';
      const level = board && !findCard(lists[dir], board.card) ? 'warn' : 'ok';
      checks.push({ name, level, detail: `an ALSA name without a card (ALSA's configuration chooses one)${boardNote}`, ...(level === 'warn' ? { fix: `plug in card ${board!.card}, or name the card in audio.${dir} (${present})` } : {}) });
      continue;
    }
    const card = targets[dir];
    if (!card) {
      const other = findCard(all, n.card);
      const choices = lists[dir].map((x) => `plughw:CARD=${x.id},DEV=${x.devices[0] ?? 0}`);
      const fix = lists[dir].length ? `set audio.${dir} to one of ${choices.join(', ')} (${present})` : `${all.length ? present : 'no sound cards'}: plug in the sound card`;
      checks.push({ name, level: 'fail', detail: other ? `card ${n.card} has no ${dir} device` : `card ${n.card} is not present`, fix });
      continue;
    }
    if (!card.card.devices.includes(n.device) && haveTools) {
      checks.push({ name, level: 'fail', detail: `card ${card.card.id} has no ${dir} device ${n.device} (devices: ${card.card.devices.join(', ')})`, fix: `set audio.${dir} to plughw:CARD=${card.card.id},DEV=${card.card.devices[0]}` });
      continue;
    }
    const byIndex = /^\d+$/.test(n.card);
    checks.push({
      name,
      level: byIndex ? 'warn' : 'ok',
      detail: `card ${card.card.index} ${card.card.id} [${card.card.name}]${byIndex ? ': named by number, which changes when USB devices are plugged in another order' : ''}`,
      ...(byIndex ? { fix: `name it: plughw:CARD=${card.card.id},DEV=${n.device}` } : {}),
    });
    checks.push(rateCheck(p, dir, dev, card.card, n.strict));
  }
  return checks;
}

function rateCheck(p: DoctorProbes, dir: Direction, dev: string, card: AlsaCard, strict: boolean): Check {
  const rate = p.config.audio.rate;
  const name = `audio ${dir} rate ${rate} Hz`;
  const dump = p.audio.hwParams[dir];
  const rates = (p.audio.streams[card.index] !== undefined ? parseUsbStreamRates(p.audio.streams[card.index]!, dir) : undefined) ?? (dump ? parseHwParamsRates(dump.stderr + dump.stdout) : undefined);
  if (!rates) {
    const out = dump ? firstLine(dump.stderr) : '';
    if (/busy/i.test(out)) return { name, level: 'ok', detail: `card ${card.id} is busy (in use, by the running hookswitch if it is up): rates not probed` };
    const why = dump?.missing ? 'alsa-utils missing' : dump?.timedOut ? 'the probe timed out' : out || 'no rate information';
    return { name, level: 'warn', detail: `could not read the rates card ${card.id} takes (${why})`, fix: `check by hand: ${dir === 'capture' ? 'arecord' : 'aplay'} -D hw:CARD=${card.id} --dump-hw-params` };
  }
  if (takes(rates, rate)) return { name, level: 'ok', detail: `card ${card.id} takes ${showRates(rates)} Hz` };
  const best = 'list' in rates ? rates.list.find((r) => [8000, 16000, 32000, 44100, 48000].includes(r) && r >= rate) ?? rates.list.at(-1)! : Math.min(rates.max, 48000);
  if (strict) return { name, level: 'fail', detail: `card ${card.id} takes ${showRates(rates)} Hz, not ${rate}, and ${dev} does not convert`, fix: `set audio.rate to ${best}, or use plughw:CARD=${card.id},DEV=${parseAlsaName(dev).device}` };
  return { name, level: 'warn', detail: `card ${card.id} takes ${showRates(rates)} Hz, not ${rate}: ALSA's plug layer resamples (CPU, quality)`, fix: `set audio.rate to ${best}` };
}

/** The evdev node the `gpio-key` overlay creates for a pin: its device-tree node is `button@<gpio in hex>`. */
export function evdevPath(gpio: number): string {
  return `/dev/input/by-path/platform-button@${gpio.toString(16)}-event`;
}

/** The device paths a board needs for the configured backend, by role; the probes test each for existence. */
export function boardPaths(profile: BoardProfile, config: Config): { role: string; path: string }[] {
  if (profile.connection === 'serial') {
    const path = config.hardware.serialPort ?? profile.serial?.path;
    return path ? [{ role: 'serial', path }] : [];
  }
  if (config.hardware.backend === 'gpiod') return [];
  const inputs = (Object.entries(profile.inputs) as [InputRole, { gpio: number }][]).map(([role, i]) => ({ role, path: config.hardware.inputPaths[role] ?? evdevPath(i.gpio) }));
  const outputs = (Object.entries(profile.outputs) as [OutputRole, { label: string }][]).map(([role, o]) => ({ role, path: `/sys/class/leds/${o.label}` }));
  return [...inputs, ...outputs];
}

/** The active lines of config.txt, spaces removed (comments and blank lines dropped). */
function activeLines(text: string): Set<string> {
  return new Set(text.split('\n').map((l) => l.replace(/#.*/, '').replace(/\s+/g, '')).filter(Boolean));
}

function boardChecks(p: DoctorProbes): Check[] {
  const b = p.board;
  const c = p.config;
  if (!c.board) {
    return [{ name: 'board', level: 'warn', detail: 'none configured: the device has no phone hardware (SIP gateway only)', fix: `set board to your wiring${b.known.length ? `: ${b.known.join(', ')}` : ''} (hookswitch board list)` }];
  }
  if (!b.profile) return [{ name: `board ${c.board}`, level: 'fail', detail: b.error ?? 'cannot be loaded', fix: 'set board to a name from hookswitch board list, or to the path of a valid profile' }];
  const profile = b.profile;
  const checks: Check[] = [{ name: `board ${profile.name}`, level: 'ok', detail: `${profile.mode}, ${profile.connection}${profile.connection === 'gpio' ? ` (${c.hardware.backend} backend)` : ''}` }];
  const missing = boardPaths(profile, c).filter((x) => !b.exists[x.path]);

  if (profile.connection === 'serial') {
    const path = boardPaths(profile, c)[0]?.path;
    if (!path) return [...checks, { name: 'serial port', level: 'fail', detail: 'the profile names no port', fix: 'set hardware.serialPort to /dev/serial/by-id/...' }];
    const name = `serial port ${path}`;
    if (missing.length) {
      const found = b.serialById.map((e) => `/dev/serial/by-id/${e}`);
      return [...checks, { name, level: 'fail', detail: 'not present', fix: found.length ? `plug in the microcontroller, or set hardware.serialPort to one of ${found.join(', ')}` : 'plug in the microcontroller (no USB serial device is present: /dev/serial/by-id is empty); lsusb and dmesg show whether it enumerates' }];
    }
    if (b.serialWritable === false) return [...checks, { name, level: 'warn', detail: 'present, but this user cannot open it', fix: 'the service user is in group dialout; for a shell: sudo adduser $USER dialout (log in again)' }];
    return [...checks, { name, level: 'ok', detail: 'present' }];
  }

  const lines = configTxtLines(profile);
  const active = b.configTxt ? activeLines(b.configTxt.text) : new Set<string>();
  const absent = lines.filter((l) => !active.has(l.replace(/\s+/g, '')));
  if (c.hardware.backend === 'gpiod') {
    const name = 'gpio chip';
    if (!b.chips) checks.push({ name, level: 'fail', detail: 'gpiodetect not found: the gpiod backend drives the pins through libgpiod\'s tools', fix: install('gpiodetect') });
    else {
      const chip = b.chipLabels.map((l) => b.chips!.find((x) => x.label === l)).find((x) => x !== undefined);
      if (chip) checks.push({ name, level: 'ok', detail: `${chip.name} [${chip.label}]` });
      else checks.push({ name, level: 'fail', detail: `no chip labelled ${b.chipLabels.join(' or ')} (found: ${b.chips.map((x) => `${x.name} [${x.label}]`).join(', ') || 'no GPIO chips'})`, fix: 'the gpiod backend needs a Raspberry Pi\'s GPIO header; elsewhere run with --sim or without a board' });
    }
    const claimed = lines.length - absent.length;
    if (claimed > 0) checks.push({ name: 'board overlays', level: 'warn', detail: `${b.configTxt!.path} claims ${claimed} of the board's pins with dtoverlay lines: libgpiod finds them busy`, fix: 'remove those dtoverlay lines and reboot, or set hardware.backend to "kernel"' });
    return checks;
  }

  if (!b.configTxt) {
    checks.push({ name: 'board overlays', level: 'fail', detail: 'no /boot/firmware/config.txt or /boot/config.txt (is this Raspberry Pi OS?)', fix: 'the kernel backend needs the gpio-key and gpio-led overlays of a Raspberry Pi; elsewhere set hardware.backend to "gpiod", or run with --sim' });
  } else if (absent.length) {
    checks.push({ name: 'board overlays', level: 'fail', detail: `${absent.length} of ${lines.length} dtoverlay lines missing from ${b.configTxt.path}`, fix: `add these lines to ${b.configTxt.path} and reboot (scripts/install.sh does it with a backup):\n${absent.join('\n')}` });
  } else checks.push({ name: 'board overlays', level: 'ok', detail: `${lines.length} dtoverlay lines in ${b.configTxt.path}` });

  if (missing.length) {
    const list = missing.map((x) => `${x.role} ${x.path}`).join(', ');
    const fix = !b.configTxt ? 'the gpio-key and gpio-led overlays create them at boot (see board overlays)' : absent.length ? 'add the overlay lines above and reboot' : 'reboot: the overlays in config.txt are read at boot (sudo reboot); if they still are missing, check dmesg for gpio errors';
    checks.push({ name: 'board devices', level: 'fail', detail: `missing: ${list}`, fix });
  } else checks.push({ name: 'board devices', level: 'ok', detail: `${boardPaths(profile, c).length} present (${boardPaths(profile, c).map((x) => x.role).join(', ')})` });
  return checks;
}

function wifiChecks(p: DoctorProbes): Check[] {
  if (p.wifi.interfaces.length === 0) return [{ name: 'wifi power saving', level: 'ok', detail: 'no Wi-Fi interface' }];
  return p.wifi.interfaces.map((dev): Check => {
    const name = `wifi ${dev} power saving`;
    const out = p.wifi.powerSave[dev];
    if (!out || out.missing) return { name, level: 'warn', detail: 'cannot read it: iw is not installed', fix: install('iw') };
    const m = /Power save:\s*(on|off)/i.exec(out.stdout);
    if (!m) return { name, level: 'warn', detail: `cannot read it: ${firstLine(out.stderr || out.stdout) || 'no answer'}`, fix: `check by hand: iw dev ${dev} get power_save` };
    if (m[1]!.toLowerCase() === 'off') return { name, level: 'ok', detail: 'off' };
    return {
      name,
      level: 'warn',
      detail: 'on: the Pi\'s Wi-Fi sleeps between beacons and loses incoming SIP requests and registrations',
      fix: `sudo iw ${dev} set power_save off (until reboot; to keep it with NetworkManager: sudo nmcli connection modify <connection> wifi.powersave 2)`,
    };
  });
}

function networkChecks(p: DoctorProbes): Check[] {
  const { addr, route } = p.network;
  if (addr.missing) return [{ name: 'network', level: 'warn', detail: 'ip is not installed', fix: install('ip') }];
  const ifs = upInterfaces(addr.stdout).filter((i) => i.addresses.length);
  const checks: Check[] = [
    ifs.length
      ? { name: 'network address', level: 'ok', detail: ifs.map((i) => `${i.ifname} ${i.addresses.join(' ')}`).join('; ') }
      : { name: 'network address', level: 'fail', detail: 'no interface has an IP address', fix: 'connect the network cable or set up Wi-Fi (sudo nmtui, or raspi-config), then check: ip addr' },
  ];
  const routes = parseJsonList<IpRouteEntry>(route.stdout);
  const def = routes?.find((r) => r.dst === 'default');
  const trunks = p.config.trunks.length;
  if (!routes) checks.push({ name: 'default route', level: 'warn', detail: `cannot read routes: ${firstLine(route.stderr) || 'no JSON from ip -j route'}` });
  else if (def) checks.push({ name: 'default route', level: 'ok', detail: `via ${def.gateway ?? 'link'} dev ${def.dev ?? '?'}` });
  else checks.push({ name: 'default route', level: trunks ? 'fail' : 'warn', detail: `none: only the local network is reachable${trunks ? `, not the ${trunks} trunk(s)` : ''}`, fix: 'check the router/DHCP (ip route shows the routes; nmcli device show lists the gateway)' });
  return checks;
}

function clockCheck(p: DoctorProbes): Check {
  const name = 'clock';
  const now = new Date(p.now).toISOString().replace(/\.\d+Z$/, 'Z');
  if (p.now < CLOCK_FLOOR) return { name, level: 'fail', detail: `the clock says ${now}: TLS certificates and registration times go wrong`, fix: 'give the Pi network access to an NTP server (sudo timedatectl set-ntp true), or add a real-time clock' };
  const t = p.clock.timedatectl.stdout.trim();
  const chrony = /^Leap status\s*:\s*(.*)$/m.exec(p.clock.chrony.stdout)?.[1]?.trim();
  const synced = t === 'yes' || (t !== 'no' && (p.clock.timesyncFlag || chrony === 'Normal'));
  if (synced) return { name, level: 'ok', detail: `synchronised (${now})` };
  if (t === 'no' || chrony === 'Not synchronised') return { name, level: 'warn', detail: `not synchronised with NTP (${now})`, fix: 'sudo timedatectl set-ntp true; UDP port 123 must reach an NTP server (timedatectl timesync-status shows which)' };
  return { name, level: 'warn', detail: `cannot tell whether it is synchronised (no timedatectl, systemd-timesyncd or chrony answered; ${now})`, fix: 'run an NTP client: sudo apt install systemd-timesyncd' };
}

function mdnsCheck(p: DoctorProbes): Check {
  const name = 'mdns';
  const ifs = upInterfaces(p.network.addr.stdout).filter((i) => i.addresses.length);
  const multicast = ifs.filter((i) => i.multicast).map((i) => i.ifname);
  const avahi = p.mdns.avahi.missing ? 'unknown (pgrep missing)' : p.mdns.avahi.code === 0 ? 'avahi-daemon running (hookswitch shares port 5353 with it)' : 'avahi-daemon not running (hookswitch answers mDNS itself)';
  const holders = parseSs(p.mdns.ss.stdout).filter((l) => l.port === 5353).flatMap((l) => l.processes.map((x) => `${x.name} (pid ${x.pid})`));
  const on5353 = holders.length ? `; port 5353: ${[...new Set(holders)].join(', ')}` : '';
  if (p.network.addr.missing) return { name, level: 'warn', detail: `cannot list interfaces (ip missing); ${avahi}`, fix: install('ip') };
  if (!multicast.length) {
    return { name, level: 'warn', detail: `no interface with an address and multicast${ifs.length ? ` (${ifs.map((i) => i.ifname).join(', ')} lack MULTICAST)` : ''}: phones and peers cannot find hookswitch by name; ${avahi}`, fix: ifs.length ? `sudo ip link set ${ifs[0]!.ifname} multicast on` : 'connect the network first' };
  }
  return { name, level: 'ok', detail: `multicast on ${multicast.join(', ')}; ${avahi}${on5353}` };
}

/** Every check, in the order `doctor` prints them. */
export function doctorChecks(p: DoctorProbes): Check[] {
  return [
    configCheck(p),
    daemonCheck(p),
    ...p.sip.map((s) => portCheck(s, p.daemon)),
    ...networkChecks(p),
    clockCheck(p),
    ...wifiChecks(p),
    mdnsCheck(p),
    ...audioChecks(p),
    ...boardChecks(p),
  ];
}
