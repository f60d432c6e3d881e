// CRC32 / CRC32C through ISA-L and their exact combination, against published check values and a
// bit-at-a-time reference written here from the definition (polynomial division, MSB first).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "host/crc.hpp"
#include "support/random.hpp"

using hetpipe::host::crc_kind;
namespace hh = hetpipe::host;

namespace {

constexpr crc_kind both_kinds[] = {crc_kind::crc32, crc_kind::crc32c};

const char* name(crc_kind k) {
  return k == crc_kind::crc32 ? "crc32" : "crc32c";
}

std::uint32_t reverse_bits(std::uint32_t v) {
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i) r |= ((v >> i) & 1u) << (31 - i);
  return r;
}

// The message as a polynomial (first byte highest; within a byte the least significant bit first,
// as these CRCs define it), its top 32 coefficients complemented, times x^32, mod the generator
// written MSB-first; the remainder complemented and read bit-reversed. One bit per step.
std::uint32_t reference_crc(crc_kind k, const std::uint8_t* p, std::size_t n) {
  const std::uint32_t generator = k == crc_kind::crc32 ? 0x04C11DB7u : 0x1EDC6F41u;
  std::uint32_t r = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i)
    for (int b = 0; b < 8; ++b) {
      const std::uint32_t in = (p[i] >> b) & 1u;
      const std::uint32_t top = r >> 31;
      r <<= 1;
      if (top ^ in) r ^= generator;
    }
  return reverse_bits(r) ^ 0xFFFFFFFFu;
}

using hetpipe::test::random_bytes;

std::uint32_t crc_of(crc_kind k, const std::vector<std::uint8_t>& v, std::size_t from = 0,
                     std::size_t to = SIZE_MAX) {
  to = std::min(to, v.size());
  return hh::crc_update(k, 0, v.data() + from, to - from);
}

}  // namespace

TEST_CASE("CRC check values of \"123456789\"", "[crc]") {
  const char* s = "123456789";
  CHECK(hh::crc_update(crc_kind::crc32, 0, s, 9) == 0xCBF43926u);
  CHECK(hh::crc_update(crc_kind::crc32c, 0, s, 9) == 0xE3069283u);
  CHECK(reference_crc(crc_kind::crc32, reinterpret_cast<const std::uint8_t*>(s), 9) == 0xCBF43926u);
  CHECK(reference_crc(crc_kind::crc32c, reinterpret_cast<const std::uint8_t*>(s), 9) ==
        0xE3069283u);
  for (const crc_kind k : both_kinds) {
    CHECK(hh::crc_update(k, 0, nullptr, 0) == 0);
    CHECK(hh::crc_update(k, 0x12345678u, s, 0) == 0x12345678u);
  }
}

