// GPU and hybrid text counts against CPU lanes, through the public API.
#include <catch2/catch.hpp>

#include <random>

#include <hetpipe/hetpipe.hpp>

#include "support/options.hpp"
#include "support/temp_dir.hpp"
#include "support/text.hpp"

using namespace hetpipe;

TEST_CASE("GPU and hybrid text counts equal the CPU for every chunk size", "[gpu][count]") {
  test::temp_dir dir;
  std::mt19937_64 g(41);
  std::vector<std::string> files;
  // Many small files (batched into one launch), and large ones cut into many chunks.
  for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 4095u, 4096u, 70001u, (3u << 20) + 5u, 9u << 20}) {
    auto v = test::random_text(n, g);
    for (std::size_t at = 8192; at + 1 < n; at += 8192) v[at - 1] = v[at] = 'w';
    files.push_back(dir.file("t" + std::to_string(n)));
    test::write_file(files.back(), v.data(), v.size());
  }
  for (int k = 0; k < 300; ++k) {
    const auto v = test::random_text(g() % 3000, g);
    files.push_back(dir.file("small" + std::to_string(k)));
    test::write_file(files.back(), v.data(), v.size());
  }
  const auto want = count_text(files, test::device_options(device_mode::cpu, 1u << 20));
  for (std::size_t chunk : {4096u, 65536u, 1u << 20, 16u << 20})
    for (auto mode : {device_mode::gpu, device_mode::automatic}) {
      CAPTURE(chunk, static_cast<int>(mode));
      job_report rep;
      const auto got = count_text(files, test::device_options(mode, chunk), &rep);
      std::size_t bad = 0;
      for (std::size_t i = 0; i < files.size(); ++i) {
        const bool same = got[i].counts.lines == want[i].counts.lines &&
                          got[i].counts.words == want[i].counts.words &&
                          got[i].counts.chars == want[i].counts.chars &&
                          got[i].counts.bytes == want[i].counts.bytes;
        if (!same && bad++ == 0) {
          CAPTURE(files[i]);
          CHECK(got[i].counts.lines == want[i].counts.lines);
          CHECK(got[i].counts.words == want[i].counts.words);
          CHECK(got[i].counts.chars == want[i].counts.chars);
          CHECK(got[i].counts.bytes == want[i].counts.bytes);
        }
      }
      CHECK(bad == 0);
      if (mode == device_mode::gpu) {
        CHECK(rep.gpu_lanes > 0);
        CHECK(rep.cpu_lanes == 0);
      }
    }
}
