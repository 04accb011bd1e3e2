/**
 * The gateway's configuration: its shape, the embedded defaults, and validation that names the
 * offending key. Pure: reading the file is the CLI's job (`load-config.ts`).
 *
 * The shape follows the config contract external scripts rely on (`sip.bind`, `sip.port`,
 * `sip.domain`, `extensions.<number>.password`, ...). Keys that later features add are accepted
 * by later versions of this module; unknown keys are errors so that typos do not pass silently.
 */

import type { DialRule } from '../calls/dialplan.ts';
import { DEFAULT_ALLOWED_SOURCES } from '../security/cidr.ts';
import { AUDIO_DEFAULTS, checkAudioSections, DEFAULT_CODECS, type AudioConfig, type DtmfConfig } from './audio-sections.ts';
import { checkDiscoverySection, DEFAULT_DISCOVERY, type DiscoveryConfig } from './discovery-section.ts';
import { checkMetricsSection, DEFAULT_METRICS, type MetricsConfig } from './metrics-section.ts';
import { checkMessagesSection, DEFAULT_MESSAGES, type MessagesConfig } from './messages-section.ts';
import { checkPresenceSection, DEFAULT_PRESENCE, type PresenceConfig } from './presence-section.ts';
import { checkPhoneSections, type HandsetSettings, type HardwareConfig, type IntercomSettings } from './phone-sections.ts';
import { checkSections, isHostName, isObject, show, wholeNumber } from './sections.ts';
import { checkSrtpSection } from './srtp-section.ts';
import type { SrtpPolicy } from '../media/srtp-policy.ts';

export type { DialRule };

export interface TlsConfig {
  /** Port for SIP over TLS; 5061 by default. */
  port: number;
  /** PEM certificate chain file. */
  cert: string;
  /** PEM private key file. */
  key: string;
  /** Optional CA bundle for verifying servers we connect to (the system store otherwise). */
  ca?: string;
}

export interface ExtensionConfig {
  password: string;
  name?: string;
  /** This extension's SRTP policy, overriding `media.srtp`. */
  srtp?: SrtpPolicy;
}

/** An upstream provider or PBX (`trunks[]`). */
export interface TrunkConfig {
  name: string;
  host: string;
  port: number;
  transport: 'udp' | 'tcp' | 'tls';
  /** The user part of the address of record we register (`sip:username@host`). */
  username: string;
  /** The digest user name when it differs from `username`. */
  authUsername?: string;
  password: string;
  /** Whether to keep a registration with the trunk. */
  register: boolean;
  /** Requested registration lifetime in seconds. */
  expires: number;
  /** A proxy to send every request through (`host` or `host:port`). */
  outboundProxy?: string;
  /** Seconds between CRLF keep-alives towards the trunk (RFC 5626 §4.4.1); 0 turns them off. */
  keepAliveSeconds: number;
  /** Seconds before the first retry of a failed registration; doubles up to `maxRetrySeconds`. */
  retrySeconds: number;
  maxRetrySeconds: number;
  /** The host in From/To of requests to this trunk when it differs from `host`. */
  domain?: string;
  /** This trunk's SRTP policy, overriding `media.srtp`. */
  srtp?: SrtpPolicy;
}

/** RTP relay settings (`media`). */
export interface MediaConfig {
  /** Inclusive UDP port range for RTP/RTCP pairs; at least 4 ports. */
  rtpPorts: [number, number];
  /** Address the RTP sockets bind to. */
  bind: string;
  /** Address written into SDP when the box is behind NAT (otherwise the address facing the peer). */
  publicAddress?: string;
  /** `host` or `host:port` of a STUN server used to learn the public address. */
  stunServer?: string;
  /** A call whose legs send no RTP for this long is hung up. */
  rtpTimeoutSeconds: number;
  /** The device's codecs, most preferred first (`opus`, `G722`, `PCMU`, `PCMA`, `L16`, `L16/16000`, ...). */
  codecs: string[];
  /** SRTP policy of call legs without their own (`src/media/srtp-policy.ts`). */
  srtp: SrtpPolicy;
  /** Send and accept SDES keys over UDP/TCP signalling too (they travel in clear there). */
  srtpOverPlainSignalling: boolean;
}

