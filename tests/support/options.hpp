// Job options for tests.
#pragma once

#include <hetpipe/options.hpp>

namespace hetpipe::test {

inline options cpu_options(std::size_t chunk, unsigned threads, unsigned slots = 0) {
  options o;
  o.device = device_mode::cpu;
  o.chunk_size = chunk;
  o.cpu_threads = threads;
  o.slots = slots;
  return o;
}

// A job in device mode m (GPU tests), with a given chunk size and CPU lane count. In auto mode the
// GPU lanes are brought up at once, however short the job: the tests compare hybrid results.
inline options device_options(device_mode m, std::size_t chunk, unsigned cpu_threads = 2) {
  options o;
  o.device = m;
  o.chunk_size = chunk;
  o.cpu_threads = cpu_threads;
  o.auto_gpu_min_remaining = 0;
  return o;
}

}  // namespace hetpipe::test
