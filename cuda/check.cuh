// Error checking for CUDA runtime calls: HETPIPE_CUDA_CHECK(call) evaluates `call` once and throws
// hetpipe::gpu_error naming the call and cudaGetErrorString when it fails. Internal to cuda/.
#pragma once

#include <cuda_runtime_api.h>

namespace hetpipe::cuda::detail {

// Builds "CALL failed: REASON (cudaErrorName) at FILE:LINE" and throws gpu_error(code = err).
// Also clears the thread's last-error state so a later cudaPeekAtLastError does not see it again.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);

}  // namespace hetpipe::cuda::detail

#define HETPIPE_CUDA_CHECK(call)                                                               \
  do {                                                                                         \
    const cudaError_t hetpipe_cuda_err_ = (call);                                              \
    if (hetpipe_cuda_err_ != cudaSuccess)                                                      \
      ::hetpipe::cuda::detail::throw_cuda_error(hetpipe_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)
