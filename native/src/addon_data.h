// Per-environment constructors of the wrapped classes (Node-API instance data).
#pragma once

#include <napi.h>

namespace seedcast {

struct AddonData {
  Napi::FunctionReference device_buffer;
  Napi::FunctionReference pinned_buffer;
  Napi::FunctionReference nccl_communicator;
};

inline AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// Argument helpers shared by the classes: non-negative integers as JS numbers (exact up to 2^53).
uint64_t ArgU64(const Napi::Value& v, const char* name);
int ArgInt(const Napi::Value& v, const char* name);

// A host memory range read or written by a copy: a Buffer/TypedArray or a PinnedBuffer.
struct HostRange {
  uint8_t* data = nullptr;
  size_t bytes = 0;
  bool pinned = false;
};
HostRange ArgHostRange(const Napi::Value& v, const char* name);

}  // namespace seedcast
