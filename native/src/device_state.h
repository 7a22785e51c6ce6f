// Per-GPU state shared by every operation on that GPU: the retained primary context (the one
// PyTorch and NCCL use too), a small pool of non-blocking streams, the JIT-loaded kernels and
// scratch memory for checksum results and copy descriptors.
#pragma once

#include <atomic>
#include <mutex>
#include <vector>

#include "cuda_api.h"

namespace seedcast {

class DeviceState {
 public:
  DeviceState(const CudaApi& api, int ordinal);

  // Makes this GPU's primary context current on the calling thread (worker threads are shared).
  void MakeCurrent() const;
  CUstream NextStream();
  // Loads the embedded PTX once (JIT) and returns the kernels.
  CUfunction SumKernel();
  CUfunction CopyKernel();

  int ordinal() const { return ordinal_; }
  int sm_count() const { return sm_count_; }
  CUcontext context() const { return ctx_; }

  // Scratch memory: one slot of 8 bytes per concurrent checksum, one descriptor area per device.
  int AcquireResultSlot();
  void ReleaseResultSlot(int slot);
  CUdeviceptr ResultSlotDevice(int slot) const { return results_dev_ + static_cast<CUdeviceptr>(slot) * 8; }
  unsigned* ResultSlotHost(int slot) const { return results_host_ + slot * 2; }

  // Descriptor upload area; hold descriptor_mutex() while using it.
  std::mutex& descriptor_mutex() { return descriptor_mu_; }
  void EnsureDescriptorArea(size_t bytes);
  CUdeviceptr descriptor_dev() const { return descriptor_dev_; }
  void* descriptor_host() const { return descriptor_host_; }

 private:
  void LoadKernels();

  const CudaApi& api_;
  int ordinal_;
  CUdevice device_ = 0;
  CUcontext ctx_ = nullptr;
  int sm_count_ = 0;
  std::vector<CUstream> streams_;
  std::atomic<unsigned> next_stream_{0};

  std::mutex kernels_mu_;
  CUmodule module_ = nullptr;
  CUfunction sum_fn_ = nullptr;
  CUfunction copy_fn_ = nullptr;

  static constexpr int kResultSlots = 64;
  std::mutex results_mu_;
  std::vector<int> free_slots_;
  CUdeviceptr results_dev_ = 0;
  unsigned* results_host_ = nullptr;

  std::mutex descriptor_mu_;
  size_t descriptor_bytes_ = 0;
  CUdeviceptr descriptor_dev_ = 0;
  void* descriptor_host_ = nullptr;
};

}  // namespace seedcast
