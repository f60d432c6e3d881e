// Throughput of csv::accumulate (hidden: run with `test_host "[.bench][csv]"`), one thread, on
// text in memory: bench/csv.sh's records (an id, a price with two decimals, a small integer, a
// double printed in full), the same with every field quoted, and 16 fields of which 2 are kept.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "host/csv.hpp"

using namespace hetpipe::host;

namespace {

double best_gbps(const std::string& text, const csv::layout& l) {
  double best = 0;
  constexpr std::size_t chunk = 4u << 20;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<column_acc> acc(l.pick.size());
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t at = 0; at < text.size();) {
      std::size_t end = std::min(text.size(), at + chunk);
      while (end < text.size() && text[end - 1] != '\n') ++end;
      REQUIRE(!csv::accumulate(text.data() + at, end - at, l, acc.data()));
      at = end;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(text.size()) / s / 1e9);
  }
  return best;
}

}  // namespace

TEST_CASE("csv::accumulate throughput", "[.bench][csv]") {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> price(0, 1000);
  std::uniform_int_distribution<int> qty(-50, 50);
  std::normal_distribution<double> score(0, 1);
  std::string records, quoted, wide;
  char buf[64];
  for (std::size_t i = 0; records.size() < (64u << 20); ++i) {
    const double p = price(rng), s = score(rng);
    const int q = qty(rng);
    std::snprintf(buf, sizeof buf, "%zu,%.2f,%d,%.17g\n", i, p, q, s);
    records += buf;
    std::snprintf(buf, sizeof buf, "\"%zu\",\"%.2f\",\"%d\",\"%.17g\"\n", i, p, q, s);
    quoted += buf;
    for (int f = 0; f < 16; ++f) {
      if (f == 3)
        std::snprintf(buf, sizeof buf, "%.2f", p);
      else if (f == 11)
        std::snprintf(buf, sizeof buf, "%.17g", s);
      else
        std::snprintf(buf, sizeof buf, "%d", q + f);
      wide += buf;
      wide += f == 15 ? '\n' : ',';
    }
  }
  std::printf("%-40s %8s\n", "text (64 MiB)", "GB/s");
  std::printf("%-40s %8.3f\n", "4 fields, all kept",
              best_gbps(records, csv::layout{',', 4, {0, 1, 2, 3}}));
  std::printf("%-40s %8.3f\n", "4 quoted fields, all kept",
              best_gbps(quoted, csv::layout{',', 4, {0, 1, 2, 3}}));
  std::printf("%-40s %8.3f\n", "16 fields, 2 kept", best_gbps(wide, csv::layout{',', 16, {3, 11}}));
}
