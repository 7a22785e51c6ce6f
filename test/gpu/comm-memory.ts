// Extra GPU memory of one NCCL communicator (per rank), under the NCCL_* environment this process got.
// Prints one JSON line. Ranks: 2 across GPU 0 and 1 when there are two GPUs, else 1.
import { Gpu } from '../../src/native/index.ts';

const gpu = await Gpu.open({ probe: false });
const nranks = Math.min(2, gpu.deviceCount);
const devices = Array.from({ length: nranks }, (_, i) => i);
const buffers = await Promise.all(devices.map((d) => gpu.allocDevice(d, 64 << 20)));
const before = await Promise.all(devices.map((d) => gpu.memInfo(d)));
const id = await gpu.ncclUniqueId();
const comms = await Promise.all(
  devices.map((d) =>
    // connect: false, to see init and the ring's connection apart (initMiB / totalMiB).
    gpu.initCommunicator({ uniqueId: id, rank: d, nranks, device: d, timeoutMs: 60_000, connect: false }),
  ),
);
const afterInit = await Promise.all(devices.map((d) => gpu.memInfo(d)));
// NCCL connects lazily (NCCL_RUNTIME_CONNECT): the first collective allocates the channel buffers.
await Promise.all(comms.map((c, i) => c.broadcast([buffers[i]!], { root: 0, timeoutMs: 60_000 })));
const afterBroadcast = await Promise.all(devices.map((d) => gpu.memInfo(d)));
const mib = (a: number, b: number) => (a - b) / 2 ** 20;
process.stdout.write(
  `${JSON.stringify({
    nranks,
    env: {
      NCCL_MAX_NCHANNELS: process.env.NCCL_MAX_NCHANNELS ?? null,
      NCCL_BUFFSIZE: process.env.NCCL_BUFFSIZE ?? null,
    },
    initMiB: mib(before[0]!.freeBytes, afterInit[0]!.freeBytes),
    totalMiB: mib(before[0]!.freeBytes, afterBroadcast[0]!.freeBytes),
  })}\n`,
);
await Promise.all(comms.map((c) => c.close({ timeoutMs: 10_000 })));
