#include "nccl_communicator.h"

#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "addon_data.h"
#include "device_buffer.h"
#include "errors.h"
#include "runtime.h"

namespace seedcast {

namespace {

using Clock = std::chrono::steady_clock;

const char* PhaseName(int phase) {
  switch (phase) {
    case CommState::kInitializing: return "initializing";
    case CommState::kReady: return "ready";
    case CommState::kAborted: return "aborted";
    case CommState::kClosed: return "closed";
    default: return "failed";
  }
}

Clock::time_point DeadlineFrom(const Napi::Value& v) {
  uint64_t ms = ArgU64(v, "timeoutMs");
  return Clock::now() + std::chrono::milliseconds(ms);
}

// Aborts the communicator (idempotent). Runs on the communicator's thread only.
void AbortComm(CommState& st, int phase, const std::string& why) {
  if (st.comm != nullptr) {
    const NcclApi& nccl = Runtime::Get().nccl();
    nccl.ncclCommAbort(st.comm);
    st.comm = nullptr;
    // The abort makes NCCL's kernels exit; wait for them before a broadcast's job ends, so its
    // buffers (pinned by the job) are not freed under a kernel that may still write into them.
    if (st.stream != nullptr) {
      const CudaApi& api = Runtime::Get().cuda();
      Runtime::Get().Device(st.device).MakeCurrent();
      api.cuStreamSynchronize(st.stream);
    }
  }
  st.phase = phase;
  if (st.failure.empty()) st.failure = why;
}

// Sleeps a little between polls: spin-free but responsive (deadlines are in seconds).
void PollPause(int iteration) {
  if (iteration < 50) {
    std::this_thread::yield();
  } else if (iteration < 1000) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::string TimeoutMs(Clock::time_point started, Clock::time_point deadline) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - started).count());
}

// Polls ncclCommGetAsyncError until the pending non-blocking call completed. Aborts the
// communicator and throws on an error, the deadline or abort().
void WaitComplete(CommState& st, const char* what, Clock::time_point started, Clock::time_point deadline) {
  const NcclApi& nccl = Runtime::Get().nccl();
  for (int i = 0;; ++i) {
    ncclResult_t state = ncclSuccess;
    ncclResult_t r = nccl.ncclCommGetAsyncError(st.comm, &state);
    if (r != ncclSuccess) state = r;
    if (state == ncclSuccess) return;
    if (state != ncclInProgress) {
      std::string why = std::string(what) + " failed: " + nccl.Describe(state, st.comm);
      AbortComm(st, CommState::kFailed, why);
      throw NativeError(codes::kNccl, why + "; communicator aborted");
    }
    if (st.abort_requested) {
      AbortComm(st, CommState::kAborted, "aborted by request");
      throw NativeError(codes::kAborted, std::string(what) + " interrupted: communicator aborted by request");
    }
    if (Clock::now() >= deadline) {
      std::string why = std::string(what) + " did not complete within " + TimeoutMs(started, deadline) +
                        " ms (a peer never arrived or stopped responding)";
      AbortComm(st, CommState::kAborted, why);
      throw NativeError(codes::kNcclTimeout, why + "; communicator aborted");
    }
    PollPause(i);
  }
}

void RequireReady(const CommState& st) {
  int phase = st.phase;
  if (phase == CommState::kReady) return;
  throw NativeError(phase == CommState::kAborted ? codes::kAborted : codes::kNccl,
                    std::string("communicator is ") + PhaseName(phase) + (st.failure.empty() ? "" : ": " + st.failure));
}

}  // namespace

Napi::Function NcclCommunicator::Define(Napi::Env env) {
  return DefineClass(env, "NcclCommunicator",
                     {
                         InstanceAccessor<&NcclCommunicator::GetRank>("rank"),
                         InstanceAccessor<&NcclCommunicator::GetNranks>("nranks"),
                         InstanceAccessor<&NcclCommunicator::GetDevice>("device"),
                         InstanceAccessor<&NcclCommunicator::GetPhase>("phase"),
                         InstanceMethod<&NcclCommunicator::Broadcast>("broadcast"),
                         InstanceMethod<&NcclCommunicator::Abort>("abort"),
                         InstanceMethod<&NcclCommunicator::Close>("close"),
                     });
}

