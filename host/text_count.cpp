#include "host/text_count.hpp"

#include "host/clones.hpp"

namespace hetpipe::host {

namespace {

struct block_counts {
  std::uint32_t lines = 0, starts = 0, chars = 0;
};

// Newlines, word starts and (with Chars) characters over p[0..n), with p[-1] readable: a byte
// that is not white space after one that is starts a word. 32-bit counters (the vectoriser keeps
// them in lanes) over blocks well under 2^32 bytes. Inlined into each clone below, built for its
// instruction set.
template <bool Chars>
[[gnu::always_inline]] inline block_counts tally_body(const unsigned char* p, std::size_t n) {
  std::uint32_t l = 0, s = 0, ch = 0;
  const unsigned char* before = p - 1;  // before[i] is p[i - 1], with no wrap of i - 1 at 0
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char c = p[i], prev = before[i];
    l += c == '\n';
    s += !is_text_space(c) & is_text_space(prev);
    if constexpr (Chars) ch += starts_char(c);
  }
  return {l, s, ch};
}

// The third counter costs a quarter of the rate (2-core Zen 4 box, one core: 9.3 against
// 6.7 GB/s): it is counted only when asked for.
HETPIPE_CLONES block_counts tally_after_first(const unsigned char* p, std::size_t n) {
  return tally_body<false>(p, n);
}
HETPIPE_CLONES block_counts tally_after_first_chars(const unsigned char* p, std::size_t n) {
  return tally_body<true>(p, n);
}

}  // namespace

text_tally count_text(const void* data, std::size_t size, bool chars) {
  text_tally t;
  t.bytes = size;
  if (size == 0) return t;
  const auto* p = static_cast<const unsigned char*>(data);
  t.starts_in_word = !is_text_space(p[0]);
  t.ends_in_word = !is_text_space(p[size - 1]);
  t.lines = p[0] == '\n';
  t.words = t.starts_in_word;
  t.chars = chars && starts_char(p[0]);
  constexpr std::size_t block = std::size_t{1} << 30;
  for (std::size_t at = 1; at < size; at += block) {
    const std::size_t n = size - at < block ? size - at : block;
    const block_counts b =
        chars ? tally_after_first_chars(p + at, n) : tally_after_first(p + at, n);
    t.lines += b.lines;
    t.words += b.starts;
    t.chars += b.chars;
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
  a.chars += b.chars;
  a.bytes += b.bytes;
  a.ends_in_word = b.ends_in_word;
}

}  // namespace hetpipe::host
