#include "device_state.h"

#include "errors.h"

namespace seedcast {

namespace {
const char kKernelsPtx[] =
#include "kernels_ptx.inc"
    ;
constexpr int kStreams = 4;
}  // namespace

DeviceState::DeviceState(const CudaApi& api, int ordinal) : api_(api), ordinal_(ordinal) {
  api_.Check(api_.cuDeviceGet(&device_, ordinal), "cuDeviceGet");
  api_.Check(api_.cuDevicePrimaryCtxRetain(&ctx_, device_), "cuDevicePrimaryCtxRetain");
  MakeCurrent();
  api_.Check(api_.cuDeviceGetAttribute(&sm_count_, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device_),
             "cuDeviceGetAttribute");
  for (int i = 0; i < kStreams; ++i) {
    CUstream s = nullptr;
    api_.Check(api_.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    streams_.push_back(s);
  }
  api_.Check(api_.cuMemAlloc(&results_dev_, kResultSlots * 8), "cuMemAlloc(checksum slots)");
  void* host = nullptr;
  api_.Check(api_.cuMemHostAlloc(&host, kResultSlots * 8, CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc(checksum slots)");
  results_host_ = static_cast<unsigned*>(host);
  for (int i = kResultSlots - 1; i >= 0; --i) free_slots_.push_back(i);
}

void DeviceState::MakeCurrent() const { api_.Check(api_.cuCtxSetCurrent(ctx_), "cuCtxSetCurrent"); }

CUstream DeviceState::NextStream() { return streams_[next_stream_.fetch_add(1) % streams_.size()]; }

void DeviceState::LoadKernels() {
  std::lock_guard<std::mutex> lock(kernels_mu_);
  if (module_ != nullptr) return;
  CUmodule mod = nullptr;
  api_.Check(api_.cuModuleLoadData(&mod, kKernelsPtx), "cuModuleLoadData(seedcast kernels PTX)");
  api_.Check(api_.cuModuleGetFunction(&sum_fn_, mod, "seedcast_sum32x2"), "cuModuleGetFunction(seedcast_sum32x2)");
  api_.Check(api_.cuModuleGetFunction(&copy_fn_, mod, "seedcast_copy_chunks"),
             "cuModuleGetFunction(seedcast_copy_chunks)");
  module_ = mod;
}

CUfunction DeviceState::SumKernel() {
  LoadKernels();
  return sum_fn_;
}

CUfunction DeviceState::CopyKernel() {
  LoadKernels();
  return copy_fn_;
}

int DeviceState::AcquireResultSlot() {
  std::lock_guard<std::mutex> lock(results_mu_);
  if (free_slots_.empty()) throw NativeError(codes::kCuda, "too many concurrent checksums on one device (max 64)");
  int slot = free_slots_.back();
  free_slots_.pop_back();
  return slot;
}

void DeviceState::ReleaseResultSlot(int slot) {
  std::lock_guard<std::mutex> lock(results_mu_);
  free_slots_.push_back(slot);
}

void DeviceState::EnsureDescriptorArea(size_t bytes) {
  if (bytes <= descriptor_bytes_) return;
  size_t want = descriptor_bytes_ ? descriptor_bytes_ : (1u << 20);
  while (want < bytes) want *= 2;
  if (descriptor_dev_) {
    api_.Check(api_.cuMemFree(descriptor_dev_), "cuMemFree(descriptors)");
    api_.Check(api_.cuMemFreeHost(descriptor_host_), "cuMemFreeHost(descriptors)");
    descriptor_dev_ = 0;
    descriptor_host_ = nullptr;
    descriptor_bytes_ = 0;
  }
  api_.Check(api_.cuMemAlloc(&descriptor_dev_, want), "cuMemAlloc(descriptors)");
  api_.Check(api_.cuMemHostAlloc(&descriptor_host_, want, CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc(descriptors)");
  descriptor_bytes_ = want;
}

}  // namespace seedcast
