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
import type { TransferSource } from '../../src/agent/cluster/types.ts';
import { loadConfig } from '../../src/agent/config.ts';
import { createLogger } from '../../src/shared/log.ts';

/** A transfer source that never delivers one (these tests are about the pod's annotations). */
const noTransfers: TransferSource = {
  run: (_events, signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve())),
};

function agentConfig(dir: string, socket: string) {
  return loadConfig(
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
}

function fixtureEngine(socket: string, state: 'loaded' | 'empty') {
  return spawn(
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
      state,
    ],
    { stdio: 'ignore' },
  );
}

test('a failed announcement is retried until the API server takes it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-ann-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'agent.sock');
  const config = agentConfig(dir, socket);
  let attempts = 0;
  let announced: Record<string, string | null> | undefined;
  const agent = await startAgent(config, {
    log: createLogger({ name: 'announce-test', level: 'silent' }),
    source: noTransfers,
    sink: {
      applyStatus: async () => {},
      announce: async (annotations) => {
        attempts++;
        if (attempts <= 2) throw new Error('connect ECONNREFUSED (API server restarting)');
        announced = annotations;
        return undefined;
      },
    },
  });
  const engine = fixtureEngine(socket, 'loaded');
  t.after(async () => {
    engine.kill('SIGKILL');
    await agent.close();
  });
  const until = Date.now() + 30_000;
  while (announced === undefined && Date.now() < until) await sleep(100);
  assert.equal(attempts, 3, 'two failures, then the retry that worked');
  assert.match(announced?.['seedcast.dev/fingerprint'] ?? '', /^[0-9a-f]{64}$/);
});

test('an engine that held weights and comes back empty: the record goes and the loss is dated, retried until it lands', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-lost-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'agent.sock');
  const writes: Array<Record<string, string | null>> = [];
  let failLoss = 1;
  const agent = await startAgent(agentConfig(dir, socket), {
    log: createLogger({ name: 'lost-test', level: 'silent' }),
    source: noTransfers,
    sink: {
      applyStatus: async () => {},
      announce: async (annotations) => {
        if ('seedcast.dev/weights-lost' in annotations && failLoss-- > 0) throw new Error('API server away');
        writes.push(annotations);
        return undefined;
      },
    },
  });
  const engines = [fixtureEngine(socket, 'loaded')];
  t.after(async () => {
    for (const e of engines) e.kill('SIGKILL');
    await agent.close();
  });
  const waitFor = async (what: string, ok: () => boolean) => {
    const until = Date.now() + 30_000;
    while (!ok() && Date.now() < until) await sleep(50);
    assert.ok(ok(), what);
  };
  await waitFor('announced', () => writes.some((w) => w['seedcast.dev/fingerprint'] !== undefined));
  const first = engines[0] as ReturnType<typeof fixtureEngine>;
  const exited = new Promise((resolve) => first.once('exit', resolve));
  first.kill('SIGKILL');
  await exited;
  const before = Date.now();
  engines.push(fixtureEngine(socket, 'empty')); // the container restarted: dummy weights again
  await waitFor('loss recorded', () => writes.some((w) => 'seedcast.dev/weights-lost' in w));
  const loss = writes.find((w) => 'seedcast.dev/weights-lost' in w) as Record<string, string | null>;
  assert.equal(
    loss['seedcast.dev/weights-verified'],
    null,
    'the verified record is removed in the same write',
  );
  const at = Date.parse(loss['seedcast.dev/weights-lost'] as string);
  assert.ok(at >= before - 1000 && at <= Date.now(), `dated now: ${loss['seedcast.dev/weights-lost']}`);
  assert.equal(failLoss, -1, 'the first write failed and was retried');
  // A second empty registration (the engine restarting again before any transfer) is no new loss.
  const second = engines[1] as ReturnType<typeof fixtureEngine>;
  const exited2 = new Promise((resolve) => second.once('exit', resolve));
  second.kill('SIGKILL');
  await exited2;
  const ranks = async () =>
    Number(
      /seedcast_agent_engine_ranks (\d+)/.exec(
        await (await fetch(`http://127.0.0.1:${agent.httpPort}/metrics`)).text(),
      )?.[1],
    );
  while ((await ranks()) !== 0) await sleep(50);
  engines.push(fixtureEngine(socket, 'empty'));
  const until = Date.now() + 30_000;
  while ((await ranks()) !== 1 && Date.now() < until) await sleep(50);
  assert.equal(await ranks(), 1, 'the engine registered again');
  assert.equal(writes.filter((w) => 'seedcast.dev/weights-lost' in w).length, 1);
  assert.equal(agent.metrics.weightsLost, 1);
});

test('agent and engine restarted together: the pod still records verified weights, the engine registers empty — a loss', async (t) => {
  for (const [engineState, lossExpected] of [
    ['empty', true],
    ['loaded', false], // the agent alone restarted beside a live engine: nothing lost
  ] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'sc-both-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, 'agent.sock');
    // The pod as the API server holds it: the record of the earlier verification is still there.
    const onPod: Record<string, string> = { 'seedcast.dev/weights-verified': 'seed/wt-0-abcdefg' };
    const writes: Array<Record<string, string | null>> = [];
    const agent = await startAgent(agentConfig(dir, socket), {
      log: createLogger({ name: 'both-test', level: 'silent' }),
      source: noTransfers,
      sink: {
        applyStatus: async () => {},
        announce: async (annotations) => {
          writes.push(annotations);
          for (const [k, v] of Object.entries(annotations))
            if (v === null) delete onPod[k];
            else onPod[k] = v;
          return { ...onPod };
        },
      },
    });
    const engine = fixtureEngine(socket, engineState);
    t.after(async () => {
      engine.kill('SIGKILL');
      await agent.close();
    });
    const until = Date.now() + 30_000;
    while (!writes.some((w) => w['seedcast.dev/fingerprint'] !== undefined) && Date.now() < until)
      await sleep(50);
    await sleep(lossExpected ? 0 : 500);
    const lossWrite = async () => {
      const end = Date.now() + (lossExpected ? 10_000 : 0);
      do {
        const found = writes.find((w) => 'seedcast.dev/weights-lost' in w);
        if (found !== undefined) return found;
        await sleep(50);
      } while (Date.now() < end);
      return undefined;
    };
    const loss = await lossWrite();
    assert.equal(loss !== undefined, lossExpected, `engine registered ${engineState}`);
    if (lossExpected) assert.equal(onPod['seedcast.dev/weights-verified'], undefined, 'the record is gone');
    else assert.equal(onPod['seedcast.dev/weights-verified'], 'seed/wt-0-abcdefg');
  }
});
