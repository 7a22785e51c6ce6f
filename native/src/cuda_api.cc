#include "cuda_api.h"

#include <dlfcn.h>

#include "errors.h"

namespace seedcast {

namespace {

template <typename F>
bool Resolve(void* lib, const char* name, F* out, std::string* missing) {
  void* sym = dlsym(lib, name);
  if (sym == nullptr) {
    if (!missing->empty()) *missing += ", ";
    *missing += name;
    return false;
  }
  *out = reinterpret_cast<F>(sym);
  return true;
}

}  // namespace

bool CudaApi::Load(const LibrarySearch& search, std::string* error) {
  void* lib = LibraryLoader::Open(search, &path, &how, &attempts);
  if (lib == nullptr) {
    *error = "libcuda (the NVIDIA driver's CUDA library) could not be loaded";
    return false;
  }
  std::string missing;
  Resolve(lib, "cuInit", &cuInit, &missing);
  Resolve(lib, "cuDriverGetVersion", &cuDriverGetVersion, &missing);
  Resolve(lib, "cuDeviceGetCount", &cuDeviceGetCount, &missing);
  Resolve(lib, "cuDeviceGet", &cuDeviceGet, &missing);
  Resolve(lib, "cuDeviceGetName", &cuDeviceGetName, &missing);
  Resolve(lib, "cuDeviceTotalMem_v2", &cuDeviceTotalMem, &missing);
  Resolve(lib, "cuDeviceGetAttribute", &cuDeviceGetAttribute, &missing);
  Resolve(lib, "cuDeviceGetPCIBusId", &cuDeviceGetPCIBusId, &missing);
  Resolve(lib, "cuDevicePrimaryCtxRetain", &cuDevicePrimaryCtxRetain, &missing);
  Resolve(lib, "cuCtxSetCurrent", &cuCtxSetCurrent, &missing);
  Resolve(lib, "cuMemGetInfo_v2", &cuMemGetInfo, &missing);
  Resolve(lib, "cuMemAlloc_v2", &cuMemAlloc, &missing);
  Resolve(lib, "cuMemFree_v2", &cuMemFree, &missing);
  Resolve(lib, "cuMemHostAlloc", &cuMemHostAlloc, &missing);
  Resolve(lib, "cuMemFreeHost", &cuMemFreeHost, &missing);
  Resolve(lib, "cuMemGetAddressRange_v2", &cuMemGetAddressRange, &missing);
  Resolve(lib, "cuMemcpyHtoDAsync_v2", &cuMemcpyHtoDAsync, &missing);
  Resolve(lib, "cuMemcpyDtoHAsync_v2", &cuMemcpyDtoHAsync, &missing);
  Resolve(lib, "cuMemcpyDtoDAsync_v2", &cuMemcpyDtoDAsync, &missing);
  Resolve(lib, "cuMemsetD8Async", &cuMemsetD8Async, &missing);
  Resolve(lib, "cuStreamCreate", &cuStreamCreate, &missing);
  Resolve(lib, "cuStreamSynchronize", &cuStreamSynchronize, &missing);
  Resolve(lib, "cuEventCreate", &cuEventCreate, &missing);
  Resolve(lib, "cuEventRecord", &cuEventRecord, &missing);
  Resolve(lib, "cuEventQuery", &cuEventQuery, &missing);
  Resolve(lib, "cuEventSynchronize", &cuEventSynchronize, &missing);
  Resolve(lib, "cuEventElapsedTime", &cuEventElapsedTime, &missing);
  Resolve(lib, "cuEventDestroy_v2", &cuEventDestroy, &missing);
  Resolve(lib, "cuIpcGetMemHandle", &cuIpcGetMemHandle, &missing);
  Resolve(lib, "cuIpcOpenMemHandle_v2", &cuIpcOpenMemHandle, &missing);
  Resolve(lib, "cuIpcCloseMemHandle", &cuIpcCloseMemHandle, &missing);
  Resolve(lib, "cuModuleLoadData", &cuModuleLoadData, &missing);
  Resolve(lib, "cuModuleGetFunction", &cuModuleGetFunction, &missing);
  Resolve(lib, "cuLaunchKernel", &cuLaunchKernel, &missing);
  Resolve(lib, "cuGetErrorName", &cuGetErrorName, &missing);
  Resolve(lib, "cuGetErrorString", &cuGetErrorString, &missing);
  if (!missing.empty()) {
    *error = path + " lacks CUDA driver symbols (driver too old?): " + missing;
    return false;
  }
  return true;
}

std::string CudaApi::ErrorName(CUresult r) const {
  const char* name = nullptr;
  const char* text = nullptr;
  if (cuGetErrorName) cuGetErrorName(r, &name);
  if (cuGetErrorString) cuGetErrorString(r, &text);
  std::string out = name ? name : ("CUDA error " + std::to_string(r));
  if (text) out += std::string(" (") + text + ")";
  return out;
}

void CudaApi::Check(CUresult r, const char* what) const {
  if (r == CUDA_SUCCESS) return;
  throw NativeError(codes::kCuda, std::string(what) + " failed: " + ErrorName(r));
}

}  // namespace seedcast
