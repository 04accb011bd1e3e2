/**
 * The device's sounds: call-progress tones and the ringtone WAV (`tones.ringtone`), loaded and
 * converted to the card's rate by `loadRingtone`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadRingtone } from '../../src/app/device-wiring.ts';
import { pcmToBytes, wavHeader } from '../../src/audio/wav-format.ts';
import { CallProgressTones } from '../../src/device/call-progress.ts';
import { loadSpeexResampler } from '../../src/media/resample/speex-resampler.ts';
import { dominantFrequency } from '../helpers/wav.ts';
import { scratch } from '../helpers/scratch.ts';

const { dir } = scratch('call-progress');

function tone(rate: number, hz: number, seconds: number): Int16Array {
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / rate));
  return out;
}

function wavFile(name: string, rate: number, pcm: Int16Array): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([wavHeader(rate, pcm.length * 2), pcmToBytes(pcm)]));
  return path;
}

t.test('the ringtone loops; without one, ringtone plays the ringback tone', async (t) => {
  const short = Int16Array.from([1, 2, 3]);
  const withRingtone = new CallProgressTones('de', 8000, short);
  const ring = withRingtone.start('ringtone');
  t.same([...ring.next(4), ...ring.next(4)], [1, 2, 3, 1, 2, 3, 1, 2], 'the recording repeats without a gap');
  const fallback = new CallProgressTones('de', 8000).start('ringtone');
  const ringback = new CallProgressTones('de', 8000).start('ringback');
  t.same(fallback.next(800), ringback.next(800), 'no ringtone: the country ringback tone');
});

t.test('loadRingtone reads a WAV at any rate and converts it to the card rate', async (t) => {
  const resamplers = await loadSpeexResampler();
  const path = wavFile('ring.wav', 22050, tone(22050, 700, 1));
  const pcm = loadRingtone(path, 48000, resamplers);
  t.ok(Math.abs(pcm.length - 48000) < 100, `1 s at 48 kHz (${pcm.length} samples)`);
  const f = dominantFrequency(pcm.subarray(4800), 48000);
  t.equal(f.frequency, 700, `still 700 Hz (ratio ${f.ratio.toFixed(3)})`);
  t.throws(() => loadRingtone(join(dir, 'missing.wav'), 16000, resamplers), { message: /^config: tones\.ringtone cannot be used: .*missing\.wav does not exist$/ });
  const bad = join(dir, 'bad.wav');
  writeFileSync(bad, 'not a wav file at all');
  t.throws(() => loadRingtone(bad, 16000, resamplers), { message: /^config: tones\.ringtone cannot be used: .*not a RIFF\/WAVE file$/ });
  t.throws(() => loadRingtone(wavFile('empty.wav', 8000, new Int16Array(0)), 16000, resamplers), { message: /holds no audio$/ });
});
