// hetpipe::stats end to end on the CPU: exact answers, the same bits for every chunk size and
// thread count, and a clear error for every bad input.
#include <catch2/catch.hpp>

#include <cmath>

#include <hetpipe/hetpipe.hpp>

#include "support/matchers.hpp"
#include "support/options.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;

namespace {

std::string npy_bytes(const std::string& descr, const std::string& shape, const void* data,
                      std::size_t n, bool fortran = false) {
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(data), n);
  return out;
}

void write_string(const std::string& path, const std::string& s) {
  test::write_file(path, s.data(), s.size());
}

}  // namespace

TEST_CASE("stats of a small array are the textbook values", "[stats]") {
  test::temp_dir dir;
  test::write_vector(dir.file("x.f64"), std::vector<double>{1, 2, 3, 4});
  const auto r = stats({dir.file("x.f64")}, dtype::f64, test::cpu_options(4096, 2));
  REQUIRE(r.size() == 1);
  REQUIRE(r[0].columns.size() == 1);
  const auto& c = r[0].columns[0];
  CHECK(c.count == 4);
  CHECK(c.nan_count == 0);
  CHECK(std::get<double>(c.min) == 1.0);
  CHECK(std::get<double>(c.max) == 4.0);
  CHECK(c.sum == 10.0);
  CHECK(c.mean == 2.5);
  CHECK(c.variance == 1.25);
  CHECK(c.sample_variance == 5.0 / 3.0);
  CHECK(c.std == std::sqrt(1.25));  // sqrt is correctly rounded in IEEE arithmetic
  CHECK(r[0].shape == std::vector<std::uint64_t>{4});
}

TEST_CASE("sums are exact where a float running sum is not", "[stats]") {
  test::temp_dir dir;
  // A float running sum gives 0 here; the exact sum is 1.
  test::write_vector(dir.file("x.f64"), std::vector<double>{1e16, 1.0, -1e16});
  const auto r = stats({dir.file("x.f64")}, dtype::f64, test::cpu_options(4096, 1));
  const auto& c = r[0].columns[0];
  CHECK(c.sum == 1.0);
  CHECK(c.mean == 1.0 / 3.0);
}

TEST_CASE("integer stats keep exact extremes", "[stats]") {
  test::temp_dir dir;
  test::write_vector(dir.file("x.i64"), std::vector<std::int64_t>{INT64_MIN, INT64_MAX, -1, 0, 7});
  test::write_vector(dir.file("x.u64"), std::vector<std::uint64_t>{UINT64_MAX, 3});
  auto r = stats({dir.file("x.i64")}, dtype::i64, test::cpu_options(4096, 2));
  CHECK(std::get<std::int64_t>(r[0].columns[0].min) == INT64_MIN);
  CHECK(std::get<std::int64_t>(r[0].columns[0].max) == INT64_MAX);
  CHECK(r[0].columns[0].sum == 5.0);  // −2^63 + (2^63 − 1) − 1 + 0 + 7
  r = stats({dir.file("x.u64")}, dtype::u64, test::cpu_options(4096, 2));
  CHECK(std::get<std::uint64_t>(r[0].columns[0].max) == UINT64_MAX);
  CHECK(r[0].columns[0].sum == std::ldexp(1.0, 64));  // 2^64 + 2 rounds to 2^64
}

TEST_CASE("stats are bit-identical for every chunk size and thread count", "[stats]") {
  test::temp_dir dir;
  const auto d = test::hard_doubles(400'003, 21);
  std::vector<float> f(d.begin(), d.end());
  test::write_vector(dir.file("d"), d);
  test::write_vector(dir.file("f"), f);
  const std::string m = npy_bytes("<f8", "(40000, 10)", d.data(), 400'000 * sizeof(double));
  write_string(dir.file("m.npy"), m);
  const std::vector<std::string> files{dir.file("m.npy")};
  const auto ref_d = stats({dir.file("d")}, dtype::f64, test::cpu_options(1 << 20, 1));
  const auto ref_f = stats({dir.file("f")}, dtype::f32, test::cpu_options(1 << 20, 1));
  const auto ref_m = stats(files, std::nullopt, test::cpu_options(1 << 20, 1));
  REQUIRE(ref_m[0].columns.size() == 10);
  CHECK(ref_m[0].shape == std::vector<std::uint64_t>{40000, 10});
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{12345 * 8}, std::size_t{8} << 20})
    for (unsigned threads : {1u, 2u, 5u}) {
      INFO("chunk " << chunk << " threads " << threads);
      CHECK(test::same_results(
          ref_d, stats({dir.file("d")}, dtype::f64, test::cpu_options(chunk, threads))));
      CHECK(test::same_results(
          ref_f, stats({dir.file("f")}, dtype::f32, test::cpu_options(chunk, threads))));
      CHECK(
          test::same_results(ref_m, stats(files, std::nullopt, test::cpu_options(chunk, threads))));
    }
}

