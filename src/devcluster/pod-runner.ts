// The pod runner: a stand-in for the kubelet's container runtime on the dev cluster. KWOK
// plays the kubelet's API role (binding, status, readiness); for every pod it runs, the pod
// runner starts the pod's containers as local processes — the seedcast agent and the CPU
// fixture engine — with the pod's environment resolved (downward API, Secrets), its emptyDir
// volumes as local directories (on /dev/shm for `medium: Memory`, a tmpfs as the kubelet makes
// it) and its loopback pod IP, and stops them when the pod goes away.
// Nothing else is simulated: the processes talk to the real API server and to each other.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, statfsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../shared/errors.ts';
import { type KubeClient, type KubeObject, Resources } from '../shared/kube.ts';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  restartPolicy?: string;
}

export interface RunnablePod extends KubeObject {
  spec: {
    nodeName?: string;
    serviceAccountName?: string;
    containers: Container[];
    initContainers?: Container[];
    volumes?: Array<{ name: string; emptyDir?: { medium?: string }; secret?: { secretName: string } }>;
  };
  status?: { phase?: string; podIP?: string };
}

/**
 * How a container image is run locally: a local program with its own arguments (`localArgs`,
 * used as they are) and the container's arguments (`args`, whose paths under volume mounts are
 * mapped to the pod's local volume directories).
 */
export type ImageMapper = (
  container: Container,
) => { command: string; localArgs?: string[]; args: string[] } | undefined;

export interface PodRunnerOptions {
  kube: KubeClient;
  /** Directory holding one folder per pod (volumes, logs); keep it short (socket paths). */
  workDir: string;
  /** Kubeconfig file handed to processes that talk to the API server (`SEEDCAST_KUBECONFIG`). */
  kubeconfig: (pod: RunnablePod) => Promise<string>;
  images: ImageMapper;
  namespace?: string;
  labelSelector?: string;
  log: Logger;
  /** Extra environment for every process (e.g. SEEDCAST_LOG_LEVEL). */
  env?: Record<string, string>;
}

interface RunningPod {
  uid: string;
  dir: string;
  /** Where its memory-backed emptyDirs live (on /dev/shm), removed with the pod. */
  memoryDir?: string;
  processes: Array<{ container: string; child: ChildProcess }>;
}

