"""Reference agent side of the bridge protocol (tests and the local GPU demo).

`AgentEndpoint` listens on a Unix socket, accepts one engine connection, validates `hello`,
recomputes the fingerprint (answering SEEDCAST_ERR_FINGERPRINT_MISMATCH on a difference),
allocates staging slots (host files or CUDA buffers exported with cudaIpcGetMemHandle) and
answers `welcome`. The test then drives the session: `fill`, `drain`, `complete`, `load`,
`ping`.

`relay()` plays two agents: it moves every bucket of a seed endpoint to a receiver endpoint
through a loopback TCP connection with the `sum32x2` checksum verified before each drain, two
buckets in flight on each side (the shape of the real agents' `tcp` transport).
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import json
import os
import queue
import socket
import struct
import sys
import threading
import time
from typing import Any, Callable

from .. import errors
from ..errors import ProtocolError, SeedcastError, ValidationError
from ..fingerprint import rank_fingerprint
from ..plan import BucketPlan, sum32x2
from ..protocol import ENGINE_TO_AGENT, FrameDecoder, encode_frame, error_message, message, parse_body, validate


# ---------------------------------------------------------------------------- staging owners


class HostBuffer:
    def __init__(self, path: str, nbytes: int):
        import mmap

        self.path, self.bytes = path, nbytes
        with open(path, "wb") as f:
            f.truncate(nbytes)
        fd = os.open(path, os.O_RDWR)
        self._mm = mmap.mmap(fd, nbytes)
        os.close(fd)
        self.view = memoryview(self._mm)

    def describe(self, slot: int) -> dict[str, Any]:
        return {"slot": slot, "kind": "host", "path": self.path, "bytes": self.bytes}

    def read(self, n: int) -> bytes:
        return bytes(self.view[:n])

    def checksum(self, n: int) -> str:
        return sum32x2(self.view[:n])

    def write(self, data: bytes | memoryview) -> None:
        self.view[: len(data)] = data

    def close(self) -> None:
        self.view.release()
        self._mm.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class CudaBuffer:
    """cudaMalloc'd staging exported by IPC; host transfers through a pinned bounce buffer."""

    def __init__(self, device: int, nbytes: int):
        from ..staging import _CudaIpcHandle, check_cuda, cudart

        lib = cudart()
        self.lib, self.device, self.bytes = lib, device, nbytes
        check_cuda(lib.cudaSetDevice(ctypes.c_int(device)), "cudaSetDevice")
        ptr = ctypes.c_void_p()
        check_cuda(lib.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(nbytes)), "cudaMalloc")
        self.ptr = ptr.value
        handle = _CudaIpcHandle()
        check_cuda(lib.cudaIpcGetMemHandle(ctypes.byref(handle), ctypes.c_void_p(self.ptr)), "cudaIpcGetMemHandle")
        self.handle = ctypes.string_at(ctypes.addressof(handle), 64)
        host = ctypes.c_void_p()
        check_cuda(lib.cudaMallocHost(ctypes.byref(host), ctypes.c_size_t(nbytes)), "cudaMallocHost")
        self.host = host.value
        self.host_view = (ctypes.c_char * nbytes).from_address(self.host)

    def describe(self, slot: int) -> dict[str, Any]:
        return {"slot": slot, "kind": "cuda", "device": self.device,
                "ipcHandle": base64.b64encode(self.handle).decode(), "bytes": self.bytes}

    def _copy(self, dst: int, src: int, n: int, kind: int) -> None:
        from ..staging import check_cuda

        self.lib.cudaSetDevice(ctypes.c_int(self.device))
        check_cuda(self.lib.cudaMemcpy(ctypes.c_void_p(dst), ctypes.c_void_p(src), ctypes.c_size_t(n), ctypes.c_int(kind)), "cudaMemcpy")

    def checksum(self, n: int) -> str:
        """sum32x2 of the first n bytes, computed on the GPU (torch) where the bucket lives."""
        import torch

        from ..staging import _CudaArray

        u8 = torch.as_tensor(_CudaArray(self.ptr, self.bytes), device=f"cuda:{self.device}")[:n]
        pad = (-n) % 4
        if pad:
            u8 = torch.cat([u8, u8.new_zeros(pad)])
        w32 = u8.view(torch.int32)
        a = c = 0
        step = 1 << 24
        for o in range(0, w32.numel(), step):
            w = w32[o : o + step].to(torch.int64) & 0xFFFFFFFF
            s_ = int(w.sum())
            j = torch.arange(1, w.numel() + 1, device=w.device, dtype=torch.int64)
            a = (a + s_) & 0xFFFFFFFF
            c = (c + o * s_ + int((w * j).sum())) & 0xFFFFFFFF
        return f"{n}:{a:08x}{c:08x}"

    def read(self, n: int) -> memoryview:
        self._copy(self.host, self.ptr, n, 2)  # device -> host
        return memoryview(self.host_view).cast("B")[:n]

    def write(self, data: bytes | memoryview) -> None:
        n = len(data)
        mv = memoryview(data).cast("B")
        if mv.readonly:
            ctypes.memmove(self.host, bytes(mv), n)
        else:
            ctypes.memmove(self.host, ctypes.addressof((ctypes.c_char * n).from_buffer(mv)), n)
        self._copy(self.ptr, self.host, n, 1)  # host -> device

    def close(self) -> None:
        self.lib.cudaSetDevice(ctypes.c_int(self.device))
        self.lib.cudaFree(ctypes.c_void_p(self.ptr))
        self.lib.cudaFreeHost(ctypes.c_void_p(self.host))


