/**
 * PROTOS c07-sip (OUSPG) robustness suite against the real gateway process: 4527 malformed
 * INVITEs over UDP (TCP for the few too large for a datagram). The gateway must stay up, keep
 * answering OPTIONS within 2 s after every 100 cases, and still exit 0 on SIGTERM. The suite runs
 * twice: the first pass warms the process up (V8 grows its heap and code space once, 15-35 MB
 * of resident memory here, not released to the OS even though the live heap after a full GC
 * grows by about 2 MB); a leak shows as growth in the second pass, which must stay under 20 MB
 * (state kept per refused request once cost 66-76 MB per pass). The cases are GPLv2 test data
 * kept outside the repository.
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
  t.comment(formatSummary(result));
  const second = await runProtos({ host: gw.host, port: gw.port, pid: gw.pid, isAlive: gw.alive, budgetMs: 45_000 });
  t.comment(`second pass: ${formatSummary(second)}`);

  t.equal(result.total, 4527, 'the archive holds all 4527 cases');
  t.equal(result.sentUdp + result.sentTcp, result.total, 'every case and its teardown was sent', { failures: result.failures });
  t.equal(result.probesAnswered, result.probes, 'every OPTIONS (one per 100 cases) was answered 200 within 2 s', {
    failures: result.failures,
  });
  t.ok(result.probes >= 46, `OPTIONS was sent after every 100 cases (${result.probes} probes)`);
  t.equal(result.alive, true, 'the gateway is still running after all cases', { log: gw.log().slice(-3_000) });
  t.equal(second.alive, true, 'and after a second pass', { log: gw.log().slice(-3_000) });
  t.equal(second.probesAnswered, second.probes, 'every OPTIONS of the second pass was answered', { failures: second.failures });
  t.ok(second.rssBeforeKb !== null && second.rssAfterKb !== null, 'resident memory was measured before and after the second pass');
  const growthKb = (second.rssAfterKb ?? Infinity) - (second.rssBeforeKb ?? 0);
  t.ok(growthKb < 20 * 1024, `resident memory grew by less than 20 MB in the second pass (${(growthKb / 1024).toFixed(1)} MB; first pass ${(((result.rssAfterKb ?? 0) - (result.rssBeforeKb ?? 0)) / 1024).toFixed(1)} MB)`, {
    beforeKb: second.rssBeforeKb,
    afterKb: second.rssAfterKb,
  });
  t.ok(Object.keys(result.responses).length > 0, 'the gateway answered at least some of the cases', { responses: result.responses });

  const status = await gw.stop();
  t.same(status, { code: 0, signal: null }, 'the gateway exits 0 on SIGTERM after the run', { log: gw.log().slice(-3_000) });
}
