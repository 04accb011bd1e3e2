/**
 * Media benchmark, all on 127.0.0.1, in one run (under about 3 minutes; `--quick` under 2):
 * 1. CPU per call-minute of a device call, hookswitch next to baresip 1.0.0 doing the same job:
 *    the gateway (the production bundle, built here by scripts/build.mjs into
 *    node_modules/.cache so that dist/ is left alone) runs the `file` audio backend at 48 kHz
 *    (a 1 kHz WAV as the microphone, the earpiece written to a WAV); baresip, with its aufile
 *    source (a 440 Hz WAV at 48 kHz) and aufile player at 48 kHz, calls the device, which answers
 *    by itself. Each side then resamples 48 kHz ↔ the codec's rate, encodes, decodes and runs a
 *    jitter buffer. Per codec (PCMU, G.722, opus; 20 ms), utime + stime of each process from
 *    /proc/PID/stat over the steady part of the call, minus each one's idle rate measured just
 *    before the call. Then, to show where that time goes, the same AudioStream pipeline in this
 *    process without sockets or files: flat out, and paced by 20 ms timers like a card (next to
 *    an empty 20 ms timer, the bare cost of waking up 50 times a second).
 * 2. Latency the gateway adds (the pure AudioStream on a simulated clock; see
 *    bench-media-pure.ts): RTP arrival → playback write, capture read → RTP sent; the target
 *    is at most ptime + the jitter buffer's target + 10 ms.
 * 3. Transcoding G.722 ↔ PCMA per call (two pure RtpTranscoders), and calls per core.
 * Run: `npm run bench -- --media-only [--quick]` or `node --import tsx scripts/bench-media.ts [--quick]`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadSpeexResampler } from '../src/media/resample/speex-resampler.ts';
import { startBaresip, type Baresip, type BaresipCodec } from '../test/helpers/baresip.ts';
import { findExecutable, REPO_ROOT, startGateway, type GatewayProcess } from '../test/helpers/gateway-process.ts';
import { dominantFrequency, readWav, writeToneWav } from '../test/helpers/wav.ts';
import { cpuSeconds } from './bench-sip-lib.ts';
import { CARD_RATE, CODECS, createPipeline, downlinkLatency, JITTER, PERIOD_MS, pipelineCpu, PTIME_MS, transcodingCost, uplinkLatency, type BenchCodec, type Spread } from './bench-media-pure.ts';

const QUICK = process.argv.includes('--quick');
const IDLE_MS = 3_000;
const SETTLE_MS = 3_000;
const MEASURE_MS = QUICK ? 8_000 : 15_000;
const LATENCY_SECONDS = QUICK ? 12 : 20;
const PHASES = QUICK ? [1, 6, 11, 16] : [1, 3.5, 6, 8.5, 11, 13.5, 16, 18.5];
const PIPELINE_SECONDS = QUICK ? 10 : 30;
const PACED_SECONDS = QUICK ? 4 : 8;
const TRANSCODE_SECONDS = QUICK ? 25 : 50;
const TOTAL_BUDGET_MS = 180_000;
const DEVICE_TONE = 1000;
const PHONE_TONE = 440;
const started = performance.now();
const remaining = () => TOTAL_BUDGET_MS - (performance.now() - started);
const out = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const f = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const range = (s: Spread, digits = 1) => `${f(s.min, digits)} / ${f(s.mean, digits)} / ${f(s.max, digits)}`;

const resamplers = await loadSpeexResampler();
const work = mkdtempSync(join(tmpdir(), 'hookswitch-bench-media-'));
const stoppers: (() => Promise<unknown> | void)[] = [];
async function cleanup(): Promise<void> {
  for (const stop of stoppers.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

interface DeviceCallResult {
  label: string;
  hookswitch: number;
  baresip: number;
  heard: string;
}

const device = await deviceCalls().catch(async (e: Error) => {
  out(`  device calls failed: ${e.message}`);
  process.exitCode = 1;
  return [] as DeviceCallResult[];
});
await cleanup();

out(`\nthe same pipeline in this process, without sockets or files (pure AudioStream, 1 kHz captured, 440 Hz received): s of CPU per call-minute`);
out(`  flat out (${PIPELINE_SECONDS} s of audio as fast as it runs, after a warm-up) and paced by 20 ms timers (${PACED_SECONDS} s, like a card)`);
const flat = CODECS.map((c) => pipelineCpu(c, resamplers, PIPELINE_SECONDS).perMinute);
await sleep(1_000);
const emptyTimer = await pacedCpu(() => undefined, PACED_SECONDS / 2);
out(`  for scale: an empty 20 ms timer (a Node process waking 50 times a second, doing nothing) costs ${f(emptyTimer)} here`);
const pipeline: { label: string; flat: number; paced: number }[] = [];
for (const [i, c] of CODECS.entries()) {
  const paced = await pacedPipeline(c, PACED_SECONDS);
  pipeline.push({ label: c.label, flat: flat[i]!, paced });
  out(`  ${c.label.padEnd(5)} flat out ${f(flat[i]!)}, paced ${f(paced)}`);
}

out(`\nlatency added inside the gateway (pure AudioStream, simulated clock; card ${CARD_RATE / 1000} kHz with 20 ms periods, ptime ${PTIME_MS} ms, jitter ${JITTER.minDelayMs}-${JITTER.maxDelayMs} ms, speexdsp q${resamplers.quality})`);
out(`  downlink: RTP arrival → the sample written to the playback pipe (its place in the write at 48 kHz); ${PHASES.length} arrival phases × ${LATENCY_SECONDS - 3} onsets, ms min / mean / max`);
out(`  uplink: capture read → the sample's place in the RTP packet sent (codec algorithmic delay included), ms min / mean / max`);
const latency: { label: string; down: ReturnType<typeof downlinkLatency>; up: ReturnType<typeof uplinkLatency> }[] = [];
for (const c of CODECS) {
  const down = downlinkLatency(c, resamplers, PHASES, LATENCY_SECONDS);
  const up = uplinkLatency(c, resamplers, LATENCY_SECONDS);
  latency.push({ label: c.label, down, up });
  out(
    `  ${c.label.padEnd(5)} downlink ${range(down.latency)} with jitter target ${range(down.target, 0)} → budget ptime + target + 10 = ${f(PTIME_MS + down.target.min + 10, 0)}…${f(PTIME_MS + down.target.max + 10, 0)} ms, ` +
      `${down.overBudget} of ${down.latency.n} onsets over it (worst ${down.worstMargin >= 0 ? '+' : ''}${f(down.worstMargin, 1)} ms); uplink ${range(up.latency)}; processing ${f(down.tickMicros, 0)} µs per 20 ms tick`,
  );
}

out(`\ntranscoding G.722 ↔ PCMA, one call both directions (two pure RtpTranscoders, speexdsp q${resamplers.quality}, ${TRANSCODE_SECONDS} s of 20 ms packets after a warm-up)`);
const transcode = transcodingCost(resamplers, TRANSCODE_SECONDS);
out(`  ${f(transcode.msPerMinute, 0)} ms CPU per call-minute (${f((transcode.msPerMinute / 60000) * 100, 2)} % of one core); one core carries ~${f(transcode.callsPerCore, 0)} transcoded calls on this work alone (sockets not counted); ${transcode.packetsOut} packets produced`);

out(`\nsummary ${new Date().toISOString().slice(0, 10)}:`);
out(`  (an empty 20 ms timer: ${f(emptyTimer)})`);
for (const d of device) {
  const p = pipeline.find((x) => x.label === d.label);
  out(`  ${d.label}: hookswitch ${f(d.hookswitch)} s/call-min, baresip ${f(d.baresip)}, ratio ${f(d.hookswitch / d.baresip)} (target ≤ 1.0); the pipeline alone ${f(p?.flat ?? NaN)} flat out, ${f(p?.paced ?? NaN)} paced`);
}
for (const l of latency) out(`  ${l.label}: downlink max ${f(l.down.latency.max)} ms (${l.down.overBudget} over budget, worst ${f(l.down.worstMargin, 1)} ms), uplink max ${f(l.up.latency.max)} ms`);
out(`  transcoding G.722 ↔ PCMA: ${f(transcode.msPerMinute, 0)} ms per call-minute, ~${f(transcode.callsPerCore, 0)} calls per core`);
out(`media benchmark took ${f((performance.now() - started) / 1000, 0)} s`);

/**
 * The gateway (bundle) with the `file` backend at 48 kHz; one baresip per codec registers,
 * idles IDLE_MS (both idle rates measured), calls the device, and after SETTLE_MS both processes'
 * CPU is read over MEASURE_MS; then it hangs up and the earpiece WAV is checked for 440 Hz.
 */
