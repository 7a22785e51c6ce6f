// NCCL types and entry points, declared here (no nccl.h at build time) and resolved from libnccl.
#pragma once

#include <climits>
#include <cstddef>
#include <string>
#include <vector>

#include "cuda_api.h"
#include "library_loader.h"

namespace seedcast {

using ncclResult_t = int;
struct ncclComm;
using ncclComm_t = ncclComm*;
struct ncclUniqueId {
  char internal[128];
};

constexpr ncclResult_t ncclSuccess = 0;
constexpr ncclResult_t ncclInProgress = 7;
constexpr int ncclUint8 = 1;
constexpr int kNcclConfigUndefInt = INT_MIN;

// The ncclConfig_t layout of NCCL 2.18 (the `size` field tells newer NCCL how much of it we set;
// fields after splitShare keep their defaults).
struct NcclConfig218 {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int blocking;
  int cgaClusterSize;
  int minCTAs;
  int maxCTAs;
  const char* netName;
  int splitShare;
};

class NcclApi {
 public:
  // Supported: NCCL 2.18 or newer within major version 2 (non-blocking init, finalize, abort).
  static constexpr int kMinVersion = 21800;
  static constexpr int kMaxVersionExclusive = 30000;

  bool Load(const LibrarySearch& search, std::string* error, std::string* error_code);
  // Throws NativeError(SEEDCAST_ERR_NCCL) with NCCL's error string (and last error of comm if given).
  void Check(ncclResult_t r, const char* what, ncclComm_t comm = nullptr) const;
  std::string Describe(ncclResult_t r, ncclComm_t comm) const;
  static std::string VersionString(int code);

  std::string path;
  std::string how;
  std::vector<LibraryAttempt> attempts;
  int version = 0;

  ncclResult_t (*ncclGetVersion)(int*) = nullptr;
  ncclResult_t (*ncclGetUniqueId)(ncclUniqueId*) = nullptr;
  ncclResult_t (*ncclCommInitRankConfig)(ncclComm_t*, int, ncclUniqueId, int, NcclConfig218*) = nullptr;
  ncclResult_t (*ncclCommGetAsyncError)(ncclComm_t, ncclResult_t*) = nullptr;
  ncclResult_t (*ncclCommFinalize)(ncclComm_t) = nullptr;
  ncclResult_t (*ncclCommDestroy)(ncclComm_t) = nullptr;
  ncclResult_t (*ncclCommAbort)(ncclComm_t) = nullptr;
  ncclResult_t (*ncclGroupStart)() = nullptr;
  ncclResult_t (*ncclGroupEnd)() = nullptr;
  ncclResult_t (*ncclBroadcast)(const void*, void*, size_t, int, int, ncclComm_t, CUstream) = nullptr;
  const char* (*ncclGetErrorString)(ncclResult_t) = nullptr;
  const char* (*ncclGetLastError)(ncclComm_t) = nullptr;  // optional (2.13+)
};

}  // namespace seedcast
