/**
 * Validation of the `metrics` section: the optional Prometheus text endpoint (`GET /metrics`,
 * src/ops/metrics-server.ts), off by default, on loopback unless told otherwise.
 */
import { isIpAddress, isObject, show, wholeNumber } from './sections.ts';

type Json = unknown;

/** The `metrics` settings. */
export interface MetricsConfig {
  /** Serve `GET /metrics` (default false). */
  enabled: boolean;
  /** TCP port of the endpoint; 0 takes a free port (logged at start). */
  port: number;
  /**
   * Address the endpoint listens on (default `127.0.0.1`). The endpoint has no authentication:
   * any other address shows call and registration counts to whoever reaches it.
   */
  bind: string;
}

/**
 * 9465 lies in the range 9100-9999 that the Prometheus project hands out to exporters (its
 * "Default port allocations" wiki page) so that exporters on one host do not collide; the range
 * is said to be fully allocated since 2023, and whether 9465 itself is claimed there could not
 * be checked from here. It sits next to 9464, the OpenTelemetry Prometheus exporter's default.
 */
export const DEFAULT_METRICS_PORT = 9465;

/** The defaults, used when the section or one of its keys is absent. */
export const DEFAULT_METRICS: MetricsConfig = { enabled: false, port: DEFAULT_METRICS_PORT, bind: '127.0.0.1' };

const KEYS = ['enabled', 'port', 'bind'];

/**
 * Checks `input.metrics` and writes the accepted values into `cfg.metrics` (which the caller has
 * filled with {@link DEFAULT_METRICS}). Each problem is one line naming the key, the rule and the
 * value, pushed onto `problems`.
 */
export function checkMetricsSection(input: Record<string, Json>, cfg: { metrics: MetricsConfig }, problems: string[]): void {
  const m = input.metrics;
  if (m === undefined) return;
  if (!isObject(m)) {
    problems.push(`metrics must be an object (got ${show(m)})`);
    return;
  }
  for (const k of Object.keys(m)) if (!KEYS.includes(k)) problems.push(`metrics.${k} is not a known setting`);

  if (m.enabled !== undefined) {
    if (typeof m.enabled !== 'boolean') problems.push(`metrics.enabled must be true or false (got ${show(m.enabled)})`);
    else cfg.metrics.enabled = m.enabled;
  }

  if (m.port !== undefined) {
    const port = wholeNumber(m.port, 'metrics.port', 0, 65535, problems);
    if (port !== undefined) cfg.metrics.port = port;
  }

  if (m.bind !== undefined) {
    if (!isIpAddress(m.bind)) problems.push(`metrics.bind must be an IP address of this box (got ${show(m.bind)})`);
    else cfg.metrics.bind = m.bind;
  }
}
