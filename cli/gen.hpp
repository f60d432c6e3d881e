// `hetpipe gen`: deterministic test and benchmark data (the same bytes on every machine).
#pragma once

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
};

// Writes through a temporary file in the destination folder, renamed on success.
void generate(const gen_spec& spec);

}  // namespace hetpipe::cli
