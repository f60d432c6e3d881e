// Text counts (lines, words, characters, bytes) of a piece of a file, and how two neighbouring
// pieces join, so a file's counts come out the same from any cut into chunks, on any lane.
//
//   using namespace hetpipe::host;
//   text_tally a = count_text("hello wo", 8), b = count_text("rld\n", 4);
//   append(a, b);  // a: 1 line, 2 words, 12 bytes ("wo" + "rld" is one word)
//
// Words are maximal runs of bytes that are not ASCII white space (space, \t \n \v \f \r): Python's
// bytes.split(), and what `wc -w` counts in text without control characters (GNU wc skips other
// unprintable bytes, and in a UTF-8 locale also splits at Unicode spaces). Lines are '\n' bytes.
// Characters are the bytes that do not continue a UTF-8 sequence (outside 0x80..0xBF): the code
// points of valid UTF-8 text (GNU wc -m counts no character for an invalid sequence).
#pragma once

#include <cstddef>
#include <cstdint>

namespace hetpipe::host {

struct text_tally {
  std::uint64_t lines = 0;      // '\n' bytes
  std::uint64_t words = 0;      // runs of non-space bytes; one at the first byte counts as a word
  std::uint64_t chars = 0;      // bytes outside 0x80..0xBF
  std::uint64_t bytes = 0;      // the piece's size
  bool starts_in_word = false;  // its first byte is not white space (bytes > 0)
  bool ends_in_word = false;    // its last byte is not white space (bytes > 0)
};

constexpr bool is_text_space(unsigned char c) {
  return c == ' ' || static_cast<unsigned char>(c - 9) < 5;
}

constexpr bool starts_char(unsigned char c) {
  return (c & 0xC0) != 0x80;
}

// With chars false, text_tally::chars stays 0 (and the count is faster).
text_tally count_text(const void* data, std::size_t size, bool chars = true);

// a := a followed by b. A word cut by the boundary counts once. Associative; the empty tally is
// its identity.
void append(text_tally& a, const text_tally& b);

}  // namespace hetpipe::host
