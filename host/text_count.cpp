#include "host/text_count.hpp"

#include "host/clones.hpp"

namespace hetpipe::host {

namespace {

// Newlines and word starts over p[0..n), with p[-1] readable: a byte that is not white space
// after one that is starts a word. 32-bit counters (the vectoriser keeps them in lanes) over
// blocks well under 2^32 bytes.
HETPIPE_CLONES void tally_after_first(const unsigned char* p, std::size_t n, std::uint32_t& lines,
                                      std::uint32_t& starts) {
  std::uint32_t l = 0, s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char c = p[i], prev = p[i - 1];
    l += c == '\n';
    s += !is_text_space(c) & is_text_space(prev);
  }
  lines = l;
  starts = s;
}

}  // namespace

text_tally count_text(const void* data, std::size_t size) {
  text_tally t;
  t.bytes = size;
  if (size == 0) return t;
  const auto* p = static_cast<const unsigned char*>(data);
  t.starts_in_word = !is_text_space(p[0]);
  t.ends_in_word = !is_text_space(p[size - 1]);
  t.lines = p[0] == '\n';
  t.words = t.starts_in_word;
  constexpr std::size_t block = std::size_t{1} << 30;
  for (std::size_t at = 1; at < size; at += block) {
    const std::size_t n = size - at < block ? size - at : block;
    std::uint32_t lines = 0, starts = 0;
    tally_after_first(p + at, n, lines, starts);
    t.lines += lines;
    t.words += starts;
  }
  return t;
}

void append(text_tally& a, const text_tally& b) {
  if (b.bytes == 0) return;
  if (a.bytes == 0) {
    a = b;
    return;
  }
  a.words += b.words - (a.ends_in_word && b.starts_in_word ? 1 : 0);
  a.lines += b.lines;
  a.bytes += b.bytes;
  a.ends_in_word = b.ends_in_word;
}

}  // namespace hetpipe::host
