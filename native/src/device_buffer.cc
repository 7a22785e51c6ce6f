#include "device_buffer.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "addon_data.h"
#include "errors.h"
#include "pinned_buffer.h"
#include "promise_worker.h"
#include "runtime.h"

namespace seedcast {

namespace {

// Two events around work enqueued on one stream; waits for the second and returns the GPU time.
class TimedRegion {
 public:
  TimedRegion(const CudaApi& api, CUstream stream) : api_(api), stream_(stream) {
    api_.Check(api_.cuEventCreate(&start_, CU_EVENT_DEFAULT), "cuEventCreate");
    api_.Check(api_.cuEventCreate(&end_, CU_EVENT_DEFAULT), "cuEventCreate");
    api_.Check(api_.cuEventRecord(start_, stream_), "cuEventRecord");
  }
  ~TimedRegion() {
    if (start_) api_.cuEventDestroy(start_);
    if (end_) api_.cuEventDestroy(end_);
  }
  double Finish() {
    api_.Check(api_.cuEventRecord(end_, stream_), "cuEventRecord");
    api_.Check(api_.cuEventSynchronize(end_), "cuEventSynchronize");
    float ms = 0;
    api_.Check(api_.cuEventElapsedTime(&ms, start_, end_), "cuEventElapsedTime");
    return ms;
  }

 private:
  const CudaApi& api_;
  CUstream stream_;
  CUevent start_ = nullptr;
  CUevent end_ = nullptr;
};

void CheckRange(uint64_t offset, uint64_t bytes, uint64_t size, const char* what) {
  if (offset > size || bytes > size - offset) {
    throw NativeError(codes::kInvalid, std::string(what) + ": range [" + std::to_string(offset) + ", +" +
                                           std::to_string(bytes) + ") exceeds " + std::to_string(size) + " bytes");
  }
}

struct CopyChunk {
  uint64_t src;
  uint64_t dst;
  uint64_t bytes;
};
constexpr uint64_t kChunkBytes = 64 * 1024;
constexpr unsigned kThreads = 256;

Napi::Value GpuMs(Napi::Env env, double ms) { return Napi::Number::New(env, ms); }

}  // namespace

DeviceAllocation::~DeviceAllocation() {
  try {
    Release();
  } catch (...) {
  }
}

void DeviceAllocation::Release() {
  CUdeviceptr p = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    p = ptr;
    ptr = 0;
    release_requested_ = true;
  }
  if (p == 0) return;
  const CudaApi& api = Runtime::Get().cuda();
  Runtime::Get().Device(device).MakeCurrent();
  if (ipc_opened) {
    api.Check(api.cuIpcCloseMemHandle(p), "cuIpcCloseMemHandle");
  } else {
    api.Check(api.cuMemFree(p), "cuMemFree");
  }
}

bool DeviceAllocation::TryPin() {
  std::lock_guard<std::mutex> lock(mu_);
  if (ptr == 0 || release_requested_) return false;
  ++pins_;
  return true;
}

void DeviceAllocation::Unpin() {
  bool release = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    release = --pins_ == 0 && release_requested_ && ptr != 0;
  }
  if (release) Release();
}

void DeviceAllocation::RequestRelease() {
  bool release = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    release_requested_ = true;
    release = pins_ == 0 && ptr != 0;
  }
  if (release) Release();
}

bool DeviceAllocation::ReleaseRequested() {
  std::lock_guard<std::mutex> lock(mu_);
  return release_requested_ || ptr == 0;
}

namespace {
struct PinHolder {
  std::shared_ptr<DeviceAllocation> allocation;
  ~PinHolder() {
    try {
      allocation->Unpin();
    } catch (...) {
    }
  }
};
}  // namespace

std::shared_ptr<DeviceAllocation> PinAllocation(const std::shared_ptr<DeviceAllocation>& allocation) {
  if (!allocation || !allocation->TryPin()) return nullptr;
  auto holder = std::make_shared<PinHolder>();
  holder->allocation = allocation;
  // Aliasing: points at the allocation, owns the pin (which owns the allocation).
  return std::shared_ptr<DeviceAllocation>(holder, allocation.get());
}

