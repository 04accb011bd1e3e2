import t from 'tap';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { MetricsServer } from '../../src/ops/metrics-server.ts';
import { MemoryLogger } from '../../src/runtime/logger.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function fetchOnce(port: number, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

t.test('GET /metrics answers the rendered text; other paths 404, other methods 405', async (t) => {
  const log = new MemoryLogger();
  let scrapes = 0;
  const server = new MetricsServer({
    bind: '127.0.0.1',
    port: 0,
    render: () => `# HELP x_scrapes_total Scrapes.\n# TYPE x_scrapes_total counter\nx_scrapes_total ${++scrapes}\n`,
    logger: log,
  });
  await server.start();
  t.teardown(() => server.stop());
  t.ok(server.port > 0, `listening on 127.0.0.1:${server.port}`);
  t.match(log.records.find((r) => r.msg === 'metrics endpoint listening')?.fields, { address: '127.0.0.1', port: server.port, path: '/metrics' });

  const ok = await fetchOnce(server.port, 'GET', '/metrics');
  t.equal(ok.status, 200);
  t.equal(ok.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  t.equal(ok.body, '# HELP x_scrapes_total Scrapes.\n# TYPE x_scrapes_total counter\nx_scrapes_total 1\n');
  t.equal((await fetchOnce(server.port, 'GET', '/metrics?name[]=x')).body.split('\n')[2], 'x_scrapes_total 2', 'a query string is ignored; rendered per scrape');

  const cases: [string, string, string, number][] = [
    ['root', 'GET', '/', 404],
    ['another path', 'GET', '/metrics/x', 404],
    ['a traversal', 'GET', '/../metrics', 404],
    ['POST', 'POST', '/metrics', 405],
    ['HEAD', 'HEAD', '/metrics', 405],
    ['DELETE elsewhere', 'DELETE', '/x', 404],
  ];
  for (const [name, method, path, status] of cases) {
    const a = await fetchOnce(server.port, method, path);
    t.equal(a.status, status, `${name}: ${status}`);
    if (status === 405) t.equal(a.headers.allow, 'GET', `${name}: Allow: GET`);
  }
  t.equal(scrapes, 2, 'only the GETs of /metrics rendered');
});

t.test('a render that throws is a 500, logged; the server goes on', async (t) => {
  const log = new MemoryLogger();
  let fail = true;
  const server = new MetricsServer({
    bind: '127.0.0.1',
    port: 0,
    render: () => {
      if (fail) throw new Error('boom');
      return 'x 1\n';
    },
    logger: log,
  });
  await server.start();
  t.teardown(() => server.stop());
  t.equal((await fetchOnce(server.port, 'GET', '/metrics')).status, 500);
  t.match(log.records.find((r) => r.msg === 'metrics could not be rendered')?.fields, { reason: 'boom' });
  fail = false;
  t.equal((await fetchOnce(server.port, 'GET', '/metrics')).body, 'x 1\n');
});

t.test('oversized headers are refused without rendering', async (t) => {
  let scrapes = 0;
  const server = new MetricsServer({ bind: '127.0.0.1', port: 0, render: () => `x ${++scrapes}\n`, logger: new MemoryLogger() });
  await server.start();
  t.teardown(() => server.stop());
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path: '/metrics', agent: false, headers: { 'X-Big': 'y'.repeat(8000) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve(0) : reject(e)));
    req.end();
  });
  t.ok(status === 431 || status === 0, `refused (status ${status || 'connection reset'})`);
  t.equal(scrapes, 0);
});

t.test('a port in use: start rejects with a one-line reason; stop closes the port', async (t) => {
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  const port = (holder.address() as { port: number }).port;
  const clash = new MetricsServer({ bind: '127.0.0.1', port, render: () => '', logger: new MemoryLogger() });
  await t.rejects(clash.start(), { message: `metrics endpoint cannot listen on 127.0.0.1:${port}: the port is in use` });
  await new Promise<void>((r) => holder.close(() => r()));

  const server = new MetricsServer({ bind: '127.0.0.1', port, render: () => 'x 1\n', logger: new MemoryLogger() });
  await server.start();
  t.equal((await fetchOnce(port, 'GET', '/metrics')).status, 200, 'the freed port serves');
  await server.stop();
  await t.rejects(fetchOnce(port, 'GET', '/metrics'), { code: 'ECONNREFUSED' }, 'closed after stop');
  await server.stop();
});
