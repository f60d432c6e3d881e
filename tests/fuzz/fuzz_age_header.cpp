// age header text: find_header_end, parse_header, is_armored and dearmor on arbitrary bytes.
// Invariants: a parsed header lies within the input, its payload starts where find_header_end
// says, and parse_header of exactly the header bytes gives the same header.
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
  if (expect_clean("dearmor", [&] { bin = age::dearmor(as_text(data, size), "fuzz.age"); })) {
    // Canonical armor: it must encode back to the same block (modulo surrounding whitespace and
    // CRLF).
    const std::string again = age::armor(bin.data(), bin.size());
    const auto back = age::dearmor(again);
    require(back == bin, "armor round trip differs");
  }
  return 0;
}
