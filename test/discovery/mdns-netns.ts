/**
 * mDNS/DNS-SD on a real (virtual) network: two network namespaces joined by a veth pair, our
 * discovery node in one, python3-zeroconf (Debian's, third party) or a second node in the other.
 * bonjour-service never advertises loopback addresses, hence the veth. Needs root, iproute2 and
 * /usr/bin/python3 with python3-zeroconf; fails (never skips) without them.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import t from 'tap';
import type { Peer } from '../../src/discovery/peer-table.ts';
import type { MdnsNodeSpec } from '../helpers/mdns-node.ts';
import { createNamespacePair, ip, type NamespacePair } from '../helpers/netns.ts';
import { sleep, until } from '../helpers/wait.ts';

const WAIT_MS = 10_000;
const PYTHON = '/usr/bin/python3';
const ADDR_A2 = '10.213.0.11';
/** The namespaces, made in the test (a failure to make them fails it). */
let pair: NamespacePair | undefined;
let NS_A = '';
let NS_B = '';
let VETH_A = '';
let ADDR_A = '';
let ADDR_B = '';

/** A child process speaking JSON lines on stdout. */
class LineProcess {
  readonly events: Record<string, unknown>[] = [];
  stderr = '';
  exited = false;
  private readonly child: ChildProcess;

