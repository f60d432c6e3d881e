// What `hetpipe info` reports: build configuration, devices, and the lanes and pools a job with
// the given options would use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <hetpipe/options.hpp>

namespace hetpipe {

struct gpu_device {
  int id = 0;
  std::string name;
  std::uint64_t total_memory = 0;
  int multiprocessors = 0;
  int copy_engines = 0;
  int compute_capability = 0;  // 90 for sm_90
};

struct system_info {
  std::string version;
  bool cuda_compiled = false;
  std::string cuda_architectures;  // as compiled, e.g. "90"
  std::string cuda_status;         // runtime/driver status, or why there is no GPU
  std::vector<gpu_device> devices;
  unsigned hardware_threads = 0;
  options resolved;  // defaults filled in
  unsigned cpu_lanes = 0, gpu_lanes = 0;
  std::uint64_t host_pool_bytes = 0;    // slots × chunk size (pinned when GPU lanes run)
  std::uint64_t device_pool_bytes = 0;  // per device: lanes × buffers × chunk size
  // The CPU lanes' BLAKE3 build (the environment variable HETPIPE_BLAKE3 picks another), and the
  // builds this CPU runs, best first.
  std::string blake3_build;
  std::vector<std::string> blake3_builds;
};

system_info info(const options& opt);

// The library's version ("0.1.0"); unlike info(), touches no device.
const char* version() noexcept;

}  // namespace hetpipe
