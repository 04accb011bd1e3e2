/**
 * A pure pcap encoder for `hookswitch trace --pcap`: the classic libpcap file format with
 * LINKTYPE_RAW, each SIP message wrapped in a synthesized IPv4 or IPv6 packet with a UDP header
 * (UDP) or a TCP segment (TCP, and TLS traced as its decrypted SIP). Bytes in, bytes out: the
 * caller writes them to a file.
 *
 * Sources: the pcap file format (https://www.tcpdump.org/manpages/pcap-savefile.5.html and
 * draft-ietf-opsawg-pcap), link types (https://www.tcpdump.org/linktypes.html), RFC 791 (IPv4),
 * RFC 8200 (IPv6), RFC 768 (UDP), RFC 9293 (TCP), RFC 1071 (Internet checksum).
 */
import type { TransportTraceEvent } from '../sip/transport/transport-layer.ts';
import type { TransportName } from '../sip/transport/transport.ts';

/** Magic number of a pcap file with microsecond timestamps (pcap-savefile(5)). */
export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
/** File format version written: 2.4, the only current one (pcap-savefile(5)). */
export const PCAP_VERSION = { major: 2, minor: 4 } as const;
/** LINKTYPE_RAW: each packet begins with an IPv4 or IPv6 header (tcpdump.org linktypes). */
export const LINKTYPE_RAW = 101;
/** Snapshot length written in the header; libpcap's default maximum (MAXIMUM_SNAPLEN). */
export const PCAP_SNAPLEN = 262_144;
export const PCAP_GLOBAL_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;

const IPV4_HEADER_LENGTH = 20;
const IPV6_HEADER_LENGTH = 40;
const UDP_HEADER_LENGTH = 8;
const TCP_HEADER_LENGTH = 20;
/** IANA protocol numbers. */
const PROTO_TCP = 6;
const PROTO_UDP = 17;
/** Initial TTL / hop limit of synthesized packets (the Linux default). */
const HOP_LIMIT = 64;
/** The largest TCP payload per synthesized segment: keeps the IPv4 total length (16 bits) valid. */
export const MAX_TCP_SEGMENT_PAYLOAD = 65_535 - IPV4_HEADER_LENGTH - TCP_HEADER_LENGTH;
/** The largest UDP payload over IPv4 (RFC 791 total length minus headers); more is truncated. */
const MAX_UDP_PAYLOAD = 65_535 - IPV4_HEADER_LENGTH - UDP_HEADER_LENGTH;
/** TCP flags (RFC 9293 §3.1). */
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;
/** TCP flows whose sequence numbers are remembered; the oldest is forgotten past this. */
export const MAX_TCP_FLOWS = 4096;
/** The first sequence number of each direction of a synthesized TCP flow. */
const INITIAL_SEQUENCE = 1;

/** One end of a synthesized packet: a numeric IPv4 or IPv6 address and a port. */
export interface PcapEndpoint {
  address: string;
  port: number;
}

/** One SIP message to record. */
export interface PcapPacket {
  /** Wall-clock milliseconds since the epoch (fractions kept to the microsecond). */
  time: number;
  /** `udp` gives a UDP datagram; `tcp` and `tls` give TCP segments. */
  transport: TransportName;
  source: PcapEndpoint;
  destination: PcapEndpoint;
  payload: Uint8Array;
}

/**
 * Encodes a pcap stream. `header()` once at the start of the file, then `packet()` or `event()`
 * per message; each returns whole records, so a file cut after any returned buffer is valid.
 * Keeps per-flow TCP sequence numbers so that tshark follows each TCP/TLS connection.
 * Addresses that are not numeric IP addresses are written as `0.0.0.0` (or `::`).
 */
export class PcapWriter {
  private readonly flows = new Map<string, Map<string, number>>();
  private ipId = 0;

  /** The 24-byte global header, little-endian (readers detect byte order from the magic). */
  header(): Buffer {
    const b = Buffer.alloc(PCAP_GLOBAL_HEADER_LENGTH);
    b.writeUInt32LE(PCAP_MAGIC_MICROSECONDS, 0);
    b.writeUInt16LE(PCAP_VERSION.major, 4);
    b.writeUInt16LE(PCAP_VERSION.minor, 6);
    b.writeInt32LE(0, 8); // thiszone: timestamps are UTC
    b.writeUInt32LE(0, 12); // sigfigs: always 0
    b.writeUInt32LE(PCAP_SNAPLEN, 16);
    b.writeUInt32LE(LINKTYPE_RAW, 20);
    return b;
  }

