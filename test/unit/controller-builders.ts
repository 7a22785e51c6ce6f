// Test builders for the controller's planners: makePod('a').ready().on('n1').obj().
import {
  type WeightSourceSpec,
  type WeightTransferSpec,
  type WeightTransferStatus,
  weightSourceSpec,
} from '../../src/api/v1alpha1/index.ts';
import type {
  ObservedPod,
  ObservedTransfer,
  SourcePlanInput,
} from '../../src/controller/weightsource/plan.ts';

export const T0 = Date.parse('2026-01-01T00:00:00Z');
export const FP = 'fp-a';

export function sourceSpec(overrides: Record<string, unknown> = {}): WeightSourceSpec {
  const base = { model: 'm', engine: { name: 'fixture', version: '1' }, ...overrides };
  return weightSourceSpec.parse(base);
}

export function transferPolicy(overrides: Record<string, unknown>): Record<string, unknown> {
  return { transfer: { transports: ['tcp'], batchWindowSeconds: 0, ...overrides } };
}

class PodBuilder {
  readonly pod: ObservedPod;
  constructor(name: string) {
    this.pod = {
      name,
      uid: `uid-${name}`,
      createdAt: T0,
      deleting: false,
      podReady: false,
      fingerprint: FP,
      agentEndpoint: `10.0.0.1:9400`,
      announcedAt: T0,
      nodeName: 'n0',
      nodeLabels: {},
    };
  }
  /** A seed: verified weights and Ready. */
  seed(): this {
    this.pod.podReady = true;
    this.pod.weightsReady = { status: 'True', reason: 'WeightsVerified' };
    return this;
  }
  unannounced(): this {
    this.pod.fingerprint = undefined;
    return this;
  }
  fingerprint(fp: string): this {
    this.pod.fingerprint = fp;
    return this;
  }
  on(node: string, labels: Record<string, string> = {}): this {
    this.pod.nodeName = node;
    this.pod.nodeLabels = labels;
    return this;
  }
  created(ms: number): this {
    this.pod.createdAt = T0 + ms;
    this.pod.announcedAt = T0 + ms;
    return this;
  }
  announced(ms: number): this {
    this.pod.announcedAt = T0 + ms;
    return this;
  }
  deleting(): this {
    this.pod.deleting = true;
    return this;
  }
  /** Weights-ready True since T0 + ms (the condition's lastTransitionTime). */
  readySince(ms: number): this {
    this.pod.podReady = true;
    this.pod.weightsReady = { status: 'True', reason: 'WeightsVerified', since: T0 + ms };
    return this;
  }
  /** The agent's record that the engine lost its weights at T0 + ms (annotation `weights-lost`). */
  lost(ms: number): this {
    this.pod.weightsLostAt = T0 + ms;
    return this;
  }
  /** The agent's record on the pod (annotation `weights-verified`). */
  verifiedBy(source: 'Seed' | 'Storage', transfer: string): this {
    this.pod.verifiedBy = { source, transfer };
    return this;
  }
  obj(): ObservedPod {
    return { ...this.pod };
  }
}
export const makePod = (name: string) => new PodBuilder(name);

export function makeTransfer(
  name: string,
  spec: Partial<WeightTransferSpec> & Pick<WeightTransferSpec, 'source' | 'receivers'>,
  status?: WeightTransferStatus,
): ObservedTransfer {
  const seeded = spec.source.type === 'Seed';
  return {
    name,
    createdAt: T0,
    spec: {
      weightSource: 'src',
      fingerprint: FP,
      transport: seeded ? 'tcp' : undefined,
      ranks: 1,
      ports: seeded ? [{ rank: 0, port: 29500 }] : [],
      deadline: new Date(T0 + 600_000).toISOString(),
      attempt: 0,
      ...spec,
    },
    status,
  };
}

export const ref = (pod: ObservedPod) => ({ pod: pod.name, uid: pod.uid });

export function input(
  pods: ObservedPod[],
  transfers: ObservedTransfer[] = [],
  overrides: Partial<SourcePlanInput> & { spec?: WeightSourceSpec } = {},
): SourcePlanInput {
  const { spec, ...rest } = overrides;
  return {
    namespace: 'ns',
    sourceName: 'src',
    source: { state: 'ok', spec: spec ?? sourceSpec(transferPolicy({})) },
    pods,
    transfers,
    now: T0 + 10_000,
    minSeeds: 1,
    retentionMs: 300_000,
    ...rest,
  };
}
