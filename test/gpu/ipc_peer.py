"""Engine-shim side of the CUDA IPC test: a PyTorch process opens the addon's 64-byte handle,
checks the first half, writes the second half, closes the handle. Prints one JSON line."""
import base64
import ctypes
import json
import sys

import torch

handle_b64, nbytes, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.cuda.set_device(device)
torch.zeros(1, device="cuda")  # create the context

cudart_path = None
for line in open("/proc/self/maps"):
    if "libcudart.so" in line:
        cudart_path = line.split()[-1]
        break
lib = ctypes.CDLL(cudart_path or "libcudart.so.13")


class Handle(ctypes.Structure):
    _fields_ = [("reserved", ctypes.c_char * 64)]


raw = base64.b64decode(handle_b64)
assert len(raw) == 64, len(raw)
handle = Handle()
ctypes.memmove(ctypes.byref(handle), raw, 64)
ptr = ctypes.c_void_p()
err = lib.cudaIpcOpenMemHandle(ctypes.byref(ptr), handle, ctypes.c_uint(1))  # cudaIpcMemLazyEnablePeerAccess
if err != 0:
    print(json.dumps({"ok": False, "error": f"cudaIpcOpenMemHandle returned {err}", "cudart": cudart_path}))
    sys.exit(1)


class View:
    __cuda_array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (ptr.value, False), "version": 3}


t = torch.as_tensor(View(), device="cuda")
pattern = ((torch.arange(nbytes, device="cuda", dtype=torch.int64) * 7 + 3) & 255).to(torch.uint8)
half = nbytes // 2
read_ok = bool(torch.equal(t[:half], pattern[:half]))
t[half:] = 255 - pattern[half:]
torch.cuda.synchronize()
del t
close_err = lib.cudaIpcCloseMemHandle(ptr)
print(json.dumps({"ok": read_ok and close_err == 0, "readOk": read_ok, "closeErr": close_err, "cudart": cudart_path}))
