// Fault injection on the dev cluster with real processes (issue 10): a real control plane, the
// controller installed by Helm and run by the pod runner, real agents and CPU fixture engines.
// Kills (seed agent, receiver agent, controller), an API server restart, pods and
// WeightTransfers deleted by hand mid-flight, a port range too small, a transfer past its
// deadline, bad resources, fuzzed bridge/HTTP/peer input; the long form adds load. Every fault
// point comes from a seeded generator (SEEDCAST_FAULT_SEED). Assertions are counts and
// invariants, never timings. `npm run test:faults` (SEEDCAST_FAULTS=long for the long form).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Annotations, GROUP, Labels, Plurals, VERSION } from '../../src/api/v1alpha1/names.ts';
import type { WeightTransfer } from '../../src/api/v1alpha1/weighttransfer.ts';
import { RUN_VOLUME } from '../../src/controller/inferencedeployment/inject.ts';
import { ScaleOutObserver } from '../../src/demo/observer.ts';
import {
  inferenceDeploymentManifest,
  ScaleOutScenario,
  SYSTEM_NAMESPACE,
  weightSourceManifest,
} from '../../src/demo/scenario.ts';
import { KubeApiError, type KubeClient, Resources } from '../../src/shared/kube.ts';
import { createLogger } from '../../src/shared/log.ts';
import { installCrds, type TestCluster, useCluster, waitFor } from '../support/cluster.ts';
import {
  bridgeFuzzCases,
  bridgeProbe,
  httpFuzzCases,
  peerFuzz,
  rawHttpProbe,
  resourceCorpus,
  zodIssues,
} from './inputs.ts';
import {
  countFault,
  InvariantWatch,
  isTerminal,
  LONG,
  leakedAddresses,
  ProcessMonitor,
  Rng,
  restartApiServer,
  SEED,
  say,
  tally,
  waitForApi,
  writeReport,
} from './support.ts';

say(`mode ${LONG ? 'long' : 'short'}, seed ${SEED} (repeat with SEEDCAST_FAULT_SEED=${SEED})`);
// The long form's load (64 receivers + 8 sources at once) needs more fake GPUs.
const fixture = useCluster({ nodes: LONG ? 12 : 4, gpusPerNode: 8 });
const log = createLogger({ name: 'faults', level: process.env.SEEDCAST_LOG_LEVEL ?? 'warn' });
after(() => {
  writeReport();
});

const wtRef = (namespace: string, name?: string) => ({
  group: GROUP,
  version: VERSION,
  plural: Plurals.WeightTransfer,
  namespace,
  ...(name === undefined ? {} : { name }),
});
const wsRef = (namespace: string, name: string) => ({
  group: GROUP,
  version: VERSION,
  plural: Plurals.WeightSource,
  namespace,
  name,
});

test('bad resources: each refused by the API server with a field path, and by the zod schemas', async (t) => {
  const cluster = await fixture.ready();
  await installCrds(cluster.client);
  const ns = await fixture.namespace(t, 'bad');
  const rng = new Rng(SEED ^ 0xbad);
  const all = resourceCorpus();
  const corpus = LONG ? all : rng.shuffle(all).slice(0, 50);
  say(`resource corpus: ${corpus.length} of ${all.length} variations`);
  const plurals = {
    WeightSource: Plurals.WeightSource,
    InferenceDeployment: Plurals.InferenceDeployment,
    WeightTransfer: Plurals.WeightTransfer,
  } as const;
  let acceptedByBoth = 0;
  for (const v of corpus) {
    const issues = zodIssues(v);
    const ref = { group: GROUP, version: VERSION, plural: plurals[v.kind], namespace: ns };
    const name = `fz-${(tally.badInputsTried['api-server'] + acceptedByBoth).toString(36)}`;
    const body = { ...v.resource, metadata: { name } };
    const err = await cluster.client.create(ref, body).then(
      () => undefined,
      (e: unknown) => e,
    );
    const apiRefused = err instanceof KubeApiError && err.status === 422;
    if (issues.length === 0 && err === undefined) {
      acceptedByBoth++;
      await cluster.client.delete({ ...ref, name }).catch(() => undefined);
      continue;
    }
    tally.badInputsTried.zod++;
    tally.badInputsTried['api-server']++;
    const zodNamesPath = issues.some((p) => p !== '<root>');
    if (issues.length > 0 && zodNamesPath) tally.badInputsRejectedCleanly.zod++;
    const message = err instanceof Error ? err.message : '';
    const apiNamesPath = apiRefused && [v.path, ...issues].some((p) => message.includes(p));
    if (apiNamesPath) tally.badInputsRejectedCleanly['api-server']++;
    if (issues.length === 0 || !apiNamesPath || !zodNamesPath) {
      const line = `${v.name}: zod ${issues.length === 0 ? 'accepts' : `refuses at ${issues.join(', ')}`}; API server ${
        err === undefined ? 'accepts' : `${(err as KubeApiError).status ?? '?'}: ${message.slice(0, 160)}`
      }`;
      tally.validatorDisagreements.push(line);
      say(`DISAGREEMENT ${line}`);
      if (err === undefined) await cluster.client.delete({ ...ref, name }).catch(() => undefined);
    }
  }
  tally.notes.push(
    `${acceptedByBoth} generated variations are valid (accepted by zod and the API server alike)`,
  );
  assert.deepEqual(tally.validatorDisagreements, [], 'zod and the API server agree, each naming the field');
});

