// Runs one blocking call off the JS thread and settles a promise with its outcome. Arguments are
// copied into the job (plain C++ values, shared_ptrs, references that keep JS objects alive)
// before it runs; Execute never touches Node-API.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace seedcast {

struct Job {
  std::function<void()> execute;                       // worker thread; may throw NativeError
  std::function<Napi::Value(Napi::Env)> result;        // JS thread; absent -> undefined
  std::vector<Napi::ObjectReference> keep_alive;       // JS objects the job reads or writes
  std::string error_code;
  std::string error_message;
  bool failed = false;

  void Run();  // calls execute, records a failure
  void Settle(Napi::Env env, Napi::Promise::Deferred& deferred);
  void Keep(const Napi::Object& object);
};

// Queues the job on libuv's thread pool; returns the promise.
Napi::Promise RunOnPool(Napi::Env env, std::unique_ptr<Job> job);

}  // namespace seedcast
