// The agent process: engine bridge, transports, transfer runner, status reporting, HTTP
// (/metrics, /healthz), and the announcement on its own pod once every rank registered.
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { Annotations } from '../api/v1alpha1/names.ts';
import { errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';
import { BridgeServer } from './bridge/server.ts';
import type { StatusSink, TransferSource } from './cluster/types.ts';
import type { AgentConfig } from './config.ts';
import { checksumPlacement, usableCpus } from './cpus.ts';
import { CudaStagedTransport } from './memory/cuda-tcp.ts';
import { HostStagingMemory } from './memory/host.ts';
import { openHostMapper } from './memory/host-mapping.ts';
import type { MemoryKind, StagingMemory } from './memory/types.ts';
import { AgentMetrics } from './metrics.ts';
import { TransferRunner } from './runner.ts';
import { ChunkPool } from './transports/pool.ts';
import { TcpTransport } from './transports/tcp.ts';
import type { Transport } from './transports/types.ts';

export interface AgentDeps {
  source: TransferSource;
  sink: StatusSink;
  log: Logger;
  /** Extra memory kinds and transports (the native addon's `cuda` and `nccl`). */
  memory?: StagingMemory[];
  transports?: Transport[];
}

export interface RunningAgent {
  metrics: AgentMetrics;
  httpPort: number;
  close(): Promise<void>;
}

export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<RunningAgent> {
  const { log } = deps;
  mkdirSync(config.stagingDir, { recursive: true });
  const metrics = new AgentMetrics();
  const mapper = await openHostMapper(config, log);
  const memory = new Map<MemoryKind, StagingMemory>([
    ['host', new HostStagingMemory(config.stagingDir, mapper)],
  ]);
  for (const extra of deps.memory ?? []) memory.set(extra.kind, extra);
  const pool = new ChunkPool(config.chunkBytes, config.poolChunks);
  const cpus = usableCpus();
  const receiveChecksum = checksumPlacement(config.tcpReceiveChecksum, cpus);
  if (mapper !== undefined)
    log.info({ cpus, receiveChecksum, setting: config.tcpReceiveChecksum }, 'tcp receive checksums');
  const tcp = new TcpTransport({
    streams: config.streams,
    chunkBytes: config.chunkBytes,
    window: config.window,
    pool,
    ...(mapper === undefined ? {} : { sum: mapper.sum }),
    ...(mapper?.sumAsync === undefined ? {} : { sumAsync: mapper.sumAsync }),
    receiveChecksum,
    onRefused: (r) => metrics.peerRefused(r),
  });
  // With cuda slots, tcp stages through pinned host mirrors (host slots pass through unchanged).
  const transports = new Map<string, Transport>([
    ['tcp', memory.has('cuda') ? new CudaStagedTransport(tcp) : tcp],
  ]);
  for (const extra of deps.transports ?? []) transports.set(extra.name, extra);

  let announced = '';
  let announceRetryMs = 1000;
  let runner: TransferRunner | undefined;
  // Announces the pod's fingerprint once every rank registered. A failed write is retried (the API
  // server may be away for a while): without the announcement the pod would never be served.
  const announce = (): void => {
    const engine = bridge.engine();
    if (engine === undefined || engine.podFingerprint === announced) return;
    announced = engine.podFingerprint;
    const annotations = {
      [Annotations.fingerprint]: engine.podFingerprint,
      [Annotations.agentEndpoint]: `${config.podIp}:${httpPort}`,
    };
    deps.sink.announce(annotations).then(
      (onPod) => {
        announceRetryMs = 1000;
        log.info({ fingerprint: engine.podFingerprint, ranks: engine.ranks.length }, 'announced on the pod');
        // The pod says its weights were verified, but a rank registered empty: agent and engine
        // restarted together (the bridge of this new process never saw the weights to miss them).
        if (
          onPod?.[Annotations.weightsVerified] !== undefined &&
          engine.ranks.some((rank) => rank.state === 'empty')
        ) {
          log.warn(
            { record: onPod[Annotations.weightsVerified] },
            'the pod records verified weights the engine does not hold',
          );
          recordLoss(new Date().toISOString());
        }
      },
      (err) => {
        log.error({ err: errorMessage(err), retryInMs: announceRetryMs }, 'announcing on the pod failed');
        announced = '';
        setTimeout(announce, announceRetryMs).unref();
        announceRetryMs = Math.min(announceRetryMs * 2, 30_000);
      },
    );
  };
  // An engine rank that held verified weights came back empty: the pod's record of them goes, and
  // the loss is dated, in one write (the controller then drops weights-ready and plans a transfer).
  // Retried like the announcement: until it lands the pod would stay Ready without weights.
  let lossRetryMs = 1000;
  const recordLoss = (at: string): void => {
    deps.sink.announce({ [Annotations.weightsVerified]: null, [Annotations.weightsLost]: at }).then(
      () => {
        lossRetryMs = 1000;
        metrics.weightsLost++;
        log.warn({ at }, 'recorded on the pod: the engine lost its weights');
      },
      (err) => {
        log.error({ err: errorMessage(err), retryInMs: lossRetryMs }, 'recording the weights loss failed');
        setTimeout(() => recordLoss(at), lossRetryMs).unref();
        lossRetryMs = Math.min(lossRetryMs * 2, 30_000);
      },
    );
  };
  const bridge: BridgeServer = new BridgeServer({
    socketPath: config.socketPath,
    bucketBytes: config.bucketBytes,
    memory,
    log: log.child({ component: 'bridge' }),
    onInvalidMessage: () => {
      metrics.badBridgeMessages++;
    },
    onChange: () => {
      runner?.engineChanged();
      announce();
    },
    onWeightsLost: () => recordLoss(new Date().toISOString()),
  });
  runner = new TransferRunner({
    config,
    engine: () => bridge.engine(),
    transports,
    sink: deps.sink,
    metrics,
    log,
  });
  await bridge.listen();

  const http: Server = createServer((req, res) => {
    // Read-only endpoints: anything but GET/HEAD is refused (found by the fault suite's HTTP fuzzing).
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(
        metrics.render({
          engineRanks: bridge.registeredRanks,
          activeTransfers: runner?.activeCount ?? 0,
          residentBytes: process.memoryUsage.rss(),
        }),
      );
      return;
    }
    if (req.url === '/healthz') {
      const engine = bridge.engine();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status: 'ok',
          engineRanks: bridge.registeredRanks,
          engineReady: engine !== undefined,
          fingerprint: engine?.podFingerprint ?? null,
          activeTransfers: runner?.activeCount ?? 0,
        }),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.httpPort, config.httpHost, () => resolve());
  });
  const address = http.address();
  const httpPort = typeof address === 'object' && address !== null ? address.port : config.httpPort;

  const stop = new AbortController();
  const watching = deps.source
    .run({ upsert: (t) => runner?.upsert(t), deleted: (n) => runner?.deleted(n) }, stop.signal)
    .catch((err) => {
      log.error({ err: errorMessage(err) }, 'transfer source stopped');
    });
  log.info(
    { socket: config.socketPath, httpPort, pod: config.podName, namespace: config.namespace },
    'agent started',
  );

  return {
    metrics,
    httpPort,
    async close() {
      stop.abort();
      runner?.abortAll('agent shutting down');
      await watching;
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await bridge.close();
    },
  };
}
