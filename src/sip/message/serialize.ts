import type { SipMessage } from './message.ts';

/**
 * Serialises a message to wire bytes. Header fields are written in order with the names as they
 * are held (so unknown headers go out verbatim); Content-Length is always written from the
 * body's real length, replacing any held value, so a message can never misframe.
 */
export function serializeMessage(msg: SipMessage): Buffer {
  let head =
    msg.kind === 'request'
      ? `${msg.method} ${msg.uri} ${msg.version}\r\n`
      : `${msg.version} ${msg.status} ${msg.reason}\r\n`;
  for (const field of msg.headers) {
    if (field.key === 'content-length') continue;
    head += `${field.name}: ${field.value}\r\n`;
  }
  head += `Content-Length: ${msg.body.length}\r\n\r\n`;
  const headBytes = Buffer.from(head, 'latin1');
  return msg.body.length === 0 ? headBytes : Buffer.concat([headBytes, msg.body]);
}
