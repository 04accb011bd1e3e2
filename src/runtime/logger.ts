/**
 * Structured logging, injected per category (`sip.transaction`, `sip.transport.udp`). Each event is
 * one line: a message plus flat fields (`callId`, `branch`, `peer`). Passwords and digest
 * responses are never passed as fields.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger for a sub-category, e.g. `log.child('transaction')` of `sip` logs as `sip.transaction`. */
  child(category: string): Logger;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A sink receives each formatted line. The composition root passes one that writes to stderr. */
export type LogSink = (line: string, level: LogLevel) => void;

function formatValue(v: string | number | boolean): string {
  const s = String(v);
  return /^[\w.:\/@\[\]+-]*$/.test(s) && s.length > 0 ? s : JSON.stringify(s);
}

/** A logger that writes `level=info cat=sip msg="..." key=value` lines (logfmt) to a sink. */
export class LineLogger implements Logger {
  /** Shared with every child, so that {@link setLevel} reaches loggers already handed out. */
  private readonly threshold: { level: LogLevel };

  constructor(
    private readonly sink: LogSink,
    private readonly category = 'hookswitch',
    minLevel: LogLevel | { level: LogLevel } = 'info',
  ) {
    this.threshold = typeof minLevel === 'string' ? { level: minLevel } : minLevel;
  }

  /** Changes the lowest level written, for this logger, its parent and every child (config reload). */
  setLevel(level: LogLevel): void {
    this.threshold.level = level;
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  child(category: string): Logger {
    return new LineLogger(this.sink, `${this.category}.${category}`, this.threshold);
  }

  private log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LEVELS[level] < LEVELS[this.threshold.level]) return;
    let line = `level=${level} cat=${this.category} msg=${JSON.stringify(msg)}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined || v === null) continue;
        line += ` ${k}=${formatValue(v)}`;
      }
    }
    this.sink(line, level);
  }
}

/** A logger that records events in memory, for tests. */
export class MemoryLogger implements Logger {
  constructor(
    public readonly records: { level: LogLevel; category: string; msg: string; fields: LogFields }[] = [],
    private readonly category = 'test',
  ) {}
  debug(msg: string, fields: LogFields = {}): void {
    this.records.push({ level: 'debug', category: this.category, msg, fields });
  }
  info(msg: string, fields: LogFields = {}): void {
    this.records.push({ level: 'info', category: this.category, msg, fields });
  }
  warn(msg: string, fields: LogFields = {}): void {
    this.records.push({ level: 'warn', category: this.category, msg, fields });
  }
  error(msg: string, fields: LogFields = {}): void {
    this.records.push({ level: 'error', category: this.category, msg, fields });
  }
  child(category: string): Logger {
    return new MemoryLogger(this.records, `${this.category}.${category}`);
  }
}

/** A logger that drops everything. */
export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nullLogger;
  },
};