Napi::Function DeviceBuffer::Define(Napi::Env env) {
  return DefineClass(env, "DeviceBuffer",
                     {
                         InstanceAccessor<&DeviceBuffer::GetDevice>("device"),
                         InstanceAccessor<&DeviceBuffer::GetBytes>("bytes"),
                         InstanceAccessor<&DeviceBuffer::GetAddress>("address"),
                         InstanceAccessor<&DeviceBuffer::GetFreed>("freed"),
                         InstanceMethod<&DeviceBuffer::CopyFromHost>("copyFromHost"),
                         InstanceMethod<&DeviceBuffer::CopyToHost>("copyToHost"),
                         InstanceMethod<&DeviceBuffer::CopyFromDevice>("copyFromDevice"),
                         InstanceMethod<&DeviceBuffer::Fill>("fill"),
                         InstanceMethod<&DeviceBuffer::Checksum>("checksum"),
                         InstanceMethod<&DeviceBuffer::IpcHandle>("ipcHandle"),
                         InstanceMethod<&DeviceBuffer::Free>("free"),
                     });
}

DeviceBuffer::DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    ThrowInvalid(info.Env(), "DeviceBuffer cannot be constructed directly: use allocDevice() or openIpcHandle()");
  }
  auto* holder = info[0].As<Napi::External<std::shared_ptr<DeviceAllocation>>>().Data();
  allocation_ = *holder;
}

Napi::Object DeviceBuffer::Wrap(Napi::Env env, std::shared_ptr<DeviceAllocation> allocation) {
  std::shared_ptr<DeviceAllocation> holder = std::move(allocation);
  auto external = Napi::External<std::shared_ptr<DeviceAllocation>>::New(env, &holder);
  return GetAddonData(env).device_buffer.New({external});
}

std::shared_ptr<DeviceAllocation> DeviceBuffer::Live(Napi::Env env) const {
  std::shared_ptr<DeviceAllocation> pinned = PinAllocation(allocation_);
  if (!pinned) ThrowInvalid(env, "DeviceBuffer was freed");
  return pinned;
}

std::shared_ptr<DeviceAllocation> DeviceBuffer::From(const Napi::Value& value, const char* name) {
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(GetAddonData(env).device_buffer.Value())) {
    ThrowInvalid(env, std::string(name) + " must be a DeviceBuffer");
  }
  return Napi::ObjectWrap<DeviceBuffer>::Unwrap(value.As<Napi::Object>())->Live(env);
}

Napi::Value DeviceBuffer::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), allocation_ ? allocation_->device : -1);
}
Napi::Value DeviceBuffer::GetBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(allocation_ ? allocation_->bytes : 0));
}
Napi::Value DeviceBuffer::GetAddress(const Napi::CallbackInfo& info) {
  std::shared_ptr<DeviceAllocation> pinned = PinAllocation(allocation_);
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(pinned ? pinned->ptr : 0));
}
Napi::Value DeviceBuffer::GetFreed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !allocation_ || allocation_->ReleaseRequested());
}

Napi::Value DeviceBuffer::Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = ArgInt(info[0], "device");
  uint64_t bytes = ArgU64(info[1], "bytes");
  if (bytes == 0) ThrowInvalid(env, "bytes must be > 0");
  auto holder = std::make_shared<std::shared_ptr<DeviceAllocation>>();
  auto job = std::make_unique<Job>();
  job->execute = [device, bytes, holder] {
    const CudaApi& api = Runtime::Get().cuda();
    DeviceState& dev = Runtime::Get().Device(device);
    dev.MakeCurrent();
    auto alloc = std::make_shared<DeviceAllocation>();
    alloc->device = device;
    alloc->bytes = bytes;
    api.Check(api.cuMemAlloc(&alloc->ptr, bytes), "cuMemAlloc");
    *holder = alloc;
  };
  job->result = [holder](Napi::Env env) -> Napi::Value { return Wrap(env, *holder); };
  return RunOnPool(env, std::move(job));
}

Napi::Value DeviceBuffer::OpenIpc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = ArgInt(info[0], "device");
  if (!info[1].IsBuffer() || info[1].As<Napi::Buffer<uint8_t>>().Length() != sizeof(CUipcMemHandle)) {
    ThrowInvalid(env, "handle must be a Buffer of 64 bytes (cudaIpcMemHandle_t)");
  }
  CUipcMemHandle handle;
  std::memcpy(handle.reserved, info[1].As<Napi::Buffer<uint8_t>>().Data(), sizeof(handle));
  auto holder = std::make_shared<std::shared_ptr<DeviceAllocation>>();
  auto job = std::make_unique<Job>();
  job->execute = [device, handle, holder] {
    const CudaApi& api = Runtime::Get().cuda();
    DeviceState& dev = Runtime::Get().Device(device);
    dev.MakeCurrent();
    auto alloc = std::make_shared<DeviceAllocation>();
    alloc->device = device;
    alloc->ipc_opened = true;
    api.Check(api.cuIpcOpenMemHandle(&alloc->ptr, handle, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS), "cuIpcOpenMemHandle");
    CUdeviceptr base = 0;
    size_t size = 0;
    api.Check(api.cuMemGetAddressRange(&base, &size, alloc->ptr), "cuMemGetAddressRange");
    alloc->bytes = size - static_cast<size_t>(alloc->ptr - base);
    *holder = alloc;
  };
  job->result = [holder](Napi::Env env) -> Napi::Value { return Wrap(env, *holder); };
  return RunOnPool(env, std::move(job));
}

