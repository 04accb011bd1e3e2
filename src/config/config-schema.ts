/**
 * The JSON Schema of the config file (draft 2020-12, the dialect conf 15's ajv compiles). It
 * describes every key `resolveConfig` accepts with its type, range, enum and default, and sets
 * `additionalProperties: false` on every object so an unknown key is an error at any depth.
 *
 * `resolveConfig` stays the source of the user-facing messages and of the rules a schema cannot
 * state (one value bounded by another, dial plan targets naming configured trunks); the schema
 * adds what `resolveConfig` leaves to later stages (the `intercom` keys) and lets editors and
 * conf validate the file. Secrets carry `writeOnly: true`; `config get` masks them.
 *
 * Defaults are read from the modules that own them so the two cannot drift apart.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import ajvFormats, { type FormatsPlugin } from 'ajv-formats';
import { HANDSET_DEFAULTS } from '../phone/handset.ts';
import { DEFAULT_INTERCOM_CONFIG, MAX_INTERCOM_TARGETS } from '../phone/intercom.ts';
import { DEFAULT_DOOR_CODE_CONFIG } from '../phone/door-code.ts';
import { CODEC_NAMES } from './audio-sections.ts';
import { DEFAULT_CONFIG } from './config.ts';
import { SRTP_POLICIES } from '../media/srtp-policy.ts';
import { PRESENCE_BOUNDS } from './presence-section.ts';

/** The subset of JSON Schema 2020-12 this file uses. */
export interface JsonSchema {
  $schema?: string;
  $id?: string;
  title?: string;
  description?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  required?: string[];
  items?: JsonSchema | false;
  prefixItems?: JsonSchema[];
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  enum?: readonly unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  anyOf?: JsonSchema[];
  if?: JsonSchema;
  then?: JsonSchema;
  else?: JsonSchema;
  default?: unknown;
  writeOnly?: boolean;
}

const object = (properties: Record<string, JsonSchema>, extra: JsonSchema = {}): JsonSchema => ({
  type: 'object',
  properties,
  additionalProperties: false,
  ...extra,
});
const int = (minimum: number, maximum: number, extra: JsonSchema = {}): JsonSchema => ({ type: 'integer', minimum, maximum, ...extra });
const bool = (extra: JsonSchema = {}): JsonSchema => ({ type: 'boolean', ...extra });
const string = (extra: JsonSchema = {}): JsonSchema => ({ type: 'string', ...extra });
const oneOfStrings = (values: readonly string[], extra: JsonSchema = {}): JsonSchema => ({ type: 'string', enum: values, ...extra });
const listOf = (items: JsonSchema, extra: JsonSchema = {}): JsonSchema => ({ type: 'array', items, ...extra });

/** Matches `name` in any letter case: `media.codecs` takes `g722` as well as `G722`. */
function anyCase(name: string): string {
  return [...name].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c.replace(/[/.]/g, '\\$&'))).join('');
}

const ip: JsonSchema = { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }], description: 'an IP address' };
const HOST_NAME = '^[A-Za-z0-9.-]+$';
const hostName = (extra: JsonSchema = {}): JsonSchema => string({ pattern: HOST_NAME, description: 'a host name', ...extra });
const port = (extra: JsonSchema = {}): JsonSchema => int(0, 65535, extra);
/** A dialled number for intercom targets (src/phone/intercom.ts). */
const dialString = (): JsonSchema => string({ pattern: '^[0-9A-Za-z*#+._-]{1,32}$', description: 'a number to dial' });
const digits = (extra: JsonSchema = {}): JsonSchema => string({ pattern: '^[0-9]{1,15}$', description: 'a string of 1 to 15 digits', ...extra });
/** src/phone/door-code.ts DOOR_CODE_PATTERN: 1-8 DTMF keys other than `*` and `#`. */
const doorCode = (): JsonSchema => string({ pattern: '^[0-9A-D]{1,8}$', description: '1-8 keys of 0-9 and A-D', writeOnly: true });
const alsaDevice = (): JsonSchema => string({ pattern: '^[A-Za-z0-9_:=,.\\-]{1,100}$', description: 'an ALSA device name like plughw:CARD=Device,DEV=0' });
const oneLine = (extra: JsonSchema = {}): JsonSchema => string({ pattern: '^[^\\x00-\\x1f\\x7f]*$', description: 'a one-line string', ...extra });
const d = DEFAULT_CONFIG;

