// Reading whole files and the payload of age files, and writing identity files, for the
// encryption tests.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <hetpipe/age.hpp>

namespace hetpipe::test {

// Writes key's identity as an age identity file at path; returns path.
inline std::string write_identity(const std::string& path, const age_key& key) {
  std::ofstream k(path);
  k << key.identity << "\n";
  return path;
}

inline std::vector<std::uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The payload (nonce and chunks) of an age file: with a fixed file key and nonce it is the same
// on every device; the header is not (each X25519 stanza has a fresh ephemeral key).
inline std::vector<std::uint8_t> payload_of(const std::vector<std::uint8_t>& file) {
  const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
  const std::size_t mac = text.find("\n--- ");
  REQUIRE(mac != std::string_view::npos);
  const std::size_t end = text.find('\n', mac + 1);
  REQUIRE(end != std::string_view::npos);
  return {file.begin() + static_cast<std::ptrdiff_t>(end + 1), file.end()};
}

}  // namespace hetpipe::test
