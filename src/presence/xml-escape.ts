/**
 * XML 1.0 character data and attribute values for the presence documents (RFC 4235, RFC 3863).
 * What goes in comes from the network (display names, URIs) and may hold anything.
 */

/**
 * Characters XML 1.0 does not allow at all (§2.2 `Char`): C0 controls except TAB, LF and CR,
 * lone surrogates, U+FFFE and U+FFFF. Escaping cannot carry them, so they are replaced.
 */
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/**
 * Returns `value` safe for both element content and a double- or single-quoted attribute value:
 * the five predefined entities (XML 1.0 §4.6) replace `& < > " '`, and characters XML 1.0 forbids
 * become U+FFFD. TAB, LF and CR are kept (in attributes they are written as character
 * references so that attribute-value normalisation, §3.3.3, does not turn them into spaces).
 */
export function escapeXml(value: string): string {
  return value
    .replace(NOT_XML_CHAR, '\uFFFD')
    .replace(/[&<>"']/g, (c) => ENTITIES[c]!)
    .replace(/[\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`);
}
