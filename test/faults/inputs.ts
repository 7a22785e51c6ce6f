// Bad input, generated: mutations of good resources (checked against the zod schemas the
// controller uses and against the API server's generated CRD schema, which must agree), and
// fuzzed frames for the agent's bridge socket, HTTP port and peer port.
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeFrame, FrameDecoder } from '../../src/agent/bridge/frames.ts';
import { MAX_FRAME_BYTES } from '../../src/agent/bridge/messages.ts';
import {
  decodeHeader,
  encodeControl,
  encodeHeader,
  FRAME_CHUNK,
  FRAME_CONTROL,
  HEADER_BYTES,
  helloMac,
  MAX_CONTROL_BYTES,
  newNonce,
} from '../../src/agent/peer/protocol.ts';
import { resourceSchemas, type SeedcastKind } from '../../src/api/v1alpha1/index.ts';
import { fieldPath } from '../../src/api/v1alpha1/validate.ts';
import {
  badResources,
  goodInferenceDeployment,
  goodWeightSource,
  goodWeightTransfer,
} from '../fixtures/bad-resources.ts';
import type { Rng } from './support.ts';

type Json = Record<string, unknown>;

export interface Variation {
  name: string;
  kind: SeedcastKind;
  resource: Json;
  /** The mutated field (or the fixture's expected path). */
  path: string;
}

function leaves(value: unknown, path: PropertyKey[], out: PropertyKey[][]): void {
  out.push(path);
  if (Array.isArray(value)) {
    if (value.length > 0) leaves(value[0], [...path, 0], out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) leaves(v, [...path, k], out);
  }
}

function setAt(root: Json, path: PropertyKey[], value: unknown | typeof DELETE): void {
  let node = root as Record<PropertyKey, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<PropertyKey, unknown>;
  const last = path.at(-1)!;
  if (value === DELETE) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = value;
}
const DELETE = Symbol('delete');

function mutations(value: unknown): Array<[string, unknown]> {
  if (typeof value === 'number')
    return [
      ['a string', 'seven'],
      ['negative', -1],
      ['fractional', 1.5],
      ['huge', 2 ** 40],
      ['a boolean', true],
      ['deleted', DELETE],
    ];
  if (typeof value === 'string')
    return [
      ['a number', 12345],
      ['empty', ''],
      ['4 KiB long', 'x'.repeat(4096)],
      ['an object', { a: 1 }],
      ['deleted', DELETE],
    ];
  if (Array.isArray(value))
    return [
      ['a string', 'not-a-list'],
      ['empty', []],
      ['deleted', DELETE],
    ];
  if (value !== null && typeof value === 'object')
    return [
      ['a string', 'not-an-object'],
      ['a number', 42],
      ['deleted', DELETE],
    ];
  return [];
}

/** The fixture corpus plus every mutation of every spec field of the good resources. */
export function resourceCorpus(): Variation[] {
  const out: Variation[] = badResources.map((b) => ({ ...b, name: `fixture: ${b.name}` }));
  const bases: Array<[SeedcastKind, Json]> = [
    ['WeightSource', goodWeightSource('fz')],
    ['InferenceDeployment', goodInferenceDeployment('fz')],
    ['WeightTransfer', goodWeightTransfer('fz')],
  ];
  for (const [kind, base] of bases) {
    const paths: PropertyKey[][] = [];
    leaves(base.spec, ['spec'], paths);
    for (const path of paths.slice(1)) {
      let current: unknown = base;
      for (const k of path) current = (current as Record<PropertyKey, unknown>)[k];
      for (const [what, value] of mutations(current)) {
        const resource = structuredClone(base);
        setAt(resource, path, value);
        out.push({ name: `${kind} ${fieldPath(path)} ${what}`, kind, resource, path: fieldPath(path) });
      }
    }
  }
  return out;
}

/** What zod (the controller's validation) says: the issue paths, or [] when it accepts. */
export function zodIssues(v: Variation): string[] {
  const result = resourceSchemas[v.kind].safeParse(v.resource);
  return result.success ? [] : result.error.issues.map((i) => fieldPath(i.path as PropertyKey[]));
}

// ---- bridge socket ----

export interface ProbeResult {
  name: string;
  /** The agent answered with an error frame, or closed this connection only. */
  clean: boolean;
  /** Not tried: the port was already closed (the transfer ended). */
  skipped?: boolean;
  detail: string;
}

