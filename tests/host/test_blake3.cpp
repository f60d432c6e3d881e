// BLAKE3 on the CPU against the official test vectors, and the piecewise API (pieces hashed out
// of order, merged in order) against the one-shot.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "host/blake3.hpp"
#include "support/blake3_vectors.hpp"

namespace b3 = hetpipe::host::blake3;

namespace {

const hetpipe::test::blake3_vectors& vectors() {
  static const auto v =
      hetpipe::test::load_blake3_vectors(HETPIPE_TEST_DATA "/blake3_test_vectors.json");
  return v;
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937_64& g) {
  std::vector<std::uint8_t> d(n);
  for (auto& b : d) b = static_cast<std::uint8_t>(g());
  return d;
}

// Root node of data through pieces of S bytes hashed in a shuffled order, merged in order.
b3::output_node piecewise_root(const std::vector<std::uint8_t>& d, std::size_t S,
                               const b3::key_words& key, std::uint32_t flags, std::mt19937_64& g) {
  if (d.size() <= S) return b3::piece_root(d.data(), d.size(), key, flags);
  const std::size_t pieces = (d.size() + S - 1) / S;
  std::vector<std::size_t> order(pieces);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), g);
  std::vector<b3::cv> cvs(pieces);
  for (std::size_t i : order) {
    const std::size_t len = std::min(S, d.size() - i * S);
    cvs[i] = b3::piece_cv(d.data() + i * S, len, i * (S / b3::chunk_len), key, flags);
  }
  b3::tree_merger m(key, flags);
  for (std::size_t i = 0; i < pieces; ++i) {
    const std::size_t len = std::min(S, d.size() - i * S);
    m.push(cvs[i], (len + b3::chunk_len - 1) / b3::chunk_len);
  }
  return m.finish();
}

std::vector<std::uint8_t> root_out(const b3::output_node& n, std::size_t len) {
  std::vector<std::uint8_t> out(len);
  b3::root_bytes(n, 0, out.data(), len);
  return out;
}

}  // namespace

// Runs body(name) once with each many-lane build this CPU has (AVX-512 sixteen and eight lanes,
// AVX2, the AVX2 build of the sixteen-lane code, baseline), then goes back to the default.
template <class Body>
void for_each_build(Body&& body) {
  const auto builds = b3::builds();
  REQUIRE(!builds.empty());
  REQUIRE(builds.back() == "baseline");
  for (const auto name : builds) {
    INFO("build " << name);
    REQUIRE(b3::use_build(name));
    body(name);
  }
  REQUIRE(b3::use_build(builds.front()));
  CHECK_FALSE(b3::use_build("no such build"));
}

TEST_CASE("blake3 matches every official test vector in all three modes, in every build",
          "[blake3]") {
  const auto& v = vectors();
  REQUIRE(v.cases.size() >= 20);
  REQUIRE(v.key.size() == 32);
  const auto* key = reinterpret_cast<const std::uint8_t*>(v.key.data());
  for_each_build([&](std::string_view) {
    for (const auto& c : v.cases) {
      INFO("input_len " << c.input_len);
      const auto in = hetpipe::test::blake3_vector_input(c.input_len);
      const std::size_t n = c.hash.size();
      REQUIRE(n == 131);

      std::vector<std::uint8_t> out(n);
      b3::xof(b3::iv_key(), 0, in.data(), in.size(), out.data(), n);
      CHECK(out == c.hash);
      const auto h = b3::hash(in.data(), in.size());
      CHECK(std::equal(h.begin(), h.end(), c.hash.begin()));

      b3::xof(b3::keyed(key), b3::flag_keyed_hash, in.data(), in.size(), out.data(), n);
      CHECK(out == c.keyed_hash);
      const auto kh = b3::keyed_hash(key, in.data(), in.size());
      CHECK(std::equal(kh.begin(), kh.end(), c.keyed_hash.begin()));

      b3::derive_key(v.context, in.data(), in.size(), out.data(), n);
      CHECK(out == c.derive_key);
      std::uint8_t dk[32];
      b3::derive_key(v.context, in.data(), in.size(), dk, 32);
      CHECK(std::equal(dk, dk + 32, c.derive_key.begin()));
    }
  });
}

