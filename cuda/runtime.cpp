// CUDA runtime wrappers behind cuda/runtime.hpp. Plain C++ against the runtime API (no kernels),
// compiled with the toolkit's include directory.
#include "cuda/runtime.hpp"

#include <cuda_runtime_api.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include <hetpipe/error.hpp>

#include "cuda/check.cuh"

namespace hetpipe::cuda {

namespace detail {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  (void)cudaGetLastError();
  const std::string_view path(file);
  const std::string_view base =
      path.substr(path.find_last_of('/') +
                  1);  // npos + 1 == 0  // clear a non-sticky error so it is reported once only
  std::string msg = std::string(call) + " failed: " + cudaGetErrorString(err) + " (" +
                    cudaGetErrorName(err) + ") at " + std::string(base) + ":" +
                    std::to_string(line);
  throw gpu_error(std::move(msg), static_cast<int>(err));
}

}  // namespace detail

namespace {

cudaStream_t to_stream(const stream& s) noexcept {
  return static_cast<cudaStream_t>(s.handle());
}

std::string version_string(int v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

}  // namespace

int device_count() noexcept {
  int n = 0;  // cudaGetDeviceCount may leave it untouched when it fails
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

int probe_device_count() noexcept {
  int nodes = 0;
  if (DIR* d = opendir("/dev")) {
    while (const dirent* e = readdir(d)) {
      const std::string_view name = e->d_name;
      if (name.size() > 6 && name.substr(0, 6) == "nvidia" &&
          name.find_first_not_of("0123456789", 6) == std::string_view::npos)
        ++nodes;
    }
    closedir(d);
  }
  if (nodes == 0 && access("/dev/dxg", F_OK) == 0) nodes = 1;
  // CUDA_VISIBLE_DEVICES: the runtime sees the entries before the first invalid one ("-1", "").
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    int listed = 0;
    std::string_view rest = v;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string_view entry = rest.substr(0, comma);
      if (entry.empty() || entry.front() == '-') break;
      ++listed;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    nodes = std::min(nodes, listed);
  }
  return nodes;
}

std::vector<device_info> devices() noexcept {
  std::vector<device_info> out;
  const int n = device_count();
  if (n == 0) return out;
  int previous = 0;
  const bool restore = cudaGetDevice(&previous) == cudaSuccess;
  try {
    for (int i = 0; i < n; ++i) {
      cudaDeviceProp prop{};
      if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
      device_info d;
      d.id = i;
      d.name = prop.name;
      d.total_mem = prop.totalGlobalMem;
      d.sms = prop.multiProcessorCount;
      d.copy_engines = prop.asyncEngineCount;
      d.cc_major = prop.major;
      d.cc_minor = prop.minor;
      std::size_t free_b = 0, total_b = 0;
      if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
        d.free_mem = free_b;
      out.push_back(std::move(d));
    }
  } catch (...) {  // std::bad_alloc: report what was gathered
  }
  if (restore) (void)cudaSetDevice(previous);
  (void)cudaGetLastError();
  return out;
}

std::string runtime_status() {
  int rt = 0, drv = 0;
  (void)cudaRuntimeGetVersion(&rt);
  (void)cudaDriverGetVersion(&drv);  // 0 when no driver is installed
  std::string s = "CUDA " + version_string(rt) + " runtime";
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  (void)cudaGetLastError();
  if (drv == 0) return s + ", no CUDA driver (" + cudaGetErrorName(err) + ")";
  s += ", driver " + version_string(drv);
  if (err != cudaSuccess)
    return s + ", no usable device (" + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) +
           ")";
  return s + ", " + std::to_string(n) + (n == 1 ? " device" : " devices");
}

void* pinned_alloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  HETPIPE_CUDA_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocPortable));
  return p;
}

void pinned_free(void* h_ptr) noexcept {
  if (h_ptr != nullptr && cudaFreeHost(h_ptr) != cudaSuccess) (void)cudaGetLastError();
}

bool host_register(void* p, std::size_t bytes) noexcept {
  if (p == nullptr || bytes == 0) return false;
  if (cudaHostRegister(p, bytes, cudaHostRegisterPortable) == cudaSuccess) return true;
  (void)cudaGetLastError();
  return false;
}

void host_unregister(void* p) noexcept {
  if (p != nullptr && cudaHostUnregister(p) != cudaSuccess) (void)cudaGetLastError();
}

