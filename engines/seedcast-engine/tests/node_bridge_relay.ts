// Conformance harness: the Node agent's own bridge server (src/agent/bridge) on two sockets, a
// seed and a receiver engine (the Python shim) registering with it, and every bucket relayed
// seed slot -> receiver slot with the agent's sum32x2 checked on the way. Prints JSON lines.
// Usage: node node_bridge_relay.ts <dir> <bucketBytes> [--expect-refusal]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BridgeServer } from '../../../src/agent/bridge/server.ts';
import { sum32x2 } from '../../../src/agent/checksum.ts';
import { HostStagingMemory } from '../../../src/agent/memory/host.ts';
import { silentLogger } from '../../../src/shared/log.ts';

const [dir = '/tmp/seedcast-conf', bucketArg = '4096'] = process.argv.slice(2);
const bucketBytes = Number(bucketArg);
const say = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
const invalid: string[] = [];

function server(name: string): BridgeServer {
  const staging = join(dir, `${name}-staging`);
  mkdirSync(staging, { recursive: true });
  return new BridgeServer({
    socketPath: join(dir, `${name}.sock`),
    bucketBytes,
    memory: new Map([['host', new HostStagingMemory(staging)]]),
    log: silentLogger(),
    onInvalidMessage: (reason) => invalid.push(reason),
  });
}

async function until<T>(what: string, f: () => T | undefined, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const seed = server('seed');
const recv = server('receiver');
await seed.listen();
await recv.listen();
say({ event: 'listening' });
try {
  const s = await until('seed registration', () => seed.engine());
  say({ event: 'seed-registered', fingerprint: s.podFingerprint });
  const r = await until('receiver registration', () => recv.engine());
  say({ event: 'receiver-registered', fingerprint: r.podFingerprint });
  if (s.podFingerprint !== r.podFingerprint) {
    say({ event: 'refused', seed: s.podFingerprint, receiver: r.podFingerprint });
    for (const rank of r.ranks) await rank.complete('failed', 'fingerprint mismatch: refused before any byte moved', 10000);
  } else {
    let bytes = 0;
    for (let i = 0; i < s.ranks.length; i++) {
      const sr = s.ranks[i]!;
      const rr = r.ranks[i]!;
      for (let k = 0; k < sr.buckets; k++) {
        const slot = k % 2;
        const n = await sr.fill(k, slot, 20000);
        const buf = new Uint8Array(n);
        sr.slot(slot).read(buf, 0, n);
        const want = sum32x2(buf);
        rr.slot(slot).write(buf, 0);
        const back = new Uint8Array(n);
        rr.slot(slot).read(back, 0, n);
        if (sum32x2(back) !== want) throw new Error(`bucket ${k}: checksum`);
        await rr.drain(k, slot, 20000);
        bytes += n;
      }
      await rr.complete('verified', undefined, 20000);
    }
    say({ event: 'relayed', bytes });
  }
  say({ event: 'done', invalid });
} finally {
  await recv.close();
  await seed.close();
}