interface Scene {
  cluster: TestCluster;
  kube: KubeClient;
  namespace: string;
  scenario: ScaleOutScenario;
  monitor: ProcessMonitor;
  watch: InvariantWatch;
  rng: Rng;
}

type Fault =
  | 'seed-agent-kill'
  | 'receiver-agent-kill'
  | 'controller-kill'
  | 'api-server-restart'
  | 'transfer-deleted'
  | 'pod-deleted';

/** Waits (bounded) for an active transfer from a seed (polled every 50 ms); undefined when none came. */
async function activeSeedTransfer(
  s: Scene,
  timeoutMs: number,
  phase?: string,
): Promise<WeightTransfer | undefined> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const list = await s.kube.list<WeightTransfer>(wtRef(s.namespace)).catch(() => undefined);
    const found = list?.items.find(
      (t) =>
        t.spec.weightSource === s.scenario.options.name &&
        t.spec.source.type === 'Seed' &&
        !isTerminal(t) &&
        (phase === undefined || t.status?.phase === phase),
    );
    if (found !== undefined) return found;
    await sleep(50);
  }
  return undefined;
}

/** The phase a transfer is in now (for the fault's label). */
async function transferPhase(s: Scene, name: string): Promise<string> {
  const t = await s.kube.find<WeightTransfer>({ ...wtRef(s.namespace), name }).catch(() => undefined);
  return t === undefined ? 'gone' : (t.status?.phase ?? 'Pending');
}

const AGENT = 'seedcast-agent';

async function controllerPod(s: Scene): Promise<string | undefined> {
  return s.scenario.runner?.running.find((k) => k.startsWith(`${SYSTEM_NAMESPACE}/`));
}

async function lease(kube: KubeClient): Promise<{ holder?: string; renew?: number }> {
  const l = await kube
    .find<{ spec?: { holderIdentity?: string; renewTime?: string } }>({
      ...Resources.leases,
      namespace: SYSTEM_NAMESPACE,
      name: 'seedcast-controller',
    })
    .catch(() => undefined);
  return {
    ...(l?.spec?.holderIdentity === undefined ? {} : { holder: l.spec.holderIdentity }),
    ...(l?.spec?.renewTime === undefined ? {} : { renew: Date.parse(l.spec.renewTime) }),
  };
}

async function waitLease(
  kube: KubeClient,
  ok: (l: { holder?: string; renew?: number }) => boolean,
): Promise<void> {
  const until = Date.now() + 180_000;
  while (Date.now() < until) {
    if (ok(await lease(kube))) return;
    await sleep(200);
  }
  throw new Error('no controller took the lease within 180 s');
}