/** Who may talk to the gateway at all, and brute-force protection (`security`). */
export interface SecurityConfig {
  /** CIDRs (`192.168.0.0/16`, `fe80::/10`) or single addresses whose packets are accepted; others are dropped. */
  allowedSources: string[];
  /** Failed digest authentications from one source before it is banned. */
  maxAuthFailures: number;
  banSeconds: number;
}

/** Registration lifetimes offered to phones (`registrar`). */
export interface RegistrarConfig {
  /** Shorter requests get 423 Interval Too Brief (RFC 3261 §10.3 step 7). */
  minExpires: number;
  /** Longer requests are shortened to this. */
  maxExpires: number;
  /** Used when a REGISTER names no expiry. */
  defaultExpires: number;
  /** Seconds between OPTIONS pings to registered phones; 0 turns them off. */
  qualifySeconds: number;
}

/** Call timers (`calls`). */
export interface CallsConfig {
  /** An unanswered outgoing leg is cancelled after this long. */
  noAnswerSeconds: number;
  /** Session-Expires requested on calls (RFC 4028). */
  sessionExpires: number;
  /** Min-SE: the smallest session interval accepted (RFC 4028 §5: at least 90). */
  minSessionExpires: number;
}

export interface Config {
  sip: {
    bind: string;
    port: number;
    /** The SIP domain this box answers for; also the digest realm. */
    domain: string;
    transports: ('udp' | 'tcp')[];
    tls?: TlsConfig;
    /** Idle time after which an unused TCP/TLS connection is closed. */
    connectionIdleSeconds: number;
    userAgent: string;
    /**
     * Digest algorithms offered in challenges, most preferred first (RFC 8760 §2.4). Put MD5
     * first for old clients that only read the first challenge (SIPp 3.6 does).
     */
    authAlgorithms: ('SHA-256' | 'MD5')[];
  };
  extensions: Record<string, ExtensionConfig>;
  trunks: TrunkConfig[];
  /** Where registrations and generated secrets are kept; '' means the platform default. */
  stateDir: string;
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  /** This device (the analog handset) as a callable number; whether it answers calls by itself. */
  device: { extension: string; autoAnswer: boolean };
  audio: AudioConfig;
  dtmf: DtmfConfig;
  /** The country whose dial, ringback and busy tones the device plays. */
  tones: { country: string; ringtone?: string };
  /** The board profile (`board/<name>.json` or a path); '' for none: the device has no phone hardware. */
  board: string;
  hardware: HardwareConfig;
  handset: HandsetSettings;
  intercom: IntercomSettings;
  /** mDNS/DNS-SD advertising and browsing (`src/discovery`). */
  discovery: DiscoveryConfig;
  /** The optional Prometheus endpoint (`GET /metrics`, src/ops/metrics-server.ts). */
  metrics: MetricsConfig;
  /** Instant messages (RFC 3428 MESSAGE): the size limit and the device's inbox. */
  messages: MessagesConfig;
  /** The notifier of the dialog and presence event packages (RFC 6665, src/presence). */
  presence: PresenceConfig;
  /** Rules tried in order after emergency numbers; extension numbers match after them. */
  dialplan: DialRule[];
  /** Numbers that always go to the first trunk, whatever the dial plan says. */
  emergencyNumbers: string[];
  media: MediaConfig;
  security: SecurityConfig;
  registrar: RegistrarConfig;
  calls: CallsConfig;
}

export const DEFAULT_CONFIG: Config = {
  sip: {
    bind: '0.0.0.0',
    port: 5060,
    domain: 'hookswitch.local',
    transports: ['udp', 'tcp'],
    connectionIdleSeconds: 300,
    userAgent: 'hookswitch',
    // MD5 first: most SIP phones, SIPp and Debian 12's baresip compute only MD5, and many read only
    // the first challenge (RFC 8760 §2.4 lets the UAS order them); SHA-256 stays on offer.
    authAlgorithms: ['MD5', 'SHA-256'],
  },
  extensions: {},
  trunks: [],
  stateDir: '',
  log: { level: 'info' },
  device: { extension: '100', autoAnswer: true },
  audio: { ...AUDIO_DEFAULTS.audio },
  dtmf: { ...AUDIO_DEFAULTS.dtmf },
  tones: { ...AUDIO_DEFAULTS.tones },
  board: '',
  hardware: { backend: 'kernel', inputPaths: {} },
  handset: {},
  intercom: {},
  discovery: { ...DEFAULT_DISCOVERY },
  metrics: { ...DEFAULT_METRICS },
  messages: { ...DEFAULT_MESSAGES },
  presence: { ...DEFAULT_PRESENCE },
  dialplan: [{ match: '*43', to: 'echo' }],
  emergencyNumbers: ['112', '911', '999'],
  media: { rtpPorts: [10000, 10999], bind: '0.0.0.0', rtpTimeoutSeconds: 60, codecs: [...DEFAULT_CODECS], srtp: 'optional', srtpOverPlainSignalling: false },
  security: {
    allowedSources: [...DEFAULT_ALLOWED_SOURCES],
    maxAuthFailures: 10,
    banSeconds: 900,
  },
  registrar: { minExpires: 60, maxExpires: 3600, defaultExpires: 3600, qualifySeconds: 30 },
  calls: { noAnswerSeconds: 60, sessionExpires: 1800, minSessionExpires: 90 },
};

