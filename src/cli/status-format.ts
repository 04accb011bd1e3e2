/**
 * `hookswitch status` as text: a header line, then one section per part of the
 * {@link StatusReport} with aligned columns that fit in 100 columns (long cells are cut with
 * `…`). Key/value sections print `key: value` lines (scripts and tests grep `device: idle`).
 * Colours (ANSI SGR) only when asked for: the CLI asks when stdout is a terminal.
 */
import type { CallLegSummary } from '../calls/b2bua.ts';
import type { CallStatus, StatusReport, TrunkStatus } from '../app/status-report.ts';

/** Options of {@link formatStatus}. */
export interface StatusFormatOptions {
  /** ANSI colours for headings and states (default off). */
  color?: boolean;
  /** Line width to fit tables in (default 100). */
  width?: number;
}

/** ECMA-48 SGR sequences. */
const SGR = { bold: '\x1b[1m', red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m', reset: '\x1b[0m' } as const;

type Paint = (text: string, style: keyof typeof SGR) => string;

/** States shown green, yellow or red. */
const STATE_COLOURS: Record<string, keyof typeof SGR> = {
  registered: 'green',
  connected: 'green',
  registering: 'yellow',
  calling: 'yellow',
  ringing: 'yellow',
  failed: 'red',
};

/** `42s`, `12m 05s`, `3h 07m`, `2d 04h`. */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s}s`;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d ${two(Math.floor(s / 3600) % 24)}h`;
}