/** Injects `fault` at a random point of the scale-out just started; returns a recovery probe. */
async function inject(s: Scene, fault: Fault): Promise<(() => Promise<void>) | undefined> {
  const { rng, kube, namespace, monitor } = s;
  if (fault === 'seed-agent-kill' || fault === 'receiver-agent-kill' || fault === 'pod-deleted') {
    // The fault point: a random moment (0–0.3 s) after an active transfer from a seed appeared.
    const t = await activeSeedTransfer(s, 30_000);
    await sleep(rng.between(0, 300));
    const phaseNow = t === undefined ? 'none caught' : await transferPhase(s, t.metadata.name);
    // No transfer caught (it was quicker than the poll): a pod that is not Ready yet.
    const current = s.scenario.observer.current();
    const fresh = current.filter((p) => p.readyAt === undefined);
    const pod =
      fault === 'seed-agent-kill'
        ? (t?.spec.source.seed?.pod ?? rng.pick(current).name)
        : t !== undefined
          ? rng.pick(t.spec.receivers).pod
          : rng.pick(fresh.length > 0 ? fresh : current).name;
    const key = `${namespace}/${pod}`;
    if (fault === 'pod-deleted') {
      await monitor.deletePod(namespace, pod).catch(() => undefined);
      countFault(
        `${fault} (${t?.spec.source.seed?.pod === pod ? 'seed' : 'receiver'}, transfer ${phaseNow})`,
      );
      return undefined;
    }
    const agent = monitor.processesOf(key, AGENT)[0];
    if (agent !== undefined) monitor.kill(key, agent);
    countFault(`${fault} (transfer ${phaseNow})`);
    // The kubelet would restart the container; the pod runner does not: the pod is replaced.
    await sleep(rng.between(500, 3000));
    await monitor.deletePod(namespace, pod).catch(() => undefined);
    return undefined;
  }
  if (fault === 'transfer-deleted') {
    const chosen = await activeSeedTransfer(s, 30_000);
    await sleep(rng.between(0, 300));
    if (chosen !== undefined) {
      const phaseNow = await transferPhase(s, chosen.metadata.name);
      // The observer polls every 250 ms and may never see a transfer deleted this early, while
      // its receivers may still finish it before their agents see it go (a small rank moves in
      // tens of ms) and record the verification on their pods, which the controller counts (a
      // record naming a deleted transfer: agent contract §4). A clean-clone CI run (e1f7a23)
      // flagged two such pods Ready "before verified" (their weights checked out).
      s.scenario.observer.remember(chosen);
      await kube.delete({ ...wtRef(namespace), name: chosen.metadata.name }).catch(() => undefined);
      countFault(`transfer-deleted (${phaseNow})`);
    } else {
      const seen = s.scenario.observer.transfers.map(
        (x) => `${x.metadata.name} ${x.spec.source.type} ${x.status?.phase ?? 'Pending'}`,
      );
      say(`transfer-deleted: no active transfer caught this round; transfers: ${seen.join('; ')}`);
    }
    return undefined;
  }
  if (fault === 'controller-kill') {
    await sleep(rng.between(0, 3000));
    const key = await controllerPod(s);
    const before = await lease(kube);
    const killedAt = Date.now();
    if (key !== undefined) for (const child of monitor.processesOf(key)) monitor.kill(key, child);
    countFault('controller-kill');
    await sleep(rng.between(0, 2000));
    if (key !== undefined) {
      const [ns, name] = key.split('/') as [string, string];
      await monitor.deletePod(ns, name).catch(() => undefined);
    }
    await waitLease(
      kube,
      (l) => l.holder !== undefined && l.holder !== before.holder && (l.renew ?? 0) >= killedAt - 1000,
    );
    const leaderAfter = (Date.now() - killedAt) / 1000;
    say(`controller recovered: new leader after ${leaderAfter.toFixed(1)} s`);
    return async () => {
      tally.recovery.push({ fault: 'controller', seconds: leaderAfter, what: 'new leader' });
      tally.recovery.push({
        fault: 'controller',
        seconds: (Date.now() - killedAt) / 1000,
        what: 'all Ready',
      });
    };
  }
  if (fault === 'api-server-restart') {
    await sleep(rng.between(0, 3000));
    const downMs = rng.between(2000, 6000);
    countFault(`api-server-restart (down ${downMs} ms)`);
    const restartedAt = await restartApiServer(s.cluster, downMs);
    await waitForApi(kube, 120_000);
    const apiAfter = (Date.now() - restartedAt) / 1000;
    // The controller renews (or, past its renew deadline, exits and is replaced and a new one leads).
    await waitLease(kube, (l) => (l.renew ?? 0) > restartedAt);
    const controllerAfter = (Date.now() - restartedAt) / 1000;
    return async () => {
      tally.recovery.push({ fault: 'api-server', seconds: apiAfter, what: '/readyz' });
      tally.recovery.push({ fault: 'api-server', seconds: controllerAfter, what: 'controller renewing' });
      tally.recovery.push({
        fault: 'api-server',
        seconds: (Date.now() - restartedAt) / 1000,
        what: 'all Ready',
      });
    };
  }
  return undefined;
}