/** Opens a bridge connection, writes `bytes`, and waits for an error frame or the close. */
export function bridgeProbe(
  socketPath: string,
  name: string,
  bytes: Buffer,
  waitMs = 3000,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const decoder = new FrameDecoder();
    let done = false;
    const finish = (clean: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ name, clean, detail });
    };
    // Nothing to answer yet (a truncated frame): the agent keeps the connection open and waits.
    const timer = setTimeout(() => finish(true, 'held open, no answer (incomplete frame)'), waitMs);
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.kind === 'json' && (f.value as Json).type === 'error')
          finish(true, `error ${(f.value as Json).code}: ${String((f.value as Json).message).slice(0, 80)}`);
        else finish(false, `unexpected answer ${JSON.stringify(f).slice(0, 120)}`);
      }
    });
    socket.on('close', () => finish(true, 'connection closed'));
    socket.on('error', (err) => finish(false, `socket error ${err.message}`));
    socket.on('connect', () => socket.write(bytes));
  });
}

const lengthPrefixed = (body: Buffer, length = body.length) => {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length >>> 0, 0);
  return Buffer.concat([header, body]);
};

export function bridgeFuzzCases(rng: Rng, count: number): Array<{ name: string; bytes: Buffer }> {
  const hello = {
    v: 1,
    type: 'hello',
    id: 1,
    rank: 0,
    ranks: 1,
    memory: 'host',
    fingerprintInputs: {
      engine: 'fixture',
      engineVersion: '0.1.0',
      model: 'm',
      revision: 'r',
      tensorParallel: 1,
      pipelineParallel: 1,
      rank: 0,
      dtype: 'bfloat16',
      quantization: 'none',
    },
    tensors: [{ name: 'w', dtype: 'bfloat16', shape: [4, 4], bytes: 31 }],
    fingerprint: '0'.repeat(64),
    state: 'loaded',
  };
  const fixed: Array<{ name: string; bytes: Buffer }> = [
    { name: 'zero length', bytes: lengthPrefixed(Buffer.alloc(0)) },
    { name: 'length past the 64 MiB limit', bytes: lengthPrefixed(Buffer.from('{}'), MAX_FRAME_BYTES + 1) },
    { name: 'length 2^32-1', bytes: lengthPrefixed(Buffer.from('{}'), 0xffffffff) },
    { name: 'truncated frame', bytes: lengthPrefixed(Buffer.from('{"v":1,"type":"ping"'), 100) },
    { name: 'truncated header', bytes: Buffer.from([0, 0]) },
    { name: 'not JSON', bytes: lengthPrefixed(Buffer.from('hello agent')) },
    { name: 'JSON array', bytes: encodeFrame([1, 2, 3]) },
    { name: 'JSON string', bytes: encodeFrame('hello') },
    {
      name: 'huge (64 MiB) JSON string',
      bytes: lengthPrefixed(Buffer.from(`"${'x'.repeat(MAX_FRAME_BYTES - 2)}"`)),
    },
    { name: 'unknown type', bytes: encodeFrame({ v: 1, type: 'format-disk', id: 1 }) },
    { name: 'wrong version', bytes: encodeFrame({ ...hello, v: 2 }) },
    { name: 'id a string', bytes: encodeFrame({ ...hello, id: 'one' }) },
    { name: 'rank negative', bytes: encodeFrame({ ...hello, rank: -1 }) },
    { name: 'rank ≥ ranks', bytes: encodeFrame({ ...hello, rank: 5 }) },
    { name: 'tensor bytes ≠ shape', bytes: encodeFrame(hello) },
    { name: 'tensors not a list', bytes: encodeFrame({ ...hello, tensors: 'all of them' }) },
    { name: 'memory kind unknown', bytes: encodeFrame({ ...hello, memory: 'disk' }) },
    { name: 'fill before hello', bytes: encodeFrame({ v: 1, type: 'fill', id: 7, bucket: 0, slot: 0 }) },
    {
      name: 'reply nobody asked for',
      bytes: encodeFrame({ v: 1, type: 'filled', id: 99, bucket: 0, bytes: 1 }),
    },
    { name: 'invalid UTF-8', bytes: lengthPrefixed(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])) },
  ];
  const random: Array<{ name: string; bytes: Buffer }> = [];
  for (let i = 0; i < count; i++) {
    const r = rng.int(3);
    if (r === 0) random.push({ name: `random bytes #${i}`, bytes: rng.bytes(rng.between(1, 4096)) });
    else if (r === 1) {
      // A valid length over random content.
      random.push({ name: `random body #${i}`, bytes: lengthPrefixed(rng.bytes(rng.between(1, 2048))) });
    } else {
      // A valid hello with one field replaced by a random type.
      const keys = Object.keys(hello);
      const key = rng.pick(keys);
      const value = rng.pick<unknown>([null, -7, 'x', [], {}, true, 1e308, 'y'.repeat(3000)]);
      random.push({
        name: `hello.${key} = ${JSON.stringify(value).slice(0, 12)} #${i}`,
        bytes: encodeFrame({ ...hello, [key]: value }),
      });
    }
  }
  return [...fixed, ...random];
}