/** A column: its heading, whether it may be cut to fit, and how a cell is coloured. */
interface Column {
  title: string;
  /** May be cut when the table is too wide; the highest number gives way first. */
  shrink?: number;
  /** Right-aligned (numbers). */
  right?: boolean;
  /** Colour a cell by its text (states). */
  colour?: boolean;
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/**
 * Aligned columns, two spaces apart, indented by `indent`. When wider than `width` the columns
 * that may shrink give way in their order, first down to 16 characters, then to 8, then to
 * their heading's width (never below it).
 */
export function renderTable(columns: readonly Column[], rows: readonly string[][], opts: { indent: number; width: number; paint: Paint }): string[] {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const total = (): number => opts.indent + widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  // First down to a readable 16 characters in the shrink order, then to 8, then to the heading.
  for (const floor of [16, 8, 0]) {
    const least = (c: Column): number => Math.max(floor, c.title.length);
    while (total() > opts.width) {
      let next = -1;
      columns.forEach((c, i) => {
        if (c.shrink !== undefined && widths[i]! > least(c) && (next < 0 || c.shrink > columns[next]!.shrink!)) next = i;
      });
      if (next < 0) break;
      widths[next] = Math.max(least(columns[next]!), widths[next]! - (total() - opts.width));
    }
  }
  const line = (cells: readonly string[], heading: boolean): string => {
    const out = columns.map((c, i) => {
      const text = cut(cells[i] ?? '', widths[i]!);
      const padded = c.right ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
      if (heading) return padded;
      const colour = c.colour ? STATE_COLOURS[text] : undefined;
      return colour ? opts.paint(padded, colour) : padded;
    });
    return `${' '.repeat(opts.indent)}${out.join('  ')}`.trimEnd();
  };
  return [line(columns.map((c) => c.title), true), ...rows.map((r) => line(r, false))];
}

/** The text of `hookswitch status`, ending in a newline. */
export function formatStatus(report: StatusReport, options: StatusFormatOptions = {}): string {
  const width = options.width ?? 100;
  const paint: Paint = options.color ? (text, style) => `${SGR[style]}${text}${SGR.reset}` : (text) => text;
  const heading = (title: string): string => paint(title, 'bold');
  const table = (columns: Column[], rows: string[][], indent = 2): string[] => renderTable(columns, rows, { indent, width, paint });
  const out: string[] = [`hookswitch ${report.version}  domain ${report.domain}  up ${formatDuration(report.uptime)}`];

  out.push('', heading('Listening'));
  if (report.listening.length === 0) out.push('  (no sockets open)');
  else out.push(...table([{ title: 'TRANSPORT' }, { title: 'ADDRESS' }], report.listening.map((l) => [l.transport, hostPort(l.address, l.port)])));

  const a = report.addresses;
  out.push('', heading('Addresses'), `local: ${a.local.length ? a.local.join(', ') : '(loopback only)'}`);
  const stun = a.stunServer === undefined ? '' : a.stunError !== undefined ? `STUN ${a.stunServer} failed: ${a.stunError}` : `STUN ${a.stunServer}`;
  if (a.public !== undefined) out.push(`public: ${a.public} (${a.publicSource === 'config' ? 'media.publicAddress' : stun})`);
  else out.push(`public: unknown${stun ? ` (${stun})` : ' (no media.publicAddress or media.stunServer)'}`);

  out.push('', heading(`Trunks (${report.trunks.length})`));
  if (report.trunks.length === 0) out.push('  (none configured)');
  else
    out.push(
      ...table(
        [{ title: 'NAME' }, { title: 'SERVER', shrink: 1 }, { title: 'USER', shrink: 2 }, { title: 'STATE', colour: true }, { title: 'DETAIL', shrink: 3 }],
        report.trunks.map((t) => [t.name, t.server, t.username, t.state, trunkDetail(t)]),
      ),
    );

  out.push('', heading(`Extensions (${report.extensions.length} registered)`));
  if (report.extensions.length === 0) out.push('  (no phone registered)');
  else
    out.push(
      ...table(
        [{ title: 'EXT' }, { title: 'CONTACT', shrink: 1 }, { title: 'USER AGENT', shrink: 3 }, { title: 'EXPIRES', right: true }, { title: 'FROM', shrink: 2 }],
        report.extensions.map((e) => [e.extension, e.contact, e.userAgent ?? '-', formatDuration(e.expiresIn), e.source ?? '-']),
      ),
    );

  out.push('', heading(`Subscriptions (${report.subscriptions.length})`));
  if (report.subscriptions.length === 0) out.push('  (no presence subscriptions)');
  else
    out.push(
      ...table(
        [{ title: 'SUBSCRIBER', shrink: 1 }, { title: 'RESOURCE', shrink: 2 }, { title: 'EVENT' }, { title: 'EXPIRES', right: true }],
        report.subscriptions.map((s) => [s.subscriber, s.resource, s.event, formatDuration(s.expiresIn)]),
      ),
    );

  out.push('', heading(`Calls (${report.calls.length})`));
  if (report.calls.length === 0) out.push('  (no calls)');
  for (const call of report.calls) out.push(...callLines(call, table, paint));

  if (report.device) {
    const d = report.device;
    out.push('', heading('Device'), `device: ${d.state}`);
    if (d.call !== undefined) out.push(`call: ${d.call} with ${d.remote ?? '?'} for ${formatDuration(d.seconds ?? 0)}`);
    if (d.others) out.push(`others: ${d.others}`);
    out.push(`extension: ${d.extension}`);
    if (d.board !== undefined) out.push(`board: ${d.board} (${d.mode ?? '?'}), ${d.phone ?? '?'}`);
    if (d.hook !== undefined) out.push(`hook: ${d.hook === 'off' ? 'off hook' : 'on hook'}`);
    out.push(`ringing: ${d.ringing ? 'yes' : 'no'}`);
    if (d.relay !== undefined) out.push(`relay: ${d.relay}`);
    if (d.digits) out.push(`digits: ${d.digits}`);
  }

  const p = report.peers;
  out.push('', heading(`LAN peers (${p.count})`));
  if (!p.discovery) out.push('  discovery is off (discovery.enabled, or SIP bound to loopback)');
  else {
    if (p.name !== undefined) out.push(`  advertised as "${p.name}"${p.error ? ` (mDNS error: ${p.error})` : ''}`);
    out.push(p.names.length ? `  ${cut(p.names.join(', '), width - 2)}` : '  (none seen)');
  }
  return `${out.join('\n')}\n`;
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function trunkDetail(t: TrunkStatus): string {
  const parts: string[] = [];
  if (t.state === 'registered' && t.expiresIn !== undefined) parts.push(`expires in ${formatDuration(t.expiresIn)}`);
  if (t.lastError !== undefined) parts.push(t.lastError);
  if (t.nextRetryIn !== undefined) parts.push(`retry in ${formatDuration(t.nextRetryIn)}`);
  if (t.state === 'off') parts.push('register: false');
  return parts.join('; ') || '-';
}

function callLines(call: CallStatus, table: (columns: Column[], rows: string[][], indent?: number) => string[], paint: Paint): string[] {
  const state = STATE_COLOURS[call.state] ? paint(call.state, STATE_COLOURS[call.state]!) : call.state;
  const head = `  ${call.id}  ${call.from} -> ${call.to}  ${state}  ${formatDuration(call.duration)}`;
  const rows = call.legs.map((leg) => legRow(leg));
  const drops = call.legs.flatMap((leg) => srtpDropLine(leg) ?? []);
  return [
    head,
    ...table(
      [
        { title: 'LEG' },
        { title: 'PARTY', shrink: 2 },
        { title: 'PEER', shrink: 1 },
        { title: 'CODEC' },
        { title: 'SEC' },
        { title: 'PKTS IN', right: true },
        { title: 'PKTS OUT', right: true },
        { title: 'LOSS', right: true },
        { title: 'JITTER', right: true },
        { title: 'RTT', right: true },
      ],
      rows,
      4,
    ),
    ...drops,
  ];
}

function legRow(leg: CallLegSummary): string[] {
  const m = leg.media;
  const peer = leg.peer ?? 'device';
  if (m === undefined) return [leg.slot, leg.party, peer, '-', '-', '-', '-', '-', '-', '-'];
  const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(1)} ms`);
  return [
    leg.slot,
    leg.party,
    peer,
    m.codec ?? '-',
    m.srtp === undefined ? '-' : 'srtp',
    String(m.packetsIn),
    String(m.packetsOut),
    m.lossPercent === undefined ? '-' : `${m.lossPercent.toFixed(1)}%`,
    ms(m.jitterMs),
    ms(m.rttMs),
  ];
}

/** `    a: SRTP AES_CM_128_HMAC_SHA1_80 dropped 3 (2 auth failed, 1 replayed)` for a slot whose SRTP refused datagrams. */
function srtpDropLine(leg: CallLegSummary): string | undefined {
  const srtp = leg.media?.srtp;
  if (srtp === undefined) return undefined;
  const kinds: [number, string][] = [
    [srtp.authFailed, 'auth failed'],
    [srtp.replayed, 'replayed'],
    [srtp.other, 'other'],
  ];
  const total = srtp.authFailed + srtp.replayed + srtp.other;
  if (total === 0) return undefined;
  const parts = kinds.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
  return `    ${leg.slot}: SRTP ${srtp.suite} dropped ${total} (${parts.join(', ')})`;
}