  /** The records of one trace event: `in` goes remote → local, `out` local → remote. */
  event(e: Pick<TransportTraceEvent, 'time' | 'direction' | 'transport' | 'local' | 'remote' | 'bytes'>): Buffer {
    const local = { address: e.local.address, port: e.local.port };
    const remote = { address: e.remote.address, port: e.remote.port };
    return this.packet({
      time: e.time,
      transport: e.transport,
      source: e.direction === 'in' ? remote : local,
      destination: e.direction === 'in' ? local : remote,
      payload: e.bytes,
    });
  }

  /** The records of one message: one UDP datagram, or one or more TCP segments. */
  packet(p: PcapPacket): Buffer {
    let src = parseIpAddress(p.source.address);
    let dst = parseIpAddress(p.destination.address);
    // Both ends of a packet share a family: an IPv4 end facing an IPv6 one becomes IPv4-mapped.
    if (src && dst && src.length !== dst.length) {
      if (src.length === 4) src = mapToIpv6(src);
      else dst = mapToIpv6(dst);
    }
    const family = (src ?? dst)?.length === 16 ? 16 : 4;
    src ??= new Uint8Array(family);
    dst ??= new Uint8Array(family);
    if (p.transport === 'udp') {
      const payload = p.payload.subarray(0, MAX_UDP_PAYLOAD);
      return this.record(p.time, this.ip(src, dst, PROTO_UDP, udpSegment(src, dst, p.source.port, p.destination.port, payload)));
    }
    const records: Buffer[] = [];
    const seqs = this.flow(p.transport, p.source, p.destination);
    const from = endpointKey(p.source);
    const to = endpointKey(p.destination);
    for (let offset = 0; offset < p.payload.length || offset === 0; offset += MAX_TCP_SEGMENT_PAYLOAD) {
      const chunk = p.payload.subarray(offset, offset + MAX_TCP_SEGMENT_PAYLOAD);
      const seq = seqs.get(from)!;
      const ack = seqs.get(to)!;
      const segment = tcpSegment(src, dst, p.source.port, p.destination.port, seq, ack, chunk);
      seqs.set(from, (seq + chunk.length) >>> 0);
      records.push(this.record(p.time, this.ip(src, dst, PROTO_TCP, segment)));
      if (p.payload.length === 0) break;
    }
    return Buffer.concat(records);
  }

  private flow(transport: TransportName, a: PcapEndpoint, b: PcapEndpoint): Map<string, number> {
    const ka = endpointKey(a);
    const kb = endpointKey(b);
    const key = `${transport}|${ka < kb ? `${ka}|${kb}` : `${kb}|${ka}`}`;
    let seqs = this.flows.get(key);
    if (!seqs) {
      if (this.flows.size >= MAX_TCP_FLOWS) this.flows.delete(this.flows.keys().next().value!);
      seqs = new Map([
        [ka, INITIAL_SEQUENCE],
        [kb, INITIAL_SEQUENCE],
      ]);
      this.flows.set(key, seqs);
    }
    return seqs;
  }

  private ip(src: Uint8Array, dst: Uint8Array, protocol: number, segment: Buffer): Buffer {
    if (src.length === 4) {
      // RFC 791 §3.1.
      const h = Buffer.alloc(IPV4_HEADER_LENGTH);
      h[0] = 0x45; // version 4, IHL 5 words
      h.writeUInt16BE(IPV4_HEADER_LENGTH + segment.length, 2);
      h.writeUInt16BE(this.ipId, 4);
      this.ipId = (this.ipId + 1) & 0xffff;
      h.writeUInt16BE(0x4000, 6); // Don't Fragment, offset 0
      h[8] = HOP_LIMIT;
      h[9] = protocol;
      h.set(src, 12);
      h.set(dst, 16);
      h.writeUInt16BE(internetChecksum([h]), 10);
      return Buffer.concat([h, segment]);
    }
    // RFC 8200 §3.
    const h = Buffer.alloc(IPV6_HEADER_LENGTH);
    h.writeUInt32BE(0x60000000, 0); // version 6, traffic class 0, flow label 0
    h.writeUInt16BE(segment.length, 4);
    h[6] = protocol;
    h[7] = HOP_LIMIT;
    h.set(src, 8);
    h.set(dst, 24);
    return Buffer.concat([h, segment]);
  }

