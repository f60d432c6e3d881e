// GPU and hybrid checksums against CPU lanes, digest for digest, through the public API.
#include <catch2/catch.hpp>

#include <random>

#include <hetpipe/hetpipe.hpp>

#include "support/options.hpp"
#include "support/pipe_feed.hpp"
#include "support/random.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;

TEST_CASE("GPU and hybrid checksums equal the CPU for every algorithm and chunk size",
          "[gpu][checksum]") {
  test::temp_dir dir;
  std::vector<std::string> files;
  std::mt19937_64 g(3);
  for (std::size_t n : {0u, 1u, 1023u, 1024u, 1025u, 4096u, 70001u, (3u << 20) + 5u, 9u << 20}) {
    const auto v = test::random_bytes(n, g);
    files.push_back(dir.file("f" + std::to_string(n)));
    test::write_file(files.back(), v.data(), v.size());
  }
  std::array<std::uint8_t, 32> key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(7 * i + 1);
  std::vector<checksum_spec> specs(6);
  specs[1].length = 200;
  specs[2].key = key;
  specs[3].algo = checksum_algo::crc32;
  specs[4].algo = checksum_algo::crc32c;
  specs[5].derive_key_context = "hetpipe 2026-11-27 derive_key test";
  for (const auto& spec : specs) {
    const auto want = checksum(files, spec, test::device_options(device_mode::cpu, 1u << 20));
    for (std::size_t chunk : {4096u, 65536u, 1u << 20, 16u << 20})
      for (auto mode : {device_mode::gpu, device_mode::automatic}) {
        CAPTURE(checksum_algo_name(spec.algo), spec.length, spec.key.has_value(),
                spec.derive_key_context.has_value(), chunk, static_cast<int>(mode));
        job_report rep;
        const auto got = checksum(files, spec, test::device_options(mode, chunk), &rep);
        for (std::size_t i = 0; i < files.size(); ++i) {
          CAPTURE(files[i]);
          CHECK(to_hex(got[i].digest) == to_hex(want[i].digest));
        }
        // The GPU lanes page-locked the slots they copied from (cudaHostRegister of blocks of
        // the pool), and the driver took every block.
        if (mode == device_mode::gpu) CHECK(rep.slots_pinned > 0);
        CHECK(rep.slots_pin_refused == 0);
      }
  }
}

// A stream of unknown length (a pipe, named by /dev/fd): auto mode starts its GPU lanes at once
// here (device_options), while its CPU lanes start on one lane and add the others once chunks
// wait beyond the GPU lanes' reserve (engine::cpu_lanes). Every chunk is hashed once, in order.
TEST_CASE("GPU and hybrid checksums of a pipe equal the CPU's", "[gpu][checksum]") {
  std::mt19937_64 g(5);
  const auto data = test::random_bytes((9u << 20) + 77, g);
  const auto through_pipe = [&](device_mode mode, job_report* rep) {
    test::pipe_feed feed(std::as_bytes(std::span(data)));
    const auto got = checksum({"/dev/fd/" + std::to_string(feed.read_fd())}, checksum_spec{},
                              test::device_options(mode, 1u << 20), rep);
    feed.finish();
    REQUIRE(got.size() == 1);
    return to_hex(got[0].digest);
  };
  // The same bytes as a regular file, on CPU lanes that map it.
  test::temp_dir dir;
  test::write_file(dir.file("f"), data.data(), data.size());
  const std::string want = to_hex(
      checksum({dir.file("f")}, checksum_spec{}, test::device_options(device_mode::cpu, 1u << 20))
          .at(0)
          .digest);
  for (auto mode : {device_mode::cpu, device_mode::gpu, device_mode::automatic}) {
    CAPTURE(static_cast<int>(mode));
    job_report rep;
    CHECK(through_pipe(mode, &rep) == want);
    std::uint64_t chunks = 0;
    for (const auto& l : rep.lanes) chunks += l.chunks;
    CHECK(chunks == 10);
    CHECK(rep.bytes == data.size());
  }
}