struct CommParts {
  std::shared_ptr<CommState> state;
  std::shared_ptr<CommThread> thread;
};

NcclCommunicator::NcclCommunicator(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NcclCommunicator>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    ThrowInvalid(info.Env(), "NcclCommunicator cannot be constructed directly: use ncclInit()");
  }
  CommParts* parts = info[0].As<Napi::External<CommParts>>().Data();
  state_ = parts->state;
  thread_ = parts->thread;
}

Napi::Value NcclCommunicator::GetRank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), state_->rank); }
Napi::Value NcclCommunicator::GetNranks(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), state_->nranks); }
Napi::Value NcclCommunicator::GetDevice(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), state_->device); }
Napi::Value NcclCommunicator::GetPhase(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), PhaseName(state_->phase));
}

Napi::Value NcclCommunicator::UniqueId(const Napi::CallbackInfo& info) {
  auto id = std::make_shared<ncclUniqueId>();
  auto job = std::make_unique<Job>();
  job->execute = [id] {
    const NcclApi& nccl = Runtime::Get().nccl();
    nccl.Check(nccl.ncclGetUniqueId(id.get()), "ncclGetUniqueId");
  };
  job->result = [id](Napi::Env env) -> Napi::Value {
    return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(id->internal), sizeof(id->internal));
  };
  return RunOnPool(info.Env(), std::move(job));
}

