// The light kubeconfig reader (src/shared/kubeconfig.ts): what it covers, and that it declines
// (undefined → @kubernetes/client-node) what it does not.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { loadApiConnection } from '../../src/shared/kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'seedcast-kubeconfig-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(name: string, user: Record<string, unknown>, cluster: Record<string, unknown> = {}) {
  const file = join(dir, name);
  writeFileSync(
    file,
    YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'dev',
      contexts: [
        { name: 'other', context: { cluster: 'x', user: 'x' } },
        { name: 'dev', context: { cluster: 'c', user: 'u' } },
      ],
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', ...cluster } }],
      users: [{ name: 'u', user }],
    }),
  );
  return file;
}

describe('kubeconfig reader', () => {
  it('reads CA, client certificate and key from data fields', () => {
    const c = loadApiConnection(
      kubeconfig(
        'certs.yaml',
        {
          'client-certificate-data': Buffer.from('CERT').toString('base64'),
          'client-key-data': Buffer.from('KEY').toString('base64'),
        },
        { 'certificate-authority-data': Buffer.from('CA').toString('base64'), 'tls-server-name': 'kube' },
      ),
    );
    assert.equal(c?.server, 'https://127.0.0.1:6443');
    assert.equal(c?.ca?.toString(), 'CA');
    assert.equal(c?.cert?.toString(), 'CERT');
    assert.equal(c?.key?.toString(), 'KEY');
    assert.equal(c?.tlsServerName, 'kube');
    assert.equal(c?.skipTLSVerify, false);
    assert.deepEqual(c?.headers, {});
  });

  it('reads files relative to the kubeconfig, a token file, and insecure-skip-tls-verify', () => {
    writeFileSync(join(dir, 'ca.crt'), 'CA-FILE');
    writeFileSync(join(dir, 'token'), 'tok-123\n');
    const c = loadApiConnection(
      kubeconfig(
        'files.yaml',
        { tokenFile: 'token' },
        { 'certificate-authority': 'ca.crt', 'insecure-skip-tls-verify': true },
      ),
    );
    assert.equal(c?.ca?.toString(), 'CA-FILE');
    assert.equal(c?.skipTLSVerify, true);
    assert.deepEqual(c?.headers, { authorization: 'Bearer tok-123' });
    const t = loadApiConnection(kubeconfig('token.yaml', { token: 'abc' }));
    assert.deepEqual(t?.headers, { authorization: 'Bearer abc' });
  });

  it('declines exec plugins, auth providers and merged KUBECONFIG lists (client-node reads those)', () => {
    assert.equal(loadApiConnection(kubeconfig('exec.yaml', { exec: { command: 'aws' } })), undefined);
    assert.equal(loadApiConnection(kubeconfig('ap.yaml', { 'auth-provider': { name: 'oidc' } })), undefined);
    assert.equal(
      loadApiConnection(undefined, { KUBECONFIG: `${join(dir, 'a')}:${join(dir, 'b')}` }),
      undefined,
    );
  });

  it('uses $KUBECONFIG, then the in-cluster service account', () => {
    const file = kubeconfig('env.yaml', { token: 'from-env' });
    assert.deepEqual(loadApiConnection(undefined, { KUBECONFIG: file })?.headers, {
      authorization: 'Bearer from-env',
    });
    const sa = join(dir, 'sa');
    rmSync(sa, { recursive: true, force: true });
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'sa-token');
    writeFileSync(join(sa, 'ca.crt'), 'SA-CA');
    const env = {
      HOME: join(dir, 'nohome'),
      KUBERNETES_SERVICE_HOST: 'fd00::1',
      KUBERNETES_SERVICE_PORT: '443',
    };
    const c = loadApiConnection(undefined, env, sa);
    assert.equal(c?.server, 'https://[fd00::1]:443');
    assert.equal(c?.ca?.toString(), 'SA-CA');
    assert.deepEqual(c?.headers, { authorization: 'Bearer sa-token' });
    assert.equal(loadApiConnection(undefined, { HOME: join(dir, 'nohome') }, sa), undefined);
  });

  it('says what is wrong with a broken kubeconfig', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'current-context: nope\ncontexts: []\n');
    assert.throws(() => loadApiConnection(bad), /has no current context/);
    writeFileSync(bad, 'a: [\n');
    assert.throws(() => loadApiConnection(bad), /kubeconfig .*bad\.yaml/);
  });
});
