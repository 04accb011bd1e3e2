/**
 * A small metrics registry and its rendering in the Prometheus text exposition format 0.0.4
 * (prometheus.io/docs/instrumenting/exposition_formats: "Text format details"). Pure: counters
 * and gauges are plain numbers the gateway bumps, collected metrics are read from their owners
 * (the SIP stack's counters, the registrar, the trunks) at scrape time; nothing here does I/O.
 */

/**
 * The metric types this registry renders (the format also has histogram and untyped). A
 * `summary` here carries only its `_sum` and `_count` samples, no quantiles.
 */
export type MetricType = 'counter' | 'gauge' | 'summary';

/** Label names and their values; order of insertion is the order rendered. */
export type Labels = Readonly<Record<string, string>>;

/** One sample of a family: its labels (none for a plain metric) and its value. */
export interface MetricSample {
  labels?: Labels;
  value: number;
  /** Appended to the family name: a summary's `_sum` and `_count` samples. */
  suffix?: '_sum' | '_count';
}

/** One metric family as rendered: `# HELP`, `# TYPE`, then its samples. */
export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: MetricSample[];
}

/** The HTTP Content-Type of {@link renderExposition}'s output (format 0.0.4). */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*` (the format's grammar). */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
/** Label names: `[a-zA-Z_][a-zA-Z0-9_]*`; names starting `__` are reserved for Prometheus. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value in the format's quoting: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** A HELP docstring: backslash and line feed escaped (double quotes stay as they are). */
export function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** A sample value as the format writes floats: `+Inf`, `-Inf`, `NaN`, else the shortest decimal. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Throws unless `name` is a valid metric name (a programming error: names are constants). */
export function checkMetricName(name: string): void {
  if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
}

/** Throws unless `name` is a valid label name that is not reserved. */
export function checkLabelName(name: string): void {
  if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(name)}`);
}

function renderLabels(labels: Labels | undefined): string {
  if (labels === undefined) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/**
 * The exposition text of `families`, in the order given: each family's `# HELP` and `# TYPE`
 * lines, then one line per sample. Every line ends with a line feed, the last one too (the
 * format requires it). A family without samples still gets its HELP and TYPE lines.
 */
export function renderExposition(families: readonly MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += `${f.name}${s.suffix ?? ''}${renderLabels(s.labels)} ${formatValue(s.value)}\n`;
  }
  return out;
}

/** The key of a label set within one metric: values in label-name order. */
function keyOf(labelNames: readonly string[], labels: Labels): string {
  return labelNames.map((n) => labels[n] ?? '').join('\u0000');
}

/**
 * A metric whose value the gateway keeps here, one per label set. Labels must name exactly the
 * metric's label names; values are set, added to or read.
 */
abstract class StoredMetric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    checkMetricName(name);
    for (const l of labelNames) checkLabelName(l);
  }

  /** The current value for `labels` (0 when never touched). */
  get(labels: Labels = {}): number {
    return this.values.get(keyOf(this.labelNames, this.checked(labels)))?.value ?? 0;
  }

  protected add(labels: Labels, by: number): void {
    const key = keyOf(this.labelNames, this.checked(labels));
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels: this.ordered(labels), value: by });
  }

  protected put(labels: Labels, value: number): void {
    this.values.set(keyOf(this.labelNames, this.checked(labels)), { labels: this.ordered(labels), value });
  }

  /** Every label set touched so far, in the order first touched; a metric without labels reads 0 from the start. */
  samples(): MetricSample[] {
    if (this.labelNames.length === 0) return [{ value: this.values.get('')?.value ?? 0 }];
    return [...this.values.values()].map(({ labels, value }) => ({ labels, value }));
  }

  private checked(labels: Labels): Labels {
    const names = Object.keys(labels);
    if (names.length !== this.labelNames.length || !this.labelNames.every((n) => typeof labels[n] === 'string')) {
      throw new Error(`${this.name} takes labels [${this.labelNames.join(', ')}], got [${names.join(', ')}]`);
    }
    return labels;
  }

  private ordered(labels: Labels): Labels {
    return Object.fromEntries(this.labelNames.map((n) => [n, labels[n]!]));
  }
}

/** A monotonically increasing count; its name ends in `_total` (the format's convention). */
export class Counter extends StoredMetric {
  readonly type = 'counter' as const;

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames);
    if (!name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
  }

  /** Adds `by` (default 1; never negative: a counter only goes up). */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${this.name} cannot be increased by ${by}`);
    this.add(labels, by);
  }
}

/** A value that goes up and down. */
export class Gauge extends StoredMetric {
  readonly type = 'gauge' as const;

  set(labels: Labels, value: number): void {
    this.put(labels, value);
  }

  inc(labels: Labels = {}, by = 1): void {
    this.add(labels, by);
  }

  dec(labels: Labels = {}, by = 1): void {
    this.add(labels, -by);
  }
}

/** A family whose samples are read from their owner at each scrape. */
interface Collected {
  name: string;
  help: string;
  type: MetricType;
  read: () => MetricSample[];
}

/**
 * The gateway's metrics, rendered in registration order. Counters and gauges are created here
 * and bumped by their owners; {@link collect} registers a family read at scrape time from
 * numbers that already exist elsewhere. Names are unique; a duplicate is a programming error.
 */
export class MetricsRegistry {
  private readonly entries: (StoredMetric | Collected)[] = [];
  private readonly names = new Set<string>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.adopt(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.adopt(new Gauge(name, help, labelNames));
  }

  /**
   * A family whose samples `read` returns at each scrape (e.g. the SIP stack's counters). A
   * `read` that throws renders the family without samples instead of failing the scrape.
   */
  collect(name: string, help: string, type: MetricType, read: () => MetricSample[]): void {
    checkMetricName(name);
    if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
    this.reserve(name);
    this.entries.push({ name, help, type, read });
  }

  /** The families with their current samples. */
  families(): MetricFamily[] {
    return this.entries.map((e) => {
      if (e instanceof StoredMetric) return { name: e.name, help: e.help, type: (e as Counter | Gauge).type, samples: e.samples() };
      let samples: MetricSample[];
      try {
        samples = e.read();
      } catch {
        samples = [];
      }
      return { name: e.name, help: e.help, type: e.type, samples };
    });
  }

  /** The exposition text of every family (see {@link renderExposition}). */
  render(): string {
    return renderExposition(this.families());
  }

  private adopt<M extends StoredMetric>(metric: M): M {
    this.reserve(metric.name);
    this.entries.push(metric);
    return metric;
  }

  private reserve(name: string): void {
    if (this.names.has(name)) throw new Error(`metric ${name} is registered twice`);
    this.names.add(name);
  }
}
