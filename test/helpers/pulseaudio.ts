/**
 * A private PulseAudio server for real-time audio tests without a sound card: a null sink and a
 * null source, reachable by ALSA programs through `-D pulse` (libasound2-plugins), plus ALSA
 * `file` plugin devices for byte-exact checks.
 *
 * Facts found by experiment (PulseAudio 16.1, Debian, running as root in a container):
 * - Root is fine without `--system`: pulseaudio only warns "This program is not intended to be
 *   run as root". It needs a writable HOME (cookie) and XDG_RUNTIME_DIR, both set to a fresh
 *   temporary directory here; D-Bus is not needed (a warning). `-n -F script` loads only our
 *   modules; `auth-anonymous=1` spares clients the cookie.
 * - module-null-source's default latency is 2 s: arecord then receives ~1.7 s of silence at once
 *   before settling to real time. `max_latency_msec=40` makes it real-time from the first frame
 *   (measured: 260 ms of audio per 261 ms of wall time from the start).
 * - The sink's monitor (`hs_sink.monitor`) is a loopback cable: capture from it hears what aplay
 *   plays into the sink. `PULSE_SOURCE` / `PULSE_SINK` in a client's environment choose the
 *   source and sink `-D pulse` uses, so one server serves both set-ups ({@link PulseAudio.env},
 *   {@link PulseAudio.loopbackEnv}).
 * - The ALSA `file` plugin with `slave.pcm "pulse"` keeps pulse's real-time pacing and is
 *   byte-exact: capture returns the `infile` bytes instead of the slave's, playback writes every
 *   byte played to `file` (aplay pads its last period with silence). The plugin devices are
 *   defined in `$HOME/.asoundrc`, which alsa-lib reads via HOME in the children's environment.
 * - `arecord -D null` returns uninitialised bytes instantly: never a microphone.
 * - A null sink's monitor delivers its first audio 1.4–1.9 s after its first client connects,
 *   whether or not a stream plays into the sink; later clients (arecord, parec) get audio within
 *   one period, also after seconds without any. Warm a monitor up before timing matters.
 * - module-sine-source (a ready-made tone microphone) hands out 2 s of audio at once when
 *   capture starts, then runs in real time: feed a second null sink with `pacat` instead.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PulseAudioOptions {
  /** Rate of the null sink and source; default 48000. */
  rate?: number;
  /**
   * More `server.pa` lines after the default devices, e.g. a second null sink or
   * `load-module module-sine-source source_name=hs_sine rate=48000 frequency=1000`.
   */
  modules?: string[];
}

export interface PulseAudio {
  dir: string;
  /** Children's environment: `-D pulse` captures the (silent) null source and plays into the null sink. */
  env: NodeJS.ProcessEnv;
  /** Children's environment where `-D pulse` capture hears the sink's monitor (loopback cable). */
  loopbackEnv: NodeJS.ProcessEnv;
  /** ALSA PCM `hs_filecap`: real-time paced by pulse, delivering the bytes of {@link fileCaptureInput}. */
  fileCapture: 'hs_filecap';
  /** ALSA PCM `hs_fileplay`: plays into the null sink and writes every byte to {@link filePlaybackOutput}. */
  filePlayback: 'hs_fileplay';
  /** Raw S16_LE mono the `hs_filecap` device captures (write it before starting arecord). */
  fileCaptureInput: string;
  /** Raw S16_LE mono the `hs_fileplay` device writes. */
  filePlaybackOutput: string;
  /** Runs `pactl` against this server. */
  pactl(...args: string[]): Promise<string>;
  /** Stops the server (SIGTERM, SIGKILL after 2 s) and removes its directory. */
  stop(): Promise<void>;
}