void set_device(int device) {
  HETPIPE_CUDA_CHECK(cudaSetDevice(device));
}

// ---- stream

stream::stream(int device) : device_(device) {
  HETPIPE_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t s = nullptr;
  HETPIPE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  h_ = s;
}

stream::~stream() {
  if (h_ != nullptr && cudaStreamDestroy(static_cast<cudaStream_t>(h_)) != cudaSuccess)
    (void)cudaGetLastError();
}

void stream::synchronize() {
  HETPIPE_CUDA_CHECK(cudaStreamSynchronize(to_stream(*this)));
}

bool stream::idle() const {
  const cudaError_t err = cudaStreamQuery(static_cast<cudaStream_t>(h_));
  if (err == cudaErrorNotReady) return false;
  HETPIPE_CUDA_CHECK(err);
  return true;
}

// ---- event

event::event(bool timing) {
  cudaEvent_t e = nullptr;
  HETPIPE_CUDA_CHECK(
      cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  h_ = e;
}

event::~event() {
  if (h_ != nullptr && cudaEventDestroy(static_cast<cudaEvent_t>(h_)) != cudaSuccess)
    (void)cudaGetLastError();
}

void event::record(const stream& s) {
  HETPIPE_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(h_), to_stream(s)));
}

void event::make_wait(const stream& s) const {
  HETPIPE_CUDA_CHECK(cudaStreamWaitEvent(to_stream(s), static_cast<cudaEvent_t>(h_), 0));
}

void event::synchronize() const {
  HETPIPE_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(h_)));
}

bool event::ready() const {
  const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(h_));
  if (err == cudaErrorNotReady) return false;
  HETPIPE_CUDA_CHECK(err);
  return true;
}

float elapsed_ms(const event& start, const event& end) {
  float ms = 0;
  HETPIPE_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.handle()),
                                          static_cast<cudaEvent_t>(end.handle())));
  return ms;
}

// ---- device memory

device_buffer::device_buffer(std::size_t bytes) {
  if (bytes == 0) return;
  HETPIPE_CUDA_CHECK(cudaMalloc(&p_, bytes));
  n_ = bytes;
}

device_buffer::~device_buffer() {
  if (p_ != nullptr && cudaFree(p_) != cudaSuccess) (void)cudaGetLastError();
}

void copy_h2d_async(void* d_dst, const void* h_src, std::size_t n, const stream& s) {
  copy_h2d_async(d_dst, h_src, n, s.handle());
}

void copy_h2d_async(void* d_dst, const void* h_src, std::size_t n, void* stream_handle) {
  if (n == 0) return;
  HETPIPE_CUDA_CHECK(cudaMemcpyAsync(d_dst, h_src, n, cudaMemcpyHostToDevice,
                                     static_cast<cudaStream_t>(stream_handle)));
}

void copy_d2h_async(void* h_dst, const void* d_src, std::size_t n, const stream& s) {
  if (n == 0) return;
  HETPIPE_CUDA_CHECK(cudaMemcpyAsync(h_dst, d_src, n, cudaMemcpyDeviceToHost, to_stream(s)));
}

void copy_d2h_async(void* h_dst, const void* d_src, std::size_t n, void* stream_handle) {
  if (n == 0) return;
  HETPIPE_CUDA_CHECK(cudaMemcpyAsync(h_dst, d_src, n, cudaMemcpyDeviceToHost,
                                     static_cast<cudaStream_t>(stream_handle)));
}

void memset_async(void* d_ptr, int value, std::size_t n, const stream& s) {
  if (n == 0) return;
  HETPIPE_CUDA_CHECK(cudaMemsetAsync(d_ptr, value, n, to_stream(s)));
}

void memset_async(void* d_ptr, int value, std::size_t n, void* stream_handle) {
  if (n == 0) return;
  HETPIPE_CUDA_CHECK(cudaMemsetAsync(d_ptr, value, n, static_cast<cudaStream_t>(stream_handle)));
}

std::size_t current_device_free_memory() {
  std::size_t free = 0, total = 0;
  HETPIPE_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return free;
}

void record_event(void* event_handle, void* stream_handle) {
  HETPIPE_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_handle),
                                     static_cast<cudaStream_t>(stream_handle)));
}

void stream_synchronize(void* stream_handle) {
  HETPIPE_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_handle)));
}

}  // namespace hetpipe::cuda
