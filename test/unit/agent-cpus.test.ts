// Where a tcp receiver checksums (src/agent/cpus.ts): the CPUs an agent may use, from its
// affinity and its container's cgroup v2 CPU limit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/agent/config.ts';
import { checksumPlacement, cpuMaxLimit, usableCpus } from '../../src/agent/cpus.ts';

describe('usable CPUs and the receive checksum placement', () => {
  it('reads a cgroup v2 cpu.max limit, rounding a fraction of a CPU up', () => {
    assert.equal(cpuMaxLimit('max 100000\n'), undefined);
    assert.equal(cpuMaxLimit('200000 100000\n'), 2);
    assert.equal(cpuMaxLimit('150000 100000'), 2);
    assert.equal(cpuMaxLimit('50000 100000'), 1);
    assert.equal(cpuMaxLimit(''), undefined);
    assert.equal(cpuMaxLimit(undefined), undefined);
    assert.equal(cpuMaxLimit('garbage'), undefined);
    assert.equal(cpuMaxLimit('0 100000'), undefined);
  });

  it('takes the lesser of affinity and the container limit', () => {
    assert.equal(usableCpus(64, '200000 100000'), 2);
    assert.equal(usableCpus(2, '800000 100000'), 2);
    assert.equal(usableCpus(16, 'max 100000'), 16);
    assert.equal(usableCpus(16, undefined), 16);
  });

  it('auto sums on a pool thread only with four or more CPUs; inline and pool are kept as set', () => {
    assert.equal(checksumPlacement('auto', 2), 'inline');
    assert.equal(checksumPlacement('auto', 3), 'inline');
    assert.equal(checksumPlacement('auto', 4), 'pool');
    assert.equal(checksumPlacement('inline', 64), 'inline');
    assert.equal(checksumPlacement('pool', 1), 'pool');
  });

  it('the setting is validated with its variable named', () => {
    assert.equal(
      loadConfig({ 'pod-name': 'p', namespace: 'n', 'pod-uid': 'u', 'pod-ip': '1.2.3.4' }).tcpReceiveChecksum,
      'auto',
    );
    assert.throws(
      () =>
        loadConfig(
          { 'pod-name': 'p', namespace: 'n', 'pod-uid': 'u', 'pod-ip': '1.2.3.4' },
          { SEEDCAST_TCP_RECEIVE_CHECKSUM: 'gpu' },
        ),
      /SEEDCAST_TCP_RECEIVE_CHECKSUM \(--tcp-receive-checksum\)/,
    );
  });
});