// ---- HTTP port ----

/** Writes raw bytes to host:port; clean when the server answers 4xx/5xx or closes. */
export function rawHttpProbe(
  address: string,
  name: string,
  bytes: Buffer,
  waitMs = 5000,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const i = address.lastIndexOf(':');
    const socket = connect(Number(address.slice(i + 1)), address.slice(0, i));
    let text = '';
    let done = false;
    const finish = (clean: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ name, clean, detail });
    };
    const timer = setTimeout(
      () => finish(true, `held open (server waits for the rest); ${text.slice(0, 40)}`),
      waitMs,
    );
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      if (m) finish(Number(m[1]) >= 400, `HTTP ${m[1]}`);
    });
    socket.on('close', () => finish(true, text === '' ? 'connection closed' : text.slice(0, 40)));
    socket.on('error', () => finish(true, 'connection reset'));
    socket.on('connect', () => socket.write(bytes));
  });
}

export function httpFuzzCases(rng: Rng, count: number): Array<{ name: string; bytes: Buffer }> {
  const req = (line: string, headers = '', body = '') =>
    Buffer.from(
      `${line}\r\nHost: agent\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  const fixed = [
    { name: 'GET unknown path', bytes: req('GET /admin HTTP/1.1') },
    { name: 'path traversal', bytes: req('GET /../../etc/passwd HTTP/1.1') },
    { name: 'POST /healthz', bytes: req('POST /healthz HTTP/1.1', '', '{"shutdown":true}') },
    { name: 'DELETE /metrics', bytes: req('DELETE /metrics HTTP/1.1') },
    {
      name: 'PUT transfer',
      bytes: req('PUT /transfers/x HTTP/1.1', 'Authorization: Bearer forged\r\n', '{}'),
    },
    { name: 'bogus method', bytes: req('FROB /healthz HTTP/1.1') },
    { name: 'garbage request line', bytes: Buffer.from('\x00\x01\x02 not http at all\r\n\r\n') },
    { name: 'HTTP/9', bytes: req('GET /healthz HTTP/9.9') },
    { name: '64 KiB header', bytes: req('GET /healthz HTTP/1.1', `X-Big: ${'a'.repeat(65536)}\r\n`) },
    {
      name: 'bad Content-Length',
      bytes: Buffer.from('POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n'),
    },
    {
      name: 'conflicting lengths',
      bytes: Buffer.from(
        'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      ),
    },
  ];
  const random = Array.from({ length: count }, (_, i) => ({
    name: `random bytes #${i}`,
    bytes: Buffer.concat([rng.bytes(rng.between(1, 2048)), Buffer.from('\r\n\r\n')]),
  }));
  return [...fixed, ...random];
}

// ---- peer port ----

class PeerConn {
  readonly socket: Socket;
  readonly messages: Json[] = [];
  closed = false;
  #buffer = Buffer.alloc(0);
  constructor(address: string) {
    const i = address.lastIndexOf(':');
    this.socket = connect(Number(address.slice(i + 1)), address.slice(0, i));
    this.socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= HEADER_BYTES) {
        const header = decodeHeader(this.#buffer.subarray(0, HEADER_BYTES));
        if (typeof header === 'string' || this.#buffer.length < HEADER_BYTES + header.length) return;
        try {
          this.messages.push(
            JSON.parse(this.#buffer.subarray(HEADER_BYTES, HEADER_BYTES + header.length).toString()),
          );
        } catch {
          this.messages.push({ type: 'unparseable' });
        }
        this.#buffer = this.#buffer.subarray(HEADER_BYTES + header.length);
      }
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
    this.socket.on('error', () => {});
  }
  async next(timeoutMs = 5000): Promise<Json | undefined> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const m = this.messages.shift();
      if (m !== undefined) return m;
      if (this.closed) return undefined;
      await sleep(20);
    }
    return undefined;
  }
}

