// The batched CRC32 / CRC32C kernels against host::crc_update (ISA-L), bit for bit.
#ifdef HETPIPE_WITH_CUDA

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <hetpipe/error.hpp>

#include "cuda/crc_kernels.hpp"
#include "cuda/runtime.hpp"
#include "host/crc.hpp"
#include "support/random.hpp"

namespace {

namespace hc = hetpipe::cuda;
namespace hh = hetpipe::host;

constexpr hc::crc_kind both_kinds[] = {hc::crc_kind::crc32, hc::crc_kind::crc32c};

hh::crc_kind host_kind(hc::crc_kind k) {
  return static_cast<hh::crc_kind>(static_cast<int>(k));
}
const char* name(hc::crc_kind k) {
  return k == hc::crc_kind::crc32 ? "crc32" : "crc32c";
}

using hetpipe::test::random_bytes;

// How the descriptors reach the GPU.
enum class via { host_copy, device_array, workspace };
constexpr via all_vias[] = {via::host_copy, via::device_array, via::workspace};

const char* via_name(via v) {
  return v == via::host_copy      ? "crc_batch_from_host"
         : v == via::device_array ? "crc_batch"
                                  : "crc_workspace";
}

// The batch `buf` (copied to the device at d_offset bytes past a cudaMalloc'ed address, so the
// batch itself may be unaligned) and the pieces' CRCs from the GPU.
std::vector<std::uint32_t> gpu_crcs(hc::crc_kind k, const std::vector<std::uint8_t>& buf,
                                    const std::vector<hc::crc_piece>& pieces, via v,
                                    std::size_t d_offset = 0) {
  hc::stream s(0);
  hc::device_buffer d_buf(buf.size() + d_offset + 1);
  hc::device_buffer d_ws(hc::crc_workspace_bytes(pieces.size()));
  hc::device_buffer d_pieces(pieces.size() * sizeof(hc::crc_piece));
  hc::device_buffer d_crc(pieces.size() * 4);
  char* const d_data = static_cast<char*>(d_buf.get()) + d_offset;
  auto* const out = static_cast<std::uint32_t*>(d_crc.get());
  hc::copy_h2d_async(d_data, buf.data(), buf.size(), s);
  hc::crc_workspace ws;
  if (v == via::device_array) {
    hc::copy_h2d_async(d_pieces.get(), pieces.data(), d_pieces.size(), s);
    hc::crc_batch(k, d_data, static_cast<const hc::crc_piece*>(d_pieces.get()), pieces.size(),
                  d_ws.get(), d_ws.size(), out, s.handle());
  } else if (v == via::host_copy) {
    hc::crc_batch_from_host(k, d_data, pieces.data(), pieces.size(), d_ws.get(), d_ws.size(), out,
                            s.handle());
  } else {
    ws.launch(k, d_data, pieces.data(), pieces.size(), out, s.handle());
  }
  std::vector<std::uint32_t> result(pieces.size());
  hc::copy_d2h_async(result.data(), out, result.size() * 4, s);
  s.synchronize();
  return result;
}

std::vector<std::uint32_t> cpu_crcs(hc::crc_kind k, const std::vector<std::uint8_t>& buf,
                                    const std::vector<hc::crc_piece>& pieces) {
  std::vector<std::uint32_t> out;
  for (const auto& p : pieces)
    out.push_back(hh::crc_update(host_kind(k), 0, buf.data() + p.offset, p.len));
  return out;
}

// Number of mismatches; the first one is reported with its piece.
std::size_t compare(const std::vector<std::uint32_t>& gpu, const std::vector<std::uint32_t>& cpu,
                    const std::vector<hc::crc_piece>& pieces) {
  REQUIRE(gpu.size() == cpu.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < gpu.size(); ++i)
    if (gpu[i] != cpu[i] && bad++ == 0) {
      INFO("piece " << i << " offset " << pieces[i].offset << " len " << pieces[i].len);
      CHECK(gpu[i] == cpu[i]);
    }
  return bad;
}

// Pieces laid one after another with random gaps (any alignment), lengths drawn from a mix.
std::vector<hc::crc_piece> random_pieces(std::size_t count, std::mt19937_64& g,
                                         std::size_t& total) {
  std::vector<hc::crc_piece> pieces;
  std::uint64_t at = g() % 16;
  for (std::size_t i = 0; i < count; ++i) {
    const unsigned pick = static_cast<unsigned>(g() % 100);
    std::uint64_t len;
    if (pick < 5)
      len = 0;
    else if (pick < 25)
      len = g() % 64;  // the byte-by-byte path and the first segment's edge words
    else if (pick < 60)
      len = (64u << 10) - 8 + g() % 17;  // ~64 KiB files: two segments
    else if (pick < 98)
      len = g() % (100u << 10);
    else
      len = (1u << 20) + g() % (4u << 20);  // several MiB
    pieces.push_back({at, len});
    at += len + g() % 24;
  }
  total = at + 16;
  return pieces;
}

}  // namespace

