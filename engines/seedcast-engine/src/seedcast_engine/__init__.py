"""seedcast engine shim: moves an inference engine's weights through the seedcast agent.

Pure-Python core (no torch import at module load):
- `protocol`: bridge framing and message validation
- `fingerprint`: rank/pod fingerprints (canonical JSON + sha256)
- `plan`: bucket planning and the `sum32x2` checksum
- `client` / `shim`: the bridge session (hello/welcome, fill/drain/load/complete)
- `staging`: host (mmap) and cuda (CUDA IPC) slots
Torch-level: `tensors.collect`, `copy.TorchCopier`, `torch_shim.TorchShim`.
Adapters: `vllm_plugin` (load format `seedcast`), `sglang_loader`.
"""

from .errors import SeedcastError
from .fingerprint import canonical_json, pod_fingerprint, rank_fingerprint
from .plan import BucketPlan, Segment, sum32x2
from .shim import Shim, table_entry

__all__ = [
    "BucketPlan",
    "SeedcastError",
    "Segment",
    "Shim",
    "canonical_json",
    "pod_fingerprint",
    "rank_fingerprint",
    "sum32x2",
    "table_entry",
]
__version__ = "0.1.0"