/** Invariant 1 on everything an observer saw: Ready only verified, weights byte-identical per rank. */
function checkReadyPods(observer: ScaleOutObserver, reference: { digests?: string[] }): void {
  for (const pod of observer.pods.values()) {
    if (pod.readyAt === undefined) continue;
    tally.podsReadyChecked++;
    if (pod.readyBeforeVerified) {
      tally.readyUnverified++;
      say(
        `READY BEFORE VERIFIED: ${pod.name} uid ${pod.uid}; transfers then: ${pod.readyBeforeVerifiedDetail ?? 'none'}`,
      );
    }
    if (pod.rankDigests === undefined) continue;
    reference.digests ??= pod.rankDigests;
    const same =
      pod.rankDigests.length === reference.digests.length &&
      pod.rankDigests.every((d, i) => d === reference.digests![i]);
    if (!same) {
      tally.readyPartialWeights++;
      say(`WEIGHTS DIFFER: ${pod.name} ${pod.rankDigests.join(',')} vs ${reference.digests.join(',')}`);
    }
  }
}

async function scaleOut(s: Scene, replicas: number, fault: Fault | undefined): Promise<void> {
  tally.scaleOutsAttempted++;
  say(`scale-out to ${replicas}${fault === undefined ? '' : ` with ${fault}`}`);
  await s.scenario.scaleTo(replicas);
  const recovered = fault === undefined ? undefined : await inject(s, fault);
  await s.scenario.waitForReady(replicas, 360_000);
  await recovered?.();
  await recheckWeights(s);
  tally.scaleOutsCompleted++;
}

/**
 * Invariant 1 once more, now rather than when each pod was first seen Ready: every Ready pod's
 * engine still holds weights (a digest per rank) and all are the same bytes. Catches weights lost
 * after Ready (a late `complete: failed` once wiped a verified pod).
 */
async function recheckWeights(s: Scene): Promise<void> {
  let reference: string[] | undefined;
  // Current pods, not the last poll's. Right after an API-server restart its watch cache may still
  // be refilling (429 "storage is (re)initializing", seen in CI): retry what the server says to retry.
  for (let attempt = 1; ; attempt++) {
    try {
      await s.scenario.observer.poll();
      break;
    } catch (err) {
      if (!(err instanceof KubeApiError && err.retryable) || attempt >= 40) throw err;
      await sleep(250);
    }
  }
  for (const pod of s.scenario.observer.current()) {
    if (pod.readyAt === undefined) continue;
    const dir = s.scenario.runner?.podDir(s.namespace, pod.name);
    if (dir === undefined) continue; // being deleted: the pod runner already stopped it
    const now = await s.scenario
      .readDigests({ namespace: s.namespace, name: pod.name })
      .catch(() => undefined);
    if (now === undefined) {
      // Only on this path: what the engine says, for the report.
      const status = await readFile(join(dir, 'v', RUN_VOLUME, 'engine-status.json'), 'utf8').catch(
        (err: Error) => `unreadable: ${err.message}`,
      );
      tally.readyPartialWeights++;
      say(`WEIGHTS GONE AFTER READY: ${pod.name} uid ${pod.uid}: ${status.slice(0, 600)}`);
      continue;
    }
    reference ??= now;
    if (!now.every((d, i) => d === reference![i])) {
      tally.readyPartialWeights++;
      say(`WEIGHTS DIFFER NOW: ${pod.name} ${now.join(',')} vs ${reference.join(',')}`);
    }
  }
}

