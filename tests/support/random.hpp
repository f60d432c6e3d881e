// Random test data, reproducible from a seed.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace hetpipe::test {

inline std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937_64& g) {
  std::vector<std::uint8_t> v(n);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t r = g();
    std::memcpy(v.data() + i, &r, 8);
  }
  for (; i < n; ++i) v[i] = static_cast<std::uint8_t>(g());
  return v;
}

inline std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  return random_bytes(n, g);
}

}  // namespace hetpipe::test