/** A config problem, worded for one line: `config: sip.port must be <= 65535 (got 70000)`. */
export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(problems.map((p) => `config: ${p}`).join('\n'));
    this.name = 'ConfigError';
  }
}

type Json = unknown;

/**
 * Merges a parsed JSON document over the defaults and checks every key. Throws
 * {@link ConfigError} listing every problem, each naming the key, the rule and the value.
 */
export function resolveConfig(input: Json): Config {
  const problems: string[] = [];
  const cfg: Config = structuredClone(DEFAULT_CONFIG);
  if (!isObject(input)) throw new ConfigError([`the file must hold a JSON object (got ${show(input)})`]);

  const allowed = new Set(['sip', 'extensions', 'trunks', 'stateDir', 'log', 'device', 'dialplan', 'emergencyNumbers', 'media', 'security', 'registrar', 'calls', 'audio', 'dtmf', 'tones', 'board', 'hardware', 'handset', 'intercom', 'discovery', 'metrics', 'messages', 'presence']);
  for (const key of Object.keys(input)) if (!allowed.has(key)) problems.push(`${key} is not a known setting`);

  const sip = input.sip;
  if (sip !== undefined) {
    if (!isObject(sip)) problems.push(`sip must be an object (got ${show(sip)})`);
    else {
      const known = new Set(['bind', 'port', 'domain', 'transports', 'tls', 'connectionIdleSeconds', 'userAgent', 'authAlgorithms']);
      for (const key of Object.keys(sip)) if (!known.has(key)) problems.push(`sip.${key} is not a known setting`);
      if (sip.bind !== undefined) {
        if (typeof sip.bind !== 'string' || sip.bind === '') problems.push(`sip.bind must be an IP address (got ${show(sip.bind)})`);
        else cfg.sip.bind = sip.bind;
      }
      if (sip.port !== undefined) {
        const p = checkPort(sip.port, 'sip.port', problems);
        if (p !== undefined) cfg.sip.port = p;
      }
      if (sip.domain !== undefined) {
        if (typeof sip.domain !== 'string' || !/^[A-Za-z0-9.-]+$/.test(sip.domain)) {
          problems.push(`sip.domain must be a host name (got ${show(sip.domain)})`);
        } else cfg.sip.domain = sip.domain.toLowerCase();
      }
      if (sip.transports !== undefined) {
        if (
          !Array.isArray(sip.transports) ||
          sip.transports.length === 0 ||
          !sip.transports.every((x) => x === 'udp' || x === 'tcp')
        ) {
          problems.push(`sip.transports must be a non-empty list of "udp" and "tcp" (got ${show(sip.transports)})`);
        } else cfg.sip.transports = [...new Set(sip.transports as ('udp' | 'tcp')[])];
      }
      if (sip.connectionIdleSeconds !== undefined) {
        const v = sip.connectionIdleSeconds;
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 86_400) {
          problems.push(`sip.connectionIdleSeconds must be a whole number from 1 to 86400 (got ${show(v)})`);
        } else cfg.sip.connectionIdleSeconds = v;
      }
      if (sip.userAgent !== undefined) {
        if (typeof sip.userAgent !== 'string' || /[\r\n]/.test(sip.userAgent)) {
          problems.push(`sip.userAgent must be a one-line string (got ${show(sip.userAgent)})`);
        } else cfg.sip.userAgent = sip.userAgent;
      }
      if (sip.authAlgorithms !== undefined) {
        const v = sip.authAlgorithms;
        if (!Array.isArray(v) || v.length === 0 || !v.every((a) => a === 'SHA-256' || a === 'MD5') || new Set(v).size !== v.length) {
          problems.push(`sip.authAlgorithms must list "SHA-256" and/or "MD5" once each (got ${show(v)})`);
        } else cfg.sip.authAlgorithms = v as Config['sip']['authAlgorithms'];
      }
      if (sip.tls !== undefined) cfg.sip.tls = checkTls(sip.tls, problems);
    }
  }

  const ext = input.extensions;
  if (ext !== undefined) {
    if (!isObject(ext)) problems.push(`extensions must be an object keyed by number (got ${show(ext)})`);
    else {
      for (const [number, value] of Object.entries(ext)) {
        const key = `extensions.${number}`;
        if (!/^[0-9]{1,15}$/.test(number)) problems.push(`${key}: the extension must be digits only`);
        if (!isObject(value)) {
          // A bare string here is most likely the password itself: never echo it.
          problems.push(`${key} must be an object with a password (got ${typeof value === 'string' ? 'a string' : show(value)})`);
          continue;
        }
        for (const k of Object.keys(value)) if (k !== 'password' && k !== 'name' && k !== 'srtp') problems.push(`${key}.${k} is not a known setting`);
        if (typeof value.password !== 'string' || value.password.length < 8) {
          problems.push(`${key}.password must be a string of at least 8 characters`);
          continue;
        }
        if (value.name !== undefined && typeof value.name !== 'string') problems.push(`${key}.name must be a string (got ${show(value.name)})`);
        cfg.extensions[number] = { password: value.password, ...(typeof value.name === 'string' ? { name: value.name } : {}) };
      }
    }
  }

  if (input.trunks !== undefined) {
    if (!Array.isArray(input.trunks)) problems.push(`trunks must be a list (got ${show(input.trunks)})`);
    else input.trunks.forEach((v, i) => {
      const trunk = checkTrunk(v, `trunks[${i}]`, problems);
      if (trunk) cfg.trunks.push(trunk);
    });
    const names = cfg.trunks.map((t) => t.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) problems.push(`trunks[${i}].name must be unique (got ${show(n)} twice)`);
    });
  }

  if (input.stateDir !== undefined) {
    // "" is the default: $STATE_DIRECTORY under systemd, else ~/.local/state/hookswitch.
    if (typeof input.stateDir !== 'string') problems.push(`stateDir must be a directory path (got ${show(input.stateDir)})`);
    else cfg.stateDir = input.stateDir;
  }

  const log = input.log;
  if (log !== undefined) {
    if (!isObject(log)) problems.push(`log must be an object (got ${show(log)})`);
    else {
      for (const key of Object.keys(log)) if (key !== 'level') problems.push(`log.${key} is not a known setting`);
      if (log.level !== undefined) {
        if (!['debug', 'info', 'warn', 'error'].includes(log.level as string)) {
          problems.push(`log.level must be one of debug, info, warn, error (got ${show(log.level)})`);
        } else cfg.log.level = log.level as Config['log']['level'];
      }
    }
  }

  checkSections(input, cfg, problems);
  checkAudioSections(input, cfg, problems);
  checkPhoneSections(input, cfg, problems);
  checkDiscoverySection(input, cfg, problems);
  checkMetricsSection(input, cfg, problems);
  checkSrtpSection(input, cfg, problems);
  checkPresenceSection(input, cfg, problems);
  checkMessagesSection(input, cfg, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
}

