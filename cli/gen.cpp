#include "gen.hpp"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <vector>

#include <hetpipe/error.hpp>
#include <hetpipe/pipeline.hpp>

namespace hetpipe::cli {

namespace {

// splitmix64: tiny, fast, and its output is fixed by the seed on every platform.
struct rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits: exact integer arithmetic, no libm.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }
  // Approximately normal(0, 1): sum of 12 uniforms minus 6 (Irwin–Hall), still libm-free.
  double normal() {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += uniform();
    return s - 6.0;
  }
};

double hard_value(rng& r) {
  static const double special[] = {0.0,
                                   -0.0,
                                   1e300,
                                   -1e300,
                                   1e-300,
                                   std::numeric_limits<double>::denorm_min(),
                                   std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity(),
                                   std::numeric_limits<double>::quiet_NaN(),
                                   1e16,
                                   -1e16,
                                   1.0};
  const std::uint64_t k = r.next() % 64;
  if (k < std::size(special)) return special[k];
  return std::ldexp(r.uniform() - 0.5, static_cast<int>(r.next() % 200) - 100);
}

template <class T>
void put(std::byte* out, double v, rng& r, const std::string& dist) {
  T x;
  if constexpr (std::is_floating_point_v<T>) {
    x = static_cast<T>(v);
  } else if (dist == "hard") {
    x = static_cast<T>(r.next());  // every bit pattern, extremes included
  } else if (dist == "uniform") {
    // Every value of the type equally likely (v in [0, 1)).
    const double lo = static_cast<double>(std::numeric_limits<T>::min());
    const double hi = static_cast<double>(std::numeric_limits<T>::max());
    x = static_cast<T>(std::clamp(std::floor(lo + v * (hi - lo + 1)), lo, hi));
  } else {
    // Normal: around 0 (signed) or 1000 (unsigned) with a spread of 1000 or 500, narrowed and
    // centred for 8-bit types so that four spreads fit (it was clamped: u8 nearly all 255).
    const double lo = static_cast<double>(std::numeric_limits<T>::min());
    const double hi = static_cast<double>(std::numeric_limits<T>::max());
    const double span = std::min(std::is_signed_v<T> ? 1000.0 : 500.0, (hi - lo) / 8);
    const double c = std::is_signed_v<T> ? 0.0 : std::min(1000.0, (hi - lo) / 2);
    x = static_cast<T>(std::clamp(std::round(c + v * span), lo, hi));
  }
  std::memcpy(out, &x, sizeof x);
}

std::string npy_descr(dtype t) {
  switch (t) {
    case dtype::u8:
      return "|u1";
    case dtype::i8:
      return "|i1";
    case dtype::u16:
      return "<u2";
    case dtype::i16:
      return "<i2";
    case dtype::u32:
      return "<u4";
    case dtype::i32:
      return "<i4";
    case dtype::u64:
      return "<u8";
    case dtype::i64:
      return "<i8";
    case dtype::f32:
      return "<f4";
    default:
      return "<f8";
  }
}

}  // namespace

std::uint64_t parse_count(const std::string& text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, value);
  std::uint64_t scale = 1;
  if (p != end && p + 1 == end) {
    switch (*p) {
      case 'k':
      case 'K':
        scale = 1000;
        break;
      case 'm':
      case 'M':
        scale = 1000000;
        break;
      case 'g':
      case 'G':
        scale = 1000000000;
        break;
      default:
        scale = 0;
    }
    ++p;
  }
  if (ec != std::errc() || p == text.data() || p != end || scale == 0 ||
      value > std::numeric_limits<std::uint64_t>::max() / scale)
    throw usage_error("invalid count '" + text + "' (examples: 1000, 100K, 4M, 1G)");
  return value * scale;
}

void generate(const gen_spec& spec) {
  const std::size_t size = dtype_size(spec.type);
  if (spec.cols != 0 && spec.rows > std::numeric_limits<std::uint64_t>::max() / spec.cols / size)
    throw usage_error("--rows x --cols x " + std::to_string(size) + " bytes is more than 2^64");
  // A temporary file beside the output, renamed on success, removed on failure or a signal.
  output_file out(spec.output);
  if (spec.npy) {
    std::string shape =
        spec.cols == 1 ? "(" + std::to_string(spec.rows) + ",)"
                       : "(" + std::to_string(spec.rows) + ", " + std::to_string(spec.cols) + ")";
    std::string header = "{'descr': '" + npy_descr(spec.type) +
                         "', 'fortran_order': False, 'shape': " + shape + ", }";
    const std::size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header.push_back('\n');
    const auto len = static_cast<std::uint16_t>(header.size());
    const unsigned char pre[10] = {0x93,
                                   'N',
                                   'U',
                                   'M',
                                   'P',
                                   'Y',
                                   1,
                                   0,
                                   static_cast<unsigned char>(len & 0xff),
                                   static_cast<unsigned char>(len >> 8)};
    std::vector<std::byte> head(10 + header.size());
    std::memcpy(head.data(), pre, 10);
    std::memcpy(head.data() + 10, header.data(), header.size());
    out.write(std::move(head));
  }
  // Element i comes from the generator of its block (i / block) seeded from (seed, block), so the
  // bytes do not depend on the thread count and blocks fill in parallel.
  constexpr std::uint64_t block = 1u << 16;
  const std::uint64_t total = spec.rows * spec.cols;
  constexpr std::size_t buf_bytes = std::size_t{64} << 20;
  const std::size_t per_buf = buf_bytes / size / block * block;
  for (std::uint64_t done = 0; done < total;) {
    if (spec.cancel && spec.cancel->load()) throw cancelled();  // the output file is removed
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(per_buf, total - done));
    std::vector<std::byte> buf = out.spare();  // a written piece's memory: no fresh pages
    buf.resize(n * size);
    const std::int64_t blocks = static_cast<std::int64_t>((n + block - 1) / block);
#pragma omp parallel for schedule(static)
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::uint64_t global = done / block + static_cast<std::uint64_t>(b);
      rng r{rng{spec.seed ^ (global * 0xd1b54a32d192ed03ull)}.next()};
      const std::size_t first = static_cast<std::size_t>(b) * block;
      const std::size_t last = std::min<std::size_t>(n, first + block);
      for (std::size_t i = first; i < last; ++i) {
        const double v = spec.dist == "uniform" ? r.uniform()
                         : spec.dist == "hard"  ? hard_value(r)
                                                : r.normal();
        std::byte* p = buf.data() + i * size;
        switch (spec.type) {
          case dtype::u8:
            put<std::uint8_t>(p, v, r, spec.dist);
            break;
          case dtype::i8:
            put<std::int8_t>(p, v, r, spec.dist);
            break;
          case dtype::u16:
            put<std::uint16_t>(p, v, r, spec.dist);
            break;
          case dtype::i16:
            put<std::int16_t>(p, v, r, spec.dist);
            break;
          case dtype::u32:
            put<std::uint32_t>(p, v, r, spec.dist);
            break;
          case dtype::i32:
            put<std::int32_t>(p, v, r, spec.dist);
            break;
          case dtype::u64:
            put<std::uint64_t>(p, v, r, spec.dist);
            break;
          case dtype::i64:
            put<std::int64_t>(p, v, r, spec.dist);
            break;
          case dtype::f32:
            put<float>(p, v, r, spec.dist);
            break;
          case dtype::f64:
            put<double>(p, v, r, spec.dist);
            break;
        }
      }
    }
    out.write(std::move(buf));
    done += n;
  }
  if (spec.cancel && spec.cancel->load()) throw cancelled();
  out.commit();
}

}  // namespace hetpipe::cli