TEST_CASE("stats are bit-identical whether lanes map, read or are given their chunks", "[stats]") {
  test::temp_dir dir;
  const auto d = test::hard_doubles(600'000, 23);
  const std::string m = npy_bytes("<f8", "(100000, 6)", d.data(), d.size() * sizeof(double));
  write_string(dir.file("m.npy"), m);  // its header: 128 bytes, so the records start aligned
  test::write_vector(dir.file("d"), d);
  const std::vector<std::string> files{dir.file("m.npy"), dir.file("d")};
  const auto ref = stats({files[0]}, std::nullopt, test::cpu_options(4096, 1));
  const auto ref_d = stats({files[1]}, dtype::f64, test::cpu_options(4096, 1));
  for (read_mode reads : {read_mode::map, read_mode::lane, read_mode::pool})
    for (std::size_t chunk : {std::size_t{512} << 10, std::size_t{1} << 20})
      for (unsigned threads : {1u, 3u}) {
        INFO(read_mode_name(reads) << " chunk " << chunk << " threads " << threads);
        options o = test::cpu_options(chunk, threads);
        o.reads = reads;
        job_report rep;
        CHECK(test::same_results(ref, stats({files[0]}, std::nullopt, o, &rep)));
        std::uint64_t mapped = 0;
        for (const auto& l : rep.lanes) mapped += l.mapped;
        // In map mode every chunk of 256 KiB and more (all but a short last one: 4.8 MB in
        // chunks of 524256 or 1048560 bytes leaves 82 KiB or 605 KB) is mapped; none otherwise.
        CHECK(mapped == (reads != read_mode::map ? 0
                         : chunk == 1 << 20      ? rep.chunks
                                                 : rep.chunks - 1));
        CHECK(test::same_results(ref_d, stats({files[1]}, dtype::f64, o)));
      }
}

TEST_CASE("NaN is counted and excluded, infinities propagate", "[stats]") {
  test::temp_dir dir;
  const double inf = INFINITY;
  test::write_vector(dir.file("a"), std::vector<double>{1.0, NAN, 3.0});
  test::write_vector(dir.file("b"), std::vector<double>{1.0, inf, 3.0});
  test::write_vector(dir.file("c"), std::vector<double>{-inf, inf});
  const auto r =
      stats({dir.file("a"), dir.file("b"), dir.file("c")}, dtype::f64, test::cpu_options(4096, 2));
  CHECK(r[0].columns[0].count == 2);
  CHECK(r[0].columns[0].nan_count == 1);
  CHECK(r[0].columns[0].mean == 2.0);
  CHECK(r[1].columns[0].sum == inf);
  CHECK(std::get<double>(r[1].columns[0].max) == inf);
  CHECK(std::isnan(r[1].columns[0].variance));
  CHECK(std::isnan(r[2].columns[0].sum));
}

TEST_CASE("an empty input has count 0 and NaN statistics", "[stats]") {
  test::temp_dir dir;
  test::write_file(dir.file("e"), "", 0);
  const auto r = stats({dir.file("e")}, dtype::f32, test::cpu_options(4096, 2));
  REQUIRE(r[0].columns.size() == 1);
  CHECK(r[0].columns[0].count == 0);
  CHECK(std::isnan(r[0].columns[0].mean));
}

TEST_CASE("bad inputs are clear errors naming the file", "[stats]") {
  test::temp_dir dir;
  const std::vector<float> f{1, 2, 3};
  test::write_vector(dir.file("ok.f32"), f);
  write_string(dir.file("odd"), "12345");
  const double d[4] = {1, 2, 3, 4};
  write_string(dir.file("short.npy"), npy_bytes("<f8", "(5,)", d, sizeof d));
  write_string(dir.file("long.npy"), npy_bytes("<f8", "(3,)", d, sizeof d));
  write_string(dir.file("be.npy"), npy_bytes(">f8", "(4,)", d, sizeof d));
  write_string(dir.file("fortran.npy"), npy_bytes("<f8", "(2, 2)", d, sizeof d, true));
  write_string(dir.file("trunc.npy"), npy_bytes("<f8", "(4,)", d, sizeof d).substr(0, 30));
  auto fails = [&](const std::string& file, std::optional<dtype> t, const std::string& why) {
    INFO(file);
    REQUIRE_THROWS_MATCHES(
        stats({file}, t, test::cpu_options(4096, 2)), error,
        test::what(Catch::Matchers::StartsWith(file + ": ") && Catch::Matchers::Contains(why)));
  };
  fails(dir.file("missing"), dtype::f32, "no such file");
  fails(dir.path().string(), dtype::f32, "is a directory");
  fails(dir.file("odd"), dtype::f32, "not a multiple");
  fails(dir.file("ok.f32"), std::nullopt, "--dtype");
  fails(dir.file("short.npy"), std::nullopt, "truncated");
  fails(dir.file("long.npy"), std::nullopt, "");
  fails(dir.file("be.npy"), std::nullopt, "big-endian");
  fails(dir.file("fortran.npy"), std::nullopt, "Fortran");
  fails(dir.file("trunc.npy"), std::nullopt, "");
  CHECK_THROWS_AS(stats({"-"}, std::nullopt, test::cpu_options(4096, 2)), usage_error);
}
