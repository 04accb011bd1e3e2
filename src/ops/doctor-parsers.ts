/**
 * The formats `hookswitch doctor` reads: `aplay -l`, `/proc/asound`, `--dump-hw-params`, ALSA PCM
 * names, `ss -lnp`, `ip -j addr` and the command lines of processes. Pure: text in, values out.
 */
export type Direction = 'capture' | 'playback';

/** One sound card as `aplay -l` lists it: `card 1: Device [USB PnP Sound Device], device 0: ...`. */
export interface AlsaCard {
  index: number;
  id: string;
  name: string;
  devices: number[];
}

/** Rates a device takes: a list, or a continuous range. */
export type RateSet = { list: number[] } | { min: number; max: number };

/** An ALSA PCM name taken apart: the card it names (id or index) and whether ALSA's plug converts rates. */
export interface AlsaName {
  card?: string;
  device: number;
  /** `hw:` opens the card as it is: no rate conversion. */
  strict: boolean;
}


/** Parses `aplay -l` / `arecord -l` (alsa-utils aplay.c `device_list`), one entry per card. */
export function parseAlsaList(text: string): AlsaCard[] {
  const cards = new Map<number, AlsaCard>();
  for (const line of text.split('\n')) {
    const m = /^card (\d+): (\S+) \[(.*?)\], device (\d+):/.exec(line);
    if (!m) continue;
    const index = Number(m[1]);
    const card = cards.get(index) ?? { index, id: m[2]!, name: m[3]!, devices: [] };
    card.devices.push(Number(m[4]));
    cards.set(index, card);
  }
  return [...cards.values()];
}

/** Parses `/proc/asound/cards` (` 1 [Device         ]: USB-Audio - USB PnP Sound Device`). */
export function parseProcCards(text: string): AlsaCard[] {
  const cards: AlsaCard[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+) \[(\S+)\s*\]: \S+ - (.*)$/.exec(line);
    if (m) cards.push({ index: Number(m[1]), id: m[2]!, name: m[3]!.trim(), devices: [] });
  }
  return cards;
}

/**
 * Takes an ALSA PCM name apart: `plughw:CARD=Device,DEV=0`, `hw:1,0`, `sysdefault:CARD=Device`,
 * `plughw:Device`. Names without a card (`default`, `pulse`, `null`) give no card.
 */
export function parseAlsaName(name: string): AlsaName {
  const m = /^([A-Za-z0-9_]+):(.*)$/.exec(name);
  if (!m) return { device: 0, strict: false };
  const args = m[2]!.split(',');
  let card: string | undefined;
  let device = 0;
  args.forEach((arg, i) => {
    const kv = /^([A-Z]+)=(.*)$/.exec(arg);
    if (kv ? kv[1] === 'CARD' : i === 0) card = kv ? kv[2] : arg;
    else if (kv ? kv[1] === 'DEV' : i === 1) device = Number(kv ? kv[2] : arg) || 0;
  });
  return { ...(card ? { card } : {}), device, strict: m[1] === 'hw' };
}

/** The `RATE:` line of `--dump-hw-params` (alsa-lib `snd_pcm_hw_params_dump`): `48000`, `[8000 48000]`, `(44099 48000]`. */
export function parseHwParamsRates(text: string): RateSet | undefined {
  const m = /^RATE:\s*(?:(\d+)|([[(])(\d+) (\d+)([\])]))\s*$/m.exec(text);
  if (!m) return undefined;
  if (m[1]) return { list: [Number(m[1])] };
  return { min: Number(m[3]) + (m[2] === '(' ? 1 : 0), max: Number(m[4]) - (m[5] === ')' ? 1 : 0) };
}

/**
 * The rates of one direction in `/proc/asound/cardN/stream0` of a USB card (Linux
 * sound/usb/proc.c: `Rates: 48000, 44100` or `Rates: 8000 - 48000 (continuous)` per altset).
 */
export function parseUsbStreamRates(text: string, direction: Direction): RateSet | undefined {
  const header = direction === 'capture' ? 'Capture:' : 'Playback:';
  const start = text.split('\n').findIndex((l) => l.trim() === header);
  if (start < 0) return undefined;
  const list = new Set<number>();
  let range: { min: number; max: number } | undefined;
  for (const line of text.split('\n').slice(start + 1)) {
    if (/^\S/.test(line)) break;
    const m = /^\s+Rates: (.*)$/.exec(line);
    if (!m) continue;
    const r = /^(\d+) - (\d+) \(continuous\)/.exec(m[1]!);
    if (r) range = { min: Math.min(range?.min ?? Infinity, Number(r[1])), max: Math.max(range?.max ?? 0, Number(r[2])) };
    else for (const x of m[1]!.split(',')) if (/^\s*\d+\s*$/.test(x)) list.add(Number(x));
  }
  if (range) return range;
  return list.size ? { list: [...list].sort((a, b) => a - b) } : undefined;
}

/** One socket of `ss -Hl[u|t]np`: its local address and port and the processes holding it. */
export interface Listener {
  address: string;
  port: number;
  processes: { name: string; pid: number }[];
}

/** Parses `ss -H -l -n -p` lines (`UNCONN 0 0 0.0.0.0:5060 0.0.0.0:* users:(("node",pid=1,fd=20))`). */
export function parseSs(text: string): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const m = /^(.*):(\d+|\*)$/.exec(fields[3]!);
    if (!m || m[2] === '*') continue;
    const processes = [...line.matchAll(/\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=\d+\)/g)].map((p) => ({ name: p[1]!, pid: Number(p[2]) }));
    out.push({ address: m[1]!.replace(/%[^\]]*/, ''), port: Number(m[2]), processes });
  }
  return out;
}

/** Whether a command line is a hookswitch daemon (`hookswitch run`, `node .../hookswitch.mjs run`, `node .../cli/main.ts run`). */
export function isHookswitchRun(argv: readonly string[]): boolean {
  return argv.includes('run') && argv.some((a) => /(^|\/)hookswitch(\.m?js)?$|(^|\/)cli\/main\.ts$/.test(a));
}

/** One interface of `ip -j addr` (the fields used). */
interface IpAddrEntry { ifname: string; flags?: string[]; operstate?: string; addr_info?: { family: string; local: string; prefixlen: number; scope: string }[] }
/** One route of `ip -j route` (the fields used). */
export interface IpRouteEntry { dst: string; gateway?: string; dev?: string }

/** A JSON array printed by `ip -j`, or undefined when the text is not one. */
export function parseJsonList<T>(text: string): T[] | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? (v as T[]) : undefined;
  } catch {
    return undefined;
  }
}

/** Up, non-loopback interfaces with their global addresses (`ip -j addr`). */
export function upInterfaces(ipAddrJson: string): { ifname: string; multicast: boolean; addresses: string[] }[] {
  return (parseJsonList<IpAddrEntry>(ipAddrJson) ?? [])
    .filter((i) => i.flags?.includes('UP') && !i.flags.includes('LOOPBACK'))
    .map((i) => ({ ifname: i.ifname, multicast: i.flags?.includes('MULTICAST') ?? false, addresses: (i.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`) }));
}