TEST_CASE("GPU CRCs of the check strings and RFC 3720 vectors", "[gpu][crc]") {
  // Pieces: "123456789" at every alignment, the RFC 3720 B.4 vectors, and empty pieces.
  std::vector<std::uint8_t> buf;
  std::vector<hc::crc_piece> pieces;
  for (int shift = 0; shift < 16; ++shift) {
    buf.resize(buf.size() + shift, 0xAA);
    pieces.push_back({buf.size(), 9});
    for (char c : std::string("123456789")) buf.push_back(static_cast<std::uint8_t>(c));
  }
  const std::size_t rfc = pieces.size();
  buf.resize(buf.size() + 3);
  pieces.push_back({buf.size(), 32});
  buf.resize(buf.size() + 32, 0x00);
  pieces.push_back({buf.size(), 32});
  buf.resize(buf.size() + 32, 0xFF);
  pieces.push_back({buf.size(), 32});
  for (int i = 0; i < 32; ++i) buf.push_back(static_cast<std::uint8_t>(i));
  pieces.push_back({buf.size(), 32});
  for (int i = 31; i >= 0; --i) buf.push_back(static_cast<std::uint8_t>(i));
  pieces.push_back({0, 0});
  pieces.push_back({buf.size(), 0});

  for (const via v : all_vias) {
    INFO(via_name(v));
    const auto c32 = gpu_crcs(hc::crc_kind::crc32, buf, pieces, v, 5);
    const auto c32c = gpu_crcs(hc::crc_kind::crc32c, buf, pieces, v, 5);
    for (std::size_t i = 0; i < rfc; ++i) {
      CHECK(c32[i] == 0xCBF43926u);
      CHECK(c32c[i] == 0xE3069283u);
    }
    CHECK(c32c[rfc + 0] == 0x8A9136AAu);
    CHECK(c32c[rfc + 1] == 0x62A8AB43u);
    CHECK(c32c[rfc + 2] == 0x46DD794Eu);
    CHECK(c32c[rfc + 3] == 0x113FDB5Cu);
    CHECK(c32[rfc + 4] == 0);
    CHECK(c32c[rfc + 5] == 0);
    CHECK(compare(c32, cpu_crcs(hc::crc_kind::crc32, buf, pieces), pieces) == 0);
    CHECK(compare(c32c, cpu_crcs(hc::crc_kind::crc32c, buf, pieces), pieces) == 0);
  }
}

TEST_CASE("GPU CRCs of every short length and alignment equal the CPU", "[gpu][crc]") {
  // Lengths 0..600 at offsets 0..15 past a 16-byte boundary: the byte-by-byte path (< 32), the
  // first words built byte by byte (bytes a .. a+3 complemented), the tail, one partial segment.
  std::mt19937_64 g(41);
  const auto buf = random_bytes(64 << 10, g);
  std::vector<hc::crc_piece> pieces;
  for (std::uint64_t len = 0; len <= 600; ++len)
    for (std::uint64_t off = 0; off < 16; ++off) pieces.push_back({off + 16 * (len % 64), len});
  for (const hc::crc_kind k : both_kinds) {
    INFO(name(k));
    CHECK(compare(gpu_crcs(k, buf, pieces, via::host_copy), cpu_crcs(k, buf, pieces), pieces) == 0);
  }
}

