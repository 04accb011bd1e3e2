/**
 * The device's inbox for instant messages (RFC 3428 MESSAGE routed to the `device` target): each
 * delivered message is logged (`message received`, sender and size, never the text) and the
 * newest ones are kept for `hookswitch status`. Listeners (an intercom that shows or logs them)
 * are told of each one. Pure: time comes with the message.
 */
import type { Logger } from '../runtime/logger.ts';

/** One message delivered to the device. */
export interface ReceivedMessage {
  /** The sender: an extension number, or the caller ID a trunk gave. */
  from: string;
  /** The sender's display name, when the request or the config had one. */
  display?: string;
  /** The number the message was addressed to (after the dial plan). */
  to: string;
  /** `type/subtype` of the body, lower-case; `text/plain` when the request named none. */
  contentType: string;
  /** Size of the body in bytes. */
  bytes: number;
  /** The body as UTF-8 text for `text/*` bodies; absent for other types. */
  text?: string;
  /** When it arrived, wall-clock ms since the epoch. */
  at: number;
}

/** Where the message relay hands messages for the device. */
export interface MessageSink {
  /** A message for the device arrived (authenticated, routed, within the size limit). */
  deliver(message: ReceivedMessage): void;
}

/** Construction options of {@link MessageInbox}. */
export interface MessageInboxOptions {
  logger: Logger;
  /** How many messages to keep, read at each delivery (`messages.keep`; a reload applies). */
  keep(): number;
}

/** The device's {@link MessageSink}: a log line per message and the newest `keep()` messages. */
export class MessageInbox implements MessageSink {
  private readonly kept: ReceivedMessage[] = [];
  private readonly listeners = new Set<(m: ReceivedMessage) => void>();

  constructor(private readonly opts: MessageInboxOptions) {}

  deliver(message: ReceivedMessage): void {
    this.opts.logger.info('message received', { from: message.from, to: message.to, bytes: message.bytes, type: message.contentType });
    this.kept.push(message);
    const keep = Math.max(0, this.opts.keep());
    if (this.kept.length > keep) this.kept.splice(0, this.kept.length - keep);
    for (const listener of [...this.listeners]) {
      try {
        listener(message);
      } catch (err) {
        this.opts.logger.warn('message listener failed', { reason: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /** The kept messages, oldest first (copies). */
  list(): ReceivedMessage[] {
    return this.kept.map((m) => ({ ...m }));
  }

  /** Calls `listener` for each message delivered from now on; returns the function that stops it. */
  onMessage(listener: (m: ReceivedMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