/** Starts the server and resolves once `pactl info` answers (rejects after 10 s with its log). */
export async function startPulseAudio(opts: PulseAudioOptions = {}): Promise<PulseAudio> {
  const rate = opts.rate ?? 48000;
  const dir = mkdtempSync(join(tmpdir(), 'hs-pulse-'));
  const home = join(dir, 'home');
  const runtime = join(dir, 'run');
  mkdirSync(home);
  mkdirSync(runtime, { mode: 0o700 });
  const socket = join(dir, 'native');
  const fileCaptureInput = join(dir, 'filecap-in.raw');
  const filePlaybackOutput = join(dir, 'fileplay-out.raw');
  writeFileSync(fileCaptureInput, '');
  writeFileSync(
    join(dir, 'server.pa'),
    [
      `load-module module-native-protocol-unix auth-anonymous=1 socket=${socket}`,
      `load-module module-null-sink sink_name=hs_sink rate=${rate} channels=1`,
      `load-module module-null-source source_name=hs_source rate=${rate} channels=1 max_latency_msec=40`,
      'set-default-sink hs_sink',
      'set-default-source hs_source',
      ...(opts.modules ?? []),
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'client.conf'), 'autospawn = no\n');
  writeFileSync(
    join(home, '.asoundrc'),
    [
      'pcm.hs_filecap {',
      '  type file',
      '  slave.pcm "pulse"',
      '  file "/dev/null"',
      `  infile "${fileCaptureInput}"`,
      '  format "raw"',
      '}',
      'pcm.hs_fileplay {',
      '  type file',
      '  slave.pcm "pulse"',
      `  file "${filePlaybackOutput}"`,
      '  format "raw"',
      '}',
      '',
    ].join('\n'),
  );
  const base: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_RUNTIME_DIR: runtime,
    PULSE_RUNTIME_PATH: join(runtime, 'pulse'),
    PULSE_CLIENTCONFIG: join(dir, 'client.conf'),
  };
  delete base.PULSE_SERVER;
  const env: NodeJS.ProcessEnv = { ...base, PULSE_SERVER: `unix:${socket}`, PULSE_SINK: 'hs_sink', PULSE_SOURCE: 'hs_source' };
  const loopbackEnv: NodeJS.ProcessEnv = { ...env, PULSE_SOURCE: 'hs_sink.monitor' };

  let log = '';
  const server: ChildProcess = spawn(
    'pulseaudio',
    ['-n', '--daemonize=no', '--exit-idle-time=-1', '--no-cpu-limit', '--realtime=no', '--high-priority=no', '--use-pid-file=no', '--log-target=stderr', '--log-level=notice', '-F', join(dir, 'server.pa')],
    { env: base, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  server.stderr?.on('data', (b: Buffer) => {
    if (log.length < 20_000) log += b.toString();
  });
  let exited = false;
  let stopping = false;
  const exit = new Promise<void>((resolve) => {
    server.on('exit', (code, signal) => {
      exited = true;
      // A server dying under a test shows up as "Connection refused" in the clients: say why here.
      if (!stopping) process.stderr.write(`pulseaudio exited unexpectedly (code ${code}, signal ${signal}):\n${log.slice(-3000)}\n`);
      resolve();
    });
    server.on('error', (err) => {
      log += `\n${err.message}`;
      exited = true;
      resolve();
    });
  });

  const pactl = (...args: string[]) =>
    new Promise<string>((resolve, reject) => {
      execFile('pactl', args, { env, timeout: 5000 }, (err, stdout, stderr) => (err ? reject(new Error(`pactl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
    });

  const stop = async () => {
    stopping = true;
    if (!exited) {
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 2000);
      await exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await pactl('info');
      break;
    } catch (err) {
      if (exited || Date.now() > deadline) {
        await stop();
        throw new Error(`pulseaudio did not start: ${err instanceof Error ? err.message : String(err)}\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    dir,
    env,
    loopbackEnv,
    fileCapture: 'hs_filecap',
    filePlayback: 'hs_fileplay',
    fileCaptureInput,
    filePlaybackOutput,
    pactl,
    stop,
  };
}