Napi::Value DeviceBuffer::CopyFromHost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto alloc = Live(env);
  HostRange src = ArgHostRange(info[0], "src");
  uint64_t src_off = ArgU64(info[1], "srcOffset");
  uint64_t dst_off = ArgU64(info[2], "dstOffset");
  uint64_t bytes = ArgU64(info[3], "bytes");
  if (src_off > src.bytes || bytes > src.bytes - src_off) ThrowInvalid(env, "copyFromHost: source range out of bounds");
  if (dst_off > alloc->bytes || bytes > alloc->bytes - dst_off) ThrowInvalid(env, "copyFromHost: device range out of bounds");
  auto ms = std::make_shared<double>(0);
  auto job = std::make_unique<Job>();
  job->Keep(info[0].As<Napi::Object>());
  uint8_t* host = src.data + src_off;
  job->execute = [alloc, host, dst_off, bytes, ms] {
    const CudaApi& api = Runtime::Get().cuda();
    DeviceState& dev = Runtime::Get().Device(alloc->device);
    dev.MakeCurrent();
    CUstream s = dev.NextStream();
    TimedRegion t(api, s);
    if (bytes) api.Check(api.cuMemcpyHtoDAsync(alloc->ptr + dst_off, host, bytes, s), "cuMemcpyHtoDAsync");
    *ms = t.Finish();
  };
  job->result = [ms](Napi::Env env) { return GpuMs(env, *ms); };
  return RunOnPool(env, std::move(job));
}

Napi::Value DeviceBuffer::CopyToHost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto alloc = Live(env);
  HostRange dst = ArgHostRange(info[0], "dst");
  uint64_t src_off = ArgU64(info[1], "srcOffset");
  uint64_t dst_off = ArgU64(info[2], "dstOffset");
  uint64_t bytes = ArgU64(info[3], "bytes");
  if (dst_off > dst.bytes || bytes > dst.bytes - dst_off) ThrowInvalid(env, "copyToHost: destination range out of bounds");
  if (src_off > alloc->bytes || bytes > alloc->bytes - src_off) ThrowInvalid(env, "copyToHost: device range out of bounds");
  auto ms = std::make_shared<double>(0);
  auto job = std::make_unique<Job>();
  job->Keep(info[0].As<Napi::Object>());
  uint8_t* host = dst.data + dst_off;
  job->execute = [alloc, host, src_off, bytes, ms] {
    const CudaApi& api = Runtime::Get().cuda();
    DeviceState& dev = Runtime::Get().Device(alloc->device);
    dev.MakeCurrent();
    CUstream s = dev.NextStream();
    TimedRegion t(api, s);
    if (bytes) api.Check(api.cuMemcpyDtoHAsync(host, alloc->ptr + src_off, bytes, s), "cuMemcpyDtoHAsync");
    *ms = t.Finish();
  };
  job->result = [ms](Napi::Env env) { return GpuMs(env, *ms); };
  return RunOnPool(env, std::move(job));
}

Napi::Value DeviceBuffer::CopyFromDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto alloc = Live(env);
  auto src = From(info[0], "src");
  uint64_t src_off = ArgU64(info[1], "srcOffset");
  uint64_t dst_off = ArgU64(info[2], "dstOffset");
  uint64_t bytes = ArgU64(info[3], "bytes");
  if (src_off > src->bytes || bytes > src->bytes - src_off) ThrowInvalid(env, "copyFromDevice: source range out of bounds");
  if (dst_off > alloc->bytes || bytes > alloc->bytes - dst_off) ThrowInvalid(env, "copyFromDevice: destination range out of bounds");
  auto ms = std::make_shared<double>(0);
  auto job = std::make_unique<Job>();
  job->execute = [alloc, src, src_off, dst_off, bytes, ms] {
    const CudaApi& api = Runtime::Get().cuda();
    DeviceState& dev = Runtime::Get().Device(alloc->device);
    dev.MakeCurrent();
    CUstream s = dev.NextStream();
    TimedRegion t(api, s);
    if (bytes) api.Check(api.cuMemcpyDtoDAsync(alloc->ptr + dst_off, src->ptr + src_off, bytes, s), "cuMemcpyDtoDAsync");
    *ms = t.Finish();
  };
  job->result = [ms](Napi::Env env) { return GpuMs(env, *ms); };
  return RunOnPool(env, std::move(job));
}

