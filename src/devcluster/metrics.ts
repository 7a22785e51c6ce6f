// metrics-server for the dev cluster (`up({ metrics: true })`): the real metrics-server, built from
// source, runs as a local process and serves metrics.k8s.io through the API server's aggregation
// layer, scraping the resource metrics KWOK simulates for each fake node (kwok.ts: per-pod CPU and
// memory from pod annotations). That is the metrics pipeline the HorizontalPodAutoscaler reads.
//
// Routing: the APIService names a Service in kube-system. There is no kube-proxy (a ClusterIP
// leads nowhere) and EndpointSlices refuse loopback addresses, so the Service is an ExternalName
// one, `localhost`, and the aggregator (routing to the cluster address, not to endpoints) dials
// https://localhost:<port>. It verifies metrics-server's certificate, issued by the cluster CA for
// `metrics-server.kube-system.svc`, against the APIService's caBundle.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage, SeedcastError } from '../shared/errors.ts';
import { KubeClient } from '../shared/kube.ts';
import type { BinaryName } from './binaries.ts';
import { issueServingCert, type Pki } from './certs.ts';
import { LOOPBACK } from './processes.ts';

export const METRICS_SERVER: BinaryName = 'metrics-server';
export const METRICS_GROUP = 'metrics.k8s.io';
export const METRICS_VERSION = 'v1beta1';
export const METRICS_APISERVICE = `${METRICS_VERSION}.${METRICS_GROUP}`;
const NAMESPACE = 'kube-system';
const SERVICE = 'metrics-server';
const FIELD_MANAGER = 'seedcast-dev-cluster';
/**
 * How often metrics-server scrapes (its minimum). CPU usage is the rate between two scrapes, so a
 * load change shows fully in the metrics API after one to two resolutions.
 */
export const METRIC_RESOLUTION_SECONDS = 10;

/** Command line of metrics-server; issues its serving certificate on the way. */
export async function metricsServerArgs(
  dir: string,
  pki: Pki,
  kubeconfig: string,
  port: number,
): Promise<string[]> {
  const serving = await issueServingCert(pki, 'metrics-server', {
    ips: [LOOPBACK],
    dns: [`${SERVICE}.${NAMESPACE}.svc`, 'localhost'],
  });
  return [
    `--kubeconfig=${kubeconfig}`,
    // Delegated authn/authz: TokenReview/SubjectAccessReview against the API server, and the
    // front-proxy CA (the aggregator's client certificate) from kube-system's
    // extension-apiserver-authentication ConfigMap.
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${LOOPBACK}`,
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'metrics-server')}`,
    `--tls-cert-file=${serving.cert}`,
    `--tls-private-key-file=${serving.key}`,
    // KWOK's fake kubelets: one plain-HTTP server (the node's status port) for every node at
    // 127.0.0.1, a path per node (the node annotation metrics.k8s.io/resource-metrics-path).
    '--deprecated-kubelet-completely-insecure',
    '--kubelet-use-node-status-port',
    '--kubelet-preferred-address-types=InternalIP',
    `--metric-resolution=${METRIC_RESOLUTION_SECONDS}s`,
    // Must stay below 0.9 x the resolution.
    '--kubelet-request-timeout=5s',
    '--profiling=false',
  ];
}

/** The Service (ExternalName `localhost`) and the APIService for metrics.k8s.io. */
export async function registerMetricsApi(kubeconfig: string, pki: Pki, port: number): Promise<void> {
  const client = await KubeClient.create({ kubeconfig });
  try {
    await client.apply(
      { group: '', version: 'v1', plural: 'services', namespace: NAMESPACE, name: SERVICE },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: SERVICE, namespace: NAMESPACE, labels: { 'app.kubernetes.io/name': SERVICE } },
        spec: {
          type: 'ExternalName',
          externalName: 'localhost',
          ports: [{ name: 'https', port, protocol: 'TCP' }],
        },
      },
      FIELD_MANAGER,
    );
    const caBundle = Buffer.from(await readFile(pki.caCert, 'utf8')).toString('base64');
    await client.apply(
      { group: 'apiregistration.k8s.io', version: 'v1', plural: 'apiservices', name: METRICS_APISERVICE },
      {
        apiVersion: 'apiregistration.k8s.io/v1',
        kind: 'APIService',
        metadata: { name: METRICS_APISERVICE, labels: { 'app.kubernetes.io/name': SERVICE } },
        spec: {
          group: METRICS_GROUP,
          version: METRICS_VERSION,
          service: { namespace: NAMESPACE, name: SERVICE, port },
          caBundle,
          groupPriorityMinimum: 100,
          versionPriority: 100,
        },
      },
      FIELD_MANAGER,
    );
  } finally {
    await client.close();
  }
}

interface ApiServiceStatus {
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> };
}

/** Waits until the aggregator reports metrics.k8s.io Available (it probes metrics-server). */
export async function waitForMetricsApi(kubeconfig: string, timeoutMs: number): Promise<void> {
  const client = await KubeClient.create({ kubeconfig });
  const deadline = Date.now() + timeoutMs;
  let last = 'no status yet';
  try {
    for (;;) {
      try {
        const svc = await client.get<ApiServiceStatus>({
          group: 'apiregistration.k8s.io',
          version: 'v1',
          plural: 'apiservices',
          name: METRICS_APISERVICE,
        });
        const available = svc.status?.conditions?.find((c) => c.type === 'Available');
        if (available?.status === 'True') return;
        if (available !== undefined) last = `${available.reason ?? ''}: ${available.message ?? ''}`;
      } catch (err) {
        last = errorMessage(err);
      }
      if (Date.now() > deadline) {
        throw new SeedcastError(
          'SEEDCAST_ERR_TIMEOUT',
          `APIService ${METRICS_APISERVICE} not Available after ${timeoutMs} ms (${last})`,
        );
      }
      await sleep(200);
    }
  } finally {
    await client.close();
  }
}