function checkPort(v: Json, key: string, problems: string[]): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    problems.push(`${key} must be a whole number (got ${show(v)})`);
    return undefined;
  }
  if (v < 0) problems.push(`${key} must be >= 0 (got ${v})`);
  else if (v > 65535) problems.push(`${key} must be <= 65535 (got ${v})`);
  else return v;
  return undefined;
}

function checkTls(v: Json, problems: string[]): TlsConfig | undefined {
  if (!isObject(v)) {
    problems.push(`sip.tls must be an object with cert and key (got ${show(v)})`);
    return undefined;
  }
  for (const key of Object.keys(v)) if (!['port', 'cert', 'key', 'ca'].includes(key)) problems.push(`sip.tls.${key} is not a known setting`);
  const port = v.port === undefined ? 5061 : checkPort(v.port, 'sip.tls.port', problems);
  for (const k of ['cert', 'key'] as const) {
    if (typeof v[k] !== 'string' || v[k] === '') problems.push(`sip.tls.${k} must be a file path (got ${show(v[k])})`);
  }
  if (v.ca !== undefined && (typeof v.ca !== 'string' || v.ca === '')) problems.push(`sip.tls.ca must be a file path (got ${show(v.ca)})`);
  if (port === undefined || typeof v.cert !== 'string' || typeof v.key !== 'string') return undefined;
  return { port, cert: v.cert, key: v.key, ...(typeof v.ca === 'string' ? { ca: v.ca } : {}) };
}