async function fuzzAgent(s: Scene): Promise<void> {
  const pod = s.scenario.observer.current().find((p) => p.readyAt !== undefined)!;
  const key = `${s.namespace}/${pod.name}`;
  const dir = s.scenario.runner!.podDir(s.namespace, pod.name)!;
  const socket = join(dir, 'v', RUN_VOLUME, 'agent.sock');
  const obj = await s.kube.get<{ metadata: { annotations?: Record<string, string> } }>({
    ...Resources.pods,
    namespace: s.namespace,
    name: pod.name,
  });
  const endpoint = obj.metadata.annotations?.[Annotations.agentEndpoint] ?? '';
  const health = async () =>
    (await (await fetch(`http://${endpoint}/healthz`, { signal: AbortSignal.timeout(10_000) })).json()) as {
      status: string;
      engineRanks: number;
    };
  const before = await health();
  const agentBefore = s.monitor.processesOf(key, AGENT)[0];
  for (const c of bridgeFuzzCases(s.rng, LONG ? 200 : 30)) {
    const r = await bridgeProbe(socket, c.name, c.bytes);
    tally.badInputsTried.bridge++;
    if (r.clean) tally.badInputsRejectedCleanly.bridge++;
    else say(`bridge input not rejected cleanly: ${r.name}: ${r.detail}`);
  }
  for (const c of httpFuzzCases(s.rng, LONG ? 100 : 15)) {
    const r = await rawHttpProbe(endpoint, c.name, c.bytes);
    tally.badInputsTried.http++;
    if (r.clean) tally.badInputsRejectedCleanly.http++;
    else say(`HTTP input not rejected cleanly: ${r.name}: ${r.detail}`);
  }
  const afterFuzz = await health();
  assert.equal(afterFuzz.status, 'ok', 'the agent still serves /healthz');
  assert.equal(afterFuzz.engineRanks, before.engineRanks, 'the engine ranks stayed registered');
  assert.equal(s.monitor.processesOf(key, AGENT)[0], agentBefore, 'the same agent process still runs');
  assert.equal(agentBefore?.exitCode, null, 'the agent did not exit');
}

/**
 * A WeightSource whose seeds send slowly (SEEDCAST_BANDWIDTH_LIMIT on the agent) and whose
 * transfers have a short deadline: the warm transfer must fail at its deadline (never hang), the
 * receiver then loads from storage. While the seed listens, its peer port gets fuzzed.
 */
async function deadlineScene(s: Scene): Promise<void> {
  const { kube, namespace } = s;
  const name = 'slow';
  const ws = weightSourceManifest({ name, tensorParallel: 2, batchWindowSeconds: 1 });
  Object.assign(ws.spec.transfer, { timeoutSeconds: 20, maxRetries: 0 });
  await kube.apply(wsRef(namespace, name), ws, 'seedcast-faults');
  // The rendered pod template of the scenario's InferenceDeployment, relabelled, with a slow agent.
  const dep = await kube.get<{
    spec: { template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> } };
  }>({ ...Resources.deployments, namespace, name: s.scenario.options.name });
  const template = structuredClone(dep.spec.template);
  template.metadata.labels = { app: 'slow-faults', [Labels.weightSource]: name };
  type C = { name: string; env?: Array<{ name: string; value?: string }>; args?: string[] };
  const containers = [
    ...((template.spec.initContainers as C[] | undefined) ?? []),
    ...((template.spec.containers as C[] | undefined) ?? []),
  ];
  for (const c of containers) {
    if (c.name === AGENT) {
      c.env = (c.env ?? []).map((e) =>
        e.name === 'SEEDCAST_WEIGHT_SOURCE' ? { name: e.name, value: name } : e,
      );
      c.env.push({ name: 'SEEDCAST_BANDWIDTH_LIMIT', value: '256Ki' });
    }
    c.args = c.args?.map((a) => (a.startsWith('--model=') ? `--model=seedcast/${name}-fixture` : a));
  }
  const depRef = { ...Resources.deployments, namespace, name };
  await kube.apply(
    depRef,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name },
      spec: { replicas: 1, selector: { matchLabels: { app: 'slow-faults' } }, template },
    },
    'seedcast-faults',
  );
  const observer = new ScaleOutObserver({
    kube,
    namespace,
    weightSource: name,
    readDigests: (p) => s.scenario.readDigests(p),
  });
  s.watch.attach(observer);
  observer.start();
  const ready = (n: number) =>
    observer.waitFor(
      () => observer.current().length === n && observer.current().every((p) => p.readyAt !== undefined),
      360_000,
      `${n} Ready pods of ${name}`,
    );
  try {
    tally.scaleOutsAttempted++;
    await ready(1);
    tally.scaleOutsCompleted++;
    tally.scaleOutsAttempted++;
    await kube.mergePatch({ ...depRef, subresource: 'scale' }, { spec: { replicas: 2 } });
    const transfer = await observer.waitFor(
      () =>
        observer.transfers.some(
          (t) => t.spec.source.type === 'Seed' && (t.status?.rendezvous?.length ?? 0) > 0,
        ),
      120_000,
      'the slow seed to listen',
    );
    void transfer;
    const t = observer.transfers.find(
      (x) => x.spec.source.type === 'Seed' && (x.status?.rendezvous?.length ?? 0) > 0,
    )!;
    countFault('deadline (slow seed, 256 KiB/s, 20 s deadline)');
    const secret = await kube.get<{ data: { token: string } }>({
      ...Resources.secrets,
      namespace,
      name: 'seedcast-agent-token',
    });
    const seedStatus = await s.scenario
      .readDigests({ namespace, name: t.spec.source.seed!.pod })
      .catch(() => undefined);
    void seedStatus;
    const dir = s.scenario.runner!.podDir(namespace, t.spec.source.seed!.pod)!;
    const engine = JSON.parse(await readFile(join(dir, 'v', RUN_VOLUME, 'engine-status.json'), 'utf8')) as {
      ranks: Array<{ rank: number; fingerprint?: string }>;
    };
    const results = await peerFuzz(
      {
        address: t.status!.rendezvous![0]!.address,
        namespace,
        transfer: t.metadata.name,
        attempt: t.spec.attempt,
        receiver: t.spec.receivers[0]!,
        fingerprint: engine.ranks.find((r) => r.rank === 0)?.fingerprint ?? '0'.repeat(64),
        token: Buffer.from(Buffer.from(secret.data.token, 'base64').toString('utf8').trim()),
      },
      s.rng,
      LONG ? 60 : 12,
    );
    const skipped = results.filter((r) => r.skipped === true).length;
    if (skipped > 0) tally.notes.push(`${skipped} peer probes not tried: the seed's port had closed`);
    for (const r of results.filter((x) => x.skipped !== true)) {
      tally.badInputsTried.peer++;
      if (r.clean) tally.badInputsRejectedCleanly.peer++;
      else say(`peer input not rejected cleanly: ${r.name}: ${r.detail}`);
    }
    await ready(2);
    tally.scaleOutsCompleted++;
    const failed = observer.transfers.filter((x) => x.status?.reason === 'DeadlineExceeded');
    assert.ok(failed.length >= 1, 'the slow warm transfer failed at its deadline');
  } finally {
    await observer.stop();
    checkReadyPods(observer, {});
    await kube.delete(depRef).catch(() => undefined);
    await kube.delete(wsRef(namespace, name)).catch(() => undefined);
  }
}

