/**
 * The gateway's `GET /metrics` endpoint (src/ops/metrics-server.ts), started when
 * `metrics.enabled`. Wiring for the composition root (gateway.ts).
 */
import type { Config } from '../config/config.ts';
import { MetricsServer } from '../ops/metrics-server.ts';
import type { Logger } from '../runtime/logger.ts';

/**
 * Serves `render()` on `settings.bind`:`settings.port` when `settings.enabled`; resolves to the
 * running server, or undefined when off. A port that cannot be had is logged on `logger`, not
 * fatal: the phone keeps working without its metrics.
 */
export async function startMetricsServer(settings: Config['metrics'], render: () => string, logger: Logger): Promise<MetricsServer | undefined> {
  const { bind, port, enabled } = settings;
  if (!enabled) return undefined;
  const server = new MetricsServer({ bind, port, render, logger: logger.child('metrics') });
  try {
    await server.start();
    return server;
  } catch (e) {
    logger.error('metrics endpoint not started', { reason: (e as Error).message });
    return undefined;
  }
}