TEST_CASE("blake3 builds agree on pieces of every shape", "[blake3]") {
  // Whole groups of sixteen chunks, of eight, single chunks and a partial one, at counters that
  // cross 2^32 (the counter's high word differs between lanes of one group).
  std::mt19937_64 g(16);
  const auto d = random_bytes(200 * b3::chunk_len + 77, g);
  const auto key = b3::iv_key();
  std::vector<std::pair<std::size_t, std::uint64_t>> shapes;
  for (std::size_t chunks : {1, 8, 15, 16, 17, 24, 31, 32, 47, 64, 65, 100, 128, 200})
    for (std::uint64_t counter : {std::uint64_t{0}, (std::uint64_t{1} << 32) - 40})
      shapes.emplace_back(chunks * b3::chunk_len + (chunks == 200 ? 77 : 0), counter);
  std::vector<b3::cv> want;
  REQUIRE(b3::use_build("baseline"));
  for (const auto& [len, counter] : shapes)
    want.push_back(b3::piece_cv(d.data(), len, counter, key, 0));
  for_each_build([&](std::string_view) {
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      INFO("bytes " << shapes[i].first << " counter " << shapes[i].second);
      CHECK(b3::piece_cv(d.data(), shapes[i].first, shapes[i].second, key, 0) == want[i]);
    }
  });
}

TEST_CASE("blake3 extended output can be read from any offset in any length", "[blake3]") {
  std::mt19937_64 g(31);
  const auto d = random_bytes(5000, g);
  const auto node = b3::piece_root(d.data(), d.size(), b3::iv_key(), 0);
  const auto all = root_out(node, 2000);
  for (std::size_t off : {0, 1, 31, 63, 64, 65, 100, 511, 512, 513, 1000, 1337}) {
    for (std::size_t len : {0, 1, 7, 64, 65, 448, 511, 512, 513, 600}) {
      if (off + len > all.size()) continue;
      std::vector<std::uint8_t> part(len + 1, 0xAB);
      b3::root_bytes(node, off, part.data(), len);
      INFO("offset " << off << " len " << len);
      CHECK(std::equal(part.begin(), part.begin() + len, all.begin() + off));
      CHECK(part[len] == 0xAB);
    }
  }
  // Block-by-block output agrees with the eight-block path.
  std::vector<std::uint8_t> blocks(2000);
  for (std::size_t off = 0; off < blocks.size(); off += 64)
    b3::root_bytes(node, off, blocks.data() + off, std::min<std::size_t>(64, 2000 - off));
  CHECK(blocks == all);
}

TEST_CASE("blake3 pieces hashed out of order and merged equal the one-shot", "[blake3]") {
  std::mt19937_64 g(2024);
  std::uint8_t raw_key[32];
  for (auto& b : raw_key) b = static_cast<std::uint8_t>(g());
  const struct {
    b3::key_words key;
    std::uint32_t flags;
  } modes[] = {{b3::iv_key(), 0},
               {b3::keyed(raw_key), b3::flag_keyed_hash},
               {b3::derive_key_words("hetpipe test context"), b3::flag_derive_key_material}};
  const std::size_t C = b3::chunk_len;
  const std::size_t lengths[] = {
      0,          1,          63,          64,      1023,          1024,      1025,         2047,
      2048,       2049,       3 * C + 5,   8 * C,   8 * C + 1,     9 * C - 1, 17 * C + 100, 64 * C,
      64 * C + 1, 65 * C - 7, 127 * C + 1, 128 * C, 200 * C + 333, 257 * C,   1000 * C + 1};
  for (const auto& mode : modes) {
    for (std::size_t len : lengths) {
      const auto d = random_bytes(len, g);
      std::vector<std::uint8_t> ref(72);
      b3::xof(mode.key, mode.flags, d.data(), d.size(), ref.data(), ref.size());
      for (std::size_t k : {0, 1, 2, 3, 4, 6, 8, 11}) {
        const std::size_t S = C << k;
        INFO("len " << len << " S " << S << " flags " << mode.flags);
        CHECK(root_out(piecewise_root(d, S, mode.key, mode.flags, g), 72) == ref);
      }
    }
  }
}

