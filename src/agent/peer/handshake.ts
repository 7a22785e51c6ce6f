// The peer handshake both transports run on every rendezvous connection (docs/agent.md, "Peer
// protocol"): the seed challenges, checks the receiver's signed hello and answers accept or
// refuse; the receiver signs its hello and checks the seed's accept. What differs per transport
// (how control frames are read, how an admitted connection is kept, what a lost receiver stops)
// comes in as hooks, so messages, codes, reasons and log lines live only here.
import { createServer, type Server, type Socket } from 'node:net';
import { Reasons } from '../../api/v1alpha1/conditions.ts';
import { truncate } from '../../shared/errors.ts';
import { TransferError } from '../errors.ts';
import type { ReceiverOutcome, ReceiverRankContext, SeedRankContext } from '../transports/types.ts';
import {
  type Accept,
  acceptMac,
  encodeControl,
  helloMac,
  macEquals,
  newNonce,
  PEER_PROTOCOL_VERSION,
  type PeerHello,
  type PeerMessage,
} from './protocol.ts';

const V = PEER_PROTOCOL_VERSION;

/** Why a hello is refused: the `refuse` frame's code, condition reason and message. */
export interface Refusal {
  code: string;
  reason: string;
  message: string;
}

/** A receiver named in the transfer, as the seed keeps it for one rank. */
export interface HandshakePeer {
  readonly pod: string;
  readonly uid: string;
  readonly alive: boolean;
  finish(outcome: ReceiverOutcome): void;
}

/** Starts reading control frames from `socket` (each transport has its own reader and messages). */
export type ReadControl<M> = (
  socket: Socket,
  onMessage: (message: M) => void,
  onError: (reason: string) => void,
) => void;

export interface SeedHandshakeOptions<P extends HandshakePeer, M extends { type: string }> {
  ctx: SeedRankContext;
  /** The receivers named in the transfer, by pod. */
  peers: ReadonlyMap<string, P>;
  /** Whether the broadcast started (no receiver joins after that). */
  started: () => boolean;
  read: ReadControl<M>;
  /** `chunkBytes` of the accept. */
  chunkBytes: number;
  /** The ReceiverLost message when an admitted connection closes before the receiver reported. */
  lostMessage: string;
  /** The transport's last check: is the connection slot this hello asks for free? */
  slotRefusal: (peer: P, hello: PeerHello) => Refusal | undefined;
  /** Keeps the admitted connection (before the accept is written). */
  admit: (peer: P, hello: PeerHello, socket: Socket) => void;
  /** After the accept was written: log it, check the rendezvous. */
  admitted: (peer: P, hello: PeerHello) => void;
  /** Messages of an admitted peer beyond result/abort/ping; true when handled. */
  handle?: (peer: P, message: M) => boolean;
  /** An admitted peer failed (lost, aborted, protocol error); `why` names it. */
  dropped: (peer: P, why: string) => void;
  /** A peer was refused at the handshake (for metrics). */
  onRefused?: ((reason: string) => void) | undefined;
}

const isHello = (message: { type: string }): message is PeerHello => message.type === 'hello';

