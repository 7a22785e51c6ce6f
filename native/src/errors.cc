#include "errors.h"

namespace seedcast {

Napi::Error ToJsError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void ThrowInvalid(Napi::Env env, const std::string& message) {
  throw ToJsError(env, codes::kInvalid, message);
}

}  // namespace seedcast
