#include "nccl_api.h"

#include <dlfcn.h>

#include "errors.h"

namespace seedcast {

namespace {

template <typename F>
void Resolve(void* lib, const char* name, F* out, std::string* missing) {
  void* sym = dlsym(lib, name);
  if (sym == nullptr) {
    if (!missing->empty()) *missing += ", ";
    *missing += name;
    return;
  }
  *out = reinterpret_cast<F>(sym);
}

}  // namespace

std::string NcclApi::VersionString(int code) {
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch; older releases used major*1000 + minor*100 + patch.
  int major, minor, patch;
  if (code >= 10000) {
    major = code / 10000;
    minor = (code % 10000) / 100;
    patch = code % 100;
  } else {
    major = code / 1000;
    minor = (code % 1000) / 100;
    patch = code % 100;
  }
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

bool NcclApi::Load(const LibrarySearch& search, std::string* error, std::string* error_code) {
  void* lib = LibraryLoader::Open(search, &path, &how, &attempts);
  *error_code = codes::kNoNccl;
  if (lib == nullptr) {
    *error = "libnccl could not be loaded";
    return false;
  }
  std::string missing;
  Resolve(lib, "ncclGetVersion", &ncclGetVersion, &missing);
  if (ncclGetVersion == nullptr) {
    *error = path + " has no ncclGetVersion: not an NCCL library";
    return false;
  }
  if (ncclGetVersion(&version) != ncclSuccess) {
    *error = path + ": ncclGetVersion failed";
    return false;
  }
  if (version < kMinVersion || version >= kMaxVersionExclusive) {
    *error = path + " is NCCL " + VersionString(version) + " (code " + std::to_string(version) +
             "); seedcast supports NCCL 2.x from 2.18 on. Point SEEDCAST_NCCL_PATH at a supported libnccl.so.2";
    return false;
  }
  Resolve(lib, "ncclGetUniqueId", &ncclGetUniqueId, &missing);
  Resolve(lib, "ncclCommInitRankConfig", &ncclCommInitRankConfig, &missing);
  Resolve(lib, "ncclCommGetAsyncError", &ncclCommGetAsyncError, &missing);
  Resolve(lib, "ncclCommFinalize", &ncclCommFinalize, &missing);
  Resolve(lib, "ncclCommDestroy", &ncclCommDestroy, &missing);
  Resolve(lib, "ncclCommAbort", &ncclCommAbort, &missing);
  Resolve(lib, "ncclGroupStart", &ncclGroupStart, &missing);
  Resolve(lib, "ncclGroupEnd", &ncclGroupEnd, &missing);
  Resolve(lib, "ncclBroadcast", &ncclBroadcast, &missing);
  Resolve(lib, "ncclGetErrorString", &ncclGetErrorString, &missing);
  if (!missing.empty()) {
    *error = path + " (NCCL " + VersionString(version) + ") lacks symbols: " + missing;
    return false;
  }
  ncclGetLastError = reinterpret_cast<const char* (*)(ncclComm_t)>(dlsym(lib, "ncclGetLastError"));
  return true;
}

std::string NcclApi::Describe(ncclResult_t r, ncclComm_t comm) const {
  std::string out = ncclGetErrorString ? ncclGetErrorString(r) : "NCCL error";
  out += " (" + std::to_string(r) + ")";
  if (ncclGetLastError) {
    const char* last = ncclGetLastError(comm);
    if (last && last[0]) out += ": " + std::string(last);
  }
  return out;
}

void NcclApi::Check(ncclResult_t r, const char* what, ncclComm_t comm) const {
  if (r == ncclSuccess) return;
  throw NativeError(codes::kNccl, std::string(what) + " failed: " + Describe(r, comm));
}

}  // namespace seedcast
