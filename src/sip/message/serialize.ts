import { wireName } from './headers.ts';
import type { SipMessage } from './message.ts';

/**
 * Serialises a message to wire bytes in canonical form: CRLF line ends, `Name: value` with
 * folding undone, known header names in their long canonical spelling (unknown headers keep
 * their name and value verbatim), fields in their order. Content-Length is always written from
 * the body's real length, replacing any held value, so a message can never misframe.
 */
export function serializeMessage(msg: SipMessage): Buffer {
  let head =
    msg.kind === 'request'
      ? `${msg.method} ${msg.uri} ${msg.version}\r\n`
      : `${msg.version} ${msg.status} ${msg.reason}\r\n`;
  for (const field of msg.headers) {
    if (field.key === 'content-length') continue;
    head += `${wireName(field)}: ${field.value}\r\n`;
  }
  const body = msg.body;
  head += `Content-Length: ${body.length}\r\n\r\n`;
  // One allocation: the header section is latin1, one byte per character.
  const out = Buffer.allocUnsafe(head.length + body.length);
  out.write(head, 0, 'latin1');
  // A typed-array copy: `Buffer#copy` adds argument checks around the same native copy.
  if (body.length > 0) out.set(body, head.length);
  return out;
}
