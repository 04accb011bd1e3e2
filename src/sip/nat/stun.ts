/**
 * The STUN message codec (RFC 5389), as far as a client learning its public address needs it:
 * Binding requests out; Binding responses in, with XOR-MAPPED-ADDRESS (§15.2), MAPPED-ADDRESS
 * (§15.1, for RFC 3489 servers), ERROR-CODE (§15.6) and FINGERPRINT (§15.5). Pure.
 */
import { formatIpAddress, parseIpAddress } from '../../security/cidr.ts';

/** RFC 5389 §6: the fixed value in bytes 4-7 of every message. */
export const STUN_MAGIC_COOKIE = 0x2112a442;
/** RFC 5389 §6: the header is 20 bytes. */
export const STUN_HEADER_LENGTH = 20;

/** Message types (method Binding = 0x001 in each class, RFC 5389 §6 and §18.1). */
export const StunType = {
  BindingRequest: 0x0001,
  BindingIndication: 0x0011,
  BindingSuccess: 0x0101,
  BindingError: 0x0111,
} as const;

/** Attribute types (RFC 5389 §18.2). */
export const StunAttr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorMappedAddress: 0x0020,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
} as const;

/** An address and port as carried in (XOR-)MAPPED-ADDRESS. */
export interface StunAddress {
  address: string;
  port: number;
}

/** One attribute, value without padding. */
export interface StunAttribute {
  type: number;
  value: Buffer;
}

/** A decoded message. */
export interface StunMessage {
  /** The 14-bit message type, e.g. {@link StunType.BindingSuccess}. */
  type: number;
  /** Method (0x001 = Binding) and class, split out of `type` (RFC 5389 §6, figure 3). */
  method: number;
  class: 'request' | 'indication' | 'success' | 'error';
  /** 12 bytes, a copy. */
  transactionId: Buffer;
  attributes: StunAttribute[];
  /** From XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS. */
  mappedAddress?: StunAddress;
  /** From ERROR-CODE in an error response. */
  error?: { code: number; reason: string };
  /**
   * Comprehension-required attributes (type < 0x8000) this codec does not know. RFC 5389
   * §7.3.3: a client discards a success response that has any, and §7.3.4 fails an error one.
   */
  unknownRequired: number[];
}

/** A message that is not well-formed STUN. `code` is stable. */
export class StunError extends Error {
  readonly code = 'STUN_ERR_MALFORMED';
  constructor(message: string) {
    super(message);
    this.name = 'StunError';
  }
}

const KNOWN = new Set<number>(Object.values(StunAttr));
const CLASSES = ['request', 'indication', 'success', 'error'] as const;
/** RFC 5389 §15.5: FINGERPRINT is the CRC-32 of the message XOR 0x5354554e. */
const FINGERPRINT_XOR = 0x5354554e;

/**
 * RFC 5389 §7.3 and §8: a datagram is STUN when its first two bits are zero, bytes 4-7 hold the
 * magic cookie and the length field (a multiple of 4) covers exactly the rest. RTP starts with
 * version 2 (`10`) and SIP with a letter (`01`), so a socket shared with them can demultiplex.
 */
export function isStun(buf: Uint8Array): boolean {
  if (buf.length < STUN_HEADER_LENGTH || (buf[0]! & 0xc0) !== 0) return false;
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const length = view.readUInt16BE(2);
  return view.readUInt32BE(4) === STUN_MAGIC_COOKIE && length % 4 === 0 && STUN_HEADER_LENGTH + length === buf.length;
}

/**
 * Encodes a message: header, then each attribute padded to 4 bytes (§15). With `fingerprint`
 * a FINGERPRINT attribute is appended last (§15.5).
 */
