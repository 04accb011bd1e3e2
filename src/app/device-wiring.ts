/**
 * Wires the device endpoint for the composition root: the sound card backend, the codecs in the
 * configured order, the resamplers, an RTP port pair per call and the audio stream over them.
 */
import { readFileSync } from 'node:fs';
import { createAudioBackend } from '../audio/backend-registry.ts';
import { parseWav } from '../audio/wav-format.ts';
import type { DeviceCall } from '../calls/device-call.ts';
import type { LocalEnd } from '../calls/types.ts';
import type { Config } from '../config/config.ts';
import { CallProgressTones } from '../device/call-progress.ts';
import { DeviceEndpoint } from '../device/device-endpoint.ts';
import { builtinCodecs } from '../media/codec/builtin.ts';
import { AudioStream } from '../media/endpoint/audio-stream.ts';
import { DeviceMedia } from '../media/endpoint/device-media.ts';
import { EndpointSdp } from '../media/endpoint/endpoint-sdp.ts';
import { legSecurity } from '../media/srtp-policy.ts';
import { RtpSocket } from '../media/endpoint/rtp-socket.ts';
import type { PortAllocator } from '../media/port-allocator.ts';
import type { ResamplerFactory } from '../media/resample/types.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { randomToken, type Random } from '../runtime/random.ts';

export interface DeviceWiring {
  config: Config;
  clock: Clock;
  random: Random;
  logger: Logger;
  resamplers: ResamplerFactory;
  /** `media.rtpPorts`, shared with the call relays. */
  ports: PortAllocator;
  /** Echo suppression in the microphone path (a speaker-and-microphone intercom). */
  echoSuppression: boolean;
  /** Places a call from the device (the B2BUA, created after the endpoint). */
  dial(number: string, follow: (call: DeviceCall) => LocalEnd): Promise<DeviceCall | { status: number; reason: string }>;
}

export function createDeviceEndpoint(w: DeviceWiring): DeviceEndpoint {
  const { config, clock, random } = w;
  const log = w.logger;
  const cname = `hookswitch-${randomToken(random, 8)}@${config.sip.domain}`;
  const audio = createAudioBackend(config.audio.backend, {
    clock,
    logger: log.child('audio'),
    alsa: { periodMs: config.audio.periodMs, bufferMs: config.audio.bufferMs },
  });
  return new DeviceEndpoint({
    clock,
    logger: log.child('device'),
    audio,
    audioOptions: { rate: config.audio.rate, frameMs: config.audio.periodMs, capture: config.audio.capture, playback: config.audio.playback },
    autoAnswer: config.device.autoAnswer,
    tones: new CallProgressTones(config.tones.country, config.audio.rate, config.tones.ringtone === undefined ? undefined : loadRingtone(config.tones.ringtone, config.audio.rate, w.resamplers)),
    dtmf: config.dtmf,
    dial: w.dial,
    createMedia: async () => {
      const socket = await RtpSocket.open(w.ports, config.media.bind, log.child('media'));
      const stream = new AudioStream({
        clock,
        random,
        resamplers: w.resamplers,
        cardRate: config.audio.rate,
        jitter: { minDelayMs: config.audio.jitterMinMs, maxDelayMs: config.audio.jitterMaxMs },
        inbandDtmf: config.dtmf.inband,
        send: { rtp: (p) => socket.sendRtp(p), rtcp: (p) => socket.sendRtcp(p) },
        cname,
        echoSuppression: w.echoSuppression,
      });
      let media: DeviceMedia | undefined;
      // Read per call: a reload changes `media.codecs` in place for the calls that follow.
      const sdp = new EndpointSdp(builtinCodecs().ordered(config.media.codecs), random, { address: () => media!.address, port: () => socket.port });
      // The far leg's SRTP policy, once the call layer says who it is (setLegPeer), from the running config.
      media = new DeviceMedia(sdp, socket, stream, clock, log.child('media'), (peer) => legSecurity(config, peer));
      return media;
    },
  });
}

/**
 * Reads the ringtone WAV (16-bit mono, any rate) and converts it to the card's rate. Throws a
 * one-line error naming `tones.ringtone` when the file cannot be used: the gateway does not start.
 */
export function loadRingtone(path: string, cardRate: number, resamplers: ResamplerFactory): Int16Array {
  let wav;
  try {
    wav = parseWav(readFileSync(path), path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`config: tones.ringtone cannot be used: ${err.code === 'ENOENT' ? `${path} does not exist` : err.message}`);
  }
  if (wav.samples.length === 0) throw new Error(`config: tones.ringtone cannot be used: ${path} holds no audio`);
  const resampler = resamplers.create(wav.rate, cardRate);
  try {
    return resampler.process(wav.samples);
  } finally {
    resampler.close();
  }
}
