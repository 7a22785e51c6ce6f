// GPU memory owned by the addon (cuMemAlloc: the base of an allocation, so it can be exported with
// CUDA IPC) or opened from another process's IPC handle. All operations run on worker threads and
// return promises; copies are enqueued on a device stream and timed with CUDA events.
#pragma once

#include <napi.h>

#include <memory>

#include "cuda_api.h"

namespace seedcast {

struct DeviceAllocation {
  int device = 0;
  CUdeviceptr ptr = 0;
  size_t bytes = 0;
  bool ipc_opened = false;  // opened from a handle: closed, not freed
  ~DeviceAllocation();
  void Release();  // frees or closes (idempotent); makes the device's context current first
};

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<DeviceAllocation> allocation);
  static Napi::Value Alloc(const Napi::CallbackInfo& info);          // allocDevice(device, bytes)
  static Napi::Value OpenIpc(const Napi::CallbackInfo& info);        // openIpcHandle(device, handle)
  static Napi::Value CopySegments(const Napi::CallbackInfo& info);   // copySegments(device, buffers, table)
  // The live allocation behind a JS DeviceBuffer (throws SEEDCAST_ERR_INVALID when freed).
  static std::shared_ptr<DeviceAllocation> From(const Napi::Value& value, const char* name);

  explicit DeviceBuffer(const Napi::CallbackInfo& info);

 private:
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetBytes(const Napi::CallbackInfo& info);
  Napi::Value GetAddress(const Napi::CallbackInfo& info);
  Napi::Value GetFreed(const Napi::CallbackInfo& info);
  Napi::Value CopyFromHost(const Napi::CallbackInfo& info);    // (src, srcOffset, dstOffset, bytes)
  Napi::Value CopyToHost(const Napi::CallbackInfo& info);      // (dst, srcOffset, dstOffset, bytes)
  Napi::Value CopyFromDevice(const Napi::CallbackInfo& info);  // (src, srcOffset, dstOffset, bytes)
  Napi::Value Fill(const Napi::CallbackInfo& info);            // (value, offset, bytes)
  Napi::Value Checksum(const Napi::CallbackInfo& info);        // (offset, bytes) -> {a, c, gpuMs}
  Napi::Value IpcHandle(const Napi::CallbackInfo& info);       // () -> Buffer(64)
  Napi::Value Free(const Napi::CallbackInfo& info);

  std::shared_ptr<DeviceAllocation> Live(Napi::Env env) const;

  std::shared_ptr<DeviceAllocation> allocation_;
};

}  // namespace seedcast
