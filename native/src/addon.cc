// Module entry: library opening, device queries and the factories of the wrapped classes.
#include <napi.h>

#include <cmath>
#include <memory>

#include "addon_data.h"
#include "device_buffer.h"
#include "errors.h"
#include "host_memory.h"
#include "nccl_communicator.h"
#include "pinned_buffer.h"
#include "promise_worker.h"
#include "runtime.h"

namespace seedcast {

uint64_t ArgU64(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) ThrowInvalid(v.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) {
    ThrowInvalid(v.Env(), std::string(name) + " must be a non-negative safe integer");
  }
  return static_cast<uint64_t>(d);
}

int ArgInt(const Napi::Value& v, const char* name) {
  uint64_t x = ArgU64(v, name);
  if (x > 0x7fffffff) ThrowInvalid(v.Env(), std::string(name) + " is too large");
  return static_cast<int>(x);
}

HostRange ArgHostRange(const Napi::Value& v, const char* name) {
  HostRange range;
  if (PinnedBuffer::Is(v)) {
    auto alloc = PinnedBuffer::Unwrap(v)->allocation();
    if (!alloc) ThrowInvalid(v.Env(), std::string(name) + ": PinnedBuffer was freed");
    range.data = static_cast<uint8_t*>(alloc->ptr);
    range.bytes = alloc->bytes;
    range.pinned = true;
    return range;
  }
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    range.data = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    range.bytes = t.ByteLength();
    return range;
  }
  ThrowInvalid(v.Env(), std::string(name) + " must be a Buffer, a Uint8Array or a PinnedBuffer");
}

namespace {

LibrarySearch ParseSearch(const Napi::Value& v) {
  LibrarySearch s;
  if (!v.IsObject()) return s;
  Napi::Object o = v.As<Napi::Object>();
  if (o.Get("override").IsString()) s.override_path = o.Get("override").As<Napi::String>();
  if (o.Get("loadedPrefix").IsString()) s.loaded_prefix = o.Get("loadedPrefix").As<Napi::String>();
  auto strings = [&](const char* key, std::vector<std::string>* out) {
    Napi::Value list = o.Get(key);
    if (!list.IsArray()) return;
    Napi::Array a = list.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      if (a.Get(i).IsString()) out->push_back(a.Get(i).As<Napi::String>());
    }
  };
  strings("candidates", &s.candidates);
  strings("systemNames", &s.system_names);
  return s;
}

Napi::Object StatusObject(Napi::Env env, const LibraryStatus& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", Napi::Boolean::New(env, st.ok));
  o.Set("path", st.path.empty() ? env.Null() : Napi::String::New(env, st.path));
  o.Set("how", st.how.empty() ? env.Null() : Napi::String::New(env, st.how));
  if (!st.ok) {
    o.Set("errorCode", Napi::String::New(env, st.error_code));
    o.Set("error", Napi::String::New(env, st.error));
  }
  Napi::Array attempts = Napi::Array::New(env, st.attempts.size());
  for (size_t i = 0; i < st.attempts.size(); ++i) {
    Napi::Object a = Napi::Object::New(env);
    a.Set("path", st.attempts[i].path);
    if (!st.attempts[i].error.empty()) a.Set("error", st.attempts[i].error);
    attempts.Set(static_cast<uint32_t>(i), a);
  }
  o.Set("attempts", attempts);
  return o;
}

Napi::Value StatusValue(Napi::Env env) {
  Runtime& rt = Runtime::Get();
  Napi::Object o = Napi::Object::New(env);
  o.Set("opened", Napi::Boolean::New(env, rt.opened()));
  if (!rt.opened()) return o;
  Napi::Object cuda = StatusObject(env, rt.cuda_status());
  cuda.Set("driverVersion", Napi::Number::New(env, rt.driver_version()));
  cuda.Set("deviceCount", Napi::Number::New(env, rt.device_count()));
  o.Set("cuda", cuda);
  Napi::Object nccl = StatusObject(env, rt.nccl_status());
  nccl.Set("version", Napi::Number::New(env, rt.nccl_version()));
  o.Set("nccl", nccl);
  return o;
}

Napi::Value OpenLibraries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  LibrarySearch cuda = ParseSearch(options.Get("cuda"));
  LibrarySearch nccl = ParseSearch(options.Get("nccl"));
  auto job = std::make_unique<Job>();
  job->execute = [cuda, nccl] { Runtime::Get().Open(cuda, nccl); };
  job->result = [](Napi::Env env) { return StatusValue(env); };
  return RunOnPool(env, std::move(job));
}

Napi::Value Status(const Napi::CallbackInfo& info) { return StatusValue(info.Env()); }

