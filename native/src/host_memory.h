// Host staging without copies: mapped slot files and the host sum32x2 (host_memory.cc).
#pragma once

#include <napi.h>

namespace seedcast {

Napi::Value MapFile(const Napi::CallbackInfo& info);
Napi::Value HostSum32x2(const Napi::CallbackInfo& info);
Napi::Value HostSum32x2Async(const Napi::CallbackInfo& info);

}  // namespace seedcast