TEST_CASE("GPU CRCs of thousands of mixed pieces in one launch equal the CPU", "[gpu][crc]") {
  std::mt19937_64 g(42);
  for (const hc::crc_kind k : both_kinds) {
    std::size_t total = 0;
    auto pieces = random_pieces(4000, g, total);
    const auto buf = random_bytes(total, g);
    // Overlapping pieces and whole-buffer pieces are fine too.
    pieces.push_back({0, total});
    pieces.push_back({1, total - 7});
    pieces.push_back({pieces[10].offset, pieces[10].len + pieces[11].len + 3});
    const auto cpu = cpu_crcs(k, buf, pieces);
    for (const via v : all_vias)
      for (const std::size_t d_offset : {std::size_t{0}, std::size_t{3}}) {
        INFO(name(k) << ", " << pieces.size() << " pieces, " << total << " bytes, " << via_name(v)
                     << ", batch at +" << d_offset);
        CHECK(compare(gpu_crcs(k, buf, pieces, v, d_offset), cpu, pieces) == 0);
      }
  }
}

TEST_CASE("GPU CRCs of pieces beyond 32 MiB use the long segment path", "[gpu][crc]") {
  std::mt19937_64 g(43);
  const auto buf = random_bytes((70u << 20) + 100, g);
  // 32 MiB is 1024 segments, the end of the tabulated segment powers.
  const std::vector<hc::crc_piece> pieces = {{0, 32u << 20},
                                             {1, (32u << 20) + 16},
                                             {7, (32u << 20) + 32768 * 3 + 5},
                                             {13, (70u << 20) + 80},
                                             {100, 1000}};
  for (const hc::crc_kind k : both_kinds) {
    INFO(name(k));
    CHECK(compare(gpu_crcs(k, buf, pieces, via::device_array), cpu_crcs(k, buf, pieces), pieces) ==
          0);
  }
}

TEST_CASE("GPU CRC launches reuse their workspace and outputs on one stream", "[gpu][crc]") {
  std::mt19937_64 g(44);
  std::size_t total = 0;
  const auto pieces = random_pieces(500, g, total);
  const auto buf = random_bytes(total, g);
  hc::stream s(0);
  hc::device_buffer d_buf(total), d_ws(hc::crc_workspace_bytes(pieces.size()));
  hc::device_buffer d_crc(pieces.size() * 4);
  auto* const out = static_cast<std::uint32_t*>(d_crc.get());
  hc::copy_h2d_async(d_buf.get(), buf.data(), total, s);
  std::vector<std::uint32_t> a(pieces.size()), b(pieces.size()), c(pieces.size());
  for (auto* h : {&a, &b}) {
    for (const hc::crc_kind k : both_kinds) {
      hc::crc_batch_from_host(k, d_buf.get(), pieces.data(), pieces.size(), d_ws.get(), d_ws.size(),
                              out, s.handle());
      if (k == hc::crc_kind::crc32c) hc::copy_d2h_async(h->data(), out, h->size() * 4, s);
    }
  }
  hc::crc_batch_from_host(hc::crc_kind::crc32, d_buf.get(), pieces.data(), pieces.size(),
                          d_ws.get(), d_ws.size(), out, s.handle());
  hc::copy_d2h_async(c.data(), out, c.size() * 4, s);
  s.synchronize();
  CHECK(a == b);
  CHECK(compare(a, cpu_crcs(hc::crc_kind::crc32c, buf, pieces), pieces) == 0);
  CHECK(compare(c, cpu_crcs(hc::crc_kind::crc32, buf, pieces), pieces) == 0);
}

