/**
 * `hookswitch run --sim`: drives the simulated board from the terminal. On a terminal single
 * keys act at once; from a pipe each line is a command (for scripts and tests). What the board
 * does (ringer, relay, LEDs) is printed one line per change on stdout.
 *
 *   key   line command     does
 *   h     lift / hangup    lift the handset / put it down (h toggles)
 *   0-9   dial DIGITS      rotary-dial the digits (keypad keys when the board has no dial)
 *   * # A-D  key K         a keypad key
 *   f     flash            a 300 ms hook flash
 *   b     button           press and release the call button
 *   q     quit             stop the gateway
 */
import { createInterface } from 'node:readline';
import type { SimulatorBackend, SimulatorChange } from '../hardware/backends/simulator.ts';
import type { OutputState } from '../hardware/types.ts';

const HELP = 'sim: h lift/hang up · 0-9 dial · * # keys · f flash · b button · q quit (or lines: lift, hangup, dial 101, key #, flash, button, quit)';

function describe(state: OutputState): string {
  return state.mode === 'blink' ? `blink ${state.onMs}/${state.offMs} ms` : state.mode;
}

/** One line for a change the simulated board made (its inputs are what we typed: not echoed). */
export function describeChange(change: SimulatorChange): string | undefined {
  switch (change.kind) {
    case 'output':
      return `sim: ${change.role} ${describe(change.state)}`;
    case 'ring':
      return `sim: ring ${change.cadence ? change.cadence.join('/') : 'off'}`;
    default:
      return undefined;
  }
}

export interface SimConsole {
  stop(): void;
}

/**
 * Attaches the terminal (or a pipe) to `sim`. `rotary` dials digits as pulses (the board has a
 * dial) rather than keypad keys; `quit` is called for q / quit / end of input.
 */
export function attachSimConsole(sim: SimulatorBackend, opts: { rotary: boolean; quit: () => void; out?: (line: string) => void }): SimConsole {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  let offHook = false;
  sim.onChange = (change) => {
    const line = describeChange(change);
    if (line) out(line);
  };
  const act = (cmd: string, arg = ''): void => {
    try {
      switch (cmd) {
        case 'h':
          if (offHook) sim.hangUp();
          else sim.liftHandset();
          offHook = !offHook;
          out(`sim: handset ${offHook ? 'lifted' : 'down'}`);
          return;
        case 'lift':
          sim.liftHandset();
          offHook = true;
          out('sim: handset lifted');
          return;
        case 'hangup':
          sim.hangUp();
          offHook = false;
          out('sim: handset down');
          return;
        case 'dial':
          if (!/^[0-9]+$/.test(arg) || !opts.rotary) {
            for (const k of arg) sim.pressKey(k);
          } else void sim.dialRotary(arg);
          return;
        case 'key':
          sim.pressKey(arg);
          return;
        case 'flash':
          void sim.flash(300);
          return;
        case 'button':
          sim.pressButton();
          setTimeout(() => sim.releaseButton(), 200);
          return;
        case 'quit':
          opts.quit();
          return;
        default:
          out(`sim: unknown command "${cmd}"; ${HELP}`);
      }
    } catch (err) {
      out(`sim: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  out(HELP);
  const stdin = process.stdin;
  if (stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    const onKey = (key: string): void => {
      if (key === 'q' || key === '\u0003') act('quit');
      else if (key === 'h') act('h');
      else if (/^[0-9]$/.test(key)) act('dial', key);
      else if (/^[*#A-Da-d]$/.test(key)) act('key', key.toUpperCase());
      else if (key === 'f') act('flash');
      else if (key === 'b') act('button');
    };
    stdin.on('data', onKey);
    return {
      stop: () => {
        stdin.off('data', onKey);
        stdin.setRawMode(false);
        stdin.pause();
      },
    };
  }
  const rl = createInterface({ input: stdin });
  rl.on('line', (line) => {
    const [cmd = '', arg = ''] = line.trim().split(/\s+/);
    if (cmd) act(cmd.toLowerCase(), arg);
  });
  return { stop: () => rl.close() };
}
