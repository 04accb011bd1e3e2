/**
 * One MESSAGE the gateway sends (RFC 3428) on a non-INVITE client transaction (RFC 3261
 * §17.1.2), with the Digest retry of §22.2 when the target challenges (trunks), reporting one
 * final status. Pure: requests go out through the injected transaction layer.
 */
import { challengeIsStale, type DigestClient } from '../sip/auth/digest-client.ts';
import { buildRequest, newCallId, newTag } from '../sip/dialog/request-builder.ts';
import type { SipRequest, SipResponse } from '../sip/message/message.ts';
import { formatHostPort } from '../sip/message/uri.ts';
import type { TransactionLayer } from '../sip/transaction/transaction-layer.ts';
import type { Destination } from '../sip/transaction/types.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Random } from '../runtime/random.ts';

/** What a {@link sendMessage} needs from the gateway. */
export interface MessageClientEnv {
  transactions: Pick<TransactionLayer, 'sendRequest' | 'newBranch'>;
  random: Random;
  logger: Logger;
  userAgent: string;
}

/** One MESSAGE to send: where, as whom, and what. */
export interface OutboundMessage {
  /** Where the request goes (a binding's flow, a trunk's address). */
  flow: Destination;
  /** Our address facing `flow`, for the Via sent-by. */
  local: { address: string; port: number };
  requestUri: string;
  /** From without a tag (one is added). */
  from: string;
  to: string;
  maxForwards: number;
  /** Content-Type and the other content headers to carry over; written after the core headers. */
  headers: [string, string][];
  body: Buffer;
  /** Answers 401/407 of this target (trunks); without it a challenge is a final failure. */
  digest?: DigestClient;
  /** A label for logs (extension contact, trunk name). */
  label: string;
}

/**
 * How a MESSAGE ended: the final response's status (and the response), 408 when Timer F fired,
 * 503 on a transport error, 500 when it could not be sent at all.
 */
export type MessageDone = (status: number, response?: SipResponse) => void;

const CHALLENGES = {
  401: { challenge: 'WWW-Authenticate', credentials: 'Authorization' },
  407: { challenge: 'Proxy-Authenticate', credentials: 'Proxy-Authorization' },
} as const;

/** Challenges answered for one MESSAGE at most (a stale nonce may need a second answer). */
const MAX_CHALLENGES = 3;

/**
 * Sends `spec` and calls `done` exactly once with the final outcome. Provisional responses are
 * ignored (RFC 3428 §4 gives them no meaning for MESSAGE).
 *
 * RFC 3428 §4: "MESSAGE requests do not initiate dialogs. User Agents MUST NOT insert Contact
 * header fields into MESSAGE requests", so none is written.
 */
export function sendMessage(env: MessageClientEnv, spec: OutboundMessage, done: MessageDone): void {
  const callId = newCallId(env.random);
  const fromTag = newTag(env.random);
  let cseq = 1;
  let credentials: [string, string][] = [];
  let answered = 0;
  let finished = false;
  const finish = (status: number, res?: SipResponse): void => {
    if (finished) return;
    finished = true;
    done(status, res);
  };

  const send = (): void => {
    const transport = spec.flow.transport.toUpperCase();
    const via = `SIP/2.0/${transport} ${formatHostPort(spec.local.address, spec.local.port)};branch=${env.transactions.newBranch()};rport`;
    let request: SipRequest;
    try {
      request = buildRequest({
        method: 'MESSAGE',
        requestUri: spec.requestUri,
        from: `${spec.from};tag=${fromTag}`,
        to: spec.to,
        callId,
        cseq,
        random: env.random,
        maxForwards: spec.maxForwards,
        via,
        extraHeaders: [['User-Agent', env.userAgent], ...spec.headers, ...credentials],
        body: spec.body,
      }).request;
    } catch (err) {
      env.logger.warn('MESSAGE not built', { target: spec.label, reason: err instanceof Error ? err.message : String(err) });
      queueMicrotask(() => finish(500));
      return;
    }
    try {
      env.transactions.sendRequest(request, spec.flow, {
        onResponse: (res) => onResponse(request, res),
        onTimeout: () => finish(408),
        onTransportError: () => finish(503),
      });
    } catch (err) {
      env.logger.error('MESSAGE not sent', { target: spec.label, reason: err instanceof Error ? err.message : String(err) });
      queueMicrotask(() => finish(500));
    }
  };

  const onResponse = (request: SipRequest, res: SipResponse): void => {
    if (res.status < 200 || finished) return;
    if ((res.status === 401 || res.status === 407) && retry(request, res)) return;
    finish(res.status, res);
  };

  /**
   * RFC 3261 §22.2: a challenge is answered with credentials on a new request with "the same
   * Call-ID" and a CSeq "incremented by one" (§8.1.3.5); a second challenge to credentials we
   * sent is answered only when it says the nonce was stale (RFC 7616 §3.3).
   */
  const retry = (request: SipRequest, res: SipResponse): boolean => {
    const digest = spec.digest;
    if (!digest || answered >= MAX_CHALLENGES) return false;
    const kind = CHALLENGES[res.status as 401 | 407];
    const challenges = res.headers.getAll(kind.challenge);
    if (answered > 0 && !challengeIsStale(challenges)) return false;
    const value = digest.authorize({ challenges, method: 'MESSAGE', uri: request.uri, body: request.body });
    if (value === undefined) return false;
    answered++;
    credentials = [...credentials.filter(([name]) => name !== kind.credentials), [kind.credentials, value]];
    cseq++;
    send();
    return true;
  };

  send();
}