/** ports.count = tensorParallel and one receiver per group: receivers must queue for ports. */
async function portsScene(s: Scene, from: number): Promise<void> {
  const { kube, namespace, scenario } = s;
  await scenario.scaleTo(1);
  await scenario.waitForReady(1, 240_000);
  const name = scenario.options.name;
  await kube.mergePatch(wsRef(namespace, name), {
    spec: {
      // A paced seed (64 MiB at 32 MiB/s, ~2 s a transfer) keeps the queue long enough that
      // receivers whose agents start seconds apart still find the range taken: unpaced, each
      // transfer took ~0.2 s and a run could see no receiver ever wait for a port.
      transfer: {
        ports: { start: 41000, count: 2 },
        maxReceiversPerGroup: 1,
        maxConcurrentPerSeed: 4,
        bandwidthLimit: '32Mi',
      },
    },
  });
  countFault('ports-exhausted (range of 2 ports for TP=2, one receiver per group, paced seed)');
  let exhausted = false;
  const probe = setInterval(() => {
    void kube
      .get<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(wsRef(namespace, name))
      .then((w) => {
        if (w.status?.conditions?.some((c) => c.type === 'PortsExhausted' && c.status === 'True'))
          exhausted = true;
      })
      .catch(() => undefined);
  }, 200);
  try {
    await scaleOut(s, from, undefined);
  } finally {
    clearInterval(probe);
  }
  if (exhausted) tally.portsExhaustedSeen++;
  assert.ok(exhausted, 'the WeightSource said PortsExhausted while receivers queued');
  await kube.mergePatch(wsRef(namespace, name), {
    spec: {
      transfer: {
        ports: { start: 40000, count: 64 },
        maxReceiversPerGroup: 16,
        maxConcurrentPerSeed: 2,
        bandwidthLimit: null,
      },
    },
  });
}

