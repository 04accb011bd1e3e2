/**
 * `hookswitch audio-test`: plays a tone on the configured playback device while recording the
 * capture device, then prints level, clipping and, with a loopback cable, the round-trip latency.
 */
import { parseArgs } from 'node:util';
import { createAudioBackend } from '../audio/backend-registry.ts';
import { runAudioTest } from '../audio/audio-test.ts';
import { ConfigError } from '../config/config.ts';
import { loadStoredConfig, resolveConfigPath } from '../config/config-file.ts';
import { SystemClock } from '../runtime/clock.ts';
import { LineLogger } from '../runtime/logger.ts';

function db(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(1)} dBFS` : 'silence';
}

/** The help of `hookswitch audio-test`. */
export const AUDIO_TEST_USAGE = `Usage: hookswitch audio-test [--config FILE] [--backend alsa|file|null] [--capture DEV] [--playback DEV]
  Plays a 1 kHz tone on the playback device while recording the capture device, then prints
  the level, clipping and, with a loopback cable from output to input, the round-trip latency.
  --config FILE     The config file whose audio settings are used (default: embedded defaults)
  --backend NAME    Overrides audio.backend
  --capture DEV     Overrides audio.capture (an ALSA device such as plughw:CARD=Device,DEV=0;
                    for the file backend a WAV path)
  --playback DEV    Overrides audio.playback
`;

/** Runs `hookswitch audio-test ARGV`; exits the process with 2 on a usage or config error. */
export async function audioTest(argv: string[]): Promise<void> {
  let values: { config?: string; backend?: string; capture?: string; playback?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        backend: { type: 'string' },
        capture: { type: 'string' },
        playback: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`hookswitch: ${(e as Error).message} (see hookswitch audio-test --help)\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(AUDIO_TEST_USAGE);
    return;
  }
  let audio;
  try {
    const cfg = loadStoredConfig(resolveConfigPath(process.env, values.config), { mustExist: values.config !== undefined }).config;
    audio = cfg.audio;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const backend = values.backend ?? audio.backend;
  if (backend !== 'alsa' && backend !== 'file' && backend !== 'null') {
    process.stderr.write(`hookswitch: --backend must be alsa, file or null (got ${backend})\n`);
    process.exit(2);
  }
  const clock = new SystemClock();
  const logger = new LineLogger((line) => process.stderr.write(`${line}\n`), 'hookswitch', 'warn');
  const device = createAudioBackend(backend, { clock, logger: logger.child('audio'), alsa: { periodMs: audio.periodMs, bufferMs: audio.bufferMs } }).open({
    rate: audio.rate,
    frameMs: audio.periodMs,
    capture: values.capture ?? audio.capture,
    playback: values.playback ?? audio.playback,
  });
  // The system clock's timers do not hold the process open; this does, until the test is done.
  const keepAlive = setInterval(() => undefined, 1000);
  const r = await runAudioTest(device, clock, audio.rate).finally(() => clearInterval(keepAlive));
  await device.stop();
  const out = [
    `backend: ${backend} (capture ${values.capture ?? audio.capture}, playback ${values.playback ?? audio.playback}, ${audio.rate} Hz)`,
    `recorded: ${Math.round(r.recordedMs)} ms${r.complete ? '' : ' (capture stopped early)'}`,
    `level: rms ${db(r.rmsDbfs)}, peak ${db(r.peakDbfs)}`,
    `clipping: ${r.clippedSamples} samples`,
    `tone heard: ${r.toneDetected ? 'yes' : 'no'} (${Math.round(r.toneRatio * 100)} % of the energy)`,
    `round-trip latency: ${r.latencyMs === null ? 'not measured (no loopback)' : `${r.latencyMs.toFixed(1)} ms`}`,
    `xruns: ${r.stats.xruns}, restarts: ${r.stats.restarts}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
