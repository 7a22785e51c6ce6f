// Malformed bridge frames and unwelcome peers, sent by hand to real agent processes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeFrame, FrameDecoder } from '../../src/agent/bridge/frames.ts';
import { MAX_FRAME_BYTES } from '../../src/agent/bridge/messages.ts';
import {
  decodeHeader,
  encodeControl,
  HEADER_BYTES,
  helloMac,
  newNonce,
  type PeerMessage,
} from '../../src/agent/peer/protocol.ts';
import { Harness, NAMESPACE, type Pod, waitFor } from './harness.ts';

class BridgeClient {
  readonly socket: Socket;
  readonly frames: Array<Record<string, unknown>> = [];
  closed = false;
  readonly #decoder = new FrameDecoder();

  constructor(path: string) {
    this.socket = connect(path);
    this.socket.on('data', (chunk: Buffer) => {
      for (const f of this.#decoder.push(chunk))
        if (f.kind === 'json') this.frames.push(f.value as Record<string, unknown>);
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
    this.socket.on('error', () => {});
  }

  raw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(message: unknown): void {
    this.socket.write(encodeFrame(message));
  }

  async next(): Promise<Record<string, unknown>> {
    const value = await waitFor(() => this.frames.shift(), 5000, 'a frame from the agent');
    return value;
  }
}

class PeerClient {
  readonly socket: Socket;
  readonly messages: PeerMessage[] = [];
  closed = false;
  #buffer = Buffer.alloc(0);

  constructor(address: string) {
    const [host, port] = address.split(':') as [string, string];
    this.socket = connect(Number(port), host);
    this.socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= HEADER_BYTES) {
        const header = decodeHeader(this.#buffer.subarray(0, HEADER_BYTES));
        if (typeof header === 'string' || this.#buffer.length < HEADER_BYTES + header.length) return;
        this.messages.push(
          JSON.parse(this.#buffer.subarray(HEADER_BYTES, HEADER_BYTES + header.length).toString('utf8')),
        );
        this.#buffer = this.#buffer.subarray(HEADER_BYTES + header.length);
      }
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
    this.socket.on('error', () => {});
  }

  next(): Promise<PeerMessage> {
    return waitFor(() => this.messages.shift(), 5000, 'a peer message');
  }
}

describe('the agent keeps serving through bad input', () => {
  const h = new Harness('protocol');
  let pod: Pod;

  before(async () => {
    pod = await h.pod({ name: 'bridge-pod', tp: 1, size: '1Mi', state: 'empty', engine: false });
    await waitFor(() => existsSync(pod.socket), 20_000, 'the bridge socket');
  });
  after(() => h.close());

  it('answers malformed frames and invalid messages with errors and keeps the connection', async () => {
    const c = new BridgeClient(pod.socket);
    c.raw(Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('{nope')]));
    let reply = await c.next();
    assert.equal(reply.type, 'error');
    assert.equal(reply.code, 'SEEDCAST_ERR_PROTOCOL');
    assert.match(String(reply.message), /not valid JSON/);

    c.send({ v: 1, type: 'warp', id: 7 });
    reply = await c.next();
    assert.equal(reply.type, 'error');
    assert.equal(reply.id, 7);

    c.send({ v: 1, type: 'hello', id: 8, rank: 'zero' });
    reply = await c.next();
    assert.equal(reply.id, 8);
    assert.match(String(reply.message), /rank/);

    c.send({ v: 1, type: 'fill', id: 9, bucket: 0, slot: 0 });
    reply = await c.next();
    assert.equal(reply.type, 'error');

    c.send({ v: 1, type: 'drained', id: 10, bucket: 0 });
    reply = await c.next();
    assert.equal(reply.type, 'error');
    assert.match(String(reply.message), /hello/);

    const tensors = [{ name: 'w', dtype: 'bfloat16', shape: [4, 4], bytes: 32 }];
    const inputs = {
      engine: 'fixture',
      engineVersion: '1',
      model: 'm',
      revision: 'main',
      tensorParallel: 1,
      pipelineParallel: 1,
      rank: 0,
      dtype: 'bfloat16',
      quantization: 'none',
    };
    c.send({
      v: 1,
      type: 'hello',
      id: 11,
      rank: 0,
      ranks: 1,
      memory: 'host',
      fingerprintInputs: inputs,
      tensors,
      fingerprint: createHash('sha256').update('x').digest('hex'),
      state: 'empty',
    });
    reply = await c.next();
    assert.equal(reply.code, 'SEEDCAST_ERR_FINGERPRINT_MISMATCH');
    assert.match(String(reply.message), /hash to [0-9a-f]{64}/);

    c.send({
      v: 1,
      type: 'hello',
      id: 12,
      rank: 0,
      ranks: 1,
      memory: 'host',
      fingerprintInputs: inputs,
      tensors: [{ ...tensors[0], bytes: 31 }],
      fingerprint: 'a'.repeat(64),
      state: 'empty',
    });
    reply = await c.next();
    assert.match(String(reply.message), /tensors\[0\]\.bytes/);

    c.send({ v: 1, type: 'ping', id: 13 });
    reply = await c.next();
    assert.deepEqual(reply, { v: 1, type: 'pong', id: 13 });
    assert.equal(c.closed, false);
  });

  it('closes only on framing errors, and serves the next connection', async () => {
    for (const length of [0, MAX_FRAME_BYTES + 1]) {
      const c = new BridgeClient(pod.socket);
      const header = Buffer.alloc(4);
      header.writeUInt32BE(length);
      c.raw(header);
      const reply = await c.next();
      assert.equal(reply.code, 'SEEDCAST_ERR_PROTOCOL');
      await waitFor(() => c.closed, 5000, 'the agent to close');
    }
    const c = new BridgeClient(pod.socket);
    c.send({ v: 1, type: 'ping', id: 1 });
    assert.equal((await c.next()).type, 'pong');
    const health = (await (await fetch(`http://127.0.0.1:${pod.httpPort}/healthz`)).json()) as {
      status: string;
    };
    assert.equal(health.status, 'ok');
    const metrics = await (await fetch(`http://127.0.0.1:${pod.httpPort}/metrics`)).text();
    assert.match(metrics, /seedcast_agent_bridge_bad_messages_total [1-9]/);
  });
});

describe('the seed accepts only named, token-holding, matching peers', () => {
  const h = new Harness('peers');
  let seed: Pod;
  let address: string;
  const ghost = { name: 'ghost', uid: 'uid-ghost' };

  before(async () => {
    seed = await h.pod({
      name: 'peer-seed',
      tp: 1,
      size: '1Mi',
      state: 'loaded',
      agentFlags: { 'step-timeout-ms': '20000' },
    });
    const fingerprint = await h.fingerprint(seed);
    await h.transfer({
      name: 'wt-peers',
      fingerprint,
      seed,
      receivers: [{ name: ghost.name } as Pod],
      receiverUids: { ghost: ghost.uid },
      ranks: 1,
    });
    address = await waitFor(
      () => h.status('wt-peers')?.rendezvous?.[0]?.address as string | undefined,
      20_000,
      'the seed to listen',
    );
  });
  after(() => h.close());

  const rankFingerprint = (): string => {
    const status = h.engineStatus(seed) as unknown as { ranks: Array<{ fingerprint: string }> };
    return status.ranks[0]?.fingerprint as string;
  };

  async function attempt(fields: {
    pod: string;
    uid: string;
    fingerprint: string;
    token: string;
  }): Promise<PeerMessage> {
    const c = new PeerClient(address);
    const challenge = await c.next();
    assert.equal(challenge.type, 'challenge');
    const hello = {
      namespace: NAMESPACE,
      transfer: 'wt-peers',
      attempt: 0,
      pod: fields.pod,
      uid: fields.uid,
      rank: 0,
      fingerprint: fields.fingerprint,
      stream: 0,
      streams: 1,
      nonce: newNonce(),
    };
    const mac = helloMac(Buffer.from(fields.token), hello, (challenge as { nonce: string }).nonce);
    c.socket.write(encodeControl({ v: 1, type: 'hello', ...hello, mac }));
    const reply = await c.next();
    await waitFor(() => c.closed || reply.type === 'accept', 5000, 'the seed to close a refused peer');
    c.socket.destroy();
    return reply;
  }

  it('refuses a peer not named in the transfer', async () => {
    const reply = await attempt({
      pod: 'intruder',
      uid: 'uid-x',
      fingerprint: rankFingerprint(),
      token: h.token,
    });
    assert.equal(reply.type, 'refuse');
    assert.match((reply as { message: string }).message, /intruder .* is not a receiver of wt-peers/);
  });

  it('refuses a named peer with the wrong uid or without the token', async () => {
    let reply = await attempt({
      pod: ghost.name,
      uid: 'uid-recreated',
      fingerprint: rankFingerprint(),
      token: h.token,
    });
    assert.equal((reply as { code: string }).code, 'SEEDCAST_ERR_UNAUTHORIZED');
    reply = await attempt({
      pod: ghost.name,
      uid: ghost.uid,
      fingerprint: rankFingerprint(),
      token: 'guessed-token-guessed-token',
    });
    assert.equal(reply.type, 'refuse');
    assert.match((reply as { message: string }).message, /not signed with the pod-to-pod token/);
  });

  it('refuses a rank fingerprint mismatch before any byte moves', async () => {
    const reply = await attempt({
      pod: ghost.name,
      uid: ghost.uid,
      fingerprint: 'f'.repeat(64),
      token: h.token,
    });
    assert.equal((reply as { code: string }).code, 'SEEDCAST_ERR_FINGERPRINT_MISMATCH');
    assert.equal((reply as { reason: string }).reason, 'FingerprintMismatch');
    assert.match((reply as { message: string }).message, new RegExp(rankFingerprint()));
  });

  it('survives garbage on the peer port and still accepts the named receiver', async () => {
    const c = new PeerClient(address);
    await c.next();
    c.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const reply = await c.next();
    assert.equal(reply.type, 'refuse');
    const ok = await attempt({
      pod: ghost.name,
      uid: ghost.uid,
      fingerprint: rankFingerprint(),
      token: h.token,
    });
    assert.equal(ok.type, 'accept');
    assert.equal((ok as { pod: string }).pod, 'peer-seed');
  });
});
