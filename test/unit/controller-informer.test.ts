// The informer against a real node:http server speaking the list/watch protocol: initial list,
// watch events, bookmarks, 410 Gone → relist (with the deletes it implies), write-through.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Informer, type InformerEventType } from '../../src/shared/informer.ts';
import { KubeClient, type KubeObject } from '../../src/shared/kube.ts';

const pod = (name: string, rv: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'ns', resourceVersion: rv },
});

describe('informer', () => {
  it('lists, watches, follows bookmarks and relists after 410 Gone', async (t) => {
    const requests: string[] = [];
    let lists = 0;
    let watches = 0;
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      requests.push(
        `${url.searchParams.get('watch') === 'true' ? 'watch' : 'list'} rv=${url.searchParams.get('resourceVersion') ?? ''}`,
      );
      res.writeHead(200, { 'content-type': 'application/json' });
      if (url.searchParams.get('watch') !== 'true') {
        lists += 1;
        const items = lists === 1 ? [pod('a', '10'), pod('b', '11')] : [pod('a', '30'), pod('c', '31')];
        res.end(
          JSON.stringify({
            kind: 'PodList',
            metadata: { resourceVersion: lists === 1 ? '11' : '31' },
            items,
          }),
        );
        return;
      }
      watches += 1;
      if (watches === 1) {
        res.write(`${JSON.stringify({ type: 'MODIFIED', object: pod('a', '12') })}\n`);
        res.write(
          `${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '20' } } })}\n`,
        );
        res.end();
      } else if (watches === 2) {
        res.end(
          `${JSON.stringify({ type: 'ERROR', object: { code: 410, reason: 'Expired', message: 'too old' } })}\n`,
        );
      } else {
        res.write(`${JSON.stringify({ type: 'ADDED', object: pod('d', '32') })}\n`);
        // Keep the stream open until the test aborts.
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    const dir = await mkdtemp(join(tmpdir(), 'informer-'));
    const kubeconfig = join(dir, 'kubeconfig');
    const port = (server.address() as AddressInfo).port;
    await writeFile(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    const client = await KubeClient.create({ kubeconfig });
    const events: Array<[InformerEventType, string, string | undefined]> = [];
    const informer = new Informer(client, {
      resource: { group: '', version: 'v1', plural: 'pods' },
      namespace: 'ns',
    });
    informer.on((type, o) => events.push([type, o.metadata.name, o.metadata.resourceVersion]));
    const abort = new AbortController();
    const running = informer.run(abort.signal);
    await informer.waitForSync();
    for (let i = 0; i < 100 && informer.get('ns/d') === undefined; i++)
      await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await running;
    await client.close();

    assert.deepEqual(requests.slice(0, 5), [
      'list rv=',
      'watch rv=11',
      'watch rv=20',
      'list rv=',
      'watch rv=31',
    ]);
    assert.deepEqual(events, [
      ['add', 'a', '10'],
      ['add', 'b', '11'],
      ['update', 'a', '12'],
      ['delete', 'b', '11'],
      ['update', 'a', '30'],
      ['add', 'c', '31'],
      ['add', 'd', '32'],
    ]);
    assert.deepEqual(
      informer
        .list()
        .map((o) => o.metadata.name)
        .sort(),
      ['a', 'c', 'd'],
    );
    // Write-through keeps the newer copy and ignores an older one.
    informer.upsert(pod('a', '40'));
    informer.upsert(pod('a', '35'));
    assert.equal(informer.get('ns/a')?.metadata.resourceVersion, '40');
  });
});
