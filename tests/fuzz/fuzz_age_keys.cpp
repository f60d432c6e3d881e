// age keys: bech32_decode, parse_identity, parse_recipient and parse_identity_file on arbitrary
// text. Round trip: what parses encodes back to the same key.
#include <algorithm>
#include <string>

#include "fuzz_age.hpp"
#include "fuzz_common.hpp"

namespace age = hetpipe::host::age;
using hetpipe::fuzz::as_text;
using hetpipe::fuzz::expect_clean;
using hetpipe::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = as_text(data, size);
  age::bech32_data d;
  if (expect_clean("bech32_decode", [&] { d = age::bech32_decode(text); })) {
    const std::string again = age::bech32_encode(d.hrp, d.data.data(), d.data.size());
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    require(again == lower, "bech32 round trip differs");
  }
  age::identity id;
  if (expect_clean("parse_identity", [&] { id = age::parse_identity(text); })) {
    const age::identity back = age::parse_identity(age::encode_identity(id));
    require(back.secret == id.secret, "identity round trip differs");
  }
  age::recipient r;
  if (expect_clean("parse_recipient", [&] { r = age::parse_recipient(text); }))
    require(age::parse_recipient(age::encode_recipient(r)) == r, "recipient round trip differs");
  expect_clean("parse_identity_file", [&] { age::parse_identity_file(text, "keys.txt"); });
  return 0;
}
