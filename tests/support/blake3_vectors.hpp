// The official BLAKE3 test vectors (tests/data/blake3_test_vectors.json, from the BLAKE3 team's
// repository), read with a small scanner fitted to that file's fixed layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace hetpipe::test {

struct blake3_case {
  std::size_t input_len = 0;
  std::vector<std::uint8_t> hash, keyed_hash, derive_key;  // extended outputs (131 bytes)
};

struct blake3_vectors {
  std::string key, context;
  std::vector<blake3_case> cases;
};

inline std::vector<std::uint8_t> blake3_unhex(const std::string& s) {
  std::vector<std::uint8_t> v(s.size() / 2);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<std::uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return v;
}

// The string value of the next "name": "value" at or after pos; pos moves past it.
inline std::string blake3_json_string(const std::string& text, const std::string& name,
                                      std::size_t& pos) {
  const std::string tag = "\"" + name + "\": \"";
  const std::size_t a = text.find(tag, pos);
  if (a == std::string::npos) throw std::runtime_error("test vectors: no " + name);
  const std::size_t b = text.find('"', a + tag.size());
  pos = b + 1;
  return text.substr(a + tag.size(), b - a - tag.size());
}

inline blake3_vectors load_blake3_vectors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  blake3_vectors v;
  std::size_t pos = 0;
  v.key = blake3_json_string(text, "key", pos);
  v.context = blake3_json_string(text, "context_string", pos);
  const std::string len_tag = "\"input_len\": ";
  for (std::size_t a; (a = text.find(len_tag, pos)) != std::string::npos;) {
    blake3_case c;
    c.input_len = std::stoull(text.substr(a + len_tag.size(), 20));
    pos = a + len_tag.size();
    c.hash = blake3_unhex(blake3_json_string(text, "hash", pos));
    c.keyed_hash = blake3_unhex(blake3_json_string(text, "keyed_hash", pos));
    c.derive_key = blake3_unhex(blake3_json_string(text, "derive_key", pos));
    v.cases.push_back(std::move(c));
  }
  return v;
}

// The vectors' input: 0, 1, ..., 250, 0, 1, ...
inline std::vector<std::uint8_t> blake3_vector_input(std::size_t n) {
  std::vector<std::uint8_t> d(n);
  for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<std::uint8_t>(i % 251);
  return d;
}

}  // namespace hetpipe::test
