// Throughput of host::accumulate (hidden: run with `test_host "[.bench]"`). Prints GB/s per dtype
// for 4 MiB chunks of a 256 MiB buffer (memory-bound) and of one 4 MiB chunk again and again
// (cache-resident), single-threaded; and of one chunk of 3, 16 and 40 columns again and again.
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "host/stats_data.hpp"
#include "host/stats_host.hpp"

using namespace hetpipe;
using namespace hetpipe::test;

namespace {

double best_gbps(dtype t, const std::vector<std::byte>& buf, std::size_t chunk, std::size_t total,
                 std::size_t cols) {
  const std::size_t es = dtype_size(t) * cols;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<host::column_acc> acc(cols);
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t done = 0; done < total; done += chunk) {
      const std::size_t off = done % buf.size();
      host::accumulate(t, buf.data() + off, chunk / es, cols, acc.data());
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(total) / s / 1e9);
    REQUIRE(acc[0].count + acc[0].nan_count == total / es);
  }
  return best;
}

}  // namespace

TEST_CASE("accumulate throughput per dtype", "[.bench][stats]") {
  constexpr std::size_t chunk = 4u << 20, big = 256u << 20;
  std::mt19937_64 rng(1);
  std::printf("%-5s %-13s %12s %12s %14s %14s %14s\n", "dtype", "data", "RAM GB/s", "cache GB/s",
              "3 cols, GB/s", "16 cols, GB/s", "40 cols, GB/s");
  for (dtype t : all_dtypes)
    for (shape sh : {shape::typical, shape::mixed}) {
      std::vector<std::byte> buf;
      buf.reserve(big);
      // Fill 4 MiB and repeat it (fresh random data everywhere would take longer than the bench).
      append_column(buf, t, sh, chunk / dtype_size(t), rng);
      while (buf.size() < big) buf.insert(buf.end(), buf.begin(), buf.begin() + chunk);
      const double ram = best_gbps(t, buf, chunk, big, 1);
      const std::vector<std::byte> one(buf.begin(), buf.begin() + chunk);
      const double hot = best_gbps(t, one, chunk, 64 * chunk, 1);
      const std::size_t chunk3 = chunk / (3 * dtype_size(t)) * 3 * dtype_size(t);
      const std::vector<std::byte> three(buf.begin(), buf.begin() + chunk3);
      const double cols3 = best_gbps(t, three, chunk3, 32 * chunk3, 3);
      const auto wide = [&](std::size_t cols) {
        const std::size_t bytes = chunk / (cols * dtype_size(t)) * cols * dtype_size(t);
        const std::vector<std::byte> w(buf.begin(), buf.begin() + bytes);
        return best_gbps(t, w, bytes, 32 * bytes, cols);
      };
      const double cols16 = wide(16), cols40 = wide(40);
      std::printf("%-5s %-13s %12.2f %12.2f %14.2f %14.2f %14.2f\n",
                  std::string(dtype_name(t)).c_str(), sh == shape::typical ? "typical" : "mixed",
                  ram, hot, cols3, cols16, cols40);
    }
}