export interface PeerTarget {
  address: string;
  namespace: string;
  transfer: string;
  attempt: number;
  receiver: { pod: string; uid: string };
  fingerprint: string;
  token: Buffer;
}

/**
 * Talks to a seed's rendezvous port: after the challenge, sends `payload(nonce)` and expects a
 * refusal or the close — never an accept.
 */
async function peerProbe(
  address: string,
  name: string,
  payload: (seedNonce: string) => Buffer,
): Promise<ProbeResult> {
  const c = new PeerConn(address);
  try {
    const challenge = await c.next();
    if (challenge === undefined)
      return { name, clean: true, skipped: true, detail: 'closed before the challenge (transfer over)' };
    c.socket.write(payload(String(challenge.nonce)));
    const reply = await c.next(8000);
    if (reply === undefined)
      return { name, clean: true, detail: c.closed ? 'connection closed' : 'no answer' };
    if (reply.type === 'accept') return { name, clean: false, detail: 'ACCEPTED' };
    const until = Date.now() + 5000;
    while (!c.closed && Date.now() < until) {
      const m = c.messages.shift();
      if (m?.type === 'accept') return { name, clean: false, detail: 'ACCEPTED' };
      await sleep(20);
    }
    return {
      name,
      clean: reply.type === 'refuse' || reply.type === 'abort',
      detail: `${reply.type} ${String(reply.code ?? '')} ${String(reply.message ?? '').slice(0, 90)}`,
    };
  } finally {
    c.socket.destroy();
  }
}

export async function peerFuzz(target: PeerTarget, rng: Rng, count: number): Promise<ProbeResult[]> {
  const hello = (seedNonce: string, over: Partial<Json>, token = target.token) => {
    const fields = {
      namespace: target.namespace,
      transfer: target.transfer,
      attempt: target.attempt,
      pod: target.receiver.pod,
      uid: target.receiver.uid,
      rank: 0,
      fingerprint: target.fingerprint,
      stream: 0,
      streams: 1,
      nonce: newNonce(),
      ...over,
    };
    const mac = helloMac(token, fields as never, seedNonce);
    return encodeControl({ v: 1, type: 'hello', ...fields, mac } as never);
  };
  const cases: Array<[string, (n: string) => Buffer]> = [
    ['HTTP request on the peer port', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['unknown frame type', () => encodeHeader(9, 4)],
    ['control frame past 64 KiB', () => encodeHeader(FRAME_CONTROL, MAX_CONTROL_BYTES + 1)],
    [
      'chunk before the handshake',
      () => Buffer.concat([encodeHeader(FRAME_CHUNK, 4, 0, 0), Buffer.alloc(4)]),
    ],
    ['control frame not JSON', () => Buffer.concat([encodeHeader(FRAME_CONTROL, 5), Buffer.from('nope!')])],
    [
      'hello without a MAC (unauthenticated)',
      (n) => {
        const b = hello(n, {});
        const m = JSON.parse(b.subarray(HEADER_BYTES).toString()) as Json;
        delete m.mac;
        return encodeControl(m as never);
      },
    ],
    ['hello signed with a guessed token', (n) => hello(n, {}, Buffer.from('guessed-token-guessed-token'))],
    ['hello replaying a MAC over another nonce', () => hello(newNonce(), {})],
    ['peer not in the transfer (valid token)', (n) => hello(n, { pod: 'intruder-0', uid: 'uid-intruder' })],
    ['named peer, wrong uid (valid token)', (n) => hello(n, { uid: 'uid-recreated' })],
    ['other transfer name (valid token)', (n) => hello(n, { transfer: 'some-other-transfer' })],
    ['wrong rank fingerprint (valid token)', (n) => hello(n, { fingerprint: 'f'.repeat(64) })],
    ['rank past the layout (valid token)', (n) => hello(n, { rank: 99 })],
  ];
  for (let i = 0; i < count; i++) {
    cases.push([`random bytes #${i}`, () => rng.bytes(rng.between(HEADER_BYTES, 1024))]);
  }
  const out: ProbeResult[] = [];
  for (const [name, payload] of cases) out.push(await peerProbe(target.address, name, payload));
  return out;
}
