// One NCCL communicator (one rank on one GPU) with its own OS thread. Created non-blocking
// (ncclConfig_t.blocking = 0) so every step can be polled against a deadline; on a deadline, a
// peer error or abort() the communicator is aborted (ncclCommAbort), never destroyed collectively,
// so nothing waits on a dead peer.
#pragma once

#include <napi.h>

#include <atomic>
#include <chrono>
#include <memory>

#include "comm_thread.h"
#include "nccl_api.h"

namespace seedcast {

struct CommState {
  enum Phase { kInitializing, kReady, kAborted, kClosed, kFailed };
  int device = 0;
  int rank = 0;
  int nranks = 0;
  ncclComm_t comm = nullptr;
  CUstream stream = nullptr;
  CUevent start = nullptr;
  CUevent done = nullptr;
  std::atomic<int> phase{kInitializing};
  std::atomic<bool> abort_requested{false};
  std::string failure;  // why the communicator is unusable
};

class NcclCommunicator : public Napi::ObjectWrap<NcclCommunicator> {
 public:
  static Napi::Function Define(Napi::Env env);
  // ncclInit(uniqueId: Buffer(128), rank, nranks, device, timeoutMs, options?) -> Promise<NcclCommunicator>
  static Napi::Value Init(const Napi::CallbackInfo& info);
  // ncclUniqueId() -> Promise<Buffer(128)>
  static Napi::Value UniqueId(const Napi::CallbackInfo& info);

  explicit NcclCommunicator(const Napi::CallbackInfo& info);

 private:
  using Clock = std::chrono::steady_clock;

  Napi::Value GetRank(const Napi::CallbackInfo& info);
  Napi::Value GetNranks(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetPhase(const Napi::CallbackInfo& info);
  // broadcast(entries: [DeviceBuffer, offset, bytes][], root, timeoutMs) -> Promise<gpuMs>
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  // abort() -> Promise<void>: stops whatever runs now (at its next poll) and aborts the communicator.
  Napi::Value Abort(const Napi::CallbackInfo& info);
  // close(timeoutMs) -> Promise<{aborted}>: ncclCommFinalize within the deadline, else abort.
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<CommState> state_;
  std::shared_ptr<CommThread> thread_;
};

}  // namespace seedcast
