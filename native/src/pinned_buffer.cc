#include "pinned_buffer.h"

#include "addon_data.h"
#include "errors.h"
#include "promise_worker.h"
#include "runtime.h"

namespace seedcast {

PinnedAllocation::~PinnedAllocation() {
  if (ptr == nullptr) return;
  try {
    const CudaApi& api = Runtime::Get().cuda();
    api.cuMemFreeHost(ptr);
  } catch (...) {
  }
}

Napi::Function PinnedBuffer::Define(Napi::Env env) {
  return DefineClass(env, "PinnedBuffer",
                     {
                         InstanceAccessor<&PinnedBuffer::GetBytes>("bytes"),
                         InstanceAccessor<&PinnedBuffer::GetFreed>("freed"),
                         InstanceMethod<&PinnedBuffer::View>("view"),
                         InstanceMethod<&PinnedBuffer::Free>("free"),
                     });
}

PinnedBuffer::PinnedBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PinnedBuffer>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    ThrowInvalid(info.Env(), "PinnedBuffer cannot be constructed directly: use allocPinned()");
  }
  allocation_ = *info[0].As<Napi::External<std::shared_ptr<PinnedAllocation>>>().Data();
}

bool PinnedBuffer::Is(const Napi::Value& value) {
  return value.IsObject() && value.As<Napi::Object>().InstanceOf(GetAddonData(value.Env()).pinned_buffer.Value());
}

Napi::Value PinnedBuffer::Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t bytes = ArgU64(info[0], "bytes");
  int device = info.Length() > 1 && !info[1].IsUndefined() ? ArgInt(info[1], "device") : 0;
  if (bytes == 0) ThrowInvalid(env, "bytes must be > 0");
  auto holder = std::make_shared<std::shared_ptr<PinnedAllocation>>();
  auto job = std::make_unique<Job>();
  job->execute = [bytes, device, holder] {
    const CudaApi& api = Runtime::Get().cuda();
    // cuMemHostAlloc needs a current context; PORTABLE makes the memory pinned for every context.
    Runtime::Get().Device(device).MakeCurrent();
    auto alloc = std::make_shared<PinnedAllocation>();
    api.Check(api.cuMemHostAlloc(&alloc->ptr, bytes, CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc");
    alloc->bytes = bytes;
    *holder = alloc;
  };
  job->result = [holder](Napi::Env env) -> Napi::Value {
    auto external = Napi::External<std::shared_ptr<PinnedAllocation>>::New(env, holder.get());
    return GetAddonData(env).pinned_buffer.New({external});
  };
  return RunOnPool(env, std::move(job));
}

Napi::Value PinnedBuffer::GetBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(allocation_ ? allocation_->bytes : 0));
}

Napi::Value PinnedBuffer::GetFreed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !allocation_); }

Napi::Value PinnedBuffer::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!allocation_) ThrowInvalid(env, "PinnedBuffer was freed");
  uint64_t offset = info.Length() > 0 && !info[0].IsUndefined() ? ArgU64(info[0], "offset") : 0;
  uint64_t bytes = info.Length() > 1 && !info[1].IsUndefined() ? ArgU64(info[1], "bytes") : allocation_->bytes - std::min<uint64_t>(offset, allocation_->bytes);
  if (offset > allocation_->bytes || bytes > allocation_->bytes - offset) ThrowInvalid(env, "view: range out of bounds");
  auto* keep = new std::shared_ptr<PinnedAllocation>(allocation_);
  return Napi::Buffer<uint8_t>::New(
      env, static_cast<uint8_t*>(allocation_->ptr) + offset, bytes,
      [](Napi::Env, uint8_t*, std::shared_ptr<PinnedAllocation>* hint) { delete hint; }, keep);
}

Napi::Value PinnedBuffer::Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<PinnedAllocation> alloc = std::move(allocation_);
  auto job = std::make_unique<Job>();
  // Drops this object's reference on a worker thread; views still alive keep the memory until collected.
  job->execute = [alloc]() mutable { alloc.reset(); };
  return RunOnPool(env, std::move(job));
}

}  // namespace seedcast
