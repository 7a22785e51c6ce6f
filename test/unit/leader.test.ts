// Leader election against an API server that stops answering: a renewal may not outlast the renew
// deadline. A lease request hanging for the client's 30 s timeout kept a controller "leading" past
// its lease — two leaders — and delayed its successor (fault suite, after an API-server restart).
// The server here is a plain HTTP socket that answers the first lease create and then hangs: it
// stands in for a restarting API server at the unit level only (the controller's integration and
// fault tests use the real one).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import YAML from 'yaml';
import { KubeClient } from '../../src/shared/kube.ts';
import { LeaderElector } from '../../src/shared/leader.ts';

const dir = mkdtempSync(join(tmpdir(), 'seedcast-leader-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('a renewal that hangs gives up within the renew deadline: leadership is lost before the lease ends', async () => {
  let answered = 0;
  const hanging: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (answered === 0 && req.method === 'GET') {
      answered++;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', reason: 'NotFound', message: 'not found' }));
      return;
    }
    if (answered === 1 && req.method === 'POST') {
      answered++;
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    hanging.push(res); // from now on: accepted, never answered
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'x',
      contexts: [{ name: 'x', context: { cluster: 'x', user: 'x' } }],
      clusters: [{ name: 'x', cluster: { server: `http://127.0.0.1:${port}` } }],
      users: [{ name: 'x', user: { token: 't' } }],
    }),
  );
  const client = await KubeClient.create({ kubeconfig, timeoutMs: 30_000 });
  const elector = new LeaderElector(client, {
    namespace: 'ns',
    name: 'lease',
    identity: 'me',
    // The controller's ratios (renew deadline ⅔ of the lease, retry period ⅐); undici checks its
    // request timeouts on a coarse (~1 s) timer, so the lease leaves room for that.
    leaseDurationMs: 6000,
    renewDeadlineMs: 4000,
    retryPeriodMs: 850,
  });
  let ledAt = 0;
  let lostAt = 0;
  await elector.run(new AbortController().signal, async (leading) => {
    ledAt = Date.now();
    await new Promise<void>((resolve) => leading.addEventListener('abort', () => resolve(), { once: true }));
    lostAt = Date.now();
  });
  for (const res of hanging) res.destroy();
  server.close();
  await client.close();
  assert.ok(ledAt > 0, 'it led');
  // Lost about the renew deadline, before the 6 s lease ran out — not after the 30 s request
  // timeout.
  assert.ok(lostAt - ledAt < 6000, `leadership lost ${lostAt - ledAt} ms after it was taken`);
});
