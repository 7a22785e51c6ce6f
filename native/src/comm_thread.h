// A dedicated OS thread for one NCCL communicator: NCCL calls block (init waits for every rank, a
// broadcast waits for its peers), so they never run on the JS thread or on libuv's small pool.
// Jobs run in order; each settles its promise on the JS thread through a thread-safe function.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "promise_worker.h"

namespace seedcast {

class CommThread {
 public:
  CommThread();
  ~CommThread();  // stops after the queued jobs; detaches if a job is still blocked

  Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job);

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace seedcast