Napi::Value NcclCommunicator::Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer() || info[0].As<Napi::Buffer<uint8_t>>().Length() != sizeof(ncclUniqueId)) {
    ThrowInvalid(env, "uniqueId must be a Buffer of 128 bytes (ncclUniqueId)");
  }
  ncclUniqueId id;
  std::memcpy(id.internal, info[0].As<Napi::Buffer<uint8_t>>().Data(), sizeof(id));
  int rank = ArgInt(info[1], "rank");
  int nranks = ArgInt(info[2], "nranks");
  int device = ArgInt(info[3], "device");
  if (nranks < 1 || rank >= nranks) ThrowInvalid(env, "need 0 <= rank < nranks");
  Clock::time_point started = Clock::now();
  Clock::time_point deadline = DeadlineFrom(info[4]);
  int min_ctas = kNcclConfigUndefInt, max_ctas = kNcclConfigUndefInt;
  if (info.Length() > 5 && info[5].IsObject()) {
    Napi::Object o = info[5].As<Napi::Object>();
    if (o.Has("minCTAs") && !o.Get("minCTAs").IsUndefined()) min_ctas = ArgInt(o.Get("minCTAs"), "minCTAs");
    if (o.Has("maxCTAs") && !o.Get("maxCTAs").IsUndefined()) max_ctas = ArgInt(o.Get("maxCTAs"), "maxCTAs");
  }

  auto parts = std::make_shared<CommParts>();
  parts->state = std::make_shared<CommState>();
  parts->state->device = device;
  parts->state->rank = rank;
  parts->state->nranks = nranks;
  parts->thread = std::make_shared<CommThread>();

  auto st = parts->state;
  auto job = std::make_unique<Job>();
  job->execute = [st, id, started, deadline, min_ctas, max_ctas] {
    const CudaApi& api = Runtime::Get().cuda();
    const NcclApi& nccl = Runtime::Get().nccl();
    DeviceState& dev = Runtime::Get().Device(st->device);
    dev.MakeCurrent();
    try {
      api.Check(api.cuStreamCreate(&st->stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
      api.Check(api.cuEventCreate(&st->start, CU_EVENT_DEFAULT), "cuEventCreate");
      api.Check(api.cuEventCreate(&st->done, CU_EVENT_DEFAULT), "cuEventCreate");
    } catch (const NativeError& e) {
      st->phase = CommState::kFailed;
      st->failure = e.what();
      throw;
    }
    NcclConfig218 config{};
    config.size = sizeof(config);
    config.magic = 0xcafebeef;
    config.version = 21800;
    // Non-blocking so init honours its deadline and abort(); SEEDCAST_NCCL_BLOCKING=1 makes a
    // blocking communicator instead (diagnostics: compares NCCL's two modes on the same path).
    const char* blocking_env = std::getenv("SEEDCAST_NCCL_BLOCKING");
    config.blocking = (blocking_env != nullptr && std::string(blocking_env) == "1") ? 1 : 0;
    config.cgaClusterSize = kNcclConfigUndefInt;
    config.minCTAs = min_ctas;
    config.maxCTAs = max_ctas;
    config.netName = nullptr;
    config.splitShare = kNcclConfigUndefInt;
    ncclResult_t r = nccl.ncclCommInitRankConfig(&st->comm, st->nranks, id, st->rank, &config);
    if (r != ncclSuccess && r != ncclInProgress) {
      std::string why = "ncclCommInitRankConfig failed: " + nccl.Describe(r, st->comm);
      AbortComm(*st, CommState::kFailed, why);
      throw NativeError(codes::kNccl, why);
    }
    WaitComplete(*st, "ncclCommInitRankConfig", started, deadline);
    st->phase = CommState::kReady;
  };
  job->result = [parts](Napi::Env env) -> Napi::Value {
    auto external = Napi::External<CommParts>::New(env, parts.get());
    return GetAddonData(env).nccl_communicator.New({external});
  };
  return parts->thread->Submit(env, std::move(job));
}

Napi::Value NcclCommunicator::Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) ThrowInvalid(env, "entries must be an array of [DeviceBuffer, offset, bytes]");
  Napi::Array list = info[0].As<Napi::Array>();
  struct Entry {
    std::shared_ptr<DeviceAllocation> buffer;
    uint64_t offset;
    uint64_t bytes;
  };
  std::vector<Entry> entries;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value item = list.Get(i);
    if (!item.IsArray() || item.As<Napi::Array>().Length() != 3) ThrowInvalid(env, "each entry must be [DeviceBuffer, offset, bytes]");
    Napi::Array e = item.As<Napi::Array>();
    Entry entry{DeviceBuffer::From(e.Get(0u), "entry buffer"), ArgU64(e.Get(1u), "offset"), ArgU64(e.Get(2u), "bytes")};
    if (entry.buffer->device != state_->device) ThrowInvalid(env, "broadcast: buffer is on another device than the communicator");
    if (entry.offset > entry.buffer->bytes || entry.bytes > entry.buffer->bytes - entry.offset) {
      ThrowInvalid(env, "broadcast: entry range out of bounds");
    }
    entries.push_back(entry);
  }
  int root = ArgInt(info[1], "root");
  if (root >= state_->nranks) ThrowInvalid(env, "root must be < nranks");
  Clock::time_point started = Clock::now();
  Clock::time_point deadline = DeadlineFrom(info[2]);
  auto st = state_;
  auto ms = std::make_shared<double>(0);
  auto job = std::make_unique<Job>();
  job->execute = [st, entries, root, started, deadline, ms] {
    RequireReady(*st);
    const CudaApi& api = Runtime::Get().cuda();
    const NcclApi& nccl = Runtime::Get().nccl();
    Runtime::Get().Device(st->device).MakeCurrent();
    api.Check(api.cuEventRecord(st->start, st->stream), "cuEventRecord");
    ncclResult_t r = nccl.ncclGroupStart();
    if (r != ncclSuccess) {
      nccl.Check(r, "ncclGroupStart", st->comm);
    }
    std::string failed;
    for (const Entry& e : entries) {
      void* p = reinterpret_cast<void*>(e.buffer->ptr + e.offset);
      r = nccl.ncclBroadcast(p, p, e.bytes, ncclUint8, root, st->comm, st->stream);
      if (r != ncclSuccess && r != ncclInProgress) {
        failed = "ncclBroadcast failed: " + nccl.Describe(r, st->comm);
        break;
      }
    }
    r = nccl.ncclGroupEnd();
    if (!failed.empty() || (r != ncclSuccess && r != ncclInProgress)) {
      if (failed.empty()) failed = "ncclGroupEnd failed: " + nccl.Describe(r, st->comm);
      AbortComm(*st, CommState::kFailed, failed);
      throw NativeError(codes::kNccl, failed + "; communicator aborted");
    }
    WaitComplete(*st, "broadcast (enqueue)", started, deadline);
    api.Check(api.cuEventRecord(st->done, st->stream), "cuEventRecord");
    // The kernels run until every peer took part: poll the event, NCCL's async error, the deadline and abort().
    for (int i = 0;; ++i) {
      CUresult q = api.cuEventQuery(st->done);
      if (q == CUDA_SUCCESS) break;
      if (q != CUDA_ERROR_NOT_READY) {
        std::string why = "broadcast: cuEventQuery failed: " + api.ErrorName(q);
        AbortComm(*st, CommState::kFailed, why);
        throw NativeError(codes::kCuda, why + "; communicator aborted");
      }
      WaitComplete(*st, "broadcast", started, deadline);
      if (Clock::now() >= deadline || st->abort_requested) {
        bool timeout = !st->abort_requested;
        std::string why = timeout ? "broadcast did not complete within " + TimeoutMs(started, deadline) +
                                        " ms (a peer never arrived or stopped responding)"
                                  : "aborted by request";
        AbortComm(*st, CommState::kAborted, why);
        throw NativeError(timeout ? codes::kNcclTimeout : codes::kAborted, "broadcast: " + why + "; communicator aborted");
      }
      PollPause(i);
    }
    float elapsed = 0;
    api.Check(api.cuEventElapsedTime(&elapsed, st->start, st->done), "cuEventElapsedTime");
    *ms = elapsed;
  };
  job->result = [ms](Napi::Env env) { return Napi::Number::New(env, *ms); };
  return thread_->Submit(env, std::move(job));
}

