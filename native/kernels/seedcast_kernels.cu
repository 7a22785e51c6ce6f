// Device kernels of the seedcast addon. Compiled offline to PTX (gen_ptx.py, NVRTC) and embedded in
// src/kernels_ptx.inc; the driver JIT-compiles that PTX for whatever GPU it runs on, so the addon
// needs neither nvcc nor NVRTC at run time. Keep the PTX target old (compute_70) so old drivers load it.

typedef unsigned int u32;
typedef unsigned long long u64;

struct __align__(8) CopyChunk {
  u64 src;
  u64 dst;
  u64 bytes;
};

__device__ __forceinline__ void reduce_and_add(u32 a, u32 c, u32* out) {
  __shared__ u32 sa[32];
  __shared__ u32 sc[32];
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_down_sync(0xffffffffu, a, o);
    c += __shfl_down_sync(0xffffffffu, c, o);
  }
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  if (lane == 0) {
    sa[warp] = a;
    sc[warp] = c;
  }
  __syncthreads();
  if (warp == 0) {
    const int nwarps = (blockDim.x + 31) >> 5;
    a = lane < nwarps ? sa[lane] : 0u;
    c = lane < nwarps ? sc[lane] : 0u;
    for (int o = 16; o > 0; o >>= 1) {
      a += __shfl_down_sync(0xffffffffu, a, o);
      c += __shfl_down_sync(0xffffffffu, c, o);
    }
    if (lane == 0) {
      atomicAdd(out, a);
      atomicAdd(out + 1, c);
    }
  }
}

// sum32x2 (docs/bridge-protocol.md): words w_i little-endian, tail zero-padded;
// out[0] += sum w_i, out[1] += sum (i+1)*w_i, both mod 2^32. out must be zeroed before launch.
// blockDim.x must be a multiple of 32.
extern "C" __global__ void seedcast_sum32x2(const unsigned char* __restrict__ p, u64 len, u32* __restrict__ out) {
  const u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  const u64 nthreads = (u64)gridDim.x * blockDim.x;
  const u64 full = len >> 2;
  u32 a = 0, c = 0;
  const u64 addr = (u64)p;
  if ((addr & 15) == 0) {
    const uint4* v = reinterpret_cast<const uint4*>(p);
    const u64 nvec = full >> 2;
    for (u64 k = tid; k < nvec; k += nthreads) {
      const uint4 x = __ldg(v + k);
      const u32 i = (u32)(k << 2) + 1u;
      a += x.x + x.y + x.z + x.w;
      c += i * x.x + (i + 1u) * x.y + (i + 2u) * x.z + (i + 3u) * x.w;
    }
    const u32* w = reinterpret_cast<const u32*>(p);
    for (u64 k = (nvec << 2) + tid; k < full; k += nthreads) {
      const u32 x = __ldg(w + k);
      a += x;
      c += (u32)(k + 1) * x;
    }
  } else if ((addr & 3) == 0) {
    const u32* w = reinterpret_cast<const u32*>(p);
    for (u64 k = tid; k < full; k += nthreads) {
      const u32 x = __ldg(w + k);
      a += x;
      c += (u32)(k + 1) * x;
    }
  } else {
    for (u64 k = tid; k < full; k += nthreads) {
      const unsigned char* b = p + (k << 2);
      const u32 x = (u32)b[0] | ((u32)b[1] << 8) | ((u32)b[2] << 16) | ((u32)b[3] << 24);
      a += x;
      c += (u32)(k + 1) * x;
    }
  }
  if (tid == 0 && (len & 3) != 0) {
    u32 x = 0;
    const u64 base = full << 2;
    for (u64 b = 0; b < (len & 3); ++b) x |= (u32)p[base + b] << (8 * b);
    a += x;
    c += (u32)(full + 1) * x;
  }
  reduce_and_add(a, c, out);
}

// Gather/scatter: each block copies whole chunks (host splits segments into chunks of at most 64 KiB).
extern "C" __global__ void seedcast_copy_chunks(const CopyChunk* __restrict__ chunks, u32 n) {
  for (u32 ci = blockIdx.x; ci < n; ci += gridDim.x) {
    const CopyChunk ch = chunks[ci];
    const unsigned char* s = reinterpret_cast<const unsigned char*>(ch.src);
    unsigned char* d = reinterpret_cast<unsigned char*>(ch.dst);
    const u64 bytes = ch.bytes;
    u64 head = 0;
    if (((ch.src ^ ch.dst) & 15) == 0) {
      // same misalignment: bytes up to the 16-byte boundary, then 16-byte vectors
      head = (16 - (ch.src & 15)) & 15;
      if (head > bytes) head = bytes;
      if (threadIdx.x < head) d[threadIdx.x] = s[threadIdx.x];
      const uint4* sv = reinterpret_cast<const uint4*>(s + head);
      uint4* dv = reinterpret_cast<uint4*>(d + head);
      const u64 nv = (bytes - head) >> 4;
#pragma unroll 4
      for (u64 k = threadIdx.x; k < nv; k += blockDim.x) dv[k] = __ldg(sv + k);
      for (u64 k = head + (nv << 4) + threadIdx.x; k < bytes; k += blockDim.x) d[k] = s[k];
    } else if (((ch.src ^ ch.dst) & 3) == 0) {
      head = (4 - (ch.src & 3)) & 3;
      if (head > bytes) head = bytes;
      if (threadIdx.x < head) d[threadIdx.x] = s[threadIdx.x];
      const u32* sw = reinterpret_cast<const u32*>(s + head);
      u32* dw = reinterpret_cast<u32*>(d + head);
      const u64 nw = (bytes - head) >> 2;
#pragma unroll 4
      for (u64 k = threadIdx.x; k < nw; k += blockDim.x) dw[k] = __ldg(sw + k);
      for (u64 k = head + (nw << 2) + threadIdx.x; k < bytes; k += blockDim.x) d[k] = s[k];
    } else {
      for (u64 k = threadIdx.x; k < bytes; k += blockDim.x) d[k] = s[k];
    }
  }
}
