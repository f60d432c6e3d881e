#include <hetpipe/info.hpp>
#include <hetpipe/pipeline.hpp>

#include <thread>

#include "host/blake3.hpp"

#if HETPIPE_WITH_CUDA
#include "cuda/runtime.hpp"
#endif

namespace hetpipe {

const char* version() noexcept {
  return HETPIPE_VERSION;
}

system_info info(const options& opt) {
  system_info s;
  s.version = HETPIPE_VERSION;
  s.hardware_threads = std::thread::hardware_concurrency();
#if HETPIPE_WITH_CUDA
  s.cuda_compiled = true;
  s.cuda_architectures = HETPIPE_CUDA_ARCHITECTURES;
  s.cuda_status = cuda::runtime_status();
  for (const auto& d : cuda::devices())
    s.devices.push_back(
        {d.id, d.name, d.total_mem, d.sms, d.copy_engines, d.cc_major * 10 + d.cc_minor});
#else
  s.cuda_status = "not compiled in (configured with HETPIPE_CUDA=OFF or without nvcc)";
#endif
  s.blake3_build = host::blake3::current_build();
  for (const std::string_view b : host::blake3::builds()) s.blake3_builds.emplace_back(b);
  s.resolved = resolve(opt);
  const bool gpu = s.resolved.device != device_mode::cpu && gpu_count() > 0;
  s.gpu_lanes = gpu ? s.resolved.gpu_lanes * static_cast<unsigned>(gpu_count()) : 0;
  s.cpu_lanes = s.resolved.device == device_mode::gpu ? 0 : s.resolved.cpu_threads;
  s.host_pool_bytes = std::uint64_t{s.resolved.slots} * s.resolved.chunk_size;
  s.device_pool_bytes =
      gpu ? std::uint64_t{s.resolved.gpu_lanes} * s.resolved.gpu_buffers * s.resolved.chunk_size
          : 0;
  return s;
}

}  // namespace hetpipe
