/* Test double for libnccl: version from FAKE_NCCL_VERSION; a one-rank communicator completes after a
 * few polls; with more ranks the peers never arrive (init stays in progress until aborted). */
#include <stdlib.h>
#include <string.h>

typedef int ncclResult_t;
typedef struct { char internal[128]; } ncclUniqueId;
struct ncclComm { int nranks; int polls; };

ncclResult_t ncclGetVersion(int* v) { const char* e = getenv("FAKE_NCCL_VERSION"); *v = e ? atoi(e) : 22809; return 0; }
ncclResult_t ncclGetUniqueId(ncclUniqueId* id) { memset(id, 0, sizeof *id); memcpy(id->internal, "fake-nccl-id", 12); return 0; }
ncclResult_t ncclCommInitRankConfig(struct ncclComm** c, int nranks, ncclUniqueId id, int rank, void* config) {
  (void)id; (void)rank; (void)config;
  *c = calloc(1, sizeof **c);
  (*c)->nranks = nranks;
  return 7;
}
ncclResult_t ncclCommGetAsyncError(struct ncclComm* c, ncclResult_t* st) {
  if (c->nranks > 1) { *st = 7; return 0; }
  *st = ++c->polls > 3 ? 0 : 7;
  return 0;
}
ncclResult_t ncclCommFinalize(struct ncclComm* c) { (void)c; return 0; }
ncclResult_t ncclCommDestroy(struct ncclComm* c) { free(c); return 0; }
ncclResult_t ncclCommAbort(struct ncclComm* c) { free(c); return 0; }
ncclResult_t ncclGroupStart(void) { return 0; }
ncclResult_t ncclGroupEnd(void) { return 0; }
ncclResult_t ncclBroadcast(const void* s, void* r, size_t n, int t, int root, struct ncclComm* c, void* st) {
  (void)t; (void)root; (void)c; (void)st;
  if (s != r) memcpy(r, s, n);
  return 0;
}
const char* ncclGetErrorString(ncclResult_t r) { (void)r; return "fake nccl error"; }
const char* ncclGetLastError(struct ncclComm* c) { (void)c; return ""; }