  constructor(readonly label: string, command: string, args: string[]) {
    this.child = spawn(command, args, { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.stderr += `[stdout] ${line}\n`;
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.child.on('exit', () => {
      this.exited = true;
    });
    this.child.stdin!.on('error', () => {});
  }

  async waitFor(pred: (e: Record<string, unknown>) => boolean, timeoutMs = WAIT_MS): Promise<Record<string, unknown> | undefined> {
    await until(() => this.events.some(pred), timeoutMs);
    return this.events.find(pred);
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Ends it at once, with no chance to send a goodbye. */
  async crash(): Promise<void> {
    this.child.kill('SIGKILL');
    await until(() => this.exited, 2000);
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    this.child.stdin!.end();
    if (!(await until(() => this.exited, 2000))) this.child.kill('SIGKILL');
    await until(() => this.exited, 2000);
  }
}

/** Our node's latest peer list. */
const peersOf = (node: LineProcess): Peer[] => {
  const last = [...node.events].reverse().find((e) => e.event === 'peers');
  return (last?.peers as Peer[] | undefined) ?? [];
};

const PY = `
import json, socket, sys
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf
def out(o): print(json.dumps(o), flush=True)
zc = Zeroconf(ip_version=IPVersion.V4Only)
mode = sys.argv[1]
if mode == 'browse':
    def resolved(event, zeroconf, service_type, name):
        info = zeroconf.get_service_info(service_type, name, 3000)
        if info is None:
            out({'event': 'unresolved', 'type': service_type, 'name': name}); return
        txt = {k.decode(): (None if v is None else v.decode()) for k, v in info.properties.items()}
        out({'event': event, 'type': service_type, 'name': name, 'server': info.server, 'port': info.port,
             'addresses': info.parsed_addresses(), 'txt': txt})
    def on_change(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Removed:
            out({'event': 'removed', 'type': service_type, 'name': name})
        elif state_change is ServiceStateChange.Added:
            resolved('added', zeroconf, service_type, name)
        else:
            resolved('updated', zeroconf, service_type, name)
    ServiceBrowser(zc, ['_sipuri._udp.local.', '_sip._udp.local.'], handlers=[on_change])
    out({'event': 'ready'})
    sys.stdin.read()
else:
    name, port, address = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    info = ServiceInfo('_sipuri._udp.local.', name + '._sipuri._udp.local.', port=port,
                       addresses=[socket.inet_aton(address)], server='alice-blink.local.',
                       properties={'txtvers': '1', 'name': 'Alice', 'contact': '<sip:alice@' + address + ':' + str(port) + '>',
                                   'instance_id': 'e7a3c0de-0000-4000-8000-00000000a11c'})
    zc.register_service(info)
    out({'event': 'registered'})
    sys.stdin.readline()
    zc.unregister_service(info)
    out({'event': 'unregistered'})
zc.close()
`;

const processes: LineProcess[] = [];
function start(label: string, ns: string, command: string, args: string[]): LineProcess {
  const p = new LineProcess(label, 'ip', ['netns', 'exec', ns, command, ...args]);
  processes.push(p);
  return p;
}
const node = (ns: string, spec: MdnsNodeSpec): LineProcess =>
  start(spec.name, ns, process.execPath, ['--import=tsx', 'test/helpers/mdns-node.ts', JSON.stringify(spec)]);
const python = (ns: string, ...args: string[]): LineProcess => start(`python ${args[0]}`, ns, PYTHON, ['-c', PY, ...args]);

t.teardown(async () => {
  for (const p of processes) await p.kill();
  pair?.remove();
});

t.test('python3-zeroconf and hookswitch find each other in two network namespaces', async (t) => {
  execFileSync(PYTHON, ['-c', 'import zeroconf'], { stdio: 'pipe' });
  pair = createNamespacePair('mdns', '10.213.0');
  ({ ns: NS_A, dev: VETH_A, address: ADDR_A } = pair.a);
  ({ ns: NS_B, address: ADDR_B } = pair.b);

  const report = (label: string, startedAt: number): void => {
    t.comment(`${label}: ${Math.round(performance.now() - startedAt)} ms`);
  };
  t.teardown(() => {
    if (t.passing()) return;
    for (const p of processes) t.comment(`--- ${p.label} stderr ---\n${p.stderr.slice(-4000)}`);
  });

  const browser = python(NS_B, 'browse');
  t.ok(await browser.waitFor((e) => e.event === 'ready'), 'python browser running');

  // Node A joins the group on its veth only: the `interface` option with the wildcard bind.
  const alphaId = '4d9a0c3e-1f2b-4c5d-8e6f-a1b2c3d4e5f6';
  let since = performance.now();
  const alpha = node(NS_A, { name: 'hookswitch on alpha', hostname: 'alpha', interface: ADDR_A, instanceId: alphaId, extensions: ['102', '101'], deviceExtension: '100', port: 5060 });
  t.ok(await alpha.waitFor((e) => e.event === 'ready'), 'node alpha started');

  await t.test('(a) python resolves both of our types with TXT and address', async (t) => {
    for (const type of ['_sipuri._udp.local.', '_sip._udp.local.']) {
      const found = await browser.waitFor((e) => e.event === 'added' && e.type === type);
      report(`python found ${type}`, since);
      t.ok(found, `${type} found within ${WAIT_MS} ms`);
      if (!found) continue;
      t.equal(found.name, `hookswitch on alpha.${type}`);
      t.equal(found.server, 'alpha.local.', 'SRV target under .local');
      t.equal(found.port, 5060);
      t.same(found.addresses, [ADDR_A], 'the veth address, not loopback');
      t.same(found.txt, {
        txtvers: '1',
        name: 'hookswitch on alpha',
        contact: `<sip:100@${ADDR_A}:5060>`,
        instance_id: alphaId,
        product: 'hookswitch',
        version: '0.0.0-test',
        exts: '101,102',
        dev: '100',
      });
    }
  });

  await t.test('(b) we list a service that python3-zeroconf registers', async (t) => {
    since = performance.now();
    const alice = python(NS_B, 'register', 'Alice Blink', '5062', ADDR_B);
    t.ok(await alice.waitFor((e) => e.event === 'registered'), 'python registered');
    t.ok(await until(() => peersOf(alpha).some((p) => p.name === 'Alice Blink'), WAIT_MS), 'alpha lists Alice');
    report('alpha found the python service', since);
    const peer = peersOf(alpha).find((p) => p.name === 'Alice Blink');
    t.match(peer, {
      name: 'Alice Blink',
      host: 'alice-blink.local',
      addresses: [ADDR_B],
      port: 5062,
      contact: `sip:alice@${ADDR_B}:5062`,
      instanceId: 'e7a3c0de-0000-4000-8000-00000000a11c',
      isHookswitch: false,
      extensions: [],
      types: ['sipuri'],
    });
    t.type(peer?.lastSeen, 'number');
    t.notOk(peersOf(alpha).some((p) => p.instanceId === alphaId), 'alpha does not list itself');
    alice.send('stop');
    t.ok(await alice.waitFor((e) => e.event === 'unregistered'), 'python unregistered');
    since = performance.now();
    t.ok(await until(() => !peersOf(alpha).some((p) => p.name === 'Alice Blink'), WAIT_MS), 'the goodbye removes Alice');
    report('alpha saw the python goodbye', since);
  });

  await t.test('(d) two hookswitch nodes see each other as hookswitch peers', async (t) => {
    since = performance.now();
    // Beta trusts a sighting for 4 s only and asks again every second, to show both within the test.
    const beta = node(NS_B, { name: '', hostname: 'beta', instanceId: '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a', extensions: ['201'], deviceExtension: '200', port: 5070, maxTtlSeconds: 4, refreshMs: 1000 });
    t.ok(await beta.waitFor((e) => e.event === 'ready'), 'node beta started (default name)');
    const sees = (n: LineProcess, name: string) => (): boolean => peersOf(n).some((p) => p.name === name && p.isHookswitch && p.types.length === 2);
    t.ok(await until(sees(alpha, 'hookswitch on beta'), WAIT_MS), 'alpha sees beta under both types');
    t.ok(await until(sees(beta, 'hookswitch on alpha'), WAIT_MS), 'beta sees alpha under both types');
    report('both nodes saw each other', since);
    t.match(peersOf(alpha).find((p) => p.name === 'hookswitch on beta'), {
      host: 'beta.local',
      addresses: [ADDR_B],
      port: 5070,
      contact: `sip:200@${ADDR_B}:5070`,
      extensions: ['201'],
      deviceExtension: '200',
      types: ['sip', 'sipuri'],
    });
    t.match(peersOf(beta).find((p) => p.name === 'hookswitch on alpha'), { addresses: [ADDR_A], contact: `sip:100@${ADDR_A}:5060`, extensions: ['101', '102'] });

    await t.test('re-queries keep a live peer past the TTL cap; a crashed one expires', async (t) => {
      const bob = python(NS_A, 'register', 'Bob Crashing', '5064', ADDR_A);
      t.ok(await until(() => peersOf(beta).some((p) => p.name === 'Bob Crashing'), WAIT_MS), 'beta lists Bob');
      await sleep(6000);
      t.ok(peersOf(beta).some((p) => p.name === 'hookswitch on alpha'), 'alpha still listed 6 s later, past the 4 s cap');
      t.ok(peersOf(beta).some((p) => p.name === 'Bob Crashing'), 'Bob still listed 6 s later');
      since = performance.now();
      await bob.crash();
      t.ok(await until(() => !peersOf(beta).some((p) => p.name === 'Bob Crashing'), WAIT_MS), 'Bob expires without a goodbye');
      report('beta expired the crashed peer', since);
      t.ok(peersOf(beta).some((p) => p.name === 'hookswitch on alpha'), 'alpha is still listed');
    });

    await t.test('re-announcement after an address change carries the new address', async (t) => {
      ip('-n', NS_A, 'addr', 'add', `${ADDR_A2}/24`, 'dev', VETH_A);
      since = performance.now();
      const mark = browser.events.length;
      alpha.send('reannounce');
      t.ok(await alpha.waitFor((e) => e.event === 'reannounced', 5000), 'alpha re-announced');
      const fresh = await browser.waitFor(
        (e) => browser.events.indexOf(e) >= mark && e.type === '_sipuri._udp.local.' && (e.event === 'added' || e.event === 'updated') && (e.addresses as string[]).includes(ADDR_A2),
      );
      t.same((fresh?.addresses as string[] | undefined)?.slice().sort(), [ADDR_A, ADDR_A2], 'python resolves both addresses');
      t.ok(await until(() => peersOf(beta).some((p) => p.name === 'hookswitch on alpha' && p.addresses.includes(ADDR_A2)), WAIT_MS), 'beta has the new address');
      report('the re-announcement reached python and beta', since);
    });

    await t.test('(c) stop sends a goodbye: python and beta see alpha leave', async (t) => {
      since = performance.now();
      alpha.send('stop');
      t.ok(await alpha.waitFor((e) => e.event === 'stopped', 5000), 'alpha stopped');
      for (const type of ['_sipuri._udp.local.', '_sip._udp.local.']) {
        t.ok(await browser.waitFor((e) => e.event === 'removed' && e.name === `hookswitch on alpha.${type}`), `python saw ${type} removed`);
      }
      report('python saw the goodbye', since);
      t.ok(await until(() => !peersOf(beta).some((p) => p.name === 'hookswitch on alpha'), WAIT_MS), 'beta dropped alpha');
      report('beta saw the goodbye', since);
    });
  });
});
