/* Test double for libcuda (CI has no GPU): "device" memory is host memory, streams run work at
 * enqueue time, the two seedcast kernels run as C loops. Only for the addon's unit tests. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef struct { char reserved[64]; } CUipcMemHandle;

struct alloc { CUdeviceptr base; size_t bytes; struct alloc* next; };
static struct alloc* allocs;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int ctx_token[16];
static int fn_sum, fn_copy, module_token;

static int devices(void) { const char* e = getenv("FAKE_CUDA_DEVICES"); return e ? atoi(e) : 1; }

CUresult cuInit(unsigned f) { (void)f; return devices() > 0 ? 0 : 100; }
CUresult cuDriverGetVersion(int* v) { *v = 13000; return 0; }
CUresult cuDeviceGetCount(int* n) { *n = devices(); return 0; }
CUresult cuDeviceGet(int* d, int i) { *d = i; return i < devices() ? 0 : 101; }
CUresult cuDeviceGetName(char* b, int n, int d) { (void)d; strncpy(b, "Fake GPU", n); return 0; }
CUresult cuDeviceTotalMem_v2(size_t* b, int d) { (void)d; *b = (size_t)80 << 30; return 0; }
CUresult cuDeviceGetAttribute(int* v, int a, int d) { (void)d; *v = a == 16 ? 4 : a == 75 ? 9 : 0; return 0; }
CUresult cuDeviceGetPCIBusId(char* b, int n, int d) { (void)d; strncpy(b, "00000000:00:00.0", n); return 0; }
CUresult cuDevicePrimaryCtxRetain(void** c, int d) { *c = &ctx_token[d & 15]; return 0; }
CUresult cuCtxSetCurrent(void* c) { (void)c; return 0; }
CUresult cuMemGetInfo_v2(size_t* f, size_t* t) { *f = (size_t)79 << 30; *t = (size_t)80 << 30; return 0; }
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
  void* m = NULL;
  if (posix_memalign(&m, 256, bytes ? bytes : 1) != 0) return 2;
  struct alloc* a = malloc(sizeof *a);
  a->base = (CUdeviceptr)(uintptr_t)m; a->bytes = bytes;
  pthread_mutex_lock(&mu); a->next = allocs; allocs = a; pthread_mutex_unlock(&mu);
  *p = a->base;
  return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) {
  pthread_mutex_lock(&mu);
  for (struct alloc** a = &allocs; *a; a = &(*a)->next) {
    if ((*a)->base == p) { struct alloc* x = *a; *a = x->next; free(x); break; }
  }
  pthread_mutex_unlock(&mu);
  free((void*)(uintptr_t)p);
  return 0;
}
CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned f) { (void)f; return posix_memalign(p, 4096, bytes ? bytes : 1) ? 2 : 0; }
CUresult cuMemFreeHost(void* p) { free(p); return 0; }
CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, size_t* size, CUdeviceptr p) {
  CUresult r = 1;
  pthread_mutex_lock(&mu);
  for (struct alloc* a = allocs; a; a = a->next) {
    if (p >= a->base && p < a->base + a->bytes) { *base = a->base; *size = a->bytes; r = 0; break; }
  }
  pthread_mutex_unlock(&mu);
  return r;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, void* st) { (void)st; memcpy((void*)(uintptr_t)d, s, n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, void* st) { (void)st; memcpy(d, (void*)(uintptr_t)s, n); return 0; }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void* st) { (void)st; memmove((void*)(uintptr_t)d, (void*)(uintptr_t)s, n); return 0; }
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void* st) { (void)st; memset((void*)(uintptr_t)d, v, n); return 0; }
static int stream_token, event_token;
CUresult cuStreamCreate(void** s, unsigned f) { (void)f; *s = &stream_token; return 0; }
CUresult cuStreamSynchronize(void* s) { (void)s; return 0; }
CUresult cuEventCreate(void** e, unsigned f) { (void)f; *e = &event_token; return 0; }
CUresult cuEventRecord(void* e, void* s) { (void)e; (void)s; return 0; }
CUresult cuEventQuery(void* e) { (void)e; return 0; }
CUresult cuEventSynchronize(void* e) { (void)e; return 0; }
CUresult cuEventElapsedTime(float* ms, void* a, void* b) { (void)a; (void)b; *ms = 0.001f; return 0; }
CUresult cuEventDestroy_v2(void* e) { (void)e; return 0; }
CUresult cuIpcGetMemHandle(CUipcMemHandle* h, CUdeviceptr p) {
  memset(h, 0, sizeof *h); memcpy(h->reserved, "FAKEIPC", 7); memcpy(h->reserved + 8, &p, sizeof p);
  return 0;
}
CUresult cuIpcOpenMemHandle_v2(CUdeviceptr* p, CUipcMemHandle h, unsigned f) {
  (void)f;
  if (memcmp(h.reserved, "FAKEIPC", 7) != 0) return 1;
  memcpy(p, h.reserved + 8, sizeof *p);
  return 0;
}
CUresult cuIpcCloseMemHandle(CUdeviceptr p) { (void)p; return 0; }
CUresult cuModuleLoadData(void** m, const void* image) { *m = &module_token; return strstr((const char*)image, ".entry seedcast_sum32x2") ? 0 : 218; }
CUresult cuModuleGetFunction(void** f, void* m, const char* name) {
  (void)m;
  if (strcmp(name, "seedcast_sum32x2") == 0) { *f = &fn_sum; return 0; }
  if (strcmp(name, "seedcast_copy_chunks") == 0) { *f = &fn_copy; return 0; }
  return 500;
}
CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, void* st, void** params, void** extra) {
  (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)shmem; (void)st; (void)extra;
  if (f == &fn_sum) {
    const unsigned char* p = (const unsigned char*)(uintptr_t)*(uint64_t*)params[0];
    uint64_t len = *(uint64_t*)params[1];
    uint32_t* out = (uint32_t*)(uintptr_t)*(uint64_t*)params[2];
    uint32_t a = 0, c = 0;
    for (uint64_t i = 0; i * 4 < len; ++i) {
      uint32_t w = 0;
      for (int b = 0; b < 4 && i * 4 + b < len; ++b) w |= (uint32_t)p[i * 4 + b] << (8 * b);
      a += w; c += (uint32_t)(i + 1) * w;
    }
    out[0] += a; out[1] += c;
    return 0;
  }
  if (f == &fn_copy) {
    const uint64_t* d = (const uint64_t*)(uintptr_t)*(uint64_t*)params[0];
    unsigned n = *(unsigned*)params[1];
    for (unsigned i = 0; i < n; ++i) memmove((void*)(uintptr_t)d[3 * i + 1], (const void*)(uintptr_t)d[3 * i], d[3 * i + 2]);
    return 0;
  }
  return 400;
}
CUresult cuGetErrorName(CUresult r, const char** s) { *s = r == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_FAKE"; return 0; }
CUresult cuGetErrorString(CUresult r, const char** s) { (void)r; *s = "fake libcuda"; return 0; }