/** Listens on the rank's rendezvous port, running `onConnection` for every receiver connection. */
export async function listenForReceivers(
  ctx: SeedRankContext,
  onConnection: (socket: Socket) => void,
  logMessage: string,
): Promise<Server> {
  const server: Server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(ctx.port, ctx.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  ctx.log.info({ address: `${ctx.host}:${ctx.port}` }, logMessage);
  return server;
}

/** The seed's side of one connection: challenge, hello checks, accept or refuse, then the peer's messages. */
export function acceptReceiver<P extends HandshakePeer, M extends { type: string }>(
  socket: Socket,
  options: SeedHandshakeOptions<P, M>,
): void {
  const { ctx, peers } = options;
  const log = ctx.log;
  socket.setNoDelay(true);
  const seedNonce = newNonce();
  let peer: P | undefined;
  const refuse = (code: string, reason: string, message: string): void => {
    log.warn({ peer: socket.remoteAddress, code, reason, message }, 'refused a peer');
    options.onRefused?.(reason);
    socket.end(encodeControl({ v: V, type: 'refuse', code, reason, message: truncate(message) }));
    socket.destroySoon();
  };
  const handshakeTimer = setTimeout(
    () => refuse('SEEDCAST_ERR_TIMEOUT', Reasons.Failed, 'no hello in time'),
    ctx.stepTimeoutMs,
  );
  socket.on('error', () => {});
  socket.on('close', () => {
    clearTimeout(handshakeTimer);
    if (peer?.alive) {
      peer.finish({
        pod: peer.pod,
        outcome: 'failed',
        reason: Reasons.ReceiverLost,
        message: options.lostMessage,
      });
      log.warn({ peer: peer.pod }, 'receiver lost');
      options.dropped(peer, `receiver ${peer.pod} lost`);
    }
  });
  socket.write(encodeControl({ v: V, type: 'challenge', nonce: seedNonce }));
  options.read(
    socket,
    (message) => {
      if (peer === undefined) {
        clearTimeout(handshakeTimer);
        if (!isHello(message))
          return refuse('SEEDCAST_ERR_PROTOCOL', Reasons.Failed, `expected hello, got ${message.type}`);
        const candidate = peers.get(message.pod);
        const refusal =
          checkHello(ctx, message, seedNonce, candidate, options.started()) ??
          options.slotRefusal(candidate as P, message);
        if (refusal !== undefined) return refuse(refusal.code, refusal.reason, refusal.message);
        peer = candidate as P;
        options.admit(peer, message, socket);
        const fields = signedIdentity(ctx.transfer, ctx.self, ctx.rank, ctx.engine.fingerprint);
        socket.write(
          encodeControl({
            v: V,
            type: 'accept',
            pod: ctx.self.pod,
            uid: ctx.self.uid,
            rank: ctx.rank,
            fingerprint: ctx.engine.fingerprint,
            totalBytes: ctx.engine.totalBytes,
            bucketBytes: ctx.engine.bucketBytes,
            buckets: ctx.engine.buckets,
            chunkBytes: options.chunkBytes,
            mac: acceptMac(ctx.token, fields, message.nonce, seedNonce),
          }),
        );
        options.admitted(peer, message);
        return;
      }
      if (options.handle?.(peer, message)) return;
      const known = message as M & PeerMessage;
      switch (known.type) {
        case 'result':
          peer.finish({
            pod: peer.pod,
            outcome: known.outcome,
            ...(known.message === undefined ? {} : { message: known.message }),
            ...(known.outcome === 'failed' ? { reason: Reasons.Failed } : {}),
          });
          return;
        case 'abort':
          log.warn({ peer: peer.pod, reason: known.reason, message: known.message }, 'receiver aborted');
          peer.finish({
            pod: peer.pod,
            outcome: 'failed',
            reason: known.reason,
            message: known.message,
          });
          options.dropped(peer, `receiver ${peer.pod} aborted`);
          return;
        case 'ping':
          return;
        default:
          log.warn({ peer: peer.pod, type: message.type }, 'unexpected peer message');
      }
    },
    (reason) => {
      log.warn({ peer: peer?.pod ?? socket.remoteAddress, reason }, 'bad peer frame');
      if (peer === undefined) refuse('SEEDCAST_ERR_PROTOCOL', Reasons.Failed, reason);
      else {
        peer.finish({
          pod: peer.pod,
          outcome: 'failed',
          reason: Reasons.Failed,
          message: `protocol error: ${reason}`,
        });
        options.dropped(peer, `protocol error from ${peer.pod}`);
      }
    },
  );
}

/**
 * The checks every transport makes of a hello, in the documented order: the MAC, the transfer
 * and attempt, a receiver named in the transfer (pod + uid), the rank, the rank fingerprint, not
 * started, not already failed. The connection slot is the transport's own check.
 */
export function checkHello(
  ctx: SeedRankContext,
  hello: PeerHello,
  seedNonce: string,
  peer: HandshakePeer | undefined,
  started: boolean,
): Refusal | undefined {
  if (!macEquals(hello.mac, helloMac(ctx.token, hello, seedNonce)))
    return {
      code: 'SEEDCAST_ERR_UNAUTHORIZED',
      reason: Reasons.Unauthorized,
      message: 'hello not signed with the pod-to-pod token',
    };
  if (
    hello.namespace !== ctx.transfer.namespace ||
    hello.transfer !== ctx.transfer.name ||
    hello.attempt !== ctx.transfer.attempt
  )
    return {
      code: 'SEEDCAST_ERR_UNAUTHORIZED',
      reason: Reasons.Unauthorized,
      message: `this port serves ${ctx.transfer.namespace}/${ctx.transfer.name} attempt ${ctx.transfer.attempt}, not ${hello.namespace}/${hello.transfer} attempt ${hello.attempt}`,
    };
  if (peer === undefined || peer.uid !== hello.uid)
    return {
      code: 'SEEDCAST_ERR_UNAUTHORIZED',
      reason: Reasons.Unauthorized,
      message: `pod ${hello.pod} (uid ${hello.uid}) is not a receiver of ${ctx.transfer.name}`,
    };
  if (hello.rank !== ctx.rank)
    return {
      code: 'SEEDCAST_ERR_INVALID',
      reason: Reasons.Failed,
      message: `this port serves rank ${ctx.rank}, not rank ${hello.rank}`,
    };
  if (hello.fingerprint !== ctx.engine.fingerprint)
    return {
      code: 'SEEDCAST_ERR_FINGERPRINT_MISMATCH',
      reason: Reasons.FingerprintMismatch,
      message: `rank ${ctx.rank}: receiver fingerprint ${hello.fingerprint} differs from the seed's ${ctx.engine.fingerprint}`,
    };
  if (started)
    return { code: 'SEEDCAST_ERR_INVALID', reason: Reasons.Failed, message: 'the broadcast already started' };
  if (!peer.alive)
    return {
      code: 'SEEDCAST_ERR_INVALID',
      reason: Reasons.Failed,
      message: `${hello.pod} already failed in this transfer`,
    };
  return undefined;
}

/** The fields a hello or an accept signs: which transfer attempt, who, which rank, which weights. */
function signedIdentity(
  transfer: { namespace: string; name: string; attempt: number },
  who: { pod: string; uid: string },
  rank: number,
  fingerprint: string,
) {
  return {
    namespace: transfer.namespace,
    transfer: transfer.name,
    attempt: transfer.attempt,
    pod: who.pod,
    uid: who.uid,
    rank,
    fingerprint,
  };
}

// ---------------------------------------------------------------- receiver

/** The receiver's signed hello for stream `stream` of `streams`, answering the seed's challenge. */
export function receiverHello(
  ctx: ReceiverRankContext,
  stream: number,
  streams: number,
  nonce: string,
  seedNonce: string,
  direct = false,
): PeerHello {
  const fields = {
    ...signedIdentity(ctx.transfer, ctx.self, ctx.rank, ctx.engine.fingerprint),
    stream,
    streams,
    ...(direct ? { direct: true as const } : {}),
    nonce,
  };
  return { v: V, type: 'hello', ...fields, mac: helloMac(ctx.token, fields, seedNonce) };
}

/** Undefined when the accept proves it comes from the seed the transfer names (token + identity). */
export function acceptError(
  ctx: ReceiverRankContext,
  message: Accept,
  nonce: string,
  seedNonce: string,
): TransferError | undefined {
  const expected = acceptMac(
    ctx.token,
    signedIdentity(ctx.transfer, message, message.rank, message.fingerprint),
    nonce,
    seedNonce,
  );
  if (!macEquals(message.mac, expected) || message.pod !== ctx.seed.pod || message.uid !== ctx.seed.uid)
    return new TransferError(
      'SEEDCAST_ERR_UNAUTHORIZED',
      Reasons.Unauthorized,
      `the peer at ${ctx.address} could not prove it is seed ${ctx.seed.pod}`,
    );
  return undefined;
}

/** The receiver's error for a seed's refuse (final: the same hello would be refused again). */
export function refusedError(
  ctx: ReceiverRankContext,
  message: Extract<PeerMessage, { type: 'refuse' }>,
): TransferError {
  return new TransferError(
    'SEEDCAST_ERR_UNAUTHORIZED',
    message.code === 'SEEDCAST_ERR_FINGERPRINT_MISMATCH' ? Reasons.FingerprintMismatch : message.reason,
    `seed refused rank ${ctx.rank}: ${message.code}: ${message.message}`,
    { retryable: false },
  );
}

/** A message other than challenge, accept or refuse before the handshake finished. */
export const unexpectedInHandshake = (type: string): TransferError =>
  new TransferError('SEEDCAST_ERR_PROTOCOL', Reasons.Failed, `unexpected ${type} during the handshake`);
