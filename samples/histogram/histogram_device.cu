// The histogram's device half: a shared-memory histogram per block, added into 256 global
// counters, copied to pinned host memory on the lane's stream.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "histogram.hpp"

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw hetpipe::gpu_error(std::string(what) + ": " + cudaGetErrorString(e), static_cast<int>(e));
}

__global__ void histogram_kernel(const unsigned char* d_data, std::size_t n,
                                 unsigned long long* d_bins) {
  __shared__ unsigned int local[256];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) local[i] = 0;
  __syncthreads();
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    atomicAdd(&local[d_data[i]], 1u);
  __syncthreads();
  for (int i = threadIdx.x; i < 256; i += blockDim.x)
    if (local[i]) atomicAdd(&d_bins[i], static_cast<unsigned long long>(local[i]));
}

class histogram_device final : public hetpipe::device_reducer {
 public:
  explicit histogram_device(unsigned buffers)
      : d_bins_(buffers, nullptr), h_bins_(buffers, nullptr) {
    for (unsigned b = 0; b < buffers; ++b) {
      check(cudaMalloc(&d_bins_[b], 256 * sizeof(unsigned long long)), "cudaMalloc");
      check(cudaHostAlloc(&h_bins_[b], 256 * sizeof(unsigned long long), cudaHostAllocDefault),
            "cudaHostAlloc");
    }
  }
  ~histogram_device() override {
    for (auto* p : d_bins_) cudaFree(p);
    for (auto* p : h_bins_) cudaFreeHost(p);
  }
  void launch(const hetpipe::chunk_info& info, const std::byte* d_data, hetpipe::stream_ref s,
              unsigned b) override {
    auto stream = static_cast<cudaStream_t>(s.handle);
    check(cudaMemsetAsync(d_bins_[b], 0, 256 * sizeof(unsigned long long), stream),
          "cudaMemsetAsync");
    histogram_kernel<<<264, 256, 0, stream>>>(reinterpret_cast<const unsigned char*>(d_data),
                                              info.size, d_bins_[b]);
    check(cudaPeekAtLastError(), "histogram_kernel");
    hetpipe::mark_copy_back(s);  // the trace shows the kernel and the copy back apart
    check(cudaMemcpyAsync(h_bins_[b], d_bins_[b], 256 * sizeof(unsigned long long),
                          cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync");
  }
  std::unique_ptr<hetpipe::partial> collect(const hetpipe::chunk_info&, unsigned b) override {
    auto h = std::make_unique<byte_histogram>();
    for (int i = 0; i < 256; ++i) h->bins[i] = h_bins_[b][i];
    return h;
  }

 private:
  std::vector<unsigned long long*> d_bins_;
  std::vector<unsigned long long*> h_bins_;
};

}  // namespace

std::unique_ptr<hetpipe::device_reducer> make_histogram_device(unsigned buffers) {
  return std::make_unique<histogram_device>(buffers);
}
