// Throughput of host::img::apply (hidden: run with `test_host "image filter throughput*"`). Prints
// MPix/s (input pixels) per chain on a 1920x1080 image, single-threaded and with 2 OpenMP threads;
// then blur and Sobel on one thread with each build of the row kernels this CPU runs.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "host/image_ops.hpp"

namespace img = hetpipe::host::img;

TEST_CASE("image filter throughput on 1920x1080", "[.bench]") {
  std::mt19937_64 g(5);
  for (std::uint32_t ch : {3u, 1u}) {
    img::image in;
    in.shape = {1920, 1080, ch, 255};
    in.samples.resize(in.shape.samples());
    for (auto& v : in.samples) v = static_cast<std::uint16_t>(g() % 256);
    for (const char* chain : {"gray,blur:sigma=2,sobel", "gray", "blur:sigma=2", "sobel",
                              "resize:0.5", "resize:2", "invert"}) {
      const auto ops = img::parse_ops(chain);
      for (int threads : {1, 2}) {
        double best = 1e30;
        for (int rep = 0; rep < 5; ++rep) {
          const auto t0 = std::chrono::steady_clock::now();
          const auto out = img::apply(in, ops, threads);
          best = std::min(
              best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
          CHECK(!out.samples.empty());
        }
        std::printf("%-26s %u ch, %d thread(s): %7.1f MPix/s (%.1f ms)\n", chain, ch, threads,
                    in.shape.pixels() / best / 1e6, best * 1e3);
      }
    }
  }
}

TEST_CASE("image filter throughput by row-kernel build", "[.bench]") {
  std::mt19937_64 g(6);
  const auto builds = img::kernel_builds();
  // 1080p rows fit the L1 cache with their sums; 8192-sample rows do not.
  for (const std::uint32_t w : {1920u, 8192u}) {
    img::image in;
    in.shape = {w, w == 1920 ? 1080u : 1024u, 1, 255};
    in.samples.resize(in.shape.samples());
    for (auto& v : in.samples) v = static_cast<std::uint16_t>(g() % 256);
    for (const char* chain : {"gray,blur:sigma=2,sobel", "blur:sigma=2", "sobel"}) {
      const auto ops = img::parse_ops(chain);
      for (const auto b : builds) {
        REQUIRE(img::use_kernels(b));
        double best = 1e30;
        for (int rep = 0; rep < 7; ++rep) {
          const auto t0 = std::chrono::steady_clock::now();
          const auto out = img::apply(in, ops, 1);
          best = std::min(
              best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
          CHECK(!out.samples.empty());
        }
        std::printf("%-26s %ux%u gray, 1 thread, %-7s %7.1f MPix/s\n", chain, in.shape.width,
                    in.shape.height, std::string(b).c_str(), in.shape.pixels() / best / 1e6);
      }
    }
  }
  REQUIRE(img::use_kernels(builds.front()));
}