async function deviceCalls(): Promise<DeviceCallResult[]> {
  if (!findExecutable('baresip')) throw new Error('baresip is not installed (scripts/ci-deps.sh)');
  const bundle = join(REPO_ROOT, 'node_modules', '.cache', 'hookswitch-bench', 'hookswitch.mjs');
  mkdirSync(dirname(bundle), { recursive: true });
  const built = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs'), '--outfile', bundle], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  if (built.status !== 0) throw new Error(`build failed: ${built.stderr}`);
  const codecs: { label: string; baresip: BaresipCodec; ext: string; extra: string[] }[] = [
    { label: 'PCMU', baresip: 'PCMU/8000/1', ext: '301', extra: [] },
    { label: 'G722', baresip: 'G722/16000/1', ext: '302', extra: [] },
    // The gateway's encoder settings (src/media/codec/opus.ts defaults), so both encode alike.
    // (`opus_stereo no` would make baresip register opus/48000/1, which the account's
    // `audio_codecs=opus/48000/2` does not find: it then offers every codec.)
    { label: 'opus', baresip: 'opus/48000/2', ext: '303', extra: ['opus_bitrate 24000', 'opus_complexity 5', 'opus_inbandfec yes', 'opus_packet_loss 10'] },
  ];
  const password = (ext: string) => `bench-${ext}-secret`;
  const mic = join(work, 'device-mic.wav');
  const ear = join(work, 'device-ear.wav');
  const phoneTone = join(work, 'phone-tone.wav');
  const callSeconds = (IDLE_MS + SETTLE_MS + MEASURE_MS) / 1000 + 30;
  writeToneWav(mic, { rate: CARD_RATE, seconds: callSeconds, frequency: DEVICE_TONE });
  writeToneWav(phoneTone, { rate: CARD_RATE, seconds: callSeconds, frequency: PHONE_TONE });
  const config = join(work, 'hookswitch.json');
  writeFileSync(
    config,
    JSON.stringify({
      log: { level: 'info' },
      sip: { domain: 'hookswitch.test', authAlgorithms: ['MD5'] },
      extensions: Object.fromEntries(codecs.map((c) => [c.ext, { password: password(c.ext) }])),
      device: { extension: '100', autoAnswer: true },
      media: { rtpPorts: [27000, 27199], bind: '127.0.0.1', codecs: ['PCMU', 'G722', 'opus'] },
      audio: { backend: 'file', capture: mic, playback: ear, rate: CARD_RATE, periodMs: Number(process.env.BENCH_PERIOD_MS ?? 20) },
      registrar: { qualifySeconds: 0 },
    }),
  );
  const gw: GatewayProcess = await startGateway({ entry: bundle, args: ['--config', config] });
  stoppers.push(() => gw.stop());
  out(`\ndevice call CPU: hookswitch bundle (pid ${gw.pid}, file backend at ${CARD_RATE / 1000} kHz) answers baresip 1.0.0 (aufile source and player at 48 kHz), ${PTIME_MS} ms packets;`);
  out(`  CPU from /proc over ${MEASURE_MS / 1000} s of each call (after ${SETTLE_MS / 1000} s), minus each process's idle rate over ${IDLE_MS / 1000} s before it; s of CPU per call-minute`);
  const results: DeviceCallResult[] = [];
  for (const c of codecs) {
    if (remaining() < IDLE_MS + SETTLE_MS + MEASURE_MS + 60_000) {
      out(`  ${c.label}: skipped, out of time budget`);
      continue;
    }
    const phone: Baresip = await startBaresip({
      name: `bench-${c.ext}`,
      account: { user: c.ext, password: password(c.ext), registrar: `127.0.0.1:${gw.port}` },
      codecs: [c.baresip],
      toneWav: phoneTone,
      extraConfig: ['auplay_srate 48000', 'auplay_channels 1', ...c.extra],
    });
    try {
      await phone.waitEvent('REGISTER_OK', { timeoutMs: 10_000 });
      const idle = await sample(gw.pid, phone.pid, IDLE_MS);
      const since = phone.events.length;
      const logFrom = gw.log().length;
      await phone.dial(`sip:100@127.0.0.1:${gw.port}`);
      await phone.waitEvent('CALL_ESTABLISHED', { since, timeoutMs: 10_000 });
      await sleep(SETTLE_MS);
      const call = await sample(gw.pid, phone.pid, MEASURE_MS);
      await phone.hangup();
      await phone.waitEvent('CALL_CLOSED', { since, timeoutMs: 10_000 });
      // The info-level log stays far below the helper's 1 MB cap, so offsets hold.
      const callLog = () => gw.log().slice(logFrom);
      for (let i = 0; i < 50 && !callLog().includes('msg="call media"'); i++) await sleep(100);
      const perMinute = (busy: number, idleRate: number) => ((busy - idleRate * call.seconds) / call.seconds) * 60;
      const hs = perMinute(call.gw, idle.gw / idle.seconds);
      const bs = perMinute(call.phone, idle.phone / idle.seconds);
      const heard = earpiece(ear);
      const stats = lastLine(callLog(), 'call media');
      if (!stats.toLowerCase().includes(`codec=${c.label.toLowerCase()} `)) {
        out(`  ${c.label}: not counted, the call did not use ${c.label} (${stats})`);
        continue;
      }
      results.push({ label: c.label, hookswitch: hs, baresip: bs, heard });
      out(
        `  ${c.label.padEnd(5)} hookswitch ${f(hs)} s/call-min (${f((hs / 60) * 100, 1)} % of a core), baresip ${f(bs)} (${f((bs / 60) * 100, 1)} %), ratio ${f(hs / bs)} (target ≤ 1.0); ` +
          `idle ${f((idle.gw / idle.seconds) * 60)} / ${f((idle.phone / idle.seconds) * 60)} s/min subtracted`,
      );
      out(`        earpiece: ${heard}; gateway's call line: ${stats}`);
    } finally {
      await phone.stop();
    }
  }
  await gw.stop();
  return results;
}

