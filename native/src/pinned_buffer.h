// Page-locked host memory (cuMemHostAlloc, portable to every context): the fast path between the GPU
// and sockets or files. view() exposes it to JS without a copy; the memory is released only when
// free() was called and no view is left, so a view can never point at freed memory.
#pragma once

#include <napi.h>

#include <memory>

namespace seedcast {

struct PinnedAllocation {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~PinnedAllocation();
};

class PinnedBuffer : public Napi::ObjectWrap<PinnedBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Value Alloc(const Napi::CallbackInfo& info);  // allocPinned(bytes, device)
  static bool Is(const Napi::Value& value);
  static PinnedBuffer* Unwrap(const Napi::Value& value) { return Napi::ObjectWrap<PinnedBuffer>::Unwrap(value.As<Napi::Object>()); }

  explicit PinnedBuffer(const Napi::CallbackInfo& info);
  std::shared_ptr<PinnedAllocation> allocation() const { return allocation_; }

 private:
  Napi::Value GetBytes(const Napi::CallbackInfo& info);
  Napi::Value GetFreed(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);  // (offset, bytes) -> Buffer sharing the memory
  Napi::Value Free(const Napi::CallbackInfo& info);

  std::shared_ptr<PinnedAllocation> allocation_;
};

}  // namespace seedcast