TEST_CASE("blake3 piece CVs equal the CVs of the tree built by merging smaller pieces",
          "[blake3]") {
  // A 16-chunk piece's CV is the parent of its two 8-chunk halves, and so on down.
  std::mt19937_64 g(7);
  const auto d = random_bytes(16 * b3::chunk_len, g);
  const auto key = b3::iv_key();
  const std::uint64_t base = 48;  // the piece's first chunk index (a multiple of 16)
  const auto whole = b3::piece_cv(d.data(), d.size(), base, key, 0);
  const auto left = b3::piece_cv(d.data(), d.size() / 2, base, key, 0);
  const auto right = b3::piece_cv(d.data() + d.size() / 2, d.size() / 2, base + 8, key, 0);
  CHECK(b3::parent_cv(left, right, key, 0) == whole);
  // The counter matters for chunks.
  CHECK(b3::piece_cv(d.data(), b3::chunk_len, 0, key, 0) !=
        b3::piece_cv(d.data(), b3::chunk_len, 1, key, 0));
}

TEST_CASE("blake3 tree_merger rejects layouts that are not subtrees", "[blake3]") {
  const auto key = b3::iv_key();
  const b3::cv c{};
  b3::tree_merger one(key, 0);
  one.push(c, 4);
  CHECK_THROWS_AS(one.finish(), std::logic_error);
  b3::tree_merger odd(key, 0);
  odd.push(c, 3);
  CHECK_THROWS_AS(odd.push(c, 3), std::invalid_argument);
  b3::tree_merger big(key, 0);
  big.push(c, 4);
  CHECK_THROWS_AS(big.push(c, 8), std::invalid_argument);
  CHECK_THROWS_AS(b3::piece_cv(nullptr, 0, 0, key, 0), std::invalid_argument);
}

TEST_CASE("blake3 single-thread throughput", "[.bench][blake3]") {
  std::mt19937_64 g(1);
  const std::size_t S = 4 << 20, pieces = 16;
  const auto d = random_bytes(S * pieces, g);
  const auto key = b3::iv_key();
  b3::cv sink{};
  for (int rep = 0; rep < 2; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < pieces; ++i) {
      const auto c = b3::piece_cv(d.data() + i * S, S, i * (S / b3::chunk_len), key, 0);
      sink[0] ^= c[0];
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("blake3 piece_cv, 4 MiB pieces, 1 thread: %.2f GB/s\n", double(d.size()) / s / 1e9);
  }
  // Compute-bound: one 1 MiB piece (in cache) over and over, in each build (best of 3).
  for_each_build([&](std::string_view name) {
    const std::size_t n = 1 << 20, reps = 64;
    double best = 1e9;
    for (int k = 0; k < 3; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t r = 0; r < reps; ++r) sink[1] ^= b3::piece_cv(d.data(), n, 0, key, 0)[1];
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("blake3 piece_cv, 1 MiB piece in cache, 1 thread, build %s: %.2f GB/s\n",
                std::string(name).c_str(), double(n * reps) / best / 1e9);
  });
  {
    const auto t0 = std::chrono::steady_clock::now();
    const auto h = b3::hash(d.data(), d.size());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("blake3 hash, 64 MiB, 1 thread: %.2f GB/s (%02x...)\n", double(d.size()) / s / 1e9,
                h[0]);
  }
  {
    std::vector<std::uint8_t> out(64 << 20);
    const auto node = b3::piece_root(d.data(), 1000, key, 0);
    const auto t0 = std::chrono::steady_clock::now();
    b3::root_bytes(node, 0, out.data(), out.size());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("blake3 root_bytes (XOF), 64 MiB, 1 thread: %.2f GB/s\n",
                double(out.size()) / s / 1e9);
  }
  CHECK(sink[0] != 0x12345678u);
}
