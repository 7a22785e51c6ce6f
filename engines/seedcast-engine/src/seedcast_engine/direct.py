"""Direct casts: the engine joins its rank's NCCL communicator and broadcasts straight from / into
its own tensors (docs/adr/0002-engine-side-nccl-receive.md, docs/bridge-protocol.md › Direct casts).

The agent keeps the rendezvous, tokens, deadlines and verification; it sends one `cast` per rank
and transfer and the engine answers `cast-done` with every bucket's `sum32x2`. Per bucket, all on
the GPU and without a host round trip:

    seed:      pack bucket k into slot k%2 (copy stream) -> ncclBroadcast (nccl stream), sum32x2 beside it
    receiver:  ncclBroadcast into slot k%2 (nccl stream) -> sum32x2 and unpack into the tensors, side by side

The two slots are the agent's staging slots this engine already maps (no extra memory); CUDA events
order the two streams, so packing bucket k+1 overlaps the broadcast of bucket k. Everything runs in
the engine's own CUDA context: no second process's kernels time-slice against NCCL's (issue 11).
A receiver's tensors hold unverified bytes until the agent compares the checksums and sends
`complete verified`; until then the engine stays `empty` (its weights were dummies anyway).

NCCL is loaded with ctypes (the library torch already loaded, or SEEDCAST_NCCL_LIBRARY); the
checksum kernel is the addon's own PTX (`_kernels.py`, generated from native/src/kernels_ptx.inc),
loaded through the CUDA driver, so both sides of a transfer compute the same `sum32x2`.
"""

from __future__ import annotations

import base64
import ctypes
import logging
import os
import threading
import time
from typing import Any

from . import errors
from .errors import SeedcastError
from .plan import BucketPlan

log = logging.getLogger("seedcast_engine")

NCCL_SUCCESS = 0
NCCL_IN_PROGRESS = 7
NCCL_UINT8 = 1
NCCL_MIN_VERSION = 21800  # non-blocking init, abort, finalize
CONFIG_UNDEF_INT = -(2**31)
#: Bytes of the connect broadcast that makes NCCL set up its ring before the first bucket.
CONNECT_BYTES = 4096
THREADS = 256


class _UniqueId(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_byte * 128)]