Napi::Value DeviceBuffer::Fill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto alloc = Live(env);
  int value = ArgInt(info[0], "value");
  if (value > 255) ThrowInvalid(env, "value must be a byte (0..255)");
  uint64_t off = ArgU64(info[1], "offset");
  uint64_t bytes = ArgU64(info[2], "bytes");
  if (off > alloc->bytes || bytes > alloc->bytes - off) ThrowInvalid(env, "fill: range out of bounds");
  auto job = std::make_unique<Job>();
  job->execute = [alloc, value, off, bytes] {
    const CudaApi& api = Runtime::Get().cuda();
    DeviceState& dev = Runtime::Get().Device(alloc->device);
    dev.MakeCurrent();
    CUstream s = dev.NextStream();
    TimedRegion t(api, s);
    if (bytes) api.Check(api.cuMemsetD8Async(alloc->ptr + off, static_cast<unsigned char>(value), bytes, s), "cuMemsetD8Async");
    t.Finish();
  };
  return RunOnPool(env, std::move(job));
}

Napi::Value DeviceBuffer::Checksum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto alloc = Live(env);
  uint64_t off = ArgU64(info[0], "offset");
  uint64_t bytes = ArgU64(info[1], "bytes");
  if (off > alloc->bytes || bytes > alloc->bytes - off) ThrowInvalid(env, "checksum: range out of bounds");
  struct Out {
    uint32_t a = 0, c = 0;
    double ms = 0;
  };
  auto out = std::make_shared<Out>();
  auto job = std::make_unique<Job>();
  job->execute = [alloc, off, bytes, out] {
    if (bytes == 0) return;
    const CudaApi& api = Runtime::Get().cuda();
    DeviceState& dev = Runtime::Get().Device(alloc->device);
    dev.MakeCurrent();
    CUfunction fn = dev.SumKernel();
    CUstream s = dev.NextStream();
    int slot = dev.AcquireResultSlot();
    struct SlotGuard {
      DeviceState& dev;
      int slot;
      ~SlotGuard() { dev.ReleaseResultSlot(slot); }
    } guard{dev, slot};
    CUdeviceptr result = dev.ResultSlotDevice(slot);
    TimedRegion t(api, s);
    api.Check(api.cuMemsetD8Async(result, 0, 8, s), "cuMemsetD8Async");
    uint64_t p = alloc->ptr + off;
    uint64_t len = bytes;
    uint64_t units = (bytes + 15) / 16;
    uint64_t blocks = std::min<uint64_t>((units + kThreads - 1) / kThreads, static_cast<uint64_t>(dev.sm_count()) * 8);
    if (blocks == 0) blocks = 1;
    void* params[] = {&p, &len, &result};
    api.Check(api.cuLaunchKernel(fn, static_cast<unsigned>(blocks), 1, 1, kThreads, 1, 1, 0, s, params, nullptr),
              "cuLaunchKernel(seedcast_sum32x2)");
    api.Check(api.cuMemcpyDtoHAsync(dev.ResultSlotHost(slot), result, 8, s), "cuMemcpyDtoHAsync");
    out->ms = t.Finish();
    out->a = dev.ResultSlotHost(slot)[0];
    out->c = dev.ResultSlotHost(slot)[1];
  };
  job->result = [out](Napi::Env env) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("a", Napi::Number::New(env, out->a));
    o.Set("c", Napi::Number::New(env, out->c));
    o.Set("gpuMs", Napi::Number::New(env, out->ms));
    return o;
  };
  return RunOnPool(env, std::move(job));
}

