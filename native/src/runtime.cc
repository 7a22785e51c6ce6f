#include "runtime.h"

#include "errors.h"

namespace seedcast {

Runtime& Runtime::Get() {
  // Leaked on purpose: worker and communicator threads may still use it while the process exits.
  static Runtime* runtime = new Runtime();
  return *runtime;
}

void Runtime::Open(const LibrarySearch& cuda, const LibrarySearch& nccl) {
  std::lock_guard<std::mutex> lock(mu_);
  if (opened_) return;
  opened_ = true;

  std::string error;
  if (!cuda_.Load(cuda, &error)) {
    cuda_status_.error_code = codes::kNoCuda;
    cuda_status_.error = error;
  } else {
    CUresult r = cuda_.cuInit(0);
    if (r == CUDA_ERROR_NO_DEVICE) {
      cuda_status_.error_code = codes::kNoCuda;
      cuda_status_.error = "cuInit: no CUDA-capable GPU is visible to this process (" + cuda_.ErrorName(r) +
                           "); check the pod's GPU request / NVIDIA_VISIBLE_DEVICES";
    } else if (r != CUDA_SUCCESS) {
      cuda_status_.error_code = codes::kNoCuda;
      cuda_status_.error = "cuInit failed: " + cuda_.ErrorName(r);
    } else {
      cuda_.cuDriverGetVersion(&driver_version_);
      r = cuda_.cuDeviceGetCount(&device_count_);
      if (r != CUDA_SUCCESS || device_count_ == 0) {
        cuda_status_.error_code = codes::kNoCuda;
        cuda_status_.error = "no CUDA device visible (cuDeviceGetCount: " + cuda_.ErrorName(r) + ")";
        device_count_ = 0;
      } else {
        cuda_status_.ok = true;
        devices_.resize(device_count_);
      }
    }
  }
  cuda_status_.path = cuda_.path;
  cuda_status_.how = cuda_.how;
  cuda_status_.attempts = cuda_.attempts;

  std::string code;
  error.clear();
  if (!nccl_.Load(nccl, &error, &code)) {
    nccl_status_.error_code = code;
    nccl_status_.error = error;
  } else {
    nccl_status_.ok = true;
  }
  nccl_status_.path = nccl_.path;
  nccl_status_.how = nccl_.how;
  nccl_status_.attempts = nccl_.attempts;
}

bool Runtime::opened() const {
  std::lock_guard<std::mutex> lock(mu_);
  return opened_;
}

LibraryStatus Runtime::cuda_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cuda_status_;
}

LibraryStatus Runtime::nccl_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return nccl_status_;
}

const CudaApi& Runtime::cuda() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!opened_) throw NativeError(codes::kNoCuda, "GPU libraries not opened yet (call openLibraries first)");
  if (!cuda_status_.ok) throw NativeError(cuda_status_.error_code, cuda_status_.error);
  return cuda_;
}

const NcclApi& Runtime::nccl() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!opened_) throw NativeError(codes::kNoNccl, "GPU libraries not opened yet (call openLibraries first)");
  if (!nccl_status_.ok) throw NativeError(nccl_status_.error_code, nccl_status_.error);
  return nccl_;
}

DeviceState& Runtime::Device(int ordinal) {
  const CudaApi& api = cuda();
  std::lock_guard<std::mutex> lock(mu_);
  if (ordinal < 0 || ordinal >= device_count_) {
    throw NativeError(codes::kInvalid, "device " + std::to_string(ordinal) + " out of range (" +
                                           std::to_string(device_count_) + " visible)");
  }
  if (!devices_[ordinal]) devices_[ordinal] = std::make_unique<DeviceState>(api, ordinal);
  return *devices_[ordinal];
}

}  // namespace seedcast