const token = (extra: JsonSchema = {}): JsonSchema => string({ pattern: '^[^\\s<>"]+$', description: 'a non-empty string without spaces', ...extra });

const trunk = object(
  {
    name: token(),
    host: token(),
    port: port(),
    transport: oneOfStrings(['udp', 'tcp', 'tls'], { default: 'udp' }),
    username: token(),
    authUsername: token(),
    password: string({ minLength: 1, writeOnly: true }),
    register: bool({ default: true }),
    expires: int(60, 86_400, { default: 600 }),
    outboundProxy: token(),
    // RFC 5626 §4.4.1 CRLF keep-alives; 0 turns them off.
    keepAliveSeconds: int(0, 3600, { default: 30 }),
    retrySeconds: int(1, 3600, { default: 30 }),
    maxRetrySeconds: int(1, 86_400, { default: 600 }),
    domain: hostName(),
    srtp: oneOfStrings(SRTP_POLICIES),
  },
  { required: ['name', 'host', 'username', 'password'] },
);

const dialRule = object(
  {
    // An MGCP digit map (RFC 3435 §2.1.5) or a /regular expression/.
    match: string({ minLength: 1 }),
    to: string({ pattern: '^(extension:[0-9]{1,15}|device|trunk:.*|echo|peer)$', description: '"extension:<number>", "device", "trunk:<name>", "echo" or "peer"' }),
    strip: { type: 'integer', minimum: 0, default: 0 },
    prepend: string({ pattern: '^[0-9*#+]*$', default: '', description: 'digits, +, * and # only' }),
    // Only with "to": "peer": the peer's DNS-SD instance name (RFC 6763 §4.1.1: at most 63 octets).
    peer: oneLine({ minLength: 1, maxLength: 63, description: "a peer's name of 1 to 63 characters" }),
  },
  { required: ['match', 'to'] },
);

/** `"101"` or `{ "number": "101", "timeoutMs": 20000 }`; if/then/else keeps each branch's own message. */
const intercomTarget: JsonSchema = {
  if: { type: 'string' },
  then: dialString(),
  else: object({ number: dialString(), timeoutMs: int(1_000, 300_000) }, { required: ['number'] }),
};

const ic = DEFAULT_INTERCOM_CONFIG;
const door = DEFAULT_DOOR_CODE_CONFIG;

