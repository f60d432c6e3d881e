// Text for the count tests: random bytes that are often white space, and the counts of a buffer
// by the definition itself (one byte at a time), which the operator's lanes must equal.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include <hetpipe/count.hpp>

namespace hetpipe::test {

// Letters, spaces, each of the six white-space bytes, runs of spaces, and other bytes (NUL, DEL,
// 0x80..0xFF) that count as word bytes.
inline std::vector<std::uint8_t> random_text(std::size_t n, std::mt19937_64& g) {
  static constexpr std::uint8_t space[] = {' ', '\t', '\n', '\v', '\f', '\r'};
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t r = g();
    const unsigned pick = r % 100;
    v[i] = pick < 55   ? static_cast<std::uint8_t>('a' + (r >> 8) % 26)
           : pick < 75 ? std::uint8_t{' '}
           : pick < 85 ? space[(r >> 8) % 6]
           : pick < 88 ? std::uint8_t{'\n'}
                       : static_cast<std::uint8_t>(r >> 16);  // any byte
  }
  return v;
}

inline bool reference_space(std::uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

inline text_counts reference_counts(const std::uint8_t* p, std::size_t n) {
  text_counts c;
  c.bytes = n;
  bool in_word = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] == '\n') ++c.lines;
    if (p[i] < 0x80 || p[i] >= 0xC0) ++c.chars;
    if (reference_space(p[i])) {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++c.words;
    }
  }
  return c;
}

}  // namespace hetpipe::test
