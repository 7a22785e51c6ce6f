#include "promise_worker.h"

#include "errors.h"

namespace seedcast {

void Job::Run() {
  try {
    execute();
  } catch (const NativeError& e) {
    failed = true;
    error_code = e.code();
    error_message = e.what();
  } catch (const std::exception& e) {
    failed = true;
    error_code = codes::kCuda;
    error_message = std::string("native: ") + e.what();
  }
}

void Job::Keep(const Napi::Object& object) { keep_alive.push_back(Napi::Persistent(object)); }

void Job::Settle(Napi::Env env, Napi::Promise::Deferred& deferred) {
  Napi::HandleScope scope(env);
  if (failed) {
    deferred.Reject(ToJsError(env, error_code, error_message).Value());
    return;
  }
  try {
    deferred.Resolve(result ? result(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    deferred.Reject(e.Value());
  }
}

namespace {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::unique_ptr<Job> job)
      : Napi::AsyncWorker(env, "seedcast"), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { job_->Run(); }
  void OnOK() override { job_->Settle(Env(), deferred_); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<Job> job_;
};

}  // namespace

Napi::Promise RunOnPool(Napi::Env env, std::unique_ptr<Job> job) {
  auto* worker = new PromiseWorker(env, std::move(job));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace seedcast