export function encodeMessage(type: number, transactionId: Uint8Array, attributes: readonly StunAttribute[] = [], opts: { fingerprint?: boolean } = {}): Buffer {
  if (transactionId.length !== 12) throw new RangeError(`a STUN transaction ID is 12 bytes, got ${transactionId.length}`);
  if (type < 0 || type > 0x3fff) throw new RangeError(`STUN message type out of range: ${type}`);
  const parts: Buffer[] = [];
  for (const a of attributes) {
    if (a.value.length > 0xffff) throw new RangeError(`STUN attribute 0x${a.type.toString(16)} too long`);
    const head = Buffer.alloc(4);
    head.writeUInt16BE(a.type, 0);
    head.writeUInt16BE(a.value.length, 2);
    parts.push(head, a.value, Buffer.alloc((4 - (a.value.length % 4)) % 4));
  }
  const body = Buffer.concat(parts);
  const extra = opts.fingerprint ? 8 : 0;
  const out = Buffer.alloc(STUN_HEADER_LENGTH + body.length + extra);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(body.length + extra, 2);
  out.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  Buffer.from(transactionId).copy(out, 8);
  body.copy(out, STUN_HEADER_LENGTH);
  if (opts.fingerprint) {
    const at = STUN_HEADER_LENGTH + body.length;
    out.writeUInt16BE(StunAttr.Fingerprint, at);
    out.writeUInt16BE(4, at + 2);
    out.writeUInt32BE((crc32(out.subarray(0, at)) ^ FINGERPRINT_XOR) >>> 0, at + 4);
  }
  return out;
}

/** RFC 5389 §7.1: a Binding request with no attributes (no authentication is used). */
export function encodeBindingRequest(transactionId: Uint8Array): Buffer {
  return encodeMessage(StunType.BindingRequest, transactionId);
}

/**
 * An XOR-MAPPED-ADDRESS (§15.2) or MAPPED-ADDRESS (§15.1) attribute. XOR: the port is XORed with
 * the top 16 bits of the cookie, an IPv4 address with the cookie, an IPv6 address with the
 * cookie followed by the transaction ID.
 */
export function encodeAddressAttribute(type: number, mapped: StunAddress, transactionId: Uint8Array): StunAttribute {
  const ip = parseIpAddress(mapped.address);
  if (!ip) throw new RangeError(`not an IP address: ${JSON.stringify(mapped.address)}`);
  if (!Number.isInteger(mapped.port) || mapped.port < 0 || mapped.port > 0xffff) throw new RangeError(`bad port ${mapped.port}`);
  const value = Buffer.alloc(4 + ip.bytes.length);
  value[1] = ip.family === 4 ? 0x01 : 0x02;
  const xor = type === StunAttr.XorMappedAddress;
  value.writeUInt16BE(xor ? mapped.port ^ (STUN_MAGIC_COOKIE >>> 16) : mapped.port, 2);
  const mask = xorMask(transactionId);
  for (let i = 0; i < ip.bytes.length; i++) value[4 + i] = xor ? ip.bytes[i]! ^ mask[i]! : ip.bytes[i]!;
  return { type, value };
}

/**
 * Decodes one datagram. Throws {@link StunError} when it is not STUN (see {@link isStun}),
 * when an attribute overruns the message, when an address attribute is malformed, or when a
 * FINGERPRINT does not match (§15.5). Unknown attributes are kept in `attributes`.
 */