/** The containers the kubelet would keep running: native sidecars and regular containers. */
export function longRunningContainers(pod: RunnablePod): Container[] {
  const sidecars = (pod.spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
  return [...sidecars, ...pod.spec.containers];
}

/** Replaces a container path under a volume mount with the pod's local directory for that volume. */
export function localPath(
  value: string,
  mounts: Container['volumeMounts'],
  volumeDir: (name: string) => string,
): string {
  // The deepest mount wins, as in a container (a volume mounted inside another volume's path).
  const deepestFirst = [...(mounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
  for (const mount of deepestFirst) {
    const base = mount.mountPath.replace(/\/$/, '');
    if (value === base || value.startsWith(`${base}/`))
      return volumeDir(mount.name) + value.slice(base.length);
    // `--socket=/run/seedcast/agent.sock` style arguments
    const eq = value.indexOf('=');
    if (eq > 0) {
      const rest = value.slice(eq + 1);
      if (rest === base || rest.startsWith(`${base}/`)) {
        return `${value.slice(0, eq + 1)}${volumeDir(mount.name)}${rest.slice(base.length)}`;
      }
    }
  }
  return value;
}

export function fieldValue(pod: RunnablePod, fieldPath: string): string {
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace ?? 'default';
    case 'metadata.uid':
      return pod.metadata.uid ?? '';
    case 'status.podIP':
      return pod.status?.podIP ?? '';
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? 'default';
  }
  const label = fieldPath.match(/^metadata\.(labels|annotations)\['(.+)'\]$/);
  if (label) return pod.metadata[label[1] as 'labels' | 'annotations']?.[label[2]!] ?? '';
  return '';
}

export class PodRunner {
  readonly #options: PodRunnerOptions;
  readonly #running = new Map<string, RunningPod>();
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(options: PodRunnerOptions) {
    this.#options = options;
  }

  /** The local directory of a running pod (its volumes under `v/<name>`, logs as `<container>.log`). */
  podDir(namespace: string, name: string): string | undefined {
    return this.#running.get(`${namespace}/${name}`)?.dir;
  }

  /** The processes started for a running pod's containers (fault injection, leak checks). */
  processes(namespace: string, name: string): Array<{ container: string; child: ChildProcess }> {
    return [...(this.#running.get(`${namespace}/${name}`)?.processes ?? [])];
  }

  /** Pods currently running, by `namespace/name`. */
  get running(): string[] {
    return [...this.#running.keys()];
  }

  start(): void {
    this.#loop = this.#watchLoop();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop?.catch(() => undefined);
    await Promise.all([...this.#running.keys()].map((key) => this.#stopPod(key)));
  }

  async #watchLoop(): Promise<void> {
    const { kube, namespace, labelSelector, log } = this.#options;
    const ref = { ...Resources.pods, namespace };
    while (!this.#abort.signal.aborted) {
      try {
        const list = await kube.list<RunnablePod>(ref, { labelSelector });
        const seen = new Set<string>();
        for (const pod of list.items) {
          seen.add(key(pod));
          await this.#sync(pod);
        }
        for (const running of [...this.#running.keys()]) if (!seen.has(running)) await this.#stopPod(running);
        let resourceVersion = list.metadata.resourceVersion;
        // Watch until the server ends the stream; then relist (handles 410 Gone too).
        await kube.watch<RunnablePod>(
          ref,
          { resourceVersion, labelSelector, timeoutSeconds: 300 },
          (event) => {
            if (event.type === 'BOOKMARK') {
              resourceVersion = event.object.metadata.resourceVersion;
              return;
            }
            if (event.type === 'ERROR') return;
            const pod = event.object;
            const done = event.type === 'DELETED' ? this.#stopPod(key(pod)) : this.#sync(pod);
            done.catch((err) =>
              log.error({ pod: key(pod), err: errorMessage(err) }, 'pod runner sync failed'),
            );
          },
          this.#abort.signal,
        );
      } catch (err) {
        if (this.#abort.signal.aborted) return;
        log.warn({ err: errorMessage(err) }, 'pod runner watch failed; relisting');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async #sync(pod: RunnablePod): Promise<void> {
    const id = key(pod);
    const current = this.#running.get(id);
    const gone =
      pod.metadata.deletionTimestamp !== undefined ||
      ['Succeeded', 'Failed'].includes(pod.status?.phase ?? '');
    if (current !== undefined && (gone || current.uid !== pod.metadata.uid)) await this.#stopPod(id);
    if (gone || this.#running.has(id)) return;
    if (pod.status?.phase !== 'Running' || !pod.status.podIP || !pod.spec.nodeName) return;
    await this.#startPod(pod);
  }

  async #startPod(pod: RunnablePod): Promise<void> {
    const { workDir, images, log, kube } = this.#options;
    const id = key(pod);
    // Short paths: a Unix socket path (the bridge socket lives in a volume) must fit in 108 bytes.
    const dir = join(workDir, (pod.metadata.uid ?? pod.metadata.name).slice(0, 8));
    const running: RunningPod = { uid: pod.metadata.uid ?? '', dir, processes: [] };
    this.#running.set(id, running);
    // An emptyDir with `medium: Memory` is a tmpfs, as the kubelet makes it: on /dev/shm here.
    const memoryBacked = new Set(
      (pod.spec.volumes ?? []).filter((v) => v.emptyDir?.medium === 'Memory').map((v) => v.name),
    );
    const tmpfs = memoryBacked.size > 0 ? memoryVolumeRoot() : undefined;
    if (tmpfs !== undefined) running.memoryDir = await mkdtemp(join(tmpfs, 'seedcast-pod-'));
    const volumeDir = (name: string) =>
      memoryBacked.has(name) && running.memoryDir !== undefined
        ? join(running.memoryDir, name)
        : join(dir, 'v', name);
    for (const volume of pod.spec.volumes ?? []) {
      await mkdir(volumeDir(volume.name), { recursive: true });
      if (volume.secret !== undefined) {
        const secret = await kube.find<{ data?: Record<string, string> }>({
          ...Resources.secrets,
          namespace: pod.metadata.namespace,
          name: volume.secret.secretName,
        });
        for (const [file, data] of Object.entries(secret?.data ?? {})) {
          await writeFile(join(volumeDir(volume.name), file), Buffer.from(data, 'base64'), { mode: 0o600 });
        }
      }
    }
    const kubeconfig = await this.#options.kubeconfig(pod);
    for (const container of longRunningContainers(pod)) {
      const commandLine = images(container);
      if (commandLine === undefined) {
        log.debug(
          { pod: id, container: container.name, image: container.image },
          'no local command for image',
        );
        continue;
      }
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        SEEDCAST_KUBECONFIG: kubeconfig,
        // Pods share the host's network here: listening on the pod IP stands in for the pod's
        // own network namespace.
        SEEDCAST_AGENT_HOST: pod.status?.podIP ?? '',
        SEEDCAST_BIND_ADDRESS: pod.status?.podIP ?? '',
        ...this.#options.env,
      };
      for (const variable of container.env ?? []) {
        const value = await this.#resolveEnv(pod, variable);
        if (value !== undefined) env[variable.name] = localPath(value, container.volumeMounts, volumeDir);
      }
      const args = [
        ...(commandLine.localArgs ?? []),
        ...commandLine.args.map((arg) => localPath(arg, container.volumeMounts, volumeDir)),
      ];
      // Stopped while this start awaited (a DELETED event, a relist, stop()): #stopPod already
      // terminated its processes and forgot it; a container spawned now would be orphaned — seen
      // in CI as an agent outliving the fault suite, whose process then never exited. Its tmpfs
      // directory may have been made after #stopPod removed it: it goes too (it is not under the
      // work directory, which the runner's owner removes).
      if (this.#running.get(id) !== running) {
        if (running.memoryDir !== undefined) await rm(running.memoryDir, { recursive: true, force: true });
        return;
      }
      const logFile = createWriteStream(join(dir, `${container.name}.log`), { flags: 'a' });
      const child = spawn(commandLine.command, args, {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      child.stdout?.pipe(logFile);
      child.stderr?.pipe(logFile);
      child.on('exit', (code, signal) => {
        if (this.#running.get(id)?.processes.some((p) => p.child === child)) {
          log.warn({ pod: id, container: container.name, code, signal }, 'container process exited');
        }
      });
      running.processes.push({ container: container.name, child });
      log.info(
        { pod: id, container: container.name, ip: pod.status?.podIP, pid: child.pid },
        'started container',
      );
    }
  }

  async #resolveEnv(pod: RunnablePod, variable: EnvVar): Promise<string | undefined> {
    if (variable.value !== undefined) return variable.value;
    const from = variable.valueFrom;
    if (from?.fieldRef !== undefined) return fieldValue(pod, from.fieldRef.fieldPath);
    if (from?.secretKeyRef !== undefined) {
      const secret = await this.#options.kube.find<{ data?: Record<string, string> }>({
        ...Resources.secrets,
        namespace: pod.metadata.namespace,
        name: from.secretKeyRef.name,
      });
      const data = secret?.data?.[from.secretKeyRef.key];
      return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
    }
    return undefined;
  }

  async #stopPod(id: string): Promise<void> {
    const running = this.#running.get(id);
    if (running === undefined) return;
    this.#running.delete(id);
    await Promise.all(running.processes.map(({ child }) => terminate(child)));
    // SEEDCAST_KEEP_POD_DIRS=1: a stopped pod's directory (its containers' logs) stays, for a
    // post-mortem of a fault or bench run.
    if (running.memoryDir !== undefined) await rm(running.memoryDir, { recursive: true, force: true });
    if (process.env.SEEDCAST_KEEP_POD_DIRS !== '1') await rm(running.dir, { recursive: true, force: true });
    this.#options.log.info({ pod: id }, 'stopped pod');
  }
}

/**
 * Where memory-backed emptyDirs go: /dev/shm when it is there with room (a container's default
 * 64 MiB /dev/shm would not hold staging slots; the pod's work directory serves then).
 */
export function memoryVolumeRoot(): string | undefined {
  try {
    const stats = statfsSync('/dev/shm');
    return stats.bavail * stats.bsize >= MIN_TMPFS_BYTES ? '/dev/shm' : undefined;
  } catch {
    return undefined; // no /dev/shm
  }
}
const MIN_TMPFS_BYTES = 2 * 2 ** 30;

const key = (pod: KubeObject) => `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;

/** SIGTERM the process group, SIGKILL after a grace period, like the kubelet. */
export function terminate(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
    return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}