Napi::Value DeviceBuffer::IpcHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto alloc = Live(env);
  if (alloc->ipc_opened) ThrowInvalid(env, "ipcHandle: this buffer was itself opened from an IPC handle");
  auto handle = std::make_shared<CUipcMemHandle>();
  auto job = std::make_unique<Job>();
  job->execute = [alloc, handle] {
    const CudaApi& api = Runtime::Get().cuda();
    Runtime::Get().Device(alloc->device).MakeCurrent();
    api.Check(api.cuIpcGetMemHandle(handle.get(), alloc->ptr), "cuIpcGetMemHandle");
  };
  job->result = [handle](Napi::Env env) -> Napi::Value {
    return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(handle->reserved), sizeof(handle->reserved));
  };
  return RunOnPool(env, std::move(job));
}

// Frees the memory once no operation still uses it: operations already called hold pins (their
// jobs may not even have started), and the fake or real GPU may be writing into the buffer until
// they complete. Freeing under them was a use-after-free (heap corruption on the fake driver).
Napi::Value DeviceBuffer::Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<DeviceAllocation> alloc = std::move(allocation_);
  auto job = std::make_unique<Job>();
  job->execute = [alloc]() mutable {
    if (alloc) alloc->RequestRelease();
  };
  return RunOnPool(env, std::move(job));
}

Napi::Value DeviceBuffer::CopySegments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = ArgInt(info[0], "device");
  if (!info[1].IsArray()) ThrowInvalid(env, "buffers must be an array of DeviceBuffer");
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<std::shared_ptr<DeviceAllocation>> buffers;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    auto b = From(list.Get(i), "buffers[i]");
    if (b->device != device) ThrowInvalid(env, "copySegments: every buffer must be on device " + std::to_string(device));
    buffers.push_back(b);
  }
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
    ThrowInvalid(env, "table must be a BigUint64Array of [srcIndex, srcOffset, dstIndex, dstOffset, bytes] rows");
  }
  Napi::TypedArrayOf<uint64_t> table = info[2].As<Napi::TypedArrayOf<uint64_t>>();
  if (table.ElementLength() % 5 != 0) ThrowInvalid(env, "table length must be a multiple of 5");
  std::vector<CopyChunk> chunks;
  uint64_t total = 0;
  try {
    for (size_t r = 0; r < table.ElementLength(); r += 5) {
      uint64_t si = table[r], so = table[r + 1], di = table[r + 2], dof = table[r + 3], n = table[r + 4];
      if (si >= buffers.size() || di >= buffers.size()) throw NativeError(codes::kInvalid, "copySegments: buffer index out of range");
      CheckRange(so, n, buffers[si]->bytes, "copySegments source");
      CheckRange(dof, n, buffers[di]->bytes, "copySegments destination");
      for (uint64_t done = 0; done < n; done += kChunkBytes) {
        uint64_t len = std::min(kChunkBytes, n - done);
        chunks.push_back({buffers[si]->ptr + so + done, buffers[di]->ptr + dof + done, len});
      }
      total += n;
    }
  } catch (const NativeError& e) {
    throw ToJsError(env, e.code(), e.what());
  }
  if (chunks.size() > 0xffffffffu) ThrowInvalid(env, "copySegments: too many chunks");
  auto ms = std::make_shared<double>(0);
  auto job = std::make_unique<Job>();
  job->execute = [device, buffers, chunks = std::move(chunks), ms] {
    if (chunks.empty()) return;
    const CudaApi& api = Runtime::Get().cuda();
    DeviceState& dev = Runtime::Get().Device(device);
    dev.MakeCurrent();
    CUfunction fn = dev.CopyKernel();
    std::lock_guard<std::mutex> lock(dev.descriptor_mutex());
    size_t desc_bytes = chunks.size() * sizeof(CopyChunk);
    dev.EnsureDescriptorArea(desc_bytes);
    std::memcpy(dev.descriptor_host(), chunks.data(), desc_bytes);
    CUstream s = dev.NextStream();
    TimedRegion t(api, s);
    api.Check(api.cuMemcpyHtoDAsync(dev.descriptor_dev(), dev.descriptor_host(), desc_bytes, s), "cuMemcpyHtoDAsync(descriptors)");
    uint64_t desc = dev.descriptor_dev();
    unsigned n = static_cast<unsigned>(chunks.size());
    unsigned blocks = std::min<unsigned>(n, static_cast<unsigned>(dev.sm_count()) * 16);
    void* params[] = {&desc, &n};
    api.Check(api.cuLaunchKernel(fn, blocks, 1, 1, kThreads, 1, 1, 0, s, params, nullptr), "cuLaunchKernel(seedcast_copy_chunks)");
    *ms = t.Finish();
  };
  job->result = [ms](Napi::Env env) { return GpuMs(env, *ms); };
  return RunOnPool(env, std::move(job));
}

}  // namespace seedcast
