// Host staging without copies: map a slot file (tmpfs) into the agent's address space, and the
// bucket checksum sum32x2 over any host range. With these the `tcp` transport reads sockets
// straight into the slot and writes sockets straight out of it (docs/native.md › Host memory).
// Neither needs CUDA: they work with the addon's libraries unopened.
#include "host_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "errors.h"
#include "promise_worker.h"

namespace seedcast {

uint64_t ArgU64(const Napi::Value& v, const char* name);

namespace {

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

void Unmap(Napi::Env /*env*/, uint8_t* data, size_t* length) {
  munmap(data, *length);
  delete length;
}

// A = Σ w_i, C = Σ (i+1)·w_i (mod 2^32) over little-endian words, the tail zero-padded.
// Eight lanes of running sums (adds only, so the compiler vectorizes it): over M blocks of 8
// words, lane k holds A_k = Σ_j w_{8j+k} and R_k = Σ_j (M−j)·w_{8j+k}; since word 8j+k weighs
// 8j+k+1, C = Σ_k 8·(M·A_k − R_k) + (k+1)·A_k. The same fold as the WebAssembly path in
// src/agent/checksum.ts and the GPU kernel.
void Sum32x2(const uint8_t* p, size_t n, uint32_t* out_a, uint32_t* out_c) {
  constexpr size_t kLanes = 8;
  typedef uint32_t V4 __attribute__((vector_size(16)));
  V4 a0 = {0, 0, 0, 0}, a1 = a0, r0 = a0, r1 = a0;
  size_t words = n / 4;
  size_t blocks = words / kLanes;
  for (size_t j = 0; j < blocks; ++j) {
    V4 w0, w1;
    std::memcpy(&w0, p + j * 32, 16);
    std::memcpy(&w1, p + j * 32 + 16, 16);
    a0 += w0;
    a1 += w1;
    r0 += a0;
    r1 += a1;
  }
  uint32_t lane_a[kLanes] = {a0[0], a0[1], a0[2], a0[3], a1[0], a1[1], a1[2], a1[3]};
  uint32_t lane_r[kLanes] = {r0[0], r0[1], r0[2], r0[3], r1[0], r1[1], r1[2], r1[3]};
  uint32_t a = 0, c = 0;
  const uint32_t m = static_cast<uint32_t>(blocks);
  for (size_t k = 0; k < kLanes; ++k) {
    a += lane_a[k];
    c += 8u * (m * lane_a[k] - lane_r[k]) + static_cast<uint32_t>(k + 1) * lane_a[k];
  }
  for (size_t i = blocks * kLanes; i < words; ++i) {
    uint32_t w;
    std::memcpy(&w, p + i * 4, 4);
    a += w;
    c += static_cast<uint32_t>(i + 1) * w;
  }
  size_t rest = n - words * 4;
  if (rest > 0) {
    uint32_t w = 0;
    for (size_t b = 0; b < rest; ++b) w |= static_cast<uint32_t>(p[words * 4 + b]) << (8 * b);
    a += w;
    c += static_cast<uint32_t>(words + 1) * w;
  }
  *out_a = a;
  *out_c = c;
}

}  // namespace

// mapFile(path, bytes): a Buffer over the first `bytes` of the file, MAP_SHARED read-write; the
// mapping goes when the Buffer is garbage-collected.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowInvalid(env, "mapFile: path must be a string");
  std::string path = info[0].As<Napi::String>();
  uint64_t bytes = ArgU64(info[1], "bytes");
  if (bytes == 0) ThrowInvalid(env, "mapFile: bytes must be positive");
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowInvalid(env, Errno("mapFile: open", path));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    ThrowInvalid(env, Errno("mapFile: fstat", path));
  }
  if (static_cast<uint64_t>(st.st_size) < bytes) {
    close(fd);
    ThrowInvalid(env, "mapFile: " + path + " holds " + std::to_string(st.st_size) + " bytes, fewer than " +
                          std::to_string(bytes));
  }
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int saved = errno;
  close(fd);
  if (data == MAP_FAILED) {
    errno = saved;
    ThrowInvalid(env, Errno("mapFile: mmap", path));
  }
  return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(data), bytes, Unmap, new size_t(bytes));
}

// sum32x2(bytes): { a, c } of a Buffer or Uint8Array as if it started at word 0. Synchronous: callers
// pass cache-sized pieces (the transport sums what a socket read just wrote).
Napi::Value HostSum32x2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) ThrowInvalid(env, "sum32x2: bytes must be a Buffer or Uint8Array");
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  const uint8_t* p = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  uint32_t a = 0, c = 0;
  Sum32x2(p, t.ByteLength(), &a, &c);
  Napi::Object o = Napi::Object::New(env);
  o.Set("a", Napi::Number::New(env, a));
  o.Set("c", Napi::Number::New(env, c));
  return o;
}

// sum32x2Async(bytes): the same on a libuv pool thread (a promise of { a, c }), so a sender can
// checksum what it is about to write while its JS thread keeps the sockets busy. The buffer is
// kept alive until the promise settles; the caller must not change it meanwhile.
Napi::Value HostSum32x2Async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) ThrowInvalid(env, "sum32x2Async: bytes must be a Buffer or Uint8Array");
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  const uint8_t* p = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  size_t n = t.ByteLength();
  auto out = std::make_shared<std::pair<uint32_t, uint32_t>>(0, 0);
  auto job = std::make_unique<Job>();
  job->Keep(t);
  job->execute = [p, n, out] { Sum32x2(p, n, &out->first, &out->second); };
  job->result = [out](Napi::Env env) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("a", Napi::Number::New(env, out->first));
    o.Set("c", Napi::Number::New(env, out->second));
    return o;
  };
  return RunOnPool(env, std::move(job));
}

}  // namespace seedcast