struct DeviceInfo {
  int ordinal;
  std::string name;
  std::string pci_bus_id;
  size_t total = 0;
  int cc_major = 0, cc_minor = 0, sm_count = 0;
};

Napi::Value Devices(const Napi::CallbackInfo& info) {
  auto out = std::make_shared<std::vector<DeviceInfo>>();
  auto job = std::make_unique<Job>();
  job->execute = [out] {
    const CudaApi& api = Runtime::Get().cuda();
    for (int i = 0; i < Runtime::Get().device_count(); ++i) {
      DeviceInfo d{i, "", "", 0, 0, 0, 0};
      CUdevice dev = 0;
      api.Check(api.cuDeviceGet(&dev, i), "cuDeviceGet");
      char buf[256] = {0};
      api.Check(api.cuDeviceGetName(buf, sizeof(buf) - 1, dev), "cuDeviceGetName");
      d.name = buf;
      char bus[64] = {0};
      if (api.cuDeviceGetPCIBusId(bus, sizeof(bus) - 1, dev) == CUDA_SUCCESS) d.pci_bus_id = bus;
      api.Check(api.cuDeviceTotalMem(&d.total, dev), "cuDeviceTotalMem");
      api.cuDeviceGetAttribute(&d.cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
      api.cuDeviceGetAttribute(&d.cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
      api.cuDeviceGetAttribute(&d.sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
      out->push_back(d);
    }
  };
  job->result = [out](Napi::Env env) -> Napi::Value {
    Napi::Array list = Napi::Array::New(env, out->size());
    for (size_t i = 0; i < out->size(); ++i) {
      const DeviceInfo& d = (*out)[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("ordinal", d.ordinal);
      o.Set("name", d.name);
      o.Set("pciBusId", d.pci_bus_id);
      o.Set("totalBytes", static_cast<double>(d.total));
      o.Set("computeCapability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor));
      o.Set("multiprocessors", d.sm_count);
      list.Set(static_cast<uint32_t>(i), o);
    }
    return list;
  };
  return RunOnPool(info.Env(), std::move(job));
}

Napi::Value MemInfo(const Napi::CallbackInfo& info) {
  int device = ArgInt(info[0], "device");
  auto out = std::make_shared<std::pair<size_t, size_t>>(0, 0);
  auto job = std::make_unique<Job>();
  job->execute = [device, out] {
    const CudaApi& api = Runtime::Get().cuda();
    Runtime::Get().Device(device).MakeCurrent();
    api.Check(api.cuMemGetInfo(&out->first, &out->second), "cuMemGetInfo");
  };
  job->result = [out](Napi::Env env) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("freeBytes", static_cast<double>(out->first));
    o.Set("totalBytes", static_cast<double>(out->second));
    return o;
  };
  return RunOnPool(info.Env(), std::move(job));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function device_buffer = DeviceBuffer::Define(env);
  Napi::Function pinned_buffer = PinnedBuffer::Define(env);
  Napi::Function communicator = NcclCommunicator::Define(env);
  data->device_buffer = Napi::Persistent(device_buffer);
  data->pinned_buffer = Napi::Persistent(pinned_buffer);
  data->nccl_communicator = Napi::Persistent(communicator);

  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  exports.Set("openLibraries", Napi::Function::New(env, OpenLibraries, "openLibraries"));
  exports.Set("status", Napi::Function::New(env, Status, "status"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  exports.Set("memInfo", Napi::Function::New(env, MemInfo, "memInfo"));
  exports.Set("allocDevice", Napi::Function::New(env, DeviceBuffer::Alloc, "allocDevice"));
  exports.Set("openIpcHandle", Napi::Function::New(env, DeviceBuffer::OpenIpc, "openIpcHandle"));
  exports.Set("copySegments", Napi::Function::New(env, DeviceBuffer::CopySegments, "copySegments"));
  exports.Set("allocPinned", Napi::Function::New(env, PinnedBuffer::Alloc, "allocPinned"));
  exports.Set("ncclUniqueId", Napi::Function::New(env, NcclCommunicator::UniqueId, "ncclUniqueId"));
  exports.Set("ncclInit", Napi::Function::New(env, NcclCommunicator::Init, "ncclInit"));
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("sum32x2", Napi::Function::New(env, HostSum32x2, "sum32x2"));
  exports.Set("sum32x2Async", Napi::Function::New(env, HostSum32x2Async, "sum32x2Async"));
  exports.Set("DeviceBuffer", device_buffer);
  exports.Set("PinnedBuffer", pinned_buffer);
  exports.Set("NcclCommunicator", communicator);
  return exports;
}

}  // namespace

}  // namespace seedcast

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return seedcast::Init(env, exports); }

NODE_API_MODULE(seedcast_native, InitModule)
