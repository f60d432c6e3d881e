// age header text: find_header_end, parse_header, is_armored and dearmor on arbitrary bytes.
// Invariants: a parsed header lies within the input, its payload starts where find_header_end
// says, and parse_header of exactly the header bytes gives the same header.
#include <algorithm>
#include <string>
#include <vector>

#include "fuzz_age.hpp"
#include "fuzz_common.hpp"

namespace age = hetpipe::host::age;
using hetpipe::fuzz::as_text;
using hetpipe::fuzz::expect_clean;
using hetpipe::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::optional<std::size_t> end = age::find_header_end(data, size);
  require(!end || *end <= size, "find_header_end past the input");
  age::parsed_header p;
  if (expect_clean("parse_header", [&] { p = age::parse_header(data, size, "fuzz.age"); })) {
    require(p.payload_offset <= size && p.mac_input_len < p.payload_offset,
            "parsed header offsets out of range");
    require(end && *end == p.payload_offset, "find_header_end disagrees with parse_header");
    age::parsed_header q = age::parse_header(data, p.payload_offset, "fuzz.age");
    require(q.payload_offset == p.payload_offset && q.hdr.mac == p.hdr.mac &&
                q.hdr.stanzas.size() == p.hdr.stanzas.size(),
            "the header alone parses differently");
    // Canonical: serialising the parsed header gives back its bytes.
    require(age::serialize_header(p.hdr) == as_text(data, p.payload_offset),
            "parsed header does not serialise back to its bytes");
  }
  age::is_armored(data, size);
  std::vector<std::uint8_t> bin;
  std::string whole_error;
  const bool whole_ok = expect_clean("dearmor", [&] {
    try {
      bin = age::dearmor(as_text(data, size), "fuzz.age");
    } catch (const hetpipe::error& e) {
      whole_error = e.what();
      throw;
    }
  });
  // The streaming dearmorer fed the text in pieces (their lengths taken from the input's bytes,
  // 1 to 97) gives the whole text's bytes, or the same refusal.
  std::vector<std::uint8_t> streamed;
  std::string streamed_error;
  const bool streamed_ok = expect_clean("dearmorer", [&] {
    try {
      age::dearmorer d("fuzz.age");
      for (std::size_t at = 0, k = 0; at < size; ++k) {
        const std::size_t n = std::min<std::size_t>(size - at, 1 + data[k % size] % 97);
        d.put(as_text(data + at, n), streamed);
        at += n;
      }
      d.finish(streamed);
    } catch (const hetpipe::error& e) {
      streamed_error = e.what();
      throw;
    }
  });
  require(whole_ok == streamed_ok, "dearmorer in pieces and dearmor disagree on refusing");
  require(!whole_ok || streamed == bin, "dearmorer in pieces gives other bytes");
  require(whole_ok || streamed_error == whole_error, "dearmorer in pieces refuses otherwise");
  // The streaming armorer in pieces gives armor()'s text.
  {
    age::armorer a;
    std::string text;
    for (std::size_t at = 0, k = size / 2; at < size; ++k) {
      const std::size_t n = std::min<std::size_t>(size - at, 1 + data[k % size] % 113);
      a.put(data + at, n, text);
      at += n;
    }
    a.finish(text);
    require(text == age::armor(data, size), "armorer in pieces differs from armor");
  }
  if (whole_ok) {
    // Canonical armor: it must encode back to the same block (modulo surrounding whitespace and
    // CRLF).
    const std::string again = age::armor(bin.data(), bin.size());
    const auto back = age::dearmor(again);
    require(back == bin, "armor round trip differs");
  }
  return 0;
}
