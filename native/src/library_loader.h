// Finds and dlopen()s a shared library in a fixed order: an explicit override (exclusive), a copy
// already loaded in this process, candidate paths (PyTorch's nvidia-* wheels, computed in TS), then
// the system search path. Every attempt is recorded so a failure can say exactly what was tried.
#pragma once

#include <string>
#include <vector>

namespace seedcast {

struct LibrarySearch {
  std::string override_path;              // e.g. $SEEDCAST_NCCL_PATH; when set, nothing else is tried
  std::string loaded_prefix;              // basename prefix of an already loaded copy, e.g. "libnccl.so"
  std::vector<std::string> candidates;    // absolute paths, in order
  std::vector<std::string> system_names;  // sonames for the default search, e.g. "libnccl.so.2"
};

struct LibraryAttempt {
  std::string path;
  std::string error;  // empty when this attempt succeeded
};

class LibraryLoader {
 public:
  // Returns the dlopen handle (nullptr when every attempt failed).
  static void* Open(const LibrarySearch& search, std::string* path, std::string* how,
                    std::vector<LibraryAttempt>* attempts);
  static std::string FindLoaded(const std::string& prefix);
};

}  // namespace seedcast