/** Both processes' CPU seconds over `ms` of wall time, read back to back at each end. */
async function sample(gwPid: number, phonePid: number, ms: number): Promise<{ gw: number; phone: number; seconds: number }> {
  const g0 = cpuSeconds(gwPid);
  const p0 = cpuSeconds(phonePid);
  const t0 = performance.now();
  await sleep(ms);
  const g1 = cpuSeconds(gwPid);
  const p1 = cpuSeconds(phonePid);
  return { gw: g1 - g0, phone: p1 - p0, seconds: (performance.now() - t0) / 1000 };
}

/** The fields of the gateway's last log line with this message (packets, loss, concealment). */
function lastLine(log: string, msg: string): string {
  const line = log.split('\n').filter((l) => l.includes(`msg="${msg}"`) || l.includes(`msg=${msg}`)).at(-1);
  if (!line) return '(none)';
  return ['codec', 'packetsSent', 'packetsReceived', 'lost', 'concealed', 'lateDrops', 'jitterTargetMs'].map((k) => new RegExp(`\\b${k}=("[^"]*"|\\S+)`).exec(line)?.[0]).filter(Boolean).join(' ');
}

/** The dominant frequency of 2 s from the middle of the earpiece WAV. */
function earpiece(path: string): string {
  const wav = readWav(path);
  const mid = Math.floor(wav.samples.length / 2);
  const part = wav.samples.subarray(Math.max(0, mid - wav.rate), mid + wav.rate);
  const d = dominantFrequency(part, wav.rate);
  const ok = d.frequency === PHONE_TONE && d.ratio > 0.8;
  return `${(wav.samples.length / wav.rate).toFixed(1)} s at ${wav.rate} Hz, ${d.frequency} Hz (ratio ${d.ratio.toFixed(2)}) ${ok ? 'as sent' : `NOT baresip's ${PHONE_TONE} Hz`}`;
}

/**
 * {@link createPipeline} paced like a sound card: one 20 ms period per timer, drift-free, for
 * `seconds`; CPU of this process over that time (nothing else runs in it meanwhile).
 */
async function pacedPipeline(c: BenchCodec, seconds: number): Promise<number> {
  const p = createPipeline(c, resamplers, seconds + 1);
  const perMinute = await pacedCpu((k) => p.step(k), seconds);
  p.close();
  return perMinute;
}

/** CPU seconds per minute of this process while `step(k)` runs once per 20 ms period for `seconds` (drift-free timers). */
async function pacedCpu(step: (k: number) => void, seconds: number): Promise<number> {
  const periods = (seconds * 1000) / PERIOD_MS;
  const start = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let k = 0;
    const fire = () => {
      const due = Math.min(periods, Math.floor((performance.now() - t0) / PERIOD_MS));
      while (k < due) step(k++);
      if (k >= periods) resolve();
      else setTimeout(fire, t0 + (k + 1) * PERIOD_MS - performance.now());
    };
    setTimeout(fire, PERIOD_MS);
  });
  const used = process.cpuUsage(start);
  const wall = (performance.now() - t0) / 1000;
  return ((used.user + used.system) / 1e6 / wall) * 60;
}
