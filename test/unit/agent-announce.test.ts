// The agent announces its pod's fingerprint once every engine rank registered. When that write
// fails (the API server restarting), it must retry: otherwise the controller never sees the pod
// and it never gets weights (found by the fault-injection suite, test/faults).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent } from '../../src/agent/agent.ts';
import { loadConfig } from '../../src/agent/config.ts';
import { createLogger } from '../../src/shared/log.ts';

test('a failed announcement is retried until the API server takes it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-ann-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'agent.sock');
  const config = loadConfig(
    {
      'pod-name': 'p',
      namespace: 'default',
      'pod-uid': 'uid-p',
      'pod-ip': '127.0.0.1',
      socket,
      port: '0',
      'http-host': '127.0.0.1',
      'staging-dir': join(dir, 'staging'),
      'bucket-bytes': '1Mi',
    },
    {},
  );
  let attempts = 0;
  let announced: Record<string, string> | undefined;
  const agent = await startAgent(config, {
    log: createLogger({ name: 'announce-test', level: 'silent' }),
    source: {
      run: (_events, signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve())),
    },
    sink: {
      applyStatus: async () => {},
      announce: async (annotations) => {
        attempts++;
        if (attempts <= 2) throw new Error('connect ECONNREFUSED (API server restarting)');
        announced = annotations;
      },
    },
  });
  const engine = spawn(
    process.execPath,
    [
      join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts'),
      'fixture-engine',
      '--socket',
      socket,
      '--tp',
      '1',
      '--size',
      '1Mi',
      '--state',
      'loaded',
    ],
    { stdio: 'ignore' },
  );
  t.after(async () => {
    engine.kill('SIGKILL');
    await agent.close();
  });
  const until = Date.now() + 30_000;
  while (announced === undefined && Date.now() < until) await sleep(100);
  assert.equal(attempts, 3, 'two failures, then the retry that worked');
  assert.match(announced?.['seedcast.dev/fingerprint'] ?? '', /^[0-9a-f]{64}$/);
});
