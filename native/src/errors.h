// A failure inside native code: a stable seedcast error code plus a message. Thrown on worker threads,
// turned into a JS Error (with .code and .details) on the JS thread.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace seedcast {

namespace codes {
constexpr const char* kNoCuda = "SEEDCAST_ERR_NO_CUDA";
constexpr const char* kNoNccl = "SEEDCAST_ERR_NO_NCCL";
constexpr const char* kNccl = "SEEDCAST_ERR_NCCL";
constexpr const char* kNcclTimeout = "SEEDCAST_ERR_NCCL_TIMEOUT";
constexpr const char* kCuda = "SEEDCAST_ERR_CUDA";
constexpr const char* kInvalid = "SEEDCAST_ERR_INVALID";
constexpr const char* kAborted = "SEEDCAST_ERR_ABORTED";
}  // namespace codes

class NativeError : public std::runtime_error {
 public:
  NativeError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Builds the JS error object a rejected promise carries.
Napi::Error ToJsError(Napi::Env env, const std::string& code, const std::string& message);

// Throws a JS exception (synchronous argument errors on the JS thread).
[[noreturn]] void ThrowInvalid(Napi::Env env, const std::string& message);

}  // namespace seedcast