  private record(time: number, packet: Buffer): Buffer {
    const h = Buffer.alloc(PCAP_RECORD_HEADER_LENGTH);
    let seconds = Math.floor(time / 1000);
    let micros = Math.round((time - seconds * 1000) * 1000);
    if (micros >= 1_000_000) {
      seconds += 1;
      micros -= 1_000_000;
    }
    h.writeUInt32LE(seconds >>> 0, 0);
    h.writeUInt32LE(micros, 4);
    h.writeUInt32LE(packet.length, 8); // incl_len: never above the snaplen (≤ 65535 + 40)
    h.writeUInt32LE(packet.length, 12); // orig_len
    return Buffer.concat([h, packet]);
  }
}

function endpointKey(e: PcapEndpoint): string {
  return `${e.address}|${e.port}`;
}

function mapToIpv6(v4: Uint8Array): Uint8Array {
  const v6 = new Uint8Array(16);
  v6[10] = 0xff;
  v6[11] = 0xff;
  v6.set(v4, 12);
  return v6;
}

/** The pseudo-header both UDP (RFC 768) and TCP (RFC 9293 §3.1; RFC 8200 §8.1 for IPv6) sum. */
function pseudoHeader(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): Buffer {
  if (src.length === 4) {
    const p = Buffer.alloc(12);
    p.set(src, 0);
    p.set(dst, 4);
    p[9] = protocol;
    p.writeUInt16BE(length, 10);
    return p;
  }
  const p = Buffer.alloc(40);
  p.set(src, 0);
  p.set(dst, 16);
  p.writeUInt32BE(length, 32);
  p[39] = protocol;
  return p;
}

function udpSegment(src: Uint8Array, dst: Uint8Array, sport: number, dport: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(UDP_HEADER_LENGTH);
  const length = UDP_HEADER_LENGTH + payload.length;
  h.writeUInt16BE(sport & 0xffff, 0);
  h.writeUInt16BE(dport & 0xffff, 2);
  h.writeUInt16BE(length, 4);
  const sum = internetChecksum([pseudoHeader(src, dst, PROTO_UDP, length), h, payload]);
  // RFC 768: a computed checksum of zero is transmitted as all ones.
  h.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
  return Buffer.concat([h, payload]);
}

function tcpSegment(src: Uint8Array, dst: Uint8Array, sport: number, dport: number, seq: number, ack: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(TCP_HEADER_LENGTH);
  h.writeUInt16BE(sport & 0xffff, 0);
  h.writeUInt16BE(dport & 0xffff, 2);
  h.writeUInt32BE(seq >>> 0, 4);
  h.writeUInt32BE(ack >>> 0, 8);
  h[12] = (TCP_HEADER_LENGTH / 4) << 4; // data offset in 32-bit words
  h[13] = TCP_ACK | (payload.length > 0 ? TCP_PSH : 0);
  h.writeUInt16BE(0xffff, 14); // window
  const sum = internetChecksum([pseudoHeader(src, dst, PROTO_TCP, TCP_HEADER_LENGTH + payload.length), h, payload]);
  h.writeUInt16BE(sum, 16);
  return Buffer.concat([h, payload]);
}

/**
 * The Internet checksum (RFC 1071) of the concatenation of `parts`: the ones' complement of the
 * ones' complement sum of 16-bit big-endian words, an odd final byte padded with zero.
 */
export function internetChecksum(parts: readonly Uint8Array[]): number {
  let sum = 0;
  let odd: number | undefined;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) {
      if (odd === undefined) odd = part[i]!;
      else {
        sum += (odd << 8) | part[i]!;
        odd = undefined;
      }
    }
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (odd !== undefined) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * The bytes of a numeric IP address: 4 for dotted IPv4, 16 for IPv6 (RFC 4291 §2.2 text forms,
 * `::` compression, an embedded IPv4 tail, a `%zone` suffix ignored), undefined for anything else.
 */
export function parseIpAddress(text: string): Uint8Array | undefined {
  const v4 = parseIpv4(text);
  if (v4) return v4;
  const address = text.replace(/%.*$/, '');
  if (!address.includes(':')) return undefined;
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const words = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const groups = s.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes('.')) {
        const tail = parseIpv4(g);
        if (!tail) return undefined;
        out.push((tail[0]! << 8) | tail[1]!, (tail[2]! << 8) | tail[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  const head = words(halves[0]!);
  const tail = halves.length === 2 ? words(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return bytes;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((n) => n <= 255) ? Uint8Array.from(parts) : undefined;
}
