import assert from 'node:assert/strict';
import { it } from 'node:test';
import { bandwidthLimitOf } from '../../src/agent/runner.ts';

it("the transfer's bandwidthLimit (from the WeightSource) wins over the agent's own setting", () => {
  assert.deepEqual(bandwidthLimitOf('10Gi', 1000), { bandwidthLimit: 10 * 2 ** 30 });
  assert.deepEqual(bandwidthLimitOf(undefined, 1000), { bandwidthLimit: 1000 });
  assert.deepEqual(bandwidthLimitOf(undefined, undefined), {});
  assert.deepEqual(bandwidthLimitOf('500M', undefined), { bandwidthLimit: 500e6 });
});
