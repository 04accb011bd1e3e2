/**
 * The SIP transaction user for requests addressed to the gateway (src/sip/ua/uas-core.ts), wired
 * for the composition root (gateway.ts). The UAS core is made before the stack, and the call
 * layer (the B2BUA) and the MESSAGE relay only after it: the core reaches them through accessors,
 * which are set before the transports listen, so no request can arrive while they are missing.
 */
import type { MessageRelay } from '../calls/message-relay.ts';
import { UasCore, type CallHandler, type UasCoreOptions } from '../sip/ua/uas-core.ts';

/** The {@link UasCoreOptions} with the late parts as accessors. */
export interface UasWiring extends Omit<UasCoreOptions, 'calls' | 'messages'> {
  /** The call layer, once made. */
  calls(): CallHandler | undefined;
  /** The MESSAGE relay (RFC 3428), once made. */
  messages(): Pick<MessageRelay, 'receive'> | undefined;
  /** `messages.maxBytes` of the running config (a reload may change it). */
  maxMessageBytes(): number;
}

/** A {@link UasCore} handing calls and messages to what `w.calls()` and `w.messages()` return. */
export function createUasCore(w: UasWiring): UasCore {
  const { calls, messages, maxMessageBytes, ...options } = w;
  return new UasCore({
    ...options,
    calls: {
      invite: (req, tx, user) => calls()!.invite(req, tx, user),
      inviteFromTrunk: (req, tx, trunk) => calls()!.inviteFromTrunk(req, tx, trunk),
      ownsDialog: (req) => calls()?.ownsDialog(req) ?? false,
      inDialog: (req, tx) => calls()!.inDialog(req, tx),
      ack: (ack, source) => calls()?.ack(ack, source),
      cancel: (invite) => calls()?.cancel(invite),
      strayResponse: (res, source) => calls()?.strayResponse(res, source),
    },
    messages: { maxBytes: maxMessageBytes, message: (req, tx, from) => messages()!.receive(req, tx, from) },
  });
}