Napi::Value NcclCommunicator::Abort(const Napi::CallbackInfo& info) {
  state_->abort_requested = true;
  auto st = state_;
  auto job = std::make_unique<Job>();
  job->execute = [st] {
    if (st->comm != nullptr) AbortComm(*st, CommState::kAborted, "aborted by request");
    else if (st->phase == CommState::kReady || st->phase == CommState::kInitializing) st->phase = CommState::kAborted;
  };
  return thread_->Submit(info.Env(), std::move(job));
}

Napi::Value NcclCommunicator::Close(const Napi::CallbackInfo& info) {
  Clock::time_point started = Clock::now();
  Clock::time_point deadline = DeadlineFrom(info[0]);
  auto st = state_;
  auto aborted = std::make_shared<bool>(false);
  auto job = std::make_unique<Job>();
  job->execute = [st, started, deadline, aborted] {
    if (st->comm == nullptr) {
      *aborted = st->phase != CommState::kClosed;
      if (st->phase == CommState::kReady) st->phase = CommState::kClosed;
      return;
    }
    const NcclApi& nccl = Runtime::Get().nccl();
    Runtime::Get().Device(st->device).MakeCurrent();
    ncclResult_t r = nccl.ncclCommFinalize(st->comm);
    try {
      if (r != ncclSuccess && r != ncclInProgress) throw NativeError(codes::kNccl, "ncclCommFinalize: " + nccl.Describe(r, st->comm));
      WaitComplete(*st, "ncclCommFinalize", started, deadline);
    } catch (const NativeError&) {
      // WaitComplete already aborted; a failed finalize is aborted here. Either way nothing blocks.
      if (st->comm != nullptr) AbortComm(*st, CommState::kAborted, "finalize failed");
      *aborted = true;
      return;
    }
    nccl.ncclCommDestroy(st->comm);  // after a finalize this is local and cannot wait on peers
    st->comm = nullptr;
    st->phase = CommState::kClosed;
  };
  job->result = [aborted](Napi::Env env) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("aborted", Napi::Boolean::New(env, *aborted));
    return o;
  };
  return thread_->Submit(info.Env(), std::move(job));
}

}  // namespace seedcast