/** Every setting of the config file. */
export const CONFIG_SCHEMA: JsonSchema = object({
  sip: object({
    bind: string({ minLength: 1, default: d.sip.bind }),
    port: port({ default: d.sip.port }),
    domain: hostName({ default: d.sip.domain }),
    transports: listOf(oneOfStrings(['udp', 'tcp']), { minItems: 1, default: d.sip.transports }),
    tls: object({ port: port({ default: 5061 }), cert: string({ minLength: 1 }), key: string({ minLength: 1 }), ca: string({ minLength: 1 }) }, { required: ['cert', 'key'] }),
    connectionIdleSeconds: int(1, 86_400, { default: d.sip.connectionIdleSeconds }),
    userAgent: string({ pattern: '^[^\\r\\n]*$', default: d.sip.userAgent, description: 'a one-line string' }),
    // RFC 8760 §2.4: offered in this order, most preferred first.
    authAlgorithms: listOf(oneOfStrings(['SHA-256', 'MD5']), { minItems: 1, uniqueItems: true, default: d.sip.authAlgorithms }),
  }),
  extensions: {
    type: 'object',
    propertyNames: digits(),
    additionalProperties: object({ password: string({ minLength: 8, writeOnly: true }), name: string(), srtp: oneOfStrings(SRTP_POLICIES) }, { required: ['password'] }),
    default: d.extensions,
  },
  trunks: listOf(trunk, { default: d.trunks }),
  // '' means $STATE_DIRECTORY under systemd, else ~/.local/state/hookswitch.
  stateDir: string({ default: d.stateDir }),
  log: object({ level: oneOfStrings(['debug', 'info', 'warn', 'error'], { default: d.log.level }) }),
  device: object({ extension: digits({ default: d.device.extension }), autoAnswer: bool({ default: d.device.autoAnswer }) }),
  audio: object(
    {
      backend: oneOfStrings(['alsa', 'file', 'null'], { default: d.audio.backend }),
      capture: string({ minLength: 1, maxLength: 4096, default: d.audio.capture }),
      playback: string({ minLength: 1, maxLength: 4096, default: d.audio.playback }),
      rate: { type: 'integer', enum: [8000, 16000, 32000, 44100, 48000], default: d.audio.rate },
      periodMs: int(5, 100, { default: d.audio.periodMs }),
      bufferMs: int(10, 1000, { default: d.audio.bufferMs }),
      jitterMinMs: int(0, 1000, { default: d.audio.jitterMinMs }),
      jitterMaxMs: int(20, 2000, { default: d.audio.jitterMaxMs }),
    },
    {
      // ALSA device names reach arecord/aplay as arguments: letters, digits and the punctuation of plughw:CARD=Name,DEV=0.
      if: { properties: { backend: { const: 'alsa' } }, required: ['backend'] },
      then: { properties: { capture: alsaDevice(), playback: alsaDevice() } },
    },
  ),
  dtmf: object({
    send: oneOfStrings(['rfc4733', 'info'], { default: d.dtmf.send }),
    durationMs: int(40, 5000, { default: d.dtmf.durationMs }),
    gapMs: int(40, 5000, { default: d.dtmf.gapMs }),
    inband: bool({ default: d.dtmf.inband }),
  }),
  tones: object({
    country: string({ pattern: '^[a-z]{2}$', default: d.tones.country, description: 'a two-letter country code like "de"' }),
    ringtone: string({ pattern: '^/', description: 'the absolute path of a 16-bit mono WAV file' }),
  }),
  board: string({ pattern: '^[A-Za-z0-9_./-]{0,200}$', default: d.board, description: 'a board profile name or a path to one' }),
  hardware: object({
    backend: oneOfStrings(['kernel', 'gpiod'], { default: d.hardware.backend }),
    inputPaths: {
      type: 'object',
      propertyNames: { enum: ['hook', 'pulse', 'offNormal', 'button'] },
      additionalProperties: string({ pattern: '^/dev/', description: 'a /dev/input path' }),
      default: d.hardware.inputPaths,
    },
    serialPort: string({ pattern: '^/', description: 'an absolute path like /dev/serial/by-id/...' }),
  }),
  handset: object({
    interDigitMs: int(500, 30_000, { default: HANDSET_DEFAULTS.interDigitMs }),
    offHookWarningMs: int(5_000, 600_000, { default: HANDSET_DEFAULTS.offHookWarningMs }),
    failureToneMs: int(1_000, 600_000, { default: HANDSET_DEFAULTS.failureToneMs }),
    hotline: string({ pattern: '^[0-9*#+]{1,32}$', description: 'a number of digits, *, # or +' }),
    // The board profile's by default, else 20 Hz for us/ca and 25 Hz elsewhere.
    ringFrequencyHz: int(15, 50),
  }),
  intercom: object({
    targets: listOf(intercomTarget, { maxItems: MAX_INTERCOM_TARGETS, default: ic.targets }),
    mode: oneOfStrings(['sequence', 'parallel'], { default: ic.mode }),
    groupNumber: dialString(),
    groupTimeoutMs: int(1_000, 300_000, { default: ic.groupTimeoutMs }),
    targetTimeoutMs: int(1_000, 300_000, { default: ic.targetTimeoutMs }),
    buttonWhileBusy: oneOfStrings(['ignore', 'hangup'], { default: ic.buttonWhileBusy }),
    autoAnswer: bool({ default: ic.autoAnswer }),
    autoAnswerDelayMs: int(0, 5_000, { default: ic.autoAnswerDelayMs }),
    announceMs: int(0, 5_000, { default: ic.announceMs }),
    callerWhitelist: listOf(string({ minLength: 1 })),
    relayMs: int(100, 60_000, { default: ic.relayMs }),
    door: object({
      code: doorCode(),
      perCaller: { type: 'object', additionalProperties: doorCode(), default: door.perCaller },
      allowedCallers: listOf(string({ minLength: 1 })),
      maxWrong: int(1, 100, { default: door.maxWrong }),
      lockoutMs: int(0, 86_400_000, { default: door.lockoutMs }),
      interDigitMs: int(500, 60_000, { default: door.interDigitMs }),
    }),
  }),
  dialplan: listOf(dialRule, { default: d.dialplan }),
  discovery: object({
    enabled: bool({ default: d.discovery.enabled }),
    // RFC 6763 §4.1.1: no control characters, at most 63 octets; bonjour-service 1.4.4 mangles dots.
    name: string({ pattern: '^[^.\\x00-\\x1f\\x7f]*$', maxLength: 63, default: d.discovery.name, description: 'an instance name without dots or control characters' }),
    interface: string({ format: 'ipv4', description: 'an IPv4 address of this box' }),
    secret: oneLine({ minLength: 12, writeOnly: true }),
  }),
  metrics: object({
    enabled: bool({ default: d.metrics.enabled }),
    port: port({ default: d.metrics.port }),
    bind: { ...ip, default: d.metrics.bind },
  }),
  messages: object({
    maxBytes: int(1, 60_000, { default: d.messages.maxBytes }),
    keep: int(0, 1000, { default: d.messages.keep }),
  }),
  presence: object(
    Object.fromEntries(
      Object.entries(PRESENCE_BOUNDS).map(([k, [min, max]]) => [k, int(min, max, { default: d.presence[k as keyof typeof PRESENCE_BOUNDS] })]),
    ),
  ),
  emergencyNumbers: listOf(digits(), { default: d.emergencyNumbers }),
  media: object({
    rtpPorts: {
      type: 'array',
      prefixItems: [int(1024, 65535), int(1024, 65535)],
      items: false,
      minItems: 2,
      maxItems: 2,
      default: d.media.rtpPorts,
    },
    bind: { ...ip, default: d.media.bind },
    publicAddress: { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }, { pattern: HOST_NAME }], description: 'an IP address or host name' },
    stunServer: string({ pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$', description: 'host or host:port' }),
    rtpTimeoutSeconds: int(1, 86_400, { default: d.media.rtpTimeoutSeconds }),
    codecs: listOf(string({ pattern: `^(${CODEC_NAMES.map(anyCase).join('|')})$`, description: `one of ${CODEC_NAMES.join(', ')}` }), { minItems: 1, default: d.media.codecs }),
    srtp: oneOfStrings(SRTP_POLICIES, { default: d.media.srtp }),
    srtpOverPlainSignalling: bool({ default: d.media.srtpOverPlainSignalling }),
  }),
  security: object({
    allowedSources: listOf(string({ pattern: '^[0-9A-Fa-f.:]+(/[0-9]{1,3})?$', description: 'a CIDR like 192.168.0.0/16 or fe80::/10, or one address' }), { minItems: 1, default: d.security.allowedSources }),
    maxAuthFailures: int(1, 1000, { default: d.security.maxAuthFailures }),
    banSeconds: int(1, 2_592_000, { default: d.security.banSeconds }),
  }),
  registrar: object({
    // RFC 3261 §10.3 step 7: shorter requests get 423 Interval Too Brief.
    minExpires: int(1, 86_400, { default: d.registrar.minExpires }),
    maxExpires: int(1, 86_400, { default: d.registrar.maxExpires }),
    defaultExpires: int(1, 86_400, { default: d.registrar.defaultExpires }),
    qualifySeconds: int(0, 3600, { default: d.registrar.qualifySeconds }),
  }),
  calls: object({
    noAnswerSeconds: int(1, 3600, { default: d.calls.noAnswerSeconds }),
    // RFC 4028 §5: Min-SE "MUST NOT be less than 90 seconds".
    sessionExpires: int(90, 86_400, { default: d.calls.sessionExpires }),
    minSessionExpires: int(90, 86_400, { default: d.calls.minSessionExpires }),
  }),
}, {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'hookswitch configuration',
});

