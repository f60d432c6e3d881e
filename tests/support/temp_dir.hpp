// Test helpers: a temporary folder removed at the end, random files, bitwise comparison of stats.
#pragma once

#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <hetpipe/stats.hpp>

#include "support/random.hpp"

namespace hetpipe::test {

class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hetpipe-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const void* data, std::size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!f) throw std::runtime_error("cannot write " + path);
}

// n files in0, in1, ... of `bytes` random bytes each (random_bytes with seeds seed, seed + 1,
// ...) in dir, as a transform's inputs, and the names out0, out1, ... beside them as its outputs.
struct numbered_files {
  std::vector<input> inputs;
  std::vector<std::string> outputs;
};
inline numbered_files write_numbered_files(const temp_dir& dir, int n, std::size_t bytes,
                                           std::uint64_t seed) {
  numbered_files f;
  for (int i = 0; i < n; ++i) {
    f.inputs.push_back({dir.file("in" + std::to_string(i))});
    f.outputs.push_back(dir.file("out" + std::to_string(i)));
    const auto b = random_bytes(bytes, seed + static_cast<std::uint64_t>(i));
    write_file(f.inputs.back().path, b.data(), b.size());
  }
  return f;
}

inline std::vector<std::uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

template <class T>
void write_vector(const std::string& path, const std::vector<T>& v) {
  write_file(path, v.data(), v.size() * sizeof(T));
}

// Random doubles with the hard cases mixed in: huge and tiny magnitudes, cancellation, ±0, ±inf,
// NaN, subnormals.
inline std::vector<double> hard_doubles(std::size_t n, std::uint64_t seed, bool specials = true) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> v(n);
  for (auto& x : v) {
    const unsigned k = static_cast<unsigned>(rng() % 100);
    if (!specials || k >= 12) {
      x = std::ldexp(normal(rng), static_cast<int>(rng() % 120) - 60);
      continue;
    }
    switch (k) {
      case 0:
        x = 0.0;
        break;
      case 1:
        x = -0.0;
        break;
      case 2:
        x = 1e300;
        break;
      case 3:
        x = -1e300;
        break;
      case 4:
        x = 4.9e-324;
        break;
      case 5:
        x = 1e16;
        break;
      case 6:
        x = -1e16;
        break;
      case 7:
        x = std::nan("");
        break;
      case 8:
        x = 1e-300;
        break;
      case 9:
        x = 3.0;
        break;
      default:
        x = std::ldexp(normal(rng), -1060);
        break;  // subnormal
    }
  }
  return v;
}

inline bool same_bits(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

inline bool same_stats(const column_stats& a, const column_stats& b) {
  auto same_value = [](const auto& x, const auto& y) {
    if (x.index() != y.index()) return false;
    if (const double* dx = std::get_if<double>(&x)) return same_bits(*dx, std::get<double>(y));
    return x == y;
  };
  return a.count == b.count && a.nan_count == b.nan_count && same_value(a.min, b.min) &&
         same_value(a.max, b.max) && same_bits(a.sum, b.sum) && same_bits(a.mean, b.mean) &&
         same_bits(a.variance, b.variance) && same_bits(a.sample_variance, b.sample_variance) &&
         same_bits(a.std, b.std);
}

inline bool same_results(const std::vector<stats_result>& a, const std::vector<stats_result>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].columns.size() != b[i].columns.size()) return false;
    for (std::size_t c = 0; c < a[i].columns.size(); ++c)
      if (!same_stats(a[i].columns[c], b[i].columns[c])) return false;
  }
  return true;
}

}  // namespace hetpipe::test
