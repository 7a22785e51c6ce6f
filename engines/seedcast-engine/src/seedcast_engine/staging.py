"""Staging slots the agent owns: `host` (a shared-memory file) and `cuda` (a CUDA IPC handle).

The engine maps each slot once after `welcome` and keeps it until it disconnects. A `cuda`
slot is the base of the agent's cudaMalloc allocation, opened with cudaIpcOpenMemHandle
(flag cudaIpcMemLazyEnablePeerAccess) through libcudart via ctypes, and closed before the
connection ends. torch is imported lazily: host staging works without it.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import glob
import mmap
import os
import sys
from typing import Any

from . import errors
from .errors import SeedcastError

IPC_HANDLE_SIZE = 64
CUDA_IPC_MEM_LAZY_ENABLE_PEER_ACCESS = 1


class HostSlot:
    kind = "host"

    def __init__(self, slot: int, path: str, nbytes: int):
        self.slot, self.path, self.bytes = slot, path, nbytes
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            if size < nbytes:
                raise SeedcastError(errors.INVALID, f"staging file {path} holds {size} bytes, welcome says {nbytes}")
            self._mm = mmap.mmap(fd, nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self.buffer = memoryview(self._mm)
        self._tensor: Any = None
        self._registered = False

    def tensor(self, pin: bool = False) -> Any:
        """A torch uint8 CPU tensor over the mapping (optionally page-locked for fast D2H/H2D)."""
        if self._tensor is None:
            import torch

            self._tensor = torch.frombuffer(self._mm, dtype=torch.uint8, count=self.bytes)
            if pin and torch.cuda.is_available():
                rc = torch.cuda.cudart().cudaHostRegister(self._tensor.data_ptr(), self.bytes, 0)
                self._registered = int(rc) == 0 if not isinstance(rc, tuple) else int(rc[0]) == 0
        return self._tensor

    def close(self) -> None:
        if self._tensor is not None:
            if self._registered:
                import torch

                torch.cuda.cudart().cudaHostUnregister(self._tensor.data_ptr())
            self._tensor = None
        self.buffer.release()
        self._mm.close()


# ---------------------------------------------------------------------------- libcudart

_cudart: ctypes.CDLL | None = None


def _cudart_candidates() -> list[str]:
    names = ["libcudart.so.13", "libcudart.so.12", "libcudart.so"]
    found = ctypes.util.find_library("cudart")
    if found:
        names.append(found)
    # pip wheels (nvidia-cuda-runtime*), as PyTorch uses them
    for base in sys.path:
        names += sorted(glob.glob(os.path.join(base, "nvidia", "cuda_runtime", "lib", "libcudart.so*")), reverse=True)
        names += sorted(glob.glob(os.path.join(base, "nvidia", "cu*", "lib", "libcudart.so*")), reverse=True)
    return names


def cudart() -> ctypes.CDLL:
    """libcudart, preferring the copy already loaded in the process (PyTorch's)."""
    global _cudart
    if _cudart is not None:
        return _cudart
    try:  # make sure torch's own runtime is loaded first when torch is present
        import torch  # noqa: F401
    except ImportError:
        pass
    last: Exception | None = None
    for name in _cudart_candidates():
        try:
            lib = ctypes.CDLL(name)
            lib.cudaGetErrorString.restype = ctypes.c_char_p
            _cudart = lib
            return lib
        except OSError as exc:
            last = exc
    raise SeedcastError(errors.NO_CUDA, f"libcudart not found ({last})")


def check_cuda(rc: int, what: str) -> None:
    if rc != 0:
        msg = cudart().cudaGetErrorString(rc)
        raise SeedcastError(errors.CUDA, f"{what} failed: {rc} {msg.decode() if msg else ''}")


class _CudaIpcHandle(ctypes.Structure):
    _fields_ = [("reserved", ctypes.c_char * IPC_HANDLE_SIZE)]


class _CudaArray:
    """Minimal __cuda_array_interface__ owner so torch.as_tensor can wrap a raw pointer."""

    def __init__(self, ptr: int, nbytes: int):
        self.__cuda_array_interface__ = {
            "shape": (nbytes,),
            "typestr": "|u1",
            "data": (ptr, False),
            "version": 3,
            "strides": None,
        }


def decode_ipc_handle(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    # PyTorch's _share_cuda_() form is 66 bytes: a version byte, 'c', then the handle.
    if len(raw) == IPC_HANDLE_SIZE + 2 and raw[1:2] == b"c":
        raw = raw[2:]
    if len(raw) != IPC_HANDLE_SIZE:
        raise SeedcastError(errors.INVALID, f"ipcHandle decodes to {len(raw)} bytes, expected {IPC_HANDLE_SIZE}")
    return raw


class CudaSlot:
    kind = "cuda"

    def __init__(self, slot: int, device: int, ipc_handle: str, nbytes: int):
        self.slot, self.device, self.bytes = slot, device, nbytes
        raw = decode_ipc_handle(ipc_handle)
        lib = cudart()
        check_cuda(lib.cudaSetDevice(ctypes.c_int(device)), f"cudaSetDevice({device})")
        lib.cudaIpcOpenMemHandle.argtypes = [ctypes.POINTER(ctypes.c_void_p), _CudaIpcHandle, ctypes.c_uint]
        handle = _CudaIpcHandle()
        ctypes.memmove(ctypes.addressof(handle), raw, IPC_HANDLE_SIZE)
        ptr = ctypes.c_void_p()
        check_cuda(
            lib.cudaIpcOpenMemHandle(ctypes.byref(ptr), handle, ctypes.c_uint(CUDA_IPC_MEM_LAZY_ENABLE_PEER_ACCESS)),
            f"cudaIpcOpenMemHandle(slot {slot})",
        )
        self.ptr = int(ptr.value or 0)
        self._tensor: Any = None

    def tensor(self, pin: bool = False) -> Any:
        if self._tensor is None:
            import torch

            self._tensor = torch.as_tensor(_CudaArray(self.ptr, self.bytes), device=f"cuda:{self.device}")
            assert self._tensor.data_ptr() == self.ptr
        return self._tensor

    def close(self) -> None:
        self._tensor = None
        if self.ptr:
            lib = cudart()
            lib.cudaSetDevice(ctypes.c_int(self.device))
            check_cuda(lib.cudaIpcCloseMemHandle(ctypes.c_void_p(self.ptr)), "cudaIpcCloseMemHandle")
            self.ptr = 0


def open_slot(desc: dict[str, Any]) -> HostSlot | CudaSlot:
    if desc["kind"] == "host":
        return HostSlot(desc["slot"], desc["path"], desc["bytes"])
    return CudaSlot(desc["slot"], desc["device"], desc["ipcHandle"], desc["bytes"])