/**
 * Long form: many WeightSources at once, and many receivers of one. Bytes stay tiny. Each scene
 * names its sources with its own `prefix` and waits for their pods to be gone before returning:
 * deleting a WeightSource garbage-collects its transfers at once while the Deployment's pods
 * linger Ready for a while, so a later scene reusing a name saw those pods Ready with no transfer
 * and reported them "Ready before verified" (long form, seed 20261130).
 */
async function loadScene(s: Scene, prefix: string, sources: number, replicas: number): Promise<void> {
  const { kube, namespace } = s;
  const names = Array.from({ length: sources }, (_, i) => `${prefix}${i}`);
  const observers: ScaleOutObserver[] = [];
  for (const name of names) {
    await kube.apply(
      wsRef(namespace, name),
      weightSourceManifest({ name, tensorParallel: 1, batchWindowSeconds: 2 }),
      'seedcast-faults',
    );
    await kube.apply(
      { group: GROUP, version: VERSION, plural: Plurals.InferenceDeployment, namespace, name },
      inferenceDeploymentManifest({
        name,
        tensorParallel: 1,
        bytesPerRank: '1MiB',
        coldLoadMs: 200,
        replicas: 1,
      }),
      'seedcast-faults',
    );
    const o = new ScaleOutObserver({
      kube,
      namespace,
      weightSource: name,
      readDigests: (p) => s.scenario.readDigests(p),
      intervalMs: 1000,
    });
    s.watch.attach(o);
    o.start();
    observers.push(o);
  }
  const allReady = (n: number) =>
    Promise.all(
      observers.map((o, i) =>
        o.waitFor(
          () => o.current().length === n && o.current().every((p) => p.readyAt !== undefined),
          900_000,
          `${n} Ready pods of ${names[i]}`,
        ),
      ),
    );
  try {
    tally.scaleOutsAttempted += sources;
    await allReady(1);
    tally.scaleOutsCompleted += sources;
    tally.scaleOutsAttempted += sources;
    for (const name of names) {
      await kube.mergePatch(
        {
          group: GROUP,
          version: VERSION,
          plural: Plurals.InferenceDeployment,
          namespace,
          name,
          subresource: 'scale',
        },
        { spec: { replicas } },
      );
    }
    await allReady(replicas);
    tally.scaleOutsCompleted += sources;
  } finally {
    for (const o of observers) {
      await o.stop();
      checkReadyPods(o, {});
    }
    for (const name of names) {
      await kube
        .delete({ group: GROUP, version: VERSION, plural: Plurals.InferenceDeployment, namespace, name })
        .catch(() => undefined);
      await kube.delete(wsRef(namespace, name)).catch(() => undefined);
    }
    await waitForPodsGone(s, names);
  }
}