TEST_CASE("CRC32C matches the examples of RFC 3720 B.4", "[crc]") {
  std::vector<std::uint8_t> v(32, 0x00);
  CHECK(crc_of(crc_kind::crc32c, v) == 0x8A9136AAu);
  std::fill(v.begin(), v.end(), 0xFF);
  CHECK(crc_of(crc_kind::crc32c, v) == 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<std::uint8_t>(i);
  CHECK(crc_of(crc_kind::crc32c, v) == 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<std::uint8_t>(31 - i);
  CHECK(crc_of(crc_kind::crc32c, v) == 0x113FDB5Cu);
  const std::vector<std::uint8_t> read_pdu = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  CHECK(crc_of(crc_kind::crc32c, read_pdu) == 0xD9963A56u);
  CHECK(reference_crc(crc_kind::crc32c, read_pdu.data(), read_pdu.size()) == 0xD9963A56u);
}

TEST_CASE("ISA-L CRCs equal the bitwise reference for many lengths and alignments", "[crc]") {
  std::mt19937_64 g(31);
  const auto buf = random_bytes(70'000, g);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (std::size_t n : {511, 512, 513, 1023, 1024, 4095, 4096, 4097, 16'383, 65'536, 69'000})
    lengths.push_back(n);
  for (const crc_kind k : both_kinds)
    for (const std::size_t n : lengths) {
      const std::size_t off = g() % (buf.size() - n + 1);  // any alignment
      INFO(name(k) << " length " << n << " offset " << off);
      REQUIRE(hh::crc_update(k, 0, buf.data() + off, n) == reference_crc(k, buf.data() + off, n));
    }
}

TEST_CASE("crc_update continues a CRC across any split", "[crc]") {
  std::mt19937_64 g(32);
  const auto buf = random_bytes(100'003, g);
  for (const crc_kind k : both_kinds) {
    const std::uint32_t whole = crc_of(k, buf);
    for (int trial = 0; trial < 50; ++trial) {
      const std::size_t cut = trial == 0 ? 0 : trial == 1 ? buf.size() : g() % (buf.size() + 1);
      const std::uint32_t a = hh::crc_update(k, 0, buf.data(), cut);
      INFO(name(k) << " cut " << cut);
      REQUIRE(hh::crc_update(k, a, buf.data() + cut, buf.size() - cut) == whole);
    }
  }
}

TEST_CASE("crc_combine joins two parts at any split point, empty parts included", "[crc]") {
  std::mt19937_64 g(33);
  const auto buf = random_bytes((5u << 20) + 77, g);  // 5 MiB and a bit
  for (const crc_kind k : both_kinds) {
    const std::uint32_t whole = crc_of(k, buf);
    std::vector<std::size_t> cuts = {0, 1, 3, 4, 5, buf.size() - 1, buf.size()};
    for (int i = 0; i < 20; ++i) cuts.push_back(g() % (buf.size() + 1));
    for (int i = 0; i < 20; ++i) cuts.push_back(g() % 64);  // short first parts
    for (const std::size_t cut : cuts) {
      const std::uint32_t a = crc_of(k, buf, 0, cut), b = crc_of(k, buf, cut);
      INFO(name(k) << " cut " << cut);
      REQUIRE(hh::crc_combine(k, a, b, buf.size() - cut) == whole);
    }
    CHECK(hh::crc_combine(k, whole, 0, 0) == whole);
    CHECK(hh::crc_combine(k, 0, whole, buf.size()) == whole);
  }
}

TEST_CASE("crc_combine is associative over many parts in any grouping", "[crc]") {
  std::mt19937_64 g(34);
  const auto buf = random_bytes((3u << 20) + 5, g);
  for (const crc_kind k : both_kinds) {
    const std::uint32_t whole = crc_of(k, buf);
    for (int trial = 0; trial < 4; ++trial) {
      // Random boundaries, repeated ones giving empty parts.
      std::vector<std::size_t> bounds = {0, buf.size()};
      const int parts = trial == 0 ? 2 : trial == 1 ? 17 : 200;
      for (int i = 1; i < parts; ++i)
        bounds.push_back(i % 7 == 0 ? bounds[bounds.size() - 1] : g() % (buf.size() + 1));
      std::sort(bounds.begin(), bounds.end());
      struct part {
        std::uint32_t crc;
        std::uint64_t len;
      };
      std::vector<part> ps;
      for (std::size_t i = 0; i + 1 < bounds.size(); ++i)
        ps.push_back({crc_of(k, buf, bounds[i], bounds[i + 1]), bounds[i + 1] - bounds[i]});
      // Left fold.
      part left = {0, 0};
      for (const part& p : ps)
        left = {hh::crc_combine(k, left.crc, p.crc, p.len), left.len + p.len};
      // Right fold.
      part right = {0, 0};
      for (auto it = ps.rbegin(); it != ps.rend(); ++it)
        right = {hh::crc_combine(k, it->crc, right.crc, right.len), right.len + it->len};
      // Pairwise tree.
      std::vector<part> level = ps;
      while (level.size() > 1) {
        std::vector<part> next;
        for (std::size_t i = 0; i + 1 < level.size(); i += 2)
          next.push_back({hh::crc_combine(k, level[i].crc, level[i + 1].crc, level[i + 1].len),
                          level[i].len + level[i + 1].len});
        if (level.size() % 2) next.push_back(level.back());
        level = std::move(next);
      }
      INFO(name(k) << " " << ps.size() << " parts");
      CHECK(left.crc == whole);
      CHECK(right.crc == whole);
      CHECK(level[0].crc == whole);
      CHECK(level[0].len == buf.size());
    }
  }
}

TEST_CASE("crc_shift advances the raw register over zero bytes", "[crc]") {
  std::mt19937_64 g(35);
  const std::vector<std::uint8_t> zeros((2u << 20) + 3, 0);
  for (const crc_kind k : both_kinds) {
    INFO(name(k));
    const std::uint32_t one = 0x80000000u;
    CHECK(hh::crc_xpow8(k, 0) == one);
    CHECK(hh::crc_xpow8(k, 1) == (one >> 8));
    CHECK(hh::crc_xpow8(k, 3) == (one >> 24));  // x^24: no reduction yet
    for (int i = 0; i < 100; ++i) {
      const std::uint32_t a = static_cast<std::uint32_t>(g()), b = static_cast<std::uint32_t>(g());
      const std::uint32_t c = static_cast<std::uint32_t>(g());
      REQUIRE(hh::crc_mulmod(k, a, one) == a);
      REQUIRE(hh::crc_mulmod(k, a, b) == hh::crc_mulmod(k, b, a));
      REQUIRE(hh::crc_mulmod(k, a, b ^ c) == (hh::crc_mulmod(k, a, b) ^ hh::crc_mulmod(k, a, c)));
      // x^(8(m+n)) = x^(8m) x^(8n), far beyond any real length too.
      const std::uint64_t m = g() >> (g() % 64), n = g() >> (g() % 64);
      if (m + n >= m)
        REQUIRE(hh::crc_xpow8(k, m + n) ==
                hh::crc_mulmod(k, hh::crc_xpow8(k, m), hh::crc_xpow8(k, n)));
    }
    // ~CRC is the raw register, and n zero bytes multiply it by x^(8n).
    for (const std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4096}, zeros.size()}) {
      const std::uint32_t c = static_cast<std::uint32_t>(g());
      INFO("zeros " << n);
      CHECK(hh::crc_update(k, c, zeros.data(), n) == ~hh::crc_shift(k, ~c, n));
    }
  }
}

