/**
 * PROTOS c07-sip (OUSPG) robustness suite against the real gateway process: 4527 malformed
 * INVITEs over UDP (TCP for the few too large for a datagram). The gateway must stay up, keep
 * answering OPTIONS within 2 s after every 100 cases, keep its resident memory growth under
 * 20 MB, and still exit 0 on SIGTERM. The cases are GPLv2 test data kept outside the repository.
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { startGateway } from '../helpers/gateway-process.ts';
import { PROTOS_ARCHIVE, formatSummary, runProtos } from '../../scripts/protos-run.ts';

if (!existsSync(PROTOS_ARCHIVE)) {
  t.plan(0, `the PROTOS c07-sip cases are not at ${PROTOS_ARCHIVE}, so the PROTOS robustness run did not run`);
} else {
  const gw = await startGateway();
  t.teardown(() => gw.kill());

  const result = await runProtos({ host: gw.host, port: gw.port, pid: gw.pid, isAlive: gw.alive, budgetMs: 45_000 });
  const summary = formatSummary(result);
  t.comment(summary);

  t.equal(result.total, 4527, 'the archive holds all 4527 cases');
  t.equal(result.sentUdp + result.sentTcp, result.total, 'every case and its teardown was sent', { failures: result.failures });
  t.equal(result.probesAnswered, result.probes, 'every OPTIONS (one per 100 cases) was answered 200 within 2 s', {
    failures: result.failures,
  });
  t.ok(result.probes >= 46, `OPTIONS was sent after every 100 cases (${result.probes} probes)`);
  t.equal(result.alive, true, 'the gateway is still running after all cases', { log: gw.log().slice(-3_000) });
  t.ok(result.rssBeforeKb !== null && result.rssAfterKb !== null, 'resident memory was measured before and after');
  t.ok((result.rssAfterKb ?? Infinity) - (result.rssBeforeKb ?? 0) < 20 * 1024, 'resident memory grew by less than 20 MB', {
    beforeKb: result.rssBeforeKb,
    afterKb: result.rssAfterKb,
  });
  t.ok(Object.keys(result.responses).length > 0, 'the gateway answered at least some of the cases', { responses: result.responses });

  const status = await gw.stop();
  t.same(status, { code: 0, signal: null }, 'the gateway exits 0 on SIGTERM after the run', { log: gw.log().slice(-3_000) });
}
