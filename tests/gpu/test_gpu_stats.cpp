// GPU and hybrid stats against the CPU, bit for bit, through the public API.
#include <catch2/catch.hpp>

#include <hetpipe/hetpipe.hpp>

#include "support/options.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;

namespace {

template <class T>
std::vector<T> random_ints(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng());
  return v;
}

}  // namespace

TEST_CASE("GPU and hybrid stats equal the CPU bit for bit for every dtype", "[gpu][stats]") {
  test::temp_dir dir;
  const std::size_t n = 3'000'001;
  std::vector<std::string> files;
  std::vector<dtype> types;
  auto d = test::hard_doubles(n, 11);
  std::vector<float> f(d.begin(), d.end());
  test::write_vector(dir.file("f64.bin"), d);
  test::write_vector(dir.file("f32.bin"), f);
  test::write_vector(dir.file("u8.bin"), random_ints<std::uint8_t>(n, 1));
  test::write_vector(dir.file("i16.bin"), random_ints<std::int16_t>(n, 2));
  test::write_vector(dir.file("u32.bin"), random_ints<std::uint32_t>(n, 3));
  test::write_vector(dir.file("i64.bin"), random_ints<std::int64_t>(n, 4));
  test::write_vector(dir.file("u64.bin"), random_ints<std::uint64_t>(n, 5));
  const std::pair<const char*, dtype> cases[] = {{"f64.bin", dtype::f64}, {"f32.bin", dtype::f32},
                                                 {"u8.bin", dtype::u8},   {"i16.bin", dtype::i16},
                                                 {"u32.bin", dtype::u32}, {"i64.bin", dtype::i64},
                                                 {"u64.bin", dtype::u64}};
  for (const auto& [name, type] : cases) {
    INFO(name);
    const std::vector<std::string> in{dir.file(name)};
    const auto cpu = stats(in, type, test::device_options(device_mode::cpu, 1 << 20));
    for (std::size_t chunk : {std::size_t{4096}, std::size_t{1} << 20, std::size_t{64} << 20}) {
      INFO("chunk " << chunk);
      job_report rep;
      const auto gpu = stats(in, type, test::device_options(device_mode::gpu, chunk), &rep);
      CHECK(rep.gpu_lanes > 0);
      CHECK(rep.cpu_lanes == 0);
      CHECK(test::same_results(cpu, gpu));
      const auto hybrid = stats(in, type, test::device_options(device_mode::automatic, chunk));
      CHECK(test::same_results(cpu, hybrid));
    }
  }
}

TEST_CASE("GPU stats of a 2-D .npy with many columns equal the CPU", "[gpu][stats]") {
  test::temp_dir dir;
  const std::size_t rows = 20'011, cols = 37;
  auto d = test::hard_doubles(rows * cols, 5);
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string pre = "\x93NUMPY";
  pre += '\x01';
  pre += '\x00';
  pre += static_cast<char>(header.size() & 0xff);
  pre += static_cast<char>(header.size() >> 8);
  std::string bytes = pre + header;
  bytes.append(reinterpret_cast<const char*>(d.data()), d.size() * sizeof(double));
  test::write_file(dir.file("m.npy"), bytes.data(), bytes.size());
  const std::vector<std::string> in{dir.file("m.npy")};
  const auto cpu = stats(in, std::nullopt, test::device_options(device_mode::cpu, 1 << 16));
  const auto gpu = stats(in, std::nullopt, test::device_options(device_mode::gpu, 1 << 16));
  REQUIRE(cpu[0].columns.size() == cols);
  CHECK(test::same_results(cpu, gpu));
}

TEST_CASE("a GPU job with a pool of one slot finishes", "[gpu][pipeline]") {
  test::temp_dir dir;
  auto d = test::hard_doubles(100'000, 9);
  test::write_vector(dir.file("x.bin"), d);
  options o = test::device_options(device_mode::gpu, 4096);
  o.slots = 1;
  o.gpu_lanes = 1;
  const auto one = stats({dir.file("x.bin")}, dtype::f64, o);
  const auto cpu =
      stats({dir.file("x.bin")}, dtype::f64, test::device_options(device_mode::cpu, 1 << 20));
  CHECK(test::same_results(one, cpu));
}