TEST_CASE("crc_workspace grows, reads descriptors at once and orders its launches", "[gpu][crc]") {
  std::mt19937_64 g(47);
  std::size_t total = 0;
  const auto pieces = random_pieces(3000, g, total);
  const auto buf = random_bytes(total, g);
  hc::stream s1(0), s2(0);
  hc::device_buffer d_buf(total), d_crc(pieces.size() * 4 * 3);
  hc::copy_h2d_async(d_buf.get(), buf.data(), total, s1);
  s1.synchronize();
  auto* const out = static_cast<std::uint32_t*>(d_crc.get());
  hc::crc_workspace ws;
  // 10 pieces, then 3000 (the workspace grows), then 3000 on another stream; the descriptor
  // vector is overwritten right after each call.
  std::vector<hc::crc_piece> h(pieces.begin(), pieces.begin() + 10);
  ws.launch(hc::crc_kind::crc32c, d_buf.get(), h.data(), h.size(), out, s1.handle());
  std::fill(h.begin(), h.end(), hc::crc_piece{0, total});
  h = pieces;
  ws.launch(hc::crc_kind::crc32, d_buf.get(), h.data(), h.size(), out + pieces.size(), s1.handle());
  std::fill(h.begin(), h.end(), hc::crc_piece{0, 1});
  h = pieces;
  ws.launch(hc::crc_kind::crc32c, d_buf.get(), h.data(), h.size(), out + 2 * pieces.size(),
            s2.handle());
  std::fill(h.begin(), h.end(), hc::crc_piece{0, 1});
  std::vector<std::uint32_t> r(3 * pieces.size());
  s1.synchronize();
  hc::copy_d2h_async(r.data(), out, r.size() * 4, s2);
  s2.synchronize();
  const auto c32 = cpu_crcs(hc::crc_kind::crc32, buf, pieces);
  const auto c32c = cpu_crcs(hc::crc_kind::crc32c, buf, pieces);
  CHECK(std::equal(r.begin(), r.begin() + 10, c32c.begin()));
  CHECK(compare({r.begin() + pieces.size(), r.begin() + 2 * pieces.size()}, c32, pieces) == 0);
  CHECK(compare({r.begin() + 2 * pieces.size(), r.end()}, c32c, pieces) == 0);
}

TEST_CASE("GPU CRC results join with host::crc_combine", "[gpu][crc]") {
  // A file cut into chunks of any size, each chunk a piece: the GPU parts combine into the CRC
  // of the whole file, as the checksum merger does.
  std::mt19937_64 g(45);
  const auto buf = random_bytes((9u << 20) + 333, g);
  std::vector<hc::crc_piece> pieces;
  for (std::uint64_t at = 0; at < buf.size();) {
    const std::uint64_t len = std::min<std::uint64_t>(buf.size() - at, g() % (3u << 20));
    pieces.push_back({at, len});
    at += len;
  }
  for (const hc::crc_kind k : both_kinds) {
    const auto parts = gpu_crcs(k, buf, pieces, via::workspace);
    std::uint32_t crc = 0;
    for (std::size_t i = 0; i < pieces.size(); ++i)
      crc = hh::crc_combine(host_kind(k), crc, parts[i], pieces[i].len);
    INFO(name(k) << ", " << pieces.size() << " chunks");
    CHECK(crc == hh::crc_update(host_kind(k), 0, buf.data(), buf.size()));
  }
}

