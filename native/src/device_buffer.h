// GPU memory owned by the addon (cuMemAlloc: the base of an allocation, so it can be exported with
// CUDA IPC) or opened from another process's IPC handle. All operations run on worker threads and
// return promises; copies are enqueued on a device stream and timed with CUDA events.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>

#include "cuda_api.h"

namespace seedcast {

// Every operation pins the allocation from the moment it is called (JS thread) until its job is
// destroyed, i.e. after its stream work completed (copies and kernels wait for their events, a
// broadcast for its event or for the communicator's abort). free() never frees memory that a
// pinned operation may still touch: it marks the allocation (new operations are refused) and the
// memory goes back when the last pin is dropped, on whichever thread drops it.
struct DeviceAllocation {
  int device = 0;
  CUdeviceptr ptr = 0;
  size_t bytes = 0;
  bool ipc_opened = false;  // opened from a handle: closed, not freed
  ~DeviceAllocation();
  void Release();         // frees or closes now (idempotent); makes the device's context current first
  void RequestRelease();  // Release() now if nothing is pinned, else when the last pin is dropped
  bool TryPin();          // false once freed or free was requested
  void Unpin();
  bool ReleaseRequested();

 private:
  std::mutex mu_;
  int pins_ = 0;
  bool release_requested_ = false;
};

// A reference to an allocation that holds a pin while it lives (see DeviceAllocation); copies share it.
std::shared_ptr<DeviceAllocation> PinAllocation(const std::shared_ptr<DeviceAllocation>& allocation);

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