async function waitForPodsGone(s: Scene, sources: readonly string[]): Promise<void> {
  await waitFor(
    `pods of ${sources.join(', ')} gone`,
    async () => {
      const pods = await s.kube.list({ ...Resources.pods, namespace: s.namespace });
      return pods.items.every((p) => !sources.includes(p.metadata.labels?.[Labels.weightSource] ?? ''));
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

test('scale-outs survive kills, restarts, deletions, a small port range and a deadline', async (t) => {
  const cluster = await fixture.ready();
  const namespace = await fixture.namespace(t, 'faults');
  const workDir = await mkdtemp(join(tmpdir(), 'sc-f-'));
  const rng = new Rng(SEED);
  const scenario = new ScaleOutScenario({
    kube: cluster.client,
    kubeconfig: cluster.kubeconfig,
    namespace,
    workDir,
    name: 'faulty',
    bytesPerRank: '32MiB',
    coldLoadMs: 500,
    batchWindowSeconds: 1,
    log,
  });
  const s: Scene = {
    cluster,
    kube: cluster.client,
    namespace,
    scenario,
    monitor: undefined as unknown as ProcessMonitor,
    watch: new InvariantWatch(),
    rng,
  };
  let torn = false;
  const tearDown = async () => {
    if (torn) return;
    torn = true;
    s.monitor?.stop();
    await scenario.tearDown();
  };
  t.after(async () => {
    await tearDown();
    // SEEDCAST_KEEP_POD_DIRS=1 keeps every pod's logs (agents, engines, controller) for a post-mortem.
    if (process.env.SEEDCAST_KEEP_POD_DIRS === '1') say(`work directory kept: ${workDir}`);
    else await rm(workDir, { recursive: true, force: true });
  });

  await scenario.setUp();
  s.monitor = new ProcessMonitor(scenario.runner!, cluster.client);
  s.monitor.start();
  s.watch.attach(scenario.observer);
  tally.scaleOutsAttempted++;
  await scenario.waitForReady(1, 240_000);
  tally.scaleOutsCompleted++;

  const agentKill = rng.pick<Fault>(['seed-agent-kill', 'receiver-agent-kill']);
  const plan: Fault[] = LONG
    ? rng.shuffle<Fault>([
        'seed-agent-kill',
        'seed-agent-kill',
        'receiver-agent-kill',
        'receiver-agent-kill',
        'controller-kill',
        'controller-kill',
        'api-server-restart',
        'api-server-restart',
        'transfer-deleted',
        'pod-deleted',
        'pod-deleted',
      ])
    : [agentKill, 'controller-kill', 'transfer-deleted', 'api-server-restart'];
  say(`plan: ${plan.join(', ')}`);
  try {
    let replicas = 1;
    for (const fault of plan) {
      if (replicas >= 5) {
        replicas = 2;
        await scenario.scaleTo(replicas);
        await scenario.waitForReady(replicas, 240_000);
      }
      replicas += 2;
      await scaleOut(s, replicas, fault);
    }
    await fuzzAgent(s);
    await deadlineScene(s);
    await portsScene(s, 4);
    if (LONG) {
      await loadScene(s, 'wide', 8, 4);
      await loadScene(s, 'deep', 1, 64);
    }
    // Every port a seed listened on closes once its transfer is over (all are by now).
    await scenario.scaleTo(2);
    await scenario.waitForReady(2, 240_000);
    const openAfter = await leakedAddresses(s.watch.addresses);
    tally.leakedPorts += openAfter.length;
    if (openAfter.length > 0) say(`LEAKED PORTS (transfers over): ${openAfter.join(', ')}`);
  } finally {
    // The accounting runs whatever happened above, so a failed run still reports what it saw.
    checkReadyPods(scenario.observer, {});
    s.watch.record();
    const endpoints = (
      await cluster.client
        .list<{ metadata: { annotations?: Record<string, string> } }>({ ...Resources.pods, namespace })
        .catch(() => ({ items: [] }))
    ).items
      .map((p) => p.metadata.annotations?.[Annotations.agentEndpoint])
      .filter((a): a is string => a !== undefined);
    await tearDown();
    const leakedProcs = await s.monitor.leaked();
    tally.leakedProcesses += leakedProcs.length;
    if (leakedProcs.length > 0) say(`LEAKED PROCESSES: ${leakedProcs.join(', ')}`);
    const openAtEnd = await leakedAddresses(new Set([...endpoints, ...s.watch.addresses]), 10_000);
    tally.leakedPorts += openAtEnd.length;
    if (openAtEnd.length > 0) say(`LEAKED PORTS (after teardown): ${openAtEnd.join(', ')}`);
    const exits = (kind: string) => s.monitor.exits.filter((e) => e.kind === kind).length;
    tally.notes.push(
      `process exits: ${exits('injected')} injected, ${exits('consequence')} consequences of a kill, ${exits('stopped')} stopped with their pod, ${exits('clean')} clean, ${exits('crash')} crashes`,
    );
  }

  assert.equal(tally.crashes, 0, 'no agent or controller exited other than by our kill');
  assert.equal(tally.readyUnverified, 0, 'no pod Ready before its weights were verified');
  assert.equal(tally.readyPartialWeights, 0, 'every Ready pod holds the same weights, rank by rank');
  assert.equal(tally.transfersHungPastDeadline, 0, 'no transfer hung past its deadline');
  assert.equal(tally.portConflicts, 0, 'no two active transfers shared a port on a pod');
  assert.equal(tally.leakedPorts, 0, 'no port left listening');
  assert.equal(tally.leakedProcesses, 0, 'no process left running');
  assert.equal(tally.scaleOutsCompleted, tally.scaleOutsAttempted, 'every scale-out completed');
  assert.equal(
    tally.badInputsRejectedCleanly.bridge +
      tally.badInputsRejectedCleanly.http +
      tally.badInputsRejectedCleanly.peer,
    tally.badInputsTried.bridge + tally.badInputsTried.http + tally.badInputsTried.peer,
    'every fuzzed frame and request was rejected cleanly',
  );
});
