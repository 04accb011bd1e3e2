import type { Clock, TimerHandle } from '../runtime/clock.ts';

/**
 * Calls `onFrame` once per `frameMs` of clock time, for backends without a hardware clock (`null`,
 * `file`) and for the silence the `alsa` backend delivers while its capture child is down.
 *
 * Scheduling is drift-free: frame n (1-based) is due at `start + n * frameMs`, and each timer is
 * set for the next due time rather than "frameMs from now", so timer lateness never accumulates.
 * When the event loop was stalled, the missed frames are delivered back to back, at most
 * `maxCatchUp` of them; older ones are skipped (and counted) so that a long stall does not end in
 * a burst that floods the uplink.
 */
export class FramePacer {
  private startAt = 0;
  private delivered = 0;
  private timer: TimerHandle | undefined;
  private running = false;
  /** Frames skipped because the clock jumped further than `maxCatchUp` frames. */
  skipped = 0;

  constructor(
    private readonly clock: Clock,
    private readonly frameMs: number,
    private readonly onFrame: () => void,
    private readonly label = 'audio.frame',
    private readonly maxCatchUp = 10,
  ) {}

  /** Starts pacing from now: the first frame comes `frameMs` later. Restarting resets the phase. */
  start(): void {
    this.stop();
    this.running = true;
    this.startAt = this.clock.now();
    this.delivered = 0;
    this.schedule();
  }

  /** Stops pacing; no `onFrame` call happens afterwards. Idempotent. */
  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  get isRunning(): boolean {
    return this.running;
  }

  private schedule(): void {
    const due = this.startAt + (this.delivered + 1) * this.frameMs;
    this.timer = this.clock.setTimer(due - this.clock.now(), () => this.fire(), this.label);
  }

  private fire(): void {
    if (!this.running) return;
    const due = Math.floor((this.clock.now() - this.startAt) / this.frameMs);
    if (due - this.delivered > this.maxCatchUp) {
      this.skipped += due - this.delivered - this.maxCatchUp;
      this.delivered = due - this.maxCatchUp;
    }
    while (this.running && this.delivered < due) {
      this.delivered++;
      this.onFrame();
    }
    if (this.running) this.schedule();
  }
}
