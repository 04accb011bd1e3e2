/**
 * G.722 at 64 kbit/s (mode 1): sub-band ADPCM after ITU-T G.722 (11/1988) §§3–4 and the
 * computational details of §6. A 24-tap QMF splits 16 kHz PCM into two 8 kHz sub-bands; the
 * lower band is coded with a 6-bit adaptive quantiser (4 bits feed the predictor), the upper
 * band with 2 bits; both share the pole-zero predictor of block 4.
 *
 * PCM is 16-bit: the transmit QMF scales by 2^-14 and the receive QMF by 2^-11 (the ITU text
 * works on 14-bit samples), the convention of ffmpeg and spandsp, so streams interoperate with
 * them. RTP: clock rate 8000 although it samples at 16 kHz (RFC 3551 §4.5.2); one byte per
 * pair of samples, the 2 upper-band bits in the most significant positions (RFC 3551 §4.5.2).
 */
import type { AudioCodec, AudioDecoder, AudioEncoder } from './codec.ts';

/** ILB: 2048 · 2^(i/32), the anti-log table of SCALEL/SCALEH (G.722 Table 16). */
const ILB = new Int32Array([
  2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
  2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
]);

/** QQ6: lower-band 6-bit inverse quantiser outputs by code (G.722 Table 6). */
const QQ6 = new Int32Array([
  -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
  -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400,
  -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232,
  9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688,
  1360, 1040, 728, 432, 136, -432, -136,
]);

/** QQ4: lower-band 4-bit inverse quantiser outputs, indexed by the code's top 4 bits (Table 7). */
const QQ4 = new Int32Array([
  0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0,
]);

/** WL[RIL4]: lower-band log scale factor increments by 4-bit code (Table 8 with RL42 folded in). */
const LOW_LOG_STEP = new Int32Array([
  -60, 3042, 1198, 538, 334, 172, 58, -30, 3042, 1198, 538, 334, 172, 58, -30, -60,
]);

/** QQ2: upper-band inverse quantiser outputs by 2-bit code (Table 9). */
const QQ2 = new Int32Array([-7408, -1616, 7408, 1616]);

/** WH[RH2]: upper-band log scale factor increments by 2-bit code (Table 10 with RH2 folded in). */
const HIGH_LOG_STEP = new Int32Array([798, -214, 798, -214]);

/** Q6: lower-band decision levels, multiplied by the scale factor in QUANTL (Table 5). */
const Q6 = new Int32Array([
  0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023,
  1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919,
]);

/** Lower-band code for quantiser interval 1..30 of a negative (ILN) or positive (ILP) difference. */
const ILN = new Int32Array([
  0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
  9, 8, 7, 6, 5, 4,
]);
const ILP = new Int32Array([
  0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38,
  37, 36, 35, 34, 33, 32,
]);

function sat16(x: number): number {
  return x > 32767 ? 32767 : x < -32768 ? -32768 : x;
}

function clip15(x: number): number {
  return x > 16383 ? 16383 : x < -16384 ? -16384 : x;
}

/**
 * The state of one sub-band: the block 3 scale factor (log `nb`, linear `det`) and the block 4
 * adaptive predictor (two poles, six zeros), identical in encoder and decoder.
 */
class G722Band {
  /** Predictor output (SL / SH). */
  s = 0;
  /** Zero-section output (SZL / SZH). */
  private sz = 0;
  /** Logarithmic scale factor (NBL / NBH). */
  private nb = 0;
  /** Linear scale factor (DETL / DETH). */
  det: number;
  private a1 = 0;
  private a2 = 0;
  /** Signs (0 or -1) of the partially reconstructed signal one and two samples back. */
  private pSign1 = 0;
  private pSign2 = 0;
  private r1 = 0;
  private r2 = 0;
  /** Zero coefficients BL1..BL6 and the quantised differences DLT1..DLT6 they weigh. */
  private readonly b = new Int32Array(6);
  private readonly dq = new Int32Array(6);

  /**
   * @param lowBand selects the lower-band limits (NBL ≤ 18432, shift 8) over the upper-band
   *   ones (NBH ≤ 22528, shift 10).
   */
  constructor(private readonly lowBand: boolean) {
    this.det = lowBand ? 32 : 8;
  }

  /**
   * Blocks 3L/3H (LOGSCL/LOGSCH, SCALEL/SCALEH): adapts the scale factor by the log step of the
   * code just sent or received.
   */
  adaptScale(logStep: number): void {
    let nb = ((this.nb * 32512) >> 15) + logStep;
    const max = this.lowBand ? 18432 : 22528;
    nb = nb < 0 ? 0 : nb > max ? max : nb;
    this.nb = nb;
    const wd3 = ILB[(nb >> 6) & 31]!;
    const shift = (this.lowBand ? 8 : 10) - (nb >> 11);
    this.det = (shift < 0 ? wd3 << -shift : wd3 >> shift) << 2;
  }