/** One segment of a key path: a property name or a list index (`trunks[0].port` is `trunks`, 0, `port`). */
export type KeySegment = string | number;

/** `['trunks', 0, 'port']` → `trunks[0].port`, the form the problem lines use. */
export function formatKeyPath(segments: readonly KeySegment[]): string {
  return segments.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

/**
 * The schema of the value at `segments`, or undefined when no such setting exists. A digit
 * segment on a list is an index. `anyOf` schemas end the walk (no single answer below them).
 */
export function schemaAt(segments: readonly KeySegment[], root: JsonSchema = CONFIG_SCHEMA): JsonSchema | undefined {
  let node: JsonSchema | undefined = root;
  for (const seg of segments) {
    if (node === undefined) return undefined;
    if (node.type === 'array') {
      const index = typeof seg === 'number' ? seg : /^[0-9]+$/.test(seg) ? Number(seg) : undefined;
      if (index === undefined) return undefined;
      node = node.prefixItems ? node.prefixItems[index] : node.items === false ? undefined : node.items;
    } else if (node.type === 'object' && typeof seg === 'string') {
      const named: JsonSchema | undefined = node.properties?.[seg];
      node = named ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
    } else return undefined;
  }
  return node;
}

/** A copy of `value` (found at `schema`) with every `writeOnly` string replaced by `***`. */
export function maskSecrets(value: unknown, schema: JsonSchema | undefined): unknown {
  if (schema === undefined) return value;
  if (schema.writeOnly && typeof value === 'string') return '***';
  if (Array.isArray(value)) return value.map((v, i) => maskSecrets(v, schemaAt([i], schema)));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecrets(v, schemaAt([k], schema))]));
  }
  return value;
}

