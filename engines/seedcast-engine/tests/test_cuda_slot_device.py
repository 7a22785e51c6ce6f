"""CPU-side check of the shim's CUDA IPC open (issue 11, run 2): the slot must be opened on the
device the agent named in the slot descriptor (`hello.device`), not on whatever device the bridge
thread happens to have current (GPU 0 for a thread that never called cudaSetDevice)."""

from __future__ import annotations

import base64
import ctypes
import threading

from seedcast_engine import staging


class FakeCudart:
    """Records the calls, per thread, with the device current on that thread at each call."""

    def __init__(self):
        self.local = threading.local()
        self.calls: list[tuple[str, int]] = []

        def open_(ptr, handle, flags):  # a plain function: the shim sets .argtypes on it
            self.calls.append(("cudaIpcOpenMemHandle", self._current()))
            ptr._obj.value = 0x1000  # ctypes.byref(c_void_p)
            return 0

        self.cudaIpcOpenMemHandle = open_

    def _current(self) -> int:
        return getattr(self.local, "device", 0)

    def cudaSetDevice(self, device):
        self.local.device = device.value if isinstance(device, ctypes.c_int) else int(device)
        self.calls.append(("cudaSetDevice", self.local.device))
        return 0

    def cudaIpcCloseMemHandle(self, ptr):
        self.calls.append(("cudaIpcCloseMemHandle", self._current()))
        return 0

    def cudaGetErrorString(self, rc):
        return b"fake"


def test_ipc_handle_opened_on_the_slot_device_from_a_fresh_thread(monkeypatch):
    fake = FakeCudart()
    monkeypatch.setattr(staging, "cudart", lambda: fake)
    handle = base64.b64encode(bytes(range(64))).decode()
    slots = []
    # The bridge thread: a fresh thread whose current device is 0.
    t = threading.Thread(target=lambda: slots.append(staging.open_slot(
        {"kind": "cuda", "slot": 0, "device": 1, "ipcHandle": handle, "bytes": 4096})))
    t.start()
    t.join()
    slot = slots[0]
    assert slot.ptr == 0x1000 and slot.device == 1
    opened = [d for name, d in fake.calls if name == "cudaIpcOpenMemHandle"]
    assert opened == [1], fake.calls
    # close() also runs on the slot's device, whichever thread calls it
    slot.close()
    assert [d for name, d in fake.calls if name == "cudaIpcCloseMemHandle"] == [1]
