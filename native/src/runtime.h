// Process-wide state: the loaded CUDA driver and NCCL libraries (opened once) and the per-GPU state.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_api.h"
#include "device_state.h"
#include "nccl_api.h"

namespace seedcast {

struct LibraryStatus {
  bool ok = false;
  std::string path;
  std::string how;
  std::string error_code;
  std::string error;
  std::vector<LibraryAttempt> attempts;
};

class Runtime {
 public:
  static Runtime& Get();

  // Opens both libraries once (later calls return the first result). Runs on a worker thread:
  // dlopen and cuInit can take seconds on a cold driver.
  void Open(const LibrarySearch& cuda, const LibrarySearch& nccl);

  bool opened() const;
  LibraryStatus cuda_status() const;
  LibraryStatus nccl_status() const;
  int driver_version() const { return driver_version_; }
  int device_count() const { return device_count_; }
  int nccl_version() const { return nccl_.version; }

  // Throw SEEDCAST_ERR_NO_CUDA / _NO_NCCL with the recorded reason when unavailable.
  const CudaApi& cuda() const;
  const NcclApi& nccl() const;
  DeviceState& Device(int ordinal);

 private:
  Runtime() = default;

  mutable std::mutex mu_;
  bool opened_ = false;
  CudaApi cuda_;
  NcclApi nccl_;
  LibraryStatus cuda_status_;
  LibraryStatus nccl_status_;
  int driver_version_ = 0;
  int device_count_ = 0;
  std::vector<std::unique_ptr<DeviceState>> devices_;
};

}  // namespace seedcast