export function decodeMessage(input: Uint8Array): StunMessage {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buf.length < STUN_HEADER_LENGTH) throw new StunError(`STUN message shorter than the ${STUN_HEADER_LENGTH}-byte header (${buf.length} bytes)`);
  if ((buf[0]! & 0xc0) !== 0) throw new StunError('STUN message type must start with two zero bits');
  if (buf.readUInt32BE(4) !== STUN_MAGIC_COOKIE) throw new StunError('STUN magic cookie missing');
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0) throw new StunError(`STUN message length ${length} is not a multiple of 4`);
  if (STUN_HEADER_LENGTH + length !== buf.length) throw new StunError(`STUN message length ${length} does not match the ${buf.length - STUN_HEADER_LENGTH} bytes after the header`);
  const type = buf.readUInt16BE(0);
  const transactionId = Buffer.from(buf.subarray(8, 20));
  const attributes: StunAttribute[] = [];
  const unknownRequired: number[] = [];
  let xorMapped: StunAddress | undefined;
  let mapped: StunAddress | undefined;
  let error: StunMessage['error'];
  for (let at = STUN_HEADER_LENGTH; at < buf.length; ) {
    if (at + 4 > buf.length) throw new StunError(`STUN attribute header at byte ${at} overruns the message`);
    const attrType = buf.readUInt16BE(at);
    const attrLength = buf.readUInt16BE(at + 2);
    const end = at + 4 + attrLength;
    if (end > buf.length) throw new StunError(`STUN attribute 0x${hex4(attrType)} of ${attrLength} bytes overruns the message`);
    const value = Buffer.from(buf.subarray(at + 4, end));
    attributes.push({ type: attrType, value });
    if (attrType === StunAttr.XorMappedAddress && !xorMapped) xorMapped = decodeAddress(value, transactionId, true);
    else if (attrType === StunAttr.MappedAddress && !mapped) mapped = decodeAddress(value, transactionId, false);
    else if (attrType === StunAttr.ErrorCode && !error) error = decodeErrorCode(value);
    else if (attrType === StunAttr.Fingerprint) {
      // §15.5: FINGERPRINT is the last attribute, over everything before it.
      if (attrLength !== 4 || end !== buf.length) throw new StunError('STUN FINGERPRINT must be the last attribute, 4 bytes long');
      const expected = (crc32(buf.subarray(0, at)) ^ FINGERPRINT_XOR) >>> 0;
      if (value.readUInt32BE(0) !== expected) throw new StunError('STUN FINGERPRINT does not match');
    } else if (attrType < 0x8000 && !KNOWN.has(attrType)) unknownRequired.push(attrType);
    at = end + ((4 - (attrLength % 4)) % 4);
    if (at > buf.length) throw new StunError(`STUN attribute 0x${hex4(attrType)} padding overruns the message`);
  }
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const cls = CLASSES[((type >> 4) & 1) | ((type >> 7) & 2)]!;
  const mappedAddress = xorMapped ?? mapped;
  return {
    type,
    method,
    class: cls,
    transactionId,
    attributes,
    ...(mappedAddress ? { mappedAddress } : {}),
    ...(error ? { error } : {}),
    unknownRequired,
  };
}

function decodeAddress(value: Buffer, transactionId: Buffer, xor: boolean): StunAddress {
  const name = xor ? 'XOR-MAPPED-ADDRESS' : 'MAPPED-ADDRESS';
  if (value.length < 4) throw new StunError(`${name} shorter than 4 bytes`);
  const family = value[1];
  const size = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (size === 0) throw new StunError(`${name} has unknown address family 0x${family!.toString(16)}`);
  if (value.length !== 4 + size) throw new StunError(`${name} for IPv${size === 4 ? 4 : 6} must be ${4 + size} bytes, got ${value.length}`);
  const rawPort = value.readUInt16BE(2);
  const mask = xorMask(transactionId);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = xor ? value[4 + i]! ^ mask[i]! : value[4 + i]!;
  return {
    address: formatIpAddress({ family: size === 4 ? 4 : 6, bytes }),
    port: xor ? rawPort ^ (STUN_MAGIC_COOKIE >>> 16) : rawPort,
  };
}

/** §15.6: 21 reserved bits, class (hundreds) in 3 bits, number (0-99) in 8, then UTF-8 reason. */
function decodeErrorCode(value: Buffer): { code: number; reason: string } {
  if (value.length < 4) throw new StunError('ERROR-CODE shorter than 4 bytes');
  const cls = value[2]! & 0x07;
  const number = value[3]!;
  if (cls < 3 || cls > 6 || number > 99) throw new StunError(`ERROR-CODE out of range: class ${cls}, number ${number}`);
  return { code: cls * 100 + number, reason: value.subarray(4).toString('utf8') };
}

/** The magic cookie followed by the transaction ID: the XOR key of XOR-MAPPED-ADDRESS. */
function xorMask(transactionId: Uint8Array): Buffer {
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(STUN_MAGIC_COOKIE, 0);
  Buffer.from(transactionId).copy(mask, 4);
  return mask;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

let CRC_TABLE: Uint32Array | undefined;

/** CRC-32 (ISO/IEC 3309, the one RFC 5389 §15.5 and zlib use). */
function crc32(data: Uint8Array): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
