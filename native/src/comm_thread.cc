#include "comm_thread.h"

namespace seedcast {

namespace {

struct Pending {
  std::unique_ptr<Job> job;
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
};

}  // namespace

struct CommThread::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending*> queue;
  bool stopping = false;
};

CommThread::CommThread() : shared_(std::make_shared<Shared>()) {
  std::shared_ptr<Shared> shared = shared_;
  std::thread([shared] {
    for (;;) {
      Pending* pending = nullptr;
      {
        std::unique_lock<std::mutex> lock(shared->mu);
        shared->cv.wait(lock, [&] { return shared->stopping || !shared->queue.empty(); });
        if (shared->queue.empty()) return;  // stopping and drained
        pending = shared->queue.front();
        shared->queue.pop_front();
      }
      pending->job->Run();
      Napi::ThreadSafeFunction tsfn = pending->tsfn;
      tsfn.BlockingCall(pending, [](Napi::Env env, Napi::Function, Pending* p) {
        p->job->Settle(env, p->deferred);
        delete p;  // on the JS thread: releases the job's references there
      });
      tsfn.Release();
    }
  }).detach();
}

CommThread::~CommThread() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->stopping = true;
  shared_->cv.notify_all();
}

Napi::Promise CommThread::Submit(Napi::Env env, std::unique_ptr<Job> job) {
  auto* pending = new Pending{std::move(job), Napi::Promise::Deferred::New(env), {}};
  pending->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), "seedcast-nccl", 0, 1);
  Napi::Promise promise = pending->deferred.Promise();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->queue.push_back(pending);
  }
  shared_->cv.notify_all();
  return promise;
}

}  // namespace seedcast