/** A schema violation as one line naming the key; `key` is the setting the line is about. */
export interface SchemaProblem {
  key: string;
  line: string;
}

// ajv-formats is CommonJS with `exports.default`; conf 15 unwraps it the same way.
const addFormats = (ajvFormats as unknown as { default: FormatsPlugin }).default;

let validator: ValidateFunction | undefined;

/** The options conf 15 is given too, so both validate the same way; defaults are never filled in. */
export const AJV_OPTIONS = { allErrors: true, useDefaults: false, verbose: true } as const;

function compiled(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv2020(AJV_OPTIONS);
    addFormats(ajv, ['ipv4', 'ipv6']);
    validator = ajv.compile(CONFIG_SCHEMA);
  }
  return validator;
}

const TYPE_WORDS: Record<string, string> = {
  integer: 'a whole number',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
};

function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Every way `doc` breaks {@link CONFIG_SCHEMA}, worded like resolveConfig's lines; [] when valid. */
export function schemaProblems(doc: unknown): SchemaProblem[] {
  const validate = compiled();
  if (validate(doc)) return [];
  const out: SchemaProblem[] = [];
  for (const e of validate.errors ?? []) {
    const p = describe(e, doc);
    if (p && !out.some((o) => o.line === p.line)) out.push(p);
  }
  return out;
}

function instanceSegments(pointer: string, doc: unknown): KeySegment[] {
  const segments: KeySegment[] = [];
  let node: unknown = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const name = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const seg: KeySegment = Array.isArray(node) && /^[0-9]+$/.test(name) ? Number(name) : name;
    segments.push(seg);
    node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[seg] : undefined;
  }
  return segments;
}

function describe(e: ErrorObject, doc: unknown): SchemaProblem | undefined {
  // Branch failures of an anyOf are summed up by the anyOf's own error; `if` only selects `then`.
  if (e.schemaPath.includes('/anyOf/') || e.keyword === 'if') return undefined;
  if (e.propertyName !== undefined && e.keyword !== 'propertyNames') return undefined;
  const segments = instanceSegments(e.instancePath, doc);
  const at = formatKeyPath(segments) || 'the file';
  const child = (name: string): string => formatKeyPath([...segments, name]);
  const key = formatKeyPath(segments);
  const secret = e.parentSchema?.writeOnly === true;
  const got = secret ? '' : ` (got ${shown(e.data)})`;
  const params = e.params as Record<string, unknown>;
  const problem = (subject: string, rule: string): SchemaProblem => ({ key: subject === at ? key : subject, line: `${subject} ${rule}` });
  switch (e.keyword) {
    case 'additionalProperties':
      return problem(child(String(params.additionalProperty)), 'is not a known setting');
    case 'propertyNames':
      return problem(child(String(params.propertyName)), 'is not a known setting');
    case 'required':
      return problem(child(String(params.missingProperty)), 'is required');
    case 'type':
      return problem(at, `must be ${TYPE_WORDS[String(params.type)] ?? String(params.type)}${got}`);
    case 'minimum':
      return problem(at, `must be >= ${String(params.limit)}${got}`);
    case 'maximum':
      return problem(at, `must be <= ${String(params.limit)}${got}`);
    case 'enum':
      return problem(at, `must be one of ${(params.allowedValues as unknown[]).map((v) => String(v)).join(', ')}${got}`);
    case 'minLength':
      return problem(at, `${params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long`}${got}`);
    case 'maxLength':
      return problem(at, `must be at most ${String(params.limit)} characters long${got}`);
    case 'minItems':
      return problem(at, `must have at least ${String(params.limit)} ${params.limit === 1 ? 'entry' : 'entries'}${got}`);
    case 'maxItems':
    case 'items':
      return problem(at, `must have at most ${String(params.limit)} entries${got}`);
    case 'uniqueItems':
      return problem(at, `must not list a value twice${got}`);
    case 'pattern':
    case 'anyOf':
      return problem(at, `must be ${e.parentSchema?.description ?? `a string matching ${String(params.pattern)}`}${got}`);
    default:
      return problem(at, `${e.message ?? 'is invalid'}${got}`);
  }
}