# ---------------------------------------------------------------------------- one engine connection


class AgentEndpoint:
    def __init__(self, directory: str, name: str = "agent", *, bucket_bytes: int = 1 << 20, nslots: int = 2,
                 expect: str | None = None):
        self.dir = directory
        self.name = name
        self.path = os.path.join(directory, f"{name}.sock")
        self.bucket_bytes = bucket_bytes
        self.nslots = nslots
        self.expect = expect  # a rank fingerprint the engine must match (peer's), else refuse
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.server.bind(self.path)
        self.server.listen(4)
        self.sock: socket.socket | None = None
        self.decoder = FrameDecoder()
        self.inbox: list[dict[str, Any]] = []
        self.hello: dict[str, Any] | None = None
        self.plan: BucketPlan | None = None
        self.buffers: list[Any] = []
        self.ids = 1000
        self.errors: list[dict[str, Any]] = []
        self.checksum_at_source = False
        self.last_checksum: str | None = None

    # -- raw frames
    def accept(self, timeout: float = 30.0) -> None:
        self.server.settimeout(timeout)
        self.sock, _ = self.server.accept()
        self.sock.settimeout(timeout)

    def send(self, msg: dict[str, Any]) -> None:
        assert self.sock is not None
        self.sock.sendall(encode_frame(msg))

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def recv(self, timeout: float = 60.0) -> dict[str, Any]:
        """Next validated message from the engine (pings answered on the way)."""
        assert self.sock is not None
        self.sock.settimeout(timeout)
        while True:
            while self.inbox:
                msg = self.inbox.pop(0)
                if msg.get("type") == "ping":
                    self.send(message("pong", id=msg["id"]))
                    continue
                return msg
            data = self.sock.recv(1 << 16)
            if not data:
                raise SeedcastError(errors.PEER_LOST, "engine closed the connection")
            for body in self.decoder.feed(data):
                try:
                    self.inbox.append(validate(parse_body(body), ENGINE_TO_AGENT))
                except ValidationError as exc:
                    self.send(error_message(exc.code, exc.message, exc.msg_id))

    def request(self, type_: str, timeout: float = 120.0, **fields: Any) -> dict[str, Any]:
        self.ids += 1
        mid = self.ids
        self.send(message(type_, id=mid, **fields))
        reply = self.recv(timeout)
        if reply.get("id") != mid:
            raise SeedcastError(errors.PROTOCOL, f"expected a reply to {mid}, got {reply}")
        return reply

    # -- registration
    def handshake(self, *, memory_device: int | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Accept hello, check the fingerprint, allocate slots, send welcome. Returns hello.

        On a fingerprint mismatch the engine gets `error` SEEDCAST_ERR_FINGERPRINT_MISMATCH and
        no slot is allocated."""
        hello = self.recv(timeout)
        if hello["type"] != "hello":
            self.send(error_message(errors.PROTOCOL, f"expected hello, got {hello['type']}", hello.get("id")))
            raise SeedcastError(errors.PROTOCOL, "no hello")
        mine = rank_fingerprint(hello["fingerprintInputs"], hello["tensors"])
        for want, what in ((hello["fingerprint"], "engine"), (self.expect, "peer")):
            if want is not None and want != mine:
                text = f"fingerprint mismatch: {what} {want}, agent computed {mine}"
                self.send(error_message(errors.FINGERPRINT_MISMATCH, text, hello["id"]))
                raise SeedcastError(errors.FINGERPRINT_MISMATCH, text, retryable=False)
        self.hello = hello
        self.plan = BucketPlan([t["bytes"] for t in hello["tensors"]], self.bucket_bytes)
        size = min(self.bucket_bytes, max(self.plan.total_bytes, 1))
        for i in range(self.nslots):
            if hello["memory"] == "cuda":
                self.buffers.append(CudaBuffer(hello.get("device", memory_device or 0), size))
            else:
                self.buffers.append(HostBuffer(os.path.join(self.dir, f"{self.name}-r{hello['rank']}-s{i}"), size))
        self.send(message("welcome", id=hello["id"], fingerprint=mine, bucketBytes=self.bucket_bytes,
                          buckets=self.plan.buckets, totalBytes=self.plan.total_bytes,
                          slots=[b.describe(i) for i, b in enumerate(self.buffers)]))
        return hello

    @property
    def fingerprint(self) -> str:
        assert self.hello is not None
        return self.hello["fingerprint"]

    # -- seed: fill every bucket, two in flight
    def fill_all(self, on_bucket: Callable[[int, Any], None], depth: int = 2) -> None:
        assert self.plan is not None
        nb = self.plan.buckets
        inflight: dict[int, tuple[int, int]] = {}  # id -> (bucket, slot)
        free = list(range(len(self.buffers)))
        nxt = 0
        while nxt < nb or inflight:
            while nxt < nb and free and len(inflight) < depth:
                slot = free.pop(0)
                self.ids += 1
                self.send(message("fill", id=self.ids, bucket=nxt, slot=slot))
                inflight[self.ids] = (nxt, slot)
                nxt += 1
            reply = self.recv()
            if reply["type"] == "error":
                raise SeedcastError(reply["code"], reply["message"])
            k, slot = inflight.pop(reply["id"])
            assert reply["type"] == "filled" and reply["bucket"] == k and reply["bytes"] == self.plan.bucket_length(k)
            n = self.plan.bucket_length(k)
            self.last_checksum = self.buffers[slot].checksum(n) if self.checksum_at_source else None
            on_bucket(k, self.buffers[slot].read(n))
            free.append(slot)

    # -- receiver: drain one bucket (already verified)
    def drain(self, k: int, data: bytes | memoryview, slot: int = 0) -> None:
        self.buffers[slot].write(data)
        reply = self.request("drain", bucket=k, slot=slot)
        if reply["type"] != "drained" or reply["bucket"] != k:
            raise SeedcastError(reply.get("code", errors.PROTOCOL), reply.get("message", str(reply)))

    def complete(self, outcome: str = "verified", text: str | None = None) -> dict[str, Any]:
        return self.request("complete", outcome=outcome, message=text)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        for b in self.buffers:
            b.close()
        self.buffers.clear()
        self.server.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


# ---------------------------------------------------------------------------- two agents over TCP

_HDR = struct.Struct(">IQ")  # bucket, length; then a 32-byte checksum string field


def relay(seed: AgentEndpoint, recv: AgentEndpoint) -> dict[str, Any]:
    """Move every bucket seed -> receiver over loopback TCP, verifying sum32x2 before each drain."""
    assert seed.plan is not None and recv.plan is not None
    if seed.fingerprint != recv.fingerprint:
        raise SeedcastError(errors.FINGERPRINT_MISMATCH, "rank fingerprints differ: refusing to move a byte")
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    tx = socket.create_connection(lsock.getsockname())
    rx, _ = lsock.accept()
    lsock.close()
    for s in (tx, rx):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    stats = {"fill_wait_s": 0.0, "drain_wait_s": 0.0, "bytes": 0}
    failure: list[BaseException] = []

    def sender() -> None:
        try:
            def on_bucket(k: int, data: Any) -> None:
                cs = (seed.last_checksum or sum32x2(data)).encode().ljust(32)
                tx.sendall(_HDR.pack(k, len(data)) + cs)
                tx.sendall(data)
            seed.fill_all(on_bucket)
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)
        finally:
            tx.shutdown(socket.SHUT_WR)

    def recv_exact(n: int, buf: bytearray) -> memoryview:
        view = memoryview(buf)[:n]
        got = 0
        while got < n:
            r = rx.recv_into(view[got:], n - got)
            if r == 0:
                raise SeedcastError(errors.PEER_LOST, "seed side closed mid-bucket")
            got += r
        return view

    seed.checksum_at_source = isinstance(seed.buffers[0], CudaBuffer)
    t = threading.Thread(target=sender, daemon=True)
    t0 = time.perf_counter()
    t.start()
    buf = bytearray(recv.bucket_bytes)
    hdr = bytearray(_HDR.size + 32)
    slot = 0
    for _ in range(recv.plan.buckets):
        h = recv_exact(len(hdr), hdr)
        k, n = _HDR.unpack_from(h, 0)
        want = bytes(h[_HDR.size:]).strip().decode()
        data = recv_exact(n, buf)
        recv.buffers[slot].write(data)
        got = recv.buffers[slot].checksum(n)  # verify what the slot holds, before the drain
        if got != want:
            recv.complete("failed", f"bucket {k}: checksum {got} != {want}")
            raise SeedcastError(errors.CHECKSUM, f"bucket {k}: checksum {got} != {want}")
        reply = recv.request("drain", bucket=k, slot=slot)
        if reply["type"] != "drained":
            raise SeedcastError(reply.get("code", errors.PROTOCOL), reply.get("message", str(reply)))
        slot = (slot + 1) % len(recv.buffers)
        stats["bytes"] += n
    t.join()
    elapsed = time.perf_counter() - t0
    tx.close()
    rx.close()
    if failure:
        recv.complete("failed", str(failure[0]))
        raise failure[0]
    ack = recv.complete("verified")
    assert ack["type"] == "ack"
    stats.update({"seconds": elapsed, "GBps": stats["bytes"] / elapsed / 1e9 if elapsed else 0.0})
    return stats


def main(argv: list[str] | None = None) -> int:
    """`python -m seedcast_engine.testing.agent relay --dir D --bucket-mib 256`: accept a seed
    engine on D/seed.sock and a receiver on D/receiver.sock, relay, print JSON stats."""
    ap = argparse.ArgumentParser(prog="seedcast-reference-agent")
    ap.add_argument("command", choices=["relay"])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--bucket-mib", type=int, default=256)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    bb = args.bucket_mib << 20
    seed = AgentEndpoint(args.dir, "seed", bucket_bytes=bb)
    recv = AgentEndpoint(args.dir, "receiver", bucket_bytes=bb)
    print(json.dumps({"event": "listening", "seed": seed.path, "receiver": recv.path}), flush=True)
    try:
        seed.accept(args.timeout)
        seed.handshake()
        print(json.dumps({"event": "seed-registered", "fingerprint": seed.fingerprint}), flush=True)
        recv.expect = seed.fingerprint
        recv.accept(args.timeout)
        try:
            recv.handshake()
        except SeedcastError as exc:
            print(json.dumps({"event": "refused", "code": exc.code, "message": exc.message}), flush=True)
            recv.close()
            recv = AgentEndpoint(args.dir, "receiver", bucket_bytes=bb, expect=seed.fingerprint)
            print(json.dumps({"event": "listening", "receiver": recv.path}), flush=True)
            recv.accept(args.timeout)
            recv.handshake()
        print(json.dumps({"event": "receiver-registered", "fingerprint": recv.fingerprint}), flush=True)
        stats = relay(seed, recv)
        print(json.dumps({"event": "relayed", **stats}), flush=True)
        # keep the seed connected until the receiver has disconnected
        try:
            recv.recv(args.timeout)
        except (SeedcastError, OSError):
            pass
    finally:
        recv.close()
        seed.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