  /** Block 4: reconstructs with the quantised difference `d` and adapts the predictor. */
  predict(d: number): void {
    // RECONS and PARREC.
    const r = sat16(this.s + d);
    const pSign = sat16(this.sz + d) < 0 ? -1 : 0;

    // UPPOL2.
    const wd1 = sat16(this.a1 << 2);
    let wd2 = pSign === this.pSign1 ? -wd1 : wd1;
    if (wd2 > 32767) wd2 = 32767;
    let a2 = (pSign === this.pSign2 ? 128 : -128) + (wd2 >> 7) + ((this.a2 * 32512) >> 15);
    a2 = a2 > 12288 ? 12288 : a2 < -12288 ? -12288 : a2;

    // UPPOL1.
    let a1 = sat16((pSign === this.pSign1 ? 192 : -192) + ((this.a1 * 32640) >> 15));
    const limit = sat16(15360 - a2);
    a1 = a1 > limit ? limit : a1 < -limit ? -limit : a1;

    // UPZERO and DELAYA for the zero section, then FILTEZ over the shifted differences.
    const b = this.b;
    const dq = this.dq;
    const step = d === 0 ? 0 : 128;
    const dNegative = d < 0;
    let sz = 0;
    for (let i = 5; i >= 0; i--) {
      const bi = ((dq[i]! < 0) === dNegative ? step : -step) + ((b[i]! * 32640) >> 15);
      b[i] = sat16(bi);
      const di = i === 0 ? d : dq[i - 1]!;
      dq[i] = di;
      sz += (b[i]! * sat16(di + di)) >> 15;
    }
    this.sz = sat16(sz);

    // DELAYA for the pole section, FILTEP, PREDIC.
    this.r2 = this.r1;
    this.r1 = r;
    this.pSign2 = this.pSign1;
    this.pSign1 = pSign;
    this.a1 = a1;
    this.a2 = a2;
    const sp = sat16(((a1 * sat16(r + r)) >> 15) + ((a2 * sat16(this.r2 + this.r2)) >> 15));
    this.s = sat16(sp + this.sz);
  }
}

/**
 * Both QMF polyphase sums over the 24 newest entries of `x`, ending at `x[p - 1]`, with the
 * taps of G.722 Table 11: `sums[0]` weighs x[p-1], x[p-3], ..., x[p-23] by h0, h2, ..., h22;
 * `sums[1]` weighs x[p-2], x[p-4], ..., x[p-24] by h1, h3, ..., h23 (which equal h22, ..., h0).
 */
function qmf(x: Int32Array, p: number, sums: Int32Array): void {
  sums[0] =
    3 * x[p - 1]! - 11 * x[p - 3]! + 12 * x[p - 5]! + 32 * x[p - 7]! - 210 * x[p - 9]! + 951 * x[p - 11]! +
    3876 * x[p - 13]! - 805 * x[p - 15]! + 362 * x[p - 17]! - 156 * x[p - 19]! + 53 * x[p - 21]! - 11 * x[p - 23]!;
  sums[1] =
    3 * x[p - 24]! - 11 * x[p - 22]! + 12 * x[p - 20]! + 32 * x[p - 18]! - 210 * x[p - 16]! + 951 * x[p - 14]! +
    3876 * x[p - 12]! - 805 * x[p - 10]! + 362 * x[p - 8]! - 156 * x[p - 6]! + 53 * x[p - 4]! - 11 * x[p - 2]!;
}

/** Samples kept by the QMF delay lines between compactions. */
const QMF_BUFFER = 24 + 2 * 256;

/** Encodes 16 kHz 16-bit PCM to G.722 64 kbit/s, one byte per two samples. */
export class G722Encoder implements AudioEncoder {
  private readonly low = new G722Band(true);
  private readonly high = new G722Band(false);
  private readonly history = new Int32Array(QMF_BUFFER);
  private readonly sums = new Int32Array(2);
  private pos = 24;