// Hidden: `test_host "[crc_bench]"` (or "[.bench]" for every benchmark). Single-threaded ISA-L
// throughput for a cache-resident 1 MiB buffer and a 256 MiB buffer (memory-bound), and crc_combine
// calls per second.
TEST_CASE("crc_update throughput (ISA-L, one thread)", "[.bench][crc_bench]") {
  std::mt19937_64 g(36);
  const auto big = random_bytes(256u << 20, g);
  for (const crc_kind k : both_kinds) {
    for (const std::size_t span : {std::size_t{1} << 20, big.size()}) {
      double best = 0;
      const std::size_t total = std::size_t{1} << 30;
      std::uint32_t sink = 0;
      for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t done = 0; done < total; done += span)
          sink += hh::crc_update(k, 0, big.data(), span);
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, total / s / 1e9);
      }
      std::printf("%s via ISA-L, %zu MiB buffer: %.2f GB/s (sink %08x)\n", name(k), span >> 20,
                  best, sink);
    }
    std::uint32_t c = 1;
    const auto t0 = std::chrono::steady_clock::now();
    constexpr int calls = 200'000;
    for (int i = 0; i < calls; ++i) c = hh::crc_combine(k, c, 0x1234567u, (64u << 10) + i);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s crc_combine, ~64 KiB parts: %.2f M calls/s (sink %08x)\n", name(k),
                calls / s / 1e6, c);
  }
}