class _Config218(ctypes.Structure):
    """ncclConfig_t as of NCCL 2.18; `size` tells newer NCCL which fields we set."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("magic", ctypes.c_uint),
        ("version", ctypes.c_uint),
        ("blocking", ctypes.c_int),
        ("cgaClusterSize", ctypes.c_int),
        ("minCTAs", ctypes.c_int),
        ("maxCTAs", ctypes.c_int),
        ("netName", ctypes.c_char_p),
        ("splitShare", ctypes.c_int),
    ]


def _load_nccl() -> ctypes.CDLL:
    explicit = os.environ.get("SEEDCAST_NCCL_LIBRARY")
    names = [explicit] if explicit else []
    try:  # the wheel torch depends on (already loaded by `import torch` on CUDA builds)
        import nvidia.nccl  # type: ignore

        for base in getattr(nvidia.nccl, "__path__", []):
            names.append(os.path.join(base, "lib", "libnccl.so.2"))
    except ImportError:
        pass
    names.append("libnccl.so.2")
    tried = []
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            tried.append(f"{name}: {exc}")
    raise SeedcastError(errors.NO_CUDA, "cannot load NCCL (" + "; ".join(tried) + ")", retryable=False)


class Nccl:
    """The few NCCL entry points a direct cast needs."""

    def __init__(self, lib: ctypes.CDLL | None = None):
        self.lib = lib or _load_nccl()
        L = self.lib
        L.ncclGetVersion.argtypes = [ctypes.POINTER(ctypes.c_int)]
        L.ncclGetUniqueId.argtypes = [ctypes.POINTER(_UniqueId)]
        L.ncclCommInitRankConfig.argtypes = [
            ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, _UniqueId, ctypes.c_int, ctypes.POINTER(_Config218)
        ]
        L.ncclCommGetAsyncError.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        L.ncclCommFinalize.argtypes = [ctypes.c_void_p]
        L.ncclCommDestroy.argtypes = [ctypes.c_void_p]
        L.ncclCommAbort.argtypes = [ctypes.c_void_p]
        L.ncclBroadcast.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p
        ]
        L.ncclGetErrorString.restype = ctypes.c_char_p
        L.ncclGetErrorString.argtypes = [ctypes.c_int]
        v = ctypes.c_int(0)
        self.check(L.ncclGetVersion(ctypes.byref(v)), "ncclGetVersion")
        self.version = v.value
        if not NCCL_MIN_VERSION <= self.version < 30000:
            raise SeedcastError(errors.NO_CUDA, f"NCCL {self.version} is not supported (2.18 or newer 2.x)", retryable=False)

    def unique_id(self) -> str:
        """A fresh ncclUniqueId, base64 (the agent makes these; tests use it to pair engines alone)."""
        uid = _UniqueId()
        self.check(self.lib.ncclGetUniqueId(ctypes.byref(uid)), "ncclGetUniqueId")
        return base64.b64encode(bytes(uid.internal)).decode()

    def describe(self, r: int) -> str:
        s = self.lib.ncclGetErrorString(r)
        return f"{s.decode() if s else 'unknown'} ({r})"

    def check(self, r: int, what: str) -> int:
        if r not in (NCCL_SUCCESS, NCCL_IN_PROGRESS):
            raise SeedcastError(errors.CUDA, f"{what} failed: {self.describe(r)}")
        return r


class _Driver:
    """The CUDA driver calls that load and launch the addon's sum32x2 kernel in torch's context."""

    def __init__(self, torch: Any, device: int):
        from ._kernels import PTX

        self.lib = ctypes.CDLL("libcuda.so.1")
        L = self.lib
        L.cuModuleLoadData.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p]
        L.cuModuleGetFunction.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_char_p]
        L.cuLaunchKernel.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 6 + [
            ctypes.c_uint, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p
        ]
        with torch.cuda.device(device):
            torch.cuda.current_stream().synchronize()  # the primary context is current on this thread
            mod = ctypes.c_void_p()
            self._check(L.cuModuleLoadData(ctypes.byref(mod), PTX.encode()), "cuModuleLoadData")
            fn = ctypes.c_void_p()
            self._check(L.cuModuleGetFunction(ctypes.byref(fn), mod, b"seedcast_sum32x2"), "cuModuleGetFunction")
        self.module, self.sum32x2 = mod, fn
        self.sms = torch.cuda.get_device_properties(device).multi_processor_count

    @staticmethod
    def _check(r: int, what: str) -> None:
        if r != 0:
            raise SeedcastError(errors.CUDA, f"{what} failed: CUresult {r}")

    def launch_sum(self, ptr: int, nbytes: int, out_ptr: int, stream: int) -> None:
        """out[0] += Σw, out[1] += Σ(i+1)·w over [ptr, ptr+nbytes) (out zeroed beforehand)."""
        units = (nbytes + 15) // 16
        blocks = max(1, min((units + THREADS - 1) // THREADS, self.sms * 8))
        p, n, o = ctypes.c_uint64(ptr), ctypes.c_uint64(nbytes), ctypes.c_uint64(out_ptr)
        params = (ctypes.c_void_p * 3)(ctypes.addressof(p), ctypes.addressof(n), ctypes.addressof(o))
        self._check(
            self.lib.cuLaunchKernel(self.sum32x2, blocks, 1, 1, THREADS, 1, 1, 0, ctypes.c_void_p(stream), params, None),
            "cuLaunchKernel(seedcast_sum32x2)",
        )


#: The first and the last bucket are cast in this many pieces: the first broadcast starts after a
#: quarter of the first pack and only a quarter of the last unpack trails the last broadcast (the
#: pipeline's ramp; ~2.6 ms of ~30 at 1 GiB buckets on H200s). Middle buckets stay whole: each
#: broadcast has a fixed cost (~0.1 ms), so more, smaller broadcasts would cost what they save.
RAMP_PIECES = 4
#: Buckets smaller than this are not split. Measured on H200x2 (10.33 GB, end to end, ratio to flat
#: torch): 256 MiB split 0.81 vs whole 0.84-0.86 (four extra broadcasts cost more than the ramp);
#: 1 GiB split 0.912/0.914 (run 14) vs whole 0.886/0.910 (runs 10, 12).
RAMP_MIN_BYTES = 512 << 20


class CastStep:
    """One broadcast of a cast: `length` bytes at `offset` of bucket `bucket`'s slot, copied with
    `plan`'s bucket `k` (the rank's plan, or for a piece a plan of RAMP_PIECES-times smaller buckets)."""

    __slots__ = ("bucket", "offset", "length", "plan", "k", "first", "last")

    def __init__(self, bucket: int, offset: int, length: int, plan: BucketPlan, k: int, first: bool, last: bool):
        self.bucket, self.offset, self.length, self.plan, self.k = bucket, offset, length, plan, k
        self.first, self.last = first, last


def cast_steps(plan: BucketPlan) -> list[CastStep]:
    """Every broadcast of a cast in order: whole buckets, the first and last split in pieces."""
    n = plan.buckets
    q = plan.bucket_bytes // RAMP_PIECES
    pieces = plan.bucket_bytes % (4 * RAMP_PIECES) == 0 and q > 0
    sub = BucketPlan(plan.sizes, q) if pieces else None
    steps: list[CastStep] = []
    for k in range(n):
        length = plan.bucket_length(k)
        if sub is not None and (k == 0 or k == n - 1) and length >= RAMP_MIN_BYTES:
            count = -(-length // q)
            for j in range(count):
                sk = k * RAMP_PIECES + j
                steps.append(CastStep(k, j * q, sub.bucket_length(sk), sub, sk, j == 0, j == count - 1))
        else:
            steps.append(CastStep(k, 0, length, plan, k, True, True))
    return steps


def bucket_checksums(plan: BucketPlan, steps: list[CastStep], values: list[list[int]]) -> list[str]:
    """Each bucket's sum32x2 from its pieces' (A, C): C = Σ C_j + (offset_j / 4)·A_j (mod 2^32);
    piece offsets are multiples of 4, and only a bucket's end has a zero-padded tail."""
    out: list[list[int]] = [[0, 0] for _ in range(plan.buckets)]
    for step, (a, c) in zip(steps, values):
        acc = out[step.bucket]
        acc[0] = (acc[0] + a) & 0xFFFFFFFF
        acc[1] = (acc[1] + c + (step.offset // 4) * a) & 0xFFFFFFFF
    return [checksum_string(plan.bucket_length(k), a, c) for k, (a, c) in enumerate(out)]


def checksum_string(nbytes: int, a: int, c: int) -> str:
    return f"{nbytes}:{a & 0xFFFFFFFF:08x}{c & 0xFFFFFFFF:08x}"


class DirectCaster:
    """One engine rank's direct casts. `copier` is the rank's TorchCopier (its copy stream and
    bucket views); `slots` the rank's cuda staging slots (two)."""

    def __init__(self, copier: Any, device: int, nccl: Nccl | None = None):
        import torch

        self.torch = torch
        self.copier = copier
        self.device = device
        self.nccl = nccl or Nccl()
        self.driver = _Driver(torch, device)
        # NCCL's stream, at the highest priority: its blocks are scheduled before queued copy blocks,
        # so the wire never waits for a bucket's pack/unpack kernels to drain the SMs.
        self.stream = torch.cuda.Stream(device=device, priority=torch.cuda.Stream.priority_range()[1])
        self.sum_stream = torch.cuda.Stream(device=device)  # receiver: sums beside the unpacks
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._comm: ctypes.c_void_p | None = None
        self._teardown: threading.Thread | None = None
        self.teardown_ms: float | None = None  # the last communicator's finalize + destroy
        self._steps: tuple[BucketPlan, list[CastStep]] | None = None

    def _steps_of(self, plan: BucketPlan) -> list[CastStep]:
        """The cast's broadcasts for `plan`, worked out once per plan (warm and every cast share them)."""
        if self._steps is None or self._steps[0] is not plan:
            self._steps = (plan, cast_steps(plan))
        return self._steps[1]

    def _copy(self, step: CastStep, view: Any, stream: Any, *, pack: bool) -> None:
        """Enqueue one step's pack (tensors -> slot view) or unpack on `stream`."""
        with self.torch.cuda.stream(stream):
            (self.copier.pack if pack else self.copier.unpack)(step.plan, step.k, view)

    def warm(self, plan: BucketPlan, slots: list[Any]) -> float:
        """Load every kernel a cast launches (torch loads CUDA modules lazily, ~15-20 ms on the first
        cast of a process otherwise) by packing every bucket once and summing one: packing only reads
        the tensors, so this is safe on a serving seed. Returns the seconds it took."""
        torch = self.torch
        t0 = time.monotonic()
        with torch.cuda.device(self.device):
            copy = self.copier.stream
            copy.wait_stream(torch.cuda.current_stream(self.device))
            scratch = torch.zeros(2, dtype=torch.int32, device=self.device)
            bufs = [s.tensor(pin=True) for s in slots[:2]]
            for step in self._steps_of(plan):  # also cuts the views of the first and last buckets' pieces
                view = bufs[step.bucket % 2][step.offset : step.offset + step.length]
                self._copy(step, view, copy, pack=True)
            if plan.buckets:
                self.driver.launch_sum(bufs[0].data_ptr(), plan.bucket_length(0), scratch.data_ptr(), copy.cuda_stream)
            copy.synchronize()
        return time.monotonic() - t0

    def wait_teardown(self, timeout: float | None = None) -> float | None:
        """Wait for the last cast's communicator to be destroyed; its teardown in ms (None: none ran)."""
        t = self._teardown
        if t is not None:
            t.join(timeout)
        return self.teardown_ms

    # ------------------------------------------------------------------ abort (any thread)
    def abort(self) -> None:
        """Make a running cast stop: its poll loop aborts the communicator and raises."""
        self._abort.set()

    # ------------------------------------------------------------------ the cast
    def cast(
        self,
        *,
        role: str,
        plan: BucketPlan,
        slots: list[Any],
        unique_id: str,
        comm_rank: int,
        nranks: int,
        init_timeout: float,
        timeout: float,
    ) -> dict[str, Any]:
        torch = self.torch
        if role not in ("send", "receive"):
            raise SeedcastError(errors.INVALID, f"role: {role!r} is not send or receive")
        raw = base64.b64decode(unique_id, validate=True)
        if len(raw) != 128:
            raise SeedcastError(errors.INVALID, f"uniqueId: {len(raw)} bytes, an ncclUniqueId has 128")
        if len(slots) < 2:
            raise SeedcastError(errors.INVALID, "a direct cast needs two staging slots")
        if self._teardown is not None:  # the previous cast's communicator is still being destroyed
            self._teardown.join()
            self._teardown = None
        self._abort.clear()
        started = time.monotonic()
        deadline = started + timeout
        stats: dict[str, Any] = {"initMs": 0.0, "connectMs": 0.0, "castMs": 0.0, "gpuMs": 0.0}
        n = plan.buckets
        steps = self._steps_of(plan)
        with torch.cuda.device(self.device):
            bufs = [s.tensor(pin=True) for s in slots[:2]]
            sums = torch.zeros((max(len(steps), 1), 2), dtype=torch.int32, device=self.device)
            comm = self._init(raw, comm_rank, nranks, min(deadline, started + init_timeout), stats)
            try:
                t_cast = time.monotonic()
                copy = self.copier.stream
                compute = torch.cuda.current_stream(self.device)
                first, last = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                freed = [torch.cuda.Event() for _ in range(n)]  # the slot may take bucket k+2
                summed = [torch.cuda.Event() for _ in range(n)]  # receiver: bucket k's sums are done
                if role == "send":
                    copy.wait_stream(compute)  # every write the engine made to its weights
                    first.record(copy)
                else:
                    first.record(self.stream)
                for i, step in enumerate(steps):
                    k = step.bucket
                    view = bufs[k % 2][step.offset : step.offset + step.length]
                    ready = torch.cuda.Event()  # seed: packed; receiver: landed
                    if role == "send":
                        if step.first and k >= 2:
                            copy.wait_event(freed[k - 2])
                        self._copy(step, view, copy, pack=True)
                        ready.record(copy)
                        self.stream.wait_event(ready)
                        self._broadcast(comm, view.data_ptr(), step.length, deadline)
                        if step.last:
                            freed[k].record(self.stream)
                        # summed beside the broadcast (both only read the slot), before the next pack
                        self.driver.launch_sum(view.data_ptr(), step.length, sums[i].data_ptr(), copy.cuda_stream)
                    else:
                        if step.first and k >= 2:
                            self.stream.wait_event(freed[k - 2])
                            self.stream.wait_event(summed[k - 2])
                        self._broadcast(comm, view.data_ptr(), step.length, deadline)
                        ready.record(self.stream)
                        # the sum and the unpack both only read the slot: side by side, not one after the other
                        self.sum_stream.wait_event(ready)
                        self.driver.launch_sum(view.data_ptr(), step.length, sums[i].data_ptr(), self.sum_stream.cuda_stream)
                        copy.wait_event(ready)
                        self._copy(step, view, copy, pack=False)
                        if step.last:
                            summed[k].record(self.sum_stream)
                            freed[k].record(copy)
                if role == "receive":
                    copy.wait_stream(self.sum_stream)
                last.record(copy if role == "receive" else self.stream)
                self._wait(comm, last, deadline, "the broadcast")
                if role == "send":
                    copy.synchronize()
                else:
                    compute.wait_stream(copy)  # the engine's kernels see the received weights
                stats["castMs"] = (time.monotonic() - t_cast) * 1e3
                stats["gpuMs"] = first.elapsed_time(last)
                values = sums.cpu().tolist()
            except BaseException:
                self._abort_comm(comm)
                raise
            # Finalizing a communicator takes ~0.45 s on H200s: off the transfer's critical path (the
            # bytes are in place and summed); the next cast waits for it.
            self._teardown = threading.Thread(target=self._close, args=(comm, time.monotonic() + 60), daemon=True)
            self._teardown.start()
        checksums = bucket_checksums(plan, steps, values)
        stats["totalMs"] = (time.monotonic() - started) * 1e3
        return {"bytes": plan.total_bytes, "checksums": checksums, "stats": stats}

    # ------------------------------------------------------------------ NCCL plumbing
    def _init(self, raw: bytes, rank: int, nranks: int, deadline: float, stats: dict[str, Any]) -> ctypes.c_void_p:
        uid = _UniqueId()
        ctypes.memmove(uid.internal, raw, 128)
        cfg = _Config218(ctypes.sizeof(_Config218), 0xCAFEBEEF, 21800, 0, CONFIG_UNDEF_INT, CONFIG_UNDEF_INT,
                         CONFIG_UNDEF_INT, None, CONFIG_UNDEF_INT)
        comm = ctypes.c_void_p()
        t0 = time.monotonic()
        r = self.nccl.lib.ncclCommInitRankConfig(ctypes.byref(comm), nranks, uid, rank, ctypes.byref(cfg))
        if r not in (NCCL_SUCCESS, NCCL_IN_PROGRESS):
            if comm.value:
                self.nccl.lib.ncclCommAbort(comm)
            raise SeedcastError(errors.CUDA, f"ncclCommInitRankConfig failed: {self.nccl.describe(r)}")
        with self._lock:
            self._comm = comm
        self._poll(comm, deadline, "ncclCommInitRankConfig (a peer never arrived)")
        # NCCL connects its ring lazily, in the first collective (~165 ms on H200s): pay it here.
        t1 = time.monotonic()
        try:
            scratch = self.torch.zeros(CONNECT_BYTES, dtype=self.torch.uint8, device=self.device)
            done = self.torch.cuda.Event()
            self._broadcast(comm, scratch.data_ptr(), CONNECT_BYTES, deadline)
            done.record(self.stream)
            self._wait(comm, done, deadline, "the connect broadcast")
        except BaseException:
            self._abort_comm(comm)  # whatever failed (an allocation included): never leave it open
            raise
        now = time.monotonic()
        stats["connectMs"] = (now - t1) * 1e3
        stats["initMs"] = (now - t0) * 1e3
        return comm

    def _broadcast(self, comm: ctypes.c_void_p, ptr: int, nbytes: int, deadline: float) -> None:
        r = self.nccl.lib.ncclBroadcast(
            ctypes.c_void_p(ptr), ctypes.c_void_p(ptr), nbytes, NCCL_UINT8, 0, comm, ctypes.c_void_p(self.stream.cuda_stream)
        )
        self.nccl.check(r, "ncclBroadcast")
        if r == NCCL_IN_PROGRESS:
            self._poll(comm, deadline, "ncclBroadcast")

    def _async_error(self, comm: ctypes.c_void_p) -> int:
        state = ctypes.c_int(0)
        r = self.nccl.lib.ncclCommGetAsyncError(comm, ctypes.byref(state))
        return r if r != NCCL_SUCCESS else state.value

    def _poll(self, comm: ctypes.c_void_p, deadline: float, what: str) -> None:
        """Until the pending non-blocking call completed; raises on error, abort or deadline."""
        i = 0
        while True:
            state = self._async_error(comm)
            if state == NCCL_SUCCESS:
                return
            self._check_running(comm, state, deadline, what)
            i += 1
            time.sleep(0 if i < 50 else 0.0002)

    def _wait(self, comm: ctypes.c_void_p, event: Any, deadline: float, what: str) -> None:
        """Until `event` completed on the GPU, watching NCCL's async error, abort and the deadline."""
        i = 0
        while not event.query():
            self._check_running(comm, self._async_error(comm), deadline, what)
            i += 1
            time.sleep(0 if i < 50 else 0.0002)

    def _check_running(self, comm: ctypes.c_void_p, state: int, deadline: float, what: str) -> None:
        if state not in (NCCL_SUCCESS, NCCL_IN_PROGRESS):
            self._abort_comm(comm)
            raise SeedcastError(errors.CUDA, f"{what} failed: {self.nccl.describe(state)}; communicator aborted")
        if self._abort.is_set():
            self._abort_comm(comm)
            raise SeedcastError(errors.ABORTED, f"{what} interrupted: the agent aborted the cast")
        if time.monotonic() >= deadline:
            self._abort_comm(comm)
            raise SeedcastError(errors.TIMEOUT, f"{what} did not complete in time (a peer stopped); communicator aborted")

    def _abort_comm(self, comm: ctypes.c_void_p) -> None:
        with self._lock:
            if self._comm is None:
                return
            self._comm = None
        self.nccl.lib.ncclCommAbort(comm)
        # NCCL's kernels exit after an abort; wait for them (and for the copies queued behind them)
        # before the slots can be reused or the tensors read.
        self.stream.synchronize()
        self.copier.stream.synchronize()
        self.sum_stream.synchronize()

    def _close(self, comm: ctypes.c_void_p, deadline: float) -> None:
        t0 = time.monotonic()
        r = self.nccl.lib.ncclCommFinalize(comm)
        try:
            self.nccl.check(r, "ncclCommFinalize")
            if r == NCCL_IN_PROGRESS:
                self._poll(comm, deadline, "ncclCommFinalize")
        except SeedcastError:
            self._abort_comm(comm)
            return
        with self._lock:
            self._comm = None
        self.nccl.lib.ncclCommDestroy(comm)
        self.teardown_ms = (time.monotonic() - t0) * 1e3