const TRUNK_KEYS = [
  'name', 'host', 'port', 'transport', 'username', 'authUsername', 'password', 'register', 'expires', 'outboundProxy',
  'keepAliveSeconds', 'retrySeconds', 'maxRetrySeconds', 'domain', 'srtp',
];

function checkTrunk(v: Json, key: string, problems: string[]): TrunkConfig | undefined {
  if (!isObject(v)) {
    problems.push(`${key} must be an object (got ${show(v)})`);
    return undefined;
  }
  const before = problems.length;
  for (const k of Object.keys(v)) if (!TRUNK_KEYS.includes(k)) problems.push(`${key}.${k} is not a known setting`);
  const str = (k: string, required: boolean): string | undefined => {
    const x = v[k];
    if (x === undefined && !required) return undefined;
    if (typeof x !== 'string' || x === '' || /[\s<>"]/.test(x)) {
      problems.push(`${key}.${k} must be a non-empty string without spaces (got ${show(x)})`);
      return undefined;
    }
    return x;
  };
  const name = str('name', true);
  const host = str('host', true);
  const username = str('username', true);
  const authUsername = str('authUsername', false);
  const outboundProxy = str('outboundProxy', false);
  const password = v.password;
  if (typeof password !== 'string' || password === '') problems.push(`${key}.password must be a non-empty string`);
  const transport = v.transport ?? 'udp';
  if (transport !== 'udp' && transport !== 'tcp' && transport !== 'tls') problems.push(`${key}.transport must be "udp", "tcp" or "tls" (got ${show(transport)})`);
  const port = v.port === undefined ? (transport === 'tls' ? 5061 : 5060) : checkPort(v.port, `${key}.port`, problems);
  const register = v.register ?? true;
  if (typeof register !== 'boolean') problems.push(`${key}.register must be true or false (got ${show(register)})`);
  const expires = v.expires ?? 600;
  if (typeof expires !== 'number' || !Number.isInteger(expires) || expires < 60 || expires > 86_400) {
    problems.push(`${key}.expires must be a whole number of seconds from 60 to 86400 (got ${show(expires)})`);
  }
  const keepAliveSeconds = v.keepAliveSeconds === undefined ? 30 : wholeNumber(v.keepAliveSeconds, `${key}.keepAliveSeconds`, 0, 3600, problems);
  const retrySeconds = v.retrySeconds === undefined ? 30 : wholeNumber(v.retrySeconds, `${key}.retrySeconds`, 1, 3600, problems);
  const maxRetrySeconds = v.maxRetrySeconds === undefined ? 600 : wholeNumber(v.maxRetrySeconds, `${key}.maxRetrySeconds`, 1, 86_400, problems);
  if (retrySeconds !== undefined && maxRetrySeconds !== undefined && maxRetrySeconds < retrySeconds) {
    problems.push(`${key}.maxRetrySeconds must be >= retrySeconds (got ${maxRetrySeconds} < ${retrySeconds})`);
  }
  const domain = v.domain;
  if (domain !== undefined && !isHostName(domain)) problems.push(`${key}.domain must be a host name (got ${show(domain)})`);
  if (problems.length > before) return undefined;
  return {
    name: name!,
    host: host!,
    port: port!,
    transport: transport as TrunkConfig['transport'],
    username: username!,
    ...(authUsername ? { authUsername } : {}),
    password: password as string,
    register: register as boolean,
    expires: expires as number,
    ...(outboundProxy ? { outboundProxy } : {}),
    keepAliveSeconds: keepAliveSeconds!,
    retrySeconds: retrySeconds!,
    maxRetrySeconds: maxRetrySeconds!,
    ...(typeof domain === 'string' ? { domain: domain.toLowerCase() } : {}),
  };
}

export { isCidr, isIpAddress } from './sections.ts';
