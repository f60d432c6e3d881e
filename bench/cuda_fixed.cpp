// cuda_fixed: what a GPU job pays before and after its work, step by step, outside hetpipe, so
// that the 0.25-0.4 s a whole gpu/auto process costs more than a CPU one (bench/RESULTS.md) can be
// split into the driver's start, the context, the pinned pool and the teardown.
//
//   cuda_fixed [POOL [BUFFER [LANES]]]   (defaults 176M 4M 2: the engine's default 44 slots of
//                                         4 MiB, and 2 GPU lanes of 3 buffers each)
//
// Prints one line per step, in the order an engine meets them, with milliseconds of wall time:
// runtime and driver start (cudaGetDeviceCount), primary context (cudaFree(0)), streams and
// events, device buffers, pinned pool (cudaHostAlloc, touched), the same bytes of anonymous
// memory touched then registered (cudaHostRegister), a first 4 MiB copy, the frees, and the
// context's teardown (cudaDeviceReset). What the process's exit adds is its whole wall time
// (bench/best_time.py) minus the sum printed here.
// Build: g++ -O2 cuda_fixed.cpp -I$CUDA/include -L$CUDA/lib64 -lcudart
// Not part of the library: a measuring tool for bench/RESULTS.md.
#include <sys/mman.h>

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
clock_type::time_point last = clock_type::now();
double total_ms = 0;

// Prints the time since the previous step under `what`, and fails loudly on a CUDA error.
void step(const char* what, cudaError_t e = cudaSuccess) {
  const auto now = clock_type::now();
  const double ms = std::chrono::duration<double, std::milli>(now - last).count();
  if (e != cudaSuccess) {
    std::fprintf(stderr, "cuda_fixed: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
  total_ms += ms;
  std::printf("%-44s %9.2f ms\n", what, ms);
  last = clock_type::now();
}

std::size_t size_arg(const char* s) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (*end == 'K') v *= 1024;
  if (*end == 'M') v *= 1024.0 * 1024;
  if (*end == 'G') v *= 1024.0 * 1024 * 1024;
  return static_cast<std::size_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t pool = argc > 1 ? size_arg(argv[1]) : std::size_t{176} << 20;
  const std::size_t buffer = argc > 2 ? size_arg(argv[2]) : std::size_t{4} << 20;
  const int lanes = argc > 3 ? std::atoi(argv[3]) : 2;
  constexpr int buffers_per_lane = 3;
  std::printf("pool %zu MiB, device buffers %d x %d x %zu MiB\n", pool >> 20, lanes,
              buffers_per_lane, buffer >> 20);
  last = clock_type::now();

  int devices = 0;
  step("runtime and driver start (cudaGetDeviceCount)", cudaGetDeviceCount(&devices));
  if (devices == 0) {
    std::fprintf(stderr, "cuda_fixed: no device\n");
    return 1;
  }
  step("cudaSetDevice(0)", cudaSetDevice(0));
  step("primary context (cudaFree(0))", cudaFree(nullptr));

  std::vector<cudaStream_t> streams(2 * static_cast<std::size_t>(lanes));
  std::vector<cudaEvent_t> events(8 * static_cast<std::size_t>(lanes));
  for (auto& s : streams) {
    const cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (e != cudaSuccess) step("cudaStreamCreate", e);
  }
  for (auto& ev : events) {
    const cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (e != cudaSuccess) step("cudaEventCreate", e);
  }
  step("streams and events");

  std::vector<void*> dev(static_cast<std::size_t>(lanes) * buffers_per_lane);
  for (auto& d : dev) {
    const cudaError_t e = cudaMalloc(&d, buffer);
    if (e != cudaSuccess) step("cudaMalloc", e);
  }
  step("device buffers (cudaMalloc)");

  void* pinned = nullptr;
  step("pinned pool (cudaHostAlloc)", cudaHostAlloc(&pinned, pool, cudaHostAllocPortable));
  std::memset(pinned, 0, pool);
  step("pinned pool, first touch (memset)");

  void* anon = mmap(nullptr, pool, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) {
    std::perror("cuda_fixed: mmap");
    return 1;
  }
  std::memset(anon, 0, pool);
  step("anonymous pool, mmap and first touch");
  step("anonymous pool registered (cudaHostRegister)",
       cudaHostRegister(anon, pool, cudaHostRegisterPortable));

  step("first 4 MiB copy to the device",
       cudaMemcpyAsync(dev[0], pinned, std::min(buffer, pool), cudaMemcpyHostToDevice, streams[0]));
  step("  ... and its completion", cudaStreamSynchronize(streams[0]));

  step("registered pool released (cudaHostUnregister)", cudaHostUnregister(anon));
  munmap(anon, pool);
  step("pinned pool freed (cudaFreeHost)", cudaFreeHost(pinned));
  for (void* d : dev) {
    const cudaError_t e = cudaFree(d);
    if (e != cudaSuccess) step("cudaFree", e);
  }
  for (auto& ev : events) cudaEventDestroy(ev);
  for (auto& s : streams) cudaStreamDestroy(s);
  step("device buffers, streams and events freed");
  step("context teardown (cudaDeviceReset)", cudaDeviceReset());
  std::printf("%-44s %9.2f ms\n", "sum", total_ms);
  return 0;
}
