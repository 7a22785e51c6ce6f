// The dev cluster's PKI, made with the openssl CLI (node:crypto makes keys but not certificates):
// one CA for serving and client certificates, a front-proxy CA for the aggregation layer
// (metrics-server), and the service-account signing key pair. ECDSA P-256 keys: fast to make.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SeedcastError } from '../shared/errors.ts';

const exec = promisify(execFile);

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  /** Client certificate in group system:masters, used by the kubeconfig and every component. */
  adminCert: string;
  adminKey: string;
  frontProxyCaCert: string;
  frontProxyClientCert: string;
  frontProxyClientKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

/** The first address of the service CIDR (the `kubernetes` Service) and loopback names. */
export interface ServingNames {
  ips: string[];
  dns: string[];
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await exec('openssl', args, { cwd });
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: string };
    const hint = e.code === 'ENOENT' ? ' (install it: apt-get install -y openssl)' : '';
    throw new SeedcastError(
      'SEEDCAST_ERR_CLUSTER',
      `openssl ${args[0]} failed${hint}: ${(e.stderr ?? e.message).trim()}`,
      { cause: err, retryable: false },
    );
  }
}

const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = '3650';

async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(
    [
      'req',
      '-x509',
      ...newKey,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-subj',
      `/CN=${cn}`,
      '-days',
      DAYS,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    dir,
  );
}

async function makeLeaf(
  dir: string,
  name: string,
  ca: string,
  subject: string,
  extensions: string[],
): Promise<void> {
  await openssl(
    ['req', '-new', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject],
    dir,
  );
  await writeFile(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      // Leaves are signed in parallel: no shared serial file.
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      DAYS,
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
}

export async function createPki(dir: string, names: ServingNames): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await Promise.all([
    makeCa(dir, 'ca', 'seedcast-dev-ca'),
    makeCa(dir, 'front-proxy-ca', 'seedcast-front-proxy-ca'),
  ]);
  const san = [...names.ips.map((ip) => `IP:${ip}`), ...names.dns.map((d) => `DNS:${d}`)].join(',');
  const leaf = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment'];
  await Promise.all([
    makeLeaf(dir, 'apiserver', 'ca', '/CN=kube-apiserver', [
      ...leaf,
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${san}`,
    ]),
    makeLeaf(dir, 'admin', 'ca', '/O=system:masters/CN=seedcast-admin', [
      ...leaf,
      'extendedKeyUsage=clientAuth',
    ]),
    makeLeaf(dir, 'front-proxy-client', 'front-proxy-ca', '/CN=front-proxy-client', [
      ...leaf,
      'extendedKeyUsage=clientAuth',
    ]),
    // Service-account tokens: the API server signs with the private key, verifies with the public.
    openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir).then(
      () => openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir),
    ),
  ]);
  const p = (file: string) => join(dir, file);
  return {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    servingCert: p('apiserver.crt'),
    servingKey: p('apiserver.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    frontProxyCaCert: p('front-proxy-ca.crt'),
    frontProxyClientCert: p('front-proxy-client.crt'),
    frontProxyClientKey: p('front-proxy-client.key'),
    serviceAccountKey: p('sa.key'),
    serviceAccountPub: p('sa.pub'),
  };
}

/**
 * A serving certificate signed by the cluster CA (`pki.caCert`), for a component the API server
 * calls and verifies (metrics-server behind the aggregation layer: the aggregator checks the name
 * `<service>.<namespace>.svc`). Returns the cert and key paths inside the PKI directory.
 */
export async function issueServingCert(
  pki: Pki,
  name: string,
  names: ServingNames,
): Promise<{ cert: string; key: string }> {
  const san = [...names.ips.map((ip) => `IP:${ip}`), ...names.dns.map((d) => `DNS:${d}`)].join(',');
  await makeLeaf(pki.dir, name, 'ca', `/CN=${names.dns[0] ?? name}`, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${san}`,
  ]);
  return { cert: join(pki.dir, `${name}.crt`), key: join(pki.dir, `${name}.key`) };
}
