// Job options for tests: a CPU-only job with a given chunk size and lane count.
#pragma once

#include <hetpipe/options.hpp>

namespace hetpipe::test {

inline options cpu_options(std::size_t chunk, unsigned threads) {
  options o;
  o.device = device_mode::cpu;
  o.chunk_size = chunk;
  o.cpu_threads = threads;
  return o;
}

}  // namespace hetpipe::test