  /**
   * Encodes `pcm` (an even number of samples; an odd one is a caller bug and throws a
   * RangeError). State carries over between calls. Returns `pcm.length / 2` bytes.
   */
  encode(pcm: Int16Array): Uint8Array {
    if ((pcm.length & 1) !== 0) throw new RangeError(`G.722 encodes sample pairs; got ${pcm.length} samples`);
    const out = new Uint8Array(pcm.length >> 1);
    const low = this.low;
    const high = this.high;
    const x = this.history;
    const sums = this.sums;
    for (let n = 0; n < out.length; n++) {
      if (this.pos === QMF_BUFFER) {
        x.copyWithin(0, QMF_BUFFER - 22);
        this.pos = 22;
      }
      let p = this.pos;
      x[p] = pcm[2 * n]!;
      x[p + 1] = pcm[2 * n + 1]!;
      p += 2;
      this.pos = p;
      // Transmit QMF (§4.2.1): XA on x(j-2i) with even taps, XB on x(j-1-2i) with odd taps.
      qmf(x, p, sums);
      const xa = sums[0]!;
      const xb = sums[1]!;
      const xLow = (xa + xb) >> 14;
      const xHigh = (xa - xb) >> 14;

      // Lower band: SUBTRA, QUANTL (binary search over the Q6 decision levels), INVQAL.
      const el = sat16(xLow - low.s);
      const wd = el >= 0 ? el : -(el + 1);
      const det = low.det;
      let lo = 1;
      let hi = 30;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (wd < (Q6[mid]! * det) >> 12) hi = mid;
        else lo = mid + 1;
      }
      const ilow = el < 0 ? ILN[lo]! : ILP[lo]!;
      const ril = ilow >> 2;
      const dLow = (det * QQ4[ril]!) >> 15;

      // Upper band: SUBTRA, QUANTH, INVQAH.
      const eh = sat16(xHigh - high.s);
      const wdh = eh >= 0 ? eh : -(eh + 1);
      const big = wdh >= (564 * high.det) >> 12;
      const ihigh = eh < 0 ? (big ? 0 : 1) : big ? 2 : 3;
      const dHigh = (high.det * QQ2[ihigh]!) >> 15;

      low.adaptScale(LOW_LOG_STEP[ril]!);
      low.predict(dLow);
      high.adaptScale(HIGH_LOG_STEP[ihigh]!);
      high.predict(dHigh);
      out[n] = (ihigh << 6) | ilow;
    }
    return out;
  }

  /** Nothing to free; kept for the contract. */
  close(): void {}
}

/** Decodes G.722 64 kbit/s to 16 kHz 16-bit PCM, two samples per byte. */
export class G722Decoder implements AudioDecoder {
  private readonly low = new G722Band(true);
  private readonly high = new G722Band(false);
  private readonly history = new Int32Array(QMF_BUFFER);
  private readonly sums = new Int32Array(2);
  private pos = 24;

  /** Decodes any number of bytes (0 gives an empty array); never throws. */
  decode(payload: Uint8Array): Int16Array {
    const out = new Int16Array(payload.length * 2);
    const low = this.low;
    const high = this.high;
    const x = this.history;
    const sums = this.sums;
    for (let n = 0; n < payload.length; n++) {
      const code = payload[n]!;
      const ilow = code & 0x3f;
      const ihigh = code >> 6;

      // Lower band: INVQBL (6-bit), RECONS, LIMIT; the predictor runs on the 4-bit INVQAL.
      const rLow = clip15(low.s + ((low.det * QQ6[ilow]!) >> 15));
      const ril = ilow >> 2;
      const dLow = (low.det * QQ4[ril]!) >> 15;
      low.adaptScale(LOW_LOG_STEP[ril]!);
      low.predict(dLow);

      // Upper band: INVQAH, RECONS, LIMIT.
      const dHigh = (high.det * QQ2[ihigh]!) >> 15;
      const rHigh = clip15(high.s + dHigh);
      high.adaptScale(HIGH_LOG_STEP[ihigh]!);
      high.predict(dHigh);

      // Receive QMF (§4.4): xout(j) = 2 Σ h(2i)·xd(i), xout(j+1) = 2 Σ h(2i+1)·xs(i).
      if (this.pos === QMF_BUFFER) {
        x.copyWithin(0, QMF_BUFFER - 22);
        this.pos = 22;
      }
      let p = this.pos;
      x[p] = rLow + rHigh;
      x[p + 1] = rLow - rHigh;
      p += 2;
      this.pos = p;
      qmf(x, p, sums);
      out[2 * n] = sat16(sums[0]! >> 11);
      out[2 * n + 1] = sat16(sums[1]! >> 11);
    }
    return out;
  }

  /** Nothing to free; kept for the contract. */
  close(): void {}
}

/**
 * G.722 at 64 kbit/s: `G722/8000` in SDP, static payload type 9 (RFC 3551 §4.5.2, table 4),
 * 16 kHz PCM in and out.
 */
export const g722: AudioCodec = {
  info: { name: 'G722', clockRate: 8000, sampleRate: 16000, channels: 1, staticPayloadType: 9 },
  createEncoder: () => new G722Encoder(),
  createDecoder: () => new G722Decoder(),
};
