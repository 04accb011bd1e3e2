/**
 * The Presence Information Data Format (RFC 3863), `application/pidf+xml`, as the presence
 * event package (RFC 3856) carries it: one tuple whose `basic` status is `open` while the
 * presentity has a registration and `closed` otherwise. Pure: a value in, a string out.
 */
import { escapeXml } from './xml-escape.ts';

/** RFC 3863 §4 (and RFC 3856 §6.5, NOTIFY bodies): the body type of `Event: presence` NOTIFYs. */
export const PIDF_CONTENT_TYPE = 'application/pidf+xml';

/** RFC 3863 §4.4 schema: the namespace of the PIDF elements. */
export const PIDF_NAMESPACE = 'urn:ietf:params:xml:ns:pidf';

/** RFC 3863 §4.1.4: `open` means the contact can accept communication, `closed` that it cannot. */
export type BasicStatus = 'open' | 'closed';

/** One presence document with a single tuple (RFC 3863 §4.1). */
export interface PresenceDocument {
  /** The presentity's URI (`entity` attribute, §4.1.1), e.g. `sip:101@hookswitch.local`. */
  entity: string;
  /** The tuple's `id` (§4.1.2): an XML ID, i.e. an NCName (letter or `_` first, no colon). */
  tupleId: string;
  basic: BasicStatus;
  /** `<contact>` (§4.1.5): where to reach the presentity. */
  contact?: string;
  /** `<note>` (§4.1.6): free text for humans. */
  note?: string;
}

/** XML 1.0 Names restricted to ASCII, without colons (Namespaces in XML §3, NCName). */
const NCNAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

/** A tuple id (an NCName, RFC 3863 §4.1.2) made from any resource name: invalid characters become `_`. */
export function tupleIdFor(resource: string): string {
  return `t-${resource.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

/**
 * Encodes a PIDF document (RFC 3863 §4.1) with one tuple: `status/basic`, then `contact` and
 * `note`, in the schema's order (§4.4). Throws a RangeError when `tupleId` is not an NCName
 * (a caller bug; see {@link tupleIdFor}).
 */
export function encodePidf(doc: PresenceDocument): string {
  if (!NCNAME.test(doc.tupleId)) {
    throw new RangeError(`PIDF tuple id ${JSON.stringify(doc.tupleId)} is not an XML ID (RFC 3863 §4.1.2)`);
  }
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<presence xmlns="${PIDF_NAMESPACE}" entity="${escapeXml(doc.entity)}">`,
    `  <tuple id="${doc.tupleId}">`,
    '    <status>',
    `      <basic>${doc.basic}</basic>`,
    '    </status>',
  ];
  if (doc.contact !== undefined) lines.push(`    <contact>${escapeXml(doc.contact)}</contact>`);
  if (doc.note !== undefined) lines.push(`    <note>${escapeXml(doc.note)}</note>`);
  lines.push('  </tuple>', '</presence>');
  return `${lines.join('\n')}\n`;
}
