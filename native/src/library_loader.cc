#include "library_loader.h"

#include <dlfcn.h>
#include <link.h>

#include <cstring>

namespace seedcast {

namespace {

struct FindLoadedState {
  const std::string* prefix;
  std::string found;
};

int VisitLoaded(struct dl_phdr_info* info, size_t, void* data) {
  auto* state = static_cast<FindLoadedState*>(data);
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
  const char* slash = std::strrchr(info->dlpi_name, '/');
  const char* base = slash ? slash + 1 : info->dlpi_name;
  if (std::strncmp(base, state->prefix->c_str(), state->prefix->size()) == 0) {
    state->found = info->dlpi_name;
    return 1;
  }
  return 0;
}

void* TryOpen(const std::string& path, int flags, std::vector<LibraryAttempt>* attempts) {
  dlerror();
  void* handle = dlopen(path.c_str(), flags);
  if (handle != nullptr) {
    attempts->push_back({path, ""});
    return handle;
  }
  const char* err = dlerror();
  attempts->push_back({path, err ? err : "dlopen failed"});
  return nullptr;
}

}  // namespace

std::string LibraryLoader::FindLoaded(const std::string& prefix) {
  FindLoadedState state{&prefix, ""};
  dl_iterate_phdr(VisitLoaded, &state);
  return state.found;
}

void* LibraryLoader::Open(const LibrarySearch& search, std::string* path, std::string* how,
                          std::vector<LibraryAttempt>* attempts) {
  const int flags = RTLD_NOW | RTLD_LOCAL;
  if (!search.override_path.empty()) {
    void* h = TryOpen(search.override_path, flags, attempts);
    if (h) {
      *path = search.override_path;
      *how = "override";
    }
    return h;
  }
  if (!search.loaded_prefix.empty()) {
    std::string loaded = FindLoaded(search.loaded_prefix);
    if (!loaded.empty()) {
      void* h = TryOpen(loaded, flags | RTLD_NOLOAD, attempts);
      if (h) {
        *path = loaded;
        *how = "already-loaded";
        return h;
      }
    }
  }
  for (const auto& candidate : search.candidates) {
    void* h = TryOpen(candidate, flags, attempts);
    if (h) {
      *path = candidate;
      *how = "candidate";
      return h;
    }
  }
  for (const auto& name : search.system_names) {
    void* h = TryOpen(name, flags, attempts);
    if (h) {
      // Report where the system search found it.
      std::string resolved = name;
      struct link_map* map = nullptr;
      if (dlinfo(h, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && map->l_name[0]) resolved = map->l_name;
      *path = resolved;
      *how = "system";
      return h;
    }
  }
  return nullptr;
}

}  // namespace seedcast