TEST_CASE("GPU CRC launcher rejects bad arguments with gpu_error", "[gpu][crc]") {
  hc::stream s(0);
  hc::device_buffer d_buf(64), d_ws(hc::crc_workspace_bytes(2)), d_crc(16);
  const hc::crc_piece pieces[2] = {{0, 10}, {10, 20}};
  auto* const out = static_cast<std::uint32_t*>(d_crc.get());
  CHECK_THROWS_AS(hc::crc_batch_from_host(static_cast<hc::crc_kind>(7), d_buf.get(), pieces, 2,
                                          d_ws.get(), d_ws.size(), out, s.handle()),
                  hetpipe::gpu_error);
  CHECK_THROWS_AS(hc::crc_batch_from_host(hc::crc_kind::crc32, d_buf.get(), pieces, 2, d_ws.get(),
                                          d_ws.size() - 1, out, s.handle()),
                  hetpipe::gpu_error);
  CHECK_THROWS_AS(
      hc::crc_batch_from_host(hc::crc_kind::crc32, d_buf.get(), pieces, 2, d_ws.get(), d_ws.size(),
                              reinterpret_cast<std::uint32_t*>(static_cast<char*>(d_crc.get()) + 2),
                              s.handle()),
      hetpipe::gpu_error);
  CHECK_THROWS_AS(hc::crc_batch(hc::crc_kind::crc32c, nullptr, pieces, 2, d_ws.get(), d_ws.size(),
                                out, s.handle()),
                  hetpipe::gpu_error);
  // count == 0 queues nothing, even with null pointers.
  CHECK_NOTHROW(
      hc::crc_batch(hc::crc_kind::crc32, nullptr, nullptr, 0, nullptr, 0, nullptr, s.handle()));
  s.synchronize();
}

// Hidden ([.]): `test_gpu "[perf]"` on a GPU machine. Kernel-only GB/s (data already on the
// device) for thousands of 64 KiB files, a few 16 MiB pieces and 1 KiB records.
TEST_CASE("GPU CRC throughput", "[gpu][crc][.][perf]") {
  struct run {
    const char* what;
    std::size_t count, len;
  };
  const run runs[] = {{"4096 x 64 KiB", 4096, 64u << 10},
                      {"16 x 16 MiB", 16, 16u << 20},
                      {"262144 x 1 KiB", 262144, 1024},
                      {"1 x 256 MiB", 1, 256u << 20}};
  const auto devs = hc::devices();
  std::mt19937_64 g(46);
  const auto tile = random_bytes(1u << 20, g);
  for (const run& r : runs) {
    const std::size_t bytes = r.count * r.len;
    std::vector<hc::crc_piece> pieces;
    for (std::size_t i = 0; i < r.count; ++i) pieces.push_back({i * r.len, r.len});
    hc::stream s(0);
    hc::device_buffer d_buf(bytes), d_ws(hc::crc_workspace_bytes(r.count)), d_crc(r.count * 4);
    hc::device_buffer d_pieces(r.count * sizeof(hc::crc_piece));
    for (std::size_t off = 0; off < bytes; off += tile.size())
      hc::copy_h2d_async(static_cast<char*>(d_buf.get()) + off, tile.data(),
                         std::min(tile.size(), bytes - off), s);
    hc::copy_h2d_async(d_pieces.get(), pieces.data(), d_pieces.size(), s);
    auto* const out = static_cast<std::uint32_t*>(d_crc.get());
    const auto* const dp = static_cast<const hc::crc_piece*>(d_pieces.get());
    for (const hc::crc_kind k : both_kinds) {
      hc::crc_batch(k, d_buf.get(), dp, r.count, d_ws.get(), d_ws.size(), out, s.handle());
      hc::event start(true), stop(true);
      constexpr int reps = 5;
      start.record(s);
      for (int i = 0; i < reps; ++i)
        hc::crc_batch(k, d_buf.get(), dp, r.count, d_ws.get(), d_ws.size(), out, s.handle());
      stop.record(s);
      stop.synchronize();
      const double sec = hc::elapsed_ms(start, stop) / 1e3 / reps;
      std::uint32_t first = 0;
      hc::copy_d2h_async(&first, out, 4, s);
      s.synchronize();
      if (r.len <= tile.size()) CHECK(first == hh::crc_update(host_kind(k), 0, tile.data(), r.len));
      std::printf("crc %s %s on %s: %.1f GB/s\n", name(k), r.what,
                  devs.empty() ? "?" : devs[0].name.c_str(), bytes / sec / 1e9);
    }
  }
}

#endif  // HETPIPE_WITH_CUDA
