// `hetpipe gen`: deterministic test and benchmark data (the same bytes on every machine).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include <hetpipe/dtype.hpp>

namespace hetpipe::cli {

struct gen_spec {
  dtype type = dtype::f32;
  std::uint64_t rows = 0;
  std::uint64_t cols = 1;
  bool npy = false;  // write a .npy (version 1.0) header
  std::uint64_t seed = 1;
  std::string dist = "normal";  // normal | uniform | hard (extremes, ±0, inf, NaN)
  std::string output;
  const std::atomic<bool>* cancel = nullptr;  // set (by a signal): stop, remove the output
};

// "100000", "100K", "4M", "1G" → a count (decimal: K = 1000). Throws usage_error.
std::uint64_t parse_count(const std::string& text);

// Writes through a temporary file in the destination folder, renamed on success.
void generate(const gen_spec& spec);

}  // namespace hetpipe::cli
