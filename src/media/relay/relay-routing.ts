/**
 * How the media session programs its relay once offer/answer settled (pure; used by
 * `media-session.ts`): payload-number maps when the legs share codecs, one transcoder per
 * direction when they do not.
 */
import type { AudioCodec } from '../codec/codec.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Random } from '../../runtime/random.ts';
import type { LegName, MediaRelay } from '../rtp-relay.ts';
import { codecKey } from '../sdp.ts';
import { directionPlan, type LegNumbering, type TranscodingSupport } from '../transcode-plan.ts';
import { RtpTranscoder } from '../transcoder.ts';

/** The codecs of each leg while the relay transcodes, by SDP identity, and the shared event format. */
export interface Transcoding {
  keys: Record<LegName, string>;
  codecs: Record<LegName, AudioCodec>;
  event: string | undefined;
}

/** The packetisation the gateway sends when it transcodes. */
export const TRANSCODE_PTIME = 20;

const other = (leg: LegName): LegName => (leg === 'a' ? 'b' : 'a');

/**
 * Sets a relay's payload maps and transcoders. The media session calls {@link relay} or
 * {@link transcode} after every completed exchange and {@link stop} when transcoding must end
 * (echo). A transcoder stays while its plan is unchanged (hold, session refresh), so its stream,
 * SSRC and RTCP go on.
 */
export class RelayRouting {
  /** What the current transcoder of each direction was built from. */
  private readonly plans: Record<LegName, string | undefined> = { a: undefined, b: undefined };

  constructor(
    private readonly target: MediaRelay,
    private readonly random: Random,
    private readonly support: TranscodingSupport | undefined,
    private readonly logger: Logger | undefined,
  ) {}

  /**
   * Relaying: packets arriving from leg X towards leg Y carry Y's numbers (what Y declared it
   * receives). X may send with the numbers of its own SDP or of the gateway's SDP on X (RFC 3264
   * §6.1 wants the latter); both are mapped, X's own winning a clash. Ends any transcoding.
   */
  relay(negotiated: readonly string[], legs: Record<LegName, LegNumbering>): void {
    this.stop();
    for (const x of ['a', 'b'] as const) {
      const y = other(x);
      const map = new Map<number, number>();
      const targetOf = (key: string): number | undefined => legs[y].peer.find((c) => codecKey(c) === key)?.pt ?? legs[y].gatewayPts.get(key);
      for (const key of negotiated) {
        const target = targetOf(key);
        const viaGateway = legs[x].gatewayPts.get(key);
        if (target !== undefined && viaGateway !== undefined && !map.has(viaGateway)) map.set(viaGateway, target);
      }
      for (const key of negotiated) {
        const target = targetOf(key);
        const own = legs[x].peer.find((c) => codecKey(c) === key)?.pt;
        if (target !== undefined && own !== undefined) map.set(own, target);
      }
      this.target.setPayloadMap(x, map);
    }
  }

  /** One transcoder per direction; an unchanged plan keeps the running one. */
  transcode(plan: Transcoding, legs: Record<LegName, LegNumbering>): void {
    for (const x of ['a', 'b'] as const) {
      const y = other(x);
      const { input, output, events, signature } = directionPlan(legs[x], legs[y], plan.keys[x], plan.keys[y], plan.event);
      if (this.plans[x] === signature) continue;
      this.plans[x] = signature;
      this.target.setPayloadMap(x, new Map());
      const resamplers = this.support?.resamplers;
      this.target.setTranscoder(
        x,
        new RtpTranscoder({
          input: { codec: plan.codecs[x], payloadTypes: input },
          output: { codec: plan.codecs[y], payloadType: output },
          events,
          ptimeMs: TRANSCODE_PTIME,
          random: this.random,
          ...(resamplers === undefined ? {} : { resamplers }),
          ...(this.logger === undefined ? {} : { logger: this.logger }),
        }),
      );
    }
  }

  /** Removes the transcoders, if any (the relay closes them). */
  stop(): void {
    for (const x of ['a', 'b'] as const) {
      if (this.plans[x] === undefined) continue;
      this.plans[x] = undefined;
      this.target.setTranscoder(x, undefined);
    }
  }
}
